#include "common/events/outbox.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "google/protobuf/util/time_util.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clustergov::events {
namespace {

struct Row {
  int64_t seq;
  std::string event_id;
  std::string type;
  std::string envelope;
};

}  // namespace

std::vector<store::Migration> OutboxMigrations() {
  return {
      {1,
       // seq is the commit order: one writer per store assigns it, and AUTOINCREMENT never reuses
       // a value, not even after sent rows are deleted.
       "CREATE TABLE outbox_events ("
       " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
       " event_id TEXT NOT NULL UNIQUE,"
       " type TEXT NOT NULL,"
       " subject TEXT NOT NULL,"
       " envelope BLOB NOT NULL,"
       " created_micros INTEGER NOT NULL,"
       " sent_micros INTEGER);"
       "CREATE INDEX outbox_events_unsent ON outbox_events(seq) WHERE sent_micros IS NULL;"
       "CREATE INDEX outbox_events_sent ON outbox_events(sent_micros) WHERE sent_micros IS NOT NULL;"},
  };
}

std::string NewEventId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // The CSPRNG failing is not recoverable in any sensible way for the caller.
    log::Error("RAND_bytes failed");
    std::abort();
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

v1::Envelope MakeEnvelope(absl::string_view source, absl::string_view subject,
                          const google::protobuf::Message& data, const common::v1::Actor& actor,
                          int64_t revision) {
  v1::Envelope e;
  e.set_id(NewEventId());
  e.set_source(std::string(source));
  e.set_type(data.GetDescriptor()->full_name());
  e.set_subject(std::string(subject));
  *e.mutable_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
  e.mutable_data()->PackFrom(data);
  *e.mutable_actor() = actor;
  e.set_revision(revision);
  return e;
}

absl::Status Append(store::Connection& c, v1::Envelope envelope) {
  FieldErrors errors;
  if (envelope.source().empty()) errors.Add("source", "required");
  if (envelope.type().empty()) errors.Add("type", "required");
  if (envelope.subject().empty()) errors.Add("subject", "required");
  if (envelope.data().type_url().empty()) errors.Add("data", "required");
  if (!errors.empty()) return errors.ToStatus();
  if (envelope.id().empty()) envelope.set_id(NewEventId());
  if (!envelope.has_time()) {
    *envelope.mutable_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
  }
  CG_ASSIGN_OR_RETURN(
      auto insert,
      c.Prepare("INSERT INTO outbox_events (event_id, type, subject, envelope, created_micros) VALUES (?, ?, ?, ?, ?)"));
  insert.Bind(1, envelope.id()).Bind(2, envelope.type()).Bind(3, envelope.subject());
  insert.BindBlob(4, envelope.SerializeAsString()).Bind(5, store::NowMicros());
  return insert.Run();
}

Relay::Relay(store::Store* db, cache::RedisClient* redis, RelayOptions options, prometheus::Registry* registry)
    : db_(db), redis_(redis), options_(std::move(options)), max_len_(std::to_string(options_.max_len)) {
  if (options_.batch < 1) options_.batch = 1;
  if (registry != nullptr) {
    const std::map<std::string, std::string> labels = {{"stream", options_.stream}};
    backlog_ = &prometheus::BuildGauge()
                    .Name("clustergov_events_outbox_backlog")
                    .Help("Events committed to the outbox and not yet published.")
                    .Register(*registry)
                    .Add(labels);
    oldest_age_ = &prometheus::BuildGauge()
                       .Name("clustergov_events_outbox_oldest_unsent_age_seconds")
                       .Help("Age of the oldest unpublished event in the outbox (0 when none).")
                       .Register(*registry)
                       .Add(labels);
    published_ = &prometheus::BuildCounter()
                      .Name("clustergov_events_published_total")
                      .Help("Events the relay published to the stream (republished ones included).")
                      .Register(*registry)
                      .Add(labels);
    errors_ = &prometheus::BuildCounter()
                   .Name("clustergov_events_publish_errors_total")
                   .Help("Relay passes that failed to publish (Redis unreachable or refusing).")
                   .Register(*registry)
                   .Add(labels);
  }
}

Relay::~Relay() { Stop(); }

void Relay::Start() {
  loop_.Start([this] { return Pass(); });
}

void Relay::Stop() { loop_.Stop(); }

void Relay::Notify() {
  if (!failing_.load(std::memory_order_relaxed)) loop_.Wake();
}

void Relay::SetGauges(const OutboxBacklog& backlog) {
  if (backlog_ == nullptr) return;
  backlog_->Set(static_cast<double>(backlog.unsent));
  double age = 0;
  if (backlog.oldest_unsent_micros > 0) {
    age = std::max<double>(0, static_cast<double>(store::NowMicros() - backlog.oldest_unsent_micros) / 1e6);
  }
  oldest_age_->Set(age);
}

absl::StatusOr<OutboxBacklog> Relay::Backlog() {
  return db_->ReadResult<OutboxBacklog>([](store::Connection& c) -> absl::StatusOr<OutboxBacklog> {
    OutboxBacklog b;
    CG_ASSIGN_OR_RETURN(auto count, c.Prepare("SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL"));
    CG_ASSIGN_OR_RETURN(bool row, count.Step());
    if (row) b.unsent = count.Int(0);
    CG_ASSIGN_OR_RETURN(auto oldest, c.Prepare("SELECT created_micros FROM outbox_events WHERE sent_micros IS NULL "
                                               "ORDER BY seq LIMIT 1"));
    CG_ASSIGN_OR_RETURN(row, oldest.Step());
    if (row) b.oldest_unsent_micros = oldest.Int(0);
    return b;
  });
}

absl::StatusOr<int> Relay::PublishOnce() {
  // A read snapshot holds a prefix of the commits, and seq grows with commit order, so the
  // unsent rows read here, in seq order, are the oldest unsent events with none missing between.
  std::vector<Row> rows;
  absl::Status read = db_->Read([&](store::Connection& c) -> absl::Status {
    CG_ASSIGN_OR_RETURN(auto select, c.Prepare("SELECT seq, event_id, type, envelope FROM outbox_events "
                                               "WHERE sent_micros IS NULL ORDER BY seq LIMIT ?"));
    select.Bind(1, options_.batch);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      rows.push_back({select.Int(0), select.Text(1), select.Text(2), select.Blob(3)});
    }
    return absl::OkStatus();
  });
  CG_RETURN_IF_ERROR(read);
  if (rows.empty()) return 0;

  std::vector<std::vector<absl::string_view>> commands;
  commands.reserve(rows.size());
  for (const Row& r : rows) {
    commands.push_back({"XADD", options_.stream, "MAXLEN", "~", max_len_, "*", "id", r.event_id, "type", r.type,
                        "envelope", r.envelope});
  }
  auto published = redis_->Pipeline(commands);
  if (!published.ok()) {
    if (errors_ != nullptr) errors_->Increment();
    return absl::UnavailableError(absl::StrCat("publishing to ", options_.stream, ": ", published.status().message()));
  }
  if (published_ != nullptr) published_->Increment(static_cast<double>(rows.size()));

  // A crash here publishes these events again on restart (at least once).
  const int64_t first = rows.front().seq;
  const int64_t last = rows.back().seq;
  CG_RETURN_IF_ERROR(db_->Write([&](store::Connection& c) -> absl::Status {
    CG_ASSIGN_OR_RETURN(auto mark, c.Prepare("UPDATE outbox_events SET sent_micros = ? "
                                             "WHERE sent_micros IS NULL AND seq BETWEEN ? AND ?"));
    mark.Bind(1, store::NowMicros()).Bind(2, first).Bind(3, last);
    return mark.Run();
  }));
  return static_cast<int>(rows.size());
}

absl::Status Relay::Prune() {
  const int64_t cutoff =
      store::NowMicros() - std::chrono::duration_cast<std::chrono::microseconds>(options_.retention).count();
  // In bounded steps, so one prune never holds the writer for long.
  return db_->Write([&](store::Connection& c) -> absl::Status {
    CG_ASSIGN_OR_RETURN(auto prune, c.Prepare("DELETE FROM outbox_events WHERE seq IN (SELECT seq FROM outbox_events "
                                              "WHERE sent_micros IS NOT NULL AND sent_micros < ? LIMIT 5000)"));
    prune.Bind(1, cutoff);
    return prune.Run();
  });
}

std::chrono::milliseconds Relay::Pass() {
  auto published = PublishOnce();
  if (!published.ok()) {
    if (!failing_) log::Warn("event relay cannot publish", {{"stream", options_.stream}, {"error", published.status().message()}});
    failing_ = true;
  } else if (failing_) {
    log::Info("event relay publishing again", {{"stream", options_.stream}});
    failing_ = false;
  }
  auto backlog = Backlog();
  if (backlog.ok()) SetGauges(*backlog);

  const auto now = std::chrono::steady_clock::now();
  if (now >= next_prune_) {
    next_prune_ = now + std::chrono::minutes(1);
    absl::Status pruned = Prune();
    if (!pruned.ok()) log::Warn("outbox prune failed", {{"error", pruned.message()}});
  }

  if (!published.ok()) return options_.retry_backoff;
  // A full batch: more may be waiting, go on at once.
  if (*published == options_.batch) return std::chrono::milliseconds(0);
  return options_.poll_interval;
}

}  // namespace clustergov::events

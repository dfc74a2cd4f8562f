#include "common/events/consumer.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "google/protobuf/util/time_util.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace clustergov::events {

using cache::RedisReply;

namespace {

// Consumers idle this long with nothing pending are removed from the group (processes that
// exited; each run of a service joins under a new name).
constexpr std::chrono::hours kForgetConsumerAfter{24};

bool IsNoGroup(const absl::Status& s) { return absl::StrContains(s.message(), "NOGROUP"); }

}  // namespace

struct Consumer::Entry {
  std::string stream_id;
  std::string envelope_bytes;
  v1::Envelope envelope;
  bool parsed = false;
  int64_t deliveries = 1;
  Outcome outcome = Outcome::kFailed;
  std::string error;
};

namespace {

// Entries of an XREADGROUP / XAUTOCLAIM reply: [[id, [field, value, ...]], ...].
template <typename EntryT>
std::vector<EntryT> ParseEntries(const RedisReply& list) {
  std::vector<EntryT> out;
  for (const RedisReply& item : list.elements) {
    if (item.type != RedisReply::Type::kArray || item.elements.size() < 2) continue;
    EntryT e;
    e.stream_id = item.elements[0].str;
    const RedisReply& fields = item.elements[1];
    for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
      if (fields.elements[i].str == "envelope") e.envelope_bytes = fields.elements[i + 1].str;
    }
    e.parsed = !e.envelope_bytes.empty() && e.envelope.ParseFromString(e.envelope_bytes) && !e.envelope.id().empty();
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

store::Migrations ConsumerMigrations() {
  return store::SameSchema({
      {1,
       "CREATE TABLE processed_events ("
       " group_name TEXT NOT NULL,"
       " event_id TEXT NOT NULL,"
       " type TEXT NOT NULL,"
       " subject TEXT NOT NULL,"
       " processed_micros INTEGER NOT NULL,"
       " PRIMARY KEY (group_name, event_id));"
       "CREATE INDEX processed_events_time ON processed_events(processed_micros);"},
  });
}

Consumer::Consumer(store::Store* db, cache::RedisClient* redis, ConsumerOptions options, Handler handler,
                   prometheus::Registry* registry, BatchScope scope)
    : db_(db), redis_(redis), options_(std::move(options)), handler_(std::move(handler)), scope_(std::move(scope)) {
  if (options_.dead_letter_stream.empty()) {
    options_.dead_letter_stream = absl::StrCat(options_.stream, ":dead:", options_.group);
  }
  if (options_.batch < 1) options_.batch = 1;
  if (options_.max_attempts < 1) options_.max_attempts = 1;
  const auto max_block = redis_->options().io_timeout / 2;
  options_.block = std::max(std::chrono::milliseconds(1), std::min(options_.block, max_block));
  if (registry != nullptr) {
    const std::map<std::string, std::string> labels = {{"stream", options_.stream}, {"group", options_.group}};
    stream_length_ = &prometheus::BuildGauge()
                          .Name("clustergov_events_stream_length")
                          .Help("Entries in the event stream (XLEN).")
                          .Register(*registry)
                          .Add({{"stream", options_.stream}});
    pending_ = &prometheus::BuildGauge()
                    .Name("clustergov_events_pending")
                    .Help("Entries delivered to the consumer group and not yet acknowledged.")
                    .Register(*registry)
                    .Add(labels);
    handled_ = &prometheus::BuildCounter()
                    .Name("clustergov_events_handled_total")
                    .Help("Events whose effect the consumer applied.")
                    .Register(*registry)
                    .Add(labels);
    duplicates_ = &prometheus::BuildCounter()
                       .Name("clustergov_events_duplicates_total")
                       .Help("Events delivered again after their effect was applied (acknowledged, not applied).")
                       .Register(*registry)
                       .Add(labels);
    failures_ = &prometheus::BuildCounter()
                     .Name("clustergov_events_handler_failures_total")
                     .Help("Handler attempts that failed (the event stays pending for another attempt).")
                     .Register(*registry)
                     .Add(labels);
    redeliveries_ = &prometheus::BuildCounter()
                         .Name("clustergov_events_redeliveries_total")
                         .Help("Pending entries claimed again after being idle (XAUTOCLAIM).")
                         .Register(*registry)
                         .Add(labels);
    lag_ = &prometheus::BuildHistogram()
                .Name("clustergov_events_apply_lag_seconds")
                .Help("From an event's creation in the publisher's write to its effect committed here.")
                .Register(*registry)
                .Add(labels, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                     0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
    dead_letters_ = &prometheus::BuildCounter()
                         .Name("clustergov_events_dead_letters_total")
                         .Help("Events moved to the dead-letter stream after their last attempt.")
                         .Register(*registry)
                         .Add(labels);
  }
}

Consumer::~Consumer() { Stop(); }

absl::Status Consumer::Start() {
  CG_RETURN_IF_ERROR(db_->Migrate("events_consumer", ConsumerMigrations()));
  loop_.Start([this] { return Pass(); });
  return absl::OkStatus();
}

bool Consumer::Leading() {
  if (db_->backend() != store::Backend::kPostgres) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < lease_renew_at_) return leading_;
  auto fence = store::TryAcquireLease(*db_, absl::StrCat("consumer:", options_.stream, ":", options_.group),
                                      options_.consumer, options_.lease_ttl);
  const bool was = leading_;
  leading_ = fence.ok() && fence->has_value();
  if (leading_) lease_token_ = (*fence)->token;
  if (leading_ != was) {
    log::Info(leading_ ? "event consumer leads its group" : "event consumer stands by",
              {{"stream", options_.stream}, {"group", options_.group}, {"consumer", options_.consumer}});
  }
  lease_renew_at_ = now + (fence.ok() ? options_.lease_ttl / 3 : options_.retry_backoff);
  return leading_;
}

void Consumer::Stop() {
  loop_.Stop();
  if (leading_) {
    // Hands over at once instead of after the lease's expiry.
    (void)store::ReleaseLease(*db_, {absl::StrCat("consumer:", options_.stream, ":", options_.group),
                                     options_.consumer, lease_token_});
    leading_ = false;
  }
}

absl::Status Consumer::EnsureGroup() {
  if (group_ready_) return absl::OkStatus();
  // From the stream's start ("0"): a group created after events were published (or again after
  // Redis lost it) still sees every entry the stream holds; the processed table drops repeats.
  auto created = redis_->Command({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (!created.ok() && !absl::StrContains(created.status().message(), "BUSYGROUP")) return created.status();
  group_ready_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Consumer::Entry>> Consumer::ReadNew() {
  const std::string count = std::to_string(options_.batch);
  const std::string block = std::to_string(options_.block.count());
  auto reply = redis_->Command({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", count, "BLOCK",
                               block, "STREAMS", options_.stream, ">"});
  if (!reply.ok()) {
    if (IsNoGroup(reply.status())) group_ready_ = false;
    return reply.status();
  }
  std::vector<Entry> entries;
  if (reply->type != RedisReply::Type::kArray) return entries;  // nil: nothing new within BLOCK
  for (const RedisReply& stream : reply->elements) {
    if (stream.elements.size() < 2) continue;
    auto parsed = ParseEntries<Entry>(stream.elements[1]);
    for (auto& e : parsed) entries.push_back(std::move(e));
  }
  return entries;
}

absl::StatusOr<std::vector<Consumer::Entry>> Consumer::Claim() {
  const std::string idle = std::to_string(options_.claim_idle.count());
  const std::string count = std::to_string(options_.batch);
  auto reply = redis_->Command({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer, idle,
                                claim_cursor_, "COUNT", count});
  if (!reply.ok()) {
    if (IsNoGroup(reply.status())) group_ready_ = false;
    return reply.status();
  }
  std::vector<Entry> entries;
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() < 2) return entries;
  claim_cursor_ = reply->elements[0].str;
  entries = ParseEntries<Entry>(reply->elements[1]);
  // Entries trimmed from the stream while pending: Redis drops them from the group (Redis 7).
  if (reply->elements.size() >= 3) {
    for (const RedisReply& gone : reply->elements[2].elements) {
      log::Error("pending event was trimmed from the stream before it was handled",
                 {{"stream", options_.stream}, {"group", options_.group}, {"entry", gone.str}});
    }
  }
  if (entries.empty()) return entries;
  if (redeliveries_ != nullptr) redeliveries_->Increment(static_cast<double>(entries.size()));

  // How often each was delivered (the claim counted as one more).
  std::vector<std::vector<absl::string_view>> commands;
  for (const Entry& e : entries) {
    commands.push_back({"XPENDING", options_.stream, options_.group, e.stream_id, e.stream_id, "1"});
  }
  auto pending = redis_->Pipeline(commands);
  if (!pending.ok()) return pending.status();
  for (size_t i = 0; i < entries.size() && i < pending->size(); ++i) {
    const RedisReply& r = (*pending)[i];
    if (r.elements.empty() || r.elements[0].elements.size() < 4) continue;
    entries[i].deliveries = r.elements[0].elements[3].integer;
  }
  return entries;
}

absl::Status Consumer::DeadLetter(const Entry& entry, const std::string& error) {
  const std::string attempts = std::to_string(entry.deliveries);
  const std::string max_len = std::to_string(options_.dead_letter_max_len);
  // Moved and acknowledged together, or neither.
  auto moved = redis_->Pipeline({
      {"MULTI"},
      {"XADD", options_.dead_letter_stream, "MAXLEN", "~", max_len, "*", "stream", options_.stream, "entry",
       entry.stream_id, "group", options_.group, "id", entry.envelope.id(), "type", entry.envelope.type(), "attempts",
       attempts, "error", error, "envelope", entry.envelope_bytes},
      {"XACK", options_.stream, options_.group, entry.stream_id},
      {"EXEC"},
  });
  if (!moved.ok()) return moved.status();
  if (dead_letters_ != nullptr) dead_letters_->Increment();
  log::Error("event moved to the dead-letter stream",
             {{"stream", options_.stream}, {"group", options_.group}, {"entry", entry.stream_id},
              {"event_id", entry.envelope.id()}, {"type", entry.envelope.type()}, {"attempts", attempts},
              {"error", error}});
  return absl::OkStatus();
}

absl::StatusOr<int> Consumer::Handle(std::vector<Entry>& entries) {
  if (entries.empty()) return 0;
  int done = 0;
  // Entries that can never succeed, or have had their attempts: straight to the dead letters.
  std::vector<Entry*> runnable;
  for (Entry& e : entries) {
    if (!e.parsed) {
      CG_RETURN_IF_ERROR(DeadLetter(e, "entry has no valid envelope"));
      ++done;
    } else if (e.deliveries > options_.max_attempts) {
      CG_RETURN_IF_ERROR(DeadLetter(e, absl::StrCat("delivered ", e.deliveries, " times without being handled")));
      ++done;
    } else {
      runnable.push_back(&e);
    }
  }
  if (runnable.empty()) return done;

  std::function<void()> end_scope;
  if (scope_) {
    std::vector<const v1::Envelope*> events;
    events.reserve(runnable.size());
    for (const Entry* e : runnable) events.push_back(&e->envelope);
    end_scope = scope_(events);
  }
  // One commit for the batch; each event in its own savepoint, so a failing handler rolls back
  // its own effect only.
  const bool pg = db_->backend() == store::Backend::kPostgres;
  absl::Status written = db_->Write([&](store::Connection& c) -> absl::Status {
    for (Entry* e : runnable) {
      CG_RETURN_IF_ERROR(c.Exec("SAVEPOINT cg_event"));
      absl::Status result = [&]() -> absl::Status {
        CG_ASSIGN_OR_RETURN(auto seen, c.Prepare("SELECT 1 FROM processed_events WHERE group_name = ? AND event_id = ?"));
        seen.Bind(1, options_.group).Bind(2, e->envelope.id());
        CG_ASSIGN_OR_RETURN(bool found, seen.Step());
        if (found) {
          e->outcome = Outcome::kDuplicate;
          return absl::OkStatus();
        }
        CG_RETURN_IF_ERROR(handler_(c, e->envelope));
        CG_ASSIGN_OR_RETURN(auto record, c.Prepare("INSERT INTO processed_events (group_name, event_id, type, subject, "
                                                   "processed_micros) VALUES (?, ?, ?, ?, ?)"));
        record.Bind(1, options_.group).Bind(2, e->envelope.id()).Bind(3, e->envelope.type());
        record.Bind(4, e->envelope.subject()).Bind(5, store::NowMicros());
        CG_RETURN_IF_ERROR(record.Run());
        e->outcome = Outcome::kApplied;
        return absl::OkStatus();
      }();
      if (!result.ok()) {
        // PostgreSQL: a serialization failure dooms the whole transaction, not the event; the
        // store retries the batch from the start.
        if (pg && absl::IsAborted(result)) return result;
        e->outcome = Outcome::kFailed;
        e->error = result.ToString();
        CG_RETURN_IF_ERROR(c.Exec("ROLLBACK TO cg_event"));
      }
      CG_RETURN_IF_ERROR(c.Exec("RELEASE cg_event"));
    }
    return absl::OkStatus();
  });
  if (end_scope) end_scope();
  CG_RETURN_IF_ERROR(written);
  const int64_t committed_micros = store::NowMicros();

  std::vector<absl::string_view> ack = {"XACK", options_.stream, options_.group};
  for (Entry* e : runnable) {
    if (e->outcome == Outcome::kApplied) {
      if (handled_ != nullptr) handled_->Increment();
      if (lag_ != nullptr) {
        const int64_t created = google::protobuf::util::TimeUtil::TimestampToMicroseconds(e->envelope.time());
        lag_->Observe(std::max<double>(0, static_cast<double>(committed_micros - created) / 1e6));
      }
    } else if (e->outcome == Outcome::kDuplicate) {
      if (duplicates_ != nullptr) duplicates_->Increment();
    } else {
      continue;
    }
    ack.push_back(e->stream_id);
    ++done;
  }
  // Not acknowledged (Redis down): redelivered later, and then found processed.
  if (ack.size() > 3) CG_RETURN_IF_ERROR(redis_->Command(ack).status());

  for (Entry* e : runnable) {
    if (e->outcome != Outcome::kFailed) continue;
    if (failures_ != nullptr) failures_->Increment();
    if (e->deliveries >= options_.max_attempts) {
      CG_RETURN_IF_ERROR(DeadLetter(*e, e->error));
      ++done;
    } else {
      log::Warn("event handler failed; the event will be retried",
                {{"stream", options_.stream}, {"group", options_.group}, {"event_id", e->envelope.id()},
                 {"type", e->envelope.type()}, {"attempt", std::to_string(e->deliveries)}, {"error", e->error}});
    }
  }
  return done;
}

absl::StatusOr<int> Consumer::PollOnce(bool claim) {
  CG_RETURN_IF_ERROR(EnsureGroup());
  int done = 0;
  if (claim) {
    CG_ASSIGN_OR_RETURN(auto claimed, Claim());
    CG_ASSIGN_OR_RETURN(int n, Handle(claimed));
    done += n;
  }
  CG_ASSIGN_OR_RETURN(auto fresh, ReadNew());
  CG_ASSIGN_OR_RETURN(int n, Handle(fresh));
  return done + n;
}

void Consumer::UpdateGauges() {
  auto replies = redis_->Pipeline({{"XLEN", options_.stream}, {"XPENDING", options_.stream, options_.group}});
  if (replies.ok() && replies->size() == 2) {
    if (stream_length_ != nullptr) stream_length_->Set(static_cast<double>((*replies)[0].integer));
    const RedisReply& summary = (*replies)[1];
    if (pending_ != nullptr && !summary.elements.empty()) {
      pending_->Set(static_cast<double>(summary.elements[0].integer));
    }
  }
  // Forget consumers of past runs that hold nothing.
  auto consumers = redis_->Command({"XINFO", "CONSUMERS", options_.stream, options_.group});
  if (!consumers.ok()) return;
  for (const RedisReply& c : consumers->elements) {
    std::string name;
    int64_t pending = -1;
    int64_t idle_ms = 0;
    for (size_t i = 0; i + 1 < c.elements.size(); i += 2) {
      const std::string& key = c.elements[i].str;
      if (key == "name") name = c.elements[i + 1].str;
      if (key == "pending") pending = c.elements[i + 1].integer;
      if (key == "idle") idle_ms = c.elements[i + 1].integer;
    }
    if (name.empty() || name == options_.consumer || pending != 0) continue;
    if (std::chrono::milliseconds(idle_ms) < kForgetConsumerAfter) continue;
    (void)redis_->Command({"XGROUP", "DELCONSUMER", options_.stream, options_.group, name});
  }
}

absl::Status Consumer::Prune() {
  const int64_t cutoff = store::NowMicros() -
      std::chrono::duration_cast<std::chrono::microseconds>(options_.processed_retention).count();
  return db_->Write([&](store::Connection& c) -> absl::Status {
    // In bounded steps, so one prune never holds the writer for long.
    CG_ASSIGN_OR_RETURN(auto prune,
                        c.Prepare("DELETE FROM processed_events WHERE (group_name, event_id) IN (SELECT group_name, "
                                  "event_id FROM processed_events WHERE processed_micros < ? LIMIT 5000)"));
    prune.Bind(1, cutoff);
    return prune.Run();
  });
}

std::chrono::milliseconds Consumer::Pass() {
  if (!Leading()) return std::chrono::milliseconds(200);  // another replica consumes for the group
  const auto now = std::chrono::steady_clock::now();
  const bool due = now >= next_claim_;
  if (due) next_claim_ = now + options_.claim_interval;
  // Claims again at once while the last claim stopped short of the end of the pending entries.
  auto done = PollOnce(due || claim_cursor_ != "0-0");
  if (due) {
    UpdateGauges();
    if (now >= next_prune_) {
      next_prune_ = now + std::chrono::hours(1);
      absl::Status pruned = Prune();
      if (!pruned.ok()) log::Warn("processed-events prune failed", {{"error", pruned.message()}});
    }
  }
  if (done.ok()) {
    if (failing_) log::Info("event consumer reading again", {{"stream", options_.stream}, {"group", options_.group}});
    failing_ = false;
    // XREADGROUP BLOCK was the wait.
    return std::chrono::milliseconds(0);
  }
  if (!failing_) {
    log::Warn("event consumer cannot read",
              {{"stream", options_.stream}, {"group", options_.group}, {"error", done.status().message()}});
  }
  failing_ = true;
  return options_.retry_backoff;
}

}  // namespace clustergov::events

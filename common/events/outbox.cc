#include "common/events/outbox.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
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
  if (db_->backend() == store::Backend::kPostgres && wake_ == nullptr) {
    // Commits anywhere wake the relay at once; a missed notification only waits for the poll.
    auto wake = db_->Listen(
        store::kOutboxChannel, [this](const std::string&) { Notify(); }, [this] { Notify(); });
    if (wake.ok()) {
      wake_ = std::move(*wake);
    } else {
      log::Warn("event relay polls only", {{"stream", options_.stream}, {"error", wake.status().message()}});
    }
  }
  loop_.Start([this] { return Pass(); });
}

void Relay::Stop() {
  loop_.Stop();
  wake_.reset();
  if (leading_) {
    // Hands over at once instead of after the lease's expiry.
    (void)store::ReleaseLease(*db_, {absl::StrCat("relay:", options_.stream), options_.holder, lease_token_});
    leading_ = false;
  }
}

bool Relay::Leading() {
  if (db_->backend() != store::Backend::kPostgres) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < lease_renew_at_) return leading_;
  auto fence = store::TryAcquireLease(*db_, absl::StrCat("relay:", options_.stream), options_.holder, options_.lease_ttl);
  if (!fence.ok()) {
    // Cannot tell: stands down until the store answers (another relay may be leading).
    leading_ = false;
    lease_renew_at_ = now + options_.retry_backoff;
    return false;
  }
  const bool was = leading_;
  leading_ = fence->has_value();
  if (leading_) lease_token_ = (*fence)->token;
  if (leading_ != was) {
    log::Info(leading_ ? "event relay leads" : "event relay stands by", {{"stream", options_.stream}});
  }
  // Renewed well before it expires; a standby looks again as often.
  lease_renew_at_ = now + options_.lease_ttl / 3;
  return leading_;
}

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
    CG_ASSIGN_OR_RETURN(auto oldest,
                        c.Prepare("SELECT MIN(created_micros) FROM outbox_events WHERE sent_micros IS NULL"));
    CG_ASSIGN_OR_RETURN(row, oldest.Step());
    if (row && !oldest.IsNull(0)) b.oldest_unsent_micros = oldest.Int(0);
    return b;
  });
}

absl::StatusOr<int> Relay::PublishOnce() {
  // SQLite: a read snapshot holds a prefix of the commits, and seq grows with commit order, so the
  // unsent rows read here, in seq order, are the oldest unsent events with none missing between.
  // PostgreSQL: only rows of transactions older than every running one, in (txid, seq) order
  // (store/outbox.h), for the same guarantee.
  const bool pg = db_->backend() == store::Backend::kPostgres;
  std::vector<Row> rows;
  absl::Status read = db_->Read([&](store::Connection& c) -> absl::Status {
    CG_ASSIGN_OR_RETURN(
        auto select,
        c.Prepare(pg ? "SELECT seq, event_id, type, envelope FROM outbox_events WHERE sent_micros IS NULL "
                       "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY txid, seq LIMIT ?"
                     : "SELECT seq, event_id, type, envelope FROM outbox_events "
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
  const int64_t now = store::NowMicros();
  CG_RETURN_IF_ERROR(db_->Write([&](store::Connection& c) -> absl::Status {
    for (const Row& r : rows) {
      CG_ASSIGN_OR_RETURN(auto mark,
                          c.Prepare("UPDATE outbox_events SET sent_micros = ? WHERE seq = ? AND sent_micros IS NULL"));
      mark.Bind(1, now).Bind(2, r.seq);
      CG_RETURN_IF_ERROR(mark.Run());
    }
    return absl::OkStatus();
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
  if (!Leading()) {
    if (backlog_ != nullptr) SetGauges({});  // the leader reports the backlog
    return options_.poll_interval * 4;
  }
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

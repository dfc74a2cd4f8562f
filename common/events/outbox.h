#pragma once

// The transactional outbox and its relay (see docs/events.md).
//
// A service appends an event inside the same store write as the change it describes
// (Transaction::Publish, store/outbox.h), so the event exists exactly when the change committed.
// The Relay, a background thread, publishes unsent events in commit order (store/outbox.h) to one
// Redis stream (`XADD <stream> MAXLEN ~ <max_len> * ...`), then marks them sent in the store.
//
// Delivery is at least once: a crash between XADD and the mark, or a pipeline that failed after
// Redis applied part of it, publishes some events again. They keep their envelope id, which
// consumers deduplicate on (common/events/consumer.h). While Redis is down the backlog stays in
// the store and the relay retries after a back-off; nothing is lost as long as the store is.
//
// Stream entries have the fields `id` (envelope id), `type` (envelope type) and `envelope` (the
// serialized Envelope).
//
// One relay publishes per store: on PostgreSQL, where every replica runs one, the holder of the
// store lease "relay:<stream>" (store/lease.h); the others stand by. A holder that stalls past its
// lease while another takes over can only publish events again (the mark is idempotent and each
// event first appears in order), never out of order.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/cache/redis.h"
#include "common/events/background_loop.h"
#include "common/store/lease.h"
#include "common/store/outbox.h"
#include "common/store/sql.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace clustergov::events {

struct RelayOptions {
  std::string stream;                          // e.g. "cg:events:clusters"; required
  int64_t max_len = 1000000;                   // XADD MAXLEN ~: entries kept in the stream
  int batch = 256;                             // events per XADD pipeline
  std::chrono::milliseconds poll_interval{50};  // looks for new events this often (and on Notify)
  std::chrono::milliseconds retry_backoff{250};  // after a failed publish
  // Sent events stay in the outbox this long (to inspect or replay), then are deleted.
  std::chrono::seconds retention{24 * 3600};
  // This process, unique among the store's replicas (the relay lease's holder).
  std::string holder;
  std::chrono::milliseconds lease_ttl{10000};
};

// Outbox counts, as the metrics show them.
struct OutboxBacklog {
  int64_t unsent = 0;
  int64_t oldest_unsent_micros = 0;  // creation time of the oldest unsent event; 0 when none
};

class Relay {
 public:
  // `db` and `redis` must outlive the relay. `registry` may be null.
  Relay(store::Store* db, cache::RedisClient* redis, RelayOptions options, prometheus::Registry* registry);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Starts the background thread.
  void Start();
  // Graceful: the batch in flight is published and marked, then the thread ends. Events still
  // unsent stay in the outbox for the next start.
  void Stop();
  // Wakes the relay now (call after a Write that appended events) instead of at the next poll;
  // while publishing fails, the retry back-off runs its course.
  void Notify();

  // One pass without the thread: publishes up to `batch` unsent events in order and marks them
  // sent; returns how many. UNAVAILABLE when Redis is unreachable (nothing marked).
  absl::StatusOr<int> PublishOnce();

  absl::StatusOr<OutboxBacklog> Backlog();

 private:
  // Whether this relay publishes now (always on SQLite; the lease holder on PostgreSQL).
  bool Leading();
  std::chrono::milliseconds Pass();
  absl::Status Prune();
  void SetGauges(const OutboxBacklog& backlog);

  store::Store* db_;
  cache::RedisClient* redis_;
  RelayOptions options_;
  std::string max_len_;

  std::atomic<bool> failing_{false};  // Notify() does not cut the back-off short
  std::chrono::steady_clock::time_point next_prune_{};
  std::chrono::steady_clock::time_point lease_renew_at_{};
  bool leading_ = false;
  int64_t lease_token_ = 0;
  std::unique_ptr<store::Subscription> wake_;  // PostgreSQL: appends anywhere wake the relay
  BackgroundLoop loop_;  // last: stopped first

  prometheus::Gauge* backlog_ = nullptr;
  prometheus::Gauge* oldest_age_ = nullptr;
  prometheus::Counter* published_ = nullptr;
  prometheus::Counter* errors_ = nullptr;
};

}  // namespace clustergov::events

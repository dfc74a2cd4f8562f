#pragma once

// The transactional outbox and its relay (see docs/events.md).
//
// A service appends an event with Append() inside the same Database::Write() as the change it
// describes, so the event exists exactly when the change committed. The Relay, a background
// thread, publishes unsent events in commit order (the outbox's sequence) to one Redis stream
// (`XADD <stream> MAXLEN ~ <max_len> * ...`), then marks them sent in the store.
//
// Delivery is at least once: a crash between XADD and the mark, or a pipeline that failed after
// Redis applied part of it, publishes some events again. They keep their envelope id, which
// consumers deduplicate on (common/events/consumer.h). While Redis is down the backlog stays in
// the store and the relay retries after a back-off; nothing is lost as long as the store is.
//
// Stream entries have the fields `id` (envelope id), `type` (envelope type) and `envelope` (the
// serialized Envelope).
//
// One relay per store. Commit order comes from the SQLite store's single writer, which assigns the
// sequence in the order transactions commit (a store with concurrent writers would need more).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/cache/redis.h"
#include "common/events/background_loop.h"
#include "common/store/sqlite.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace clustergov::events {

// The outbox table; apply with db.Migrate("outbox", OutboxMigrations()).
std::vector<store::Migration> OutboxMigrations();

// An envelope for `data`: type is the message's full name, data packed into an Any, a fresh id,
// time now. `source` names the publisher ("clustergov/clusters"), `subject` the aggregate
// ("clusters/hohhot-dairy"), `revision` the aggregate's revision after the change.
v1::Envelope MakeEnvelope(absl::string_view source, absl::string_view subject,
                          const google::protobuf::Message& data, const common::v1::Actor& actor,
                          int64_t revision);

// A fresh event id: 128 random bits, hex.
std::string NewEventId();

// Records `envelope` in the outbox of the store `c` belongs to. Call inside the Write() that
// makes the change. An empty id or time is filled in; an envelope without source, type, subject
// or data is INVALID_ARGUMENT (and the caller's Write rolls back).
absl::Status Append(store::Connection& c, v1::Envelope envelope);

struct RelayOptions {
  std::string stream;                          // e.g. "cg:events:clusters"; required
  int64_t max_len = 1000000;                   // XADD MAXLEN ~: entries kept in the stream
  int batch = 256;                             // events per XADD pipeline
  std::chrono::milliseconds poll_interval{50};  // looks for new events this often (and on Notify)
  std::chrono::milliseconds retry_backoff{250};  // after a failed publish
  // Sent events stay in the outbox this long (to inspect or replay), then are deleted.
  std::chrono::seconds retention{24 * 3600};
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
  std::chrono::milliseconds Pass();
  absl::Status Prune();
  void SetGauges(const OutboxBacklog& backlog);

  store::Store* db_;
  cache::RedisClient* redis_;
  RelayOptions options_;
  std::string max_len_;

  std::atomic<bool> failing_{false};  // Notify() does not cut the back-off short
  std::chrono::steady_clock::time_point next_prune_{};
  BackgroundLoop loop_;  // last: stopped first

  prometheus::Gauge* backlog_ = nullptr;
  prometheus::Gauge* oldest_age_ = nullptr;
  prometheus::Counter* published_ = nullptr;
  prometheus::Counter* errors_ = nullptr;
};

}  // namespace clustergov::events

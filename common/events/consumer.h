#pragma once

// A consumer of one event stream in a Redis consumer group (see docs/events.md).
//
// Each consuming service is one group (`XGROUP CREATE <stream> <group> 0 MKSTREAM`, created again
// if Redis lost it); each of its processes is one consumer in the group, with a name unique in it.
// One thread reads new entries (`XREADGROUP ... BLOCK`) and hands them, in stream order, to the
// handler, then acknowledges them (`XACK`).
//
// Exactly-once effect. The handler runs inside a Database::Write() of the consumer's store, in
// its own SAVEPOINT, together with a row in `processed_events` keyed by (group, event id). An
// event whose row exists is acknowledged without running the handler: an event delivered twice
// (republished by the relay, redelivered after a consumer died between commit and XACK) changes
// nothing the second time. A handler error rolls back its effect and its row alone.
//
// Redelivery. An entry read but not acknowledged stays pending in the group. Every
// `claim_interval` the consumer claims entries pending for longer than `claim_idle`
// (`XAUTOCLAIM`), whichever consumer they belonged to (a dead one, or this one after a handler
// error), and handles them again. Once an entry has been delivered `max_attempts` times and its
// handler still fails (or it cannot be parsed), it is moved to the dead-letter stream with its
// error and acknowledged, in one MULTI/EXEC; the other entries keep flowing meanwhile.
//
// Ordering. Entries of a stream are handed to the handler in stream order, which is the
// publisher's commit order, so with one consumer per group and handlers that succeed, events of
// one aggregate are applied in order. An entry retried after a handler error or claimed from a
// dead consumer is applied after entries that followed it. Handlers that must not go back
// compare the envelope's `revision` with the aggregate revision they hold.
//
// The stream's MAXLEN must exceed the longest lag of any group: an entry trimmed before its group
// read it is lost to that group (logged). The stream length and pending metrics show the lag.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/cache/redis.h"
#include "common/events/background_loop.h"
#include "common/store/lease.h"
#include "common/store/sql.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace clustergov::events {

// The processed-events table; the consumer applies it (component "events_consumer") on start.
store::Migrations ConsumerMigrations();

struct ConsumerOptions {
  std::string stream;    // required, e.g. "cg:events:clusters"
  std::string group;     // the consuming service, e.g. "enterprises"; required
  std::string consumer;  // this process, unique in the group; required
  // Default: "<stream>:dead:<group>".
  std::string dead_letter_stream;
  int64_t dead_letter_max_len = 100000;
  int max_attempts = 5;                              // deliveries before dead-lettering
  std::chrono::milliseconds claim_idle{30000};       // pending this long: claimed by anyone
  std::chrono::milliseconds claim_interval{5000};    // how often to look for such entries
  // XREADGROUP BLOCK. Must stay below the Redis client's I/O timeout (clamped to half of it).
  std::chrono::milliseconds block{50};
  int batch = 128;                                   // entries per read, handled in one commit
  std::chrono::milliseconds retry_backoff{250};      // after a Redis or store error
  // Processed-event rows are kept this long (longer than any redelivery can come).
  std::chrono::seconds processed_retention{7 * 24 * 3600};
  // PostgreSQL, where every replica runs the consumer: only the holder of the store lease
  // "consumer:<stream>:<group>" reads, so one consumer applies the group's events in order.
  std::chrono::milliseconds lease_ttl{10000};
};

// Runs inside the store write; must not call Store::Write() or Read(). An error rolls back
// what it did and leaves the event for a later attempt. On PostgreSQL the write may be retried
// (serialization), so a handler does nothing but SQL through the connection.
using Handler = std::function<absl::Status(store::Connection&, const v1::Envelope&)>;

// Optional: called with a batch's events before the store write that handles them; the function
// it returns is called after that write (committed or not). For what must surround the effect
// outside the store: a cache's pending-write marks for the records the events change.
using BatchScope = std::function<std::function<void()>(const std::vector<const v1::Envelope*>&)>;

class Consumer {
 public:
  // `db` and `redis` must outlive the consumer. `registry` may be null.
  Consumer(store::Store* db, cache::RedisClient* redis, ConsumerOptions options, Handler handler,
           prometheus::Registry* registry, BatchScope scope = nullptr);
  ~Consumer();  // Stop()
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Applies the processed-events migration, then starts the thread.
  absl::Status Start();
  // Graceful: the batch in hand is handled and acknowledged, then the thread ends.
  void Stop();

  // One pass without the thread: claims stale pending entries when `claim` is set, then reads
  // and handles new ones. Returns how many entries it handled, acknowledged or dead-lettered.
  absl::StatusOr<int> PollOnce(bool claim);

  const ConsumerOptions& options() const { return options_; }

 private:
  struct Entry;
  enum class Outcome { kApplied, kDuplicate, kFailed };

  absl::Status EnsureGroup();
  absl::StatusOr<std::vector<Entry>> ReadNew();
  absl::StatusOr<std::vector<Entry>> Claim();
  absl::StatusOr<int> Handle(std::vector<Entry>& entries);
  absl::Status DeadLetter(const Entry& entry, const std::string& error);
  void UpdateGauges();
  absl::Status Prune();
  bool Leading();
  std::chrono::milliseconds Pass();

  store::Store* db_;
  cache::RedisClient* redis_;
  ConsumerOptions options_;
  Handler handler_;
  BatchScope scope_;
  std::string claim_cursor_ = "0-0";  // where the next XAUTOCLAIM goes on; "0-0" after a full scan
  bool group_ready_ = false;
  std::chrono::steady_clock::time_point next_claim_{};
  std::chrono::steady_clock::time_point next_prune_{};
  bool failing_ = false;
  bool leading_ = false;
  int64_t lease_token_ = 0;
  std::chrono::steady_clock::time_point lease_renew_at_{};

  prometheus::Gauge* stream_length_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
  prometheus::Counter* handled_ = nullptr;
  prometheus::Counter* duplicates_ = nullptr;
  prometheus::Counter* failures_ = nullptr;
  prometheus::Counter* redeliveries_ = nullptr;
  prometheus::Counter* dead_letters_ = nullptr;
  prometheus::Histogram* lag_ = nullptr;

  BackgroundLoop loop_;  // last: stopped first
};

}  // namespace clustergov::events

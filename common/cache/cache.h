#pragma once

// Cache-aside over Redis, shared by every service.
//
// Keys are versioned by a prefix ("cg:v3:clusters:clusters:<store id>:", server/runtime.h) so a
// schema change never reads old values; every replica on one store shares it, across runs.
// Each entry is a Redis hash: `r`, a random revision token, `v`, the value once filled, and `w`,
// the number of writes in progress on it. Reads: HMGET; a value is a hit. Otherwise the reader
// takes the entry's token (creating the entry with a fresh random one when absent) *before* it
// loads from the store (one loader per key and token at a time in this process: single-flight),
// then fills with a compare-and-set script that stores the value only if the entry still carries
// that token and no write is in progress, with a jittered TTL.
// Writes (PendingWrite): before the write, the keys it changes are marked write-pending (`w`
// incremented, the value dropped, the entry's life cut to `claim_ttl`); a reader that finds a
// mark loads from the store and keeps nothing, in Redis or near. After the write the marks are
// released and the entries deleted (an entry another write still marks stays pending until that
// one ends). A reader that loaded before the commit then finds the entry gone, marked, or
// carrying another reader's fresh token, and its fill does nothing, however long its load took:
// a fill never puts back a value older than the store's. The same holds when an entry expires or
// is evicted meanwhile, and for readers in other processes sharing the entry. A process that dies
// between its commit and the release leaves marks that expire after `claim_ttl`, and the next
// fill reads the committed row: no stale entry outlives a crash by more than that (a write
// slower than `claim_ttl` is covered only by its release). Lists are cached under a
// per-collection generation (the token of the collection's generation entry), so deleting that
// entry drops every cached list; writes mark the generation entries they change too.
//
// Fail-open: when Redis is down or slow, reads go to the store and the error is counted. A mark
// that cannot reach Redis does not stop the write. An invalidation that could not reach Redis is
// kept and replayed before this process trusts the cache again; until then every read here
// bypasses the cache. Other replicas do not know of it: with the mark lost too, they may serve
// the value from before the write until the replay (this process's next use of the cache once
// Redis answers it) or the entry's TTL, whichever comes first. When too many are lost to track
// one by one, the cache's whole namespace is deleted instead, by an incremental SCAN ... MATCH and
// UNLINK in small steps (Redis keeps answering other clients between them).
//
// Near cache (optional, `near_ttl` > 0): an in-process copy in front of Redis for `near_ttl`.
// It is coherent with this process's writes: Invalidate() first deletes the Redis entries, then
// advances an epoch and drops the keys; a value is kept only if no invalidation happened while it
// was being fetched. Every process's writes reach it at once: marks and invalidations publish the
// keys on the namespace's channel (`{prefix}invalidations`, in the same round trip as the script
// or DEL; replays and a finished wipe publish too), and each cache with a near cache subscribes
// on its own connection and drops what it hears. The near cache serves only while that
// subscription is up: until it is established, and from the moment it drops (Redis down, the
// connection killed), the near cache is empty and unused, so an invalidation it could have
// missed is never outlived.

#include "absl/strings/string_view.h"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "common/cache/redis.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace clustergov::cache {

struct CacheOptions {
  // Versioned key prefix, e.g. "cg:v3:clusters:clusters:<store id>:".
  std::string prefix;
  std::chrono::seconds ttl{300};
  double ttl_jitter = 0.2;  // ±20%
  // How long an entry taken by a reader waits for its fill: a load slower than this is returned
  // but not cached (never stale: the fill finds the entry gone). Bounds what misses of keys that
  // never fill (loader errors) leave in Redis, and how long a write-pending mark outlives a
  // process that died before releasing it.
  std::chrono::milliseconds claim_ttl{10000};
  size_t max_pending_invalidations = 100000;
  std::chrono::milliseconds near_ttl{0};  // 0: no near cache
  size_t near_max_entries = 10000;
};

class Cache {
 public:
  // `name` labels the metrics (e.g. "clusters"). `redis` may be null: caching disabled.
  Cache(RedisClient* redis, CacheOptions options, prometheus::Registry* registry, std::string name);
  ~Cache();

  using Loader = std::function<absl::StatusOr<std::string>()>;

  // The value under `key` (without prefix), from Redis or from `loader`. Loader errors are
  // returned as they are and never cached.
  absl::StatusOr<std::string> GetOrLoad(absl::string_view key, const Loader& loader);

  // A list result cached under the current generation of `collection`.
  absl::StatusOr<std::string> GetOrLoadList(absl::string_view collection, absl::string_view query_key,
                                            const Loader& loader);

  // The near-cache copy of `key`, if any: memory only, never blocks (for answering inline in a
  // gRPC reaction). Counted as a hit when found.
  bool PeekNear(absl::string_view key, std::string* value);

  // The keys (and collection generations) miss from now on. A store write uses PendingWrite,
  // which also calls this; on its own it is for what no store write changes (a fresh lookup).
  void Invalidate(const std::vector<std::string>& keys);
  // The key that, when invalidated, drops every cached list of `collection`.
  static std::string GenerationKey(absl::string_view collection);

  // For tests and metrics.
  size_t pending_invalidations() const;
  // True while the near cache is in use (subscribed to the invalidation channel).
  bool near_live() const { return near_live_.load(); }

 private:
  struct Flight;
  struct NearShard;
  friend class PendingWrite;
  // kPending: a write is in progress on the entry (load, keep nothing).
  enum class Lookup { kHit, kMiss, kPending, kNoFill };
  std::vector<std::string> FullKeys(const std::vector<std::string>& keys) const;
  // PendingWrite's two halves: the marks before the write, their release (an invalidation) after.
  void MarkPending(const std::vector<std::string>& keys);
  // Invalidate(), or with `release` the release of this process's marks on the keys.
  void Drop(const std::vector<std::string>& keys, bool release);
  bool NearGet(const std::string& full_key, std::string* value);
  void NearPut(const std::string& full_key, const std::string& value, uint64_t epoch);
  void NearErase(const std::vector<std::string>& full_keys);
  // A hit sets `value`; a miss sets `revision`, the entry's token to fill under.
  Lookup Fetch(const std::string& full_key, std::chrono::milliseconds claim_ttl, std::string* value,
               std::string* revision);
  void Fill(const std::string& full_key, const std::string& revision, const std::string& value);
  bool FlushPending();
  // One bounded part of the namespace wipe; true once the whole namespace has been scanned.
  bool StepWipe();
  void InvalidateRedis(std::vector<std::string> full_keys, bool release);
  std::chrono::milliseconds JitteredTtl();
  absl::StatusOr<std::string> LoadOnce(const std::string& full_key, const std::string& revision,
                                       const Loader& loader, uint64_t epoch);
  void CountError();
  // The subscriber thread: SUBSCRIBE on a connection of its own, drop what is heard, clear and
  // stop using the near cache whenever the subscription is down.
  void Subscribe();
  void HandleInvalidation(absl::string_view payload);
  void ClearNear();
  // The PUBLISH of `full_keys` ("*" for the whole namespace).
  std::vector<absl::string_view> PublishCommand(const std::vector<std::string>& full_keys, std::string* payload) const;

  RedisClient* redis_;
  CacheOptions options_;

  mutable std::mutex pending_mu_;
  std::unordered_set<std::string> pending_;  // full keys whose deletion did not reach Redis
  bool pending_overflow_ = false;            // too many to track: wipe the namespace

  std::mutex wipe_mu_;  // one wiping thread at a time; others bypass the cache meanwhile
  std::string wipe_cursor_ = "0";
  uint64_t wipe_failures_ = 0;  // the client's failure count when the scan (re)started

  std::atomic<uint64_t> epoch_{0};
  std::unique_ptr<NearShard[]> near_;
  std::string channel_;
  std::atomic<bool> near_live_{false};
  std::mutex subscriber_mu_;
  std::condition_variable subscriber_cv_;  // wakes the back-off between subscriptions
  bool stopping_ = false;                  // under subscriber_mu_
  int subscriber_fd_ = -1;                 // shut down to end a blocked read on stop
  std::thread subscriber_;

  std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;

  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Counter* errors_ = nullptr;
  prometheus::Counter* bypasses_ = nullptr;
  prometheus::Counter* near_hits_ = nullptr;
  prometheus::Gauge* pending_gauge_ = nullptr;
};

// A store write about to change `keys` (named as for Invalidate): constructed before the write,
// it marks them write-pending; destroyed after it, whatever the outcome (a failed commit may still
// have committed), it releases the marks and invalidates the keys. `cache` may be null.
class PendingWrite {
 public:
  PendingWrite(Cache* cache, std::vector<std::string> keys);
  ~PendingWrite();
  PendingWrite(const PendingWrite&) = delete;
  PendingWrite& operator=(const PendingWrite&) = delete;

 private:
  Cache* cache_;
  std::vector<std::string> keys_;
};

}  // namespace clustergov::cache

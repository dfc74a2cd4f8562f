#pragma once

// Cache-aside over Redis, shared by every service.
//
// Keys are versioned by a prefix ("cg:v1:clusters:") so a schema change never reads old values.
// Reads: GET; a hit returns the value; a miss loads from the store (one loader per key at a time
// in this process: single-flight) and fills with SET NX and a jittered TTL.
// Writes: after the store commits, Invalidate() overwrites the keys with a short-lived tombstone.
// A reader that loaded the old value before the commit then fails its SET NX, so nothing stale is
// cached after a write. Lists are cached under a per-collection generation that a write tombstones.
//
// Fail-open: when Redis is down or slow, reads go to the store and the error is counted. An
// invalidation that could not reach Redis is kept and replayed before the cache is trusted again;
// until then every read bypasses the cache.
//
// Near cache (optional, `near_ttl` > 0): an in-process copy in front of Redis for `near_ttl`.
// It is coherent with this process's writes: Invalidate() first tombstones Redis, then advances
// an epoch and drops the keys; a value is kept only if no invalidation happened while it was
// being fetched. Writes made by other processes reach it within `near_ttl` (services keep one
// writer per store, so in the deployed shape every write is a local one).

#include "absl/strings/string_view.h"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

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
  // Versioned key prefix, e.g. "cg:v1:clusters:".
  std::string prefix;
  std::chrono::seconds ttl{300};
  double ttl_jitter = 0.2;  // ±20%
  std::chrono::milliseconds tombstone_ttl{2000};
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

  // Call after a write commits: the keys (and collection generations) miss from now on.
  void Invalidate(const std::vector<std::string>& keys);
  // The key that, when invalidated, drops every cached list of `collection`.
  static std::string GenerationKey(absl::string_view collection);

  // For tests and metrics.
  size_t pending_invalidations() const;

 private:
  struct Flight;
  struct NearShard;
  enum class Lookup { kHit, kMiss, kNoFill };
  bool NearGet(const std::string& full_key, std::string* value);
  void NearPut(const std::string& full_key, const std::string& value, uint64_t epoch);
  void NearErase(const std::vector<std::string>& full_keys);
  Lookup Fetch(const std::string& full_key, std::string* value);
  void Fill(const std::string& full_key, const std::string& value);
  bool FlushPending();
  void InvalidateRedis(std::vector<std::string> full_keys);
  std::chrono::milliseconds JitteredTtl();
  absl::StatusOr<std::string> LoadOnce(const std::string& full_key, const Loader& loader, bool fill,
                                       uint64_t epoch);
  void CountError();

  RedisClient* redis_;
  CacheOptions options_;

  mutable std::mutex pending_mu_;
  std::unordered_set<std::string> pending_;  // full keys whose tombstone did not reach Redis
  bool pending_overflow_ = false;

  std::atomic<uint64_t> epoch_{0};
  std::unique_ptr<NearShard[]> near_;

  std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;

  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Counter* errors_ = nullptr;
  prometheus::Counter* bypasses_ = nullptr;
  prometheus::Counter* near_hits_ = nullptr;
  prometheus::Gauge* pending_gauge_ = nullptr;
};

}  // namespace clustergov::cache

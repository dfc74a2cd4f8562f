#include "absl/strings/string_view.h"
#include "common/cache/cache.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clustergov::cache {
namespace {

// Stored values carry a one-byte marker so a tombstone can never look like data.
constexpr char kValueMarker = 'v';
constexpr absl::string_view kTombstone = "t";

std::string UniqueToken() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

}  // namespace

constexpr size_t kNearShards = 16;

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Cache::NearShard {
  struct Entry {
    std::string value;
    int64_t expires_ns;
  };
  std::mutex mu;
  std::unordered_map<std::string, Entry> entries;
};

struct Cache::Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::StatusOr<std::string> result{absl::UnknownError("pending")};
};

Cache::Cache(RedisClient* redis, CacheOptions options, prometheus::Registry* registry, std::string name)
    : redis_(redis), options_(std::move(options)) {
  if (options_.near_ttl.count() > 0) near_ = std::make_unique<NearShard[]>(kNearShards);
  if (registry != nullptr) {
    hits_ = &prometheus::BuildCounter()
                 .Name("clustergov_cache_hits_total")
                 .Help("Cache reads answered from Redis.")
                 .Register(*registry)
                 .Add({{"cache", name}});
    misses_ = &prometheus::BuildCounter()
                   .Name("clustergov_cache_misses_total")
                   .Help("Cache reads that loaded from the store.")
                   .Register(*registry)
                   .Add({{"cache", name}});
    errors_ = &prometheus::BuildCounter()
                   .Name("clustergov_cache_errors_total")
                   .Help("Redis operations that failed or were skipped while Redis was down.")
                   .Register(*registry)
                   .Add({{"cache", name}});
    bypasses_ = &prometheus::BuildCounter()
                     .Name("clustergov_cache_bypasses_total")
                     .Help("Reads served from the store without the cache (Redis down or invalidations pending).")
                     .Register(*registry)
                     .Add({{"cache", name}});
    near_hits_ = &prometheus::BuildCounter()
                      .Name("clustergov_cache_near_hits_total")
                      .Help("Cache reads answered from the in-process near cache (also counted as hits).")
                      .Register(*registry)
                      .Add({{"cache", name}});
    pending_gauge_ = &prometheus::BuildGauge()
                          .Name("clustergov_cache_pending_invalidations")
                          .Help("Invalidations waiting for Redis to come back.")
                          .Register(*registry)
                          .Add({{"cache", name}});
  }
}

Cache::~Cache() = default;

bool Cache::NearGet(const std::string& full_key, std::string* value) {
  if (!near_) return false;
  auto& shard = near_[std::hash<std::string>()(full_key) % kNearShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(full_key);
  if (it == shard.entries.end()) return false;
  if (it->second.expires_ns < SteadyNowNs()) {
    shard.entries.erase(it);
    return false;
  }
  *value = it->second.value;
  return true;
}

bool Cache::PeekNear(absl::string_view key, std::string* value) {
  if (!near_ || !NearGet(absl::StrCat(options_.prefix, key), value)) return false;
  if (hits_ != nullptr) hits_->Increment();
  if (near_hits_ != nullptr) near_hits_->Increment();
  return true;
}

void Cache::NearPut(const std::string& full_key, const std::string& value, uint64_t epoch) {
  if (!near_) return;
  auto& shard = near_[std::hash<std::string>()(full_key) % kNearShards];
  const int64_t now = SteadyNowNs();
  std::lock_guard<std::mutex> lock(shard.mu);
  // Checked under the shard lock: an Invalidate() that advanced the epoch after `epoch` was read
  // either already erased this key (and the value is not put) or will erase it after this put.
  if (epoch_.load() != epoch) return;
  const size_t limit = std::max<size_t>(1, options_.near_max_entries / kNearShards);
  if (shard.entries.size() >= limit) {
    for (auto it = shard.entries.begin(); it != shard.entries.end();) {
      it = it->second.expires_ns < now ? shard.entries.erase(it) : std::next(it);
    }
    if (shard.entries.size() >= limit) shard.entries.clear();
  }
  shard.entries[full_key] = {value, now + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.near_ttl).count()};
}

void Cache::NearErase(const std::vector<std::string>& full_keys) {
  if (!near_) return;
  for (const auto& k : full_keys) {
    auto& shard = near_[std::hash<std::string>()(k) % kNearShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.entries.erase(k);
  }
}

std::string Cache::GenerationKey(absl::string_view collection) { return absl::StrCat("gen:", collection); }

void Cache::CountError() {
  if (errors_ != nullptr) errors_->Increment();
}

std::chrono::milliseconds Cache::JitteredTtl() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> dist(1.0 - options_.ttl_jitter, 1.0 + options_.ttl_jitter);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl).count();
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(ms) * dist(rng)) + 1);
}

size_t Cache::pending_invalidations() const {
  std::lock_guard<std::mutex> lock(pending_mu_);
  return pending_.size() + (pending_overflow_ ? 1 : 0);
}

bool Cache::FlushPending() {
  std::vector<std::string> keys;
  bool overflow = false;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    if (pending_.empty() && !pending_overflow_) return true;
    keys.assign(pending_.begin(), pending_.end());
    overflow = pending_overflow_;
  }
  if (redis_ == nullptr || !redis_->available()) return false;
  std::string px = std::to_string(options_.tombstone_ttl.count());
  // Outlives `commands`, which only holds views.
  const std::string pattern = absl::StrCat(options_.prefix, "*");
  std::vector<std::vector<absl::string_view>> commands;
  if (overflow) {
    // Too many lost invalidations to track one by one: drop this service's namespace.
    // Rare (a long outage under heavy writes), so a SCAN-free FLUSH of our prefix is done by
    // tombstoning nothing and clearing everything we own.
    commands.push_back({"EVAL",
                        "local c='0' repeat local r=redis.call('SCAN',c,'MATCH',ARGV[1],'COUNT',1000) "
                        "c=r[1] for _,k in ipairs(r[2]) do redis.call('DEL',k) end until c=='0' return 1",
                        "0", pattern});
  }
  for (const auto& k : keys) commands.push_back({"SET", k, kTombstone, "PX", px});
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) {
    CountError();
    return false;
  }
  std::lock_guard<std::mutex> lock(pending_mu_);
  for (const auto& k : keys) pending_.erase(k);
  if (overflow) pending_overflow_ = false;
  if (pending_gauge_ != nullptr) pending_gauge_->Set(static_cast<double>(pending_.size()));
  log::Info("cache invalidations replayed", {{"count", std::to_string(keys.size())}});
  return pending_.empty() && !pending_overflow_;
}

Cache::Lookup Cache::Fetch(const std::string& full_key, std::string* value) {
  if (redis_ == nullptr) return Lookup::kNoFill;
  if (!FlushPending()) {
    if (bypasses_ != nullptr) bypasses_->Increment();
    if (!redis_->available()) CountError();
    return Lookup::kNoFill;
  }
  auto reply = redis_->Command({"GET", full_key});
  if (!reply.ok()) {
    CountError();
    if (bypasses_ != nullptr) bypasses_->Increment();
    return Lookup::kNoFill;
  }
  if (reply->type == RedisReply::Type::kString && !reply->str.empty() && reply->str[0] == kValueMarker) {
    value->assign(reply->str, 1, std::string::npos);
    return Lookup::kHit;
  }
  if (reply->type == RedisReply::Type::kString && reply->str == kTombstone) {
    return Lookup::kNoFill;  // just written: the SET NX would fail anyway
  }
  return Lookup::kMiss;
}

void Cache::Fill(const std::string& full_key, const std::string& value) {
  std::string stored;
  stored.reserve(value.size() + 1);
  stored.push_back(kValueMarker);
  stored.append(value);
  std::string px = std::to_string(JitteredTtl().count());
  auto reply = redis_->Command({"SET", full_key, stored, "PX", px, "NX"});
  if (!reply.ok()) CountError();
}

absl::StatusOr<std::string> Cache::LoadOnce(const std::string& full_key, const Loader& loader, bool fill,
                                            uint64_t epoch) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(flights_mu_);
    auto it = flights_.find(full_key);
    if (it == flights_.end()) {
      flight = std::make_shared<Flight>();
      flights_.emplace(full_key, flight);
      leader = true;
    } else {
      flight = it->second;
    }
  }
  if (!leader) {
    std::unique_lock<std::mutex> lock(flight->mu);
    flight->cv.wait(lock, [&] { return flight->done; });
    return flight->result;
  }
  absl::StatusOr<std::string> result = loader();
  if (result.ok() && fill) Fill(full_key, *result);
  // Only the leader keeps the value near, under the epoch it read before loading: a follower's
  // epoch may be newer than the load it shares.
  if (result.ok()) NearPut(full_key, *result, epoch);
  {
    std::lock_guard<std::mutex> lock(flights_mu_);
    flights_.erase(full_key);
  }
  {
    std::lock_guard<std::mutex> lock(flight->mu);
    flight->result = result;
    flight->done = true;
  }
  flight->cv.notify_all();
  return result;
}

absl::StatusOr<std::string> Cache::GetOrLoad(absl::string_view key, const Loader& loader) {
  std::string full_key = absl::StrCat(options_.prefix, key);
  std::string value;
  if (NearGet(full_key, &value)) {
    if (hits_ != nullptr) hits_->Increment();
    if (near_hits_ != nullptr) near_hits_->Increment();
    return value;
  }
  const uint64_t epoch = epoch_.load();
  switch (Fetch(full_key, &value)) {
    case Lookup::kHit:
      if (hits_ != nullptr) hits_->Increment();
      NearPut(full_key, value, epoch);
      return value;
    case Lookup::kMiss:
      if (misses_ != nullptr) misses_->Increment();
      return LoadOnce(full_key, loader, /*fill=*/true, epoch);
    case Lookup::kNoFill:
      break;
  }
  if (misses_ != nullptr) misses_->Increment();
  auto loaded = loader();
  if (loaded.ok()) NearPut(full_key, *loaded, epoch);
  return loaded;
}

absl::StatusOr<std::string> Cache::GetOrLoadList(absl::string_view collection, absl::string_view query_key,
                                                 const Loader& loader) {
  if (redis_ == nullptr) return loader();
  std::string gen_key = absl::StrCat(options_.prefix, GenerationKey(collection));
  std::string generation;
  const uint64_t epoch = epoch_.load();
  if (NearGet(gen_key, &generation)) {
    return GetOrLoad(absl::StrCat("list:", collection, ":", generation, ":", query_key), loader);
  }
  switch (Fetch(gen_key, &generation)) {
    case Lookup::kHit:
      NearPut(gen_key, generation, epoch);
      break;
    case Lookup::kMiss: {
      // No generation yet (first use, or Redis restarted): start one. A unique token rather than
      // a counter, so a lost generation can never come back to match old entries.
      std::string fresh = UniqueToken();
      Fill(gen_key, fresh);
      if (Fetch(gen_key, &generation) != Lookup::kHit) {
        if (misses_ != nullptr) misses_->Increment();
        return loader();
      }
      NearPut(gen_key, generation, epoch);
      break;
    }
    case Lookup::kNoFill:
      if (misses_ != nullptr) misses_->Increment();
      return loader();
  }
  return GetOrLoad(absl::StrCat("list:", collection, ":", generation, ":", query_key), loader);
}

void Cache::Invalidate(const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(absl::StrCat(options_.prefix, k));
  // Redis first, then the near cache: a concurrent reader that fetched the old value from Redis
  // before the tombstone sees the epoch move and does not keep it.
  InvalidateRedis(full);
  epoch_.fetch_add(1);
  NearErase(full);
}

void Cache::InvalidateRedis(std::vector<std::string> full) {
  if (redis_ == nullptr) return;
  std::string px = std::to_string(options_.tombstone_ttl.count());
  std::vector<std::vector<absl::string_view>> commands;
  for (const auto& k : full) commands.push_back({"SET", k, kTombstone, "PX", px});
  bool ok = false;
  if (FlushPending()) {
    ok = redis_->Pipeline(commands).ok();
  }
  if (ok) return;
  CountError();
  std::lock_guard<std::mutex> lock(pending_mu_);
  for (auto& k : full) {
    if (pending_.size() >= options_.max_pending_invalidations) {
      pending_overflow_ = true;
      break;
    }
    pending_.insert(std::move(k));
  }
  if (pending_gauge_ != nullptr) pending_gauge_->Set(static_cast<double>(pending_.size()));
  log::Warn("cache invalidation deferred: redis unavailable", {{"keys", std::to_string(full.size())}});
}

}  // namespace clustergov::cache

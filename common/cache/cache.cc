#include "absl/strings/string_view.h"
#include "common/cache/cache.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clustergov::cache {
namespace {

// An entry is a hash: the revision token the reader loads under, the value once filled, and the
// number of writes in progress on it (write-pending marks).
constexpr absl::string_view kRevisionField = "r";
constexpr absl::string_view kValueField = "v";
constexpr absl::string_view kWritesField = "w";

// Takes the entry's revision token, creating the entry with ARGV[1] when it has none; answers
// like HMGET key r v w. KEYS[1] the entry, ARGV[2] how long a created entry lives (ms).
constexpr absl::string_view kClaimScript =
    "if redis.call('HSETNX', KEYS[1], 'r', ARGV[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return redis.call('HMGET', KEYS[1], 'r', 'v', 'w')";

// Stores the value only if the entry still carries the token the reader loaded under (an
// invalidation deleted it otherwise) and no write is in progress on it. KEYS[1] the entry; ARGV:
// token, value, TTL (ms).
constexpr absl::string_view kFillScript =
    "if redis.call('HGET', KEYS[1], 'r') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'w') == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], 'v', ARGV[2]) redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";

// Marks each entry of KEYS write-pending: one more write in progress, the value dropped, the
// entry (and so the mark) gone after ARGV[1] ms unless released sooner.
constexpr absl::string_view kMarkScript =
    "for _, k in ipairs(KEYS) do redis.call('HINCRBY', k, 'w', 1) redis.call('HDEL', k, 'v') "
    "redis.call('PEXPIRE', k, ARGV[1]) end return 1";

// After a write: one write fewer on each entry of KEYS; an entry no other write is marking is
// deleted (the invalidation). One whose mark was lost (expired, or never set) is deleted too.
constexpr absl::string_view kReleaseScript =
    "for _, k in ipairs(KEYS) do if redis.call('HINCRBY', k, 'w', -1) <= 0 then redis.call('DEL', k) end end "
    "return 1";

// Pending invalidations replayed per DEL, and per call of FlushPending.
constexpr size_t kDeleteBatch = 1000;
constexpr size_t kMaxReplayPerCall = 10 * kDeleteBatch;
// The namespace wipe: keys examined per SCAN step, and the time one call spends on it (at least
// one step). Each step is one short command, so Redis serves other clients in between.
constexpr absl::string_view kWipeScanCount = "1000";
constexpr std::chrono::milliseconds kWipeBudget{5};

// A random revision token. 64 random bits: two readers never draw the same one in practice, and
// an entry that is deleted and taken again never gets its old token back.
std::string UniqueToken() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

// `prefix` as a SCAN MATCH pattern that matches exactly the keys starting with it.
std::string PrefixPattern(absl::string_view prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('*');
  return out;
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
    : redis_(redis), options_(std::move(options)), channel_(absl::StrCat(options_.prefix, "invalidations")) {
  if (options_.near_ttl.count() > 0 && redis_ != nullptr) {
    near_ = std::make_unique<NearShard[]>(kNearShards);
    subscriber_ = std::thread([this] { Subscribe(); });
  }
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

Cache::~Cache() {
  if (!subscriber_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(subscriber_mu_);
    stopping_ = true;
    if (subscriber_fd_ >= 0) shutdown(subscriber_fd_, SHUT_RDWR);  // ends the blocked read
  }
  subscriber_cv_.notify_all();
  subscriber_.join();
}

void Cache::Subscribe() {
  const RedisOptions& ro = redis_->options();
  auto timeval_of = [](std::chrono::milliseconds d) {
    return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
  };
  while (true) {
    redisContext* ctx = redisConnectWithTimeout(ro.host.c_str(), ro.port, timeval_of(ro.connect_timeout));
    bool stop = false;
    if (ctx != nullptr && ctx->err == 0) {
      redisEnableKeepAlive(ctx);  // a server gone without closing the connection is noticed
      {
        std::lock_guard<std::mutex> lock(subscriber_mu_);
        stop = stopping_;
        subscriber_fd_ = ctx->fd;
      }
      auto* ack = stop ? nullptr
                       : static_cast<redisReply*>(redisCommand(ctx, "SUBSCRIBE %b", channel_.data(), channel_.size()));
      if (ack != nullptr && ack->type == REDIS_REPLY_ARRAY) {
        // Whatever was cached before now may have missed an invalidation.
        ClearNear();
        near_live_.store(true);
        log::Info("cache near cache live", {{"channel", channel_}});
        void* raw = nullptr;
        while (redisGetReply(ctx, &raw) == REDIS_OK && raw != nullptr) {
          auto* m = static_cast<redisReply*>(raw);
          if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->type == REDIS_REPLY_STRING &&
              absl::string_view(m->element[0]->str, m->element[0]->len) == "message" &&
              m->element[2]->type == REDIS_REPLY_STRING) {
            HandleInvalidation(absl::string_view(m->element[2]->str, m->element[2]->len));
          }
          freeReplyObject(m);
          raw = nullptr;
        }
      }
      if (ack != nullptr) freeReplyObject(ack);
    }
    if (near_live_.exchange(false)) log::Warn("cache near cache off: invalidation channel lost", {{"channel", channel_}});
    ClearNear();
    if (ctx != nullptr) redisFree(ctx);
    std::unique_lock<std::mutex> lock(subscriber_mu_);
    subscriber_fd_ = -1;
    if (subscriber_cv_.wait_for(lock, ro.retry_backoff, [this] { return stopping_; })) return;
  }
}

void Cache::HandleInvalidation(absl::string_view payload) {
  epoch_.fetch_add(1);
  if (payload == "*") {
    ClearNear();
    return;
  }
  std::vector<std::string> keys;
  for (absl::string_view k : absl::StrSplit(payload, '\n', absl::SkipEmpty())) keys.emplace_back(k);
  NearErase(keys);
}

void Cache::ClearNear() {
  if (!near_) return;
  epoch_.fetch_add(1);
  for (size_t i = 0; i < kNearShards; ++i) {
    std::lock_guard<std::mutex> lock(near_[i].mu);
    near_[i].entries.clear();
  }
}

std::vector<absl::string_view> Cache::PublishCommand(const std::vector<std::string>& full_keys,
                                                     std::string* payload) const {
  *payload = absl::StrJoin(full_keys, "\n");
  return {"PUBLISH", channel_, *payload};
}

bool Cache::NearGet(const std::string& full_key, std::string* value) {
  if (!near_ || !near_live_.load()) return false;
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
  if (!near_ || !near_live_.load()) return;
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
    overflow = pending_overflow_;
    for (const auto& k : pending_) {
      if (keys.size() >= kMaxReplayPerCall) break;
      keys.push_back(k);
    }
  }
  if (redis_ == nullptr || !redis_->available()) return false;
  // Too many lost invalidations to track one by one: delete this cache's whole namespace first.
  if (overflow && !StepWipe()) return false;
  std::string payload;
  if (overflow) {
    // Every replica's near cache drops everything (best effort: a replica that misses this lost
    // its subscription too, and so its near cache).
    if (!redis_->Command(PublishCommand({"*"}, &payload)).ok()) CountError();
  }
  if (!keys.empty()) {
    std::vector<std::vector<absl::string_view>> commands;
    for (size_t i = 0; i < keys.size(); i += kDeleteBatch) {
      std::vector<absl::string_view> del{"DEL"};
      for (size_t j = i; j < keys.size() && j < i + kDeleteBatch; ++j) del.push_back(keys[j]);
      commands.push_back(std::move(del));
    }
    commands.push_back(PublishCommand(keys, &payload));
    if (!redis_->Pipeline(commands).ok()) {
      CountError();
      return false;
    }
  }
  std::lock_guard<std::mutex> lock(pending_mu_);
  for (const auto& k : keys) pending_.erase(k);
  if (pending_gauge_ != nullptr) pending_gauge_->Set(static_cast<double>(pending_.size()));
  if (!keys.empty()) log::Info("cache invalidations replayed", {{"count", std::to_string(keys.size())}});
  return pending_.empty() && !pending_overflow_;
}

bool Cache::StepWipe() {
  // Another thread is at it: this caller bypasses the cache meanwhile, like during an outage.
  std::unique_lock<std::mutex> wiping(wipe_mu_, std::try_to_lock);
  if (!wiping.owns_lock()) return false;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    if (!pending_overflow_) return true;  // finished by another thread
  }
  // A SCAN that runs from cursor 0 back to 0 returns every key present during the whole
  // iteration, and each step is one short command. Every entry that can hold a stale value was
  // taken before the lost invalidation (this process bypasses the cache until the wipe is done,
  // so it takes none meanwhile) and is still there when the scan reaches it, or already gone.
  // A cursor is only valid on the server that issued it: after any failure of the client (Redis
  // may have restarted, possibly from a snapshot) the scan starts over.
  const std::string pattern = PrefixPattern(options_.prefix);
  const auto deadline = std::chrono::steady_clock::now() + kWipeBudget;
  size_t deleted = 0;
  do {
    const uint64_t failures = redis_->failures();
    if (wipe_cursor_ == "0" || failures != wipe_failures_) {
      wipe_cursor_ = "0";
      wipe_failures_ = failures;
    }
    auto scan = redis_->Command({"SCAN", wipe_cursor_, "MATCH", pattern, "COUNT", kWipeScanCount});
    if (!scan.ok() || scan->type != RedisReply::Type::kArray || scan->elements.size() != 2) {
      CountError();
      return false;
    }
    const auto& found = scan->elements[1].elements;
    if (!found.empty()) {
      std::vector<absl::string_view> unlink{"UNLINK"};
      for (const auto& k : found) unlink.push_back(k.str);
      if (!redis_->Command(unlink).ok()) {
        CountError();
        return false;
      }
      deleted += found.size();
    }
    wipe_cursor_ = scan->elements[0].str;
  } while (wipe_cursor_ != "0" && std::chrono::steady_clock::now() < deadline);
  if (wipe_cursor_ != "0") return false;
  std::lock_guard<std::mutex> lock(pending_mu_);
  pending_overflow_ = false;
  log::Info("cache namespace wiped after lost invalidations", {{"last_step_keys", std::to_string(deleted)}});
  return true;
}

Cache::Lookup Cache::Fetch(const std::string& full_key, std::chrono::milliseconds claim_ttl, std::string* value,
                           std::string* revision) {
  if (redis_ == nullptr) return Lookup::kNoFill;
  if (!FlushPending()) {
    if (bypasses_ != nullptr) bypasses_->Increment();
    if (!redis_->available()) CountError();
    return Lookup::kNoFill;
  }
  auto reply = redis_->Command({"HMGET", full_key, kRevisionField, kValueField, kWritesField});
  if (reply.ok() && reply->type == RedisReply::Type::kArray && reply->elements.size() == 3 &&
      reply->elements[0].type != RedisReply::Type::kString && reply->elements[2].type != RedisReply::Type::kString) {
    // No entry yet: take one under a fresh token before loading.
    const std::string token = UniqueToken();
    const std::string px = std::to_string(claim_ttl.count());
    reply = redis_->Command({"EVAL", kClaimScript, "1", full_key, token, px});
  }
  if (!reply.ok() || reply->type != RedisReply::Type::kArray || reply->elements.size() != 3) {
    CountError();
    if (bypasses_ != nullptr) bypasses_->Increment();
    return Lookup::kNoFill;
  }
  // A write is in progress: its commit may come at any moment, so nothing read now is kept.
  if (reply->elements[2].type == RedisReply::Type::kString) return Lookup::kPending;
  if (reply->elements[0].type != RedisReply::Type::kString) {
    CountError();
    if (bypasses_ != nullptr) bypasses_->Increment();
    return Lookup::kNoFill;
  }
  if (reply->elements[1].type == RedisReply::Type::kString) {
    *value = std::move(reply->elements[1].str);
    return Lookup::kHit;
  }
  *revision = std::move(reply->elements[0].str);
  return Lookup::kMiss;
}

void Cache::Fill(const std::string& full_key, const std::string& revision, const std::string& value) {
  const std::string px = std::to_string(JitteredTtl().count());
  auto reply = redis_->Command({"EVAL", kFillScript, "1", full_key, revision, value, px});
  if (!reply.ok()) CountError();
}

absl::StatusOr<std::string> Cache::LoadOnce(const std::string& full_key, const std::string& revision,
                                            const Loader& loader, uint64_t epoch) {
  // Readers share a load only under the same revision token: one that took a fresh token (the
  // entry was invalidated after the running load began) loads on its own rather than be handed
  // a value that may predate the write it saw complete.
  const std::string flight_key = absl::StrCat(full_key, "\n", revision);
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(flights_mu_);
    auto it = flights_.find(flight_key);
    if (it == flights_.end()) {
      flight = std::make_shared<Flight>();
      flights_.emplace(flight_key, flight);
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
  if (result.ok()) Fill(full_key, revision, *result);
  // Only the leader keeps the value near, under the epoch it read before loading: a follower's
  // epoch may be newer than the load it shares.
  if (result.ok()) NearPut(full_key, *result, epoch);
  {
    std::lock_guard<std::mutex> lock(flights_mu_);
    flights_.erase(flight_key);
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
  std::string revision;
  switch (Fetch(full_key, options_.claim_ttl, &value, &revision)) {
    case Lookup::kHit:
      if (hits_ != nullptr) hits_->Increment();
      NearPut(full_key, value, epoch);
      return value;
    case Lookup::kMiss:
      if (misses_ != nullptr) misses_->Increment();
      return LoadOnce(full_key, revision, loader, epoch);
    case Lookup::kPending:
      if (misses_ != nullptr) misses_->Increment();
      return loader();
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
  if (!NearGet(gen_key, &generation)) {
    // The generation is the token of the collection's generation entry, which never holds a
    // value: taken by the first reader, deleted by an invalidation, taken anew (a random token,
    // so the lists of an old generation never match again) by the next reader.
    std::string unused;
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl);
    if (Fetch(gen_key, ttl, &unused, &generation) != Lookup::kMiss) {
      if (misses_ != nullptr) misses_->Increment();
      return loader();
    }
    NearPut(gen_key, generation, epoch);
  }
  return GetOrLoad(absl::StrCat("list:", collection, ":", generation, ":", query_key), loader);
}

std::vector<std::string> Cache::FullKeys(const std::vector<std::string>& keys) const {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(absl::StrCat(options_.prefix, k));
  return full;
}

void Cache::Invalidate(const std::vector<std::string>& keys) { Drop(keys, /*release=*/false); }

void Cache::Drop(const std::vector<std::string>& keys, bool release) {
  if (keys.empty()) return;
  std::vector<std::string> full = FullKeys(keys);
  // Redis first, then the near cache: a concurrent reader that fetched the old value from Redis
  // before the deletion sees the epoch move and does not keep it.
  InvalidateRedis(full, release);
  epoch_.fetch_add(1);
  NearErase(full);
}

void Cache::MarkPending(const std::vector<std::string>& keys) {
  if (redis_ == nullptr || keys.empty()) return;
  std::vector<std::string> full = FullKeys(keys);
  const std::string count = std::to_string(full.size());
  const std::string px = std::to_string(options_.claim_ttl.count());
  std::vector<absl::string_view> mark{"EVAL", kMarkScript, count};
  for (const auto& k : full) mark.push_back(k);
  mark.push_back(px);
  // Published too: other replicas' near caches drop the keys now, and keep nothing of them until
  // the marks are gone (a pending entry is never kept near).
  std::string payload;
  if (!redis_->Pipeline({mark, PublishCommand(full, &payload)}).ok()) {
    // The write goes on: its invalidation afterwards (replayed if need be) still applies.
    CountError();
  }
}

void Cache::InvalidateRedis(std::vector<std::string> full, bool release) {
  if (redis_ == nullptr) return;
  const std::string count = std::to_string(full.size());
  std::vector<absl::string_view> drop;
  if (release) {
    drop = {"EVAL", kReleaseScript, count};
  } else {
    drop = {"DEL"};
  }
  for (const auto& k : full) drop.push_back(k);
  std::string payload;
  bool ok = false;
  if (FlushPending()) {
    // The deletion and the news of it to every replica's near cache, in one round trip.
    ok = redis_->Pipeline({drop, PublishCommand(full, &payload)}).ok();
  }
  if (ok) return;
  CountError();
  std::lock_guard<std::mutex> lock(pending_mu_);
  for (auto& k : full) {
    if (pending_.size() >= options_.max_pending_invalidations) {
      // The wipe of the namespace covers every key: stop tracking them one by one.
      pending_overflow_ = true;
      pending_.clear();
      break;
    }
    pending_.insert(std::move(k));
  }
  if (pending_gauge_ != nullptr) pending_gauge_->Set(static_cast<double>(pending_.size()));
  log::Warn("cache invalidation deferred: redis unavailable", {{"keys", std::to_string(full.size())}});
}

}  // namespace clustergov::cache

namespace clustergov::cache {

PendingWrite::PendingWrite(Cache* cache, std::vector<std::string> keys) : cache_(cache), keys_(std::move(keys)) {
  if (cache_ != nullptr) cache_->MarkPending(keys_);
}

PendingWrite::~PendingWrite() {
  if (cache_ != nullptr) cache_->Drop(keys_, /*release=*/true);
}

}  // namespace clustergov::cache

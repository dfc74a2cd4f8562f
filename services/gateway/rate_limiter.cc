#include "services/gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace clustergov::gateway {

RateLimiter::RateLimiter(double rate, double burst)
    : rate_(rate), burst_(burst > 0 ? burst : std::max(1.0, 2 * rate)) {}

int RateLimiter::Acquire(absl::string_view key) {
  if (rate_ <= 0) return 0;
  std::string k(key);
  Shard& shard = shards_[std::hash<std::string>()(k) % kShards];
  Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.buckets.size() >= kMaxPerShard) {
    // Drop buckets that have refilled completely: forgetting them changes nothing.
    for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
      double elapsed = std::chrono::duration<double>(now - it->second.last).count();
      if (it->second.tokens + elapsed * rate_ >= burst_) {
        it = shard.buckets.erase(it);
      } else {
        ++it;
      }
    }
  }
  auto [it, inserted] = shard.buckets.try_emplace(std::move(k), Bucket{burst_, now});
  Bucket& b = it->second;
  if (!inserted) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace clustergov::gateway

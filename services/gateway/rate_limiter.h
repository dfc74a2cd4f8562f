#pragma once

// Per-client rate limiting: a token bucket per key (the client IP), refilled at `rate` tokens per
// second up to `burst`. Sharded locks; idle buckets are dropped when a shard grows large.

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/strings/string_view.h"

namespace clustergov::gateway {

class RateLimiter {
 public:
  // rate <= 0 disables limiting; burst <= 0 means max(1, 2 * rate).
  RateLimiter(double rate, double burst);

  bool enabled() const { return rate_ > 0; }
  // Takes a token for `key`. 0 when allowed; otherwise the whole seconds until one is available
  // (for Retry-After, at least 1).
  int Acquire(absl::string_view key);

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 4096;

  double rate_;
  double burst_;
  std::array<Shard, kShards> shards_;
};

}  // namespace clustergov::gateway

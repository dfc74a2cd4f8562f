#pragma once

// One Redis client for every service (hiredis 0.14).
//
// A redisContext is not thread-safe and is unusable after an error, so the client keeps a small
// pool of contexts, each checked out by one thread at a time (RAII) and discarded on any error.
// Connect and I/O timeouts are tight and re-applied on every new connection. After a failure the
// client stops trying for `retry_backoff` (a circuit breaker), so a dead Redis costs callers
// nothing but a counted error; then the next call reconnects by itself.

#include "absl/strings/string_view.h"
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <vector>

#include "absl/status/statusor.h"

struct redisContext;

namespace clustergov::cache {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int pool_size = 16;
  std::chrono::milliseconds connect_timeout{100};
  std::chrono::milliseconds io_timeout{100};
  std::chrono::milliseconds retry_backoff{500};
};

// A reply reduced to what clustergov uses.
struct RedisReply {
  enum class Type { kNil, kString, kInteger, kStatus, kArray };
  Type type = Type::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<RedisReply> elements;
};

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command, e.g. {"SET", key, value, "PX", "1000"}. UNAVAILABLE when Redis is down, slow
  // or in back-off; a Redis error reply is INTERNAL.
  absl::StatusOr<RedisReply> Command(const std::vector<absl::string_view>& argv);
  // Several commands in one round trip; all succeed or the whole call fails.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<absl::string_view>>& commands);

  // One PING like any command (pooled connection, circuit breaker, timeouts): the startup check (a
  // service still starts without Redis) and the Runtime's periodic clustergov_redis_up probe.
  absl::Status Ping();
  // False while in back-off after a failure.
  bool available() const;
  // How many failures (connect, I/O, timeout) the client has had: a change means the server may
  // not be the one seen before (restarted), e.g. for state such as a SCAN cursor.
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  const RedisOptions& options() const { return options_; }

 private:
  class Lease;
  redisContext* Acquire();
  void Release(redisContext* ctx, bool healthy);
  redisContext* Connect();
  void MarkDown();

  RedisOptions options_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
  std::atomic<int64_t> down_until_ns_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace clustergov::cache

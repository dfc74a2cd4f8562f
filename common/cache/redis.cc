#include "absl/strings/string_view.h"
#include "common/cache/redis.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace clustergov::cache {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<RedisReply> Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::kNil;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) {
        auto e = Convert(r->element[i]);
        if (!e.ok()) return e.status();
        out.elements.push_back(std::move(*e));
      }
      break;
    case REDIS_REPLY_ERROR:
      return absl::InternalError(absl::StrCat("redis error: ", std::string(r->str, r->len)));
    default:
      return absl::InternalError("unexpected redis reply");
  }
  return out;
}

}  // namespace

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
  if (options_.pool_size < 1) options_.pool_size = 1;
}

RedisClient::~RedisClient() {
  std::lock_guard<std::mutex> lock(mu_);
  for (redisContext* c : idle_) redisFree(c);
}

bool RedisClient::available() const { return NowNs() >= down_until_ns_.load(std::memory_order_relaxed); }

void RedisClient::MarkDown() {
  failures_.fetch_add(1, std::memory_order_relaxed);
  int64_t until = NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.retry_backoff).count();
  down_until_ns_.store(until, std::memory_order_relaxed);
  // Every pooled context may be connected to the dead server: drop them all.
  std::vector<redisContext*> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stale.swap(idle_);
  }
  for (redisContext* c : stale) redisFree(c);
}

redisContext* RedisClient::Connect() {
  timeval connect_tv = ToTimeval(options_.connect_timeout);
  redisContext* ctx = redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_tv);
  if (ctx == nullptr || ctx->err != 0) {
    if (ctx != nullptr) redisFree(ctx);
    return nullptr;
  }
  // Re-applied on every new connection: a fresh context has no I/O timeout.
  if (redisSetTimeout(ctx, ToTimeval(options_.io_timeout)) != REDIS_OK) {
    redisFree(ctx);
    return nullptr;
  }
  return ctx;
}

redisContext* RedisClient::Acquire() {
  if (!available()) return nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  redisContext* c = Connect();
  if (c == nullptr) MarkDown();
  return c;
}

void RedisClient::Release(redisContext* ctx, bool healthy) {
  if (!healthy || ctx->err != 0) {
    redisFree(ctx);
    MarkDown();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(idle_.size()) < options_.pool_size) {
    idle_.push_back(ctx);
    return;
  }
  redisFree(ctx);
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<absl::string_view>& argv) {
  auto replies = Pipeline({argv});
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<absl::string_view>>& commands) {
  redisContext* ctx = Acquire();
  if (ctx == nullptr) return absl::UnavailableError("redis unavailable");
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& argv : commands) {
    args.clear();
    lens.clear();
    for (auto a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK) {
      Release(ctx, false);
      return absl::UnavailableError("redis write failed");
    }
  }
  std::vector<RedisReply> out;
  absl::Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
      Release(ctx, false);
      return absl::UnavailableError("redis read failed or timed out");
    }
    auto* reply = static_cast<redisReply*>(raw);
    auto converted = Convert(reply);
    freeReplyObject(reply);
    if (!converted.ok()) {
      if (first_error.ok()) first_error = converted.status();
      continue;
    }
    out.push_back(std::move(*converted));
  }
  Release(ctx, true);
  if (!first_error.ok()) return first_error;
  return out;
}

absl::Status RedisClient::Ping() {
  auto reply = Command({"PING"});
  if (!reply.ok()) {
    return absl::UnavailableError(
        absl::StrCat("redis at ", options_.host, ":", options_.port, " is not reachable"));
  }
  return absl::OkStatus();
}

}  // namespace clustergov::cache

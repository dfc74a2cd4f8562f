// Tests for the Redis client (common/cache/redis.h) and the cache-aside layer
// (common/cache/cache.h) against a real redis-server child process, and for the namespace the
// server runtime gives its caches (common/server/runtime.h) on real SQLite stores.

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/cache/cache.h"
#include "common/cache/redis.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/test_support.h"

namespace clustergov::cache {
namespace {

using ::clustergov::testing::RedisServer;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

// Calls `condition` until it is true, at most `attempts` times with `pause` in between.
bool PollUntil(const std::function<bool()>& condition, int attempts = 400,
               std::chrono::milliseconds pause = std::chrono::milliseconds(25)) {
  for (int i = 0; i < attempts; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(pause);
  }
  return condition();
}

RedisOptions ClientOptions(int port, std::chrono::milliseconds io_timeout = 2000ms) {
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.connect_timeout = 1000ms;
  o.io_timeout = io_timeout;
  o.retry_backoff = 50ms;
  return o;
}

double MetricValue(prometheus::Registry& registry, const std::string& name, const std::string& cache) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      for (const auto& label : m.label) {
        if (label.name == "cache" && label.value == cache) total += m.counter.value + m.gauge.value;
      }
    }
  }
  return total;
}

// A loader that counts its calls and returns `value` (or `error` when set).
struct CountingLoader {
  std::atomic<int> calls{0};
  std::string value;
  absl::Status error;

  explicit CountingLoader(std::string v) : value(std::move(v)) {}
  Cache::Loader fn() {
    return [this]() -> absl::StatusOr<std::string> {
      ++calls;
      if (!error.ok()) return error;
      return value;
    };
  }
};

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// The scheduler state letter of one of our threads ('R' running, 'S' sleeping, ...).
char ThreadState(pid_t tid) {
  std::ifstream in(absl::StrCat("/proc/self/task/", tid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return '?';
  return stat[paren + 2];
}

// ================================================================== RedisClient

class RedisClientTest : public ::testing::Test {
 protected:
  RedisServer redis_;
};

TEST_F(RedisClientTest, CommandRoundTrip) {
  RedisClient client(ClientOptions(redis_.port()));
  ASSERT_TRUE(client.Ping().ok());
  EXPECT_TRUE(client.available());

  const std::string binary("a\0b\xff\xfe\0", 6);
  auto set = client.Command({"SET", "bin", binary});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  EXPECT_EQ(set->str, "OK");

  auto get = client.Command({"GET", "bin"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->type, RedisReply::Type::kString);
  EXPECT_EQ(get->str, binary);
  EXPECT_EQ(redis_.Cli({"STRLEN", "bin"}), "6");

  auto missing = client.Command({"GET", "missing"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, RedisReply::Type::kNil);

  auto incr = client.Command({"INCRBY", "counter", "41"});
  ASSERT_TRUE(incr.ok());
  EXPECT_EQ(incr->type, RedisReply::Type::kInteger);
  EXPECT_EQ(incr->integer, 41);

  ASSERT_TRUE(client.Command({"RPUSH", "list", "x", "", "内蒙古"}).ok());
  auto range = client.Command({"LRANGE", "list", "0", "-1"});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->type, RedisReply::Type::kArray);
  ASSERT_EQ(range->elements.size(), 3u);
  EXPECT_EQ(range->elements[0].str, "x");
  EXPECT_EQ(range->elements[1].str, "");
  EXPECT_EQ(range->elements[2].str, "内蒙古");

  // A Redis error reply is INTERNAL; the connection stays usable and in sync.
  auto wrong = client.Command({"INCR", "list"});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(wrong.status().message(), HasSubstr("WRONGTYPE"));
  EXPECT_TRUE(client.available());
  auto after = client.Command({"GET", "counter"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->str, "41");
}

TEST_F(RedisClientTest, PipelineRoundTrip) {
  RedisClient client(ClientOptions(redis_.port()));
  auto replies = client.Pipeline({{"SET", "p", "1"}, {"INCR", "p"}, {"GET", "p"}, {"GET", "nope"}, {"PING"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].str, "OK");
  EXPECT_EQ((*replies)[1].integer, 2);
  EXPECT_EQ((*replies)[2].str, "2");
  EXPECT_EQ((*replies)[3].type, RedisReply::Type::kNil);
  EXPECT_EQ((*replies)[4].str, "PONG");

  // An error in the middle fails the call, but every reply is consumed: the next command on the
  // (reused) connection gets its own reply, not a leftover one.
  ASSERT_TRUE(client.Command({"RPUSH", "l", "x"}).ok());
  auto mixed = client.Pipeline({{"SET", "m1", "one"}, {"INCR", "l"}, {"SET", "m2", "two"}, {"GET", "m1"}});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInternal);
  for (int i = 0; i < 3; ++i) {
    auto m2 = client.Command({"GET", "m2"});
    ASSERT_TRUE(m2.ok()) << m2.status();
    EXPECT_EQ(m2->type, RedisReply::Type::kString);
    EXPECT_EQ(m2->str, "two");
  }
}

TEST_F(RedisClientTest, ConcurrentCallersShareThePool) {
  RedisClient client(ClientOptions(redis_.port()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        auto r = client.Pipeline({{"INCR", "shared"}, {"SET", absl::StrCat("own:", t), absl::StrCat(i)},
                                  {"GET", absl::StrCat("own:", t)}});
        if (!r.ok() || (*r)[2].str != absl::StrCat(i)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(redis_.Cli({"GET", "shared"}), "800");
}

TEST_F(RedisClientTest, PingFailsWhenRedisIsDownAndTheClientReconnectsByItself) {
  RedisClient client(ClientOptions(redis_.port()));
  ASSERT_TRUE(client.Ping().ok());
  ASSERT_TRUE(client.Command({"SET", "before", "1"}).ok());

  redis_.Stop();
  absl::Status down = client.Ping();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.message(), HasSubstr(absl::StrCat(redis_.port())));
  auto cmd = client.Command({"GET", "before"});
  ASSERT_FALSE(cmd.ok());
  EXPECT_EQ(cmd.status().code(), absl::StatusCode::kUnavailable);

  redis_.Start();
  EXPECT_TRUE(PollUntil([&] { return client.Ping().ok(); })) << "client did not reconnect after restart";
  auto get = client.Command({"GET", "before"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->type, RedisReply::Type::kNil);  // a fresh, empty server
  EXPECT_TRUE(client.available());
}

TEST_F(RedisClientTest, BackOffSkipsRedisUntilItExpires) {
  RedisOptions options = ClientOptions(redis_.port());
  options.retry_backoff = std::chrono::hours(1);
  RedisClient client(options);
  ASSERT_TRUE(client.Ping().ok());
  redis_.Stop();
  ASSERT_FALSE(client.Ping().ok());
  redis_.Start();
  // Redis is back, but the breaker is open for an hour: calls fail at once without connecting.
  EXPECT_FALSE(client.available());
  auto r = client.Command({"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(redis_.Cli({"CLIENT", "LIST"}).find("cmd=ping"), std::string::npos);
}

TEST_F(RedisClientTest, PausedRedisMakesCallsFailWithinTheIoTimeout) {
  RedisClient client(ClientOptions(redis_.port(), 100ms));
  ASSERT_EQ(redis_.Cli({"SET", "a", "A"}), "OK");
  ASSERT_EQ(redis_.Cli({"SET", "b", "B"}), "OK");
  // Leave a pooled connection behind (retried: 100 ms is tight on a busy machine).
  ASSERT_TRUE(PollUntil([&] { return client.Ping().ok(); }));

  redis_.Pause();
  // Run the call aside so that a hang fails this test instead of blocking it forever.
  auto call = std::async(std::launch::async, [&] { return client.Command({"GET", "a"}); });
  if (call.wait_for(60s) != std::future_status::ready) {
    redis_.Resume();
    FAIL() << "a call to a paused Redis hung instead of timing out";
  }
  auto r = call.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  auto ping = std::async(std::launch::async, [&] { return client.Ping(); });
  if (ping.wait_for(60s) != std::future_status::ready) {
    redis_.Resume();
    FAIL() << "Ping to a paused Redis hung";
  }
  EXPECT_EQ(ping.get().code(), absl::StatusCode::kUnavailable);
  redis_.Resume();

  // Back to normal, and no reply meant for the timed-out GET a is handed to a later call.
  absl::StatusOr<RedisReply> b = absl::UnknownError("not tried");
  EXPECT_TRUE(PollUntil([&] {
    b = client.Command({"GET", "b"});
    return b.ok();
  }));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->str, "B");
  for (int i = 0; i < 5; ++i) {
    auto again = client.Command({"GET", "b"});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->str, "B");
  }
}

// ================================================================== Cache

class CacheTest : public ::testing::Test {
 protected:
  CacheTest() : client_(ClientOptions(redis_.port())) {
    options_.prefix = "cg:test:v1:widgets:";
    options_.ttl = std::chrono::seconds(300);
  }

  double Metric(const std::string& name, const std::string& cache) { return MetricValue(registry_, name, cache); }
  double Hits(const std::string& cache) { return Metric("clustergov_cache_hits_total", cache); }
  double Misses(const std::string& cache) { return Metric("clustergov_cache_misses_total", cache); }
  double Errors(const std::string& cache) { return Metric("clustergov_cache_errors_total", cache); }
  double Bypasses(const std::string& cache) { return Metric("clustergov_cache_bypasses_total", cache); }

  // The cached value of `key` as Redis holds it ("" when none), and the entry's revision token.
  std::string Raw(const std::string& key) { return redis_.Cli({"HGET", options_.prefix + key, "v"}); }
  std::string Revision(const std::string& key) { return redis_.Cli({"HGET", options_.prefix + key, "r"}); }
  bool Exists(const std::string& key) { return redis_.Cli({"EXISTS", options_.prefix + key}) == "1"; }

  RedisServer redis_;
  RedisClient client_;
  CacheOptions options_;
  prometheus::Registry registry_;
};

TEST_F(CacheTest, MissLoadsAndFillsThenHitSkipsTheLoader) {
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader loader("value-1");

  auto first = cache.GetOrLoad("k1", loader.fn());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, "value-1");
  EXPECT_EQ(loader.calls.load(), 1);
  EXPECT_EQ(Misses("w"), 1);
  EXPECT_EQ(Hits("w"), 0);

  loader.value = "value-2";  // the store changed without an invalidation: the cache still answers
  auto second = cache.GetOrLoad("k1", loader.fn());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "value-1");
  EXPECT_EQ(loader.calls.load(), 1);
  EXPECT_EQ(Hits("w"), 1);
  EXPECT_EQ(Misses("w"), 1);
  EXPECT_EQ(Errors("w"), 0);
}

TEST_F(CacheTest, BinaryAndEmptyValuesAreCachedExactly) {
  Cache cache(&client_, options_, &registry_, "w");
  const std::string binary("\0t\0v\xff", 5);
  for (const std::string& value : {binary, std::string(), std::string("t"), std::string("呼和浩特")}) {
    SCOPED_TRACE(value);
    const std::string key = absl::StrCat("bin-", value.size(), "-", static_cast<int>(value.empty() ? 0 : value[0]));
    CountingLoader loader(value);
    auto a = cache.GetOrLoad(key, loader.fn());
    auto b = cache.GetOrLoad(key, loader.fn());
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*a, value);
    EXPECT_EQ(*b, value);
    EXPECT_EQ(loader.calls.load(), 1) << "second read should have been a hit";
  }
}

TEST_F(CacheTest, LoaderErrorsAreReturnedAndNotCached) {
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader loader("unused");
  loader.error = absl::NotFoundError("widget k2 not found");
  auto first = cache.GetOrLoad("k2", loader.fn());
  EXPECT_EQ(first.status(), absl::NotFoundError("widget k2 not found"));
  EXPECT_EQ(Raw("k2"), "");
  auto second = cache.GetOrLoad("k2", loader.fn());
  EXPECT_EQ(second.status(), absl::NotFoundError("widget k2 not found"));
  EXPECT_EQ(loader.calls.load(), 2);

  loader.error = absl::OkStatus();
  loader.value = "created later";
  auto third = cache.GetOrLoad("k2", loader.fn());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, "created later");
  EXPECT_EQ(loader.calls.load(), 3);
  EXPECT_EQ(Errors("w"), 0);  // loader errors are not Redis errors
}

TEST_F(CacheTest, InvalidateMakesTheNextReadLoadAgain) {
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader a("a-1"), b("b-1"), c("c-1");
  ASSERT_TRUE(cache.GetOrLoad("a", a.fn()).ok());
  ASSERT_TRUE(cache.GetOrLoad("b", b.fn()).ok());
  ASSERT_TRUE(cache.GetOrLoad("c", c.fn()).ok());

  a.value = "a-2";
  b.value = "b-2";
  c.value = "c-2";
  cache.Invalidate({"a", "b"});
  EXPECT_EQ(cache.pending_invalidations(), 0u);
  EXPECT_FALSE(Exists("a"));  // the entries are deleted, nothing is left behind
  EXPECT_FALSE(Exists("b"));
  EXPECT_EQ(*cache.GetOrLoad("a", a.fn()), "a-2");
  EXPECT_EQ(*cache.GetOrLoad("b", b.fn()), "b-2");
  EXPECT_EQ(*cache.GetOrLoad("c", c.fn()), "c-1");  // not invalidated: still cached
  EXPECT_EQ(a.calls.load(), 2);
  EXPECT_EQ(b.calls.load(), 2);
  EXPECT_EQ(c.calls.load(), 1);

  // Cached again at once, under a new revision.
  EXPECT_EQ(Raw("a"), "a-2");
  EXPECT_EQ(*cache.GetOrLoad("a", a.fn()), "a-2");
  EXPECT_EQ(a.calls.load(), 2);
}

TEST_F(CacheTest, InvalidationDuringALoadKeepsTheOldValueOutOfTheCache) {
  Cache cache(&client_, options_, &registry_, "w");
  int calls = 0;
  // The reader loads the old value; before it fills, a writer commits and invalidates.
  auto racing_loader = [&]() -> absl::StatusOr<std::string> {
    ++calls;
    cache.Invalidate({"raced"});
    return std::string("old");
  };
  auto first = cache.GetOrLoad("raced", racing_loader);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "old");  // the reader itself may answer with what it read
  EXPECT_FALSE(Exists("raced")) << "the stale fill was stored";

  CountingLoader fresh("new");
  auto second = cache.GetOrLoad("raced", fresh.fn());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "new");
  EXPECT_EQ(fresh.calls.load(), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(*cache.GetOrLoad("raced", fresh.fn()), "new");
  EXPECT_EQ(fresh.calls.load(), 1);
}

// A value the reader holds while it waits for the writer, so the writer can go first.
class Latch {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// A read of `key` whose load returns `value` once `release` opens; returned once the load began.
std::future<absl::StatusOr<std::string>> BlockedRead(Cache& cache, const std::string& key, const std::string& value,
                                                     Latch& release) {
  auto began = std::make_shared<Latch>();
  auto read = std::async(std::launch::async, [&cache, key, value, &release, began] {
    return cache.GetOrLoad(key, [&]() -> absl::StatusOr<std::string> {
      began->Open();
      release.Wait();
      return value;
    });
  });
  began->Wait();
  return read;
}

TEST_F(CacheTest, ASlowLoadCannotPutBackAValueOlderThanTheStore) {
  CacheOptions defaults;  // as a service configures it
  defaults.prefix = options_.prefix;
  Cache cache(&client_, defaults, &registry_, "slow");
  std::mutex store_mu;
  std::string store = "old";
  Latch read_done, write_done;

  // The reader reads the store, then stalls (reader wait, busy timeout) while a write commits and
  // invalidates, and for longer than any fixed window (2.5 s) before it fills.
  auto reader = std::async(std::launch::async, [&] {
    return cache.GetOrLoad("k", [&]() -> absl::StatusOr<std::string> {
      std::string value;
      {
        std::lock_guard<std::mutex> lock(store_mu);
        value = store;
      }
      read_done.Open();
      write_done.Wait();
      std::this_thread::sleep_for(2500ms);
      return value;
    });
  });
  read_done.Wait();
  {
    std::lock_guard<std::mutex> lock(store_mu);
    store = "new";
  }
  cache.Invalidate({"k"});
  write_done.Open();
  auto stale = reader.get();
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(*stale, "old");  // the reader itself answers with what it read
  EXPECT_EQ(Raw("k"), "") << "the slow reader's old value was cached";

  // Normal fills still work: the next read loads the new value and caches it.
  CountingLoader fresh("new");
  EXPECT_EQ(*cache.GetOrLoad("k", fresh.fn()), "new");
  EXPECT_EQ(*cache.GetOrLoad("k", fresh.fn()), "new");
  EXPECT_EQ(fresh.calls.load(), 1);
  EXPECT_EQ(Raw("k"), "new");
}

TEST_F(CacheTest, ReplicasSharingANamespaceNeverFillAValueOlderThanTheStore) {
  // Two processes over one store and one Redis namespace: a reads slowly, b writes and reads.
  Cache a(&client_, options_, &registry_, "replica-a");
  Cache b(&client_, options_, &registry_, "replica-b");
  Latch b_done;
  auto slow = BlockedRead(a, "k", "old", b_done);
  const std::string taken = Revision("k");
  EXPECT_FALSE(taken.empty());  // not ASSERT: the reader waits for b_done
  b.Invalidate({"k"});
  CountingLoader b_loader("new");
  EXPECT_EQ(*b.GetOrLoad("k", b_loader.fn()), "new");
  EXPECT_NE(Revision("k"), taken);
  EXPECT_EQ(Raw("k"), "new");
  b_done.Open();
  EXPECT_EQ(*slow.get(), "old");
  EXPECT_EQ(Raw("k"), "new") << "a's fill replaced a newer value";
  CountingLoader a_loader("unused");
  EXPECT_EQ(*a.GetOrLoad("k", a_loader.fn()), "new");
  EXPECT_EQ(a_loader.calls.load(), 0);
}

TEST_F(CacheTest, AReadAfterAWriteDoesNotShareALoadThatBeganBeforeIt) {
  Cache cache(&client_, options_, &registry_, "flights");
  Latch read_done, release;
  auto slow = std::async(std::launch::async, [&] {
    return cache.GetOrLoad("k", [&]() -> absl::StatusOr<std::string> {
      read_done.Open();
      release.Wait();
      return std::string("old");
    });
  });
  read_done.Wait();
  cache.Invalidate({"k"});  // a write committed after the slow load read the store
  CountingLoader fresh("new");
  auto after = std::async(std::launch::async, [&] { return cache.GetOrLoad("k", fresh.fn()); });
  const bool answered = after.wait_for(10s) == std::future_status::ready;
  release.Open();
  EXPECT_TRUE(answered) << "the read waited for a load that began before the write";
  EXPECT_EQ(*after.get(), "new");
  EXPECT_EQ(*slow.get(), "old");
  EXPECT_EQ(fresh.calls.load(), 1);
  EXPECT_EQ(Raw("k"), "new");
}

TEST_F(CacheTest, ALoadSlowerThanTheClaimIsAnsweredButNotCached) {
  options_.claim_ttl = 200ms;
  Cache cache(&client_, options_, &registry_, "claim");
  int calls = 0;
  auto slow = [&]() -> absl::StatusOr<std::string> {
    ++calls;
    std::this_thread::sleep_for(600ms);
    return std::string("slow value");
  };
  EXPECT_EQ(*cache.GetOrLoad("k", slow), "slow value");
  EXPECT_FALSE(Exists("k"));
  // A miss that never fills (a loader error) leaves only a short-lived claim behind.
  CountingLoader missing("x");
  missing.error = absl::NotFoundError("no such widget");
  EXPECT_EQ(cache.GetOrLoad("missing", missing.fn()).status().code(), absl::StatusCode::kNotFound);
  const int64_t pttl = std::stoll(redis_.Cli({"PTTL", options_.prefix + "missing"}));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 200);
  // A fast load fills as usual.
  CountingLoader fast("fast value");
  EXPECT_EQ(*cache.GetOrLoad("k", fast.fn()), "fast value");
  EXPECT_EQ(*cache.GetOrLoad("k", fast.fn()), "fast value");
  EXPECT_EQ(fast.calls.load(), 1);
  EXPECT_EQ(calls, 1);
}

TEST_F(CacheTest, ConcurrentMissesOfOneKeyLoadOnce) {
  Cache cache(&client_, options_, &registry_, "sf");
  constexpr int kThreads = 8;
  std::vector<pid_t> tids(kThreads, 0);
  std::atomic<int> started{0};
  std::atomic<bool> go{false};
  std::atomic<int> calls{0};
  std::atomic<bool> all_parked{false};

  // The loader holds the flight open until all 8 readers have missed in Redis and the other 7 are
  // asleep (waiting on this flight): nobody can arrive after it finishes, so exactly one load.
  Cache::Loader loader = [&]() -> absl::StatusOr<std::string> {
    ++calls;
    const pid_t self = Gettid();
    all_parked = PollUntil(
        [&] {
          if (Misses("sf") < kThreads) return false;
          for (pid_t tid : tids) {
            if (tid != self && ThreadState(tid) != 'S') return false;
          }
          return true;
        },
        4000, 5ms);
    return std::string("hot value");
  };

  std::vector<absl::StatusOr<std::string>> results(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      tids[t] = Gettid();
      ++started;
      while (!go.load()) std::this_thread::yield();
      results[t] = cache.GetOrLoad("hot", loader);
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  go = true;
  for (auto& th : threads) th.join();

  EXPECT_TRUE(all_parked.load()) << "the readers never all reached the flight";
  EXPECT_EQ(calls.load(), 1);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "hot value");
  }
  EXPECT_EQ(Misses("sf"), kThreads);
  EXPECT_EQ(Hits("sf"), 0);

  auto later = cache.GetOrLoad("hot", loader);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, "hot value");
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(Hits("sf"), 1);
}

TEST_F(CacheTest, ListsAreCachedUnderTheCollectionGeneration) {
  Cache cache(&client_, options_, &registry_, "lists");
  CountingLoader c_q1("c-q1-v1"), c_q2("c-q2-v1"), d_q1("d-q1-v1");

  EXPECT_EQ(*cache.GetOrLoadList("c", "q1", c_q1.fn()), "c-q1-v1");
  EXPECT_EQ(*cache.GetOrLoadList("c", "q1", c_q1.fn()), "c-q1-v1");
  EXPECT_EQ(c_q1.calls.load(), 1);
  EXPECT_EQ(*cache.GetOrLoadList("c", "q2", c_q2.fn()), "c-q2-v1");
  EXPECT_EQ(*cache.GetOrLoadList("d", "q1", d_q1.fn()), "d-q1-v1");
  EXPECT_EQ(*cache.GetOrLoadList("d", "q1", d_q1.fn()), "d-q1-v1");
  EXPECT_EQ(c_q2.calls.load(), 1);
  EXPECT_EQ(d_q1.calls.load(), 1);

  const std::string gen_c = Revision(Cache::GenerationKey("c"));
  ASSERT_FALSE(gen_c.empty());
  EXPECT_NE(gen_c, Revision(Cache::GenerationKey("d")));
  EXPECT_EQ(Raw(absl::StrCat("list:c:", gen_c, ":q1")), "c-q1-v1");

  // A write to collection c drops all of c's lists, and only c's; the next read starts a new
  // generation and the lists are cached again at once. The old generation's lists are never served.
  c_q1.value = "c-q1-v2";
  c_q2.value = "c-q2-v2";
  cache.Invalidate({Cache::GenerationKey("c")});
  EXPECT_EQ(*cache.GetOrLoadList("c", "q1", c_q1.fn()), "c-q1-v2");
  EXPECT_EQ(*cache.GetOrLoadList("c", "q2", c_q2.fn()), "c-q2-v2");
  EXPECT_EQ(c_q1.calls.load(), 2);
  EXPECT_EQ(c_q2.calls.load(), 2);
  EXPECT_EQ(*cache.GetOrLoadList("d", "q1", d_q1.fn()), "d-q1-v1");
  EXPECT_EQ(d_q1.calls.load(), 1);
  EXPECT_EQ(*cache.GetOrLoadList("c", "q1", c_q1.fn()), "c-q1-v2");
  EXPECT_EQ(c_q1.calls.load(), 2);
  const std::string new_gen_c = Revision(Cache::GenerationKey("c"));
  EXPECT_FALSE(new_gen_c.empty());
  EXPECT_NE(new_gen_c, gen_c);
  EXPECT_EQ(Raw(absl::StrCat("list:c:", gen_c, ":q1")), "c-q1-v1");  // left to expire, unread
}

TEST_F(CacheTest, FailsOpenWhenRedisIsDown) {
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader loader("from-store");
  ASSERT_TRUE(cache.GetOrLoad("k", loader.fn()).ok());
  const double errors_before = Errors("w");
  const double bypasses_before = Bypasses("w");

  redis_.Stop();
  loader.value = "from-store-2";
  for (int i = 0; i < 3; ++i) {
    auto r = cache.GetOrLoad("k", loader.fn());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "from-store-2");
  }
  EXPECT_EQ(loader.calls.load(), 4);
  EXPECT_GT(Errors("w"), errors_before);
  EXPECT_GE(Bypasses("w"), bypasses_before + 3);

  // Loader errors still come back as they are.
  CountingLoader failing("x");
  failing.error = absl::NotFoundError("gone");
  EXPECT_EQ(cache.GetOrLoad("k", failing.fn()).status(), absl::NotFoundError("gone"));
  // Lists too.
  CountingLoader list("list-from-store");
  auto l = cache.GetOrLoadList("c", "q", list.fn());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, "list-from-store");

  // Once Redis is back (empty), the cache fills and hits again by itself.
  redis_.Start();
  loader.value = "after-restart";
  const double hits_before = Hits("w");
  EXPECT_TRUE(PollUntil([&] {
    auto r = cache.GetOrLoad("k", loader.fn());
    EXPECT_TRUE(r.ok());
    return Hits("w") > hits_before;
  }));
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "after-restart");
}

TEST_F(CacheTest, SlowRedisFailsOpenWithinTheIoTimeout) {
  RedisClient fast_fail(ClientOptions(redis_.port(), 100ms));
  Cache cache(&fast_fail, options_, &registry_, "slow");
  CountingLoader loader("v1");
  ASSERT_TRUE(cache.GetOrLoad("k", loader.fn()).ok());
  redis_.Pause();
  loader.value = "v2";
  auto read = std::async(std::launch::async, [&] { return cache.GetOrLoad("k", loader.fn()); });
  if (read.wait_for(60s) != std::future_status::ready) {
    redis_.Resume();
    FAIL() << "a read hung on a paused Redis";
  }
  redis_.Resume();
  auto r = read.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "v2");
  EXPECT_GE(Errors("slow"), 1);
}

TEST_F(CacheTest, InvalidationsLostWhileRedisIsDownAreReplayedBeforeTheCacheIsTrusted) {
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader loader("old");
  ASSERT_EQ(*cache.GetOrLoad("k", loader.fn()), "old");
  ASSERT_EQ(Raw("k"), "old");

  redis_.Stop();
  loader.value = "new";  // the store commits a change...
  const double errors_before = Errors("w");
  cache.Invalidate({"k"});  // ...whose invalidation cannot reach Redis
  EXPECT_EQ(cache.pending_invalidations(), 1u);
  EXPECT_GT(Errors("w"), errors_before);
  EXPECT_EQ(Metric("clustergov_cache_pending_invalidations", "w"), 1);
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "new");

  // Redis comes back still holding the old value (restored from elsewhere, or it never lost it).
  redis_.Start();
  ASSERT_EQ(redis_.Cli({"HSET", options_.prefix + "k", "r", "restored", "v", "old"}), "2");

  int reads = 0;
  bool replayed = PollUntil([&] {
    auto r = cache.GetOrLoad("k", loader.fn());
    ++reads;
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      EXPECT_EQ(*r, "new") << "stale value served after Redis came back (read " << reads << ")";
    }
    return cache.pending_invalidations() == 0;
  });
  ASSERT_TRUE(replayed);
  EXPECT_EQ(Raw("k"), "new");
  EXPECT_EQ(Metric("clustergov_cache_pending_invalidations", "w"), 0);
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "new");
}

TEST_F(CacheTest, InvalidationsLostWhileRedisIsHungAreReplayedAfterItResumes) {
  RedisClient fast_fail(ClientOptions(redis_.port(), 100ms));
  Cache cache(&fast_fail, options_, &registry_, "hung");
  CountingLoader loader("old");
  ASSERT_EQ(*cache.GetOrLoad("k", loader.fn()), "old");

  redis_.Pause();  // the data survives
  loader.value = "new";
  cache.Invalidate({"k"});
  EXPECT_EQ(cache.pending_invalidations(), 1u);
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "new");
  redis_.Resume();

  bool replayed = PollUntil([&] {
    auto r = cache.GetOrLoad("k", loader.fn());
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      EXPECT_EQ(*r, "new");
    }
    return cache.pending_invalidations() == 0;
  });
  ASSERT_TRUE(replayed);
  EXPECT_EQ(Raw("k"), "new");
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "new");
}

TEST_F(CacheTest, TooManyLostInvalidationsDropTheWholeNamespace) {
  options_.max_pending_invalidations = 2;
  Cache cache(&client_, options_, &registry_, "w");
  CountingLoader loader("old");
  for (const char* k : {"a", "b", "c", "d"}) ASSERT_TRUE(cache.GetOrLoad(k, loader.fn()).ok());

  redis_.Stop();
  cache.Invalidate({"a", "b", "c"});
  EXPECT_EQ(cache.pending_invalidations(), 1u);  // the keys are no longer tracked: the wipe marker

  redis_.Start();
  for (const char* k : {"a", "b", "c", "d"}) redis_.Cli({"HSET", options_.prefix + k, "r", "restored", "v", "old"});
  redis_.Cli({"SET", "cg:test:v1:other:x", "vkeep"});  // another cache's namespace

  loader.value = "new";
  bool replayed = PollUntil([&] {
    auto r = cache.GetOrLoad("c", loader.fn());
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      EXPECT_EQ(*r, "new");
    }
    return cache.pending_invalidations() == 0;
  });
  ASSERT_TRUE(replayed);
  for (const char* k : {"a", "b", "c", "d"}) {
    SCOPED_TRACE(k);
    EXPECT_EQ(*cache.GetOrLoad(k, loader.fn()), "new");
  }
  EXPECT_EQ(redis_.Cli({"GET", "cg:test:v1:other:x"}), "vkeep");
}

TEST_F(CacheTest, NamespaceWipeOnALargeRedisDoesNotBlockIt) {
  // A shared Redis holding many keys of others: 200,000.
  constexpr int kFiller = 200000;
  constexpr int kBatch = 1000;
  {
    std::vector<std::string> keys;
    for (int i = 0; i < kFiller; ++i) keys.push_back(absl::StrCat("cg:test:v1:other:filler:", i));
    std::vector<std::vector<absl::string_view>> commands;
    for (int i = 0; i < kFiller; i += kBatch) {
      std::vector<absl::string_view> mset{"MSET"};
      for (int j = i; j < i + kBatch; ++j) {
        mset.push_back(keys[j]);
        mset.push_back("x");
      }
      commands.push_back(std::move(mset));
    }
    ASSERT_TRUE(client_.Pipeline(commands).ok());
  }

  // Too many lost invalidations, so the namespace is wiped. The client's I/O timeout is generous so
  // that a loaded test machine cannot fail a step; blocking is caught by Redis's slow log below.
  RedisClient service_client(ClientOptions(redis_.port(), 1000ms));
  options_.max_pending_invalidations = 2;
  Cache cache(&service_client, options_, &registry_, "wipe");
  CountingLoader loader("old");
  constexpr int kOwn = 200;
  for (int i = 0; i < kOwn; ++i) ASSERT_EQ(*cache.GetOrLoad(absl::StrCat("k", i), loader.fn()), "old");
  ASSERT_EQ(Raw("k7"), "old");
  redis_.Pause();
  loader.value = "new";
  cache.Invalidate({"k0", "k1", "k2"});
  redis_.Resume();
  ASSERT_EQ(cache.pending_invalidations(), 1u);

  // The wipe goes in small steps (SCAN over at most 1,000 keys each, never KEYS or FLUSHDB), so no
  // single command holds Redis for long: counted from Redis's own command statistics, not timed
  // (a busy test machine can stall any one command). Another client keeps reading meanwhile.
  ASSERT_EQ(redis_.Cli({"CONFIG", "RESETSTAT"}), "OK");
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::thread other([&] {
    RedisClient other_client(ClientOptions(redis_.port(), 5000ms));
    while (!stop.load()) {
      auto r = other_client.Command({"GET", "cg:test:v1:other:filler:1"});
      (r.ok() && r->str == "x" ? answered : failed)++;
    }
  });
  // The client's back-off after the pause ends before the wipe is watched (calls during the
  // back-off count as cache errors, not wipe failures).
  ASSERT_TRUE(PollUntil([&] { return service_client.Command({"PING"}).ok(); }, 3000, 5ms));
  const double errors_before = Errors("wipe");
  const auto start = std::chrono::steady_clock::now();
  bool wiped = PollUntil(
      [&] {
        auto r = cache.GetOrLoad("k7", loader.fn());
        EXPECT_TRUE(r.ok() && *r == "new");
        return cache.pending_invalidations() == 0;
      },
      3000, 5ms);
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  other.join();

  ASSERT_TRUE(wiped) << "the wipe did not complete";
  EXPECT_EQ(Errors("wipe"), errors_before) << "a wipe step failed (timed out?)";
  EXPECT_LT(took, 10s);
  const std::string stats = redis_.Cli({"INFO", "commandstats"});
  auto calls = [&](const std::string& command) {
    auto at = stats.find("cmdstat_" + command + ":calls=");
    if (at == std::string::npos) return int64_t{0};
    return int64_t{std::stoll(stats.substr(at + command.size() + 15))};
  };
  EXPECT_GE(calls("scan"), kFiller / 1000) << stats;  // one step per 1,000 keys of the whole keyspace
  EXPECT_EQ(calls("keys"), 0) << stats;
  EXPECT_EQ(calls("flushdb") + calls("flushall"), 0) << stats;
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  // Only this cache's namespace went; every key reads the store's value again.
  EXPECT_EQ(redis_.Cli({"DBSIZE"}), absl::StrCat(kFiller + 1));  // the fillers and k7
  for (int i = 0; i < kOwn; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(*cache.GetOrLoad(absl::StrCat("k", i), loader.fn()), "new");
  }
}

// Two replicas, each with a long-lived near cache in front of the shared Redis: a write on one
// reaches the other's near cache at once (published on the namespace's channel), not after the
// near cache's TTL.
TEST_F(CacheTest, AWriteOnOneReplicaReachesTheOthersNearCacheAtOnce) {
  options_.near_ttl = std::chrono::milliseconds(60000);
  RedisClient client_b(ClientOptions(redis_.port()));
  Cache a(&client_, options_, &registry_, "a");
  Cache b(&client_b, options_, &registry_, "b");
  ASSERT_TRUE(PollUntil([&] { return a.near_live() && b.near_live(); })) << "the near caches did not subscribe";

  CountingLoader store("v1");
  ASSERT_EQ(*a.GetOrLoad("k", store.fn()), "v1");
  ASSERT_EQ(*b.GetOrLoad("k", store.fn()), "v1");  // from Redis, kept in b's near cache
  std::string near;
  ASSERT_TRUE(b.PeekNear("k", &near));
  EXPECT_EQ(near, "v1");
  EXPECT_EQ(*b.GetOrLoad("k", store.fn()), "v1");
  EXPECT_GE(Metric("clustergov_cache_near_hits_total", "b"), 2);

  store.value = "v2";
  a.Invalidate({"k"});  // the write happened on replica a
  EXPECT_TRUE(PollUntil([&] { return !b.PeekNear("k", &near); }, 200, 5ms))
      << "replica b's near cache still holds the old value";
  EXPECT_EQ(*b.GetOrLoad("k", store.fn()), "v2");
  EXPECT_EQ(*a.GetOrLoad("k", store.fn()), "v2");
}

// While the invalidation channel is down the near cache is cleared and unused (an invalidation
// published meanwhile would be missed); it comes back empty once resubscribed.
TEST_F(CacheTest, TheNearCacheIsClearedAndUnusedWhileItsChannelIsDown) {
  options_.near_ttl = std::chrono::milliseconds(60000);
  Cache a(&client_, options_, &registry_, "a");
  ASSERT_TRUE(PollUntil([&] { return a.near_live(); }));
  CountingLoader store("v1");
  ASSERT_EQ(*a.GetOrLoad("k", store.fn()), "v1");
  std::string near;
  ASSERT_TRUE(a.PeekNear("k", &near));

  // The subscription's connection is killed (a network blip, a failover).
  ASSERT_NE(redis_.Cli({"CLIENT", "KILL", "TYPE", "pubsub"}), "0");
  ASSERT_TRUE(PollUntil([&] { return !a.PeekNear("k", &near); }, 200, 5ms)) << "near cache kept after the drop";
  // Resubscribed, empty: the next read goes to Redis and is kept again.
  ASSERT_TRUE(PollUntil([&] { return a.near_live(); }));
  EXPECT_FALSE(a.PeekNear("k", &near));
  EXPECT_EQ(*a.GetOrLoad("k", store.fn()), "v1");
  EXPECT_TRUE(a.PeekNear("k", &near));

  // Redis gone: off and empty; reads go to the store.
  redis_.Stop();
  ASSERT_TRUE(PollUntil([&] { return !a.near_live(); }));
  EXPECT_FALSE(a.PeekNear("k", &near));
  store.value = "v3";
  EXPECT_EQ(*a.GetOrLoad("k", store.fn()), "v3");
  EXPECT_FALSE(a.PeekNear("k", &near));
  redis_.Start();
  EXPECT_TRUE(PollUntil([&] { return a.near_live(); })) << "did not resubscribe after Redis returned";
}

TEST_F(CacheTest, TtlIsJitteredWithinTwentyPercent) {
  options_.ttl = std::chrono::seconds(100);
  options_.ttl_jitter = 0.2;
  Cache cache(&client_, options_, &registry_, "w");
  const int64_t ttl_ms = 100000;
  int64_t lowest = INT64_MAX, highest = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string key = absl::StrCat("ttl-", i);
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(cache.GetOrLoad(key, [] { return absl::StatusOr<std::string>("x"); }).ok());
    const int64_t pttl = std::stoll(redis_.Cli({"PTTL", options_.prefix + key}));
    const int64_t elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    SCOPED_TRACE(key);
    EXPECT_LE(pttl, ttl_ms * 12 / 10 + 1);
    EXPECT_GE(pttl, ttl_ms * 8 / 10 - elapsed_ms - 1);
    lowest = std::min(lowest, pttl);
    highest = std::max(highest, pttl);
  }
  // Jitter is actually applied: 20 draws over a 40 s window do not all land within 5 s.
  EXPECT_GT(highest - lowest, 5000);
}

TEST_F(CacheTest, ValuesAreNamespacedByThePrefix) {
  Cache v1(&client_, options_, &registry_, "v1");
  CacheOptions other = options_;
  other.prefix = "cg:test:v2:widgets:";
  Cache v2(&client_, other, &registry_, "v2");

  CountingLoader l1("schema-1"), l2("schema-2");
  EXPECT_EQ(*v1.GetOrLoad("w1", l1.fn()), "schema-1");
  EXPECT_EQ(redis_.Cli({"EXISTS", "cg:test:v1:widgets:w1"}), "1");
  EXPECT_EQ(redis_.Cli({"HGET", "cg:test:v1:widgets:w1", "v"}), "schema-1");
  EXPECT_EQ(redis_.Cli({"EXISTS", "w1"}), "0");

  // A new key version never reads the old one's values.
  EXPECT_EQ(*v2.GetOrLoad("w1", l2.fn()), "schema-2");
  EXPECT_EQ(l2.calls.load(), 1);
  EXPECT_EQ(redis_.Cli({"HGET", "cg:test:v2:widgets:w1", "v"}), "schema-2");

  // Invalidation stays within its namespace; metrics are per cache name.
  v1.Invalidate({"w1"});
  EXPECT_EQ(*v2.GetOrLoad("w1", l2.fn()), "schema-2");
  EXPECT_EQ(l2.calls.load(), 1);
  EXPECT_EQ(Hits("v2"), 1);
  EXPECT_EQ(Hits("v1"), 0);
  EXPECT_EQ(Misses("v1"), 1);
}

TEST_F(CacheTest, WithoutRedisEveryReadLoads) {
  Cache cache(nullptr, options_, &registry_, "none");
  CountingLoader loader("x");
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "x");
  EXPECT_EQ(*cache.GetOrLoad("k", loader.fn()), "x");
  EXPECT_EQ(*cache.GetOrLoadList("c", "q", loader.fn()), "x");
  cache.Invalidate({"k"});
  EXPECT_EQ(loader.calls.load(), 3);
  EXPECT_EQ(cache.pending_invalidations(), 0u);
  EXPECT_EQ(Errors("none"), 0);
  // And without a registry nothing breaks.
  Cache bare(&client_, options_, nullptr, "bare");
  EXPECT_EQ(*bare.GetOrLoad("k", loader.fn()), "x");
  EXPECT_EQ(*bare.GetOrLoad("k", loader.fn()), "x");
  EXPECT_EQ(loader.calls.load(), 4);
}

// ------------------------------------------------------------------ writes in progress

// A write on a process that dies between its commit and the release of its marks: no destructor
// runs, so the PendingWrite is never destroyed (deliberately leaked).
void CrashAfterCommit(Cache* cache, std::vector<std::string> keys) { new PendingWrite(cache, std::move(keys)); }

// While a write is in progress on a key, fills of it are kept out: a reader that took the entry's
// token before the write began, and readers that come during it (they load and keep nothing).
TEST_F(CacheTest, AWritePendingMarkKeepsRacingFillsOut) {
  Cache cache(&client_, options_, &registry_, "marks");
  CountingLoader store("old");
  ASSERT_EQ(*cache.GetOrLoad("k", store.fn()), "old");
  ASSERT_EQ(Raw("k"), "old");
  cache.Invalidate({"k"});

  Latch write_begun;
  auto racing = BlockedRead(cache, "k", "old", write_begun);
  EXPECT_FALSE(Revision("k").empty());  // the racing reader's token
  {
    PendingWrite write(&cache, {"k"});
    EXPECT_EQ(redis_.Cli({"HGET", options_.prefix + "k", "w"}), "1");
    write_begun.Open();
    EXPECT_EQ(*racing.get(), "old");
    EXPECT_EQ(Raw("k"), "") << "a fill taken before the write was stored during it";
    // Readers during the write load every time and keep nothing.
    EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "old");
    EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "old");
    EXPECT_EQ(store.calls.load(), 3);
    EXPECT_EQ(Raw("k"), "");
    store.value = "new";  // the commit
  }
  EXPECT_FALSE(Exists("k")) << "the write's end did not invalidate";
  EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "new");
  EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "new");
  EXPECT_EQ(store.calls.load(), 4);
  EXPECT_EQ(Raw("k"), "new");
}

// Two writes in progress on one key: the first to end leaves the key pending until the other does.
TEST_F(CacheTest, ConcurrentWritesKeepAKeyPendingUntilTheLastEnds) {
  Cache cache(&client_, options_, &registry_, "overlap");
  CountingLoader store("v1");
  auto first = std::make_unique<PendingWrite>(&cache, std::vector<std::string>{"k"});
  auto second = std::make_unique<PendingWrite>(&cache, std::vector<std::string>{"k"});
  first.reset();
  EXPECT_EQ(redis_.Cli({"HGET", options_.prefix + "k", "w"}), "1");
  EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "v1");
  EXPECT_EQ(Raw("k"), "") << "filled while the second write was still in progress";
  second.reset();
  EXPECT_FALSE(Exists("k"));
  EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "v1");
  EXPECT_EQ(Raw("k"), "v1");
}

// The writer dies after its commit, before invalidating: the marks it left keep the old value
// from being served, in Redis and in another replica's near cache, and expire after the claim
// TTL, after which the committed value is cached.
TEST_F(CacheTest, ACrashBetweenCommitAndInvalidationLeavesNothingStale) {
  options_.claim_ttl = std::chrono::milliseconds(300);
  CacheOptions replica = options_;
  replica.near_ttl = std::chrono::milliseconds(60000);
  RedisClient client_b(ClientOptions(redis_.port()));
  Cache a(&client_, options_, &registry_, "writer");
  Cache b(&client_b, replica, &registry_, "replica");
  ASSERT_TRUE(PollUntil([&] { return b.near_live(); }));
  CountingLoader store("old"), list("list-old");
  ASSERT_EQ(*b.GetOrLoad("k", store.fn()), "old");
  ASSERT_EQ(*b.GetOrLoadList("c", "q", list.fn()), "list-old");
  std::string near;
  ASSERT_TRUE(b.PeekNear("k", &near));
  ASSERT_EQ(Raw("k"), "old");

  CrashAfterCommit(&a, {"k", Cache::GenerationKey("c")});
  store.value = "new";
  list.value = "list-new";
  EXPECT_TRUE(PollUntil([&] { return !b.PeekNear("k", &near); }, 200, 5ms)) << "the mark left b's near copy";
  // From the commit on, every read answers the committed value.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*b.GetOrLoad("k", store.fn()), "new");
    EXPECT_EQ(*b.GetOrLoadList("c", "q", list.fn()), "list-new");
    EXPECT_EQ(*a.GetOrLoad("k", store.fn()), "new");
  }
  EXPECT_EQ(Raw("k"), "");
  EXPECT_FALSE(b.PeekNear("k", &near));

  // The marks expire with the claim TTL; then the committed values are cached again.
  ASSERT_TRUE(PollUntil([&] { return !Exists("k") && !Exists(Cache::GenerationKey("c")); }));
  EXPECT_EQ(*b.GetOrLoad("k", store.fn()), "new");
  EXPECT_EQ(*b.GetOrLoadList("c", "q", list.fn()), "list-new");
  EXPECT_EQ(Raw("k"), "new");
  const int loads = store.calls.load();
  EXPECT_EQ(*a.GetOrLoad("k", store.fn()), "new");
  EXPECT_EQ(*b.GetOrLoad("k", store.fn()), "new");
  EXPECT_EQ(*b.GetOrLoadList("c", "q", list.fn()), "list-new");
  EXPECT_EQ(store.calls.load(), loads);
}

// A mark that cannot reach Redis does not stop the write; its invalidation is replayed.
TEST_F(CacheTest, AWriteGoesOnWhenItsMarkCannotReachRedis) {
  Cache cache(&client_, options_, &registry_, "down");
  CountingLoader store("old");
  ASSERT_EQ(*cache.GetOrLoad("k", store.fn()), "old");
  redis_.Stop();
  bool wrote = false;
  {
    PendingWrite write(&cache, {"k"});
    wrote = true;
    store.value = "new";
  }
  EXPECT_TRUE(wrote);
  EXPECT_GE(Errors("down"), 1);
  EXPECT_EQ(cache.pending_invalidations(), 1u);
  EXPECT_EQ(*cache.GetOrLoad("k", store.fn()), "new");
  redis_.Start();
  ASSERT_TRUE(PollUntil([&] { return client_.available(); }));
  EXPECT_TRUE(PollUntil([&] { return cache.GetOrLoad("k", store.fn()).value() == "new" && Raw("k") == "new"; }));
  EXPECT_EQ(cache.pending_invalidations(), 0u);
}

// ------------------------------------------------------------------ the runtime's namespace

class RuntimeCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<server::Runtime> Start(const std::string& db, std::chrono::milliseconds near = 0ms) {
    server::CommonConfig config;
    config.server.service_name = "widgets";
    config.server.listen = "127.0.0.1:0";
    config.server.metrics_listen = "";
    config.server.worker_threads = 2;
    config.redis.port = redis_.port();
    config.redis.retry_backoff = 50ms;
    config.near_cache_ttl = near;
    config.db.path = dir_.File(db);
    config.db.synchronous_full = false;
    config.auth.hs256_secret = testing::kTestSecret;
    config.page_token_secret = "page-token-secret-for-tests";
    auto rt = server::Runtime::Create(config);
    EXPECT_TRUE(rt.ok()) << rt.status();
    return rt.ok() ? std::move(*rt) : nullptr;
  }

  RedisServer redis_;
  testing::TempDir dir_;
};

// Replicas on one store share the cache, across restarts too; a service on another (fresh) store
// with the same Redis sees none of it.
TEST_F(RuntimeCacheTest, ReplicasOnOneStoreShareTheNamespaceAndAnotherStoreHasItsOwn) {
  auto one = Start("a.db");
  auto two = Start("a.db");
  auto other = Start("b.db");
  ASSERT_TRUE(one && two && other);
  auto c1 = one->MakeCache("things");
  auto c2 = two->MakeCache("things");
  auto c3 = other->MakeCache("things");
  CountingLoader a("from-a"), b("from-b");
  EXPECT_EQ(*c1->GetOrLoad("k", a.fn()), "from-a");
  EXPECT_EQ(*c2->GetOrLoad("k", b.fn()), "from-a");
  EXPECT_EQ(b.calls.load(), 0);
  EXPECT_EQ(*c3->GetOrLoad("k", b.fn()), "from-b");
  EXPECT_EQ(b.calls.load(), 1);
  const std::string keys = redis_.Cli({"KEYS", "cg:v3:widgets:things:*:k"});
  EXPECT_EQ(std::count(keys.begin(), keys.end(), '\n'), 1) << keys;  // two namespaces, one per store

  // A restart on the same store finds the same namespace.
  c1.reset();
  one.reset();
  one = Start("a.db");
  ASSERT_TRUE(one);
  EXPECT_EQ(*one->MakeCache("things")->GetOrLoad("k", b.fn()), "from-a");
  EXPECT_EQ(b.calls.load(), 1);
}

// With the shared namespace, a write on one replica drops the other's near copy at once: when it
// begins (its marks) and when it ends.
TEST_F(RuntimeCacheTest, AWriteOnOneReplicaDropsTheOthersNearCopy) {
  auto one = Start("a.db", 60000ms);
  auto two = Start("a.db", 60000ms);
  ASSERT_TRUE(one && two);
  auto c1 = one->MakeCache("things");
  auto c2 = two->MakeCache("things");
  ASSERT_TRUE(PollUntil([&] { return c1->near_live() && c2->near_live(); }));
  CountingLoader store("v1");
  ASSERT_EQ(*c1->GetOrLoad("k", store.fn()), "v1");
  ASSERT_EQ(*c2->GetOrLoad("k", store.fn()), "v1");
  std::string near;
  ASSERT_TRUE(c2->PeekNear("k", &near));
  EXPECT_EQ(near, "v1");

  auto write = std::make_unique<PendingWrite>(c1.get(), std::vector<std::string>{"k"});
  EXPECT_TRUE(PollUntil([&] { return !c2->PeekNear("k", &near); }, 200, 5ms)) << "kept after the write began";
  store.value = "v2";
  EXPECT_EQ(*c2->GetOrLoad("k", store.fn()), "v2");
  EXPECT_FALSE(c2->PeekNear("k", &near)) << "a value read during the write was kept near";
  write.reset();
  // Kept near again (once the release's own message, which may come after a first read, is heard).
  EXPECT_TRUE(PollUntil([&] { return *c2->GetOrLoad("k", store.fn()) == "v2" && c2->PeekNear("k", &near); }, 200, 5ms));
  EXPECT_EQ(near, "v2");

  // A write that ends at once (as a fast one does) also reaches the other's near copy.
  store.value = "v3";
  { PendingWrite quick(c1.get(), {"k"}); }
  EXPECT_TRUE(PollUntil([&] { return !c2->PeekNear("k", &near); }, 200, 5ms));
  EXPECT_EQ(*c2->GetOrLoad("k", store.fn()), "v3");
}

}  // namespace
}  // namespace clustergov::cache

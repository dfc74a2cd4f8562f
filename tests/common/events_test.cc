// Tests for the domain-event foundation (common/events/): the transactional outbox and its relay,
// and the consumer, against a real redis-server child process and real SQLite files. The crash
// cases run the relay or the consumer in a forked child and SIGKILL it.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <algorithm>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/cache/redis.h"
#include "common/events/consumer.h"
#include "common/events/outbox.h"
#include "common/events/schedule.h"
#include "common/store/lease.h"
#include "common/store/postgres.h"
#include "common/store/sqlite.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/postgres.h"
#include "tests/support/test_support.h"

namespace clustergov::events {
namespace {

using ::clustergov::cache::RedisClient;
using ::clustergov::cache::RedisOptions;
using ::clustergov::cache::RedisReply;
using ::clustergov::store::Connection;
using ::clustergov::store::Store;
using ::clustergov::testing::RedisServer;
using ::clustergov::testing::TempDir;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kStream[] = "cg:events:test";
constexpr char kSource[] = "clustergov/test";

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

RedisOptions ClientOptions(int port) {
  RedisOptions o;
  o.port = port;
  o.connect_timeout = 1000ms;
  o.io_timeout = 1000ms;
  o.retry_backoff = 50ms;
  return o;
}

// The sum of the samples of `name` carrying every label in `labels` (a histogram's: its count).
double Metric(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      size_t matched = 0;
      for (const auto& l : m.label) {
        auto it = labels.find(l.name);
        if (it != labels.end() && it->second == l.value) ++matched;
      }
      if (matched == labels.size()) total += m.counter.value + m.gauge.value + m.histogram.sample_count;
    }
  }
  return total;
}

// The store of a publishing (and, in these tests, also consuming) service: the outbox, the
// processed-events table, the service's own `changes` and a consumer's `effects` (deliberately
// without any uniqueness, so applying an event twice would show).
std::unique_ptr<Store> OpenStore(const std::string& path) {
  // SQLite at `path`, or a PostgreSQL database of its own in the `_postgres` run.
  const std::string location = testing::TestStoreLocation(path);
  absl::StatusOr<std::unique_ptr<Store>> db;
  if (store::IsPostgresUrl(location)) {
    store::PgOptions options;
    options.url = location;
    auto pg = store::PgDatabase::Open(options);
    if (pg.ok()) db = std::unique_ptr<Store>(std::move(*pg)); else db = pg.status();
  } else {
    store::DatabaseOptions options;
    options.path = location;
    options.synchronous_full = false;
    auto lite = store::Database::Open(options);
    if (lite.ok()) db = std::unique_ptr<Store>(std::move(*lite)); else db = lite.status();
  }
  if (!db.ok()) {
    ADD_FAILURE() << db.status();
    return nullptr;
  }
  absl::Status s = (*db)->Migrate("outbox", store::OutboxMigrations());
  if (s.ok()) s = (*db)->Migrate("events_consumer", ConsumerMigrations());
  if (s.ok()) {
    s = (*db)->Migrate("test", store::SameSchema({{1, "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                                      " subject TEXT NOT NULL);"
                                                      "CREATE TABLE revisions (subject TEXT PRIMARY KEY,"
                                                      " revision INTEGER NOT NULL);"
                                                      "CREATE TABLE effects (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                                      " event_id TEXT NOT NULL, subject TEXT NOT NULL,"
                                                      " revision INTEGER NOT NULL, consumer TEXT NOT NULL);"}}));
  }
  if (!s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  return std::move(*db);
}

common::v1::Actor TestActor() {
  common::v1::Actor actor;
  actor.set_subject("dev.operator");
  actor.set_organization("departments/industry_it");
  actor.add_roles("government");
  return actor;
}

v1::Envelope TierEvent(const std::string& cluster, int64_t revision) {
  v1::ClusterTierDesignated data;
  data.set_cluster(cluster);
  data.set_previous_tier(common::v1::TIER_NONE);
  data.set_tier(common::v1::TIER_REGION);
  return store::MakeEnvelope(kSource, cluster, data, TestActor(), revision);
}

// Commits `writes` changes, each with one event per subject in `subjects` (revisions counting
// up per subject); returns the event ids in commit order.
std::vector<std::string> CommitEvents(Store& db, int writes, const std::vector<std::string>& subjects) {
  std::vector<std::string> ids;
  for (int w = 0; w < writes; ++w) {
    std::vector<v1::Envelope> batch;
    for (const auto& s : subjects) batch.push_back(TierEvent(s, w + 1));
    absl::Status status = db.Write([&](Connection& c) -> absl::Status {
      for (const auto& e : batch) {
        auto change = c.Prepare("INSERT INTO changes (subject) VALUES (?)");
        if (!change.ok()) return change.status();
        change->Bind(1, e.subject());
        if (absl::Status s = change->Run(); !s.ok()) return s;
        if (absl::Status s = store::AppendEvent(c, e); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
    for (const auto& e : batch) ids.push_back(e.id());
  }
  return ids;
}

int64_t Count(Store& db, const std::string& sql) {
  auto n = db.ReadResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
    auto st = c.Prepare(sql);
    if (!st.ok()) return st.status();
    auto row = st->Step();
    if (!row.ok()) return row.status();
    return *row ? st->Int(0) : 0;
  });
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : -1;
}

struct StreamEntry {
  std::string stream_id;
  std::map<std::string, std::string> fields;
};

std::vector<StreamEntry> ReadStream(RedisClient& redis, const std::string& stream) {
  std::vector<StreamEntry> out;
  auto reply = redis.Command({"XRANGE", stream, "-", "+"});
  EXPECT_TRUE(reply.ok()) << reply.status();
  if (!reply.ok()) return out;
  for (const auto& item : reply->elements) {
    StreamEntry e;
    e.stream_id = item.elements[0].str;
    for (size_t i = 0; i + 1 < item.elements[1].elements.size(); i += 2) {
      e.fields[item.elements[1].elements[i].str] = item.elements[1].elements[i + 1].str;
    }
    out.push_back(std::move(e));
  }
  return out;
}

// Event ids in the stream in order of first appearance, and how many entries repeated one.
std::vector<std::string> FirstSeenIds(const std::vector<StreamEntry>& entries, int* repeats = nullptr) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  int dup = 0;
  for (const auto& e : entries) {
    const std::string& id = e.fields.at("id");
    if (seen.insert(id).second) {
      ids.push_back(id);
    } else {
      ++dup;
    }
  }
  if (repeats != nullptr) *repeats = dup;
  return ids;
}

int64_t StreamLength(RedisClient& redis, const std::string& stream) {
  auto n = redis.Command({"XLEN", stream});
  return n.ok() ? n->integer : -1;
}

RelayOptions FastRelay() {
  RelayOptions o;
  o.stream = kStream;
  o.poll_interval = 20ms;
  o.retry_backoff = 50ms;
  return o;
}

ConsumerOptions FastConsumer(const std::string& name) {
  ConsumerOptions o;
  o.stream = kStream;
  o.group = "testers";
  o.consumer = name;
  o.block = 20ms;
  o.claim_idle = 300ms;
  o.claim_interval = 50ms;
  o.retry_backoff = 50ms;
  return o;
}

// Records the event as an effect in the consumer's store.
Handler RecordEffect(const std::string& consumer) {
  return [consumer](Connection& c, const v1::Envelope& e) -> absl::Status {
    auto insert = c.Prepare("INSERT INTO effects (event_id, subject, revision, consumer) VALUES (?, ?, ?, ?)");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, e.id()).Bind(2, e.subject()).Bind(3, e.revision()).Bind(4, consumer);
    return insert->Run();
  };
}

// Each event id applied exactly once, and events of one subject applied in revision order.
void ExpectAppliedOnceInOrder(Store& db, const std::vector<std::string>& ids) {
  auto rows = db.ReadResult<std::vector<std::pair<std::string, std::pair<std::string, int64_t>>>>(
      [](Connection& c) -> absl::StatusOr<std::vector<std::pair<std::string, std::pair<std::string, int64_t>>>> {
        auto st = c.Prepare("SELECT event_id, subject, revision FROM effects ORDER BY seq");
        if (!st.ok()) return st.status();
        std::vector<std::pair<std::string, std::pair<std::string, int64_t>>> out;
        while (true) {
          auto row = st->Step();
          if (!row.ok()) return row.status();
          if (!*row) break;
          out.push_back({st->Text(0), {st->Text(1), st->Int(2)}});
        }
        return out;
      });
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::map<std::string, int> applied;
  for (const auto& r : *rows) ++applied[r.first];
  EXPECT_EQ(applied.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(applied[id], 1) << "event " << id;
  (void)rows;
}

// Reads and handles until a read finds nothing new.
void Drain(Consumer& consumer) {
  for (int i = 0; i < 100; ++i) {
    auto n = consumer.PollOnce(false);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) return;
  }
  FAIL() << "the consumer kept finding entries";
}

class EventsTest : public ::testing::Test {
 protected:
  RedisServer redis_server_;
  TempDir dir_;
  std::unique_ptr<RedisClient> redis_ = std::make_unique<RedisClient>(ClientOptions(redis_server_.port()));
};

// ================================================================== outbox and relay

TEST_F(EventsTest, CommittedEventsArePublishedInCommitOrder) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  prometheus::Registry registry;
  Relay relay(db.get(), redis_.get(), FastRelay(), &registry);
  relay.Start();

  // Concurrent writers: the commit order is whatever the writer thread chose; seq records it.
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] { CommitEvents(*db, 25, {absl::StrCat("clusters/c", t)}); });
  }
  for (auto& w : writers) w.join();
  relay.Notify();

  ASSERT_TRUE(PollUntil([&] { return StreamLength(*redis_, kStream) == 100; }));
  auto entries = ReadStream(*redis_, kStream);
  ASSERT_EQ(entries.size(), 100u);

  // The stream order is the outbox's commit order.
  std::vector<std::string> committed;
  ASSERT_TRUE(db->Read([&](Connection& c) -> absl::Status {
                  // PostgreSQL's commit order is the writing transactions' ids (store/outbox.h).
                  auto st = c.Prepare(db->backend() == store::Backend::kPostgres
                                          ? "SELECT event_id FROM outbox_events ORDER BY txid, seq"
                                          : "SELECT event_id FROM outbox_events ORDER BY seq");
                  if (!st.ok()) return st.status();
                  while (*st->Step()) committed.push_back(st->Text(0));
                  return absl::OkStatus();
                }).ok());
  int repeats = -1;
  EXPECT_EQ(FirstSeenIds(entries, &repeats), committed);
  EXPECT_EQ(repeats, 0);

  // Each entry carries the whole envelope; each subject's revisions arrive in order.
  std::map<std::string, int64_t> last_revision;
  for (const auto& e : entries) {
    v1::Envelope env;
    ASSERT_TRUE(env.ParseFromString(e.fields.at("envelope")));
    EXPECT_EQ(env.id(), e.fields.at("id"));
    EXPECT_EQ(env.type(), "clustergov.events.v1.ClusterTierDesignated");
    EXPECT_EQ(e.fields.at("type"), env.type());
    EXPECT_EQ(env.source(), kSource);
    EXPECT_EQ(env.actor().organization(), "departments/industry_it");
    EXPECT_TRUE(env.has_time());
    v1::ClusterTierDesignated data;
    ASSERT_TRUE(env.data().UnpackTo(&data));
    EXPECT_EQ(data.cluster(), env.subject());
    EXPECT_EQ(data.tier(), common::v1::TIER_REGION);
    EXPECT_EQ(env.revision(), last_revision[env.subject()] + 1) << env.subject();
    last_revision[env.subject()] = env.revision();
  }

  // Marked sent after the XADD; the gauges follow in the same pass.
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL") == 0; }));
  relay.Stop();
  EXPECT_EQ(Metric(registry, "clustergov_events_outbox_backlog"), 0);
  EXPECT_EQ(Metric(registry, "clustergov_events_published_total", {{"stream", kStream}}), 100);
  EXPECT_EQ(Metric(registry, "clustergov_events_publish_errors_total"), 0);
  EXPECT_EQ(Metric(registry, "clustergov_events_outbox_oldest_unsent_age_seconds"), 0);
}

TEST_F(EventsTest, AbortedWriteLeavesNoEvent) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);

  // The change fails after its event was appended: both roll back.
  absl::Status failed = db->Write([&](Connection& c) -> absl::Status {
    if (absl::Status s = store::AppendEvent(c, TierEvent("clusters/aborted", 1)); !s.ok()) return s;
    return absl::FailedPreconditionError("the change is refused");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kFailedPrecondition);

  // An incomplete envelope refuses the write it is part of.
  v1::Envelope incomplete = TierEvent("clusters/incomplete", 1);
  incomplete.clear_subject();
  incomplete.clear_source();
  absl::Status refused = db->Write([&](Connection& c) -> absl::Status {
    auto change = c.Prepare("INSERT INTO changes (subject) VALUES ('clusters/incomplete')");
    if (!change.ok()) return change.status();
    if (absl::Status s = change->Run(); !s.ok()) return s;
    return store::AppendEvent(c, incomplete);
  });
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("subject"));

  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM outbox_events"), 0);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM changes"), 0);
  auto published = relay.PublishOnce();
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(*published, 0);
  EXPECT_EQ(StreamLength(*redis_, kStream), 0);

  // A committed change next to them is published alone.
  auto ids = CommitEvents(*db, 1, {"clusters/kept"});
  published = relay.PublishOnce();
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(*published, 1);
  EXPECT_EQ(FirstSeenIds(ReadStream(*redis_, kStream)), ids);
}

TEST_F(EventsTest, RedisOutageGrowsTheBacklogAndLosesNothing) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  prometheus::Registry registry;
  Relay relay(db.get(), redis_.get(), FastRelay(), &registry);
  relay.Start();

  redis_server_.Stop();
  auto ids = CommitEvents(*db, 30, {"clusters/a", "clusters/b"});
  relay.Notify();
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_events_outbox_backlog") == 60; }));
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_events_publish_errors_total") >= 2; }));
  std::this_thread::sleep_for(1100ms);
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_events_outbox_oldest_unsent_age_seconds") >= 1; }));
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL"), 60);

  redis_server_.Start();
  ASSERT_TRUE(PollUntil([&] { return StreamLength(*redis_, kStream) >= 60; }));
  int repeats = -1;
  EXPECT_EQ(FirstSeenIds(ReadStream(*redis_, kStream), &repeats), ids);
  EXPECT_EQ(repeats, 0);
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_events_outbox_backlog") == 0; }));
  EXPECT_EQ(Metric(registry, "clustergov_events_outbox_oldest_unsent_age_seconds"), 0);
  EXPECT_EQ(Metric(registry, "clustergov_events_published_total"), 60);
}

// Runs `child` in a forked process (its exit code is the result) and returns its pid. Nothing
// of this process's state is shared but files and sockets opened by the child itself.
pid_t Fork(const std::function<int()>& child) {
  pid_t pid = fork();
  if (pid == 0) _exit(child());
  return pid;
}

TEST_F(EventsTest, RelayKilledMidStreamLosesNothing) {
  const std::string path = dir_.File("store.db");
  std::vector<std::string> ids;
  {
    auto db = OpenStore(path);
    ASSERT_NE(db, nullptr);
    ids = CommitEvents(*db, 3000, {"clusters/a", "clusters/b"});
  }
  const int port = redis_server_.port();
  RelayOptions options = FastRelay();
  options.batch = 5;  // many small passes: the kill lands between some XADD and its mark
  pid_t child = Fork([&] {
    auto db = OpenStore(path);
    if (db == nullptr) return 1;
    RedisClient redis(ClientOptions(port));
    Relay relay(db.get(), &redis, options, nullptr);
    relay.Start();
    pause();
    return 0;
  });
  ASSERT_GT(child, 0);
  ASSERT_TRUE(PollUntil([&] { return StreamLength(*redis_, kStream) >= 500; }));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  const int64_t published_before = StreamLength(*redis_, kStream);
  ASSERT_LT(published_before, 6000) << "the relay was not killed mid-stream";

  auto db = OpenStore(path);
  ASSERT_NE(db, nullptr);
  EXPECT_GT(Count(*db, "SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL"), 0);
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  relay.Start();
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL") == 0; }));
  relay.Stop();

  // Everything in commit order (by first appearance); a repeat only of what was in flight.
  int repeats = -1;
  EXPECT_EQ(FirstSeenIds(ReadStream(*redis_, kStream), &repeats), ids);
  EXPECT_LE(repeats, options.batch);
  std::cout << "relay killed after " << published_before << " entries; " << repeats << " republished\n";
}

// ================================================================== consumer

TEST_F(EventsTest, ConsumerAppliesEachEventOnceWhenDeliveredTwice) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  auto ids = CommitEvents(*db, 20, {"clusters/a", "clusters/b", "clusters/c"});
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  ASSERT_EQ(*relay.PublishOnce(), 60);
  // The relay published the first ten again (as after a crash between XADD and its mark).
  ASSERT_TRUE(db->Write([](Connection& c) {
                  return c.Exec("UPDATE outbox_events SET sent_micros = NULL WHERE seq <= 10");
                }).ok());
  ASSERT_EQ(*relay.PublishOnce(), 10);
  ASSERT_EQ(StreamLength(*redis_, kStream), 70);

  prometheus::Registry registry;
  Consumer consumer(db.get(), redis_.get(), FastConsumer("c1"), RecordEffect("c1"), &registry);
  Drain(consumer);
  ExpectAppliedOnceInOrder(*db, ids);
  EXPECT_EQ(Metric(registry, "clustergov_events_handled_total"), 60);
  EXPECT_EQ(Metric(registry, "clustergov_events_apply_lag_seconds"), 60);  // one observation per applied event
  EXPECT_EQ(Metric(registry, "clustergov_events_duplicates_total"), 10);

  // Per subject, in revision order (one consumer reading the stream in order).
  std::map<std::string, int64_t> last;
  ASSERT_TRUE(db->Read([&](Connection& c) -> absl::Status {
                  auto st = c.Prepare("SELECT subject, revision FROM effects ORDER BY seq");
                  if (!st.ok()) return st.status();
                  while (*st->Step()) {
                    EXPECT_EQ(st->Int(1), last[st->Text(0)] + 1);
                    last[st->Text(0)] = st->Int(1);
                  }
                  return absl::OkStatus();
                }).ok());

  // Everything delivered again (the group rewound, as when an acknowledgement was lost).
  ASSERT_EQ(redis_server_.Cli({"XGROUP", "SETID", kStream, "testers", "0"}), "OK");
  Drain(consumer);
  ExpectAppliedOnceInOrder(*db, ids);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM effects"), 60);
  EXPECT_EQ(Metric(registry, "clustergov_events_duplicates_total"), 80);
  EXPECT_EQ(redis_server_.Cli({"XPENDING", kStream, "testers"}).substr(0, 1), "0");
}

TEST_F(EventsTest, PendingEventsOfADeadConsumerAreClaimedByAnother) {
  const std::string path = dir_.File("store.db");
  std::vector<std::string> ids;
  {
    auto db = OpenStore(path);
    ASSERT_NE(db, nullptr);
    ids = CommitEvents(*db, 50, {"clusters/a", "clusters/b"});
    Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
    while (*relay.PublishOnce() > 0) {
    }
  }
  ASSERT_EQ(StreamLength(*redis_, kStream), 100);

  // Consumer "a" handles batches of 20 and hangs inside its second batch's transaction (after
  // applying part of it); then it is SIGKILLed.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const int port = redis_server_.port();
  pid_t child = Fork([&] {
    close(ready[0]);
    auto db = OpenStore(path);
    if (db == nullptr) return 1;
    RedisClient redis(ClientOptions(port));
    ConsumerOptions options = FastConsumer("a");
    options.batch = 20;
    int handled = 0;
    Handler record = RecordEffect("a");
    Consumer consumer(db.get(), &redis, options, [&](Connection& c, const v1::Envelope& e) -> absl::Status {
      if (++handled == 30) {
        (void)!write(ready[1], "x", 1);
        pause();
      }
      return record(c, e);
    }, nullptr);
    if (!consumer.Start().ok()) return 1;
    pause();
    return 0;
  });
  ASSERT_GT(child, 0);
  close(ready[1]);
  pollfd pfd{ready[0], POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 20000), 1) << "consumer a never reached its 30th event";
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  // Its second batch was delivered and never acknowledged.
  EXPECT_THAT(redis_server_.Cli({"XPENDING", kStream, "testers"}), ::testing::StartsWith("20"));

  auto db = OpenStore(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM effects"), 20);  // the first batch; the second rolled back
  prometheus::Registry registry;
  Consumer b(db.get(), redis_.get(), FastConsumer("b"), RecordEffect("b"), &registry);
  ASSERT_TRUE(b.Start().ok());
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 100; }));
  ASSERT_TRUE(PollUntil([&] { return absl::StartsWith(redis_server_.Cli({"XPENDING", kStream, "testers"}), "0"); }));
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_events_pending") == 0; }));
  b.Stop();
  ExpectAppliedOnceInOrder(*db, ids);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM effects WHERE consumer = 'a'"), 20);
  EXPECT_EQ(Metric(registry, "clustergov_events_redeliveries_total"), 20);
  EXPECT_EQ(Metric(registry, "clustergov_events_handled_total"), 80);
  EXPECT_EQ(Metric(registry, "clustergov_events_stream_length"), 100);
}

TEST_F(EventsTest, PoisonEventGoesToTheDeadLetterStreamWhileOthersFlow) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  auto good_before = CommitEvents(*db, 5, {"clusters/a"});
  auto poison = CommitEvents(*db, 1, {"clusters/poison"});
  auto good_after = CommitEvents(*db, 15, {"clusters/a"});
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  ASSERT_EQ(*relay.PublishOnce(), 21);
  // And an entry no relay wrote: no envelope at all.
  ASSERT_TRUE(redis_->Command({"XADD", kStream, "*", "id", "garbage", "envelope", "not a protobuf \xff"}).ok());

  prometheus::Registry registry;
  ConsumerOptions options = FastConsumer("c1");
  options.max_attempts = 3;
  options.claim_idle = 700ms;
  Handler record = RecordEffect("c1");
  Consumer consumer(db.get(), redis_.get(), options, [&](Connection& c, const v1::Envelope& e) -> absl::Status {
    if (e.subject() == "clusters/poison") {
      // Its partial effect must roll back with it.
      if (absl::Status s = record(c, e); !s.ok()) return s;
      return absl::InternalError("cannot apply this event");
    }
    return record(c, e);
  }, &registry);
  ASSERT_TRUE(consumer.Start().ok());

  // Everything else is applied at once, long before the poison's attempts run out.
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 20; }));
  EXPECT_EQ(StreamLength(*redis_, consumer.options().dead_letter_stream), 1);  // the garbage only

  const std::string dlq = consumer.options().dead_letter_stream;
  EXPECT_EQ(dlq, absl::StrCat(kStream, ":dead:testers"));
  ASSERT_TRUE(PollUntil([&] { return StreamLength(*redis_, dlq) == 2; }));
  ASSERT_TRUE(PollUntil([&] { return absl::StartsWith(redis_server_.Cli({"XPENDING", kStream, "testers"}), "0"); }));
  consumer.Stop();

  auto dead = ReadStream(*redis_, dlq);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].fields["id"], "");  // the garbage entry: no envelope could be read
  EXPECT_THAT(dead[0].fields["error"], HasSubstr("no valid envelope"));
  EXPECT_EQ(dead[1].fields["id"], poison[0]);
  EXPECT_EQ(dead[1].fields["attempts"], "3");
  EXPECT_EQ(dead[1].fields["group"], "testers");
  EXPECT_THAT(dead[1].fields["error"], HasSubstr("cannot apply this event"));
  v1::Envelope env;
  ASSERT_TRUE(env.ParseFromString(dead[1].fields["envelope"]));
  EXPECT_EQ(env.subject(), "clusters/poison");

  std::vector<std::string> good = good_before;
  good.insert(good.end(), good_after.begin(), good_after.end());
  ExpectAppliedOnceInOrder(*db, good);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM processed_events WHERE subject = 'clusters/poison'"), 0);
  EXPECT_EQ(Metric(registry, "clustergov_events_dead_letters_total"), 2);
  EXPECT_EQ(Metric(registry, "clustergov_events_handler_failures_total"), 3);
  EXPECT_EQ(Metric(registry, "clustergov_events_redeliveries_total"), 2);
  EXPECT_EQ(Metric(registry, "clustergov_events_handled_total"), 20);
}

TEST_F(EventsTest, ConsumerRecreatesItsGroupWhenRedisLosesIt) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  Consumer consumer(db.get(), redis_.get(), FastConsumer("c1"), RecordEffect("c1"), nullptr);
  relay.Start();
  ASSERT_TRUE(consumer.Start().ok());
  auto ids = CommitEvents(*db, 10, {"clusters/a"});
  relay.Notify();
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 10; }));

  // Redis restarts empty (no persistence): the stream and the group are gone.
  redis_server_.Stop();
  redis_server_.Start();
  auto more = CommitEvents(*db, 10, {"clusters/a"});
  relay.Notify();
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 20; }));
  relay.Stop();
  consumer.Stop();
  ids.insert(ids.end(), more.begin(), more.end());
  ExpectAppliedOnceInOrder(*db, ids);
  EXPECT_THAT(redis_server_.Cli({"XINFO", "GROUPS", kStream}), HasSubstr("testers"));
}

// Commit-to-effect latency through the relay and one consumer (the same process and store here;
// in the deployment they are two services), and events per second through one stream.
TEST_F(EventsTest, EndToEndLatencyAndThroughput) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  std::mutex mu;
  std::vector<int64_t> latencies;
  Handler record = RecordEffect("c1");
  Consumer consumer(db.get(), redis_.get(), FastConsumer("c1"), [&](Connection& c, const v1::Envelope& e) -> absl::Status {
    if (absl::Status s = record(c, e); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu);
    latencies.push_back(store::NowMicros() - google::protobuf::util::TimeUtil::TimestampToMicroseconds(e.time()));
    return absl::OkStatus();
  }, nullptr);
  relay.Start();
  ASSERT_TRUE(consumer.Start().ok());

  // Paced: one event every 2 ms from one writer, each commit followed by Notify().
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    auto one = CommitEvents(*db, 1, {absl::StrCat("clusters/c", i % 13)});
    relay.Notify();
    ids.insert(ids.end(), one.begin(), one.end());
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 300; }));
  std::vector<int64_t> paced;
  {
    std::lock_guard<std::mutex> lock(mu);
    paced.swap(latencies);
  }

  // Flooded: 8 writers commit 10,000 events as fast as they can.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> writers;
  std::mutex ids_mu;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      auto mine = CommitEvents(*db, 1250, {absl::StrCat("clusters/w", t)});
      relay.Notify();
      std::lock_guard<std::mutex> lock(ids_mu);
      ids.insert(ids.end(), mine.begin(), mine.end());
    });
  }
  for (auto& w : writers) w.join();
  relay.Notify();
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 10300; }, 60s));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  relay.Stop();
  consumer.Stop();
  ExpectAppliedOnceInOrder(*db, ids);

  auto percentile = [](std::vector<int64_t> v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : static_cast<double>(v[static_cast<size_t>(p * (v.size() - 1))]) / 1000.0;
  };
  std::cout << "events, commit to the consumer's handler, paced (one per 2 ms): p50 " << percentile(paced, 0.5) << " ms, p99 "
            << percentile(paced, 0.99) << " ms; flooded: " << static_cast<int>(10000 / seconds)
            << " events/s committed, published and applied\n";
  EXPECT_EQ(paced.size(), 300u);
}

// ================================================================== across replicas

// Writers racing on shared aggregates (read the revision, write the next, append its event): on
// PostgreSQL they conflict and retry, and the relay publishes below the oldest running transaction;
// either way each aggregate's events reach the stream in revision order, none missing.
TEST_F(EventsTest, RacingWritersKeepEachAggregatesOrder) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  Relay relay(db.get(), redis_.get(), FastRelay(), nullptr);
  relay.Start();
  const std::vector<std::string> subjects = {"clusters/a", "clusters/b", "clusters/c"};
  std::vector<std::thread> writers;
  for (int t = 0; t < 6; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string& subject = subjects[(t + i) % subjects.size()];
        absl::Status s = db->Write([&](Connection& c) -> absl::Status {
          auto read = c.Prepare("SELECT revision FROM revisions WHERE subject = ?");
          if (!read.ok()) return read.status();
          read->Bind(1, subject);
          auto row = read->Step();
          if (!row.ok()) return row.status();
          const int64_t next = (*row ? read->Int(0) : 0) + 1;
          auto write = c.Prepare("INSERT INTO revisions (subject, revision) VALUES (?, ?) "
                                 "ON CONFLICT (subject) DO UPDATE SET revision = excluded.revision");
          if (!write.ok()) return write.status();
          write->Bind(1, subject).Bind(2, next);
          if (absl::Status w = write->Run(); !w.ok()) return w;
          return store::AppendEvent(c, TierEvent(subject, next));
        });
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(PollUntil([&] { return StreamLength(*redis_, kStream) >= 120; }));
  relay.Stop();
  std::map<std::string, int64_t> last;
  int entries = 0;
  for (const auto& e : ReadStream(*redis_, kStream)) {
    v1::Envelope env;
    ASSERT_TRUE(env.ParseFromString(e.fields.at("envelope")));
    if (env.revision() <= last[env.subject()]) continue;  // a repeat (at least once)
    EXPECT_EQ(env.revision(), last[env.subject()] + 1) << env.subject() << " skipped or reordered";
    last[env.subject()] = env.revision();
    ++entries;
  }
  EXPECT_EQ(entries, 120);
}

TEST_F(EventsTest, LeaseFencesAFormerHolder) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  auto a = store::TryAcquireLease(*db, "job:test", "replica-a", 200ms);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->has_value());
  // Held: another replica is refused, the holder renews with the same token.
  auto b = store::TryAcquireLease(*db, "job:test", "replica-b", 200ms);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->has_value());
  auto renewed = store::TryAcquireLease(*db, "job:test", "replica-a", 200ms);
  ASSERT_TRUE(renewed.ok() && renewed->has_value());
  EXPECT_EQ((*renewed)->token, (**a).token);

  // Expired: b takes over with a newer token, and a's writes under its old fence abort.
  std::optional<store::LeaseFence> taken;
  ASSERT_TRUE(PollUntil([&] {
    auto t = store::TryAcquireLease(*db, "job:test", "replica-b", 10s);
    if (t.ok() && t->has_value()) taken = **t;
    return taken.has_value();
  }, 5s));
  EXPECT_GT(taken->token, (**a).token);
  const store::LeaseFence old = **a;
  absl::Status stale = db->Write([&](Connection& c) -> absl::Status {
    if (absl::Status f = store::CheckLeaseFence(c, old); !f.ok()) return f;
    auto change = c.Prepare("INSERT INTO changes (subject) VALUES ('by the former holder')");
    if (!change.ok()) return change.status();
    return change->Run();
  });
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM changes"), 0);
  EXPECT_TRUE(db->Write([&](Connection& c) { return store::CheckLeaseFence(c, *taken); }).ok());

  // Released: the next replica gets it at once.
  ASSERT_TRUE(store::ReleaseLease(*db, *taken).ok());
  auto c = store::TryAcquireLease(*db, "job:test", "replica-c", 10s);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_GT((*c)->token, taken->token);
}

// Two replicas run the same scheduled job: never both at once, and the standby takes over when
// the leader stops.
TEST_F(EventsTest, ScheduledJobRunsOnOneReplicaAtATime) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  std::atomic<int> running{0};
  std::atomic<int> overlaps{0};
  std::mutex mu;
  std::map<std::string, int> runs;
  auto job = [&](const std::string& replica) {
    return [&, replica](const store::LeaseFence& fence) -> absl::Status {
      if (running.fetch_add(1) != 0) ++overlaps;
      std::this_thread::sleep_for(5ms);
      absl::Status s = db->Write([&](Connection& c) -> absl::Status {
        if (absl::Status f = store::CheckLeaseFence(c, fence); !f.ok()) return f;
        auto change = c.Prepare("INSERT INTO changes (subject) VALUES (?)");
        if (!change.ok()) return change.status();
        change->Bind(1, replica);
        return change->Run();
      });
      running.fetch_sub(1);
      std::lock_guard<std::mutex> lock(mu);
      ++runs[replica];
      return s;
    };
  };
  prometheus::Registry registry;
  ScheduleOptions options;
  options.name = "test";
  options.interval = 20ms;
  options.lease_ttl = 300ms;
  options.holder = "replica-a";
  auto a = std::make_unique<ScheduledJob>(db.get(), options, job("replica-a"), &registry);
  options.holder = "replica-b";
  ScheduledJob b(db.get(), options, job("replica-b"), nullptr);
  a->Start();
  ASSERT_TRUE(PollUntil([&] { return Metric(registry, "clustergov_scheduled_job_runs_total") >= 5; }));
  b.Start();
  std::this_thread::sleep_for(300ms);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(runs["replica-b"], 0) << "the standby ran while the leader held the lease";
  }
  EXPECT_EQ(Metric(registry, "clustergov_scheduled_job_leader"), 1);
  EXPECT_GT(Metric(registry, "clustergov_scheduled_job_last_success_timestamp_seconds"), 0);
  a.reset();  // stops and releases the lease
  ASSERT_TRUE(PollUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return runs["replica-b"] >= 3;
  }));
  b.Stop();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM changes WHERE subject = 'replica-b'"), runs["replica-b"]);
}

// PostgreSQL, where every replica runs a relay and a consumer: one relay publishes each event
// once, one consumer of the group applies it, and a standby takes over when the leader stops.
TEST_F(EventsTest, OneRelayAndOneConsumerPerGroupAcrossReplicas) {
  auto db = OpenStore(dir_.File("store.db"));
  ASSERT_NE(db, nullptr);
  if (db->backend() != store::Backend::kPostgres) {
    GTEST_SKIP() << "one process owns a SQLite store; the PostgreSQL run covers replicas";
  }
  prometheus::Registry ra, rb;
  RelayOptions relay_options = FastRelay();
  relay_options.holder = "replica-a";
  auto relay_a = std::make_unique<Relay>(db.get(), redis_.get(), relay_options, &ra);
  relay_options.holder = "replica-b";
  Relay relay_b(db.get(), redis_.get(), relay_options, &rb);
  auto consumer_a = std::make_unique<Consumer>(db.get(), redis_.get(), FastConsumer("replica-a"),
                                               RecordEffect("replica-a"), &ra);
  Consumer consumer_b(db.get(), redis_.get(), FastConsumer("replica-b"), RecordEffect("replica-b"), &rb);
  relay_a->Start();
  ASSERT_TRUE(consumer_a->Start().ok());
  auto first = CommitEvents(*db, 20, {"clusters/x"});
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 20; }));
  relay_b.Start();
  ASSERT_TRUE(consumer_b.Start().ok());
  auto second = CommitEvents(*db, 30, {"clusters/x"});
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 50; }));
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM effects WHERE consumer = 'replica-b'"), 0);
  EXPECT_EQ(Metric(rb, "clustergov_events_published_total"), 0);

  // The leaders stop (releasing their leases): the standbys carry on.
  relay_a.reset();
  consumer_a.reset();
  auto third = CommitEvents(*db, 30, {"clusters/x"});
  ASSERT_TRUE(PollUntil([&] { return Count(*db, "SELECT COUNT(*) FROM effects") == 80; }));
  EXPECT_EQ(Count(*db, "SELECT COUNT(*) FROM effects WHERE consumer = 'replica-b'"), 30);
  relay_b.Stop();
  consumer_b.Stop();
  std::vector<std::string> ids = first;
  ids.insert(ids.end(), second.begin(), second.end());
  ids.insert(ids.end(), third.begin(), third.end());
  ExpectAppliedOnceInOrder(*db, ids);
  int repeats = -1;
  EXPECT_EQ(FirstSeenIds(ReadStream(*redis_, kStream), &repeats), ids);
  EXPECT_EQ(repeats, 0);
}

}  // namespace
}  // namespace clustergov::events

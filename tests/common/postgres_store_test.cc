// The PostgreSQL store layer (common/store/postgres.h) against a real PostgreSQL 15 the test starts:
// connection errors that name the server and never the password, parameters and NULLs, rollback,
// the error mapping shared with SQLite, serializable transactions retried under contention,
// migrations applied once by replicas starting together, a schema newer than the binary, the
// bounded pool, a server restart under an open pool, and the change feed (Notify/Listen):
// delivery at commit in commit order, and a listener that reconnects and resyncs.

#include "common/store/postgres.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status/status.h"
#include "common/store/identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/postgres.h"

namespace clustergov::store {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PostgresStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PostgresServer(); }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  // A fresh database per test.
  void SetUp() override {
    name_ = absl::StrCat("t", ++counter_);
    ASSERT_EQ(pg_->Psql(absl::StrCat("CREATE DATABASE ", name_)), "CREATE DATABASE");
  }

  std::unique_ptr<PgDatabase> Open(int pool_size = 4, absl::Duration acquire = absl::Seconds(5),
                                   prometheus::Registry* metrics = nullptr) {
    PgOptions o;
    o.url = pg_->ConnectionString(name_);
    o.pool_size = pool_size;
    o.acquire_timeout = acquire;
    o.metrics = metrics;
    auto db = PgDatabase::Open(o);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  absl::Status Exec(PgDatabase& db, const std::string& sql, const std::vector<PgParam>& params = {}) {
    return db.Transaction(Isolation::kReadCommitted,
                          [&](PgConnection& c) -> absl::Status { return c.Exec(sql, params).status(); });
  }

  std::string Query(const std::string& sql) { return pg_->Psql(sql, name_); }

  static testing::PostgresServer* pg_;
  static int counter_;
  std::string name_;
};

testing::PostgresServer* PostgresStoreTest::pg_ = nullptr;
int PostgresStoreTest::counter_ = 0;

TEST_F(PostgresStoreTest, AnUnreachableServerIsAClearErrorWithoutThePassword) {
  PgOptions o;
  o.url = absl::StrCat("postgres://app:s3cret-pass@127.0.0.1:", testing::FreePort(), "/clustergov");
  o.connect_timeout = absl::Seconds(2);
  auto db = PgDatabase::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(absl::IsUnavailable(db.status())) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr("cannot connect to PostgreSQL at 127.0.0.1:"));
  EXPECT_THAT(db.status().message(), Not(HasSubstr("s3cret")));
  o.url = "/var/lib/clustergov/clusters.db";
  EXPECT_TRUE(absl::IsInvalidArgument(PgDatabase::Open(o).status()));
  // A database that does not exist on a server that does.
  o.url = pg_->ConnectionString("no_such_database");
  auto missing = PgDatabase::Open(o);
  EXPECT_TRUE(absl::IsUnavailable(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("no_such_database"));
}

TEST_F(PostgresStoreTest, ParametersNullsAndRollback) {
  auto db = Open();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (id bigint PRIMARY KEY, name text)").ok());
  ASSERT_TRUE(Exec(*db, "INSERT INTO t VALUES ($1, $2), ($3, $4)", {"1", "呼和浩特'; DROP TABLE t; --", "2", std::nullopt})
                  .ok());
  auto rows = db->TransactionResult<PgResult>(Isolation::kReadCommitted, [](PgConnection& c) {
    return c.Exec("SELECT id, name FROM t ORDER BY id");
  });
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->rows(), 2);
  EXPECT_EQ(rows->Int(0, 0), 1);
  EXPECT_EQ(rows->Text(0, 1), "呼和浩特'; DROP TABLE t; --");
  EXPECT_TRUE(rows->IsNull(1, 1));
  // A failing body leaves nothing of what it did.
  absl::Status s = db->Transaction(Isolation::kReadCommitted, [](PgConnection& c) -> absl::Status {
    CG_RETURN_IF_ERROR(c.Exec("INSERT INTO t VALUES (3, 'x')").status());
    return absl::InvalidArgumentError("refused after the insert");
  });
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_EQ(Query("SELECT count(*) FROM t"), "2");
}

TEST_F(PostgresStoreTest, IntegrityErrorsMapAsInTheSqliteLayer) {
  auto db = Open();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, R"sql(
    CREATE TABLE pools (name text PRIMARY KEY, capacity bigint NOT NULL, allocated bigint NOT NULL,
                        CHECK (allocated <= capacity));
    CREATE TABLE ledger (id bigserial PRIMARY KEY, pool text NOT NULL REFERENCES pools (name), quantity bigint);
    CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'ledger is append-only'; END $$;
    CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger FOR EACH ROW EXECUTE FUNCTION append_only();
    INSERT INTO pools VALUES ('p', 100, 0);
    INSERT INTO ledger (pool, quantity) VALUES ('p', 10);
  )sql").ok());
  absl::Status s = Exec(*db, "INSERT INTO pools VALUES ('p', 5, 0)");
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  s = Exec(*db, "UPDATE pools SET allocated = 101");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  s = Exec(*db, "INSERT INTO ledger (pool, quantity) VALUES ('nope', 1)");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  s = Exec(*db, "INSERT INTO pools (name, allocated) VALUES ('q', 0)");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  s = Exec(*db, "UPDATE ledger SET quantity = 0");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  // The SQL and the server's words stay in the log.
  EXPECT_THAT(s.message(), Not(HasSubstr("append-only")));
  s = Exec(*db, "SELEC 1");
  EXPECT_TRUE(absl::IsInternal(s)) << s;
}

TEST_F(PostgresStoreTest, SerializableReadModifyWriteUnderContentionLosesNoUpdate) {
  auto db = Open(/*pool_size=*/6);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE pool (id int PRIMARY KEY, free bigint NOT NULL CHECK (free >= 0));"
                        " INSERT INTO pool VALUES (1, 5000)")
                  .ok());
  // Six writers each take 10 units 20 times by reading the balance and writing it back: without
  // serializable isolation (or with retries dropped) updates would be lost.
  constexpr int kWriters = 6, kEach = 20;
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        absl::Status s = db->Transaction(Isolation::kSerializable, [](PgConnection& c) -> absl::Status {
          CG_ASSIGN_OR_RETURN(auto r, c.Exec("SELECT free FROM pool WHERE id = 1"));
          return c.Exec("UPDATE pool SET free = $1 WHERE id = 1", {absl::StrCat(r.Int(0, 0) - 10)}).status();
        });
        if (!s.ok()) {
          EXPECT_TRUE(absl::IsAborted(s)) << s;  // only ever a conflict that outlived its retries
          ++failed;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  const int succeeded = kWriters * kEach - failed.load();
  EXPECT_EQ(Query("SELECT free FROM pool"), absl::StrCat(5000 - 10 * succeeded));
  EXPECT_GT(succeeded, kWriters * kEach / 2);
  EXPECT_GT(db->serialization_retries(), 0) << "no contention was produced: the test proves nothing";
}

TEST_F(PostgresStoreTest, MigrationsApplyOnceWhenReplicasStartTogether) {
  const std::vector<Migration> v2 = {
      {1, "CREATE TABLE clusters (id text PRIMARY KEY, data bytea NOT NULL)"},
      {2, "ALTER TABLE clusters ADD COLUMN revision bigint NOT NULL DEFAULT 1"},
  };
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<PgDatabase>> replicas;
  for (int i = 0; i < kReplicas; ++i) replicas.push_back(Open(2));
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> starting;
  for (int i = 0; i < kReplicas; ++i) {
    starting.emplace_back([&, i] { results[i] = replicas[i]->Migrate("clusters", v2); });
  }
  for (auto& t : starting) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Query("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"
                  " WHERE component = 'clusters'"),
            "1,2");
  EXPECT_EQ(Query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'clusters'"), "3");
  // Running again changes nothing; another component has its own versions.
  EXPECT_TRUE(replicas[0]->Migrate("clusters", v2).ok());
  EXPECT_TRUE(replicas[0]->Migrate("core", {{1, "CREATE TABLE audit_events (id bigserial PRIMARY KEY)"}}).ok());
  EXPECT_EQ(Query("SELECT count(*) FROM schema_migrations"), "3");

  // An older binary (it knows version 1 only) refuses the newer schema instead of writing to it.
  absl::Status older = replicas[1]->Migrate("clusters", {v2[0]});
  EXPECT_TRUE(absl::IsFailedPrecondition(older)) << older;
  EXPECT_THAT(older.message(), HasSubstr("at version 2, newer than this binary's 1"));
  // A migration that fails leaves nothing half-applied.
  absl::Status bad = replicas[0]->Migrate("clusters", {v2[0], v2[1], {3, "ALTER TABLE clusters ADD COLUMN x int;"
                                                                         " ALTER TABLE nope ADD COLUMN y int"}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(Query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'clusters'"), "3");
  EXPECT_EQ(Query("SELECT max(version) FROM schema_migrations WHERE component = 'clusters'"), "2");
}

TEST_F(PostgresStoreTest, ThePoolIsBoundedAndWaitsAtMostTheAcquireTimeout) {
  auto db = Open(/*pool_size=*/2, /*acquire=*/absl::Milliseconds(300));
  ASSERT_NE(db, nullptr);
  absl::Notification release;
  std::atomic<int> holding{0};
  std::vector<std::thread> holders;
  for (int i = 0; i < 2; ++i) {
    holders.emplace_back([&] {
      EXPECT_TRUE(db->Transaction(Isolation::kReadCommitted, [&](PgConnection&) {
                      ++holding;
                      release.WaitForNotification();
                      return absl::OkStatus();
                    }).ok());
    });
  }
  while (holding.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  absl::Status s = Exec(*db, "SELECT 1");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("no free connection"));
  EXPECT_EQ(Query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clustergov'"
                  " AND datname = current_database()"),
            "2");
  release.Notify();
  for (auto& t : holders) t.join();
  EXPECT_TRUE(Exec(*db, "SELECT 1").ok());
}

TEST_F(PostgresStoreTest, APoolSurvivesAServerRestart) {
  auto db = Open(/*pool_size=*/3);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(Exec(*db, "INSERT INTO t VALUES (1)").ok());
  pg_->Stop();
  absl::Status down = Exec(*db, "INSERT INTO t VALUES (2)");
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  pg_->Start();
  // The pool's connections died with the server: they are replaced, nothing is reported.
  EXPECT_TRUE(Exec(*db, "INSERT INTO t VALUES (3)").ok());
  EXPECT_EQ(Query("SELECT string_agg(id::text, ',' ORDER BY id) FROM t"), "1,3");
}

// What a listener heard, for a test to wait on.
struct Heard {
  std::unique_ptr<Subscription> Listen(Store& db, const std::string& channel) {
    auto sub = db.Listen(
        channel,
        [this](const std::string& payload) {
          std::lock_guard<std::mutex> lock(mu);
          payloads.push_back(payload);
          cv.notify_all();
        },
        [this] {
          std::lock_guard<std::mutex> lock(mu);
          ++resyncs;
          cv.notify_all();
        });
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? std::move(*sub) : nullptr;
  }
  // Whether `done` holds (under the lock) within a few seconds.
  bool Until(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), done);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> payloads;
  int resyncs = 0;
};

double Counted(prometheus::Registry& registry, const std::string& family) {
  for (const auto& f : registry.Collect()) {
    if (f.name == family && f.metric.size() == 1) return f.metric[0].counter.value;
  }
  return -1;
}

absl::Status Announce(Store& db, const std::string& payload) {
  return db.Write([&](Connection& c) { return c.Notify("talent-feed", payload); });
}

TEST_F(PostgresStoreTest, NotificationsArriveAtCommitInCommitOrderFromEveryReplica) {
  prometheus::Registry metrics;
  auto a = Open(4, absl::Seconds(5), &metrics);
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Heard heard;
  auto sub = heard.Listen(*a, "talent-feed");  // quoted: the channel is not a plain identifier
  ASSERT_NE(sub, nullptr);

  ASSERT_TRUE(Announce(*a, "1").ok());
  // A write that fails announces nothing.
  absl::Status failed = a->Write([](Connection& c) -> absl::Status {
    CG_RETURN_IF_ERROR(c.Notify("talent-feed", "rolled back"));
    return absl::FailedPreconditionError("refused after the notify");
  });
  EXPECT_TRUE(absl::IsFailedPrecondition(failed)) << failed;
  // "early" is announced first but committed last: it arrives last.
  absl::Notification announced, release;
  std::thread open_write([&] {
    EXPECT_TRUE(b->Write([&](Connection& c) -> absl::Status {
                   CG_RETURN_IF_ERROR(c.Notify("talent-feed", "early"));
                   announced.Notify();
                   release.WaitForNotification();
                   return absl::OkStatus();
                 }).ok());
  });
  announced.WaitForNotification();
  ASSERT_TRUE(Announce(*b, "late").ok());
  ASSERT_TRUE(heard.Until([&] { return heard.payloads.size() >= 2; }));
  release.Notify();
  open_write.join();

  ASSERT_TRUE(heard.Until([&] { return heard.payloads.size() >= 3; }));
  EXPECT_EQ(heard.payloads, (std::vector<std::string>{"1", "late", "early"}));
  EXPECT_EQ(heard.resyncs, 0);
  EXPECT_EQ(Counted(metrics, "clustergov_store_notifications_received_total"), 3);
}

TEST_F(PostgresStoreTest, AListenerWhoseConnectionIsKilledReconnectsAndResyncs) {
  prometheus::Registry metrics;
  auto db = Open(4, absl::Seconds(5), &metrics);
  ASSERT_NE(db, nullptr);
  Heard heard;
  auto sub = heard.Listen(*db, "talent-feed");
  ASSERT_NE(sub, nullptr);
  const std::string listener = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clustergov-listener'"
                               " AND datname = current_database() AND query LIKE 'LISTEN%'";
  EXPECT_EQ(Query(listener), "1");
  EXPECT_EQ(Query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name ="
                  " 'clustergov-listener' AND datname = current_database()"),
            "t");
  ASSERT_TRUE(heard.Until([&] { return heard.resyncs == 1; }));
  EXPECT_EQ(Query(listener), "1");
  ASSERT_TRUE(Announce(*db, "after").ok());
  ASSERT_TRUE(heard.Until([&] { return !heard.payloads.empty(); }));
  EXPECT_EQ(heard.payloads, std::vector<std::string>{"after"});
  EXPECT_EQ(Counted(metrics, "clustergov_store_listener_resyncs_total"), 1);

  // Down with its server, it retries until destroyed, which returns without waiting for a server.
  pg_->Stop();
  sub.reset();
  pg_->Start();
  EXPECT_EQ(heard.resyncs, 1);
}

// Replicas starting together on one database agree on its identity; another database has its own.
TEST_F(PostgresStoreTest, ReplicasStartingTogetherAgreeOnTheStoreIdentity) {
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<PgDatabase>> replicas;
  for (int i = 0; i < kReplicas; ++i) replicas.push_back(Open(2));
  std::vector<absl::StatusOr<std::string>> ids(kReplicas, absl::UnknownError("not run"));
  std::vector<std::thread> starting;
  for (int i = 0; i < kReplicas; ++i) {
    starting.emplace_back([&, i] { ids[i] = StoreIdentity(*replicas[i]); });
  }
  for (auto& t : starting) t.join();
  for (const auto& id : ids) {
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, *ids[0]);
  }
  EXPECT_EQ(ids[0]->size(), 32u);
  EXPECT_EQ(Query("SELECT count(*) FROM store_identity"), "1");
  EXPECT_EQ(*StoreIdentity(*replicas[0]), *ids[0]);  // and stays

  SetUp();  // another database
  auto other = Open();
  auto other_id = StoreIdentity(*other);
  ASSERT_TRUE(other_id.ok()) << other_id.status();
  EXPECT_NE(*other_id, *ids[0]);
}

}  // namespace
}  // namespace clustergov::store

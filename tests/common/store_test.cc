// Tests for the SQLite store (common/store/sqlite.h), the audit trail / idempotency records built
// on it (common/store/audit.h) and the unit of work every repository writes through
// (common/store/unit_of_work.h). Every test uses real database files in a TempDir.

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/auth/principal.h"
#include "common/list/page_token.h"
#include "common/status/status.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "common/store/sqlite.h"
#include "common/store/unit_of_work.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/test_support.h"

namespace clustergov::store {
namespace {

using ::clustergov::common::v1::ListAuditEventsRequest;
using ::clustergov::common::v1::ListAuditEventsResponse;
using ::clustergov::testing::TempDir;
using ::google::protobuf::StringValue;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kTokenSecret[] = "store-test-page-token-secret";

std::unique_ptr<Database> MustOpen(const std::string& path, prometheus::Registry* metrics = nullptr) {
  DatabaseOptions options;
  options.path = path;
  options.metrics = metrics;
  auto db = Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

absl::Status Exec(Database& db, const std::string& sql) {
  return db.Write([&](Connection& c) { return c.Exec(sql); });
}

// Runs a one-column integer query on a read connection.
absl::StatusOr<int64_t> QueryInt(Database& db, const std::string& sql) {
  return db.ReadResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
    auto stmt = c.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError("no row");
    return stmt->Int(0);
  });
}

absl::StatusOr<std::string> QueryText(Database& db, const std::string& sql) {
  return db.ReadResult<std::string>([&](Connection& c) -> absl::StatusOr<std::string> {
    auto stmt = c.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError("no row");
    return stmt->Text(0);
  });
}

int64_t MustInt(Database& db, const std::string& sql) {
  auto v = QueryInt(db, sql);
  EXPECT_TRUE(v.ok()) << sql << ": " << v.status();
  return v.ok() ? *v : -1;
}

bool TableExists(Database& db, const std::string& table) {
  return MustInt(db, absl::StrCat("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '", table,
                                  "'")) == 1;
}

std::vector<int64_t> AppliedVersions(Database& db, const std::string& component) {
  auto versions = db.ReadResult<std::vector<int64_t>>([&](Connection& c) -> absl::StatusOr<std::vector<int64_t>> {
    auto stmt = c.Prepare("SELECT version FROM schema_migrations WHERE component = ? ORDER BY version");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, component);
    std::vector<int64_t> out;
    while (true) {
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back(stmt->Int(0));
    }
    return out;
  });
  EXPECT_TRUE(versions.ok()) << versions.status();
  return versions.ok() ? *versions : std::vector<int64_t>{};
}

double MetricValue(prometheus::Registry& registry, const std::string& name) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) total += m.counter.value;
  }
  return total;
}

std::vector<std::string> ViolatedFields(const absl::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : GetFieldViolations(status)) fields.push_back(v.field);
  return fields;
}

// ================================================================== Open

TEST(DatabaseOpenTest, CreatesTheFileAndEnablesWal) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  ASSERT_FALSE(std::filesystem::exists(path));
  auto db = MustOpen(path);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(db->path(), path);

  // journal_mode=WAL is persistent in the file: a read connection reports it too.
  auto mode = QueryText(*db, "PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, "wal");
  auto writer_mode = db->WriteResult<std::string>([](Connection& c) -> absl::StatusOr<std::string> {
    auto stmt = c.Prepare("PRAGMA journal_mode");
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    return stmt->Text(0);
  });
  ASSERT_TRUE(writer_mode.ok()) << writer_mode.status();
  EXPECT_EQ(*writer_mode, "wal");

  EXPECT_EQ(MustInt(*db, "PRAGMA foreign_keys"), 1);
  // The migrations table is created eagerly (the writability probe).
  EXPECT_TRUE(TableExists(*db, "schema_migrations"));
}

TEST(DatabaseOpenTest, ForeignKeysAreEnforced) {
  TempDir dir;
  auto db = MustOpen(dir.File("fk.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));")
                  .ok());
  absl::Status s = Exec(*db, "INSERT INTO child (id, parent_id) VALUES (1, 42)");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;  // SQLITE_CONSTRAINT_FOREIGNKEY
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM child"), 0);
}

TEST(DatabaseOpenTest, MissingDirectoryIsUnavailableWithAClearMessage) {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/store.db");
  auto db = Database::Open(DatabaseOptions{path});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(path));
  EXPECT_THAT(db.status().message(), HasSubstr("cannot open store"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("no")));
}

TEST(DatabaseOpenTest, ParentThatIsAFileOrPathThatIsADirectoryIsUnavailable) {
  TempDir dir;
  {
    std::ofstream(dir.File("plain")) << "not a directory";
  }
  auto under_file = Database::Open(DatabaseOptions{dir.File("plain/store.db")});
  ASSERT_FALSE(under_file.ok());
  EXPECT_EQ(under_file.status().code(), absl::StatusCode::kUnavailable) << under_file.status();
  EXPECT_THAT(under_file.status().message(), HasSubstr(dir.File("plain/store.db")));

  auto is_dir = Database::Open(DatabaseOptions{dir.path()});
  ASSERT_FALSE(is_dir.ok());
  EXPECT_EQ(is_dir.status().code(), absl::StatusCode::kUnavailable) << is_dir.status();
  EXPECT_THAT(is_dir.status().message(), HasSubstr(dir.path()));
}

TEST(DatabaseOpenTest, FileThatIsNotADatabaseIsUnavailable) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path);
    for (int i = 0; i < 200; ++i) out << "this is not an sqlite database, line " << i << "\n";
  }
  auto db = Database::Open(DatabaseOptions{path});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(path));
}

// For its lifetime, the calling thread (capabilities are per thread) loses the effective
// capabilities that bypass file permissions, so that root meets permission checks as anyone does
// (tests run as root in CI). They stay permitted, and are restored on destruction.
class WithoutPermissionOverrides {
 public:
  WithoutPermissionOverrides() {
    if (syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct reduced[2] = {saved_[0], saved_[1]};
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) {
      reduced[cap / 32].effective &= ~(1u << (cap % 32));
    }
    active_ = syscall(SYS_capset, &header_, reduced) == 0;
  }
  ~WithoutPermissionOverrides() {
    if (active_) syscall(SYS_capset, &header_, saved_);
  }
  WithoutPermissionOverrides(const WithoutPermissionOverrides&) = delete;
  WithoutPermissionOverrides& operator=(const WithoutPermissionOverrides&) = delete;
  bool active() const { return active_; }

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2] = {};
  bool active_ = false;
};

TEST(DatabaseOpenTest, UnwritableDirectoryIsUnavailable) {
  TempDir dir;
  const std::string ro = dir.File("ro");
  ASSERT_EQ(mkdir(ro.c_str(), 0555), 0);
  absl::StatusOr<std::unique_ptr<Database>> db;
  {
    WithoutPermissionOverrides as_anyone;
    ASSERT_TRUE(as_anyone.active());
    db = Database::Open(DatabaseOptions{ro + "/store.db"});
  }
  chmod(ro.c_str(), 0755);  // let TempDir clean up
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(ro));
  EXPECT_FALSE(std::filesystem::exists(ro + "/store.db"));
}

TEST(DatabaseOpenTest, ReadOnlyStoreFileIsUnavailable) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  { ASSERT_NE(MustOpen(path), nullptr); }
  ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  absl::StatusOr<std::unique_ptr<Database>> db;
  {
    WithoutPermissionOverrides as_anyone;
    ASSERT_TRUE(as_anyone.active());
    db = Database::Open(DatabaseOptions{path});
  }
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable) << db.status();
  EXPECT_THAT(db.status().message(), HasSubstr(path));
}

TEST(DatabaseOpenTest, InMemoryAndEmptyPathsAreRefused) {
  auto memory = Database::Open(DatabaseOptions{":memory:"});
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.status().code(), absl::StatusCode::kInvalidArgument);
  auto empty = Database::Open(DatabaseOptions{""});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
}

// ================================================================== Migrations

const std::vector<Migration> kAppMigrationsV3 = {
    {1, "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    // Depends on version 1: fails if applied out of order.
    {2, "ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red';"},
    // Not idempotent by itself: a second application would duplicate the row.
    {3, "INSERT INTO widgets (name, color) VALUES ('seed', 'blue');"},
};

TEST(MigrateTest, AppliesInOrderRecordsVersionsAndIsIdempotent) {
  TempDir dir;
  const std::string path = dir.File("m.db");
  {
    auto db = MustOpen(path);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Migrate("app", kAppMigrationsV3).ok());
    EXPECT_THAT(AppliedVersions(*db, "app"), ElementsAre(1, 2, 3));
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM widgets WHERE name = 'seed' AND color = 'blue'"), 1);

    // Re-running in the same process applies nothing.
    ASSERT_TRUE(db->Migrate("app", kAppMigrationsV3).ok());
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM widgets"), 1);
    EXPECT_THAT(AppliedVersions(*db, "app"), ElementsAre(1, 2, 3));
  }
  {
    // Across a re-open too; a newly added version is applied on its own.
    auto db = MustOpen(path);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Migrate("app", kAppMigrationsV3).ok());
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM widgets"), 1);
    auto v4 = kAppMigrationsV3;
    v4.push_back({4, "INSERT INTO widgets (name) VALUES ('added-in-v4');"});
    ASSERT_TRUE(db->Migrate("app", v4).ok());
    ASSERT_TRUE(db->Migrate("app", v4).ok());
    EXPECT_THAT(AppliedVersions(*db, "app"), ElementsAre(1, 2, 3, 4));
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM widgets"), 2);
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM widgets WHERE name = 'added-in-v4' AND color = 'red'"), 1);
  }
}

TEST(MigrateTest, ComponentsAreVersionedIndependently) {
  TempDir dir;
  auto db = MustOpen(dir.File("m.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Migrate("alpha", {{1, "CREATE TABLE alpha_t (x INTEGER);"}}).ok());
  ASSERT_TRUE(db->Migrate("beta", {{1, "CREATE TABLE beta_t (x INTEGER);"}}).ok());
  EXPECT_TRUE(TableExists(*db, "alpha_t"));
  EXPECT_TRUE(TableExists(*db, "beta_t"));
  EXPECT_THAT(AppliedVersions(*db, "alpha"), ElementsAre(1));
  EXPECT_THAT(AppliedVersions(*db, "beta"), ElementsAre(1));
}

TEST(MigrateTest, FailingMigrationLeavesNothingOfItselfAndStopsThere) {
  TempDir dir;
  const std::string path = dir.File("m.db");
  auto db = MustOpen(path);
  ASSERT_NE(db, nullptr);
  const std::vector<Migration> broken = {
      {1, "CREATE TABLE first_t (x INTEGER);"},
      // The first statement succeeds, the second fails: the table must not survive.
      {2, "CREATE TABLE second_t (x INTEGER); INSERT INTO second_t (x) VALUES (1); INSERT INTO no_such_table VALUES (1);"},
      {3, "CREATE TABLE third_t (x INTEGER);"},
  };
  absl::Status s = db->Migrate("app", broken);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("v2"));
  EXPECT_THAT(s.message(), Not(HasSubstr("no_such_table")));  // no SQL in caller-visible errors
  EXPECT_FALSE(TableExists(*db, "second_t"));
  EXPECT_FALSE(TableExists(*db, "third_t"));
  EXPECT_THAT(AppliedVersions(*db, "app"), ElementsAre(1));  // each version is its own transaction

  // The database is still usable, and a fixed migration list then applies the rest.
  const std::vector<Migration> fixed = {
      broken[0],
      {2, "CREATE TABLE second_t (x INTEGER); INSERT INTO second_t (x) VALUES (1);"},
      broken[2],
  };
  ASSERT_TRUE(db->Migrate("app", fixed).ok());
  EXPECT_THAT(AppliedVersions(*db, "app"), ElementsAre(1, 2, 3));
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM second_t"), 1);
  EXPECT_TRUE(TableExists(*db, "third_t"));
}

TEST(MigrateTest, FailingFirstMigrationAppliesNothing) {
  TempDir dir;
  auto db = MustOpen(dir.File("m.db"));
  ASSERT_NE(db, nullptr);
  absl::Status s = db->Migrate("app", {{1, "CREATE TABLE t1 (x INTEGER); THIS IS NOT SQL;"},
                                       {2, "CREATE TABLE t2 (x INTEGER);"}});
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(TableExists(*db, "t1"));
  EXPECT_FALSE(TableExists(*db, "t2"));
  EXPECT_THAT(AppliedVersions(*db, "app"), IsEmpty());
}

// ================================================================== Write / Read

TEST(WriteTest, FailingUnitsLeaveNoTraceWhileConcurrentUnitsInTheSameBatchCommit) {
  TempDir dir;
  prometheus::Registry registry;
  auto db = MustOpen(dir.File("w.db"), &registry);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE w (thread INTEGER NOT NULL, i INTEGER NOT NULL, PRIMARY KEY (thread, i))").ok());
  const double commits_before = MetricValue(registry, "clustergov_store_commits_total");
  const double writes_before = MetricValue(registry, "clustergov_store_writes_total");

  constexpr int kThreads = 8;
  constexpr int kWrites = 200;
  auto fails = [](int i) { return (i + 1) % 7 == 0; };  // every 7th write of each thread
  std::atomic<int> unexpected{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kWrites; ++i) {
        absl::Status s = db->Write([&](Connection& c) -> absl::Status {
          auto stmt = c.Prepare("INSERT INTO w (thread, i) VALUES (?, ?)");
          if (!stmt.ok()) return stmt.status();
          absl::Status run = stmt->Bind(1, t).Bind(2, i).Run();
          if (!run.ok()) return run;
          if (fails(i)) return absl::AbortedError(absl::StrCat("unit ", t, "/", i, " fails after inserting"));
          return absl::OkStatus();
        });
        bool ok_expected = !fails(i);
        if (s.ok() != ok_expected) ++unexpected;
        if (!ok_expected &&
            (s.code() != absl::StatusCode::kAborted || s.message() != absl::StrCat("unit ", t, "/", i,
                                                                                  " fails after inserting"))) {
          ++unexpected;  // the unit's own error comes back unchanged
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);

  std::set<std::pair<int64_t, int64_t>> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kWrites; ++i) {
      if (!fails(i)) expected.emplace(t, i);
    }
  }
  auto rows = db->ReadResult<std::set<std::pair<int64_t, int64_t>>>(
      [](Connection& c) -> absl::StatusOr<std::set<std::pair<int64_t, int64_t>>> {
        auto stmt = c.Prepare("SELECT thread, i FROM w");
        if (!stmt.ok()) return stmt.status();
        std::set<std::pair<int64_t, int64_t>> out;
        while (true) {
          auto row = stmt->Step();
          if (!row.ok()) return row.status();
          if (!*row) break;
          out.emplace(stmt->Int(0), stmt->Int(1));
        }
        return out;
      });
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), static_cast<size_t>(kThreads * (kWrites - kWrites / 7)));
  EXPECT_TRUE(*rows == expected) << "committed rows differ from the non-failing units";

  const double commits = MetricValue(registry, "clustergov_store_commits_total") - commits_before;
  const double writes = MetricValue(registry, "clustergov_store_writes_total") - writes_before;
  EXPECT_EQ(writes, static_cast<double>(expected.size()));  // only successful units are counted
  EXPECT_GE(commits, 1);
  EXPECT_LT(commits, writes) << "concurrent writes were not group-committed";
}

TEST(WriteTest, UnitErrorsAreReturnedUnchangedAndRolledBack) {
  TempDir dir;
  auto db = MustOpen(dir.File("w.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)").ok());
  ASSERT_TRUE(Exec(*db, "INSERT INTO t VALUES ('a', 1)").ok());

  absl::Status s = db->Write([](Connection& c) -> absl::Status {
    absl::Status u = c.Exec("UPDATE t SET v = 100 WHERE k = 'a'; INSERT INTO t VALUES ('b', 2)");
    if (!u.ok()) return u;
    return absl::NotFoundError("custom not found");
  });
  EXPECT_EQ(s, absl::NotFoundError("custom not found"));
  EXPECT_EQ(MustInt(*db, "SELECT v FROM t WHERE k = 'a'"), 1);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 1);

  // A constraint violation is ALREADY_EXISTS, undoes the unit, and leaks no SQL.
  absl::Status dup = db->Write([](Connection& c) -> absl::Status {
    absl::Status u = c.Exec("UPDATE t SET v = 7 WHERE k = 'a'");
    if (!u.ok()) return u;
    return c.Exec("INSERT INTO t VALUES ('a', 3)");
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(dup.message(), Not(HasSubstr("INSERT")));
  EXPECT_EQ(MustInt(*db, "SELECT v FROM t WHERE k = 'a'"), 1);

  // The writer is healthy afterwards.
  ASSERT_TRUE(Exec(*db, "INSERT INTO t VALUES ('c', 3)").ok());
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 2);
}

TEST(WriteTest, ConstraintFailuresMapByKindRollBackAndLeakNoSql) {
  TempDir dir;
  auto db = MustOpen(dir.File("c.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db,
                   "CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);"
                   "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id),"
                   " quantity INTEGER NOT NULL CHECK (quantity >= 0));"
                   "CREATE TABLE keyed (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;"
                   "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);"
                   "CREATE TRIGGER ledger_append_only BEFORE UPDATE ON ledger"
                   " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;"
                   "INSERT INTO parent VALUES (1, 'a'); INSERT INTO child VALUES (1, 1, 5);"
                   "INSERT INTO keyed VALUES ('x', 'y'); INSERT INTO ledger VALUES (1, 10);")
                  .ok());
  struct Case {
    const char* what;
    const char* sql;
    absl::StatusCode code;
  };
  const Case cases[] = {
      // A uniqueness conflict: the record exists.
      {"integer primary key", "INSERT INTO parent VALUES (1, 'b')", absl::StatusCode::kAlreadyExists},
      {"composite primary key", "INSERT INTO keyed VALUES ('x', 'y')", absl::StatusCode::kAlreadyExists},
      {"unique", "INSERT INTO parent VALUES (2, 'a')", absl::StatusCode::kAlreadyExists},
      // Any other rule of the stored records refuses the change.
      {"check", "UPDATE child SET quantity = -1 WHERE id = 1", absl::StatusCode::kFailedPrecondition},
      {"not null", "INSERT INTO child (id, parent_id, quantity) VALUES (2, 1, NULL)",
       absl::StatusCode::kFailedPrecondition},
      {"foreign key, missing parent", "INSERT INTO child VALUES (3, 42, 1)", absl::StatusCode::kFailedPrecondition},
      {"foreign key, parent still referenced", "DELETE FROM parent WHERE id = 1",
       absl::StatusCode::kFailedPrecondition},
      {"trigger RAISE(ABORT)", "UPDATE ledger SET amount = 0", absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::Status s = db->Write([&](Connection& conn) -> absl::Status {
      CG_RETURN_IF_ERROR(conn.Exec("INSERT INTO ledger (amount) VALUES (99)"));  // undone with the unit
      return conn.Exec(c.sql);
    });
    EXPECT_EQ(s.code(), c.code) << s;
    for (const char* leak : {"INSERT", "UPDATE", "DELETE", "CHECK", "UNIQUE", "constraint", "parent", "child",
                             "keyed", "ledger", "quantity", "append-only"}) {
      EXPECT_THAT(s.message(), Not(HasSubstr(leak))) << s;
    }
  }
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM ledger"), 1);
  EXPECT_EQ(MustInt(*db, "SELECT amount FROM ledger"), 10);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM parent"), 1);
  EXPECT_EQ(MustInt(*db, "SELECT quantity FROM child"), 5);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM child"), 1);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM keyed"), 1);
}

TEST(WriteTest, WriteResultReturnsValuesAndErrors) {
  TempDir dir;
  auto db = MustOpen(dir.File("w.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)").ok());
  auto insert = [&](const std::string& name) {
    return db->WriteResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
      auto stmt = c.Prepare("INSERT INTO t (name) VALUES (?) RETURNING id");
      if (!stmt.ok()) return stmt.status();
      return InsertedId(stmt->Bind(1, name));
    });
  };
  auto first = insert("one");
  auto second = insert("two");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(*second, 2);

  auto changed = db->WriteResult<int>([](Connection& c) -> absl::StatusOr<int> {
    absl::Status s = c.Exec("UPDATE t SET name = name || '!'");
    if (!s.ok()) return s;
    return c.Changes();
  });
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2);

  auto failed = db->WriteResult<std::string>([](Connection& c) -> absl::StatusOr<std::string> {
    absl::Status s = c.Exec("INSERT INTO t (name) VALUES ('three')");
    if (!s.ok()) return s;
    return absl::FailedPreconditionError("nope");
  });
  EXPECT_EQ(failed.status(), absl::FailedPreconditionError("nope"));
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 2);

  auto text = QueryText(*db, "SELECT name FROM t WHERE id = 2");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "two!");
}

TEST(ReadTest, SeesCommittedDataImmediately) {
  TempDir dir;
  auto db = MustOpen(dir.File("r.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (x INTEGER)").ok());
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(Exec(*db, absl::StrCat("INSERT INTO t VALUES (", i, ")")).ok());
    // Write returns after the commit: every read connection sees it at once.
    EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), i);
  }
}

TEST(ReadTest, RunsInOneSnapshot) {
  TempDir dir;
  auto db = MustOpen(dir.File("r.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);").ok());

  int64_t before = -1, after = -1;
  absl::Status write_status;
  absl::Status s = db->Read([&](Connection& c) -> absl::Status {
    {
      auto stmt = c.Prepare("SELECT COUNT(*) FROM t");
      if (!stmt.ok()) return stmt.status();
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      before = stmt->Int(0);
    }
    // A write commits while this read transaction is open (WAL: it does not wait for us).
    write_status = Exec(*db, "INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);");
    {
      auto stmt = c.Prepare("SELECT COUNT(*) FROM t");
      if (!stmt.ok()) return stmt.status();
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      after = stmt->Int(0);
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(write_status.ok()) << write_status;
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 1) << "a read saw a write committed after it started";
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 3);
}

TEST(ReadTest, ErrorsFromTheCallbackAreReturned) {
  TempDir dir;
  auto db = MustOpen(dir.File("r.db"));
  ASSERT_NE(db, nullptr);
  absl::Status s = db->Read([](Connection&) { return absl::PermissionDeniedError("no"); });
  EXPECT_EQ(s, absl::PermissionDeniedError("no"));
  // A syntax error is INTERNAL and does not echo the SQL.
  auto bad = QueryInt(*db, "SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("SELEKT")));
  // Connections go back to the pool after errors: more reads than connections still work.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(MustInt(*db, "SELECT 41 + 1"), 42);
}

TEST(ReadTest, ConcurrentReadersAndWriters) {
  TempDir dir;
  auto db = MustOpen(dir.File("r.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE t (x INTEGER)").ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!Exec(*db, "INSERT INTO t VALUES (1)").ok()) ++bad;
      }
    });
    threads.emplace_back([&] {
      int64_t last = 0;
      for (int i = 0; i < 50; ++i) {
        auto n = QueryInt(*db, "SELECT COUNT(*) FROM t");
        if (!n.ok() || *n < last) ++bad;  // counts never go backwards
        if (n.ok()) last = *n;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 200);
}

// ================================================================== Statements

TEST(StatementTest, BindAndColumnsRoundTrip) {
  TempDir dir;
  auto db = MustOpen(dir.File("s.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB, d REAL, n TEXT)").ok());

  const std::string chinese = "呼和浩特乳业产业集群";
  const std::string text_with_nul = std::string("内蒙古\0乳业", sizeof("内蒙古\0乳业") - 1);
  ASSERT_EQ(text_with_nul.size(), 16u);
  std::string blob;
  for (int i = 0; i < 256; ++i) blob.push_back(static_cast<char>(i));
  blob += std::string("\0\0tail\0", 7);

  struct Row {
    int64_t id;
    int64_t i;
    std::string t;
    std::string b;
    double d;
  };
  const std::vector<Row> rows = {
      {1, std::numeric_limits<int64_t>::min(), text_with_nul, blob, -0.5},
      {2, std::numeric_limits<int64_t>::max(), chinese, std::string(1, '\0'), 3.25},
      {3, 0, "plain ascii", "x", 1e300},
  };
  absl::Status s = db->Write([&](Connection& c) -> absl::Status {
    for (const auto& r : rows) {
      auto stmt = c.Prepare("INSERT INTO v (id, i, t, b, d, n) VALUES (?, ?, ?, ?, ?, ?)");
      if (!stmt.ok()) return stmt.status();
      absl::Status run = stmt->Bind(1, r.id).Bind(2, r.i).Bind(3, r.t).BindBlob(4, r.b).Bind(5, r.d).BindNull(6).Run();
      if (!run.ok()) return run;
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;

  s = db->Read([&](Connection& c) -> absl::Status {
    for (const auto& r : rows) {
      SCOPED_TRACE(r.id);
      // The same cached statement each time: it must come back reset and unbound.
      auto stmt =
          c.Prepare("SELECT i, t, b, d, n, typeof(t), typeof(b), length(CAST(t AS BLOB)) FROM v WHERE id = ?");
      if (!stmt.ok()) return stmt.status();
      stmt->Bind(1, r.id);
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      EXPECT_TRUE(*row);
      EXPECT_EQ(stmt->Int(0), r.i);
      EXPECT_EQ(stmt->Text(1), r.t);
      EXPECT_EQ(stmt->Text(1).size(), r.t.size());
      EXPECT_EQ(stmt->Blob(2), r.b);
      EXPECT_DOUBLE_EQ(stmt->Double(3), r.d);
      EXPECT_TRUE(stmt->IsNull(4));
      EXPECT_FALSE(stmt->IsNull(1));
      EXPECT_FALSE(stmt->IsNull(2));
      EXPECT_EQ(stmt->Text(4), "");
      EXPECT_EQ(stmt->Text(5), "text");
      EXPECT_EQ(stmt->Text(6), "blob");
      EXPECT_EQ(stmt->Int(7), static_cast<int64_t>(r.t.size()));
      auto done = stmt->Step();
      if (!done.ok()) return done.status();
      EXPECT_FALSE(*done);
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;

  // Chinese text is matched by equality through a bound parameter.
  auto found = db->ReadResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
    auto stmt = c.Prepare("SELECT id FROM v WHERE t = ?");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, chinese);
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError("no row");
    return stmt->Int(0);
  });
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, 2);
}

TEST(StatementTest, EmptyValuesAreNotNull) {
  TempDir dir;
  auto db = MustOpen(dir.File("s.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Exec(*db, "CREATE TABLE e (id INTEGER PRIMARY KEY, t TEXT NOT NULL, b BLOB NOT NULL)").ok());
  absl::Status s = db->Write([](Connection& c) -> absl::Status {
    {
      auto stmt = c.Prepare("INSERT INTO e (id, t, b) VALUES (?, ?, ?)");
      if (!stmt.ok()) return stmt.status();
      CG_RETURN_IF_ERROR(stmt->Bind(1, 1).Bind(2, std::string()).BindBlob(3, std::string()).Run());
    }
    auto again = c.Prepare("INSERT INTO e (id, t, b) VALUES (?, ?, ?)");
    if (!again.ok()) return again.status();
    // A default-constructed view (data() == nullptr) is still the empty string, not NULL.
    return again->Bind(1, 2).Bind(2, absl::string_view()).BindBlob(3, absl::string_view()).Run();
  });
  ASSERT_TRUE(s.ok()) << s;
  auto types = QueryText(*db, "SELECT group_concat(typeof(t) || '/' || typeof(b) || '/' || length(b), ',') FROM e");
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, "text/blob/0,text/blob/0");
}

TEST(StatementTest, BindAllIntegersAndStrings) {
  TempDir dir;
  auto db = MustOpen(dir.File("s.db"));
  ASSERT_NE(db, nullptr);
  auto got = db->ReadResult<std::string>([](Connection& c) -> absl::StatusOr<std::string> {
    auto stmt = c.Prepare("SELECT ? || '|' || typeof(?) || '|' || ? || '|' || typeof(?)");
    if (!stmt.ok()) return stmt.status();
    stmt->BindAll(1, {int64_t{7}, int64_t{8}, std::string("eight"), std::string("nine")});
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    return stmt->Text(0);
  });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "7|integer|eight|text");
}

TEST(StatementTest, BindErrorSurfacesAtStep) {
  TempDir dir;
  auto db = MustOpen(dir.File("s.db"));
  ASSERT_NE(db, nullptr);
  auto got = db->ReadResult<bool>([](Connection& c) -> absl::StatusOr<bool> {
    auto stmt = c.Prepare("SELECT ?");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, 1).Bind(5, "out of range");  // SQLITE_RANGE
    return stmt->Step();
  });
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
}

// ================================================================== Durability

TEST(DurabilityTest, AcknowledgedWritesSurviveCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.File("d.db");
  {
    auto db = MustOpen(path);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Migrate("app", {{1, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"}}).ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(db->Write([&](Connection& c) -> absl::Status {
                      auto stmt = c.Prepare("INSERT INTO t (k, v) VALUES (?, ?)");
                      if (!stmt.ok()) return stmt.status();
                      return stmt->Bind(1, i).Bind(2, absl::StrCat("値-", i)).Run();
                    }).ok());
    }
  }
  auto db = MustOpen(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(MustInt(*db, "SELECT COUNT(*) FROM t"), 100);
  EXPECT_EQ(MustInt(*db, "SELECT SUM(k) FROM t"), 4950);
  auto v = QueryText(*db, "SELECT v FROM t WHERE k = 99");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "値-99");
}

TEST(DurabilityTest, TwoInstancesOfTheSameFileSeeEachOthersCommits) {
  TempDir dir;
  const std::string path = dir.File("d.db");
  auto first = MustOpen(path);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(Exec(*first, "CREATE TABLE t (who TEXT NOT NULL, i INTEGER NOT NULL)").ok());
  auto second = MustOpen(path);  // e.g. a new process starting before the old one exited
  ASSERT_NE(second, nullptr);

  // Interleaved writers on both instances (each its own writer thread, serialized by SQLite).
  std::atomic<int> bad{0};
  std::thread a([&] {
    for (int i = 0; i < 50; ++i) {
      if (!Exec(*first, absl::StrCat("INSERT INTO t VALUES ('first', ", i, ")")).ok()) ++bad;
    }
  });
  std::thread b([&] {
    for (int i = 0; i < 50; ++i) {
      if (!Exec(*second, absl::StrCat("INSERT INTO t VALUES ('second', ", i, ")")).ok()) ++bad;
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(MustInt(*first, "SELECT COUNT(*) FROM t"), 100);
  EXPECT_EQ(MustInt(*second, "SELECT COUNT(*) FROM t"), 100);

  // Close the first while the second is still open; reopen: everything acknowledged is there.
  first.reset();
  auto third = MustOpen(path);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(MustInt(*third, "SELECT COUNT(*) FROM t WHERE who = 'first'"), 50);
  EXPECT_EQ(MustInt(*third, "SELECT COUNT(*) FROM t WHERE who = 'second'"), 50);
  ASSERT_TRUE(Exec(*third, "INSERT INTO t VALUES ('third', 0)").ok());
  EXPECT_EQ(MustInt(*second, "SELECT COUNT(*) FROM t"), 101);

  second.reset();
  third.reset();
  auto fourth = MustOpen(path);
  ASSERT_NE(fourth, nullptr);
  EXPECT_EQ(MustInt(*fourth, "SELECT COUNT(*) FROM t"), 101);
}

// ================================================================== Audit

// The gRPC service whose calls the audit tests record, built at run time:
// test.v1.WidgetsService with CreateWidget and UpdateWidget.
const google::protobuf::ServiceDescriptor& WidgetsService() {
  static const google::protobuf::DescriptorPool* pool = [] {
    google::protobuf::FileDescriptorProto file;
    file.set_name("test/v1/widgets.proto");
    file.set_package("test.v1");
    file.set_syntax("proto3");
    file.add_message_type()->set_name("Widget");
    auto* service = file.add_service();
    service->set_name("WidgetsService");
    for (const char* rpc : {"CreateWidget", "UpdateWidget"}) {
      auto* method = service->add_method();
      method->set_name(rpc);
      method->set_input_type(".test.v1.Widget");
      method->set_output_type(".test.v1.Widget");
    }
    auto* built = new google::protobuf::DescriptorPool();
    EXPECT_NE(built->BuildFile(file), nullptr);
    return built;
  }();
  return *pool->FindServiceByName("test.v1.WidgetsService");
}

constexpr char kCreateWidget[] = "/test.v1.WidgetsService/CreateWidget";

TEST(FullMethodTest, NamesTheRpcsOfTheServiceOnly) {
  EXPECT_EQ(FullMethod(WidgetsService(), "CreateWidget"), kCreateWidget);
  EXPECT_EQ(FullMethod(WidgetsService(), "UpdateWidget"), "/test.v1.WidgetsService/UpdateWidget");
  EXPECT_EQ(FullMethod(WidgetsService(), "Seed"), "Seed");  // a write no RPC made
  EXPECT_EQ(FullMethod(WidgetsService(), "DeleteWidget"), "DeleteWidget");
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = MustOpen(dir_.File("audit.db"));
    ASSERT_NE(db_, nullptr);
    ASSERT_TRUE(db_->Migrate("core", CoreMigrations(WidgetsService())).ok());
  }

  absl::Status Append(const Principal& actor, const AuditRecord& record) {
    return db_->Write([&](Connection& c) { return AppendAudit(c, actor, record); });
  }

  absl::StatusOr<ListAuditEventsResponse> List(int page_size, const std::string& filter = "",
                                               const std::string& token = "", const Principal* caller = nullptr) {
    ListAuditEventsRequest req;
    req.set_page_size(page_size);
    req.set_filter(filter);
    req.set_page_token(token);
    return ListAuditEvents(*db_, tokens_, caller != nullptr ? *caller : alice_, req);
  }

  // Every event id matching `filter`, following page tokens.
  std::vector<int64_t> AllIds(int page_size, const std::string& filter, int* pages) {
    std::vector<int64_t> ids;
    std::string token;
    *pages = 0;
    for (int guard = 0; guard < 100; ++guard) {
      auto page = List(page_size, filter, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      ++*pages;
      EXPECT_LE(page->events_size(), page_size);
      for (const auto& e : page->events()) ids.push_back(e.id());
      token = page->next_page_token();
      if (token.empty()) break;
    }
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  PageTokenCodec tokens_{kTokenSecret};
  Principal alice_{"alice", "departments/industry_it", {"government", "admin"}};
  Principal bob_{"bob", "enterprises/91150100MA0N000000", {"enterprise"}};
};

TEST_F(AuditTest, AppendsAndListsNewestFirstAcrossPages) {
  for (int i = 1; i <= 7; ++i) {
    AuditRecord r;
    r.method = i % 2 ? "UpdateCluster" : "CreateCluster";
    r.resource = i % 2 ? "clusters/a" : "clusters/b";
    r.etag_before = absl::StrCat("e", i - 1);
    r.etag_after = absl::StrCat("e", i);
    r.reason = absl::StrCat("理由 ", i);
    r.request_id = absl::StrCat("req-", i);
    r.idempotency_key = absl::StrCat("key-", i);
    ASSERT_TRUE(Append(i <= 4 ? alice_ : bob_, r).ok());
  }

  auto page1 = List(3);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->events_size(), 3);
  EXPECT_EQ(page1->events(0).id(), 7);
  EXPECT_EQ(page1->events(1).id(), 6);
  EXPECT_EQ(page1->events(2).id(), 5);
  EXPECT_THAT(page1->next_page_token(), Not(IsEmpty()));

  const auto& e7 = page1->events(0);
  EXPECT_EQ(e7.method(), "UpdateCluster");
  EXPECT_EQ(e7.resource(), "clusters/a");
  EXPECT_EQ(e7.actor().subject(), "bob");
  EXPECT_EQ(e7.actor().organization(), "enterprises/91150100MA0N000000");
  EXPECT_THAT(e7.actor().roles(), ElementsAre("enterprise"));
  EXPECT_EQ(e7.etag_before(), "e6");
  EXPECT_EQ(e7.etag_after(), "e7");
  EXPECT_EQ(e7.reason(), "理由 7");
  EXPECT_EQ(e7.request_id(), "req-7");
  EXPECT_EQ(e7.idempotency_key(), "key-7");
  EXPECT_GT(e7.time().seconds(), 1600000000);  // stored as real wall-clock microseconds
  EXPECT_LE(e7.time().seconds(), NowMicros() / 1000000);

  auto page2 = List(3, "", page1->next_page_token());
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->events_size(), 3);
  EXPECT_EQ(page2->events(0).id(), 4);
  EXPECT_EQ(page2->events(2).id(), 2);
  EXPECT_THAT(page2->events(0).actor().roles(), ElementsAre("government", "admin"));
  auto page3 = List(3, "", page2->next_page_token());
  ASSERT_TRUE(page3.ok()) << page3.status();
  ASSERT_EQ(page3->events_size(), 1);
  EXPECT_EQ(page3->events(0).id(), 1);
  EXPECT_THAT(page3->next_page_token(), IsEmpty());

  // Exactly one full page: no token pointing at an empty page.
  auto exact = List(7);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->events_size(), 7);
  EXPECT_THAT(exact->next_page_token(), IsEmpty());

  // page_size 0 means the default.
  auto defaulted = List(0);
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(defaulted->events_size(), 7);
}

TEST_F(AuditTest, FiltersByResourceMethodActorRequestIdAndIdempotencyKey) {
  for (int i = 1; i <= 9; ++i) {
    AuditRecord r;
    r.method = i <= 3 ? "CreateCluster" : "UpdateCluster";
    r.resource = absl::StrCat("clusters/", i % 3 == 0 ? "hohhot-dairy" : "baotou-rare-earth");
    r.request_id = absl::StrCat("req-", i);
    if (i >= 7) r.idempotency_key = absl::StrCat("retry-", i % 2);  // 7 and 9 share one
    ASSERT_TRUE(Append(i % 2 ? alice_ : bob_, r).ok());
  }
  int pages = 0;
  EXPECT_THAT(AllIds(2, "resource = \"clusters/hohhot-dairy\"", &pages), ElementsAre(9, 6, 3));
  EXPECT_EQ(pages, 2);
  EXPECT_THAT(AllIds(4, "resource = \"clusters/baotou-rare-earth\"", &pages), ElementsAre(8, 7, 5, 4, 2, 1));
  EXPECT_EQ(pages, 2);
  EXPECT_THAT(AllIds(50, "method = \"CreateCluster\"", &pages), ElementsAre(3, 2, 1));
  EXPECT_THAT(AllIds(50, "actor.subject = \"bob\"", &pages), ElementsAre(8, 6, 4, 2));
  EXPECT_THAT(AllIds(50, "actor.organization = \"departments/industry_it\" AND method = \"UpdateCluster\"", &pages),
              ElementsAre(9, 7, 5));
  EXPECT_THAT(AllIds(50, "request_id = \"req-5\"", &pages), ElementsAre(5));
  EXPECT_THAT(AllIds(50, "idempotency_key = \"retry-1\"", &pages), ElementsAre(9, 7));
  EXPECT_THAT(AllIds(50, "idempotency_key = \"\"", &pages), ElementsAre(6, 5, 4, 3, 2, 1));
  EXPECT_THAT(AllIds(50, "resource = \"clusters/none\"", &pages), IsEmpty());
}

TEST_F(AuditTest, BadFilterAndPageSizeAreInvalidArgument) {
  ASSERT_TRUE(Append(alice_, {"M", "clusters/a", "", "", "", "", ""}).ok());
  for (const std::string filter : {"no_such_field = \"x\"", "resource =", "resource = \"a\" resource = \"b\"",
                                   "etag_before = \"x\"", "(resource = \"a\""}) {
    SCOPED_TRACE(filter);
    auto page = List(10, filter);
    ASSERT_FALSE(page.ok());
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(page.status()), ElementsAre("filter"));
  }
  auto negative = List(-1);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(negative.status()), ElementsAre("page_size"));
}

TEST_F(AuditTest, TamperedOrForeignPageTokensAreInvalidArgument) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Append(alice_, {"M", "clusters/a", "", "", "", "", ""}).ok());
  auto page = List(2);
  ASSERT_TRUE(page.ok());
  const std::string token = page->next_page_token();
  ASSERT_FALSE(token.empty());
  ASSERT_TRUE(List(2, "", token).ok());

  auto expect_bad_token = [&](const std::string& bad, const std::string& filter) {
    auto r = List(2, filter, bad);
    ASSERT_FALSE(r.ok()) << "accepted token " << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(r.status()), ElementsAre("page_token"));
  };
  {
    SCOPED_TRACE("one character flipped");
    std::string tampered = token;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    expect_bad_token(tampered, "");
  }
  {
    SCOPED_TRACE("forged with the right payload and another secret");
    common::v1::PageTokenPayload payload;
    payload.set_query_hash(QueryHash({"ListAuditEvents", ""}));
    payload.set_last_key("1000000");
    expect_bad_token(PageTokenCodec("another-secret").Encode(payload, alice_), "");
  }
  {
    SCOPED_TRACE("valid token, different filter");
    expect_bad_token(token, "resource = \"clusters/a\"");
  }
  {
    SCOPED_TRACE("garbage");
    expect_bad_token("not a token!", "");
  }
}

TEST_F(AuditTest, PageTokensAreBoundToTheCallerTheyWereIssuedTo) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Append(alice_, {"M", "clusters/a", "", "", "", "", ""}).ok());
  auto page = List(2, "", "", &alice_);
  ASSERT_TRUE(page.ok()) << page.status();
  const std::string token = page->next_page_token();
  ASSERT_FALSE(token.empty());
  auto next = List(2, "", token, &alice_);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->events(0).id(), 3);

  Principal same_org_other_subject{"carol", alice_.organization, alice_.roles};
  Principal same_subject_other_org{alice_.subject, "departments/development_reform", alice_.roles};
  for (const Principal* other : {&bob_, &same_org_other_subject, &same_subject_other_org}) {
    SCOPED_TRACE(absl::StrCat(other->subject, " of ", other->organization));
    auto r = List(2, "", token, other);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(r.status()), ElementsAre("page_token"));
    EXPECT_THAT(r.status().message(), HasSubstr("another caller"));
    // Their own first page works, and its token is theirs.
    auto own = List(2, "", "", other);
    ASSERT_TRUE(own.ok()) << own.status();
    EXPECT_TRUE(List(2, "", own->next_page_token(), other).ok());
  }
}

TEST_F(AuditTest, SecondCoreMigrationNamesRecordedRpcsByTheirFullMethod) {
  // A store as the first core migration left it, with events and idempotency records that name
  // RPCs by their short names.
  TempDir dir;
  auto old_db = MustOpen(dir.File("old.db"));
  ASSERT_NE(old_db, nullptr);
  const std::vector<Migration> core = CoreMigrations(WidgetsService()).sqlite;
  ASSERT_GE(core.size(), 2u);
  ASSERT_TRUE(old_db->Migrate("core", {core[0]}).ok());
  ASSERT_TRUE(Exec(*old_db,
                   "INSERT INTO audit_events (method, resource, actor_subject, actor_organization, actor_roles,"
                   " etag_before, etag_after, reason, request_id, time_micros) VALUES"
                   " ('CreateWidget', 'widgets/a', 'alice', 'departments/industry_it', 'government', '', 'v1', '',"
                   " 'call-1', 1), ('Seed', 'widgets/b', 'seed', 'departments/industry_it', 'admin', '', 'v1', '',"
                   " '', 2)")
                  .ok());
  StringValue request;
  request.set_value("make a widget");
  StringValue first_response;
  first_response.set_value("widgets/a");
  {
    // What IdempotentWrite recorded for a CreateWidget call with request_id "retry-1".
    int body_runs = 0;
    auto recorded = IdempotentWrite<StringValue>(
        *old_db, alice_, "CreateWidget", "retry-1", request,
        [&](Connection&) -> absl::StatusOr<StringValue> {
          ++body_runs;
          return first_response;
        });
    ASSERT_TRUE(recorded.ok()) << recorded.status();
    ASSERT_EQ(body_runs, 1);
  }

  ASSERT_TRUE(old_db->Migrate("core", core).ok());
  EXPECT_THAT(AppliedVersions(*old_db, "core"), ElementsAre(1, 2));
  auto events = ListAuditEvents(*old_db, tokens_, alice_, ListAuditEventsRequest());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events_size(), 2);
  EXPECT_EQ(events->events(0).method(), "Seed");  // no RPC made it
  EXPECT_EQ(events->events(1).method(), kCreateWidget);
  EXPECT_EQ(events->events(1).request_id(), "call-1");
  EXPECT_EQ(events->events(1).idempotency_key(), "");  // not recorded before

  // A retry of the write that spans the upgrade is still answered from the record.
  bool replayed = false;
  int body_runs = 0;
  auto retry = IdempotentWrite<StringValue>(
      *old_db, alice_, FullMethod(WidgetsService(), "CreateWidget"), "retry-1", request,
      [&](Connection&) -> absl::StatusOr<StringValue> {
        ++body_runs;
        return StringValue();
      },
      &replayed);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(replayed);
  EXPECT_EQ(body_runs, 0);
  EXPECT_EQ(retry->value(), "widgets/a");
}

TEST_F(AuditTest, AuditIsAtomicWithTheChange) {
  absl::Status s = db_->Write([&](Connection& c) -> absl::Status {
    CG_RETURN_IF_ERROR(AppendAudit(c, alice_, {"DeleteCluster", "clusters/x", "e1", "", "", "r1", "k1"}));
    return absl::FailedPreconditionError("change rejected after auditing");
  });
  ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  auto page = List(10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events_size(), 0);
}

// ================================================================== Idempotency

class IdempotencyTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    ASSERT_TRUE(Exec(*db_, "CREATE TABLE effects (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)").ok());
  }

  static StringValue Str(const std::string& s) {
    StringValue v;
    v.set_value(s);
    return v;
  }

  // A body that records an effect and answers with a response naming the effect's id.
  std::function<absl::StatusOr<StringValue>(Connection&)> Body(const std::string& note) {
    return [this, note](Connection& c) -> absl::StatusOr<StringValue> {
      ++body_runs_;
      auto stmt = c.Prepare("INSERT INTO effects (note) VALUES (?) RETURNING id");
      if (!stmt.ok()) return stmt.status();
      CG_ASSIGN_OR_RETURN(int64_t id, InsertedId(stmt->Bind(1, note)));
      return Str(absl::StrCat(note, "#", id));
    };
  }

  absl::StatusOr<StringValue> Call(const Principal& caller, const std::string& method, const std::string& request_id,
                                   const StringValue& request, const std::string& note, bool* replayed) {
    return IdempotentWrite<StringValue>(*db_, caller, method, request_id, request, Body(note), replayed);
  }

  int64_t Effects() { return MustInt(*db_, "SELECT COUNT(*) FROM effects"); }

  int body_runs_ = 0;
};

TEST_F(IdempotencyTest, SameRequestIdRunsTheBodyOnceAndReplaysTheResponse) {
  bool replayed = true;
  auto first = Call(alice_, "CreateWidget", "req-1", Str("make a widget"), "created", &replayed);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(replayed);
  EXPECT_EQ(first->value(), "created#1");

  auto second = Call(alice_, "CreateWidget", "req-1", Str("make a widget"), "created-again", &replayed);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(replayed);
  EXPECT_EQ(second->value(), "created#1");
  EXPECT_EQ(body_runs_, 1);
  EXPECT_EQ(Effects(), 1);

  // The bytes variant replays the identical serialized response.
  bool replayed_bytes = false;
  auto bytes = IdempotentWriteBytes(
      *db_, alice_, "CreateWidget", "req-1", Str("make a widget"),
      [&](Connection&) -> absl::StatusOr<std::string> {
        ++body_runs_;
        return std::string("should not run");
      },
      &replayed_bytes);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_TRUE(replayed_bytes);
  EXPECT_EQ(*bytes, first->SerializeAsString());
  EXPECT_EQ(body_runs_, 1);

  // Without `replayed` the call still works.
  auto third = Call(alice_, "CreateWidget", "req-1", Str("make a widget"), "x", nullptr);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->value(), "created#1");
  EXPECT_EQ(body_runs_, 1);
}

TEST_F(IdempotencyTest, EmptyResponseIsReplayedToo) {
  bool replayed = true;
  auto body = [&](Connection&) -> absl::StatusOr<StringValue> {
    ++body_runs_;
    return StringValue();  // serializes to zero bytes
  };
  auto first = IdempotentWrite<StringValue>(*db_, alice_, "Touch", "req-empty", Str("r"), body, &replayed);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(replayed);
  auto second = IdempotentWrite<StringValue>(*db_, alice_, "Touch", "req-empty", Str("r"), body, &replayed);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(replayed);
  EXPECT_EQ(body_runs_, 1);
}

TEST_F(IdempotencyTest, SameIdWithADifferentRequestIsInvalidArgument) {
  bool replayed = true;
  ASSERT_TRUE(Call(alice_, "CreateWidget", "req-1", Str("request A"), "a", &replayed).ok());
  auto other = Call(alice_, "CreateWidget", "req-1", Str("request B"), "b", &replayed);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(other.status()), ElementsAre("request_id"));
  EXPECT_FALSE(replayed);
  EXPECT_EQ(body_runs_, 1);
  EXPECT_EQ(Effects(), 1);
}

TEST_F(IdempotencyTest, FailingBodyDoesNotRecordTheKey) {
  bool fail = true;
  auto body = [&](Connection& c) -> absl::StatusOr<StringValue> {
    ++body_runs_;
    CG_RETURN_IF_ERROR(c.Exec("INSERT INTO effects (note) VALUES ('attempt')"));
    if (fail) return absl::UnavailableError("downstream down");
    return Str("done");
  };
  bool replayed = true;
  auto first = IdempotentWrite<StringValue>(*db_, alice_, "Do", "req-retry", Str("r"), body, &replayed);
  EXPECT_EQ(first.status(), absl::UnavailableError("downstream down"));
  EXPECT_FALSE(replayed);
  EXPECT_EQ(Effects(), 0);  // the body's own writes were rolled back with it
  EXPECT_EQ(MustInt(*db_, "SELECT COUNT(*) FROM idempotency_keys"), 0);

  fail = false;
  auto retry = IdempotentWrite<StringValue>(*db_, alice_, "Do", "req-retry", Str("r"), body, &replayed);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(replayed);
  EXPECT_EQ(retry->value(), "done");
  EXPECT_EQ(body_runs_, 2);
  EXPECT_EQ(Effects(), 1);

  auto replay = IdempotentWrite<StringValue>(*db_, alice_, "Do", "req-retry", Str("r"), body, &replayed);
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replayed);
  EXPECT_EQ(body_runs_, 2);
}

TEST_F(IdempotencyTest, SubjectsAndMethodsAreIndependent) {
  bool replayed = true;
  auto a = Call(alice_, "CreateWidget", "shared-id", Str("same"), "alice", &replayed);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(replayed);
  auto b = Call(bob_, "CreateWidget", "shared-id", Str("same"), "bob", &replayed);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(replayed);
  auto m = Call(alice_, "DeleteWidget", "shared-id", Str("same"), "alice-delete", &replayed);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(replayed);
  EXPECT_EQ(body_runs_, 3);
  EXPECT_EQ(Effects(), 3);

  auto a2 = Call(alice_, "CreateWidget", "shared-id", Str("same"), "x", &replayed);
  ASSERT_TRUE(a2.ok());
  EXPECT_TRUE(replayed);
  EXPECT_EQ(a2->value(), a->value());
  auto b2 = Call(bob_, "CreateWidget", "shared-id", Str("same"), "x", &replayed);
  ASSERT_TRUE(b2.ok());
  EXPECT_TRUE(replayed);
  EXPECT_EQ(b2->value(), b->value());
  EXPECT_NE(a->value(), b->value());
  EXPECT_EQ(body_runs_, 3);
}

TEST_F(IdempotencyTest, WithoutARequestIdTheBodyAlwaysRuns) {
  bool replayed = true;
  ASSERT_TRUE(Call(alice_, "CreateWidget", "", Str("r"), "one", &replayed).ok());
  EXPECT_FALSE(replayed);
  ASSERT_TRUE(Call(alice_, "CreateWidget", "", Str("r"), "two", &replayed).ok());
  EXPECT_FALSE(replayed);
  EXPECT_EQ(body_runs_, 2);
  EXPECT_EQ(Effects(), 2);
  EXPECT_EQ(MustInt(*db_, "SELECT COUNT(*) FROM idempotency_keys"), 0);
}

TEST_F(IdempotencyTest, InvalidRequestIdsAreRejectedBeforeTheBodyRuns) {
  const std::vector<std::string> bad = {"has space", "slash/inside", "quote'", "semi;colon", "ünïcode",
                                        std::string("nul\0byte", 8), std::string(129, 'a')};
  for (const auto& id : bad) {
    SCOPED_TRACE(id);
    bool replayed = true;
    auto r = Call(alice_, "CreateWidget", id, Str("r"), "x", &replayed);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(r.status()), ElementsAre("request_id"));
    EXPECT_FALSE(replayed);
    EXPECT_EQ(ValidateRequestId(id).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(body_runs_, 0);

  const std::vector<std::string> good = {std::string(128, 'z'), "a", "A-z_0.9:x",
                                         "550e8400-e29b-41d4-a716-446655440000"};
  for (const auto& id : good) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(ValidateRequestId(id).ok());
    EXPECT_TRUE(Call(alice_, "CreateWidget", id, Str(id), "ok", nullptr).ok());
  }
  EXPECT_EQ(body_runs_, static_cast<int>(good.size()));
  EXPECT_TRUE(ValidateRequestId("").ok());
}

TEST_F(IdempotencyTest, ConcurrentRetriesRunTheBodyOnce) {
  constexpr int kThreads = 8;
  std::atomic<int> runs{0};
  std::atomic<int> replays{0};
  std::atomic<int> failures{0};
  std::vector<std::string> responses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      bool replayed = false;
      auto r = IdempotentWrite<StringValue>(
          *db_, alice_, "CreateWidget", "burst-1", Str("same request"),
          [&](Connection& c) -> absl::StatusOr<StringValue> {
            ++runs;
            auto stmt = c.Prepare("INSERT INTO effects (note) VALUES ('burst') RETURNING id");
            if (!stmt.ok()) return stmt.status();
            CG_ASSIGN_OR_RETURN(int64_t id, InsertedId(*stmt));
            return Str(absl::StrCat("made-", id));
          },
          &replayed);
      if (!r.ok()) {
        ++failures;
        return;
      }
      if (replayed) ++replays;
      responses[t] = r->value();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(replays.load(), kThreads - 1);
  EXPECT_EQ(Effects(), 1);
  for (const auto& r : responses) EXPECT_EQ(r, responses[0]);
}


// ================================================================== Unit of work

class UnitOfWorkTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    ASSERT_TRUE(SqlUnitOfWork(db_.get(), WidgetsService()).Migrate().ok());  // applied by AuditTest: a no-op
    ASSERT_TRUE(Exec(*db_, "CREATE TABLE effects (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)").ok());
  }

  static StringValue Str(const std::string& s) {
    StringValue v;
    v.set_value(s);
    return v;
  }

  // A context for a CreateWidget call of `actor` carrying `request` (idempotent when `key` is set).
  static WriteContext Context(const Principal& actor, const std::string& key, const StringValue* request) {
    return WriteContext{&actor, "CreateWidget", key, "call-1", "because", request};
  }

  // A body that records an effect, audits it and answers with a response naming the effect.
  std::function<absl::StatusOr<StringValue>(SqlTransaction&)> Body(const std::string& note) {
    return [this, note](SqlTransaction& tx) -> absl::StatusOr<StringValue> {
      ++body_runs_;
      CG_ASSIGN_OR_RETURN(auto stmt, tx.connection().Prepare("INSERT INTO effects (note) VALUES (?) RETURNING id"));
      CG_ASSIGN_OR_RETURN(int64_t id, InsertedId(stmt.Bind(1, note)));
      const std::string name = absl::StrCat("widgets/", id);
      CG_RETURN_IF_ERROR(tx.Audit(name, "", "v1"));
      return Str(absl::StrCat(note, "#", name));
    };
  }

  int64_t Count(const std::string& table) { return MustInt(*db_, absl::StrCat("SELECT COUNT(*) FROM ", table)); }

  int body_runs_ = 0;
};

TEST_F(UnitOfWorkTest, AFailingBodyLeavesNeitherTheChangeNorTheAuditEventNorTheIdempotencyRecord) {
  SqlUnitOfWork unit(db_.get(), WidgetsService());
  const StringValue request = Str("make a widget");
  bool fail = true;
  auto body = [&](SqlTransaction& tx) -> absl::StatusOr<StringValue> {
    CG_ASSIGN_OR_RETURN(StringValue made, Body("made")(tx));
    if (fail) return absl::FailedPreconditionError("refused after writing and auditing");
    return made;
  };
  auto failed = unit.Run<StringValue>(Context(alice_, "key-1", &request), body);
  EXPECT_EQ(failed.status(), absl::FailedPreconditionError("refused after writing and auditing"));
  EXPECT_EQ(body_runs_, 1);
  EXPECT_EQ(Count("effects"), 0);
  EXPECT_EQ(Count("audit_events"), 0);
  EXPECT_EQ(Count("idempotency_keys"), 0);

  // Not recorded, so the same request id runs the body again.
  fail = false;
  auto retried = unit.Run<StringValue>(Context(alice_, "key-1", &request), body);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(body_runs_, 2);
  EXPECT_EQ(Count("effects"), 1);
  EXPECT_EQ(Count("audit_events"), 1);
  EXPECT_EQ(Count("idempotency_keys"), 1);

  // A constraint the store refuses maps as in sqlite.h and rolls back the same way.
  auto refused = unit.Run<StringValue>(Context(alice_, "", nullptr), [&](SqlTransaction& tx)
                                                                         -> absl::StatusOr<StringValue> {
    CG_ASSIGN_OR_RETURN(StringValue made, Body("dup")(tx));
    CG_RETURN_IF_ERROR(tx.connection().Exec("INSERT INTO effects (id, note) VALUES (1, 'clash')"));
    return made;
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("INSERT")));
  EXPECT_EQ(Count("effects"), 1);
  EXPECT_EQ(Count("audit_events"), 1);
}

TEST_F(UnitOfWorkTest, ARetryWithTheSameRequestIdReturnsTheFirstResponseAndWritesNothing) {
  SqlUnitOfWork unit(db_.get(), WidgetsService());
  const StringValue request = Str("make a widget");
  auto first = unit.Run<StringValue>(Context(alice_, "key-1", &request), Body("created"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->value(), "created#widgets/1");

  auto retry = unit.Run<StringValue>(Context(alice_, "key-1", &request), Body("created-again"));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->value(), "created#widgets/1");
  EXPECT_EQ(body_runs_, 1);
  EXPECT_EQ(Count("effects"), 1);
  EXPECT_EQ(Count("audit_events"), 1);
  EXPECT_EQ(Count("idempotency_keys"), 1);
  EXPECT_EQ(MustInt(*db_, absl::StrCat("SELECT COUNT(*) FROM idempotency_keys WHERE subject = 'alice' AND method = '",
                                       kCreateWidget, "' AND request_id = 'key-1'")),
            1);

  // The response bytes replayed are those of the first response.
  auto bytes = unit.RunBytes(Context(alice_, "key-1", &request), [&](Transaction&) -> absl::StatusOr<std::string> {
    ++body_runs_;
    return std::string("should not run");
  });
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, first->SerializeAsString());
  EXPECT_EQ(body_runs_, 1);

  // Without the request (or without a request id) the write is not idempotent: it runs each time.
  ASSERT_TRUE(unit.Run<StringValue>(Context(alice_, "key-1", nullptr), Body("plain")).ok());
  ASSERT_TRUE(unit.Run<StringValue>(Context(alice_, "", &request), Body("plain")).ok());
  EXPECT_EQ(body_runs_, 3);
  EXPECT_EQ(Count("effects"), 3);
  EXPECT_EQ(Count("idempotency_keys"), 1);
}

TEST_F(UnitOfWorkTest, TheSameRequestIdWithADifferentRequestIsInvalidArgumentAndWritesNothing) {
  SqlUnitOfWork unit(db_.get(), WidgetsService());
  const StringValue request = Str("make a widget");
  ASSERT_TRUE(unit.Run<StringValue>(Context(alice_, "key-1", &request), Body("created")).ok());

  const StringValue other = Str("make another widget");
  auto reused = unit.Run<StringValue>(Context(alice_, "key-1", &other), Body("other"));
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(reused.status()), ElementsAre("request_id"));
  EXPECT_EQ(body_runs_, 1);
  EXPECT_EQ(Count("effects"), 1);
  EXPECT_EQ(Count("audit_events"), 1);

  // Another caller's key of the same name is its own.
  ASSERT_TRUE(unit.Run<StringValue>(Context(bob_, "key-1", &other), Body("bob")).ok());
  EXPECT_EQ(body_runs_, 2);

  // An invalid key is refused before the body runs.
  auto invalid = unit.Run<StringValue>(Context(alice_, "has space", &request), Body("x"));
  EXPECT_EQ(invalid.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(body_runs_, 2);
}

TEST_F(UnitOfWorkTest, AuditRowsCarryTheActorTheFullMethodTheReasonAndTheRequestIds) {
  SqlUnitOfWork unit(db_.get(), WidgetsService());
  UnitOfWork& neutral = unit;  // the backend-neutral interface a PostgreSQL backend implements too
  const StringValue request = Str("make a widget");
  const WriteContext w{&alice_, "CreateWidget", "key-7", "call-7", "the plan says so", &request};
  const WriteContext second{&alice_, "UpdateWidget", "", "call-7", "a second change of the call", nullptr};
  auto made = neutral.Run<StringValue>(w, [&](Transaction& tx) -> absl::StatusOr<StringValue> {
    CG_RETURN_IF_ERROR(tx.Audit("widgets/a", "", "v1"));
    CG_RETURN_IF_ERROR(tx.AuditStep(":Lock", "widgets/a/parts/1", "v1", "v2"));
    SqlTransaction other = SqlTransaction::Of(tx).With(second);
    CG_RETURN_IF_ERROR(other.Audit("widgets/b", "v3", "v4"));
    return Str("made");
  });
  ASSERT_TRUE(made.ok()) << made.status();
  // A write no RPC made is recorded under its name as is.
  const WriteContext seed{&bob_, "Seed", "", "", "seed data", nullptr};
  auto seeded = unit.Run<int>(seed, [&](SqlTransaction& tx) -> absl::StatusOr<int> {
    CG_RETURN_IF_ERROR(tx.Audit("widgets/c", "", "v1"));
    return 1;
  });
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  EXPECT_EQ(*seeded, 1);

  auto page = neutral.ListAuditEvents(alice_, tokens_, ListAuditEventsRequest());
  ASSERT_TRUE(page.ok()) << page.status();
  // Each event as method, resource, etag before, etag after, reason, request id, idempotency key,
  // actor subject; newest first.
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : page->events()) {
    rows.push_back({e.method(), e.resource(), e.etag_before(), e.etag_after(), e.reason(), e.request_id(),
                    e.idempotency_key(), e.actor().subject()});
    EXPECT_TRUE(e.has_time());
  }
  const std::string create = kCreateWidget;
  EXPECT_THAT(rows, ElementsAre(
                        ElementsAre("Seed", "widgets/c", "", "v1", "seed data", "", "", "bob"),
                        ElementsAre("/test.v1.WidgetsService/UpdateWidget", "widgets/b", "v3", "v4",
                                    "a second change of the call", "call-7", "", "alice"),
                        ElementsAre(create + ":Lock", "widgets/a/parts/1", "v1", "v2", "the plan says so", "call-7",
                                    "key-7", "alice"),
                        ElementsAre(create, "widgets/a", "", "v1", "the plan says so", "call-7", "key-7", "alice")));
  ASSERT_EQ(page->events_size(), 4);
  EXPECT_EQ(page->events(3).actor().organization(), "departments/industry_it");
  EXPECT_THAT(page->events(3).actor().roles(), ElementsAre("government", "admin"));

  // The trail is open to auditors, government and admins only.
  EXPECT_EQ(neutral.ListAuditEvents(bob_, tokens_, ListAuditEventsRequest()).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(UnitOfWorkTest, ConcurrentWritesAreEachAtomicOnTheirOwn) {
  SqlUnitOfWork unit(db_.get(), WidgetsService());
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const StringValue request = Str(absl::StrCat("request ", t));
      auto body = [&](SqlTransaction& tx) -> absl::StatusOr<StringValue> {
        CG_RETURN_IF_ERROR(tx.connection().Exec("INSERT INTO effects (note) VALUES ('c')"));
        CG_RETURN_IF_ERROR(tx.Audit(absl::StrCat("widgets/t", t), "", "v1"));
        if (t % 2 == 1) return absl::AbortedError("odd writers fail");
        return Str(absl::StrCat("t", t));
      };
      auto r = unit.Run<StringValue>(Context(alice_, absl::StrCat("key-", t), &request), body);
      (r.ok() ? ok : failed)++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads / 2);
  EXPECT_EQ(failed.load(), kThreads / 2);
  EXPECT_EQ(Count("effects"), kThreads / 2);
  EXPECT_EQ(Count("audit_events"), kThreads / 2);
  EXPECT_EQ(Count("idempotency_keys"), kThreads / 2);
  EXPECT_EQ(MustInt(*db_, "SELECT COUNT(*) FROM audit_events WHERE CAST(substr(resource, 10) AS INTEGER) % 2 = 1"), 0);
}

}  // namespace
}  // namespace clustergov::store

namespace clustergov::store {
namespace {

TEST(SameSchemaTest, TranslatesSqliteTypesAndKeepsVersions) {
  Migrations m = SameSchema({{1, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL,"
                                 " name TEXT NOT NULL, data BLOB NOT NULL);"
                                 " CREATE UNIQUE INDEX t_live ON t (name) WHERE name != '';"},
                             {2, "ALTER TABLE t ADD COLUMN extra INTEGER NOT NULL DEFAULT 0;"}});
  ASSERT_EQ(m.sqlite.size(), 2u);
  ASSERT_EQ(m.postgres.size(), 2u);
  EXPECT_EQ(m.postgres[0].version, 1);
  EXPECT_EQ(m.postgres[1].version, 2);
  EXPECT_EQ(m.postgres[0].sql,
            "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n bigint NOT NULL,"
            " name text NOT NULL, data bytea NOT NULL); CREATE UNIQUE INDEX t_live ON t (name) WHERE name <> '';");
  EXPECT_EQ(m.postgres[1].sql, "ALTER TABLE t ADD COLUMN extra bigint NOT NULL DEFAULT 0;");
  EXPECT_THAT(m.sqlite[0].sql, ::testing::HasSubstr("INTEGER PRIMARY KEY AUTOINCREMENT"));
}

}  // namespace
}  // namespace clustergov::store

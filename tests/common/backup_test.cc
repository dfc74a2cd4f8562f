// Online backups of a SQLite store (common/store/backup.h): a consistent copy taken while writers
// keep committing, never overwriting, never leaving a partial file, and the copy opening as a
// store with every committed row up to the moment it was taken.

#include "common/store/backup.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "common/store/identity.h"
#include "common/store/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace clustergov::store {
namespace {

using ::clustergov::testing::TempDir;

std::unique_ptr<Database> OpenDb(const std::string& path) {
  DatabaseOptions o;
  o.path = path;
  auto db = Database::Open(o);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

int64_t Count(Database& db, const std::string& sql) {
  auto n = db.ReadResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
    CG_ASSIGN_OR_RETURN(auto s, c.Prepare(sql));
    CG_ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : -1;
  });
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : -1;
}

TEST(BackupTest, ACopyTakenUnderConcurrentWritesIsConsistent) {
  TempDir dir;
  auto db = OpenDb(dir.File("support.db"));
  ASSERT_NE(db, nullptr);
  // Every write moves 10 from one account to the other: any consistent copy sums to 1,000,000.
  ASSERT_TRUE(db->Migrate("t", {{1, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);"
                                    " INSERT INTO accounts VALUES (1, 1000000), (2, 0);"
                                    " CREATE TABLE transfers (id INTEGER PRIMARY KEY AUTOINCREMENT);"}})
                  .ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> committed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&] {
      while (!stop.load()) {
        absl::Status s = db->Write([](Connection& c) -> absl::Status {
          CG_RETURN_IF_ERROR(c.Exec("UPDATE accounts SET balance = balance - 10 WHERE id = 1;"
                                    " UPDATE accounts SET balance = balance + 10 WHERE id = 2;"
                                    " INSERT INTO transfers DEFAULT VALUES;"));
          return absl::OkStatus();
        });
        if (s.ok()) ++committed;
      }
    });
  }
  while (committed.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int64_t before = committed.load();
  auto result = BackupDatabase(dir.File("support.db"), dir.File("backup.db"));
  const int64_t after_backup = committed.load();
  while (committed.load() < after_backup + 100) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->pages, 0);
  EXPECT_FALSE(std::filesystem::exists(dir.File("backup.db.partial")));

  auto copy = OpenDb(dir.File("backup.db"));
  ASSERT_NE(copy, nullptr);
  const int64_t transfers = Count(*copy, "SELECT count(*) FROM transfers");
  EXPECT_EQ(Count(*copy, "SELECT sum(balance) FROM accounts"), 1000000);
  EXPECT_EQ(Count(*copy, "SELECT balance FROM accounts WHERE id = 2"), 10 * transfers);
  // Everything acknowledged before the backup started is in it, and no more than was committed by
  // its end (at most the four writers' commits not yet counted then); what came after is not.
  EXPECT_GE(transfers, before);
  EXPECT_LE(transfers, after_backup + 4);
  EXPECT_LT(transfers, Count(*db, "SELECT count(*) FROM transfers"));
  EXPECT_EQ(Count(*copy, "SELECT count(*) FROM schema_migrations WHERE component = 't'"), 1);
}

TEST(BackupTest, NeverOverwritesAndNamesWhatIsMissing) {
  TempDir dir;
  auto db = OpenDb(dir.File("clusters.db"));
  ASSERT_NE(db, nullptr);
  std::ofstream(dir.File("taken.db")) << "an earlier backup";
  auto again = BackupDatabase(dir.File("clusters.db"), dir.File("taken.db"));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  std::ifstream kept(dir.File("taken.db"));
  std::string content((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "an earlier backup");
  auto missing = BackupDatabase(dir.File("nope.db"), dir.File("copy.db"));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_FALSE(std::filesystem::exists(dir.File("copy.db")));
  auto unwritable = BackupDatabase(dir.File("clusters.db"), dir.File("no/such/dir/copy.db"));
  EXPECT_TRUE(absl::IsUnavailable(unwritable.status())) << unwritable.status();
}

// A store keeps its identity across restarts; a backup copy is another store and gets its own.
TEST(BackupTest, ACopyGetsAStoreIdentityOfItsOwn) {
  TempDir dir;
  const std::string source = dir.File("source.db");
  std::string id;
  {
    auto db = OpenDb(source);
    ASSERT_NE(db, nullptr);
    auto first = StoreIdentity(*db);
    ASSERT_TRUE(first.ok()) << first.status();
    id = *first;
  }
  auto db = OpenDb(source);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*StoreIdentity(*db), id);

  ASSERT_TRUE(BackupDatabase(source, dir.File("copy.db")).ok());
  auto copy = OpenDb(dir.File("copy.db"));
  ASSERT_NE(copy, nullptr);
  auto copy_id = StoreIdentity(*copy);
  ASSERT_TRUE(copy_id.ok()) << copy_id.status();
  EXPECT_NE(*copy_id, id);
  EXPECT_EQ(*StoreIdentity(*db), id);  // the original keeps its own

  // A store that never had one (backed up before its first start) is copied as it is.
  ASSERT_TRUE(OpenDb(dir.File("fresh.db")) != nullptr);
  EXPECT_TRUE(BackupDatabase(dir.File("fresh.db"), dir.File("fresh-copy.db")).ok());
}

}  // namespace
}  // namespace clustergov::store

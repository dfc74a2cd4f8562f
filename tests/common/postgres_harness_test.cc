// The PostgreSQL the tests start themselves (tests/support/postgres.h): a real server of the
// version production runs, reachable by its connection string, keeping what it committed across
// a crash (immediate shutdown) and a restart, and enforcing what the stores will lean on
// (unique constraints, serializable transactions).

#include "tests/support/postgres.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clustergov::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(PostgresHarnessTest, AServerOfTheProductionVersionStartsOnALoopbackPort) {
  PostgresServer pg;
  EXPECT_GT(pg.port(), 0);
  EXPECT_THAT(pg.ConnectionString("clustergov"), StartsWith("postgres://"));
  EXPECT_THAT(pg.ConnectionString("clustergov"), HasSubstr(absl::StrCat("@127.0.0.1:", pg.port(), "/clustergov")));
  EXPECT_THAT(pg.Psql("SHOW server_version"), StartsWith("15."));
  EXPECT_EQ(pg.Psql("SHOW listen_addresses"), "127.0.0.1");
  EXPECT_EQ(pg.Psql("SELECT current_setting('server_encoding')"), "UTF8");
}

TEST(PostgresHarnessTest, CommittedRowsSurviveACrashAndConstraintsHold) {
  PostgresServer pg;
  ASSERT_EQ(pg.Psql("CREATE DATABASE clustergov"), "CREATE DATABASE");
  ASSERT_EQ(pg.Psql("CREATE TABLE pools (name text PRIMARY KEY, free bigint NOT NULL CHECK (free >= 0));"
                    " INSERT INTO pools VALUES ('pools/150100-2026-land', 100000)",
                    "clustergov"),
            "CREATE TABLE\nINSERT 0 1");
  // A second row with the same key and an overdraft are refused by the database itself.
  EXPECT_THAT(pg.Psql("INSERT INTO pools VALUES ('pools/150100-2026-land', 5)", "clustergov"),
              HasSubstr("duplicate key value violates unique constraint"));
  EXPECT_THAT(pg.Psql("UPDATE pools SET free = free - 100001", "clustergov"), HasSubstr("violates check constraint"));
  EXPECT_EQ(pg.Psql("BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE pools SET free = free - 12000; COMMIT", "clustergov"),
            "BEGIN\nUPDATE 1\nCOMMIT");

  pg.Stop();  // immediate: no checkpoint
  pg.Start();
  EXPECT_EQ(pg.Psql("SELECT name || ' ' || free FROM pools", "clustergov"), "pools/150100-2026-land 88000");
}

}  // namespace
}  // namespace clustergov::testing

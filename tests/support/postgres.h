#pragma once

// A real PostgreSQL 15 server for tests, started like the Redis one: `initdb` into a temporary
// folder and `pg_ctl start` on a free loopback port, trust authentication on loopback only,
// fsync off (a test crashes the server, never the machine) but commits synchronous, so an
// acknowledged commit survives Stop() and Start(). initdb refuses to run as root and CI runs as
// root, so as root the server runs as an unprivileged user — $CLUSTERGOV_TEST_PG_USER, default
// `nobody` — that owns the folder. Binaries from $CLUSTERGOV_PG_BINDIR, default Debian's
// /usr/lib/postgresql/15/bin.

#include <string>

#include "tests/support/test_support.h"

namespace clustergov::testing {

class PostgresServer {
 public:
  PostgresServer();  // initdb and start; aborts the test binary with the tools' output on failure
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // "postgres://{user}@127.0.0.1:{port}/{database}", what a service's --db takes.
  std::string ConnectionString(const std::string& database = "postgres") const;
  // Runs `sql` with psql (-X -A -t: bare values, one row per line); the output, trimmed.
  std::string Psql(const std::string& sql, const std::string& database = "postgres") const;
  // Runs the client tool `tool` (pg_dump, pg_restore, ...) of the server's release with `args`
  // (shell words); its exit code, with stdout+stderr in `output`.
  int RunTool(const std::string& tool, const std::string& args, std::string* output) const;
  // Immediate shutdown (no checkpoint: like a crash, recovered from the WAL on Start()).
  void Stop();
  void Start();

 private:
  std::string Bin(const std::string& tool) const;
  // `command` as the server's user (directly when not root).
  std::string AsServerUser(const std::string& command) const;

  TempDir dir_;
  std::string data_;
  std::string bindir_;
  std::string user_;
  bool as_root_ = false;
  int port_ = 0;
};

// The store a test service runs on: `sqlite_path` itself, or, when the test binary runs with
// CLUSTERGOV_TEST_STORE=postgres (CTest's `<suite>_postgres` runs), the URL of a database of its
// own on one PostgreSQL server shared by the whole test binary (started at first use). The same
// path always names the same database, so a service restarted on its path finds its data.
std::string TestStoreLocation(const std::string& sqlite_path);
// Whether this test binary runs its services on PostgreSQL (see above).
bool TestStoreIsPostgres();
// The shared server of TestStoreLocation (started on first use).
PostgresServer& SharedPostgres();

}  // namespace clustergov::testing

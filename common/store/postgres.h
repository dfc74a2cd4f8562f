#pragma once

// PostgreSQL, the production store (SQLite stays the embedded default): a bounded pool of libpq
// connections, transactions at a chosen isolation level with bounded retries of serialization
// failures, versioned migrations applied once across replicas, and the same error mapping as the
// SQLite layer. libpq rather than libpqxx: the C API has no exceptions (the code base reports
// with absl::Status throughout), text parameters are all the stores need, and it is what the
// server ships with.
//
// - Connections: `--db=postgres://user[:password]@host:port/database[?param=value]`; every
//   connection sets a connect timeout and a statement timeout. A connection that breaks (the
//   server restarted, the network dropped) is discarded and replaced on next use.
// - Transaction(): BEGIN at the isolation level, the body, COMMIT. A body's non-OK status rolls
//   back. Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are retried up to
//   `max_serialization_retries` times with a jittered back-off, then ABORTED; a transaction whose
//   connection was found dead before any statement ran is retried on a fresh one.
// - Migrate(): under one transaction-scoped advisory lock, so of several replicas starting at once
//   exactly one applies what is missing and the others see it applied; a database whose schema is
//   newer than the binary's migrations is refused (FAILED_PRECONDITION) rather than written to.
// - Listen(): a connection of its own per subscription (application_name clustergov-listener,
//   outside the pool, TCP keepalives on) that runs LISTEN, and a thread waiting on its socket
//   that hands each notification to the callback. When the connection drops it reconnects with
//   a jittered back-off (50 ms doubling to 5 s), listens again, then calls the resync callback.
//   Connecting and waiting are interruptible: destroying the subscription returns at once.
//   Counted in clustergov_store_notifications_received_total and
//   clustergov_store_listener_resyncs_total (label `channel`).
// - Errors: unique violations are ALREADY_EXISTS; other integrity violations (foreign key, not
//   null, check, a trigger's RAISE) FAILED_PRECONDITION; connection loss, shutdown, timeouts and
//   an exhausted pool UNAVAILABLE; serialization failures ABORTED; the rest INTERNAL. SQL and the
//   server's message are logged, never returned to callers; a password never appears in either.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/store/sql.h"

struct pg_conn;
struct pg_result;

namespace prometheus {
class Registry;
template <typename T> class Family;
class Histogram;
class Counter;
}  // namespace prometheus

namespace clustergov::store {

// A text parameter ($1, $2, ... in the SQL); nullopt is NULL.
using PgParam = std::optional<std::string>;

class PgResult {
 public:
  PgResult() = default;
  int rows() const;
  int columns() const;
  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;
  int64_t Int(int row, int column) const;  // 0 for NULL or a value that is not an integer
  double Double(int row, int column) const;  // 0 for NULL
  // A bytea column's bytes (decoded from its hex text); any other column's text.
  std::string Bytes(int row, int column) const;
  int64_t affected() const;                // rows an INSERT/UPDATE/DELETE touched

 private:
  friend class PgConnection;
  explicit PgResult(std::shared_ptr<pg_result> result) : result_(std::move(result)) {}
  std::shared_ptr<pg_result> result_;
};

class PgConnection {
 public:
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // One statement with text parameters (several statements when there are none).
  absl::StatusOr<PgResult> Exec(absl::string_view sql, const std::vector<PgParam>& params = {});
  // One statement whose parameters are `?` (sql.h): rewritten to $n and prepared once per
  // connection (up to kMaxPrepared distinct statements; beyond that, run unprepared).
  absl::StatusOr<PgResult> ExecCached(absl::string_view sql, const std::vector<PgParam>& params);
  // False once the connection is gone (then the pool replaces it).
  bool healthy() const;

 private:
  friend class PgDatabase;
  static constexpr size_t kMaxPrepared = 512;
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL as written -> statement name
};

// Whether `db` names a PostgreSQL store (postgres:// or postgresql://) rather than a SQLite file.
bool IsPostgresUrl(absl::string_view db);

// `sql` with its `?` parameters numbered $1, $2, ... (outside quotes and comments).
std::string PgNumberParameters(absl::string_view sql);
// The text form of a bytea parameter ("\x" and hex).
std::string PgByteaLiteral(absl::string_view bytes);

// A Statement's execution on PostgreSQL: parameters collected by Bind, run at the first Step.
struct PgCursor {
  PgCursor(PgConnection& c, int64_t* changes_out, std::string text)
      : conn(c), changes(changes_out), sql(std::move(text)) {}
  void Set(int index, PgParam value);
  absl::StatusOr<bool> Step();

  PgConnection& conn;
  int64_t* changes;  // the session's Changes()
  std::string sql;
  std::vector<PgParam> params;
  PgResult result;
  bool executed = false;
  int row = -1;
};

enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };

struct PgOptions {
  std::string url;  // postgres://user[:password]@host:port/database[?param=value]
  int pool_size = 8;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration acquire_timeout = absl::Seconds(5);    // waiting for a free connection
  absl::Duration statement_timeout = absl::Seconds(10);
  int max_serialization_retries = 20;
  prometheus::Registry* metrics = nullptr;  // optional
};

class PgDatabase final : public Store {
 public:
  // Connects once to check the server is there: UNAVAILABLE naming the server (never the
  // password) when it is not, INVALID_ARGUMENT when the URL is not a postgres:// URL.
  static absl::StatusOr<std::unique_ptr<PgDatabase>> Open(PgOptions options);
  ~PgDatabase();

  // `serialize_on` (optional): a key whose session advisory lock is held from before BEGIN to after
  // COMMIT (WriteOptions).
  absl::Status Transaction(Isolation isolation, const std::function<absl::Status(PgConnection&)>& body,
                           const std::string& serialize_on = "");

  template <typename T>
  absl::StatusOr<T> TransactionResult(Isolation isolation, const std::function<absl::StatusOr<T>(PgConnection&)>& body) {
    std::optional<absl::StatusOr<T>> result;
    absl::Status status = Transaction(isolation, [&](PgConnection& c) -> absl::Status {
      result.emplace(body(c));
      return result->status();
    });
    if (!status.ok()) return status;
    return std::move(*result);
  }

  // Applies `component`'s pending migrations in one transaction (see the top of this file).
  absl::Status Migrate(absl::string_view component, const std::vector<Migration>& migrations);

  // The Store: reads in a REPEATABLE READ snapshot, writes SERIALIZABLE (retried as above).
  Backend backend() const override { return Backend::kPostgres; }
  std::string location() const override { return server_; }
  absl::Status Read(const std::function<absl::Status(Connection&)>& fn) override;
  absl::Status Write(const std::function<absl::Status(Connection&)>& fn, const WriteOptions& options = {}) override;
  absl::Status Migrate(absl::string_view component, const Migrations& migrations) override {
    return Migrate(component, migrations.postgres);
  }
  // UNAVAILABLE when the first connection or its LISTEN fails; later failures are retried.
  absl::StatusOr<std::unique_ptr<Subscription>> Listen(absl::string_view channel,
                                                       std::function<void(const std::string&)> on_notify,
                                                       std::function<void()> on_resync) override;

  // Transactions retried after a serialization failure or deadlock, since Open (for tests and
  // metrics).
  int64_t serialization_retries() const;
  // The server as "host:port/database" (no user or password), for logs and errors.
  const std::string& server() const { return server_; }

 private:
  explicit PgDatabase(PgOptions options, std::string server);
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect() const;
  absl::StatusOr<std::unique_ptr<PgConnection>> Acquire();
  void Release(std::unique_ptr<PgConnection> conn);

  PgOptions options_;
  std::string server_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_ = 0;  // connections in use or idle
  int64_t retries_ = 0;
  prometheus::Histogram* read_seconds_ = nullptr;
  prometheus::Histogram* write_seconds_ = nullptr;
  prometheus::Counter* retries_total_ = nullptr;
  prometheus::Family<prometheus::Counter>* notifications_total_ = nullptr;
  prometheus::Family<prometheus::Counter>* resyncs_total_ = nullptr;
};

// Maps a failed result (or, when `result` is null, the connection's state) to a status as
// described at the top; logs `context` and the server's message.
absl::Status PgError(const pg_result* result, const pg_conn* conn, absl::string_view context);

}  // namespace clustergov::store

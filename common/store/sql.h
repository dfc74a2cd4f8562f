#pragma once

// The SQL every repository speaks, on either backend: SQLite (sqlite.h, the embedded default) or
// PostgreSQL (postgres.h, the production store).
//
// - Statement, Connection: a prepared statement and the session it runs on. Parameters are `?`
//   (on PostgreSQL they are rewritten to $1, $2, ... once per connection and prepared there);
//   binds are 1-based. Repositories write SQL both backends accept: `INSERT ... ON CONFLICT`,
//   `RETURNING id` for generated keys, `CAST`, and the few SQLite functions PostgreSQL lacks that
//   the PostgreSQL core migration defines (printf with %d / %0Nd, instr, ifnull, group_concat,
//   date('now', '+N hours')).
// - Store: what a repository holds. Read() runs in one consistent snapshot; Write() runs as one
//   atomic, durable unit (SQLite: a savepoint in a group commit; PostgreSQL: a SERIALIZABLE
//   transaction whose serialization failures are retried, so `fn` may run more than once and must
//   do nothing but SQL). Migrate() applies a component's migrations for the store's backend.
// - A change feed: Connection::Notify(channel, payload) inside a Write() announces a change, and
//   Store::Listen(channel, ...) hears those every process commits to the store (PostgreSQL's
//   NOTIFY/LISTEN), so replicas keep in-process state (an index) current with each other's writes.
//
// Errors never carry SQL: unique violations are ALREADY_EXISTS, other rules of the schema
// FAILED_PRECONDITION, an unreachable or busy store UNAVAILABLE, the rest INTERNAL.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace clustergov::store {

class Connection;
class PgConnection;
struct PgCursor;

enum class Backend { kSqlite, kPostgres };

// A prepared statement checked out of a connection; reset and unbound on destruction.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, absl::string_view(text)); }
  Statement& Bind(int index, const std::string& text) { return Bind(index, absl::string_view(text)); }
  Statement& Bind(int index, double value);
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);
  // Binds values[i] to index first + i.
  Statement& BindAll(int first, const std::vector<std::variant<int64_t, std::string>>& values);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements returning no rows.
  absl::Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  std::string Blob(int column) const;
  double Double(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Connection;
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned);
  explicit Statement(std::unique_ptr<PgCursor> pg);
  void Fail(absl::Status s);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = false;  // not in the connection's cache: finalized on destruction
  std::unique_ptr<PgCursor> pg_;  // set on PostgreSQL
  absl::Status bind_error_;
};

class Connection {
 public:
  // A session on a PostgreSQL connection (which keeps the prepared statements).
  explicit Connection(PgConnection& pg) : pg_(&pg) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Backend backend() const { return pg_ != nullptr ? Backend::kPostgres : Backend::kSqlite; }

  // Prepared once per connection and cached by SQL text (on SQLite up to kMaxCachedStatements;
  // beyond that, e.g. for many distinct filters, prepared per use). Do not hold two Statements of
  // the same SQL at once on one connection.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // Runs one or more statements without parameters or results (schema, pragmas).
  absl::Status Exec(absl::string_view sql);
  // Rows changed by the last INSERT, UPDATE or DELETE run on this connection.
  int64_t Changes() const;
  // Inside a Write(): `payload` (under 8000 bytes) reaches the store's listeners on `channel`
  // (Store::Listen) if and when the write commits, in commit order. A no-op on SQLite (see Listen).
  absl::Status Notify(absl::string_view channel, absl::string_view payload);
  // SQLite only (the writer's handle, for the store itself).
  sqlite3* raw() { return db_; }

 private:
  friend class Database;
  friend class Statement;
  explicit Connection(sqlite3* db) : db_(db) {}
  static constexpr size_t kMaxCachedStatements = 512;
  sqlite3* db_ = nullptr;
  PgConnection* pg_ = nullptr;
  int64_t pg_changes_ = 0;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A listener on a store's change feed (Store::Listen): it calls back until destroyed.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

struct Migration {
  int version;      // 1, 2, 3, ... applied in order
  std::string sql;  // one or more statements
};

// A component's schema on each backend, each versioned on its own.
struct Migrations {
  std::vector<Migration> sqlite;
  std::vector<Migration> postgres;
};

// The same schema on both backends, from SQLite DDL that uses only tables, indexes (partial ones
// included) and the types INTEGER, TEXT and BLOB: on PostgreSQL INTEGER is bigint, BLOB bytea,
// `INTEGER PRIMARY KEY AUTOINCREMENT` an identity column and `!=` `<>`. A schema with triggers or
// other SQLite-only DDL writes its PostgreSQL list itself.
Migrations SameSchema(std::vector<Migration> sqlite);

// How a write runs beside others.
struct WriteOptions {
  // Writes naming the same key run one at a time across every replica (PostgreSQL: a session
  // advisory lock taken before the transaction begins, so each starts from the previous one's
  // commit instead of failing serialization on a hot row; SQLite's one writer does this anyway).
  std::string serialize_on;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Backend backend() const = 0;
  // Where the store is, for logs: a file path, or "host:port/database" (never a password).
  virtual std::string location() const = 0;

  virtual absl::Status Read(const std::function<absl::Status(Connection&)>& fn) = 0;
  virtual absl::Status Write(const std::function<absl::Status(Connection&)>& fn, const WriteOptions& options = {}) = 0;
  // Applies the pending migrations of `component` for this backend.
  virtual absl::Status Migrate(absl::string_view component, const Migrations& migrations) = 0;

  // From its return on, calls `on_notify(payload)` for each Notify(channel, payload) any process
  // commits to the store, in commit order, one at a time on a thread of the subscription's. When
  // some may have been missed (its connection dropped; it reconnects with back-off), calls
  // `on_resync()` once listening again: the caller then reloads what it follows in full. The
  // callbacks stop when the Subscription is destroyed (never destroy it from one of them).
  // On SQLite nothing is ever heard: a SQLite file has one process writing it, whose own writes
  // are all the changes there are and which it applies itself as it makes them.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Listen(absl::string_view channel,
                                                               std::function<void(const std::string&)> on_notify,
                                                               std::function<void()> on_resync) = 0;

  template <typename T>
  absl::StatusOr<T> ReadResult(const std::function<absl::StatusOr<T>(Connection&)>& fn) {
    std::optional<absl::StatusOr<T>> result;
    absl::Status status = Read([&](Connection& c) -> absl::Status {
      result.emplace(fn(c));
      return result->status();
    });
    if (!status.ok()) return status;
    return std::move(*result);
  }

  template <typename T>
  absl::StatusOr<T> WriteResult(const std::function<absl::StatusOr<T>(Connection&)>& fn,
                                const WriteOptions& options = {}) {
    std::optional<absl::StatusOr<T>> result;
    absl::Status status = Write(
        [&](Connection& c) -> absl::Status {
          result.emplace(fn(c));
          return result->status();
        },
        options);
    if (!status.ok()) return status;
    return std::move(*result);
  }
};

// Current time in microseconds since the Unix epoch: how timestamps are stored (INTEGER).
int64_t NowMicros();

}  // namespace clustergov::store

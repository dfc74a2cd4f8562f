#pragma once

// A thin RAII layer over SQLite.
//
// - Connection: one sqlite3 handle with a cache of prepared statements. Not thread-safe; the
//   Database hands each connection to one thread at a time.
// - Database: a pool of read connections (WAL lets them run beside the writer) and one writer
//   thread that group-commits: concurrent Write() calls are batched into one transaction, each
//   call in its own SAVEPOINT, so every call is atomic on its own and a batch costs one fsync.
//   Write() returns only after the commit is durable.
// - Migrations: versioned per component, applied once, recorded in schema_migrations.
//
// SQL never leaves this layer in an error message seen by callers (the detail is logged). A
// uniqueness conflict (UNIQUE, PRIMARY KEY) is ALREADY_EXISTS; any other constraint (FOREIGN
// KEY, NOT NULL, CHECK, a trigger's RAISE) is FAILED_PRECONDITION: the request passed
// validation, and the stored records refuse the change; busy and I/O errors are UNAVAILABLE;
// the rest INTERNAL.

#include "absl/strings/string_view.h"
#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
template <typename T> class Family;
class Histogram;
class Counter;
}  // namespace prometheus

namespace clustergov::store {

// A prepared statement checked out of a connection's cache; reset and unbound on destruction.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Binds are 1-based, as in SQLite.
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
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;  // not in the connection's cache: finalized on destruction
  absl::Status bind_error_;
};

class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Prepared once per connection and cached by SQL text (up to kMaxCachedStatements; beyond
  // that, e.g. for many distinct filters, prepared per use). Do not hold two Statements of the
  // same SQL at once on one connection.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // Runs one or more statements without results (schema, pragmas).
  absl::Status Exec(absl::string_view sql);
  int64_t LastInsertRowId() const;
  int Changes() const;
  sqlite3* raw() { return db_; }

 private:
  friend class Database;
  explicit Connection(sqlite3* db) : db_(db) {}
  static constexpr size_t kMaxCachedStatements = 512;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Maps a SQLite (extended) result code to a status without leaking SQL, as described at the top;
// logs `context` and SQLite's message.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context);

struct Migration {
  int version;       // 1, 2, 3, ... applied in order
  std::string sql;   // one or more statements
};

struct DatabaseOptions {
  std::string path;                // file path; ":memory:" is refused (readers need a file)
  int read_connections = 4;
  int busy_timeout_ms = 5000;
  // FULL: fsync on every commit (an acknowledged write survives power loss). NORMAL: survives
  // a process crash, may lose the last commits on power loss.
  bool synchronous_full = true;
  int max_batch = 128;             // writes per group commit
  prometheus::Registry* metrics = nullptr;  // optional
};

class Database {
 public:
  // Opens (creating if needed) the file, enables WAL and foreign keys, starts the writer.
  // UNAVAILABLE with a clear message when the file cannot be opened or written.
  static absl::StatusOr<std::unique_ptr<Database>> Open(DatabaseOptions options);
  ~Database();

  // Applies the pending migrations of `component` in one transaction each.
  absl::Status Migrate(absl::string_view component, const std::vector<Migration>& migrations);

  // Runs `fn` atomically (its own SAVEPOINT inside a group commit) on the writer connection.
  // A non-OK status from `fn` rolls back everything it did. Returns after the commit is durable.
  // `fn` runs on the writer thread: it must not call Write() or Read().
  absl::Status Write(std::function<absl::Status(Connection&)> fn);

  template <typename T>
  absl::StatusOr<T> WriteResult(std::function<absl::StatusOr<T>(Connection&)> fn) {
    std::optional<absl::StatusOr<T>> result;
    absl::Status status = Write([&](Connection& c) -> absl::Status {
      result.emplace(fn(c));
      return result->status();
    });
    if (!status.ok()) return status;
    return std::move(*result);
  }

  // Runs `fn` on a read connection inside one read transaction (a consistent snapshot).
  absl::Status Read(const std::function<absl::Status(Connection&)>& fn);

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

  const std::string& path() const { return options_.path; }

 private:
  struct Job {
    std::function<absl::Status(Connection&)> fn;
    absl::Status result;
    bool done = false;
  };

  explicit Database(DatabaseOptions options);
  absl::Status Init();
  void WriterLoop();
  void RunBatch(std::vector<Job*>& batch);

  DatabaseOptions options_;
  std::unique_ptr<Connection> writer_;
  std::vector<std::unique_ptr<Connection>> readers_;

  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<Connection*> idle_readers_;

  std::mutex write_mu_;
  std::condition_variable write_cv_;   // wakes the writer
  std::condition_variable done_cv_;    // wakes callers
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::thread writer_thread_;

  prometheus::Histogram* read_seconds_ = nullptr;
  prometheus::Histogram* write_seconds_ = nullptr;
  prometheus::Histogram* commit_seconds_ = nullptr;
  prometheus::Counter* commits_ = nullptr;
  prometheus::Counter* batched_writes_ = nullptr;
};

// Current time in microseconds since the Unix epoch: how timestamps are stored (INTEGER).
int64_t NowMicros();

}  // namespace clustergov::store

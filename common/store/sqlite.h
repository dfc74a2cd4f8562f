#pragma once

// SQLite, the embedded store (sql.h: the SQL layer both backends share).
//
// - Connection (sql.h): one sqlite3 handle with a cache of prepared statements. Not thread-safe;
//   the Database hands each connection to one thread at a time.
// - Database, a Store: a pool of read connections (WAL lets them run beside the writer) and one writer
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
#include "common/store/sql.h"

namespace prometheus {
class Registry;
template <typename T> class Family;
class Histogram;
class Counter;
}  // namespace prometheus

namespace clustergov::store {

// Maps a SQLite (extended) result code to a status without leaking SQL, as described at the top;
// logs `context` and SQLite's message.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context);

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

class Database final : public Store {
 public:
  // Opens (creating if needed) the file, enables WAL and foreign keys, starts the writer.
  // UNAVAILABLE with a clear message when the file cannot be opened or written.
  static absl::StatusOr<std::unique_ptr<Database>> Open(DatabaseOptions options);
  ~Database();

  Backend backend() const override { return Backend::kSqlite; }
  std::string location() const override { return options_.path; }

  // Applies the pending migrations of `component` in one transaction each.
  absl::Status Migrate(absl::string_view component, const std::vector<Migration>& migrations);
  absl::Status Migrate(absl::string_view component, const Migrations& migrations) override {
    return Migrate(component, migrations.sqlite);
  }

  // Runs `fn` atomically (its own SAVEPOINT inside a group commit) on the writer connection.
  // A non-OK status from `fn` rolls back everything it did. Returns after the commit is durable.
  // `fn` runs on the writer thread: it must not call Write() or Read().
  absl::Status Write(const std::function<absl::Status(Connection&)>& fn, const WriteOptions& options = {}) override;

  // Runs `fn` on a read connection inside one read transaction (a consistent snapshot).
  absl::Status Read(const std::function<absl::Status(Connection&)>& fn) override;

  // Never calls back (sql.h: one process writes a SQLite file).
  absl::StatusOr<std::unique_ptr<Subscription>> Listen(absl::string_view channel,
                                                       std::function<void(const std::string&)> on_notify,
                                                       std::function<void()> on_resync) override {
    return std::make_unique<Subscription>();
  }

  const std::string& path() const { return options_.path; }

 private:
  struct Job {
    const std::function<absl::Status(Connection&)>* fn;
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

}  // namespace clustergov::store

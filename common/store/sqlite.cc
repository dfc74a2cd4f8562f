#include "absl/strings/string_view.h"
#include "common/store/sqlite.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace clustergov::store {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  log::Error("store error", {{"context", context}, {"sqlite", detail}, {"rc", std::to_string(rc)}});
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
      return absl::AlreadyExistsError("conflicts with an existing record");
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::FailedPreconditionError("refers to a record that does not exist, or removes one still referred to");
    case SQLITE_CONSTRAINT_NOTNULL:
      return absl::FailedPreconditionError("a required value of the record is missing");
    case SQLITE_CONSTRAINT_TRIGGER:
      return absl::FailedPreconditionError("the change is not allowed on the stored records");
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError("store busy, retry");
    case SQLITE_CONSTRAINT:  // CHECK, and any other rule of the schema
      return absl::FailedPreconditionError("the change would break a rule of the stored records");
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return absl::UnavailableError("store unavailable");
    default:
      return absl::InternalError("store error");
  }
}

// ---------------------------------------------------------------- Database

Database::Database(DatabaseOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(DatabaseOptions options) {
  if (options.path.empty() || options.path == ":memory:") {
    return absl::InvalidArgumentError("store path must name a file");
  }
  if (options.read_connections < 1) options.read_connections = 1;
  if (options.max_batch < 1) options.max_batch = 1;
  std::unique_ptr<Database> db(new Database(std::move(options)));
  absl::Status status = db->Init();
  if (!status.ok()) return status;
  return db;
}

absl::Status Database::Init() {
  auto open = [&](bool writer) -> absl::StatusOr<std::unique_ptr<Connection>> {
    sqlite3* handle = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(options_.path.c_str(), &handle, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string why = handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
      sqlite3_close_v2(handle);
      return absl::UnavailableError(absl::StrCat("cannot open store ", options_.path, ": ", why));
    }
    if (writer && sqlite3_db_readonly(handle, "main") == 1) {
      // SQLite opens a file it may not write read-only instead of failing.
      sqlite3_close_v2(handle);
      return absl::UnavailableError(absl::StrCat("store ", options_.path, " is not writable"));
    }
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, options_.busy_timeout_ms);
    auto conn = std::unique_ptr<Connection>(new Connection(handle));
    absl::Status s = conn->Exec(absl::StrCat(
        "PRAGMA foreign_keys=ON; PRAGMA synchronous=", options_.synchronous_full ? "FULL" : "NORMAL",
        "; PRAGMA temp_store=MEMORY;"));
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("cannot configure store ", options_.path));
    if (writer) {
      // WAL: readers never block the writer and vice versa. Fails on a read-only file.
      auto stmt = conn->Prepare("PRAGMA journal_mode=WAL");
      if (!stmt.ok()) return absl::UnavailableError(absl::StrCat("store ", options_.path, " is not writable"));
      auto row = stmt->Step();
      if (!row.ok() || !*row || stmt->Text(0) != "wal") {
        return absl::UnavailableError(absl::StrCat("cannot enable WAL on store ", options_.path));
      }
    }
    return conn;
  };

  auto writer = open(true);
  if (!writer.ok()) return writer.status();
  writer_ = std::move(*writer);
  // Prove the file is writable now rather than at the first request.
  absl::Status probe = writer_->Exec(
      "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS schema_migrations ("
      " component TEXT NOT NULL, version INTEGER NOT NULL, applied_micros INTEGER NOT NULL,"
      " PRIMARY KEY (component, version)); COMMIT;");
  if (!probe.ok()) {
    return absl::UnavailableError(absl::StrCat("store ", options_.path, " is not writable"));
  }
  for (int i = 0; i < options_.read_connections; ++i) {
    auto reader = open(false);
    if (!reader.ok()) return reader.status();
    idle_readers_.push_back(reader->get());
    readers_.push_back(std::move(*reader));
  }

  if (options_.metrics != nullptr) {
    auto& seconds = prometheus::BuildHistogram()
                        .Name("clustergov_store_operation_seconds")
                        .Help("Time spent in store operations, including waiting for a connection or a commit.")
                        .Register(*options_.metrics);
    const prometheus::Histogram::BucketBoundaries buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                          0.01,   0.025,   0.05,   0.1,   0.25,   1};
    read_seconds_ = &seconds.Add({{"op", "read"}}, buckets);
    write_seconds_ = &seconds.Add({{"op", "write"}}, buckets);
    commit_seconds_ = &seconds.Add({{"op", "commit"}}, buckets);
    commits_ = &prometheus::BuildCounter()
                    .Name("clustergov_store_commits_total")
                    .Help("Group commits performed by the store writer.")
                    .Register(*options_.metrics)
                    .Add({});
    batched_writes_ = &prometheus::BuildCounter()
                           .Name("clustergov_store_writes_total")
                           .Help("Write units committed (several may share one commit).")
                           .Register(*options_.metrics)
                           .Add({});
  }
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return absl::OkStatus();
}

Database::~Database() {
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    stopping_ = true;
  }
  write_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
}

absl::Status Database::Migrate(absl::string_view component, const std::vector<Migration>& migrations) {
  for (const auto& m : migrations) {
    absl::Status s = Write([&](Connection& c) -> absl::Status {
      auto check = c.Prepare("SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?");
      if (!check.ok()) return check.status();
      check->Bind(1, component).Bind(2, m.version);
      auto applied = check->Step();
      if (!applied.ok()) return applied.status();
      if (*applied) return absl::OkStatus();
      absl::Status exec = c.Exec(m.sql);
      if (!exec.ok()) return exec;
      auto record = c.Prepare("INSERT INTO schema_migrations (component, version, applied_micros) VALUES (?, ?, ?)");
      if (!record.ok()) return record.status();
      record->Bind(1, component).Bind(2, m.version).Bind(3, NowMicros());
      return record->Run();
    });
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("migration ", component, " v", m.version, " failed"));
    }
  }
  return absl::OkStatus();
}

absl::Status Database::Write(const std::function<absl::Status(Connection&)>& fn, const WriteOptions&) {
  auto start = std::chrono::steady_clock::now();
  Job job;
  job.fn = &fn;
  {
    std::unique_lock<std::mutex> lock(write_mu_);
    if (stopping_) return absl::UnavailableError("store is shutting down");
    queue_.push_back(&job);
    write_cv_.notify_one();
    done_cv_.wait(lock, [&] { return job.done; });
  }
  if (write_seconds_ != nullptr) write_seconds_->Observe(SecondsSince(start));
  return job.result;
}

void Database::WriterLoop() {
  std::vector<Job*> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(write_mu_);
      write_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      for (Job* job : batch) job->done = true;
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

void Database::RunBatch(std::vector<Job*>& batch) {
  auto start = std::chrono::steady_clock::now();
  absl::Status begin = writer_->Exec("BEGIN IMMEDIATE");
  if (!begin.ok()) {
    for (Job* job : batch) job->result = begin;
    return;
  }
  size_t succeeded = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    Job* job = batch[i];
    absl::Status sp = writer_->Exec("SAVEPOINT unit");
    if (!sp.ok()) {
      job->result = sp;
      continue;
    }
    job->result = (*job->fn)(*writer_);
    if (sqlite3_get_autocommit(writer_->raw())) {
      // SQLite rolled back the whole transaction (I/O error, disk full): every unit of the batch
      // run so far is gone, so none of them may be acknowledged; the rest are not run.
      absl::Status lost = absl::UnavailableError("store transaction aborted");
      for (size_t j = 0; j < batch.size(); ++j) {
        if (j != i || job->result.ok()) batch[j]->result = lost;
      }
      return;
    }
    if (job->result.ok()) {
      job->result = writer_->Exec("RELEASE unit");
      if (job->result.ok()) ++succeeded;
    } else {
      // Undo this unit only; the others in the batch are unaffected.
      absl::Status undo = writer_->Exec("ROLLBACK TO unit; RELEASE unit");
      if (!undo.ok()) log::Error("rollback to savepoint failed");
    }
  }
  auto commit_start = std::chrono::steady_clock::now();
  absl::Status commit = writer_->Exec("COMMIT");
  if (!commit.ok()) {
    writer_->Exec("ROLLBACK").IgnoreError();
    for (Job* job : batch) {
      if (job->result.ok()) job->result = absl::UnavailableError("store commit failed");
    }
    return;
  }
  if (commit_seconds_ != nullptr) {
    commit_seconds_->Observe(SecondsSince(commit_start));
    commits_->Increment();
    batched_writes_->Increment(static_cast<double>(succeeded));
  }
  (void)start;
}

absl::Status Database::Read(const std::function<absl::Status(Connection&)>& fn) {
  auto start = std::chrono::steady_clock::now();
  Connection* conn = nullptr;
  {
    std::unique_lock<std::mutex> lock(read_mu_);
    read_cv_.wait(lock, [&] { return !idle_readers_.empty(); });
    conn = idle_readers_.back();
    idle_readers_.pop_back();
  }
  absl::Status status = conn->Exec("BEGIN");
  if (status.ok()) {
    status = fn(*conn);
    absl::Status end = conn->Exec("COMMIT");
    if (status.ok()) status = end;
  }
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    idle_readers_.push_back(conn);
  }
  read_cv_.notify_one();
  if (read_seconds_ != nullptr) read_seconds_->Observe(SecondsSince(start));
  return status;
}

}  // namespace clustergov::store

#include "common/store/postgres.h"

#include <libpq-fe.h>

#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace clustergov::store {

namespace {

// One advisory lock for every component's migrations: they share schema_migrations.
constexpr int64_t kMigrationLock = 0x636c7573746572;  // "cluster"

// "host:port/database" of a postgres:// URL, without user or password; empty when it is not one.
std::string ServerOf(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "postgres://") && !absl::ConsumePrefix(&rest, "postgresql://")) return "";
  auto at = rest.find('@');
  if (at != absl::string_view::npos) rest.remove_prefix(at + 1);
  auto query = rest.find('?');
  if (query != absl::string_view::npos) rest = rest.substr(0, query);
  return rest.empty() ? "localhost" : std::string(rest);
}

// Whether a failure is the connection's rather than the statement's.
bool ConnectionLost(const pg_conn* conn) { return conn == nullptr || PQstatus(conn) != CONNECTION_OK; }

const char* IsolationSql(Isolation isolation) {
  switch (isolation) {
    case Isolation::kSerializable: return "BEGIN ISOLATION LEVEL SERIALIZABLE";
    case Isolation::kRepeatableRead: return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    case Isolation::kReadCommitted: break;
  }
  return "BEGIN ISOLATION LEVEL READ COMMITTED";
}

}  // namespace

absl::Status PgError(const pg_result* result, const pg_conn* conn, absl::string_view context) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state != nullptr ? state : "";
  const char* detail = result != nullptr ? PQresultErrorMessage(result) : (conn != nullptr ? PQerrorMessage(conn) : "");
  log::Error("store error", {{"context", std::string(context.substr(0, 200))},
                             {"sqlstate", sqlstate},
                             {"postgres", std::string(absl::StripTrailingAsciiWhitespace(detail ? detail : ""))}});
  if (sqlstate == "23505") return absl::AlreadyExistsError("conflicts with an existing record");
  if (sqlstate == "23503") {
    return absl::FailedPreconditionError("refers to a record that does not exist, or removes one still referred to");
  }
  if (sqlstate == "23502") return absl::FailedPreconditionError("a required value of the record is missing");
  if (sqlstate == "P0001") return absl::FailedPreconditionError("the change is not allowed on the stored records");
  if (absl::StartsWith(sqlstate, "23")) {
    return absl::FailedPreconditionError("the change would break a rule of the stored records");
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return absl::AbortedError("a concurrent change conflicted with this one; retry");
  }
  if (sqlstate == "57014") return absl::UnavailableError("store timed out");
  if (absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "53") || sqlstate == "57P01" ||
      sqlstate == "57P02" || sqlstate == "57P03" || (sqlstate.empty() && ConnectionLost(conn))) {
    return absl::UnavailableError("store unavailable");
  }
  return absl::InternalError("store error");
}

// ---------------------------------------------------------------- PgResult

int PgResult::rows() const { return result_ ? PQntuples(result_.get()) : 0; }
int PgResult::columns() const { return result_ ? PQnfields(result_.get()) : 0; }
bool PgResult::IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
std::string PgResult::Text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}
int64_t PgResult::Int(int row, int column) const {
  int64_t v = 0;
  if (IsNull(row, column) || !absl::SimpleAtoi(Text(row, column), &v)) return 0;
  return v;
}
int64_t PgResult::affected() const {
  int64_t v = 0;
  if (result_ == nullptr || !absl::SimpleAtoi(PQcmdTuples(result_.get()), &v)) return 0;
  return v;
}

// ---------------------------------------------------------------- PgConnection

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::healthy() const { return !ConnectionLost(conn_); }

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view sql, const std::vector<PgParam>& params) {
  std::string text(sql);
  PGresult* raw;
  if (params.empty()) {
    raw = PQexec(conn_, text.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.has_value() ? p->c_str() : nullptr);
    raw = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                       nullptr, 0);
  }
  std::shared_ptr<pg_result> result(raw, PQclear);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return PgResult(std::move(result));
  }
  return PgError(raw, conn_, text);
}

// ---------------------------------------------------------------- PgDatabase

PgDatabase::PgDatabase(PgOptions options, std::string server)
    : options_(std::move(options)), server_(std::move(server)) {}

PgDatabase::~PgDatabase() = default;

absl::StatusOr<std::unique_ptr<PgDatabase>> PgDatabase::Open(PgOptions options) {
  std::string server = ServerOf(options.url);
  if (server.empty()) {
    return absl::InvalidArgumentError("db: a PostgreSQL store is named postgres://user@host:port/database");
  }
  if (options.pool_size < 1) return absl::InvalidArgumentError("db: the pool needs at least one connection");
  std::unique_ptr<PgDatabase> db(new PgDatabase(std::move(options), std::move(server)));
  auto first = db->Connect();
  if (!first.ok()) return first.status();
  db->Release(std::move(*first));
  std::lock_guard<std::mutex> lock(db->mu_);
  db->open_ = 1;
  return db;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgDatabase::Connect() const {
  const std::string connect_timeout = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(options_.connect_timeout)));
  const std::string server_options =
      absl::StrCat("-c statement_timeout=", absl::ToInt64Milliseconds(options_.statement_timeout));
  // The URL first: the keywords after it override what it says.
  const char* keys[] = {"dbname", "connect_timeout", "options", "application_name", nullptr};
  const char* values[] = {options_.url.c_str(), connect_timeout.c_str(), server_options.c_str(), "clustergov",
                          nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  auto owned = std::unique_ptr<PgConnection>(new PgConnection(conn));
  if (ConnectionLost(conn)) {
    // libpq's message names the host and port but never the password.
    std::string why = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    log::Error("store connection failed", {{"server", server_}, {"postgres", why}});
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL at ", server_, ": ",
                                               absl::StripTrailingAsciiWhitespace(why)));
  }
  return owned;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgDatabase::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options_.acquire_timeout);
  while (idle_.empty() && open_ >= options_.pool_size) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.pool_size) {
      return absl::UnavailableError(absl::StrCat("store busy: no free connection within ",
                                                 absl::FormatDuration(options_.acquire_timeout)));
    }
  }
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }
  ++open_;
  lock.unlock();
  auto conn = Connect();
  if (!conn.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
  }
  return conn;
}

void PgDatabase::Release(std::unique_ptr<PgConnection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn != nullptr && conn->healthy()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;  // dropped: the next Acquire opens a fresh one
  }
  cv_.notify_one();
}

absl::Status PgDatabase::Transaction(Isolation isolation, const std::function<absl::Status(PgConnection&)>& body) {
  thread_local std::mt19937 rng(std::random_device{}());
  int serialization_failures = 0;
  int dead_connections = 0;
  while (true) {
    auto conn = Acquire();
    if (!conn.ok()) return conn.status();
    PgConnection& c = **conn;
    auto begun = c.Exec(IsolationSql(isolation));
    if (!begun.ok()) {
      const bool dead = !c.healthy();
      Release(std::move(*conn));
      // A connection that died while idle (a server restart): nothing ran, try a fresh one.
      if (dead && dead_connections++ <= options_.pool_size) continue;
      return begun.status();
    }
    absl::Status s = body(c);
    if (s.ok()) {
      auto committed = c.Exec("COMMIT");
      s = committed.status();
    } else if (c.healthy()) {
      c.Exec("ROLLBACK").IgnoreError();
    }
    Release(std::move(*conn));
    if (absl::IsAborted(s) && serialization_failures < options_.max_serialization_retries) {
      ++serialization_failures;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++retries_;
      }
      // Jittered, growing back-off: 1-2 ms, 2-4 ms, 4-8 ms, ...
      const int base = 1 << std::min(serialization_failures - 1, 8);
      std::this_thread::sleep_for(std::chrono::microseconds(
          std::uniform_int_distribution<int>(base * 1000, base * 2000)(rng)));
      continue;
    }
    return s;
  }
}

int64_t PgDatabase::serialization_retries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return retries_;
}

absl::Status PgDatabase::Migrate(absl::string_view component, const std::vector<Migration>& migrations) {
  const std::string name(component);
  const int known = migrations.empty() ? 0 : migrations.back().version;
  absl::Status s = Transaction(Isolation::kReadCommitted, [&](PgConnection& c) -> absl::Status {
    // Replicas starting together queue here; the first applies, the others find it applied.
    CG_RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1)", {absl::StrCat(kMigrationLock)}).status());
    CG_RETURN_IF_ERROR(c.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (component text NOT NULL,"
                              " version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                              " PRIMARY KEY (component, version))")
                           .status());
    CG_ASSIGN_OR_RETURN(auto applied, c.Exec("SELECT coalesce(max(version), 0) FROM schema_migrations"
                                             " WHERE component = $1",
                                             {name}));
    const int64_t at = applied.Int(0, 0);
    if (at > known) {
      return absl::FailedPreconditionError(absl::StrCat("the ", name, " schema in ", server_, " is at version ", at,
                                                        ", newer than this binary's ", known,
                                                        ": run a binary at least as new"));
    }
    for (const auto& m : migrations) {
      if (m.version <= at) continue;
      CG_RETURN_IF_ERROR(c.Exec(m.sql).status());
      CG_RETURN_IF_ERROR(c.Exec("INSERT INTO schema_migrations (component, version) VALUES ($1, $2)",
                                {name, absl::StrCat(m.version)})
                             .status());
    }
    return absl::OkStatus();
  });
  if (absl::IsFailedPrecondition(s) || absl::IsUnavailable(s)) return s;
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("migration ", name, " failed"));
  return s;
}

}  // namespace clustergov::store

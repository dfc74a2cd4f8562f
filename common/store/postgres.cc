#include "common/store/postgres.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
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
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

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

// libpq's connection keywords for `options`: the URL first (the keywords after it override what
// it says).
class ConnectParams {
 public:
  ConnectParams(const PgOptions& options, const char* application_name, bool keepalives = false) {
    pairs_ = {{"dbname", options.url},
              {"connect_timeout", absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(options.connect_timeout)))},
              {"options", absl::StrCat("-c statement_timeout=", absl::ToInt64Milliseconds(options.statement_timeout))},
              {"application_name", application_name}};
    if (keepalives) {
      // A server gone without a word (a dropped network) is noticed within about a minute.
      pairs_.insert(pairs_.end(),
                    {{"keepalives", "1"}, {"keepalives_idle", "30"}, {"keepalives_interval", "10"}, {"keepalives_count", "3"}});
    }
    for (const auto& [key, value] : pairs_) {
      keys_.push_back(key.c_str());
      values_.push_back(value.c_str());
    }
    keys_.push_back(nullptr);
    values_.push_back(nullptr);
  }
  ConnectParams(const ConnectParams&) = delete;
  ConnectParams& operator=(const ConnectParams&) = delete;

  const char* const* keys() const { return keys_.data(); }
  const char* const* values() const { return values_.data(); }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
  std::vector<const char*> keys_, values_;  // into pairs_, null-terminated
};

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
  const std::string message(absl::StripTrailingAsciiWhitespace(detail ? detail : ""));
  if (sqlstate == "40001" || sqlstate == "40P01") {
    // Expected under concurrent writers: the transaction is retried (an error only if it keeps failing).
    log::Info("store conflict", {{"context", std::string(context.substr(0, 200))}, {"sqlstate", sqlstate}});
  } else {
    log::Error("store error",
               {{"context", std::string(context.substr(0, 200))}, {"sqlstate", sqlstate}, {"postgres", message}});
  }
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
double PgResult::Double(int row, int column) const {
  double v = 0;
  if (IsNull(row, column) || !absl::SimpleAtod(Text(row, column), &v)) return 0;
  return v;
}

std::string PgResult::Bytes(int row, int column) const {
  constexpr unsigned kByteaOid = 17;
  if (PQftype(result_.get(), column) != kByteaOid) return Text(row, column);
  const char* text = PQgetvalue(result_.get(), row, column);
  const size_t length = static_cast<size_t>(PQgetlength(result_.get(), row, column));
  if (length < 2 || text[0] != '\\' || text[1] != 'x') return std::string();
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out((length - 2) / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(nibble(text[2 + 2 * i]) << 4 | nibble(text[3 + 2 * i]));
  }
  return out;
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

absl::StatusOr<PgResult> PgConnection::ExecCached(absl::string_view sql, const std::vector<PgParam>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.has_value() ? p->c_str() : nullptr);
  const int n = static_cast<int>(params.size());
  std::string key(sql);
  auto it = prepared_.find(key);
  PGresult* raw = nullptr;
  if (it == prepared_.end() && prepared_.size() >= kMaxPrepared) {
    const std::string text = PgNumberParameters(sql);
    raw = PQexecParams(conn_, text.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
  } else {
    if (it == prepared_.end()) {
      std::string name = absl::StrCat("cg", prepared_.size() + 1);
      const std::string text = PgNumberParameters(sql);
      std::shared_ptr<pg_result> made(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr), PQclear);
      if (made == nullptr || PQresultStatus(made.get()) != PGRES_COMMAND_OK) return PgError(made.get(), conn_, text);
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    raw = PQexecPrepared(conn_, it->second.c_str(), n, values.data(), nullptr, nullptr, 0);
  }
  std::shared_ptr<pg_result> result(raw, PQclear);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return PgResult(std::move(result));
  }
  return PgError(raw, conn_, sql);
}

bool IsPostgresUrl(absl::string_view db) {
  return absl::StartsWith(db, "postgres://") || absl::StartsWith(db, "postgresql://");
}

std::string PgNumberParameters(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  char quote = 0;       // inside '...' or "..."
  bool comment = false;  // inside -- ... end of line
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (comment) {
      if (c == '\n') comment = false;
    } else if (quote != 0) {
      if (c == quote) quote = 0;  // a doubled quote closes and reopens: same result
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      comment = true;
    } else if (c == '?') {
      // ?NNN names its parameter (SQLite's numbered form); a bare ? is the next one.
      size_t digits = i + 1;
      while (digits < sql.size() && sql[digits] >= '0' && sql[digits] <= '9') ++digits;
      if (digits > i + 1) {
        absl::StrAppend(&out, "$", sql.substr(i + 1, digits - i - 1));
        i = digits - 1;
      } else {
        absl::StrAppend(&out, "$", ++next);
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string PgByteaLiteral(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 + bytes.size() * 2);
  out.append("\\x");
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

// ---------------------------------------------------------------- PgCursor

void PgCursor::Set(int index, PgParam value) {
  if (index < 1) return;
  if (params.size() < static_cast<size_t>(index)) params.resize(index);
  params[index - 1] = std::move(value);
}

absl::StatusOr<bool> PgCursor::Step() {
  if (!executed) {
    auto r = conn.ExecCached(sql, params);
    if (!r.ok()) return r.status();
    result = std::move(*r);
    executed = true;
    row = -1;
    *changes = result.affected();
  }
  ++row;
  return row < result.rows();
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
  if (db->options_.metrics != nullptr) {
    // The same families as the SQLite store's, so dashboards read either.
    auto& seconds = prometheus::BuildHistogram()
                        .Name("clustergov_store_operation_seconds")
                        .Help("Time spent in store operations, including waiting for a connection or a commit.")
                        .Register(*db->options_.metrics);
    const prometheus::Histogram::BucketBoundaries buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                          0.01,   0.025,   0.05,   0.1,   0.25,   1};
    db->read_seconds_ = &seconds.Add({{"op", "read"}}, buckets);
    db->write_seconds_ = &seconds.Add({{"op", "write"}}, buckets);
    db->retries_total_ = &prometheus::BuildCounter()
                              .Name("clustergov_store_serialization_retries_total")
                              .Help("Transactions retried after a serialization failure or deadlock.")
                              .Register(*db->options_.metrics)
                              .Add({});
    db->notifications_total_ = &prometheus::BuildCounter()
                                    .Name("clustergov_store_notifications_received_total")
                                    .Help("Change notifications heard by the store's listeners.")
                                    .Register(*db->options_.metrics);
    db->resyncs_total_ = &prometheus::BuildCounter()
                              .Name("clustergov_store_listener_resyncs_total")
                              .Help("Times a store listener reconnected after notifications may have been missed.")
                              .Register(*db->options_.metrics);
  }
  auto first = db->Connect();
  if (!first.ok()) return first.status();
  db->Release(std::move(*first));
  std::lock_guard<std::mutex> lock(db->mu_);
  db->open_ = 1;
  return db;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgDatabase::Connect() const {
  const ConnectParams params(options_, "clustergov");
  pg_conn* conn = PQconnectdbParams(params.keys(), params.values(), /*expand_dbname=*/1);
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

absl::Status PgDatabase::Transaction(Isolation isolation, const std::function<absl::Status(PgConnection&)>& body,
                                     const std::string& serialize_on) {
  thread_local std::mt19937 rng(std::random_device{}());
  int serialization_failures = 0;
  int dead_connections = 0;
  while (true) {
    auto conn = Acquire();
    if (!conn.ok()) return conn.status();
    PgConnection& c = **conn;
    if (!serialize_on.empty()) {
      // Taken before BEGIN, so this transaction's snapshot includes the previous holder's commit.
      auto locked = c.Exec("SELECT pg_advisory_lock(hashtext($1))", {serialize_on});
      if (!locked.ok()) {
        Release(std::move(*conn));
        return locked.status();
      }
    }
    auto unlock = [&] {
      if (!serialize_on.empty() && c.healthy()) {
        c.Exec("SELECT pg_advisory_unlock(hashtext($1))", {serialize_on}).IgnoreError();
      }
    };
    auto begun = c.Exec(IsolationSql(isolation));
    if (!begun.ok()) {
      const bool dead = !c.healthy();
      unlock();
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
    unlock();
    Release(std::move(*conn));
    if (absl::IsAborted(s) && serialization_failures < options_.max_serialization_retries) {
      ++serialization_failures;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++retries_;
      }
      if (retries_total_ != nullptr) retries_total_->Increment();
      // Jittered, growing back-off: 1-2 ms, 2-4 ms, 4-8 ms, ... up to 32-64 ms.
      const int base = 1 << std::min(serialization_failures - 1, 5);
      std::this_thread::sleep_for(std::chrono::microseconds(
          std::uniform_int_distribution<int>(base * 1000, base * 2000)(rng)));
      continue;
    }
    return s;
  }
}

absl::Status PgDatabase::Read(const std::function<absl::Status(Connection&)>& fn) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = Transaction(Isolation::kRepeatableRead, [&](PgConnection& pc) {
    Connection c(pc);
    return fn(c);
  });
  if (read_seconds_ != nullptr) {
    read_seconds_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return s;
}

absl::Status PgDatabase::Write(const std::function<absl::Status(Connection&)>& fn, const WriteOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = Transaction(
      Isolation::kSerializable,
      [&](PgConnection& pc) {
        Connection c(pc);
        return fn(c);
      },
      options.serialize_on);
  if (write_seconds_ != nullptr) {
    write_seconds_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return s;
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

// ---------------------------------------------------------------- Listen

namespace {

constexpr absl::Duration kListenFirstBackoff = absl::Milliseconds(50);
constexpr absl::Duration kListenMaxBackoff = absl::Seconds(5);

// One subscription (postgres.h, Listen): its own connection and the thread that follows it.
class PgListener final : public Subscription {
 public:
  PgListener(const PgOptions& options, std::string server, std::string channel,
             std::function<void(const std::string&)> on_notify, std::function<void()> on_resync,
             prometheus::Counter* received, prometheus::Counter* resyncs)
      : options_(options),
        server_(std::move(server)),
        channel_(std::move(channel)),
        on_notify_(std::move(on_notify)),
        on_resync_(std::move(on_resync)),
        received_(received),
        resyncs_(resyncs),
        wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  ~PgListener() override {
    const uint64_t one = 1;
    if (wake_ >= 0 && write(wake_, &one, sizeof(one)) != sizeof(one)) log::Error("store listener: cannot wake");
    if (thread_.joinable()) thread_.join();
    if (conn_ != nullptr) PQfinish(conn_);
    if (wake_ >= 0) close(wake_);
  }

  // Connects and listens, then follows on a thread of its own.
  absl::Status Start() {
    if (wake_ < 0) return absl::InternalError("store listener: no eventfd");
    CG_RETURN_IF_ERROR(Connect());
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

 private:
  enum class Event { kReady, kWoken, kTimedOut };

  // Waits until `fd` (none when negative) has `events` (or an error), the subscription is being
  // destroyed, or `deadline`.
  Event Wait(int fd, short events, absl::Time deadline) {
    pollfd fds[2] = {{wake_, POLLIN, 0}, {fd, events, 0}};
    while (true) {
      int timeout = -1;
      if (deadline != absl::InfiniteFuture()) {
        timeout = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()) + 1));
      }
      const int n = poll(fds, 2, timeout);
      if (n < 0 && errno == EINTR) continue;
      if (fds[0].revents != 0) return Event::kWoken;
      return n == 0 ? Event::kTimedOut : Event::kReady;  // a poll error: libpq's next call reports it
    }
  }

  absl::Status Failed(pg_conn* conn, absl::string_view what) {
    const std::string why(absl::StripTrailingAsciiWhitespace(conn != nullptr ? PQerrorMessage(conn) : "out of memory"));
    log::Warn("store listener failed", {{"server", server_}, {"channel", channel_}, {"step", std::string(what)},
                                        {"postgres", why}});
    return absl::UnavailableError(absl::StrCat("cannot listen on PostgreSQL at ", server_, ": ", why));
  }

  // A new connection into conn_ that has run LISTEN, without blocking past the connect timeout
  // or the subscription's end (then CANCELLED).
  absl::Status Connect() {
    const absl::Time deadline = absl::Now() + options_.connect_timeout;
    const ConnectParams params(options_, "clustergov-listener", /*keepalives=*/true);
    std::unique_ptr<pg_conn, void (*)(pg_conn*)> owned(
        PQconnectStartParams(params.keys(), params.values(), /*expand_dbname=*/1), PQfinish);
    pg_conn* conn = owned.get();
    if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return Failed(conn, "connect");
    // The server's words to an idle session (its termination, say) go to the log, not stderr.
    PQsetNoticeProcessor(
        conn,
        [](void*, const char* message) {
          log::Info("store listener notice", {{"postgres", std::string(absl::StripTrailingAsciiWhitespace(message))}});
        },
        nullptr);
    // Reads and writes when libpq asks, until it is done (PQconnectPoll's protocol).
    auto await = [&](short events) -> absl::Status {
      switch (Wait(PQsocket(conn), events, deadline)) {
        case Event::kWoken: return absl::CancelledError("store listener stopped");
        case Event::kTimedOut: return absl::UnavailableError(absl::StrCat("listening on ", server_, " timed out"));
        case Event::kReady: break;
      }
      return absl::OkStatus();
    };
    for (PostgresPollingStatusType polled = PGRES_POLLING_WRITING; polled != PGRES_POLLING_OK;) {
      if (polled == PGRES_POLLING_FAILED) return Failed(conn, "connect");
      CG_RETURN_IF_ERROR(await(polled == PGRES_POLLING_READING ? POLLIN : POLLOUT));
      polled = PQconnectPoll(conn);
    }
    char* quoted = PQescapeIdentifier(conn, channel_.data(), channel_.size());
    if (quoted == nullptr) return Failed(conn, "channel");
    const std::string listen = absl::StrCat("LISTEN ", quoted);
    PQfreemem(quoted);
    if (PQsendQuery(conn, listen.c_str()) == 0) return Failed(conn, "listen");
    absl::Status listened;
    while (true) {
      while (PQisBusy(conn) != 0) {
        CG_RETURN_IF_ERROR(await(POLLIN));
        if (PQconsumeInput(conn) == 0) return Failed(conn, "listen");
      }
      PGresult* result = PQgetResult(conn);
      if (result == nullptr) break;
      if (PQresultStatus(result) != PGRES_COMMAND_OK && listened.ok()) listened = PgError(result, conn, listen);
      PQclear(result);
    }
    CG_RETURN_IF_ERROR(listened);
    conn_ = owned.release();
    return absl::OkStatus();
  }

  void Run() {
    std::mt19937 rng(std::random_device{}());
    absl::Duration backoff = kListenFirstBackoff;
    while (true) {
      if (conn_ == nullptr) {
        absl::Status s = Connect();
        if (absl::IsCancelled(s)) return;
        if (!s.ok()) {
          // Jittered: half to all of the back-off.
          const absl::Duration pause = backoff * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
          if (Wait(-1, 0, absl::Now() + pause) == Event::kWoken) return;
          backoff = std::min(backoff * 2, kListenMaxBackoff);
          continue;
        }
        backoff = kListenFirstBackoff;
        log::Info("store listener reconnected", {{"server", server_}, {"channel", channel_}});
        if (resyncs_ != nullptr) resyncs_->Increment();
        on_resync_();
      }
      if (Wait(PQsocket(conn_), POLLIN, absl::InfiniteFuture()) == Event::kWoken) return;
      const bool read = PQconsumeInput(conn_) != 0;
      // What arrived before a drop was committed: delivered all the same.
      while (PGnotify* n = PQnotifies(conn_)) {
        const std::string payload = n->extra;
        PQfreemem(n);
        if (received_ != nullptr) received_->Increment();
        on_notify_(payload);
      }
      if (!read || PQstatus(conn_) != CONNECTION_OK) {
        log::Warn("store listener lost its connection",
                  {{"server", server_}, {"channel", channel_},
                   {"postgres", std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_)))}});
        PQfinish(conn_);
        conn_ = nullptr;
      }
    }
  }

  const PgOptions options_;
  const std::string server_;
  const std::string channel_;
  const std::function<void(const std::string&)> on_notify_;
  const std::function<void()> on_resync_;
  prometheus::Counter* const received_;
  prometheus::Counter* const resyncs_;
  const int wake_;              // readable once the subscription is being destroyed
  pg_conn* conn_ = nullptr;     // the listening connection (the thread's, once started)
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Subscription>> PgDatabase::Listen(absl::string_view channel,
                                                                 std::function<void(const std::string&)> on_notify,
                                                                 std::function<void()> on_resync) {
  const std::string name(channel);
  prometheus::Counter* received = notifications_total_ != nullptr ? &notifications_total_->Add({{"channel", name}}) : nullptr;
  prometheus::Counter* resyncs = resyncs_total_ != nullptr ? &resyncs_total_->Add({{"channel", name}}) : nullptr;
  auto listener = std::make_unique<PgListener>(options_, server_, name, std::move(on_notify), std::move(on_resync),
                                               received, resyncs);
  CG_RETURN_IF_ERROR(listener->Start());
  return std::unique_ptr<Subscription>(std::move(listener));
}

}  // namespace clustergov::store

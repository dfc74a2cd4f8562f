#include "common/store/sql.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/store/postgres.h"
#include "common/store/sqlite.h"

namespace clustergov::store {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// ---------------------------------------------------------------- Statement

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}

Statement::Statement(std::unique_ptr<PgCursor> pg) : pg_(std::move(pg)) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(other.stmt_),
      owned_(other.owned_),
      pg_(std::move(other.pg_)),
      bind_error_(std::move(other.bind_error_)) {
  other.stmt_ = nullptr;
}

void Statement::Fail(absl::Status s) {
  if (bind_error_.ok()) bind_error_ = std::move(s);
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  if (pg_ != nullptr) {
    pg_->Set(index, absl::StrCat(value));
    return *this;
  }
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  if (pg_ != nullptr) {
    pg_->Set(index, std::string(text));
    return *this;
  }
  // A default-constructed view has data() == nullptr, which SQLite would bind as NULL: bind the
  // empty string it stands for instead.
  int rc = sqlite3_bind_text64(stmt_, index, text.data() != nullptr ? text.data() : "", text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  if (pg_ != nullptr) {
    pg_->Set(index, absl::StrFormat("%.17g", value));
    return *this;
  }
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  if (pg_ != nullptr) {
    pg_->Set(index, PgByteaLiteral(bytes));
    return *this;
  }
  // As for text: an empty view with data() == nullptr is an empty blob, not NULL.
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data() != nullptr ? bytes.data() : "", bytes.size(),
                               SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (pg_ != nullptr) {
    pg_->Set(index, std::nullopt);
    return *this;
  }
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::BindAll(int first, const std::vector<std::variant<int64_t, std::string>>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    int index = first + static_cast<int>(i);
    if (const auto* n = std::get_if<int64_t>(&values[i])) {
      Bind(index, *n);
    } else {
      Bind(index, absl::string_view(std::get<std::string>(values[i])));
    }
  }
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  if (pg_ != nullptr) return pg_->Step();
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

int64_t Statement::Int(int column) const {
  if (pg_ != nullptr) return pg_->result.Int(pg_->row, column);
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::Text(int column) const {
  if (pg_ != nullptr) return pg_->result.Text(pg_->row, column);
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

std::string Statement::Blob(int column) const {
  if (pg_ != nullptr) return pg_->result.Bytes(pg_->row, column);
  const void* blob = sqlite3_column_blob(stmt_, column);
  if (blob == nullptr) return {};
  return std::string(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
}

double Statement::Double(int column) const {
  if (pg_ != nullptr) return pg_->result.Double(pg_->row, column);
  return sqlite3_column_double(stmt_, column);
}

bool Statement::IsNull(int column) const {
  if (pg_ != nullptr) return pg_->result.IsNull(pg_->row, column);
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// ---------------------------------------------------------------- Connection

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::StatusOr<Statement> Connection::Prepare(absl::string_view sql) {
  if (pg_ != nullptr) return Statement(std::make_unique<PgCursor>(*pg_, &pg_changes_, std::string(sql)));
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end()) return Statement(db_, it->second, /*owned=*/false);
  bool cache = cache_.size() < kMaxCachedStatements;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), cache ? SQLITE_PREPARE_PERSISTENT : 0,
                              &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, key);
  if (!cache) return Statement(db_, stmt, /*owned=*/true);
  cache_.emplace(std::move(key), stmt);
  return Statement(db_, stmt, /*owned=*/false);
}

absl::Status Connection::Exec(absl::string_view sql) {
  if (pg_ != nullptr) return pg_->Exec(sql).status();
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (error != nullptr) sqlite3_free(error);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, text.substr(0, 200));
  return absl::OkStatus();
}

int64_t Connection::Changes() const { return pg_ != nullptr ? pg_changes_ : sqlite3_changes64(db_); }

absl::Status Connection::Notify(absl::string_view channel, absl::string_view payload) {
  if (pg_ == nullptr) return absl::OkStatus();
  // Delivered by PostgreSQL at COMMIT, in commit order; dropped with a rollback.
  return pg_->ExecCached("SELECT pg_notify(?, ?)", {std::string(channel), std::string(payload)}).status();
}

}  // namespace clustergov::store

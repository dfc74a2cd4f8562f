// Fuzzes the AIP-160 filter compiler (common/list/filter.h). Every input either compiles or is
// refused with INVALID_ARGUMENT; what compiles is SQL that SQLite prepares, with exactly one
// argument per '?', and that runs.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/list/filter.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using clustergov::FilterField;

// One field of every type, as the services declare theirs.
const std::vector<FilterField>& Fields() {
  static const auto* fields = new std::vector<FilterField>{
      {"industry", FilterField::Type::kString, "c.industry", {}},
      {"display_name_zh", FilterField::Type::kString, "c.display_name_zh", {}},
      {"target_year", FilterField::Type::kInt, "c.target_year", {}},
      {"tier", FilterField::Type::kEnum, "c.tier", {{"TIER_NONE", 1}, {"TIER_REGION", 2}, {"TIER_NATIONAL", 3}}},
      {"active", FilterField::Type::kBool, "c.active", {}},
      {"actor.subject", FilterField::Type::kString, "c.actor_subject", {}},
      {"regions", FilterField::Type::kRepeatedString,
       "EXISTS (SELECT 1 FROM cluster_regions r WHERE r.cluster_id = c.id AND r.region = ?)", {}},
  };
  return *fields;
}

sqlite3* Database() {
  static sqlite3* db = [] {
    sqlite3* d = nullptr;
    FUZZ_CHECK(sqlite3_open(":memory:", &d) == SQLITE_OK, "sqlite3_open");
    const char* schema =
        "CREATE TABLE clusters (id TEXT PRIMARY KEY, industry TEXT, display_name_zh TEXT, target_year INTEGER,"
        " tier INTEGER, active INTEGER, actor_subject TEXT);"
        "CREATE TABLE cluster_regions (cluster_id TEXT, region TEXT);"
        "INSERT INTO clusters VALUES ('a', '乳业', '呼和浩特乳业', 2025, 2, 1, 'x');"
        "INSERT INTO cluster_regions VALUES ('a', '150100');";
    FUZZ_CHECK(sqlite3_exec(d, schema, nullptr, nullptr, nullptr) == SQLITE_OK, sqlite3_errmsg(d));
    return d;
  }();
  return db;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input = clustergov::fuzz::AsView(data, size);
  auto compiled = clustergov::CompileFilter(std::string_view(input.data(), input.size()), Fields());
  if (!compiled.ok()) {
    clustergov::fuzz::CheckRefusal(compiled.status(), {absl::StatusCode::kInvalidArgument}, input);
    return 0;
  }
  std::string sql = "SELECT count(*) FROM clusters c WHERE " + compiled->where;
  sqlite3* db = Database();
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  FUZZ_CHECK(rc == SQLITE_OK, sql + " : " + sqlite3_errmsg(db));
  FUZZ_CHECK(static_cast<size_t>(sqlite3_bind_parameter_count(stmt)) == compiled->args.size(), sql);
  int index = 1;
  for (const auto& arg : compiled->args) {
    if (const auto* i = std::get_if<int64_t>(&arg)) {
      sqlite3_bind_int64(stmt, index++, *i);
    } else {
      const std::string& s = std::get<std::string>(arg);
      sqlite3_bind_text(stmt, index++, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  rc = sqlite3_step(stmt);
  FUZZ_CHECK(rc == SQLITE_ROW, sql + " : " + sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  return 0;
}

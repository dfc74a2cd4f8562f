#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/list/filter.h"
#include "common/list/page_token.h"
#include "common/list/paging.h"
#include "common/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clustergov {
namespace {

using ::clustergov::common::v1::PageTokenPayload;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kRegionsSql[] =
    "EXISTS (SELECT 1 FROM cluster_regions r WHERE r.cluster_id = c.id AND r.region = ?)";

std::vector<FilterField> ClusterFields() {
  return {
      {"name", FilterField::Type::kString, "c.name", {}},
      {"tier",
       FilterField::Type::kEnum,
       "c.tier",
       {{"TIER_NONE", 1}, {"TIER_REGION", 2}, {"TIER_NATIONAL", 3}, {"TIER_WORLD_CLASS", 4}}},
      {"employees", FilterField::Type::kInt, "c.employees", {}},
      {"active", FilterField::Type::kBool, "c.active", {}},
      {"regions", FilterField::Type::kRepeatedString, kRegionsSql, {}},
      {"actor.subject", FilterField::Type::kString, "c.owner", {}},
  };
}

std::vector<FilterField> AbcFields() {
  return {
      {"a", FilterField::Type::kInt, "t.a", {}},
      {"b", FilterField::Type::kInt, "t.b", {}},
      {"c", FilterField::Type::kInt, "t.c", {}},
  };
}

SqlFilter MustCompile(std::string_view filter, const std::vector<FilterField>& fields) {
  absl::StatusOr<SqlFilter> compiled = CompileFilter(filter, fields);
  EXPECT_TRUE(compiled.ok()) << "filter: " << filter << "\nstatus: " << compiled.status();
  return compiled.ok() ? *std::move(compiled) : SqlFilter{};
}

// Expects INVALID_ARGUMENT with exactly one field violation on "filter" whose description
// contains `snippet`.
void ExpectFilterError(std::string_view filter, std::string_view snippet,
                       const std::vector<FilterField>& fields = ClusterFields()) {
  SCOPED_TRACE(absl::StrCat("filter: ", absl::string_view(filter.data(), filter.size())));
  absl::StatusOr<SqlFilter> compiled = CompileFilter(filter, fields);
  ASSERT_FALSE(compiled.ok()) << "unexpectedly compiled to: " << compiled->where;
  EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << compiled.status();
  const std::vector<FieldViolation> violations = GetFieldViolations(compiled.status());
  ASSERT_EQ(violations.size(), 1u) << compiled.status();
  EXPECT_EQ(violations[0].field, "filter");
  EXPECT_THAT(violations[0].description, HasSubstr(std::string(snippet)));
}

void ExpectPageTokenError(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::vector<FieldViolation> violations = GetFieldViolations(status);
  ASSERT_EQ(violations.size(), 1u) << status;
  EXPECT_EQ(violations[0].field, "page_token");
}

// ---------------------------------------------------------------------------------------------
// Compilation to SQL text and arguments.

TEST(CompileFilterTest, EmptyAndWhitespaceOnly) {
  for (std::string_view filter : {"", " ", "  \t\r\n  "}) {
    SqlFilter f = MustCompile(filter, ClusterFields());
    EXPECT_EQ(f.where, "1 = 1");
    EXPECT_THAT(f.args, IsEmpty());
  }
}

TEST(CompileFilterTest, StringComparators) {
  SqlFilter eq = MustCompile("name = hohhot", ClusterFields());
  EXPECT_EQ(eq.where, "(c.name = ?)");
  EXPECT_THAT(eq.args, ElementsAre(SqlValue(std::string("hohhot"))));

  SqlFilter ne = MustCompile("name != hohhot", ClusterFields());
  EXPECT_EQ(ne.where, "(c.name != ?)");
  EXPECT_THAT(ne.args, ElementsAre(SqlValue(std::string("hohhot"))));

  SqlFilter has = MustCompile("name : dairy", ClusterFields());
  EXPECT_EQ(has.where, "(instr(c.name, ?) > 0)");
  EXPECT_THAT(has.args, ElementsAre(SqlValue(std::string("dairy"))));

  SqlFilter dotted = MustCompile("actor.subject=alice", ClusterFields());
  EXPECT_EQ(dotted.where, "(c.owner = ?)");
  EXPECT_THAT(dotted.args, ElementsAre(SqlValue(std::string("alice"))));
}

TEST(CompileFilterTest, IntComparators) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"employees = 5", "(c.employees = ?)"},   {"employees != 5", "(c.employees != ?)"},
      {"employees : 5", "(c.employees = ?)"},   {"employees < 5", "(c.employees < ?)"},
      {"employees <= 5", "(c.employees <= ?)"}, {"employees > 5", "(c.employees > ?)"},
      {"employees >= 5", "(c.employees >= ?)"}, {"employees>=5", "(c.employees >= ?)"},
  };
  for (const auto& [filter, where] : cases) {
    SqlFilter f = MustCompile(filter, ClusterFields());
    EXPECT_EQ(f.where, where) << filter;
    EXPECT_THAT(f.args, ElementsAre(SqlValue(int64_t{5}))) << filter;
  }
  EXPECT_THAT(MustCompile("employees > -12", ClusterFields()).args,
              ElementsAre(SqlValue(int64_t{-12})));
  EXPECT_THAT(MustCompile("employees = 9223372036854775807", ClusterFields()).args,
              ElementsAre(SqlValue(std::numeric_limits<int64_t>::max())));
  EXPECT_THAT(MustCompile("employees = -9223372036854775808", ClusterFields()).args,
              ElementsAre(SqlValue(std::numeric_limits<int64_t>::min())));
  EXPECT_THAT(MustCompile("employees = \"42\"", ClusterFields()).args,
              ElementsAre(SqlValue(int64_t{42})));
}

TEST(CompileFilterTest, EnumAndBool) {
  SqlFilter tier = MustCompile("tier = TIER_REGION", ClusterFields());
  EXPECT_EQ(tier.where, "(c.tier = ?)");
  EXPECT_THAT(tier.args, ElementsAre(SqlValue(int64_t{2})));

  SqlFilter tier_ne = MustCompile("tier!=\"TIER_WORLD_CLASS\"", ClusterFields());
  EXPECT_EQ(tier_ne.where, "(c.tier != ?)");
  EXPECT_THAT(tier_ne.args, ElementsAre(SqlValue(int64_t{4})));

  EXPECT_EQ(MustCompile("tier : TIER_NONE", ClusterFields()).where, "(c.tier = ?)");

  SqlFilter active = MustCompile("active = true", ClusterFields());
  EXPECT_EQ(active.where, "(c.active = ?)");
  EXPECT_THAT(active.args, ElementsAre(SqlValue(int64_t{1})));

  SqlFilter inactive = MustCompile("active != false", ClusterFields());
  EXPECT_EQ(inactive.where, "(c.active != ?)");
  EXPECT_THAT(inactive.args, ElementsAre(SqlValue(int64_t{0})));
}

TEST(CompileFilterTest, RepeatedString) {
  const std::string contains = absl::StrCat("(", kRegionsSql, ")");
  for (std::string_view filter : {"regions : 150100", "regions = 150100"}) {
    SqlFilter f = MustCompile(filter, ClusterFields());
    EXPECT_EQ(f.where, contains) << filter;
    EXPECT_THAT(f.args, ElementsAre(SqlValue(std::string("150100"))));
  }
  SqlFilter ne = MustCompile("regions != 150100", ClusterFields());
  EXPECT_EQ(ne.where, absl::StrCat("(NOT ", contains, ")"));
  EXPECT_THAT(ne.args, ElementsAre(SqlValue(std::string("150100"))));
}

TEST(CompileFilterTest, OrBindsTighterThanAnd) {
  SqlFilter f = MustCompile("a = 1 AND b = 2 OR c = 3", AbcFields());
  EXPECT_EQ(f.where, "((t.a = ?) AND ((t.b = ?) OR (t.c = ?)))");
  EXPECT_THAT(f.args,
              ElementsAre(SqlValue(int64_t{1}), SqlValue(int64_t{2}), SqlValue(int64_t{3})));

  SqlFilter g = MustCompile("a = 1 OR b = 2 AND c = 3", AbcFields());
  EXPECT_EQ(g.where, "(((t.a = ?) OR (t.b = ?)) AND (t.c = ?))");

  SqlFilter chain = MustCompile("a = 1 OR b = 2 OR c = 3 AND a = 4 AND b = 5", AbcFields());
  EXPECT_EQ(chain.where, "(((t.a = ?) OR (t.b = ?) OR (t.c = ?)) AND (t.a = ?) AND (t.b = ?))");
  EXPECT_THAT(chain.args,
              ElementsAre(SqlValue(int64_t{1}), SqlValue(int64_t{2}), SqlValue(int64_t{3}),
                          SqlValue(int64_t{4}), SqlValue(int64_t{5})));
}

TEST(CompileFilterTest, Parentheses) {
  SqlFilter f = MustCompile("(a = 1 AND b = 2) OR c = 3", AbcFields());
  EXPECT_EQ(f.where, "(((t.a = ?) AND (t.b = ?)) OR (t.c = ?))");
  EXPECT_THAT(f.args,
              ElementsAre(SqlValue(int64_t{1}), SqlValue(int64_t{2}), SqlValue(int64_t{3})));

  EXPECT_EQ(MustCompile("((a=1))", AbcFields()).where, "(t.a = ?)");
  EXPECT_EQ(MustCompile(" ( a = 1 ) AND(b = 2)", AbcFields()).where,
            "((t.a = ?) AND (t.b = ?))");
}

TEST(CompileFilterTest, NotAndMinus) {
  EXPECT_EQ(MustCompile("NOT a = 1", AbcFields()).where, "(NOT (t.a = ?))");
  EXPECT_EQ(MustCompile("-a = 1", AbcFields()).where, "(NOT (t.a = ?))");
  EXPECT_EQ(MustCompile("NOT(a = 1 OR b = 2)", AbcFields()).where,
            "(NOT ((t.a = ?) OR (t.b = ?)))");
  EXPECT_EQ(MustCompile("-(a = 1) AND NOT b = 2", AbcFields()).where,
            "((NOT (t.a = ?)) AND (NOT (t.b = ?)))");
  // A leading '-' on a value is part of the value, not a negation.
  SqlFilter negative = MustCompile("a = -1", AbcFields());
  EXPECT_EQ(negative.where, "(t.a = ?)");
  EXPECT_THAT(negative.args, ElementsAre(SqlValue(int64_t{-1})));
}

TEST(CompileFilterTest, KeywordsAreCaseSensitiveWholeWords) {
  const std::vector<FilterField> fields = {
      {"NOTE", FilterField::Type::kString, "t.note", {}},
      {"ORG", FilterField::Type::kString, "t.org", {}},
      {"ANDROID", FilterField::Type::kString, "t.android", {}},
  };
  EXPECT_EQ(MustCompile("NOTE = x OR ORG = y AND ANDROID = z", fields).where,
            "(((t.note = ?) OR (t.org = ?)) AND (t.android = ?))");
  // Lowercase "and" is not a keyword, so this is two adjacent terms.
  ExpectFilterError("NOTE = x and ORG = y", "explicit AND", fields);
}

TEST(CompileFilterTest, QuotedStringsAndBareWords) {
  SqlFilter quoted = MustCompile(R"(name = "say \"hi\" \\ (now) AND OR")", ClusterFields());
  EXPECT_EQ(quoted.where, "(c.name = ?)");
  EXPECT_THAT(quoted.args, ElementsAre(SqlValue(std::string(R"(say "hi" \ (now) AND OR)"))));

  SqlFilter empty = MustCompile(R"(name = "")", ClusterFields());
  EXPECT_THAT(empty.args, ElementsAre(SqlValue(std::string())));

  SqlFilter bare = MustCompile("name = a-b_c.d/e*f9", ClusterFields());
  EXPECT_THAT(bare.args, ElementsAre(SqlValue(std::string("a-b_c.d/e*f9"))));

  SqlFilter utf8 = MustCompile("name : 呼和浩特", ClusterFields());
  EXPECT_THAT(utf8.args, ElementsAre(SqlValue(std::string("呼和浩特"))));

  SqlFilter keyword = MustCompile(R"(name = "AND")", ClusterFields());
  EXPECT_THAT(keyword.args, ElementsAre(SqlValue(std::string("AND"))));
}

TEST(CompileFilterTest, InjectionStaysABoundArgument) {
  const std::string evil = "x' OR 1=1 --";
  SqlFilter f = MustCompile(R"(name = "x' OR 1=1 --" AND actor.subject : "'; DROP TABLE c; --")",
                            ClusterFields());
  EXPECT_EQ(f.where, "((c.name = ?) AND (instr(c.owner, ?) > 0))");
  EXPECT_THAT(f.where, Not(HasSubstr("1=1")));
  EXPECT_THAT(f.where, Not(HasSubstr("DROP")));
  EXPECT_THAT(f.args, ElementsAre(SqlValue(evil), SqlValue(std::string("'; DROP TABLE c; --"))));
}

TEST(CompileFilterTest, LengthLimit) {
  // Exactly kMaxFilterLength bytes compiles.
  const std::string prefix = "name = \"";
  std::string at_limit = prefix + std::string(kMaxFilterLength - prefix.size() - 1, 'x') + "\"";
  ASSERT_EQ(at_limit.size(), kMaxFilterLength);
  EXPECT_EQ(MustCompile(at_limit, ClusterFields()).where, "(c.name = ?)");

  std::string too_long = prefix + std::string(kMaxFilterLength - prefix.size(), 'x') + "\"";
  ExpectFilterError(too_long, "limit is 2000");
  // The limit applies even when the excess is whitespace.
  ExpectFilterError(std::string(kMaxFilterLength + 1, ' '), "limit is 2000");
}

TEST(CompileFilterTest, DepthLimit) {
  auto nested = [](int depth) {
    return std::string(depth, '(') + "a = 1" + std::string(depth, ')');
  };
  EXPECT_EQ(MustCompile(nested(kMaxFilterDepth), AbcFields()).where, "(t.a = ?)");
  ExpectFilterError(nested(kMaxFilterDepth + 1), "nested deeper than 32", AbcFields());
  ExpectFilterError(nested(500), "nested deeper than 32", AbcFields());
  ExpectFilterError(std::string(1000, '('), "nested deeper than 32", AbcFields());
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST(CompileFilterErrorTest, UnknownField) {
  ExpectFilterError("color = red", "unknown field \"color\" at column 1");
  ExpectFilterError("name = x AND colour = red", "unknown field \"colour\" at column 14");
  ExpectFilterError("actor = x", "filterable fields: name, tier");
}

TEST(CompileFilterErrorTest, BadEnum) {
  ExpectFilterError("tier = GOLD", "invalid value \"GOLD\" for enum field \"tier\" at column 8");
  ExpectFilterError("tier = tier_region", "TIER_REGION");
  ExpectFilterError("tier = 2", "allowed: TIER_NONE, TIER_REGION, TIER_NATIONAL");
}

TEST(CompileFilterErrorTest, BadInt) {
  ExpectFilterError("employees = ten", "invalid integer \"ten\"");
  ExpectFilterError("employees = 1.5", "invalid integer");
  ExpectFilterError("employees = 9223372036854775808", "invalid integer");
  ExpectFilterError("employees = \"\"", "invalid integer");
  ExpectFilterError("employees = \" 5\"", "invalid integer");
}

TEST(CompileFilterErrorTest, BadBool) {
  ExpectFilterError("active = yes", "expected true or false");
  ExpectFilterError("active = TRUE", "expected true or false");
}

TEST(CompileFilterErrorTest, DanglingOperators) {
  ExpectFilterError("name = x AND", "found end of filter");
  ExpectFilterError("name = x OR ", "found end of filter");
  ExpectFilterError("AND name = x", "unexpected keyword AND at column 1");
  ExpectFilterError("name = x AND OR name = y", "unexpected keyword OR at column 14");
  ExpectFilterError("NOT", "found end of filter");
  ExpectFilterError("NOT NOT name = x", "unexpected keyword NOT at column 5");
  ExpectFilterError("-", "found end of filter");
}

TEST(CompileFilterErrorTest, UnbalancedParentheses) {
  ExpectFilterError("(name = x", "'(' at column 1 is never closed");
  ExpectFilterError("((name = x) AND active = true", "'(' at column 1 is never closed");
  ExpectFilterError("name = x)", "')' at column 9 has no matching '('");
  ExpectFilterError("(name = x))", "')' at column 11 has no matching '('");
  ExpectFilterError("()", "expected a field name or '(' at column 2");
  ExpectFilterError(")", "expected a field name or '(' at column 1");
}

TEST(CompileFilterErrorTest, Strings) {
  ExpectFilterError("name = \"abc", "unterminated string starting at column 8");
  ExpectFilterError("name = \"abc\\", "unterminated string starting at column 8");
  ExpectFilterError("name = \"abc\\\"", "unterminated string");
  ExpectFilterError("name = \"a\\nb\"", "unsupported escape sequence");
}

TEST(CompileFilterErrorTest, ImplicitAnd) {
  ExpectFilterError("name = x active = true", "explicit AND");
  ExpectFilterError("name = x active = true", "column 10");
  ExpectFilterError("(name = x) (active = true)", "explicit AND");
  ExpectFilterError("name = x NOT active = true", "explicit AND");
  ExpectFilterError("(name = x -active = true)", "explicit AND");
  ExpectFilterError("name = x \"y\"", "explicit AND");
}

TEST(CompileFilterErrorTest, ComparatorNotSupportedForType) {
  ExpectFilterError("name < b", "comparator < at column 6 is only supported on integer fields");
  ExpectFilterError("tier >= TIER_REGION", "\"tier\" has type enum");
  ExpectFilterError("active > false", "only supported on integer fields");
  ExpectFilterError("regions > 150100", "only supported on integer fields");
}

TEST(CompileFilterErrorTest, MalformedRestriction) {
  ExpectFilterError("name", "expected a comparator");
  ExpectFilterError("name ~ x", "expected a comparator (=, !=, :, <, <=, >, >=) after field");
  ExpectFilterError("name ! x", "expected a comparator");
  ExpectFilterError("name =", "expected a value after '=' at column 7, found end of filter");
  ExpectFilterError("name = )", "expected a value at column 8");
  ExpectFilterError("name = AND", "found keyword AND");
  ExpectFilterError("name = x;", "unexpected \";\" at column 9");
  ExpectFilterError("= x", "expected a field name");
}

TEST(CompileFilterErrorTest, DescriptionsStayValidUtf8) {
  // Invalid UTF-8 and control bytes are escaped in descriptions; otherwise the BadRequest payload
  // (a proto3 string) would not round-trip and GetFieldViolations would return nothing.
  ExpectFilterError("\xff = x", "\"\\xff\"");
  ExpectFilterError("name = x \x01", "\"\\x01\"");
  ExpectFilterError("名字 = x", "\"名\"");
  ExpectFilterError(absl::StrCat("tier = ", std::string(100, 'Z')), "ZZZ...\"");
}

TEST(CompileFilterErrorTest, MisconfiguredRepeatedFieldIsInternal) {
  const std::vector<FilterField> fields = {
      {"tags", FilterField::Type::kRepeatedString, "EXISTS (SELECT 1 FROM tags)", {}},
  };
  absl::StatusOr<SqlFilter> compiled = CompileFilter("tags : x", fields);
  EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInternal);
}

// ---------------------------------------------------------------------------------------------
// Compiled filters run against a real SQLite database.

class SqliteFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    Exec(R"sql(
      CREATE TABLE clusters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        tier INTEGER NOT NULL,
        employees INTEGER NOT NULL,
        active INTEGER NOT NULL,
        owner TEXT NOT NULL
      );
      CREATE TABLE cluster_regions (
        cluster_id INTEGER NOT NULL REFERENCES clusters(id),
        region TEXT NOT NULL
      );
      INSERT INTO clusters VALUES
        (1, 'hohhot-dairy', 3, 1200, 1, 'alice'),
        (2, 'baotou-steel', 4, 5000, 1, 'bob'),
        (3, 'ordos-coal', 2, 800, 0, 'alice'),
        (4, '100%_pure', 1, 10, 1, 'carol "c"'),
        (5, 'x'' OR 1=1 --', 1, 0, 0, 'dave');
      INSERT INTO cluster_regions VALUES
        (1, '150100'), (1, '150200'), (2, '150200'), (3, '150600'), (5, '150100');
    )sql");
  }

  void TearDown() override { sqlite3_close(db_); }

  void Exec(const char* sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, &error), SQLITE_OK) << error;
  }

  // The ids of the clusters that `filter` selects, ascending.
  std::vector<int64_t> Select(std::string_view filter) {
    std::vector<int64_t> ids;
    absl::StatusOr<SqlFilter> compiled = CompileFilter(filter, ClusterFields());
    EXPECT_TRUE(compiled.ok()) << filter << ": " << compiled.status();
    if (!compiled.ok()) {
      return ids;
    }
    const std::string sql = absl::StrCat("SELECT c.id FROM clusters c WHERE ", compiled->where,
                                         " ORDER BY c.id");
    sqlite3_stmt* stmt = nullptr;
    const int prepared = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    EXPECT_EQ(prepared, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
    if (prepared != SQLITE_OK) {
      return ids;
    }
    EXPECT_EQ(sqlite3_bind_parameter_count(stmt), static_cast<int>(compiled->args.size()))
        << sql;
    for (size_t i = 0; i < compiled->args.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      const SqlValue& arg = compiled->args[i];
      int bound = SQLITE_OK;
      if (const int64_t* number = std::get_if<int64_t>(&arg)) {
        bound = sqlite3_bind_int64(stmt, index, *number);
      } else {
        const std::string& text = std::get<std::string>(arg);
        bound = sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()),
                                  SQLITE_TRANSIENT);
      }
      EXPECT_EQ(bound, SQLITE_OK);
    }
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
      ids.push_back(sqlite3_column_int64(stmt, 0));
    }
    EXPECT_EQ(step, SQLITE_DONE) << sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return ids;
  }

  sqlite3* db_ = nullptr;
};

TEST_F(SqliteFilterTest, EmptyFilterSelectsEverything) {
  EXPECT_THAT(Select(""), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(SqliteFilterTest, ScalarTypes) {
  EXPECT_THAT(Select("tier = TIER_NATIONAL"), ElementsAre(1));
  EXPECT_THAT(Select("tier != TIER_REGION"), ElementsAre(1, 2, 4, 5));
  EXPECT_THAT(Select("employees >= 1200"), ElementsAre(1, 2));
  EXPECT_THAT(Select("employees > 1200"), ElementsAre(2));
  EXPECT_THAT(Select("employees < 800"), ElementsAre(4, 5));
  EXPECT_THAT(Select("employees <= 800"), ElementsAre(3, 4, 5));
  EXPECT_THAT(Select("active = false"), ElementsAre(3, 5));
  EXPECT_THAT(Select("active : true"), ElementsAre(1, 2, 4));
  EXPECT_THAT(Select("actor.subject = alice"), ElementsAre(1, 3));
  EXPECT_THAT(Select(R"(actor.subject = "carol \"c\"")"), ElementsAre(4));
  EXPECT_THAT(Select("name != ordos-coal"), ElementsAre(1, 2, 4, 5));
}

TEST_F(SqliteFilterTest, SubstringMatchTreatsWildcardsLiterally) {
  EXPECT_THAT(Select("name : o"), ElementsAre(1, 2, 3));
  EXPECT_THAT(Select("name : \"%\""), ElementsAre(4));
  EXPECT_THAT(Select("name : _"), ElementsAre(4));
  EXPECT_THAT(Select("name : \"%_\""), ElementsAre(4));
  EXPECT_THAT(Select("name : \"_%\""), IsEmpty());
  EXPECT_THAT(Select("name : DAIRY"), IsEmpty());
}

TEST_F(SqliteFilterTest, RepeatedStringExists) {
  EXPECT_THAT(Select("regions : 150200"), ElementsAre(1, 2));
  EXPECT_THAT(Select("regions = 150100"), ElementsAre(1, 5));
  EXPECT_THAT(Select("regions != 150100"), ElementsAre(2, 3, 4));
  EXPECT_THAT(Select("regions : 999999"), IsEmpty());
  EXPECT_THAT(Select("regions : 150100 AND regions : 150200"), ElementsAre(1));
  EXPECT_THAT(Select("regions = 150100 AND tier = TIER_NONE"), ElementsAre(5));
}

TEST_F(SqliteFilterTest, PrecedenceParenthesesAndNegation) {
  // NONE{4,5} AND (active{1,2,4} OR big{2}) = {4}; the AND-first reading would give {2,4}.
  EXPECT_THAT(Select("tier = TIER_NONE AND active = true OR employees > 1200"), ElementsAre(4));
  EXPECT_THAT(Select("(tier = TIER_NONE AND active = true) OR employees > 1200"),
              ElementsAre(2, 4));
  EXPECT_THAT(Select("NOT active = true"), ElementsAre(3, 5));
  EXPECT_THAT(Select("-regions:150100"), ElementsAre(2, 3, 4));
  EXPECT_THAT(Select("NOT (tier = TIER_NONE OR tier = TIER_REGION)"), ElementsAre(1, 2));
  EXPECT_THAT(Select("-(regions : 150200 OR regions : 150600) AND -actor.subject = dave"),
              ElementsAre(4));
}

TEST_F(SqliteFilterTest, InjectionIsMatchedLiterally) {
  EXPECT_THAT(Select(R"(name = "x' OR 1=1 --")"), ElementsAre(5));
  EXPECT_THAT(Select(R"(name = "' OR 1=1 --")"), IsEmpty());
  EXPECT_THAT(Select(R"(name = "a' OR '1'='1")"), IsEmpty());
  EXPECT_THAT(Select(R"(actor.subject = "x'); DROP TABLE clusters; --")"), IsEmpty());
  EXPECT_THAT(Select(""), ElementsAre(1, 2, 3, 4, 5));
}

// ---------------------------------------------------------------------------------------------
// Page tokens.

const Principal kAlice{"alice", "departments/industry_it", {"government"}};
const Principal kBob{"bob", "enterprises/91150100MA0N000000", {"enterprise"}};

PageTokenPayload SamplePayload(uint64_t query_hash) {
  PageTokenPayload payload;
  payload.set_query_hash(query_hash);
  payload.set_offset(100);
  payload.set_last_key("clusters/hohhot-dairy");
  payload.set_issued_unix(1700000000);
  return payload;
}

TEST(PageTokenTest, RoundTrip) {
  const PageTokenCodec codec("test-secret");
  const uint64_t hash = QueryHash({"clusters", "tier = TIER_REGION", "name asc"});
  const std::string token = codec.Encode(SamplePayload(hash), kAlice);
  EXPECT_FALSE(token.empty());
  for (char c : token) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
        << "not base64url: " << token;
  }

  absl::StatusOr<PageTokenPayload> decoded = codec.Decode(token, hash, kAlice);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->query_hash(), hash);
  EXPECT_EQ(decoded->offset(), 100);
  EXPECT_EQ(decoded->last_key(), "clusters/hohhot-dairy");
  EXPECT_EQ(decoded->issued_unix(), 1700000000);

  // An empty payload (hash 0) round-trips too.
  const std::string empty_token = codec.Encode(PageTokenPayload(), kAlice);
  absl::StatusOr<PageTokenPayload> empty = codec.Decode(empty_token, 0, kAlice);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->offset(), 0);
}

TEST(PageTokenTest, WrongQueryHash) {
  const PageTokenCodec codec("test-secret");
  const uint64_t hash = QueryHash({"clusters", "tier = TIER_REGION"});
  const std::string token = codec.Encode(SamplePayload(hash), kAlice);
  ExpectPageTokenError(codec.Decode(token, hash + 1, kAlice).status());
  ExpectPageTokenError(codec.Decode(token, QueryHash({"clusters", "tier = TIER_NONE"}), kAlice).status());
}

TEST(PageTokenTest, EveryAlteredCharacterIsRejected) {
  const PageTokenCodec codec("test-secret");
  const std::string token = codec.Encode(SamplePayload(7), kAlice);
  for (size_t i = 0; i < token.size(); ++i) {
    for (char replacement : {'A', 'B', 'z', '0', '-', '_'}) {
      if (token[i] == replacement) {
        continue;
      }
      std::string altered = token;
      altered[i] = replacement;
      SCOPED_TRACE(absl::StrCat("position ", i, " -> ", std::string(1, replacement)));
      ExpectPageTokenError(codec.Decode(altered, 7, kAlice).status());
    }
  }
}

TEST(PageTokenTest, FlippedDecodedByteIsRejected) {
  const PageTokenCodec codec("test-secret");
  const std::string token = codec.Encode(SamplePayload(7), kAlice);
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string flipped = raw;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    SCOPED_TRACE(absl::StrCat("byte ", i));
    ExpectPageTokenError(codec.Decode(absl::WebSafeBase64Escape(flipped), 7, kAlice).status());
  }
}

TEST(PageTokenTest, TruncatedOrExtendedIsRejected) {
  const PageTokenCodec codec("test-secret");
  const std::string token = codec.Encode(SamplePayload(7), kAlice);
  for (size_t n = 0; n < token.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("length ", n));
    ExpectPageTokenError(codec.Decode(token.substr(0, n), 7, kAlice).status());
  }
  ExpectPageTokenError(codec.Decode(token + "A", 7, kAlice).status());
  ExpectPageTokenError(codec.Decode(token + "=", 7, kAlice).status());
  ExpectPageTokenError(codec.Decode(token + " ", 7, kAlice).status());
}

TEST(PageTokenTest, GarbageIsRejected) {
  const PageTokenCodec codec("test-secret");
  for (std::string_view garbage :
       {"", "not a token!", "====", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "eyJhbGciOiJub25lIn0", "\xff\xfe"}) {
    SCOPED_TRACE(garbage);
    ExpectPageTokenError(codec.Decode(garbage, 0, kAlice).status());
  }
  ExpectPageTokenError(codec.Decode(std::string(100000, 'A'), 0, kAlice).status());
}

TEST(PageTokenTest, OtherSecretIsRejected) {
  const PageTokenCodec codec("test-secret");
  const PageTokenCodec other("another-secret");
  const std::string token = other.Encode(SamplePayload(7), kAlice);
  ExpectPageTokenError(codec.Decode(token, 7, kAlice).status());
  EXPECT_TRUE(other.Decode(token, 7, kAlice).ok());
}

TEST(PageTokenTest, BoundToTheCallerItWasIssuedTo) {
  const PageTokenCodec codec("test-secret");
  const std::string token = codec.Encode(SamplePayload(7), kAlice);
  ASSERT_TRUE(codec.Decode(token, 7, kAlice).ok());
  const Principal other_subject{"carol", kAlice.organization, kAlice.roles};
  const Principal other_organization{kAlice.subject, "departments/development_reform", kAlice.roles};
  const Principal other_roles{kAlice.subject, kAlice.organization, {"auditor"}};
  for (const Principal* caller : {&kBob, &other_subject, &other_organization}) {
    SCOPED_TRACE(absl::StrCat(caller->subject, " of ", caller->organization));
    absl::Status s = codec.Decode(token, 7, *caller).status();
    ExpectPageTokenError(s);
    EXPECT_THAT(s.message(), HasSubstr("another caller"));
  }
  // The caller is who acts (subject, organization), not what roles the token carries today.
  EXPECT_TRUE(codec.Decode(token, 7, other_roles).ok());
  EXPECT_NE(CallerHash(kAlice), CallerHash(kBob));
  EXPECT_NE(CallerHash(Principal{"ab", "c", {}}), CallerHash(Principal{"a", "bc", {}}));
}

TEST(PageTokenTest, ReissueGivesTheSamePositionToAnotherCaller) {
  const PageTokenCodec codec("test-secret");
  const std::string token = codec.Encode(SamplePayload(7), kAlice);
  absl::StatusOr<std::string> reissued = codec.Reissue(token, 7, kBob);
  ASSERT_TRUE(reissued.ok()) << reissued.status();
  absl::StatusOr<PageTokenPayload> decoded = codec.Decode(*reissued, 7, kBob);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->last_key(), "clusters/hohhot-dairy");
  ExpectPageTokenError(codec.Decode(*reissued, 7, kAlice).status());
  EXPECT_EQ(*codec.Reissue(token, 7, kAlice), token);  // already the caller's

  // Reissue checks the signature and the query.
  ExpectPageTokenError(codec.Reissue(token, 8, kBob).status());
  ExpectPageTokenError(PageTokenCodec("another-secret").Reissue(token, 7, kBob).status());
  std::string tampered = token;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  ExpectPageTokenError(codec.Reissue(tampered, 7, kBob).status());
}

TEST(PagingTest, PlansIssueAndCheckTokensForTheirCaller) {
  const PageTokenCodec codec("test-secret");
  const std::vector<FilterField> fields = {{"name", FilterField::Type::kString, "name", {}}};
  absl::StatusOr<ListPlan> first = PlanList(codec, kAlice, 2, "", "name = \"x\"", fields, {"ListThings", "x"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->page_size, 2);
  EXPECT_EQ(first->after_key, "");
  const std::string token = NextPageToken(codec, *first, "things/b");

  absl::StatusOr<ListPlan> second = PlanList(codec, kAlice, 2, token, "name = \"x\"", fields, {"ListThings", "x"});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->after_key, "things/b");

  absl::StatusOr<ListPlan> stolen = PlanList(codec, kBob, 2, token, "name = \"x\"", fields, {"ListThings", "x"});
  ExpectPageTokenError(stolen.status());

  // A page cached for everyone carries the loader's token: each caller gets it as their own.
  absl::StatusOr<ListPlan> bobs = PlanList(codec, kBob, 2, "", "name = \"x\"", fields, {"ListThings", "x"});
  ASSERT_TRUE(bobs.ok()) << bobs.status();
  absl::StatusOr<std::string> for_bob = NextPageTokenForCaller(codec, *bobs, token);
  ASSERT_TRUE(for_bob.ok()) << for_bob.status();
  absl::StatusOr<ListPlan> bobs_next = PlanList(codec, kBob, 2, *for_bob, "name = \"x\"", fields, {"ListThings", "x"});
  ASSERT_TRUE(bobs_next.ok()) << bobs_next.status();
  EXPECT_EQ(bobs_next->after_key, "things/b");
  EXPECT_EQ(*NextPageTokenForCaller(codec, *bobs, ""), "");  // the last page stays the last
}

TEST(PageTokenDeathTest, EmptySecretAborts) {
  EXPECT_DEATH(PageTokenCodec(""), "non-empty secret");
}

TEST(QueryHashTest, StableKnownValues) {
  // Expected values computed independently, e.g. for ("ab", "c"):
  //   printf '\x00\x00\x00\x00\x00\x00\x00\x02ab\x00\x00\x00\x00\x00\x00\x00\x01c' | sha256sum
  //   601d5476e2ccfe2c87a2bba7...
  EXPECT_EQ(QueryHash({"ab", "c"}), 0x601d5476e2ccfe2cULL);
  EXPECT_EQ(QueryHash({"a", "bc"}), 0x3fafa1cf2f19a7c1ULL);
  EXPECT_EQ(QueryHash({}), 0xe3b0c44298fc1c14ULL);    // SHA-256 of nothing
  EXPECT_EQ(QueryHash({""}), 0xaf5570f5a1810b7aULL);  // SHA-256 of eight zero bytes
}

TEST(QueryHashTest, DiffersForDifferentSplitsAndOrder) {
  EXPECT_NE(QueryHash({"ab", "c"}), QueryHash({"a", "bc"}));
  EXPECT_NE(QueryHash({"abc"}), QueryHash({"ab", "c"}));
  EXPECT_NE(QueryHash({"a", "b"}), QueryHash({"b", "a"}));
  EXPECT_NE(QueryHash({"a"}), QueryHash({"a", ""}));
  EXPECT_NE(QueryHash({}), QueryHash({""}));
  EXPECT_EQ(QueryHash({"x", "y"}), QueryHash({std::string("x"), std::string("y")}));
}

TEST(NormalizePageSizeTest, DefaultsClampsAndRejects) {
  EXPECT_EQ(*NormalizePageSize(0), 50);
  EXPECT_EQ(*NormalizePageSize(1), 1);
  EXPECT_EQ(*NormalizePageSize(50), 50);
  EXPECT_EQ(*NormalizePageSize(500), 500);
  EXPECT_EQ(*NormalizePageSize(501), 500);
  EXPECT_EQ(*NormalizePageSize(std::numeric_limits<int32_t>::max()), 500);
  EXPECT_EQ(*NormalizePageSize(0, 10, 100), 10);
  EXPECT_EQ(*NormalizePageSize(200, 10, 100), 100);
  EXPECT_EQ(*NormalizePageSize(0, 200, 100), 100);

  for (int32_t negative : {-1, std::numeric_limits<int32_t>::min()}) {
    absl::StatusOr<int> size = NormalizePageSize(negative);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    const std::vector<FieldViolation> violations = GetFieldViolations(size.status());
    ASSERT_EQ(violations.size(), 1u);
    EXPECT_EQ(violations[0].field, "page_size");
  }
}

}  // namespace
}  // namespace clustergov

#pragma once

// A subset of AIP-160 list filters, compiled into a parameterized SQL WHERE clause.
//
// Grammar (OR binds tighter than AND, as in AIP-160):
//   expression  := sequence { "AND" sequence }
//   sequence    := factor                       (adjacent terms without AND are an error)
//   factor      := term { "OR" term }
//   term        := [ "NOT" | "-" ] simple
//   simple      := restriction | "(" expression ")"
//   restriction := field comparator value
//   comparator  := "=" | "!=" | ":" | "<" | "<=" | ">" | ">="   (ordering only on kInt fields)
//   value       := quoted string ("..." with \" and \\ escapes)
//                | bare word (ASCII letters, digits, _ - . / *, and non-ASCII bytes)
// Keywords AND, OR, NOT are case-sensitive. Field names are ASCII letters, digits, '_' and '.'.
//
// Values are never spliced into the SQL text: every value becomes a positional '?' argument.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace clustergov {

// A value bound to one '?' placeholder. Booleans and enums are bound as integers.
using SqlValue = std::variant<int64_t, std::string>;

// One field that a filter may reference. Definitions are trusted server configuration.
struct FilterField {
  enum class Type { kString, kInt, kEnum, kBool, kRepeatedString };

  // Filter name, possibly dotted, e.g. "actor.subject".
  std::string name;
  Type type = Type::kString;
  // kString/kInt/kEnum/kBool: a SQL column expression, e.g. "c.tier"; must contain no '?'.
  // kRepeatedString: a SQL boolean expression with exactly one '?' meaning "contains the value",
  // e.g. "EXISTS (SELECT 1 FROM cluster_regions r WHERE r.cluster_id = c.id AND r.region = ?)".
  std::string sql;
  // kEnum: the allowed names and the integers stored for them in SQL, e.g. {{"TIER_REGION", 2}}.
  std::vector<std::pair<std::string, int64_t>> enum_values;
};

// A compiled filter.
struct SqlFilter {
  // "1 = 1" when the filter is empty; otherwise a parenthesized boolean expression.
  std::string where;
  // Positional arguments, in the order of the '?' placeholders in `where`.
  std::vector<SqlValue> args;
};

// Maximum accepted filter length in bytes, and maximum parenthesis nesting depth.
inline constexpr size_t kMaxFilterLength = 2000;
inline constexpr int kMaxFilterDepth = 32;

// Compiles `filter` against `fields`.
//
// Semantics per field type:
//   kString:         "=" / "!=" exact; ":" substring, as `instr(col, ?) > 0` (no LIKE wildcards).
//   kInt:            value must be an int64; all comparators; ":" means "=".
//   kEnum:           value must be one of the enum names; "=", "!=", ":" (":" means "=").
//   kBool:           value `true` or `false` (bound as 1 / 0); "=", "!=", ":" (":" means "=").
//   kRepeatedString: ":" and "=" mean "contains"; "!=" means "does not contain".
//
// Errors: INVALID_ARGUMENT with a field violation on "filter" whose description says what is
// wrong and at which 1-based column. A misconfigured kRepeatedString field (its `sql` lacking
// exactly one '?') yields INTERNAL.
absl::StatusOr<SqlFilter> CompileFilter(std::string_view filter,
                                        const std::vector<FilterField>& fields);

}  // namespace clustergov

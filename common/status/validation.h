#pragma once

// Small validation helpers shared by every service's domain layer.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status.h"

namespace google::type {
class Date;
}

namespace clustergov {

// Characters (code points) of UTF-8 text.
size_t Utf8Length(absl::string_view s);

// Adds a violation when `value` is required but blank, or longer than `max` characters.
void CheckText(FieldErrors& errors, absl::string_view field, absl::string_view value, size_t max, bool required);

// ABORTED when the client sent an etag and it is not the current one.
absl::Status CheckEtag(absl::string_view field, absl::string_view given, absl::string_view current);

// Lowercase code: 1-64 of [a-z0-9_] starting with a letter (industry codes and the like).
bool IsLowerCode(absl::string_view s);

// Resource id: 2-63 of [a-z0-9-], starting with a letter, not ending with '-'.
bool IsResourceId(absl::string_view s);

// "{collection}/{id}" with IsResourceId(id) → id; INVALID_ARGUMENT on `field` otherwise.
absl::StatusOr<std::string> ParseResourceName(absl::string_view field, absl::string_view name,
                                              absl::string_view collection);

// "{collection}/{n}" with n a positive integer in canonical form → n; INVALID_ARGUMENT otherwise.
absl::StatusOr<int64_t> ParseNumberedName(absl::string_view field, absl::string_view name,
                                          absl::string_view collection);

// A real date of the Gregorian calendar (month lengths, 29 February only in leap years) with the
// year in [min_year, max_year].
bool IsCalendarDate(const google::type::Date& d, int min_year, int max_year);

// "YYYY-MM-DD" of a date, zero-padded so that keys compare as the dates do; empty when unset.
std::string DateKey(const google::type::Date& d);

// The day of `now` in China Standard Time (UTC+8) as "YYYY-MM-DD": validity periods and deadlines run by
// calendar day there.
std::string TodayInChina(absl::Time now = absl::Now());

}  // namespace clustergov

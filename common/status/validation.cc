#include "common/status/validation.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/type/date.pb.h"

namespace clustergov {

size_t Utf8Length(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

void CheckText(FieldErrors& errors, absl::string_view field, absl::string_view value, size_t max, bool required) {
  if (required && absl::StripAsciiWhitespace(value).empty()) {
    errors.Add(field, "required");
  } else if (Utf8Length(value) > max) {
    errors.Add(field, absl::StrCat("at most ", max, " characters"));
  }
}

absl::Status CheckEtag(absl::string_view field, absl::string_view given, absl::string_view current) {
  if (!given.empty() && given != current) {
    return absl::AbortedError(absl::StrCat(field, " \"", given, "\" is stale (current \"", current,
                                           "\"): read the resource again and retry"));
  }
  return absl::OkStatus();
}

bool IsLowerCode(absl::string_view s) {
  if (s.empty() || s.size() > 64 || !absl::ascii_islower(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) || absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

bool IsResourceId(absl::string_view s) {
  if (s.size() < 2 || s.size() > 63 || !absl::ascii_islower(static_cast<unsigned char>(s[0])) || s.back() == '-') {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) || absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
           c == '-';
  });
}

absl::StatusOr<std::string> ParseResourceName(absl::string_view field, absl::string_view name,
                                              absl::string_view collection) {
  if (name.empty()) return InvalidField(field, "required");
  const std::string prefix = absl::StrCat(collection, "/");
  if (!absl::StartsWith(name, prefix) || !IsResourceId(name.substr(prefix.size()))) {
    return InvalidField(field, absl::StrCat("must be ", collection,
                                            "/{id}, id 2-63 of [a-z0-9-] starting with a letter"));
  }
  return std::string(name.substr(prefix.size()));
}

absl::StatusOr<int64_t> ParseNumberedName(absl::string_view field, absl::string_view name,
                                          absl::string_view collection) {
  const std::string prefix = absl::StrCat(collection, "/");
  int64_t id = 0;
  if (!absl::StartsWith(name, prefix) || !absl::SimpleAtoi(name.substr(prefix.size()), &id) || id <= 0 ||
      absl::StrCat(id) != name.substr(prefix.size())) {
    return InvalidField(field, absl::StrCat("must be ", collection, "/{id}"));
  }
  return id;
}

bool IsCalendarDate(const google::type::Date& d, int min_year, int max_year) {
  if (d.year() < min_year || d.year() > max_year || d.month() < 1 || d.month() > 12 || d.day() < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (d.year() % 4 == 0 && d.year() % 100 != 0) || d.year() % 400 == 0;
  return d.day() <= kDays[d.month() - 1] + (d.month() == 2 && leap ? 1 : 0);
}

std::string DateKey(const google::type::Date& d) {
  if (d.year() == 0) return "";
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

std::string TodayInChina(absl::Time now) { return absl::FormatTime("%Y-%m-%d", now, absl::FixedTimeZone(8 * 3600)); }

}  // namespace clustergov

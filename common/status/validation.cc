#include "common/status/validation.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

}  // namespace clustergov

#pragma once

// What every fuzz target checks besides the sanitizers: a property that does not hold is reported
// and aborts the run (libFuzzer then saves the input as a crash artifact).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "common/status/status.h"

namespace clustergov::fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const char* what, absl::string_view detail) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n  %s\n", file, line, what,
               absl::CHexEscape(detail.substr(0, 2000)).c_str());
  std::abort();
}

// FUZZ_CHECK(condition, detail): `detail` (anything convertible to a string_view) is printed
// escaped when the condition does not hold.
#define FUZZ_CHECK(cond, detail)                                    \
  do {                                                              \
    if (!(cond)) ::clustergov::fuzz::Fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): what proto3
// string fields, and so google.rpc.Status messages and field violations, must hold.
inline bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t min = 0, code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2, min = 0x80, code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3, min = 0x800, code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4, min = 0x10000, code = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      code = (code << 6) | (b & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// A refusal as the callers expect it: one of `codes`, and a message and field violations that
// are valid UTF-8 (they travel in proto3 strings).
inline void CheckRefusal(const absl::Status& status, std::initializer_list<absl::StatusCode> codes,
                         absl::string_view input) {
  bool expected = false;
  for (absl::StatusCode c : codes) expected = expected || status.code() == c;
  FUZZ_CHECK(expected, std::string(status.ToString()) + " for input: " + std::string(input));
  FUZZ_CHECK(IsValidUtf8(status.message()), status.message());
  for (const FieldViolation& v : GetFieldViolations(status)) {
    FUZZ_CHECK(IsValidUtf8(v.field), v.field);
    FUZZ_CHECK(IsValidUtf8(v.description), v.description);
  }
}

// Splits a fuzz input at `separator`: the pieces, at most `max_parts` (the last takes the rest).
inline std::vector<absl::string_view> SplitInput(absl::string_view input, char separator, size_t max_parts) {
  std::vector<absl::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t at = input.find(separator);
    if (at == absl::string_view::npos) break;
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + 1);
  }
  parts.push_back(input);
  return parts;
}

}  // namespace clustergov::fuzz

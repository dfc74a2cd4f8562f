#include "services/gateway/path_template.h"

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/stubs/common.h"

namespace clustergov::gateway {
namespace {

bool IsIdentChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A literal segment: anything but the template's own punctuation.
bool IsLiteralChar(char c) { return c != '/' && c != '{' && c != '}' && c != '*' && c != ':' && c != '='; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::Status Run(PathTemplate* out, std::vector<PathTemplate::Segment>* segments,
                   std::vector<PathTemplate::Variable>* variables, std::string* verb) {
    if (text_.empty() || text_[0] != '/') return Error("must start with '/'");
    pos_ = 1;
    if (auto s = ParseSegments(segments, variables, /*in_variable=*/false); !s.ok()) return s;
    if (pos_ < text_.size() && text_[pos_] == ':') {
      ++pos_;
      size_t start = pos_;
      while (pos_ < text_.size() && IsLiteralChar(text_[pos_])) ++pos_;
      if (pos_ == start) return Error("empty verb");
      *verb = std::string(text_.substr(start, pos_ - start));
    }
    if (pos_ != text_.size()) return Error(absl::StrCat("unexpected '", text_.substr(pos_, 1), "'"));
    for (size_t i = 0; i < segments->size(); ++i) {
      if ((*segments)[i].kind == PathTemplate::Kind::kMulti && i + 1 != segments->size()) {
        return Error("'**' must be the last segment");
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("path template \"", text_, "\": ", what));
  }

  absl::Status ParseSegments(std::vector<PathTemplate::Segment>* segments,
                             std::vector<PathTemplate::Variable>* variables, bool in_variable) {
    while (true) {
      if (pos_ >= text_.size()) return Error("empty segment");
      char c = text_[pos_];
      if (c == '*') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
          segments->push_back({PathTemplate::Kind::kMulti, ""});
          pos_ += 2;
        } else {
          segments->push_back({PathTemplate::Kind::kSingle, ""});
          ++pos_;
        }
      } else if (c == '{') {
        if (in_variable) return Error("nested variable");
        ++pos_;
        PathTemplate::Variable var;
        size_t start = pos_;
        while (pos_ < text_.size() && (IsIdentChar(text_[pos_]) || text_[pos_] == '.')) ++pos_;
        std::string path(text_.substr(start, pos_ - start));
        if (path.empty()) return Error("empty variable name");
        var.field_path = absl::StrSplit(path, '.');
        for (const auto& part : var.field_path) {
          if (part.empty()) return Error(absl::StrCat("bad field path '", path, "'"));
        }
        var.start = static_cast<int>(segments->size());
        if (pos_ < text_.size() && text_[pos_] == '=') {
          ++pos_;
          if (auto s = ParseSegments(segments, variables, /*in_variable=*/true); !s.ok()) return s;
        } else {
          segments->push_back({PathTemplate::Kind::kSingle, ""});
        }
        if (pos_ >= text_.size() || text_[pos_] != '}') return Error("missing '}'");
        ++pos_;
        var.end = static_cast<int>(segments->size());
        variables->push_back(std::move(var));
      } else if (IsLiteralChar(c)) {
        size_t start = pos_;
        while (pos_ < text_.size() && IsLiteralChar(text_[pos_])) ++pos_;
        segments->push_back({PathTemplate::Kind::kLiteral, std::string(text_.substr(start, pos_ - start))});
      } else {
        return Error(absl::StrCat("unexpected '", std::string(1, c), "'"));
      }
      if (pos_ < text_.size() && text_[pos_] == '/') {
        ++pos_;
        continue;
      }
      return absl::OkStatus();
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

namespace {

// Part of a request target as a message shows it: escaped, at most 64 bytes of it.
std::string Shown(absl::string_view raw) {
  constexpr size_t kShown = 64;
  return absl::StrCat("\"", absl::CHexEscape(raw.substr(0, kShown)), raw.size() > kShown ? "..." : "", "\"");
}

bool IsUtf8(const std::string& s) { return google::protobuf::internal::IsStructurallyValidUTF8(s); }

}  // namespace

absl::Status DecodeQueryParameter(absl::string_view pair, std::string* key, std::string* value) {
  auto eq = pair.find('=');
  if (!PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true, key) ||
      !PercentDecode(eq == absl::string_view::npos ? "" : pair.substr(eq + 1), /*plus_is_space=*/true, value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter ", Shown(pair), ": malformed percent-encoding (a '%' takes two hex digits)"));
  }
  if (!IsUtf8(*key) || !IsUtf8(*value)) {
    return absl::InvalidArgumentError(absl::StrCat("query parameter ", Shown(pair), ": not UTF-8 once decoded"));
  }
  return absl::OkStatus();
}

absl::Status CheckRequestTarget(absl::string_view path, absl::string_view query) {
  std::string decoded;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (!PercentDecode(segment, /*plus_is_space=*/false, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path segment ", Shown(segment), ": malformed percent-encoding (a '%' takes two hex digits)"));
    }
    if (!IsUtf8(decoded)) {
      return absl::InvalidArgumentError(absl::StrCat("path segment ", Shown(segment), ": not UTF-8 once decoded"));
    }
  }
  std::string key, value;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    if (auto s = DecodeQueryParameter(pair, &key, &value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(absl::string_view text) {
  PathTemplate t;
  t.text_ = std::string(text);
  Parser parser(text);
  if (auto s = parser.Run(&t, &t.segments_, &t.variables_, &t.verb_); !s.ok()) return s;
  for (const auto& seg : t.segments_) {
    if (seg.kind == Kind::kLiteral) ++t.literal_count_;
    if (seg.kind == Kind::kMulti) t.has_multi_ = true;
  }
  return t;
}

std::vector<absl::string_view> SplitPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return {};
  path.remove_prefix(1);
  return absl::StrSplit(path, '/');
}

bool PathTemplate::Match(absl::string_view path, std::vector<std::string>* values) const {
  if (path.empty() || path[0] != '/') return false;
  return MatchParts(SplitPath(path), values);
}

bool PathTemplate::MatchParts(const std::vector<absl::string_view>& all_parts, std::vector<std::string>* values) const {
  if (all_parts.empty()) return false;
  // The verb is the suffix ":verb" of the last segment. Views only: this runs for every template.
  absl::string_view last = all_parts.back();
  if (!verb_.empty()) {
    if (last.size() <= verb_.size() + 1 || last[last.size() - verb_.size() - 1] != ':' ||
        last.substr(last.size() - verb_.size()) != verb_) {
      return false;
    }
    last.remove_suffix(verb_.size() + 1);
  }
  auto part = [&](size_t k) { return k + 1 == all_parts.size() ? last : all_parts[k]; };
  const size_t count = all_parts.size();
  size_t n = segments_.size();
  if (has_multi_) {
    if (count < n - 1) return false;  // "**" matches zero or more segments
  } else if (count != n) {
    return false;
  }
  // Segment i of the template covers parts [begin[i], end[i]).
  absl::InlinedVector<size_t, 16> begin(n + 1), end(n + 1);
  size_t p = 0;
  for (size_t i = 0; i < n; ++i) {
    const Segment& seg = segments_[i];
    begin[i] = p;
    if (seg.kind == Kind::kMulti) {
      p = count;
    } else {
      if (p >= count) return false;
      if (seg.kind == Kind::kLiteral && part(p) != seg.literal) return false;
      if (seg.kind == Kind::kSingle && part(p).empty()) return false;
      ++p;
    }
    end[i] = p;
  }
  if (p != count) return false;
  if (values == nullptr) return true;
  values->clear();
  values->reserve(variables_.size());
  for (const Variable& var : variables_) {
    size_t from = begin[var.start];
    size_t to = var.end > var.start ? end[var.end - 1] : from;
    std::string value;
    for (size_t k = from; k < to; ++k) {
      std::string decoded;
      if (!PercentDecode(part(k), /*plus_is_space=*/false, &decoded)) return false;
      if (k > from) value.push_back('/');
      value += decoded;
    }
    values->push_back(std::move(value));
  }
  return true;
}

}  // namespace clustergov::gateway

#include "common/list/filter.h"

#include <charconv>
#include <cstddef>
#include <optional>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status.h"

namespace clustergov {
namespace {

constexpr std::string_view kFilterField = "filter";
// How much user text an error description echoes back, and how many enum names it lists.
constexpr size_t kMaxEchoBytes = 40;
constexpr size_t kMaxListedNames = 8;

enum class Comparator { kEq, kNe, kHas, kLt, kLe, kGt, kGe };

const char* ComparatorText(Comparator op) {
  switch (op) {
    case Comparator::kEq:
      return "=";
    case Comparator::kNe:
      return "!=";
    case Comparator::kHas:
      return ":";
    case Comparator::kLt:
      return "<";
    case Comparator::kLe:
      return "<=";
    case Comparator::kGt:
      return ">";
    case Comparator::kGe:
      return ">=";
  }
  return "?";
}

const char* TypeName(FilterField::Type type) {
  switch (type) {
    case FilterField::Type::kString:
      return "string";
    case FilterField::Type::kInt:
      return "integer";
    case FilterField::Type::kEnum:
      return "enum";
    case FilterField::Type::kBool:
      return "boolean";
    case FilterField::Type::kRepeatedString:
      return "repeated string";
  }
  return "unknown";
}

// Debian's Abseil is built with its own absl::string_view rather than an alias of
// std::string_view, so std::string_view arguments to Abseil functions are converted explicitly.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Characters of a field name (and of the keywords AND, OR, NOT).
bool IsNameChar(char c) { return IsAsciiAlnum(c) || c == '_' || c == '.'; }

// Characters of an unquoted value. Bytes >= 0x80 are admitted so that UTF-8 text needs no quotes.
bool IsBareValueChar(char c) {
  return IsAsciiAlnum(c) || c == '_' || c == '-' || c == '.' || c == '/' || c == '*' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool IsKeyword(std::string_view word) { return word == "AND" || word == "OR" || word == "NOT"; }

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is not well formed.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  size_t len = 0;
  uint32_t min_code = 0;
  uint32_t code = 0;
  if (lead < 0x80) {
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    min_code = 0x80;
    code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    min_code = 0x800;
    code = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    min_code = 0x10000;
    code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      return 0;
    }
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
    return 0;
  }
  return len;
}

// Renders user text for an error description: double-quoted, at most kMaxEchoBytes long, and
// always valid UTF-8 (error details travel in proto3 string fields, which must be UTF-8).
std::string Echo(std::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    if (i >= kMaxEchoBytes) {
      out += "...";
      break;
    }
    const char c = text[i];
    const size_t len = Utf8SequenceLength(text, i);
    if (len > 1) {
      out.append(text.substr(i, len));
      i += len;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (len == 1 && c >= 0x20 && c < 0x7F) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto b = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0x0F];
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string ListNames(const std::vector<std::string_view>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == kMaxListedNames) {
      absl::StrAppend(&out, ", ... (", names.size() - i, " more)");
      break;
    }
    absl::StrAppend(&out, i == 0 ? "" : ", ", AbslView(names[i]));
  }
  return out;
}

size_t CountPlaceholders(std::string_view sql) {
  size_t n = 0;
  for (char c : sql) {
    if (c == '?') {
      ++n;
    }
  }
  return n;
}

// Recursive-descent parser that emits SQL while it parses. Every emitted fragment is
// parenthesized, and arguments are appended in the same left-to-right order as their '?'.
class FilterCompiler {
 public:
  FilterCompiler(std::string_view text, const std::vector<FilterField>& fields)
      : text_(text), fields_(fields) {}

  absl::StatusOr<SqlFilter> Compile() {
    SqlFilter result;
    SkipSpace();
    if (AtEnd()) {
      result.where = "1 = 1";
      return result;
    }
    CG_ASSIGN_OR_RETURN(result.where, ParseExpression(/*depth=*/0));
    SkipSpace();
    if (!AtEnd()) {
      return ErrorAfterExpression(/*open_paren=*/std::nullopt);
    }
    result.args = std::move(args_);
    return result;
  }

 private:
  // expression := factor { "AND" factor }   (a sequence is exactly one factor)
  absl::StatusOr<std::string> ParseExpression(int depth) {
    std::vector<std::string> parts;
    CG_ASSIGN_OR_RETURN(std::string first, ParseFactor(depth));
    parts.push_back(std::move(first));
    while (ConsumeKeyword("AND")) {
      CG_ASSIGN_OR_RETURN(std::string next, ParseFactor(depth));
      parts.push_back(std::move(next));
    }
    return Combine(parts, " AND ");
  }

  // factor := term { "OR" term }
  absl::StatusOr<std::string> ParseFactor(int depth) {
    std::vector<std::string> parts;
    CG_ASSIGN_OR_RETURN(std::string first, ParseTerm(depth));
    parts.push_back(std::move(first));
    while (ConsumeKeyword("OR")) {
      CG_ASSIGN_OR_RETURN(std::string next, ParseTerm(depth));
      parts.push_back(std::move(next));
    }
    return Combine(parts, " OR ");
  }

  // term := [ "NOT" | "-" ] simple
  absl::StatusOr<std::string> ParseTerm(int depth) {
    SkipSpace();
    bool negate = false;
    if (!AtEnd() && text_[pos_] == '-') {
      ++pos_;
      negate = true;
    } else if (ConsumeKeyword("NOT")) {
      negate = true;
    }
    CG_ASSIGN_OR_RETURN(std::string inner, ParseSimple(depth));
    if (negate) {
      return absl::StrCat("(NOT ", inner, ")");
    }
    return inner;
  }

  // simple := restriction | "(" expression ")"
  absl::StatusOr<std::string> ParseSimple(int depth) {
    SkipSpace();
    if (AtEnd()) {
      return Error(absl::StrCat("expected a restriction or '(' at column ", Column(),
                                ", found end of filter"));
    }
    if (text_[pos_] != '(') {
      return ParseRestriction();
    }
    const size_t open_paren = pos_;
    if (depth >= kMaxFilterDepth) {
      return Error(absl::StrCat("parentheses nested deeper than ", kMaxFilterDepth,
                                " levels at column ", Column()));
    }
    ++pos_;
    CG_ASSIGN_OR_RETURN(std::string inner, ParseExpression(depth + 1));
    SkipSpace();
    if (AtEnd() || text_[pos_] != ')') {
      return ErrorAfterExpression(open_paren);
    }
    ++pos_;
    return inner;
  }

  // restriction := field comparator value
  absl::StatusOr<std::string> ParseRestriction() {
    const size_t field_pos = pos_;
    const std::string_view name = ReadWhile(IsNameChar);
    if (name.empty()) {
      return Error(absl::StrCat("expected a field name or '(' at column ", Column(field_pos),
                                ", found ", EchoCharAt(field_pos)));
    }
    if (IsKeyword(name)) {
      return Error(
          absl::StrCat("unexpected keyword ", AbslView(name), " at column ", Column(field_pos)));
    }
    const FilterField* field = FindField(name);
    if (field == nullptr) {
      std::vector<std::string_view> known;
      known.reserve(fields_.size());
      for (const FilterField& f : fields_) {
        known.push_back(f.name);
      }
      return Error(absl::StrCat("unknown field ", Echo(name), " at column ", Column(field_pos),
                                known.empty() ? "; no field is filterable"
                                              : "; filterable fields: ",
                                ListNames(known)));
    }

    SkipSpace();
    const size_t op_pos = pos_;
    const std::optional<Comparator> op = ReadComparator();
    if (!op.has_value()) {
      return Error(absl::StrCat("expected a comparator (=, !=, :, <, <=, >, >=) after field ",
                                Echo(name), " at column ", Column(op_pos), ", found ",
                                EchoCharAt(op_pos)));
    }

    SkipSpace();
    const size_t value_pos = pos_;
    CG_ASSIGN_OR_RETURN(std::string value, ReadValue(*op));
    return EmitRestriction(*field, *op, op_pos, std::move(value), value_pos);
  }

  absl::StatusOr<std::string> EmitRestriction(const FilterField& field, Comparator op,
                                              size_t op_pos, std::string value,
                                              size_t value_pos) {
    const bool ordering = op == Comparator::kLt || op == Comparator::kLe ||
                          op == Comparator::kGt || op == Comparator::kGe;
    if (ordering && field.type != FilterField::Type::kInt) {
      return Error(absl::StrCat("comparator ", ComparatorText(op), " at column ", Column(op_pos),
                                " is only supported on integer fields; ", Echo(field.name),
                                " has type ", TypeName(field.type)));
    }
    const size_t expected_placeholders =
        field.type == FilterField::Type::kRepeatedString ? 1 : 0;
    if (CountPlaceholders(field.sql) != expected_placeholders) {
      return absl::InternalError(absl::StrCat("filter field \"", field.name,
                                              "\" is misconfigured: its SQL must contain ",
                                              expected_placeholders, " '?' placeholder(s)"));
    }

    // ":" on a scalar field means equality.
    const Comparator eq_op = op == Comparator::kHas ? Comparator::kEq : op;
    switch (field.type) {
      case FilterField::Type::kString:
        if (op == Comparator::kHas) {
          args_.emplace_back(std::move(value));
          return absl::StrCat("(instr(", field.sql, ", ?) > 0)");
        }
        args_.emplace_back(std::move(value));
        return absl::StrCat("(", field.sql, " ", ComparatorText(eq_op), " ?)");

      case FilterField::Type::kInt: {
        int64_t number = 0;
        const char* begin = value.data();
        const char* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(begin, end, number);
        if (value.empty() || ec != std::errc() || ptr != end) {
          return Error(absl::StrCat("invalid integer ", Echo(value), " for field ",
                                    Echo(field.name), " at column ", Column(value_pos)));
        }
        args_.emplace_back(number);
        return absl::StrCat("(", field.sql, " ", ComparatorText(eq_op), " ?)");
      }

      case FilterField::Type::kEnum: {
        const std::pair<std::string, int64_t>* match = nullptr;
        for (const auto& entry : field.enum_values) {
          if (entry.first == value) {
            match = &entry;
            break;
          }
        }
        if (match == nullptr) {
          std::vector<std::string_view> names;
          names.reserve(field.enum_values.size());
          for (const auto& entry : field.enum_values) {
            names.push_back(entry.first);
          }
          return Error(absl::StrCat("invalid value ", Echo(value), " for enum field ",
                                    Echo(field.name), " at column ", Column(value_pos),
                                    "; allowed: ", ListNames(names)));
        }
        args_.emplace_back(match->second);
        return absl::StrCat("(", field.sql, " ", ComparatorText(eq_op), " ?)");
      }

      case FilterField::Type::kBool: {
        int64_t flag = 0;
        if (value == "true") {
          flag = 1;
        } else if (value != "false") {
          return Error(absl::StrCat("invalid boolean ", Echo(value), " for field ",
                                    Echo(field.name), " at column ", Column(value_pos),
                                    "; expected true or false"));
        }
        args_.emplace_back(flag);
        return absl::StrCat("(", field.sql, " ", ComparatorText(eq_op), " ?)");
      }

      case FilterField::Type::kRepeatedString:
        if (op == Comparator::kNe) {
          args_.emplace_back(std::move(value));
          return absl::StrCat("(NOT (", field.sql, "))");
        }
        args_.emplace_back(std::move(value));
        return absl::StrCat("(", field.sql, ")");
    }
    return absl::InternalError("unhandled filter field type");
  }

  // Reads a quoted string or a bare word at pos_.
  absl::StatusOr<std::string> ReadValue(Comparator op) {
    if (AtEnd()) {
      return Error(absl::StrCat("expected a value after '", ComparatorText(op), "' at column ",
                                Column(), ", found end of filter"));
    }
    const size_t start = pos_;
    if (text_[pos_] != '"') {
      const std::string_view word = ReadWhile(IsBareValueChar);
      if (word.empty()) {
        return Error(absl::StrCat("expected a value at column ", Column(start), ", found ",
                                  EchoCharAt(start)));
      }
      if (IsKeyword(word)) {
        return Error(absl::StrCat("expected a value at column ", Column(start),
                                  ", found keyword ", AbslView(word), " (quote it to match the word)"));
      }
      return std::string(word);
    }
    ++pos_;
    std::string value;
    while (!AtEnd()) {
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return value;
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) {
          break;
        }
        const char escaped = text_[pos_ + 1];
        if (escaped != '"' && escaped != '\\') {
          return Error(absl::StrCat("unsupported escape sequence ",
                                    Echo(text_.substr(pos_, 2)), " at column ", Column(),
                                    "; only \\\" and \\\\ are allowed"));
        }
        value += escaped;
        pos_ += 2;
        continue;
      }
      value += c;
      ++pos_;
    }
    return Error(absl::StrCat("unterminated string starting at column ", Column(start)));
  }

  std::optional<Comparator> ReadComparator() {
    if (AtEnd()) {
      return std::nullopt;
    }
    const char c = text_[pos_];
    const char next = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
    switch (c) {
      case '=':
        pos_ += 1;
        return Comparator::kEq;
      case ':':
        pos_ += 1;
        return Comparator::kHas;
      case '!':
        if (next == '=') {
          pos_ += 2;
          return Comparator::kNe;
        }
        return std::nullopt;
      case '<':
        if (next == '=') {
          pos_ += 2;
          return Comparator::kLe;
        }
        pos_ += 1;
        return Comparator::kLt;
      case '>':
        if (next == '=') {
          pos_ += 2;
          return Comparator::kGe;
        }
        pos_ += 1;
        return Comparator::kGt;
      default:
        return std::nullopt;
    }
  }

  // Reports why an expression did not end where it had to: at the end of the filter
  // (open_paren empty) or at the ')' matching the '(' at open_paren.
  absl::Status ErrorAfterExpression(std::optional<size_t> open_paren) {
    if (AtEnd()) {
      if (!open_paren.has_value()) {
        return Error(absl::StrCat("unexpected end of filter at column ", Column()));
      }
      return Error(absl::StrCat("unbalanced parentheses: '(' at column ", Column(*open_paren),
                                " is never closed"));
    }
    const char c = text_[pos_];
    if (c == ')') {
      return Error(absl::StrCat("unbalanced parentheses: ')' at column ", Column(),
                                " has no matching '('"));
    }
    if (IsNameChar(c) || c == '(' || c == '-' || c == '"') {
      return Error(absl::StrCat("expected AND, OR", open_paren.has_value() ? ", ')'" : "",
                                " or end of filter at column ", Column(),
                                "; adjacent terms must be joined with an explicit AND"));
    }
    return Error(absl::StrCat("unexpected ", EchoCharAt(pos_), " at column ", Column()));
  }

  // Consumes `keyword` if it is the next word (after whitespace), as a whole word.
  bool ConsumeKeyword(std::string_view keyword) {
    SkipSpace();
    size_t end = pos_;
    while (end < text_.size() && IsNameChar(text_[end])) {
      ++end;
    }
    if (text_.substr(pos_, end - pos_) != keyword) {
      return false;
    }
    pos_ = end;
    return true;
  }

  const FilterField* FindField(std::string_view name) const {
    for (const FilterField& field : fields_) {
      if (field.name == name) {
        return &field;
      }
    }
    return nullptr;
  }

  std::string_view ReadWhile(bool (*accept)(char)) {
    const size_t start = pos_;
    while (pos_ < text_.size() && accept(text_[pos_])) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  std::string Combine(std::vector<std::string>& parts, const char* separator) {
    if (parts.size() == 1) {
      return std::move(parts[0]);
    }
    return absl::StrCat("(", absl::StrJoin(parts, separator), ")");
  }

  std::string EchoCharAt(size_t pos) const {
    if (pos >= text_.size()) {
      return "end of filter";
    }
    const size_t len = Utf8SequenceLength(text_, pos);
    return Echo(text_.substr(pos, len == 0 ? 1 : len));
  }

  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) {
      ++pos_;
    }
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  size_t Column() const { return pos_ + 1; }
  static size_t Column(size_t pos) { return pos + 1; }

  static absl::Status Error(std::string_view description) {
    return InvalidField(AbslView(kFilterField), AbslView(description));
  }

  std::string_view text_;
  const std::vector<FilterField>& fields_;
  size_t pos_ = 0;
  std::vector<SqlValue> args_;
};

}  // namespace

absl::StatusOr<SqlFilter> CompileFilter(std::string_view filter,
                                        const std::vector<FilterField>& fields) {
  if (filter.size() > kMaxFilterLength) {
    return InvalidField(AbslView(kFilterField), absl::StrCat("filter is ", filter.size(),
                                                   " bytes long; the limit is ",
                                                   kMaxFilterLength));
  }
  return FilterCompiler(filter, fields).Compile();
}

}  // namespace clustergov

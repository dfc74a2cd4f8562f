#pragma once

// A google.api.http path template (google/api/http.proto grammar):
//
//   Template = "/" Segments [ Verb ] ;
//   Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   Verb     = ":" LITERAL ;
//
// parsed once into flat segments and variables, then matched against request paths.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clustergov::gateway {

class PathTemplate {
 public:
  enum class Kind { kLiteral, kSingle, kMulti };  // "abc", "*", "**"
  struct Segment {
    Kind kind;
    std::string literal;
  };
  struct Variable {
    std::vector<std::string> field_path;  // {"task_progress", "name"}
    int start = 0;                        // first segment it binds
    int end = 0;                          // one past its last segment
  };

  // INVALID_ARGUMENT naming the problem when `text` is not a valid template.
  static absl::StatusOr<PathTemplate> Parse(absl::string_view text);

  // Matches a request path (without the query, still percent-encoded). On a match fills
  // `values` with one percent-decoded value per variable, in variables() order.
  bool Match(absl::string_view path, std::vector<std::string>* values) const;
  // The same on a path already split at '/' (without the leading one): the route table splits a
  // request path once for all templates.
  bool MatchParts(const std::vector<absl::string_view>& parts, std::vector<std::string>* values) const;

  const std::string& text() const { return text_; }
  const std::string& verb() const { return verb_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Variable>& variables() const { return variables_; }
  // Literal segments: a route with more of them wins when two templates match one path.
  int literal_count() const { return literal_count_; }

 private:
  std::string text_;
  std::string verb_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  int literal_count_ = 0;
  bool has_multi_ = false;
};

// "/v1/clusters/x" -> {"v1", "clusters", "x"}; empty when `path` does not start with '/'.
std::vector<absl::string_view> SplitPath(absl::string_view path);

// Percent-decodes `in`; `plus_is_space` for query strings. False on a malformed escape.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out);

// Decodes one query parameter, "key=value" or "key" (an empty value). INVALID_ARGUMENT saying
// what is wrong when an escape is malformed ("%zz") or the decoded text is not UTF-8.
absl::Status DecodeQueryParameter(absl::string_view pair, std::string* key, std::string* value);

// A request target's path (still percent-encoded) and query, checked before any routing: every
// path segment and query parameter must decode (no malformed escape) to UTF-8 text.
// INVALID_ARGUMENT naming the part otherwise.
absl::Status CheckRequestTarget(absl::string_view path, absl::string_view query);

}  // namespace clustergov::gateway

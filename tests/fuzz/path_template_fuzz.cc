// Fuzzes google.api.http path templates and request path matching (services/gateway/
// path_template.h, routes.h). Input: a template, a newline, a request path. A template either
// parses or is refused with INVALID_ARGUMENT; a parsed one matches a path built from it, with one
// value per variable; any path is matched against the template and the real routes without harm.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "services/gateway/path_template.h"
#include "tests/fuzz/gateway_routes.h"

namespace {

using clustergov::gateway::PathTemplate;

// A request path the template must match: literals as written, "*" as one segment, "**" as two.
std::string PathFor(const PathTemplate& t) {
  std::vector<std::string> parts;
  for (const auto& seg : t.segments()) {
    switch (seg.kind) {
      case PathTemplate::Kind::kLiteral:
        parts.push_back(seg.literal);
        break;
      case PathTemplate::Kind::kSingle:
        parts.push_back("x");
        break;
      case PathTemplate::Kind::kMulti:
        parts.push_back("m1/m2");
        break;
    }
  }
  std::string path = "/" + absl::StrJoin(parts, "/");
  if (!t.verb().empty()) path += ":" + t.verb();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input = clustergov::fuzz::AsView(data, size);
  auto pieces = clustergov::fuzz::SplitInput(input, '\n', 2);
  absl::string_view text = pieces[0];
  absl::string_view path = pieces.size() > 1 ? pieces[1] : absl::string_view("/");

  std::vector<std::string> values;
  auto parsed = PathTemplate::Parse(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument, parsed.status().ToString());
  } else {
    const PathTemplate& t = *parsed;
    FUZZ_CHECK(!t.segments().empty(), text);
    for (const auto& var : t.variables()) {
      FUZZ_CHECK(var.start >= 0 && var.start < var.end && var.end <= static_cast<int>(t.segments().size()), text);
      FUZZ_CHECK(!var.field_path.empty(), text);
    }
    // Literals with '%' are compared as written but decoded inside a variable: leave those out.
    bool plain = !absl::StrContains(text, '%');
    if (plain) {
      std::string own = PathFor(t);
      FUZZ_CHECK(t.Match(own, &values), std::string(text) + " does not match " + own);
      FUZZ_CHECK(values.size() == t.variables().size(), own);
    }
    if (t.Match(path, &values)) FUZZ_CHECK(values.size() == t.variables().size(), path);
  }

  // The path against the gateway's routes.
  const auto& routes = clustergov::fuzz::Routes();
  for (const char* method : {"GET", "POST", "PATCH", "DELETE"}) {
    auto match = routes.Match(method, path);
    if (match.route != nullptr) {
      FUZZ_CHECK(match.values.size() == match.route->variable_fields.size(), path);
    }
  }
  std::string decoded;
  clustergov::gateway::PercentDecode(path, /*plus_is_space=*/true, &decoded);
  return 0;
}

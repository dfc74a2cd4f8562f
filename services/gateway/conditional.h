#pragma once

// Conditional requests (RFC 9110 §13.1): the entity-tag lists of If-Match and If-None-Match and
// how each compares them with a resource's etag. The gateway's ETag is always strong ("abc").

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clustergov::gateway {

struct EntityTag {
  std::string opaque;  // without the quotes
  bool weak = false;   // W/"..."
};

// "*" or a comma-separated list of entity tags.
struct EntityTagList {
  bool any = false;  // "*"
  std::vector<EntityTag> tags;
};

// Parses the value of `header` (If-Match or If-None-Match): "*", or a list of `"abc"` and
// `W/"abc"` (empty elements skipped). A bare `abc` is read as `"abc"`, so a client may echo a
// resource's `etag` field as it is. INVALID_ARGUMENT naming the header when the value is none of
// these ("*" inside a list, an unclosed quote, ...).
absl::StatusOr<EntityTagList> ParseEntityTags(absl::string_view header, absl::string_view value);

// If-None-Match with weak comparison (§13.1.2): true when `list` matches `current` (the
// resource's etag, unquoted; empty when it has none), i.e. a GET answers 304.
bool NoneMatchHolds(const EntityTagList& list, absl::string_view current);

// If-Match with strong comparison (§13.1.1), for a write the service checks against the etag it
// is sent: the etag to send ("" for "*": any current version), or ABORTED when no listed tag
// can match (weak tags never match strongly), the answer a service gives for a stale etag; a
// list of several different strong tags is INVALID_ARGUMENT (the service compares with one).
absl::StatusOr<std::string> IfMatchEtag(const EntityTagList& list);

}  // namespace clustergov::gateway

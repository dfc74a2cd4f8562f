#pragma once

// Errors below the RPC layer are absl::Status with canonical codes. Field-level validation
// errors carry a google.rpc.BadRequest payload, which the server edge turns into status details.

#include "absl/strings/string_view.h"
#include <string>

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace clustergov {

struct FieldViolation {
  std::string field;
  std::string description;
};

// The payload type URL under which field violations travel inside an absl::Status.
inline constexpr absl::string_view kBadRequestTypeUrl =
    "type.googleapis.com/google.rpc.BadRequest";

// INVALID_ARGUMENT naming one field.
absl::Status InvalidField(absl::string_view field, absl::string_view description);
// INVALID_ARGUMENT naming several fields; OK when `violations` is empty.
absl::Status InvalidFields(const std::vector<FieldViolation>& violations);
// The field violations carried by `status` (empty when none).
std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);

// `text` if it has at most `max_bytes` bytes; otherwise its longest prefix that ends on a UTF-8
// character boundary and leaves room for a marker saying how long the whole was, plus the marker:
// "abc... (65536 bytes)". For echoing input into errors and logs.
std::string Abbreviate(absl::string_view text, size_t max_bytes);

// Collects violations while validating a request, then reports them all at once.
class FieldErrors {
 public:
  void Add(absl::string_view field, absl::string_view description) {
    violations_.push_back({std::string(field), std::string(description)});
  }
  bool empty() const { return violations_.empty(); }
  absl::Status ToStatus() const { return InvalidFields(violations_); }

 private:
  std::vector<FieldViolation> violations_;
};

}  // namespace clustergov

#define CG_STATUS_CONCAT_INNER(a, b) a##b
#define CG_STATUS_CONCAT(a, b) CG_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define CG_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status cg_status_ = (expr);           \
    if (!cg_status_.ok()) return cg_status_;      \
  } while (0)

// `CG_ASSIGN_OR_RETURN(auto x, Foo());` — unwraps a StatusOr or returns its error.
#define CG_ASSIGN_OR_RETURN(lhs, expr) \
  CG_ASSIGN_OR_RETURN_IMPL(CG_STATUS_CONCAT(cg_statusor_, __LINE__), lhs, expr)
#define CG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(*tmp)

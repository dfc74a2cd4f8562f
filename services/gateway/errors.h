#pragma once

// Errors as the gateway answers them: the canonical gRPC code -> HTTP status table, and the JSON
// body {"code", "message", "details"} (google.rpc.Status in the protobuf JSON mapping), whose
// details carry google.rpc.BadRequest field violations.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/gateway/http_request.h"

namespace clustergov::gateway {

// INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE 400; UNAUTHENTICATED 401;
// PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS, ABORTED 409; RESOURCE_EXHAUSTED 429;
// CANCELLED 499; UNIMPLEMENTED 501; UNAVAILABLE 503; DEADLINE_EXCEEDED 504; others 500.
int HttpStatusFromCode(int grpc_code);

// The body for a backend's status; `status_details` is its grpc-status-details-bin (a serialized
// google.rpc.Status), possibly empty.
std::string ErrorBody(int grpc_code, absl::string_view message, const std::string& status_details);

// The body for one of the gateway's own errors, with the status's field violations.
std::string ErrorBody(const absl::Status& status);

// One of the gateway's own errors as an answer: `http_status` with ErrorBody(status).
HttpResponse ErrorResponse(int http_status, const absl::Status& status);

// 405 for a path that answers GET only, with `Allow: GET`.
HttpResponse GetOnlyResponse(absl::string_view method, absl::string_view path);

}  // namespace clustergov::gateway

#pragma once

// The one mapping from absl::Status to grpc::Status, at the RPC edge. Field violations become a
// google.rpc.Status with google.rpc.BadRequest details (grpc-status-details-bin). INTERNAL,
// UNKNOWN and DATA_LOSS never carry internal detail to the caller: the detail is logged.
//
// What reaches the caller is bounded, whatever the input it echoes (a 64 KB field value quoted in
// a description): the message to kMaxStatusMessageBytes, each violation's field and description
// to kMaxViolationFieldBytes / kMaxViolationDescriptionBytes, and the violations together to
// kMaxViolationsBytes (the first ones are kept). Abbreviated text ends in "... (<n> bytes)". So
// the trailers stay a few KB, within every client's metadata limit (8 KB by default in gRPC).

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace clustergov::server {

inline constexpr size_t kMaxStatusMessageBytes = 512;
inline constexpr size_t kMaxViolationFieldBytes = 128;
inline constexpr size_t kMaxViolationDescriptionBytes = 256;
inline constexpr size_t kMaxViolationsBytes = 1536;

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace clustergov::server

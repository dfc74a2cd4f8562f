#pragma once

// The one mapping from absl::Status to grpc::Status, at the RPC edge. Field violations become a
// google.rpc.Status with google.rpc.BadRequest details (grpc-status-details-bin). INTERNAL,
// UNKNOWN and DATA_LOSS never carry internal detail to the caller: the detail is logged.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace clustergov::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace clustergov::server

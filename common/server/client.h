#pragma once

// Outgoing gRPC calls between services: channels are made once and reused; every call gets a
// deadline derived from the incoming call and carries its authorization and request id.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/server/call.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace clustergov::server {

// A channel to `target` ("host:port", or "dns:///name:port" for several addresses, balanced
// round-robin per call).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, int max_message_bytes = 4 * 1024 * 1024);

// A client context for a call made while serving `call`: deadline = min(incoming deadline,
// now + timeout), cancellation propagated, authorization and x-request-id forwarded (or, for a
// service's own calls, call.own_token as the bearer token).
std::unique_ptr<grpc::ClientContext> OutgoingContext(const CallContext& call, absl::Duration timeout);

}  // namespace clustergov::server

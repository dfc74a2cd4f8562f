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

struct ChannelOptions {
  int max_message_bytes = 4 * 1024 * 1024;
  // Reconnection (gRPC's defaults): a connection attempt gets at least `connect_timeout`; the waits
  // between attempts grow from `initial_reconnect_backoff` to `max_reconnect_backoff`.
  absl::Duration connect_timeout = absl::Seconds(20);
  // At most 10 s (gRPC's default is 120 s): a dependency back after an outage is found again
  // within seconds.
  absl::Duration initial_reconnect_backoff = absl::Seconds(1);
  absl::Duration max_reconnect_backoff = absl::Seconds(10);
};

// The one way clustergov makes a client channel (services and the gateway): a channel to
// `target` ("host:port", "ipv4:a:p,b:q", or "dns:///name:port" for several addresses), balanced
// round-robin per call, re-resolving DNS at most once a second, with keepalive.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const ChannelOptions& options);
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, int max_message_bytes = 4 * 1024 * 1024);

// A client context for a call made while serving `call`: deadline = min(incoming deadline,
// now + timeout), cancellation propagated, authorization and x-request-id forwarded (or, for a
// service's own calls, call.own_token as the bearer token). Wait-for-ready: a call made while the
// channel is between connection attempts (the dependency starting or restarting) waits for the
// connection within its deadline instead of failing at once; a dependency that stays down fails
// the call when the deadline passes.
std::unique_ptr<grpc::ClientContext> OutgoingContext(const CallContext& call, absl::Duration timeout);

}  // namespace clustergov::server

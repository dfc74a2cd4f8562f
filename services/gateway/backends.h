#pragma once

// The gRPC services behind the gateway, from --backend flags: one reused channel set per service,
// round-robin over its addresses, unary calls through the generic stub with the callback API (no
// thread waits on a backend), and the standard health check for /readyz. gRPC headers stay in
// backends.cc.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace clustergov::gateway {

struct BackendSpec {
  std::string service;                 // "clustergov.clusters.v1.ClustersService"
  std::vector<std::string> addresses;  // "host:port"
};

// Parses --backend values: entries "Service=host:port[,host:port...]" separated by ',', ';' or
// whitespace; a token without '=' adds an address to the service before it. INVALID_ARGUMENT
// naming the bad entry.
absl::StatusOr<std::vector<BackendSpec>> ParseBackendSpecs(const std::vector<std::string>& values);

struct BackendOptions {
  int max_message_bytes = 4 * 1024 * 1024;
  // A connection attempt gets this long to finish its HTTP/2 handshake.
  absl::Duration connect_timeout = absl::Seconds(2);
  // Reconnection backoff bounds: a restarted backend is found again within max_reconnect_backoff.
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(100);
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
};

struct CallMetadata {
  std::string authorization;  // passed through as `authorization`
  std::string request_id;     // `x-request-id`
  std::string forwarded_for;  // `x-forwarded-for`
  absl::Duration timeout = absl::Seconds(10);
};

struct CallResult {
  int code = 0;  // grpc::StatusCode
  std::string message;
  std::string details;   // grpc-status-details-bin: a serialized google.rpc.Status
  std::string response;  // the response message's wire bytes when code == 0
};

struct BackendHealth {
  std::string service;
  bool serving = false;
  std::string state;  // "SERVING", "NOT_SERVING", "UNAVAILABLE: ..."
};

class Backends {
 public:
  static absl::StatusOr<std::unique_ptr<Backends>> Create(const std::vector<BackendSpec>& specs,
                                                          const BackendOptions& options);
  ~Backends();  // cancels calls still running and waits for their callbacks

  bool Has(absl::string_view service) const;
  std::vector<std::string> services() const;

  // Starts a unary call of `method` ("/pkg.Service/Method") on `service`'s backend. `done` runs
  // exactly once, on a gRPC thread; it must not block.
  void Call(absl::string_view service, const std::string& method, std::string request, const CallMetadata& metadata,
            std::function<void(CallResult)> done);

  // grpc.health.v1.Health/Check ("" = the whole server) on every backend, concurrently.
  void CheckHealth(absl::Duration timeout, std::function<void(std::vector<BackendHealth>)> done);

  // Cancels every call in flight; WaitIdle then waits (up to `timeout`) for their callbacks.
  void CancelAll();
  bool WaitIdle(absl::Duration timeout);

  struct Impl;

 private:
  explicit Backends(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustergov::gateway

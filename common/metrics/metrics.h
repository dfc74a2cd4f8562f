#pragma once

// Prometheus metrics of one process: the registry every component registers into, the HTTP
// exposer on its own port, the build-info gauge, and the gRPC server metrics interceptor with the
// names and labels of go-grpc-prometheus (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_handling_seconds), so existing dashboards work unchanged. Label values come only
// from the methods the process serves (and one "unknown" set), never from what a client sends.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/server_interceptor.h"

namespace prometheus {
class Registry;
class Exposer;
}  // namespace prometheus

namespace clustergov::metrics {

class GrpcServerMetrics;

class Metrics {
 public:
  Metrics(std::string service, std::string version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  // Serves /metrics on `address` ("0.0.0.0:9464"; port 0 picks one). Clear error when the port
  // is taken.
  absl::Status StartExposer(const std::string& address);
  // The port /metrics is served on (0 before StartExposer).
  int exposer_port() const { return exposer_port_; }

  // Whether this process serves `full_method` ("/package.Service/Method").
  using ServedFilter = std::function<bool(std::string_view full_method)>;
  // An interceptor factory recording the standard gRPC server metrics into this registry. Only
  // methods `served` accepts get series of their own; every other name a client sends shares
  // grpc_service="unknown", grpc_method="unknown", so callers cannot add series.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CreateInterceptorFactory(
      ServedFilter served);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<GrpcServerMetrics> grpc_;
  int exposer_port_ = 0;
};

// The go-grpc-prometheus name of a status code ("OK", "InvalidArgument", ...).
const char* GrpcCodeName(int code);

}  // namespace clustergov::metrics

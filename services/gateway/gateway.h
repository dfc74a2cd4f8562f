#pragma once

// clustergov-gateway: the REST/JSON front door. Routes come from the google.api.http annotations
// in a FileDescriptorSet; each request is transcoded to a unary gRPC call on the service's backend
// through a generic stub, and the reply back to JSON. Also: canonical error mapping, bearer-token
// pass-through, request ids, deadlines, ETag/If-Match, CORS, security headers, per-client rate
// limiting, /healthz, /readyz, /openapi.json, the web console's files under `/`, Prometheus
// metrics on their own port, graceful shutdown.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/gateway/backends.h"
#include "services/gateway/http_server.h"
#include "services/gateway/transcoder.h"

namespace clustergov::metrics {
class Metrics;
}  // namespace clustergov::metrics

namespace clustergov::gateway {

class HttpMetrics;
class RateLimiter;
class RouteTable;
class StaticFiles;

struct GatewayConfig {
  HttpServerOptions http;                       // listen address, I/O threads, body limit, timeouts
  std::string metrics_listen = "0.0.0.0:9460";  // Prometheus /metrics; empty disables
  std::string descriptor_set;                   // FileDescriptorSet path (protoc --include_imports)
  std::vector<BackendSpec> backends;
  BackendOptions backend_options;
  absl::Duration backend_timeout = absl::Seconds(10);  // deadline of every backend call
  absl::Duration readiness_timeout = absl::Seconds(1);
  std::vector<std::string> cors_origins;                 // exact origins, or "*" for any
  double rate_limit_rps = 0;                             // per client IP; 0 disables
  double rate_limit_burst = 0;                           // 0: 2 x rps
  absl::Duration pre_stop_delay = absl::ZeroDuration();  // /readyz 503 before draining
  absl::Duration drain_timeout = absl::Seconds(10);
  JsonOutputOptions json;
  bool access_log = true;  // one log line per request (false: 5xx answers only)
  // The web console's built files, served under `/` beside the API (static_files.h); empty: none.
  std::string console_dir;
  size_t console_max_bytes = 64 * 1024 * 1024;
  std::string version = "0.1.0";
};

class Gateway {
 public:
  // Loads the descriptors and builds routes and backend channels; INVALID_ARGUMENT naming what is
  // wrong (unreadable descriptor set, bad annotation, bad backend address).
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(GatewayConfig config);
  ~Gateway();

  // Starts /metrics and the HTTP server.
  absl::Status Start();
  int port() const;
  int metrics_port() const;
  const RouteTable& routes() const { return *routes_; }
  const std::string& openapi() const { return openapi_; }

  // /readyz answers 503, waits the pre-stop delay, stops accepting, lets requests in flight finish
  // within the drain timeout, then cancels what is left. Idempotent.
  void Shutdown();
  // Blocks until SIGTERM or SIGINT (blocked beforehand with server::BlockTerminationSignals),
  // then Shutdown(). Returns the signal.
  int ServeUntilSignal();

  // Answers one request; public for the server and for tests.
  void Handle(HttpRequest request, Responder respond);

 private:
  explicit Gateway(GatewayConfig config);
  struct Exchange;

  bool OriginAllowed(absl::string_view origin) const;
  void HandleBuiltin(const std::shared_ptr<Exchange>& ex, absl::string_view path);
  void HandlePreflight(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path);
  void HandleConsole(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path);
  void HandleRoute(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path,
                   absl::string_view query);

  GatewayConfig config_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<Transcoder> transcoder_;
  std::unique_ptr<Backends> backends_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<StaticFiles> console_;  // null: no console
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<HttpMetrics> http_metrics_;
  std::unique_ptr<HttpServer> http_;
  std::string openapi_;
  bool allow_any_origin_ = false;
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;
};

}  // namespace clustergov::gateway

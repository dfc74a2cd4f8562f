#pragma once

// An HTTP/1.1 server on Boost.Beast/Asio: a few I/O threads serve every connection
// asynchronously (keep-alive, pipelined requests answered in order, no thread per connection).
// The handler answers through a Responder that may be called later from any thread, so request
// handling never blocks an I/O thread. Each request is read as ParseHttpRequest (http_request.h)
// reads one from bytes. Beast stays inside http_server.cc and http_request.cc; Boost's exceptions
// are caught there.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/gateway/http_request.h"

namespace clustergov::gateway {

// Call exactly once, from any thread.
using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, Responder)>;

struct HttpServerOptions {
  std::string listen = "0.0.0.0:8080";  // port 0 picks one
  int io_threads = 2;
  size_t max_body_bytes = 1024 * 1024;
  size_t max_header_bytes = 16 * 1024;
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive connections with no request
  absl::Duration io_timeout = absl::Seconds(30);    // reading a started request, writing a response
};

class HttpServer {
 public:
  // Binds and starts the I/O threads. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpHandler handler);
  ~HttpServer();

  int port() const;
  // Requests read and not yet answered.
  int in_flight() const;
  // Stops accepting; idle keep-alive connections are closed, and busy ones after their current
  // response; waits up to `drain` for responses in flight, then stops the I/O threads. Idempotent.
  void Shutdown(absl::Duration drain);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustergov::gateway

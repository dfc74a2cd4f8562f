#pragma once

// One HTTP/1.1 request and its answer as the gateway's handler sees them, and the parsing of a
// request from bytes: the steps the server runs on every connection (http_server.cc), without
// the socket, so that they can be tested and fuzzed alone.

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace clustergov::gateway {

struct HttpRequest {
  std::string method;                                        // "GET"
  std::string target;                                        // "/v1/clusters?pageSize=2"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string client_ip;
  // 0, or the status the server already decided on while reading: 413 (body too large), 431
  // (header too large) or 400 (malformed request). The handler still writes the answer; the
  // connection is closed after it.
  int read_error = 0;

  // The first header named `name` (lower case), or "".
  absl::string_view Header(absl::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A request read from a connection, with what its answer needs.
struct ParsedHttpRequest {
  HttpRequest request;     // client_ip is left empty
  unsigned version = 11;   // the answer's HTTP version (11: HTTP/1.1)
  bool keep_alive = false; // whether the connection stays open after the answer
};

// What the server makes of the first request on a connection whose client sent `bytes` and then
// closed its sending side: the header is refused beyond `max_header_bytes` (431), the body beyond
// `max_body_bytes` (413), a malformed or truncated request is a 400. std::nullopt when the server
// answers nothing (no request began). `consumed` (optional) receives the number of bytes the
// request took: a pipelined next request starts there.
std::optional<ParsedHttpRequest> ParseHttpRequest(absl::string_view bytes, size_t max_header_bytes,
                                                  size_t max_body_bytes, size_t* consumed = nullptr);

}  // namespace clustergov::gateway

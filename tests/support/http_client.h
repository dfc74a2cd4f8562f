#pragma once

// A tiny HTTP/1.1 client for tests that go through the gateway: one keep-alive connection to
// 127.0.0.1, requests written raw (so tests can also send what a real client never would),
// responses parsed by Content-Length; and the gateway's JSON error body taken apart.

#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace clustergov::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; repeated ones joined with ", "
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  bool Has(const std::string& name) const { return headers.count(name) > 0; }
};

std::ostream& operator<<(std::ostream& os, const HttpResponse& r);

class HttpConnection {
 public:
  explicit HttpConnection(int port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

  bool Send(const std::string& raw);
  // One response; status 0 when the connection closed or timed out first.
  HttpResponse Read();
  // True when the server closed the connection (EOF within a second).
  bool ClosedByPeer();

 private:
  bool Fill();
  int fd_ = -1;
  std::string buffer_;
};

// "METHOD target HTTP/1.1" with Host, the headers, a JSON Content-Type when there is a body and
// none is given, and Content-Length for a body or a POST/PATCH/PUT.
std::string RawRequest(const std::string& method, const std::string& target, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers);

// The gateway's error body (google.rpc.Status as JSON): code, message, BadRequest field violations.
// Adds a test failure when the body is not exactly such a status.
struct HttpErrorBody {
  int code = -1;
  std::string message;
  std::vector<std::string> fields;
};
HttpErrorBody ParseHttpError(const HttpResponse& r);

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string PercentEncode(const std::string& s);

}  // namespace clustergov::testing

#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace clustergov::testing {

std::ostream& operator<<(std::ostream& os, const HttpResponse& r) {
  return os << "HTTP " << r.status << " " << r.body.substr(0, 600);
}

HttpConnection::HttpConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{20, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

bool HttpConnection::Send(const std::string& raw) {
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = send(fd_, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

HttpResponse HttpConnection::Read() {
  HttpResponse r;
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill()) return r;
  }
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &r.status)) return HttpResponse{};
  for (size_t i = 1; i < lines.size(); ++i) {
    auto colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    auto& slot = r.headers[name];
    slot = slot.empty() ? value : absl::StrCat(slot, ", ", value);
  }
  size_t length = 0;
  if (r.Has("content-length")) {
    absl::SimpleAtoi(r.Header("content-length"), &length);
  }
  while (buffer_.size() < length) {
    if (!Fill()) return HttpResponse{};
  }
  r.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return r;
}

bool HttpConnection::ClosedByPeer() {
  timeval tv{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  ssize_t n = recv(fd_, &c, 1, 0);
  return n == 0;
}

bool HttpConnection::Fill() {
  char buf[16384];
  ssize_t n = recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::string RawRequest(const std::string& method, const std::string& target, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string raw = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    absl::StrAppend(&raw, k, ": ", v, "\r\n");
    has_type = has_type || absl::EqualsIgnoreCase(k, "content-type");
  }
  if (!body.empty() && !has_type) raw += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
    absl::StrAppend(&raw, "Content-Length: ", body.size(), "\r\n");
  }
  raw += "\r\n";
  raw += body;
  return raw;
}

HttpErrorBody ParseHttpError(const HttpResponse& r) {
  using ::testing::HasSubstr;
  HttpErrorBody e;
  // Exactly {"code","message","details"} (google.rpc.Status in JSON).
  EXPECT_THAT(r.body, HasSubstr("\"code\":")) << r;
  EXPECT_THAT(r.body, HasSubstr("\"message\":")) << r;
  EXPECT_THAT(r.body, HasSubstr("\"details\":")) << r;
  EXPECT_EQ(r.Header("content-type"), "application/json") << r;
  google::rpc::Status status;
  auto parsed = google::protobuf::util::JsonStringToMessage(r.body, &status);  // strict
  EXPECT_TRUE(parsed.ok()) << parsed.ToString() << " in " << r.body;
  e.code = status.code();
  e.message = status.message();
  for (const auto& any : status.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) e.fields.push_back(v.field());
    }
  }
  return e;
}

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::AsciiStrToUpper(absl::StrCat(absl::Hex(c, absl::kZeroPad2))));
    }
  }
  return out;
}

}  // namespace clustergov::testing

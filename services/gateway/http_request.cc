#include "services/gateway/http_request.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <cstring>
#include <limits>

#include "absl/strings/ascii.h"
#include "services/gateway/http_parser.h"

namespace clustergov::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

absl::string_view HttpRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

namespace http_internal {
namespace {

std::string ToString(beast::string_view s) { return std::string(s.data(), s.size()); }

}  // namespace

void StartRequest(RequestParser& parser, size_t max_header_bytes) {
  // Checked once the header is in (HeaderRead). Not boost::none: Beast 1.74 compares a length with
  // it as "greater than nothing" and refuses every body.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(max_header_bytes, UINT32_MAX)));
}

beast::error_code HeaderRead(RequestParser& parser, size_t max_body_bytes) {
  auto length = parser.content_length();
  if (length.has_value() && *length > max_body_bytes) return http::error::body_limit;
  parser.body_limit(static_cast<std::uint64_t>(max_body_bytes));  // chunked bodies
  return {};
}

std::optional<ParsedHttpRequest> FinishRequest(RequestParser& parser, beast::error_code ec) {
  if (ec == http::error::end_of_stream ||
      (ec && ec.category() != beast::error_code(http::error::body_limit).category())) {
    return std::nullopt;
  }
  ParsedHttpRequest out;
  HttpRequest& request = out.request;
  if (ec) {
    request.read_error = ec == http::error::body_limit ? 413 : ec == http::error::header_limit ? 431 : 400;
    if (!parser.is_header_done()) {
      request.method = "GET";
      request.target = "/";
      out.version = 11;
      out.keep_alive = false;
      return out;
    }
  }
  auto& msg = parser.get();
  request.method = ToString(msg.method_string());
  request.target = ToString(msg.target());
  request.headers.reserve(16);
  for (const auto& field : msg) {
    request.headers.emplace_back(absl::AsciiStrToLower(ToString(field.name_string())), ToString(field.value()));
  }
  out.keep_alive = msg.keep_alive() && request.read_error == 0;
  out.version = msg.version();
  if (request.read_error == 0) request.body = std::move(msg.body());
  return out;
}

}  // namespace http_internal

namespace {

// A SyncReadStream over bytes already received, then end of file (the client closed its side).
class BytesStream {
 public:
  explicit BytesStream(absl::string_view bytes) : bytes_(bytes) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    if (bytes_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    ec = {};
    size_t n = net::buffer_copy(buffers, net::buffer(bytes_.data(), bytes_.size()));
    bytes_.remove_prefix(n);
    return n;
  }
  // Required by the SyncReadStream concept; Beast's reads with an error_code use the one above.
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    return read_some(buffers, ec);
  }

  size_t left() const { return bytes_.size(); }

 private:
  absl::string_view bytes_;
};

}  // namespace

std::optional<ParsedHttpRequest> ParseHttpRequest(absl::string_view bytes, size_t max_header_bytes,
                                                  size_t max_body_bytes, size_t* consumed) {
  BytesStream stream(bytes);
  beast::flat_buffer buffer;
  http_internal::RequestParser parser;
  http_internal::StartRequest(parser, max_header_bytes);
  beast::error_code ec;
  http::read_header(stream, buffer, parser, ec);
  if (!ec) {
    ec = http_internal::HeaderRead(parser, max_body_bytes);
    if (!ec && !parser.is_done()) http::read(stream, buffer, parser, ec);
  }
  if (consumed != nullptr) *consumed = bytes.size() - stream.left() - buffer.size();
  return http_internal::FinishRequest(parser, ec);
}

}  // namespace clustergov::gateway

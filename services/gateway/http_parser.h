#pragma once

// The steps of reading one request with Boost.Beast's parser, shared by the server's connections
// (asynchronous reads, http_server.cc) and ParseHttpRequest (http_request.cc). Beast stays inside
// those two files: include this header nowhere else.

#include <cstddef>
#include <optional>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "services/gateway/http_request.h"

namespace clustergov::gateway::http_internal {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Prepares `parser` for a request: the header limit now, the body limit once the header is in.
void StartRequest(RequestParser& parser, size_t max_header_bytes);

// Once the header is in: http::error::body_limit when its Content-Length is over the limit (the
// request is answered 413 without reading the body); otherwise sets the limit for a chunked body
// and returns no error.
boost::beast::error_code HeaderRead(RequestParser& parser, size_t max_body_bytes);

// The request once reading finished with `ec`: no error, or an HTTP error that is answered (413,
// 431, 400). std::nullopt when there is nobody to answer: the client closed before a request
// began, or a transport error (a reset, a timeout).
std::optional<ParsedHttpRequest> FinishRequest(RequestParser& parser, boost::beast::error_code ec);

}  // namespace clustergov::gateway::http_internal

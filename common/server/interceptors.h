#pragma once

// What the server bootstrap adds around every call, whatever the service.
//
// ServedMethods knows which methods the server serves (its registered services, the health and
// reflection services included), so that nothing keyed by method name (the metrics' labels) grows
// with the names clients make up.
//
// The malformed-request interceptor: with the callback API, gRPC 1.51 answers a request it cannot
// parse (truncated protobuf, invalid UTF-8 in a string field) with UNIMPLEMENTED and an empty
// message, without calling the handler (CallbackUnaryHandler replaces the failed deserialization
// by an "unimplemented" reactor). The interceptor sees that parse fail (POST_RECV_MESSAGE without
// a message) and turns the answer into INVALID_ARGUMENT saying what was wrong, for every method
// whose request is one message (unary and server-streaming).

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/support/server_interceptor.h"

namespace clustergov::server {

// The message a request that does not parse is answered with (INVALID_ARGUMENT).
inline constexpr char kMalformedRequestMessage[] =
    "the request message could not be parsed: truncated or malformed protobuf, or a string field "
    "that is not valid UTF-8";

class ServedMethods {
 public:
  // Pass to ServerBuilder::SetOption before BuildAndStart: it learns the registered services.
  std::unique_ptr<grpc::ServerBuilderOption> BuilderOption();

  // Whether `full_method` ("/package.Service/Method") is a method of a service the server
  // registered. False before the server is built.
  bool Contains(std::string_view full_method) const;

 private:
  // The server's list of service names, set while it is built (before it takes calls) and not
  // changed afterwards.
  std::atomic<const std::vector<std::string>*> services_{nullptr};
};

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CreateMalformedRequestInterceptorFactory();

}  // namespace clustergov::server

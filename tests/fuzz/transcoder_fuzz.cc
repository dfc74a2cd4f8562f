// Fuzzes the gateway's transcoding (services/gateway/transcoder.h) on the real routes, as the
// gateway runs it. Input: a method byte, then the request target, the JSON body and the If-Match
// header separated by NUL bytes. A target that matches a route becomes either the request bytes,
// which its backend can parse, or a refusal with INVALID_ARGUMENT (ABORTED for an If-Match that
// cannot hold) and a JSON error body. The body bytes are also read as the backend's response,
// which converts to JSON or is refused.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "services/gateway/errors.h"
#include "services/gateway/transcoder.h"
#include "tests/fuzz/gateway_routes.h"

namespace {

using clustergov::gateway::Transcoder;

const Transcoder& Fast() {
  static const auto* t = new Transcoder(&clustergov::fuzz::Routes(), {});
  return *t;
}

const Transcoder& Plain() {
  static const auto* t = new Transcoder(&clustergov::fuzz::Routes(), {/*emit_defaults=*/true, /*pretty=*/true,
                                                                      /*fast=*/false});
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kMethods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
  const char* method = kMethods[data[0] % 5];
  auto pieces = clustergov::fuzz::SplitInput(clustergov::fuzz::AsView(data + 1, size - 1), '\0', 3);
  pieces.resize(3);
  absl::string_view target = pieces[0], body = pieces[1], if_match = pieces[2];
  size_t qmark = target.find('?');
  absl::string_view path = target.substr(0, qmark);
  absl::string_view query = qmark == absl::string_view::npos ? absl::string_view() : target.substr(qmark + 1);

  const auto& routes = clustergov::fuzz::Routes();
  auto match = routes.Match(method, path);
  if (match.route != nullptr) {
    const auto& route = *match.route;
    auto built = Fast().BuildRequest(route, match.values, query, body, if_match);
    if (!built.ok()) {
      // ABORTED: an If-Match that can never hold.
      FUZZ_CHECK(built.status().code() == absl::StatusCode::kInvalidArgument ||
                     built.status().code() == absl::StatusCode::kAborted,
                 built.status().ToString());
      std::string error = clustergov::gateway::ErrorBody(built.status());
      FUZZ_CHECK(!error.empty() && error.front() == '{', built.status().ToString());
    } else {
      std::unique_ptr<google::protobuf::Message> request(route.request_prototype->New());
      FUZZ_CHECK(request->ParseFromString(*built), route.grpc_method + " request does not parse: " + *built);
      auto json = Fast().ToJson(route.method->input_type()->full_name(), *built);
      FUZZ_CHECK(json.ok(), json.status().ToString());
    }
  }

  // The body as the response of the matched route, or of the one the first byte picks.
  const auto& route = match.route != nullptr ? *match.route : *routes.routes()[data[0] % routes.routes().size()];
  std::string response(body);
  Transcoder::ResponseEtag(route, response);
  for (const Transcoder* t : {&Fast(), &Plain()}) {
    auto json = t->ResponseToJson(route, response);
    if (json.ok()) {
      FUZZ_CHECK(!json->empty(), response);
    } else {
      FUZZ_CHECK(json.status().code() == absl::StatusCode::kInternal, json.status().ToString());
    }
  }
  return 0;
}

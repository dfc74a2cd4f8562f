// Fuzzes the gateway's HTTP/1.1 request reading (services/gateway/http_request.h): the bytes a
// client sends on one connection, read request after request as the server does (pipelining,
// keep-alive), with small limits so that they are reached. Each request is then routed as the
// gateway routes it.

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "services/gateway/http_request.h"
#include "tests/fuzz/gateway_routes.h"

namespace {

constexpr size_t kMaxHeaderBytes = 2048;
constexpr size_t kMaxBodyBytes = 1024;  // both within libFuzzer's default input size (4096)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input = clustergov::fuzz::AsView(data, size);
  while (true) {
    size_t consumed = 0;
    auto parsed = clustergov::gateway::ParseHttpRequest(input, kMaxHeaderBytes, kMaxBodyBytes, &consumed);
    FUZZ_CHECK(consumed <= input.size(), input);
    if (!parsed.has_value()) break;
    const auto& request = parsed->request;
    FUZZ_CHECK(request.read_error == 0 || request.read_error == 400 || request.read_error == 413 ||
                   request.read_error == 431,
               input);
    FUZZ_CHECK(request.read_error == 0 || !parsed->keep_alive, input);
    FUZZ_CHECK(request.body.size() <= kMaxBodyBytes, input);
    FUZZ_CHECK(!request.method.empty() && !request.target.empty(), input);
    for (const auto& [name, value] : request.headers) {
      FUZZ_CHECK(name == absl::AsciiStrToLower(name), name);
    }
    if (request.read_error == 0) {
      absl::string_view target = request.target;
      absl::string_view path = target.substr(0, target.find('?'));
      clustergov::fuzz::Routes().Match(request.method, path);
    }
    if (!parsed->keep_alive || consumed == 0) break;
    input.remove_prefix(consumed);
  }
  return 0;
}

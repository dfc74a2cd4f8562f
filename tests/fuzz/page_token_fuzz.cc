// Fuzzes page tokens (common/list/page_token.h). A token the fuzzer makes up is never accepted
// (that would be a forgery); a token made from any payload decodes back to that payload for its
// query and its caller only, and changing any one of its characters makes it invalid.

#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/list/page_token.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using clustergov::common::v1::PageTokenPayload;

const clustergov::Principal& Caller() {
  static const auto* caller = new clustergov::Principal{"fuzz", "departments/industry_it", {"government"}};
  return *caller;
}

const clustergov::Principal& OtherCaller() {
  static const auto* caller = new clustergov::Principal{"fuzz", "departments/energy", {"government"}};
  return *caller;
}

const clustergov::PageTokenCodec& Codec() {
  static const auto* codec = new clustergov::PageTokenCodec("fuzz page-token secret");
  return *codec;
}

constexpr absl::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void CheckRefused(const absl::StatusOr<PageTokenPayload>& decoded, absl::string_view token) {
  FUZZ_CHECK(!decoded.ok(), std::string("accepted: ") + std::string(token));
  clustergov::fuzz::CheckRefusal(decoded.status(), {absl::StatusCode::kInvalidArgument}, token);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input = clustergov::fuzz::AsView(data, size);
  const auto& codec = Codec();

  // The input as a token, for any query.
  for (uint64_t hash : {uint64_t{0}, uint64_t{0x0123456789abcdef}}) {
    CheckRefused(codec.Decode(std::string_view(input.data(), input.size()), hash, Caller()), input);
  }

  // The input as a payload: its token round-trips, for its query and its caller only.
  PageTokenPayload payload;
  if (!payload.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::string token = codec.Encode(payload, Caller());
  payload.set_caller_hash(clustergov::CallerHash(Caller()));  // what Encode binds it to
  auto decoded = codec.Decode(token, payload.query_hash(), Caller());
  FUZZ_CHECK(decoded.ok(), decoded.status().ToString() + " for " + token);
  FUZZ_CHECK(decoded->SerializeAsString() == payload.SerializeAsString(), token);
  CheckRefused(codec.Decode(token, payload.query_hash() + 1, Caller()), token);
  CheckRefused(codec.Decode(token, payload.query_hash(), OtherCaller()), token);
  if (!token.empty()) {
    // One character changed, chosen by the payload's hash.
    size_t at = payload.query_hash() % token.size();
    std::string changed = token;
    size_t from = kBase64Url.find(changed[at]);
    // Another character: 1 to 63 places further along the alphabet.
    changed[at] = kBase64Url[(from + 1 + static_cast<uint64_t>(payload.offset()) % 63) % 64];
    CheckRefused(codec.Decode(changed, payload.query_hash(), Caller()), changed);
  }
  return 0;
}

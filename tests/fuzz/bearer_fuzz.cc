// Fuzzes bearer-token authentication (common/auth/auth.h). The first byte picks what the rest is:
//   0: the whole authorization header;
//   1: the JWT claims (JSON), in a token correctly signed with the HS256 key;
//   2: the JWT header (JSON), with valid claims, correctly signed.
// Every token is refused with UNAUTHENTICATED or yields a complete principal (subject,
// organization, known roles); the verified-token cache answers as full verification does.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/auth/auth.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using clustergov::Authenticator;

constexpr char kSecret[] = "fuzz-hs256-secret-fuzz-hs256-secret!";

const Authenticator& Make(size_t cache_capacity) {
  clustergov::AuthConfig config;
  config.hs256_secret = kSecret;
  config.cache_capacity = cache_capacity;
  auto a = Authenticator::Create(config);
  FUZZ_CHECK(a.ok(), a.status().ToString());
  return *a->release();
}

const Authenticator& Cached() {
  static const Authenticator& a = Make(64);
  return a;
}

const Authenticator& Uncached() {
  static const Authenticator& a = Make(0);
  return a;
}

std::string Signed(absl::string_view header_json, absl::string_view claims_json) {
  std::string input =
      absl::StrCat(absl::WebSafeBase64Escape(header_json), ".", absl::WebSafeBase64Escape(claims_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kSecret, sizeof(kSecret) - 1, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
       mac, &mac_len);
  return absl::StrCat("Bearer ", input, ".",
                      absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(mac), mac_len)));
}

void Check(absl::string_view authorization) {
  auto cached = Cached().Authenticate(authorization);
  auto again = Cached().Authenticate(authorization);  // a cache hit when the first succeeded
  auto full = Uncached().Authenticate(authorization);
  FUZZ_CHECK(cached.ok() == full.ok() && again.ok() == full.ok(), authorization);
  if (!full.ok()) {
    clustergov::fuzz::CheckRefusal(full.status(), {absl::StatusCode::kUnauthenticated}, authorization);
    FUZZ_CHECK(cached.status() == full.status(), cached.status().ToString() + " vs " + full.status().ToString());
    return;
  }
  const clustergov::Principal& p = *full;
  FUZZ_CHECK(!p.subject.empty() && !p.organization.empty() && !p.roles.empty(), authorization);
  for (const auto* other : {&*cached, &*again}) {
    FUZZ_CHECK(other->subject == p.subject && other->organization == p.organization && other->roles == p.roles,
               authorization);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  absl::string_view rest = clustergov::fuzz::AsView(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      Check(rest);
      break;
    case 1:
      Check(Signed(R"({"alg":"HS256","typ":"JWT"})", rest));
      break;
    default:
      Check(Signed(rest, R"({"sub":"fuzz","org":"departments/industry_it","roles":["government"],)"
                         R"("iss":"clustergov-dev","aud":"clustergov","exp":4102444800})"));
      break;
  }
  return 0;
}

#pragma once

// Caller identity from a bearer JWT.
//
// Every RPC carries "authorization: Bearer <jwt>". The Authenticator checks that the token's
// header names exactly the configured algorithm (so "none" and HS/RS confusion are refused before
// any key is touched), verifies the signature with libjwt, then checks the registered claims
// (exp with leeway, nbf, iss, aud) and the clustergov claims: `sub`, `org` (the organization
// resource name the caller acts for) and `roles` (a JSON array of known role names).
//
// Successful verifications are cached, keyed by a SHA-256 digest of the whole token, until the
// token's exp, so a client reusing its token pays for signature verification once. Failures are
// never cached. Authenticate() is safe to call from many threads at once.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/principal.h"

namespace clustergov {

// The longest bearer token Authenticate() accepts (UNAUTHENTICATED beyond, before any parsing).
// Tokens of the identity provider are 1-2 KB; the gateway refuses a longer Authorization header
// itself, before calling a service, and the gRPC servers accept metadata well above this
// (server::kMaxMetadataBytes), so an oversized token always reaches this check.
inline constexpr size_t kMaxBearerTokenBytes = 8 * 1024;

struct AuthConfig {
  std::string issuer = "clustergov-dev";
  std::string audience = "clustergov";
  // Exactly one key source: hs256_secret (development) or public_key_pem (RS256 or ES256 key,
  // PEM text; the algorithm is fixed by `algorithm`).
  std::string algorithm = "HS256";  // HS256 | RS256 | ES256
  std::string hs256_secret;         // at least 32 bytes
  std::string public_key_pem;       // SubjectPublicKeyInfo PEM; RSA >= 2048 bits or EC P-256
  int64_t leeway_seconds = 30;      // clock skew tolerated on exp, nbf and iat; 0..3600
  size_t cache_capacity = 10000;    // verified-token cache entries; 0 disables the cache
};

namespace auth_internal {
class VerifiedTokenCache;
}  // namespace auth_internal

class Authenticator {
 public:
  // INVALID_ARGUMENT with a clear message for a bad config (no key or two keys, HS256 secret
  // shorter than 32 bytes, unknown algorithm, unparsable PEM or a key that does not fit the
  // algorithm, empty issuer/audience, leeway out of range).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(AuthConfig config);

  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // `authorization_header` is the raw metadata value, "Bearer <jwt>" (scheme case-insensitive).
  // UNAUTHENTICATED with the reason (missing, malformed, bad signature, wrong alg, expired, not
  // yet valid, wrong issuer, wrong audience, missing sub/org/roles, unknown role); otherwise the
  // caller's Principal.
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization_header) const;

  // Verified-token cache counters, for metrics and tests.
  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;  // lookups that went on to full verification (successful or not)
    size_t entries = 0;
  };
  CacheStats cache_stats() const;

 private:
  struct Verified;

  Authenticator(AuthConfig config, int jwt_alg);
  absl::StatusOr<Verified> Verify(const std::string& token) const;

  AuthConfig config_;  // never modified after construction (the destructor scrubs the secret)
  const int jwt_alg_;  // libjwt's jwt_alg_t, kept as int to keep <jwt.h> out of this header
  std::unique_ptr<auth_internal::VerifiedTokenCache> cache_;  // null when disabled
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
};

// PERMISSION_DENIED unless the principal has one of the roles; the message names the roles needed.
absl::Status RequireAnyRole(const Principal& p, std::initializer_list<absl::string_view> roles);

// What MintToken puts in a token. Empty subject/organization/roles are left out of the token
// (so tests can mint deliberately incomplete tokens).
struct TokenSpec {
  std::string subject;
  std::string organization;
  std::vector<std::string> roles;
  std::string issuer = "clustergov-dev";
  std::string audience = "clustergov";
  int64_t ttl_seconds = 3600;     // exp = now + ttl_seconds (negative mints an expired token)
  int64_t not_before_offset = 0;  // nbf = now + not_before_offset
  int64_t issued_at = 0;          // "now" in Unix seconds (iat); 0: the current time
};

// Mints a signed token (for the tool and tests): HS256 with `key` as the secret (at least 32
// bytes), or RS256/ES256 with `key` as a PEM private key of the matching type. Roles are not
// checked against the known set here; Authenticate() does that.
absl::StatusOr<std::string> MintToken(const TokenSpec& spec, absl::string_view algorithm,
                                      absl::string_view key);

}  // namespace clustergov

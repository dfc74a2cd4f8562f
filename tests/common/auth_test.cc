#include "common/auth/auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/auth/service_token.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clustergov {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSecret[] = "test-secret-0123456789-abcdefghijklmnop";
constexpr char kOtherSecret[] = "another-secret-0123456789-abcdefghijklmno";

// --- Key material -------------------------------------------------------------------------------

struct PemKeyPair {
  std::string private_pem;
  std::string public_pem;
};

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

PemKeyPair ToPem(EVP_PKEY* key) {
  PemKeyPair out;
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  EXPECT_EQ(PEM_write_bio_PUBKEY(pub, key), 1);
  out.private_pem = BioToString(priv);
  out.public_pem = BioToString(pub);
  BIO_free(priv);
  BIO_free(pub);
  return out;
}

PemKeyPair GenerateRsa(int bits) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr);
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_keygen_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits), 1);
  EXPECT_EQ(EVP_PKEY_keygen(ctx, &key), 1);
  PemKeyPair out = ToPem(key);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(ctx);
  return out;
}

PemKeyPair GenerateEc(const char* curve) {
  EVP_PKEY* key = EVP_EC_gen(curve);
  EXPECT_NE(key, nullptr);
  PemKeyPair out = ToPem(key);
  EVP_PKEY_free(key);
  return out;
}

// RSA key generation is slow; every test shares these.
const PemKeyPair& Rsa() {
  static const PemKeyPair* const kKey = new PemKeyPair(GenerateRsa(2048));
  return *kKey;
}
const PemKeyPair& OtherRsa() {
  static const PemKeyPair* const kKey = new PemKeyPair(GenerateRsa(2048));
  return *kKey;
}
const PemKeyPair& Ec() {
  static const PemKeyPair* const kKey = new PemKeyPair(GenerateEc("P-256"));
  return *kKey;
}

// --- Token helpers ------------------------------------------------------------------------------

std::string B64Url(absl::string_view data) {
  std::string out;
  absl::WebSafeBase64Escape(data, &out);
  return out;
}

// A hand-made HS256 token, for payloads MintToken cannot produce.
std::string SignHs256(absl::string_view header_json, absl::string_view payload_json,
                      absl::string_view secret = kSecret) {
  std::string signing_input = B64Url(header_json) + "." + B64Url(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &mac_len);
  return signing_input + "." +
         B64Url(absl::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

constexpr char kHs256Header[] = R"({"alg":"HS256","typ":"JWT"})";

// A valid payload with `extra` spliced in (or replacing nothing: keys must not repeat).
std::string Payload(absl::string_view fields) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  return absl::StrCat("{", fields, R"("iat":)", now, R"(,"exp":)", now + 600, "}");
}
constexpr char kGoodFields[] = R"("iss":"clustergov-dev","aud":"clustergov","sub":"alice",)"
                               R"("org":"departments/industry_it","roles":["government"],)";

TokenSpec GoodSpec() {
  TokenSpec spec;
  spec.subject = "alice";
  spec.organization = "departments/industry_it";
  spec.roles = {std::string(roles::kGovernment), std::string(roles::kAdmin)};
  return spec;
}

std::string MustMint(const TokenSpec& spec, absl::string_view algorithm = "HS256",
                     absl::string_view key = kSecret) {
  absl::StatusOr<std::string> token = MintToken(spec, algorithm, key);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : std::string();
}

std::string Bearer(absl::string_view token) { return absl::StrCat("Bearer ", token); }

AuthConfig Hs256Config() {
  AuthConfig config;
  config.hs256_secret = kSecret;
  return config;
}

AuthConfig PublicKeyConfig(std::string algorithm, std::string public_pem) {
  AuthConfig config;
  config.algorithm = std::move(algorithm);
  config.public_key_pem = std::move(public_pem);
  return config;
}

std::unique_ptr<Authenticator> MustCreate(AuthConfig config) {
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(std::move(config));
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *std::move(auth) : nullptr;
}

// Expects UNAUTHENTICATED whose message contains `snippet`.
void ExpectRejected(const Authenticator& auth, absl::string_view header,
                    absl::string_view snippet) {
  SCOPED_TRACE(std::string(header.substr(0, 80)));
  absl::StatusOr<Principal> result = auth.Authenticate(header);
  ASSERT_FALSE(result.ok()) << "accepted as " << result->subject;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(std::string(snippet)));
}

// --- Accepting ----------------------------------------------------------------------------------

TEST(AuthenticatorTest, ValidHs256TokenYieldsPrincipal) {
  auto auth = MustCreate(Hs256Config());
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> p = auth->Authenticate(Bearer(MustMint(GoodSpec())));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "alice");
  EXPECT_EQ(p->organization, "departments/industry_it");
  EXPECT_THAT(p->roles, ElementsAre("government", "admin"));
  EXPECT_TRUE(p->ActsForDepartment("industry_it"));
}

TEST(AuthenticatorTest, SchemeIsCaseInsensitiveAndSpacesAreTolerated) {
  auto auth = MustCreate(Hs256Config());
  const std::string token = MustMint(GoodSpec());
  EXPECT_TRUE(auth->Authenticate("bearer " + token).ok());
  EXPECT_TRUE(auth->Authenticate("  BEARER   " + token + "  ").ok());
}

TEST(AuthenticatorTest, AudienceArrayContainingOursIsAccepted) {
  auto auth = MustCreate(Hs256Config());
  std::string token =
      SignHs256(kHs256Header,
                Payload(R"("iss":"clustergov-dev","aud":["other","clustergov"],"sub":"bob",)"
                        R"("org":"enterprises/91110000","roles":["enterprise","enterprise"],)"));
  absl::StatusOr<Principal> p = auth->Authenticate(Bearer(token));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "bob");
  EXPECT_THAT(p->roles, ElementsAre("enterprise"));  // duplicates dropped
}

TEST(AuthenticatorTest, ExpiryWithinLeewayIsAccepted) {
  auto auth = MustCreate(Hs256Config());  // 30 s leeway
  TokenSpec spec = GoodSpec();
  spec.ttl_seconds = -10;
  EXPECT_TRUE(auth->Authenticate(Bearer(MustMint(spec))).ok());
}

// --- Rejecting ----------------------------------------------------------------------------------

TEST(AuthenticatorTest, MissingHeader) {
  auto auth = MustCreate(Hs256Config());
  ExpectRejected(*auth, "", "missing");
  ExpectRejected(*auth, "   ", "missing");
}

TEST(AuthenticatorTest, NoBearerPrefix) {
  auto auth = MustCreate(Hs256Config());
  const std::string token = MustMint(GoodSpec());
  ExpectRejected(*auth, token, "Bearer");
  ExpectRejected(*auth, "Basic " + token, "Bearer");
  ExpectRejected(*auth, "Bearer" + token, "Bearer");
  ExpectRejected(*auth, "Bearer", "Bearer");
}

TEST(AuthenticatorTest, Garbage) {
  auto auth = MustCreate(Hs256Config());
  ExpectRejected(*auth, "Bearer not-a-jwt", "malformed");
  ExpectRejected(*auth, "Bearer a.b.c", "malformed");
  ExpectRejected(*auth, "Bearer ....", "malformed");
  ExpectRejected(*auth, "Bearer abc def", "malformed");
  ExpectRejected(*auth, "Bearer e30.e30.e30", "malformed");  // {} header: no alg
  ExpectRejected(*auth, Bearer(std::string(20000, 'a')), "malformed");
  ExpectRejected(*auth, Bearer(std::string(kMaxBearerTokenBytes + 1, 'a')),
                 absl::StrCat("longer than ", kMaxBearerTokenBytes, " bytes"));
  // Valid header and signature segment, payload not JSON.
  ExpectRejected(*auth, Bearer(B64Url(kHs256Header) + "." + B64Url("not json") + ".abc"),
                 "payload");
  // Five segments (JWE shape).
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec()) + ".a.b"), "malformed");
}

TEST(AuthenticatorTest, Expired) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.ttl_seconds = -120;
  ExpectRejected(*auth, Bearer(MustMint(spec)), "expired");
}

TEST(AuthenticatorTest, NotYetValid) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.not_before_offset = 600;
  ExpectRejected(*auth, Bearer(MustMint(spec)), "not yet valid");
}

TEST(AuthenticatorTest, WrongSignature) {
  auto auth = MustCreate(Hs256Config());
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "HS256", kOtherSecret)), "signature");
  // A correct token whose payload was swapped for another one.
  std::string token = MustMint(GoodSpec());
  std::string forged = SignHs256(kHs256Header, Payload(kGoodFields), kOtherSecret);
  std::string spliced = token.substr(0, token.find('.')) + forged.substr(forged.find('.'));
  ExpectRejected(*auth, Bearer(spliced), "signature");
}

TEST(AuthenticatorTest, WrongIssuer) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.issuer = "someone-else";
  ExpectRejected(*auth, Bearer(MustMint(spec)), "issuer");
}

TEST(AuthenticatorTest, WrongAudience) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.audience = "another-system";
  ExpectRejected(*auth, Bearer(MustMint(spec)), "audience");
  ExpectRejected(
      *auth,
      Bearer(SignHs256(kHs256Header, Payload(R"("iss":"clustergov-dev","aud":["a","b"],"sub":"x",)"
                                             R"("org":"talents/1","roles":["talent"],)"))),
      "audience");
}

TEST(AuthenticatorTest, UnknownRole) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.roles = {"government", "superuser"};
  ExpectRejected(*auth, Bearer(MustMint(spec)), "unknown role \"superuser\"");
}

TEST(AuthenticatorTest, MissingIdentityClaims) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec no_org = GoodSpec();
  no_org.organization.clear();
  ExpectRejected(*auth, Bearer(MustMint(no_org)), "\"org\"");
  TokenSpec no_sub = GoodSpec();
  no_sub.subject.clear();
  ExpectRejected(*auth, Bearer(MustMint(no_sub)), "\"sub\"");
  TokenSpec no_roles = GoodSpec();
  no_roles.roles.clear();
  ExpectRejected(*auth, Bearer(MustMint(no_roles)), "\"roles\"");
}

TEST(AuthenticatorTest, MalformedClaims) {
  auto auth = MustCreate(Hs256Config());
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  // No exp at all.
  ExpectRejected(
      *auth, Bearer(SignHs256(kHs256Header, absl::StrCat("{", kGoodFields, R"("iat":)", now, "}"))),
      "\"exp\"");
  // exp as a string.
  ExpectRejected(*auth,
                 Bearer(SignHs256(kHs256Header,
                                  absl::StrCat("{", kGoodFields, R"("exp":")", now + 600, "\"}"))),
                 "\"exp\"");
  // roles not an array, roles with a non-string, empty roles, org not a string.
  const std::string base = R"("iss":"clustergov-dev","aud":"clustergov","sub":"x",)";
  ExpectRejected(
      *auth,
      Bearer(SignHs256(kHs256Header, Payload(base + R"("org":"talents/1","roles":"admin",)"))),
      "array");
  ExpectRejected(
      *auth, Bearer(SignHs256(kHs256Header, Payload(base + R"("org":"talents/1","roles":[1],)"))),
      "array");
  ExpectRejected(
      *auth, Bearer(SignHs256(kHs256Header, Payload(base + R"("org":"talents/1","roles":[],)"))),
      "empty");
  ExpectRejected(*auth,
                 Bearer(SignHs256(kHs256Header, Payload(base + R"("org":7,"roles":["talent"],)"))),
                 "string");
}

TEST(AuthenticatorTest, FractionalNumericDatesAreAccepted) {
  auto auth = MustCreate(Hs256Config());
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  std::string token =
      SignHs256(kHs256Header, absl::StrCat("{", kGoodFields, R"("iat":)", now, R"(.25,"exp":)",
                                           now + 600, R"(.5,"nbf":)", now - 1, ".75}"));
  absl::StatusOr<Principal> p = auth->Authenticate(Bearer(token));
  EXPECT_TRUE(p.ok()) << p.status();
}

TEST(AuthenticatorTest, IssuerMustBePresentAndAString) {
  auto auth = MustCreate(Hs256Config());
  const std::string rest = R"("aud":"clustergov","sub":"x","org":"talents/1","roles":["talent"],)";
  ExpectRejected(*auth, Bearer(SignHs256(kHs256Header, Payload(rest))), "no \"iss\"");
  ExpectRejected(*auth,
                 Bearer(SignHs256(kHs256Header, Payload(R"("iss":["clustergov-dev"],)" + rest))),
                 "wrong issuer");
  ExpectRejected(*auth,
                 Bearer(SignHs256(kHs256Header, Payload(R"("iss":"clustergov-dev","aud":5,)"
                                                        R"("sub":"x","org":"talents/1",)"
                                                        R"("roles":["talent"],)"))),
                 "\"aud\"");
}

TEST(AuthenticatorTest, AlgNoneIsRejected) {
  auto auth = MustCreate(Hs256Config());
  const std::string payload = B64Url(Payload(kGoodFields));
  ExpectRejected(*auth, Bearer(B64Url(R"({"alg":"none"})") + "." + payload + "."), "algorithm");
  ExpectRejected(*auth, Bearer(B64Url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".c2ln"),
                 "algorithm");
  // Case games do not help either.
  ExpectRejected(*auth, Bearer(B64Url(R"({"alg":"hs256"})") + "." + payload + ".c2ln"),
                 "algorithm");
}

TEST(AuthenticatorTest, CriticalHeaderIsRejected) {
  auto auth = MustCreate(Hs256Config());
  ExpectRejected(
      *auth, Bearer(SignHs256(R"({"alg":"HS256","crit":["exp"],"exp":1})", Payload(kGoodFields))),
      "crit");
}

TEST(AuthenticatorTest, Hs256TokenToRs256AuthenticatorIsRejected) {
  auto auth = MustCreate(PublicKeyConfig("RS256", Rsa().public_pem));
  ASSERT_NE(auth, nullptr);
  // An ordinary HS256 token.
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec())), "algorithm");
  // The key-confusion attack: HMAC keyed with the server's own public key PEM.
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "HS256", Rsa().public_pem)), "algorithm");
  // ES256 token to an RS256 authenticator.
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "ES256", Ec().private_pem)), "algorithm");
}

// --- Asymmetric algorithms ----------------------------------------------------------------------

TEST(AuthenticatorTest, Rs256RoundTrip) {
  auto auth = MustCreate(PublicKeyConfig("RS256", Rsa().public_pem));
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> p =
      auth->Authenticate(Bearer(MustMint(GoodSpec(), "RS256", Rsa().private_pem)));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "alice");
  EXPECT_THAT(p->roles, ElementsAre("government", "admin"));
  // Signed by a different RSA key.
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "RS256", OtherRsa().private_pem)), "signature");
}

TEST(AuthenticatorTest, Es256RoundTrip) {
  auto auth = MustCreate(PublicKeyConfig("ES256", Ec().public_pem));
  ASSERT_NE(auth, nullptr);
  const std::string token = MustMint(GoodSpec(), "ES256", Ec().private_pem);
  // JOSE signatures are raw R||S: 64 bytes, 86 base64url characters.
  EXPECT_EQ(token.size() - token.rfind('.') - 1, 86u);
  absl::StatusOr<Principal> p = auth->Authenticate(Bearer(token));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->organization, "departments/industry_it");
  // Signed by a different EC key; RS256 token presented to the ES256 authenticator.
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "ES256", GenerateEc("P-256").private_pem)),
                 "signature");
  ExpectRejected(*auth, Bearer(MustMint(GoodSpec(), "RS256", Rsa().private_pem)), "algorithm");
}

// --- Cache --------------------------------------------------------------------------------------

TEST(AuthenticatorCacheTest, HitReturnsSamePrincipal) {
  auto auth = MustCreate(Hs256Config());
  const std::string header = Bearer(MustMint(GoodSpec()));
  absl::StatusOr<Principal> first = auth->Authenticate(header);
  absl::StatusOr<Principal> second = auth->Authenticate(header);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->subject, first->subject);
  EXPECT_EQ(second->organization, first->organization);
  EXPECT_EQ(second->roles, first->roles);
  Authenticator::CacheStats stats = auth->cache_stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.entries, 1u);
}

TEST(AuthenticatorCacheTest, FailuresAreNotCached) {
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.roles = {"nope"};
  const std::string header = Bearer(MustMint(spec));
  EXPECT_FALSE(auth->Authenticate(header).ok());
  EXPECT_FALSE(auth->Authenticate(header).ok());
  Authenticator::CacheStats stats = auth->cache_stats();
  EXPECT_EQ(stats.hits, 0u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.entries, 0u);
}

TEST(AuthenticatorCacheTest, IsBounded) {
  AuthConfig config = Hs256Config();
  config.cache_capacity = 4;
  auto auth = MustCreate(config);
  for (int i = 0; i < 20; ++i) {
    TokenSpec spec = GoodSpec();
    spec.subject = absl::StrCat("user-", i);
    ASSERT_TRUE(auth->Authenticate(Bearer(MustMint(spec))).ok());
  }
  EXPECT_LE(auth->cache_stats().entries, 4u);
  EXPECT_GE(auth->cache_stats().entries, 1u);
}

TEST(AuthenticatorCacheTest, DisabledCacheStillVerifies) {
  AuthConfig config = Hs256Config();
  config.cache_capacity = 0;
  auto auth = MustCreate(config);
  const std::string header = Bearer(MustMint(GoodSpec()));
  EXPECT_TRUE(auth->Authenticate(header).ok());
  EXPECT_TRUE(auth->Authenticate(header).ok());
  EXPECT_EQ(auth->cache_stats().hits, 0u);
  EXPECT_EQ(auth->cache_stats().entries, 0u);
}

TEST(AuthenticatorCacheTest, EntriesExpireWithTheToken) {
  AuthConfig config = Hs256Config();
  config.leeway_seconds = 0;
  auto auth = MustCreate(config);
  TokenSpec spec = GoodSpec();
  // exp = floor(t0) + 2: valid right away (until the next-but-one second boundary) and certainly
  // past after 2.1 s, whatever the fraction of t0.
  spec.ttl_seconds = 2;
  const std::string header = Bearer(MustMint(spec));
  ASSERT_TRUE(auth->Authenticate(header).ok());
  EXPECT_EQ(auth->cache_stats().entries, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ExpectRejected(*auth, header, "expired");
  EXPECT_EQ(auth->cache_stats().hits, 0u);
}

TEST(AuthenticatorCacheTest, ConcurrentAuthenticate) {
  AuthConfig config = Hs256Config();
  config.cache_capacity = 8;  // smaller than the token set: hits, misses and evictions race
  auto auth = MustCreate(config);
  std::vector<std::string> headers;
  for (int i = 0; i < 24; ++i) {
    TokenSpec spec = GoodSpec();
    spec.subject = absl::StrCat("user-", i);
    headers.push_back(Bearer(MustMint(spec)));
  }
  constexpr int kThreads = 8;
  constexpr int kCalls = 500;
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const size_t which = static_cast<size_t>(t * 7 + i) % headers.size();
        absl::StatusOr<Principal> p = auth->Authenticate(headers[which]);
        if (p.ok() && p->subject == absl::StrCat("user-", which)) {
          ok.fetch_add(1);
        } else {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok.load(), kThreads * kCalls);
  EXPECT_EQ(wrong.load(), 0);
  Authenticator::CacheStats stats = auth->cache_stats();
  EXPECT_EQ(stats.hits + stats.misses, static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_LE(stats.entries, 8u);
}

TEST(AuthenticatorCacheTest, ConcurrentEs256WithoutCache) {
  AuthConfig config = PublicKeyConfig("ES256", Ec().public_pem);
  config.cache_capacity = 0;
  auto auth = MustCreate(config);
  const std::string header = Bearer(MustMint(GoodSpec(), "ES256", Ec().private_pem));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (auth->Authenticate(header).ok()) {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok.load(), 400);
}

// --- RequireAnyRole -----------------------------------------------------------------------------

TEST(RequireAnyRoleTest, GrantsAndDenies) {
  Principal p;
  p.subject = "carol";
  p.organization = "agencies/audit1";
  p.roles = {"auditor"};
  EXPECT_TRUE(RequireAnyRole(p, {roles::kAuditor}).ok());
  EXPECT_TRUE(RequireAnyRole(p, {roles::kAdmin, roles::kAuditor}).ok());
  absl::Status denied = RequireAnyRole(p, {roles::kAdmin, roles::kGovernment});
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.message()), HasSubstr("admin, government"));
  Principal nobody;
  EXPECT_EQ(RequireAnyRole(nobody, {roles::kService}).code(), absl::StatusCode::kPermissionDenied);
}

// --- Configuration and minting errors -----------------------------------------------------------

void ExpectBadConfig(AuthConfig config, absl::string_view snippet) {
  SCOPED_TRACE(std::string(snippet));
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(std::move(config));
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << auth.status();
  EXPECT_THAT(std::string(auth.status().message()), HasSubstr(std::string(snippet)));
}

TEST(AuthenticatorCreateTest, BadConfigs) {
  ExpectBadConfig(AuthConfig{}, "no key");
  AuthConfig short_secret;
  short_secret.hs256_secret = "too-short";
  ExpectBadConfig(short_secret, "at least 32");
  AuthConfig unknown = Hs256Config();
  unknown.algorithm = "HS512";
  ExpectBadConfig(unknown, "unknown algorithm");
  AuthConfig none = Hs256Config();
  none.algorithm = "none";
  ExpectBadConfig(none, "unknown algorithm");
  ExpectBadConfig(PublicKeyConfig("RS256", ""), "no key");
  ExpectBadConfig(
      PublicKeyConfig("RS256", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
      "PEM");
  ExpectBadConfig(PublicKeyConfig("RS256", "not a pem"), "PEM");
  ExpectBadConfig(PublicKeyConfig("RS256", Rsa().private_pem), "private key");
  ExpectBadConfig(PublicKeyConfig("ES256", Rsa().public_pem), "P-256");
  ExpectBadConfig(PublicKeyConfig("RS256", Ec().public_pem), "RSA");
  ExpectBadConfig(PublicKeyConfig("ES256", GenerateEc("P-384").public_pem), "P-256");
  ExpectBadConfig(PublicKeyConfig("RS256", GenerateRsa(1024).public_pem), "2048");
  AuthConfig both = PublicKeyConfig("RS256", Rsa().public_pem);
  both.hs256_secret = kSecret;
  ExpectBadConfig(both, "exactly one key source");
  AuthConfig pem_with_hs = Hs256Config();
  pem_with_hs.public_key_pem = Rsa().public_pem;
  ExpectBadConfig(pem_with_hs, "exactly one key source");
  AuthConfig no_issuer = Hs256Config();
  no_issuer.issuer.clear();
  ExpectBadConfig(no_issuer, "issuer");
  AuthConfig bad_leeway = Hs256Config();
  bad_leeway.leeway_seconds = -1;
  ExpectBadConfig(bad_leeway, "leeway");
}

TEST(MintTokenTest, Errors) {
  EXPECT_EQ(MintToken(GoodSpec(), "none", kSecret).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintToken(GoodSpec(), "HS256", "short").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintToken(GoodSpec(), "ES256", Rsa().private_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintToken(GoodSpec(), "RS256", Rsa().public_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintToken(GoodSpec(), "RS256", "garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MintTokenTest, RolesAreEscaped) {
  // A role with JSON metacharacters must survive as one (unknown) string, not inject claims.
  auto auth = MustCreate(Hs256Config());
  TokenSpec spec = GoodSpec();
  spec.roles = {R"(admin"],"x":["y)"};
  ExpectRejected(*auth, Bearer(MustMint(spec)), "unknown role");
}

// --- The service token ---------------------------------------------------------------------------

// The `exp` claim of a token (no verification).
int64_t ExpiryOf(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string payload;
  EXPECT_EQ(parts.size(), 3u);
  EXPECT_TRUE(absl::WebSafeBase64Unescape(parts[1], &payload));
  auto at = payload.find("\"exp\":");
  EXPECT_NE(at, std::string::npos) << payload;
  return std::strtoll(payload.c_str() + at + 6, nullptr, 10);
}

TEST(ServiceTokenTest, MintedTokensAreRenewedBeforeTheyExpire) {
  absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  TokenSpec spec;
  spec.subject = "service:promotion";
  spec.organization = "services/promotion";
  spec.roles = {std::string(roles::kService)};
  auto source = ServiceTokenSource::Minted(spec, kSecret, absl::Hours(1), [&now] { return now; });
  ASSERT_TRUE(source.ok()) << source.status();
  const absl::Time start = now;
  const std::string first = (*source)->Current();
  EXPECT_EQ(ExpiryOf(first), absl::ToUnixSeconds(start + absl::Hours(1)));
  // It verifies as the service.
  auto principal = MustCreate(Hs256Config())->Authenticate(Bearer(first));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "service:promotion");

  // The same token while more than half of its lifetime is left...
  now = start + absl::Minutes(29);
  EXPECT_EQ((*source)->Current(), first);
  // ...then a new one, long before the first expires; and so on for as long as the process runs.
  now = start + absl::Minutes(31);
  const std::string second = (*source)->Current();
  EXPECT_NE(second, first);
  EXPECT_EQ(ExpiryOf(second), absl::ToUnixSeconds(now + absl::Hours(1)));
  for (int hour = 1; hour <= 48; ++hour) {
    now = start + absl::Hours(hour);
    EXPECT_GE(ExpiryOf((*source)->Current()), absl::ToUnixSeconds(now + absl::Minutes(30)));
  }
}

TEST(ServiceTokenTest, BadSourcesAreRefusedAtCreation) {
  EXPECT_EQ(ServiceTokenSource::Minted(TokenSpec(), "short", absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ServiceTokenSource::Minted(TokenSpec(), kSecret, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ServiceTokenSource::FromFile("/nonexistent/service-token").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clustergov

#include "common/auth/auth.h"

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace clustergov {

// ---------------------------------------------------------------------------------------------
// Verified-token cache.
// ---------------------------------------------------------------------------------------------

namespace auth_internal {

// A bounded LRU map from SHA-256(token) to the principal it proved, split into independently
// locked shards so that worker threads rarely contend. Keying by digest keeps bearer tokens out
// of long-lived memory and makes lookup timing independent of the token bytes.
class VerifiedTokenCache {
 public:
  static constexpr size_t kDigestSize = 32;
  using Digest = std::array<unsigned char, kDigestSize>;

  explicit VerifiedTokenCache(size_t capacity) {
    // Never more shards than entries, so the total stays within `capacity`.
    num_shards_ = capacity < kMaxShards ? capacity : kMaxShards;
    shards_ = std::make_unique<Shard[]>(num_shards_);
    for (size_t i = 0; i < num_shards_; ++i) {
      shards_[i].capacity = capacity / num_shards_;
    }
  }

  // The cached principal for `digest` if present and not past `now`; an expired entry is dropped.
  std::optional<Principal> Lookup(const Digest& digest, absl::Time now) {
    Shard& shard = ShardFor(digest);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.index.find(Key(digest));
    if (it == shard.index.end()) {
      return std::nullopt;
    }
    auto entry = it->second;
    if (now >= entry->expires_at) {
      shard.index.erase(it);
      shard.lru.erase(entry);
      return std::nullopt;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, entry);
    return entry->principal;
  }

  void Insert(const Digest& digest, const Principal& principal, absl::Time expires_at) {
    Shard& shard = ShardFor(digest);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.index.find(Key(digest));
    if (it != shard.index.end()) {
      // Another thread verified the same token concurrently; keep one entry.
      it->second->principal = principal;
      it->second->expires_at = expires_at;
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return;
    }
    while (shard.lru.size() >= shard.capacity && !shard.lru.empty()) {
      shard.index.erase(Key(shard.lru.back().digest));
      shard.lru.pop_back();
    }
    shard.lru.push_front(Entry{digest, principal, expires_at});
    shard.index.emplace(Key(shard.lru.front().digest), shard.lru.begin());
  }

  size_t size() const {
    size_t total = 0;
    for (size_t i = 0; i < num_shards_; ++i) {
      absl::MutexLock lock(&shards_[i].mu);
      total += shards_[i].lru.size();
    }
    return total;
  }

 private:
  static constexpr size_t kMaxShards = 16;

  struct Entry {
    Digest digest;
    Principal principal;
    absl::Time expires_at;
  };
  // Digests are uniformly distributed, so a slice of the bytes is already a good hash. The shard
  // is chosen from bytes 0..7 and the in-shard bucket from bytes 8..15, so they are independent.
  struct DigestHash {
    size_t operator()(absl::string_view key) const {
      size_t h = 0;
      std::memcpy(&h, key.data() + 8, sizeof(h));
      return h;
    }
  };
  struct Shard {
    mutable absl::Mutex mu;
    size_t capacity = 0;
    // Most recently used first. The index's keys point into the entries' digests, which stay put
    // because std::list never moves its nodes.
    std::list<Entry> lru ABSL_GUARDED_BY(mu);
    std::unordered_map<absl::string_view, std::list<Entry>::iterator, DigestHash> index
        ABSL_GUARDED_BY(mu);
  };

  static absl::string_view Key(const Digest& digest) {
    return absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size());
  }
  Shard& ShardFor(const Digest& digest) {
    uint64_t h = 0;
    std::memcpy(&h, digest.data(), sizeof(h));
    return shards_[h % num_shards_];
  }

  size_t num_shards_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace auth_internal

namespace {

using auth_internal::VerifiedTokenCache;

constexpr int64_t kMaxLeewaySeconds = 3600;
constexpr size_t kMinHs256SecretBytes = 32;
constexpr int kMinRsaBits = 2048;
// NumericDate values beyond year 9999 are treated as malformed.
constexpr double kMaxNumericDate = 253402300799.0;

constexpr auto& kKnownRoles = roles::kAll;

struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

struct MallocFree {
  void operator()(char* p) const { std::free(p); }
};
using MallocString = std::unique_ptr<char, MallocFree>;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("authentication failed: ", why));
}

bool IsKnownRole(absl::string_view role) {
  for (absl::string_view known : kKnownRoles) {
    if (role == known) {
      return true;
    }
  }
  return false;
}

// The supported algorithms; anything else (including "none" and other HS/RS/ES sizes) is refused.
std::optional<jwt_alg_t> ParseAlgorithm(absl::string_view name) {
  if (name == "HS256") {
    return JWT_ALG_HS256;
  }
  if (name == "RS256") {
    return JWT_ALG_RS256;
  }
  if (name == "ES256") {
    return JWT_ALG_ES256;
  }
  return std::nullopt;
}

// Loads a PEM key with OpenSSL (public or private) and checks that it suits `alg`.
absl::Status CheckPemKey(absl::string_view pem, jwt_alg_t alg, bool is_private,
                         absl::string_view what) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) {
    return absl::InternalError("cannot allocate an OpenSSL BIO");
  }
  PkeyPtr key(is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                         : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    if (!is_private && absl::StrContains(pem, "PRIVATE KEY")) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " holds a private key; configure the public key (\"BEGIN PUBLIC KEY\") instead"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a parsable PEM ", is_private ? "private key" : "public key",
                     is_private ? "" : " (expected \"-----BEGIN PUBLIC KEY-----\")"));
  }
  if (alg == JWT_ALG_RS256) {
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not an RSA key, as RS256 needs"));
    }
    if (EVP_PKEY_get_bits(key.get()) < kMinRsaBits) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is a ", EVP_PKEY_get_bits(key.get()),
                                                     "-bit RSA key; RS256 needs at least ",
                                                     kMinRsaBits, " bits"));
    }
    return absl::OkStatus();
  }
  if (alg == JWT_ALG_ES256) {
    char group[64] = {0};
    size_t group_len = 0;
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &group_len) != 1 ||
        OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is not an EC P-256 (prime256v1) key, as ES256 needs"));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(what, " is not used with this algorithm"));
}

// "Bearer <jwt>" -> "<jwt>". The scheme is matched case-insensitively (RFC 7235).
absl::StatusOr<absl::string_view> ExtractBearerToken(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) {
    return Unauthenticated("missing authorization metadata (expected \"Bearer <token>\")");
  }
  constexpr absl::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme) ||
      !absl::ascii_isspace(static_cast<unsigned char>(header[kScheme.size()]))) {
    return Unauthenticated("authorization metadata must be \"Bearer <token>\"");
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(header.substr(kScheme.size()));
  if (token.empty()) {
    return Unauthenticated("empty bearer token");
  }
  return token;
}

bool IsBase64UrlChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// Decodes one base64url JWT segment holding a JSON object.
absl::StatusOr<google::protobuf::Struct> DecodeJsonSegment(absl::string_view segment,
                                                           absl::string_view what) {
  std::string json;
  if (segment.empty() || !absl::WebSafeBase64Unescape(segment, &json)) {
    return Unauthenticated(absl::StrCat("malformed token: ", what, " is not base64url"));
  }
  google::protobuf::Struct object;
  if (!google::protobuf::util::JsonStringToMessage(json, &object).ok()) {
    return Unauthenticated(absl::StrCat("malformed token: ", what, " is not a JSON object"));
  }
  return object;
}

// The header must name exactly the configured algorithm. Checked before libjwt sees the token,
// so an attacker cannot choose how our key is used ("none", or an HMAC keyed with our public key).
absl::Status CheckHeader(const google::protobuf::Struct& header, jwt_alg_t expected_alg) {
  const char* expected = jwt_alg_str(expected_alg);
  auto alg = header.fields().find("alg");
  if (alg == header.fields().end() || !alg->second.has_string_value()) {
    return Unauthenticated("malformed token: header has no \"alg\"");
  }
  if (alg->second.string_value() != expected) {
    return Unauthenticated(absl::StrCat("wrong signing algorithm: token uses \"",
                                        absl::CHexEscape(alg->second.string_value()), "\", only ",
                                        expected, " is accepted"));
  }
  auto typ = header.fields().find("typ");
  if (typ != header.fields().end() &&
      (!typ->second.has_string_value() ||
       !absl::EqualsIgnoreCase(typ->second.string_value(), "JWT"))) {
    return Unauthenticated("malformed token: header \"typ\" must be \"JWT\"");
  }
  if (header.fields().count("crit") != 0) {
    return Unauthenticated("token header has critical extensions (\"crit\"), none are supported");
  }
  return absl::OkStatus();
}

// One claim of a verified token as a protobuf Value; nullopt when absent.
absl::StatusOr<std::optional<google::protobuf::Value>> GetClaim(jwt_t* jwt, const char* name) {
  MallocString json(jwt_get_grants_json(jwt, name));
  if (json == nullptr) {
    return std::optional<google::protobuf::Value>();
  }
  google::protobuf::Value value;
  if (!google::protobuf::util::JsonStringToMessage(json.get(), &value).ok()) {
    return Unauthenticated(absl::StrCat("malformed \"", name, "\" claim"));
  }
  return std::optional<google::protobuf::Value>(std::move(value));
}

// A required, non-empty string claim.
absl::StatusOr<std::string> GetStringClaim(jwt_t* jwt, const char* name,
                                           absl::string_view description) {
  // Fast path: libjwt returns the value only for JSON strings (jansson refuses NULs in strings,
  // so the C string is the whole value).
  const char* fast = jwt_get_grant(jwt, name);
  if (fast != nullptr && *fast != '\0') {
    return std::string(fast);
  }
  // Slow path: say what is wrong with it.
  CG_ASSIGN_OR_RETURN(std::optional<google::protobuf::Value> value, GetClaim(jwt, name));
  if (!value.has_value()) {
    return Unauthenticated(absl::StrCat("token has no \"", name, "\" claim (", description, ")"));
  }
  if (!value->has_string_value()) {
    return Unauthenticated(absl::StrCat("\"", name, "\" claim must be a string"));
  }
  if (value->string_value().empty()) {
    return Unauthenticated(absl::StrCat("\"", name, "\" claim is empty (", description, ")"));
  }
  return value->string_value();
}

// An optional NumericDate claim, in whole seconds (fractions are truncated toward the past).
absl::StatusOr<std::optional<int64_t>> GetTimeClaim(jwt_t* jwt, const char* name) {
  // Fast path: a JSON integer, serialized by jansson as plain digits.
  MallocString json(jwt_get_grants_json(jwt, name));
  if (json == nullptr) {
    return std::optional<int64_t>();
  }
  int64_t seconds = 0;
  if (absl::SimpleAtoi(json.get(), &seconds)) {
    if (seconds < 0 || seconds > static_cast<int64_t>(kMaxNumericDate)) {
      return Unauthenticated(absl::StrCat("\"", name, "\" claim is out of range"));
    }
    return std::optional<int64_t>(seconds);
  }
  // Slow path: a fractional NumericDate, or not a number at all.
  CG_ASSIGN_OR_RETURN(std::optional<google::protobuf::Value> value, GetClaim(jwt, name));
  if (!value.has_value()) {
    return std::optional<int64_t>();
  }
  if (!value->has_number_value() || !std::isfinite(value->number_value()) ||
      value->number_value() < 0 || value->number_value() > kMaxNumericDate) {
    return Unauthenticated(absl::StrCat("\"", name, "\" claim must be a NumericDate (seconds)"));
  }
  return std::optional<int64_t>(static_cast<int64_t>(std::floor(value->number_value())));
}

// `aud` may be a string or an array of strings; ours must be among them.
absl::Status CheckAudience(jwt_t* jwt, const std::string& audience) {
  const char* single = jwt_get_grant(jwt, "aud");
  if (single != nullptr && audience == single) {
    return absl::OkStatus();
  }
  CG_ASSIGN_OR_RETURN(std::optional<google::protobuf::Value> aud, GetClaim(jwt, "aud"));
  if (!aud.has_value()) {
    return Unauthenticated("token has no \"aud\" claim");
  }
  if (aud->has_string_value()) {
    if (aud->string_value() == audience) {
      return absl::OkStatus();
    }
  } else if (aud->has_list_value()) {
    for (const auto& item : aud->list_value().values()) {
      if (!item.has_string_value()) {
        return Unauthenticated("\"aud\" claim must be a string or an array of strings");
      }
    }
    for (const auto& item : aud->list_value().values()) {
      if (item.string_value() == audience) {
        return absl::OkStatus();
      }
    }
  } else {
    return Unauthenticated("\"aud\" claim must be a string or an array of strings");
  }
  return Unauthenticated("wrong audience: token is not meant for this service");
}

// `roles`: a non-empty JSON array of known role names. Duplicates are dropped, order is kept.
absl::StatusOr<std::vector<std::string>> GetRoles(jwt_t* jwt) {
  MallocString json(jwt_get_grants_json(jwt, "roles"));
  if (json == nullptr) {
    return Unauthenticated("token has no \"roles\" claim");
  }
  google::protobuf::ListValue list;
  if (!google::protobuf::util::JsonStringToMessage(json.get(), &list).ok()) {
    return Unauthenticated("\"roles\" claim must be an array of strings");
  }
  if (list.values().empty()) {
    return Unauthenticated("\"roles\" claim is empty");
  }
  std::vector<std::string> out;
  out.reserve(list.values_size());
  for (const auto& item : list.values()) {
    if (!item.has_string_value()) {
      return Unauthenticated("\"roles\" claim must be an array of strings");
    }
    const std::string& role = item.string_value();
    if (!IsKnownRole(role)) {
      return Unauthenticated(absl::StrCat("unknown role \"", absl::CHexEscape(role),
                                          "\" (known: ", absl::StrJoin(kKnownRoles, ", "), ")"));
    }
    if (std::find(out.begin(), out.end(), role) == out.end()) {
      out.push_back(role);
    }
  }
  return out;
}

// SHA-256 of the token; nullopt if OpenSSL fails (then the cache is bypassed, never consulted
// with a bogus key that could match another token's entry).
std::optional<VerifiedTokenCache::Digest> TokenDigest(absl::string_view token) {
  VerifiedTokenCache::Digest digest{};
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != digest.size()) {
    ERR_clear_error();
    return std::nullopt;
  }
  return digest;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Authenticator.
// ---------------------------------------------------------------------------------------------

struct Authenticator::Verified {
  Principal principal;
  int64_t expires_at_unix = 0;  // the token's exp
};

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(AuthConfig config) {
  std::optional<jwt_alg_t> alg = ParseAlgorithm(config.algorithm);
  if (!alg.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("auth: unknown algorithm \"",
                                                   absl::CHexEscape(config.algorithm),
                                                   "\"; expected HS256, RS256 or ES256"));
  }
  if (config.issuer.empty()) {
    return absl::InvalidArgumentError("auth: issuer must not be empty");
  }
  if (config.audience.empty()) {
    return absl::InvalidArgumentError("auth: audience must not be empty");
  }
  if (config.leeway_seconds < 0 || config.leeway_seconds > kMaxLeewaySeconds) {
    return absl::InvalidArgumentError(absl::StrCat("auth: leeway_seconds must be within 0..",
                                                   kMaxLeewaySeconds, ", got ",
                                                   config.leeway_seconds));
  }
  if (*alg == JWT_ALG_HS256) {
    if (!config.public_key_pem.empty()) {
      return absl::InvalidArgumentError(
          "auth: public_key_pem is set but algorithm is HS256; configure exactly one key source");
    }
    if (config.hs256_secret.empty()) {
      return absl::InvalidArgumentError("auth: no key configured: HS256 needs hs256_secret");
    }
    if (config.hs256_secret.size() < kMinHs256SecretBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth: hs256_secret is ", config.hs256_secret.size(), " bytes; at least ",
                       kMinHs256SecretBytes, " are required"));
    }
  } else {
    if (!config.hs256_secret.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("auth: hs256_secret is set but algorithm is ",
                                                     config.algorithm,
                                                     "; configure exactly one key source"));
    }
    if (config.public_key_pem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth: no key configured: ", config.algorithm, " needs public_key_pem"));
    }
    CG_RETURN_IF_ERROR(
        CheckPemKey(config.public_key_pem, *alg, /*is_private=*/false, "auth: public_key_pem"));
  }
  return absl::WrapUnique(new Authenticator(std::move(config), static_cast<int>(*alg)));
}

Authenticator::Authenticator(AuthConfig config, int jwt_alg)
    : config_(std::move(config)), jwt_alg_(jwt_alg) {
  if (config_.cache_capacity > 0) {
    cache_ = std::make_unique<VerifiedTokenCache>(config_.cache_capacity);
  }
}

Authenticator::~Authenticator() {
  // Best effort: do not leave the HMAC secret in freed memory.
  if (!config_.hs256_secret.empty()) {
    OPENSSL_cleanse(config_.hs256_secret.data(), config_.hs256_secret.size());
  }
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    absl::string_view authorization_header) const {
  CG_ASSIGN_OR_RETURN(absl::string_view token, ExtractBearerToken(authorization_header));
  if (token.size() > kMaxBearerTokenBytes) {
    return Unauthenticated(absl::StrCat("malformed token: longer than ", kMaxBearerTokenBytes, " bytes"));
  }

  std::optional<VerifiedTokenCache::Digest> digest;
  if (cache_ != nullptr) {
    digest = TokenDigest(token);
  }
  if (digest.has_value()) {
    std::optional<Principal> cached = cache_->Lookup(*digest, absl::Now());
    if (cached.has_value()) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return *std::move(cached);
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);

  CG_ASSIGN_OR_RETURN(Verified verified, Verify(std::string(token)));
  if (digest.has_value()) {
    absl::Time expires_at = absl::FromUnixSeconds(verified.expires_at_unix);
    if (absl::Now() < expires_at) {
      cache_->Insert(*digest, verified.principal, expires_at);
    }
  }
  return std::move(verified.principal);
}

absl::StatusOr<Authenticator::Verified> Authenticator::Verify(const std::string& token) const {
  // Structure: exactly three base64url segments. Anything else (JWE, junk) is refused here.
  for (char c : token) {
    if (!IsBase64UrlChar(c) && c != '.') {
      return Unauthenticated("malformed token: not a compact JWS (unexpected character)");
    }
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return Unauthenticated("malformed token: expected three dot-separated segments");
  }

  CG_ASSIGN_OR_RETURN(google::protobuf::Struct header, DecodeJsonSegment(parts[0], "header"));
  const jwt_alg_t alg = static_cast<jwt_alg_t>(jwt_alg_);
  CG_RETURN_IF_ERROR(CheckHeader(header, alg));
  if (parts[2].empty()) {
    return Unauthenticated("malformed token: signature is missing");
  }

  // Signature.
  const std::string& key = alg == JWT_ALG_HS256 ? config_.hs256_secret : config_.public_key_pem;
  jwt_t* raw = nullptr;
  int rc = jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size()));
  JwtPtr jwt(raw);
  ERR_clear_error();
  if (rc != 0 || jwt == nullptr) {
    // libjwt does not say why; report a broken payload as such rather than as a bad signature.
    CG_RETURN_IF_ERROR(DecodeJsonSegment(parts[1], "payload").status());
    return Unauthenticated("invalid signature");
  }
  if (jwt_get_alg(jwt.get()) != alg) {
    return Unauthenticated("wrong signing algorithm");
  }

  // Time.
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const int64_t leeway = config_.leeway_seconds;
  CG_ASSIGN_OR_RETURN(std::optional<int64_t> exp, GetTimeClaim(jwt.get(), "exp"));
  if (!exp.has_value()) {
    return Unauthenticated("token has no \"exp\" claim");
  }
  if (now >= *exp + leeway) {
    return Unauthenticated("token expired");
  }
  CG_ASSIGN_OR_RETURN(std::optional<int64_t> nbf, GetTimeClaim(jwt.get(), "nbf"));
  if (nbf.has_value() && now + leeway < *nbf) {
    return Unauthenticated("token not yet valid (nbf is in the future)");
  }
  CG_ASSIGN_OR_RETURN(std::optional<int64_t> iat, GetTimeClaim(jwt.get(), "iat"));
  if (iat.has_value() && now + leeway < *iat) {
    return Unauthenticated("token issued in the future (iat)");
  }

  // Issuer and audience.
  const char* iss = jwt_get_grant(jwt.get(), "iss");  // null when absent or not a string
  if (iss == nullptr || config_.issuer != iss) {
    MallocString present(jwt_get_grants_json(jwt.get(), "iss"));
    return Unauthenticated(present == nullptr
                               ? "token has no \"iss\" claim"
                               : "wrong issuer: token was not issued by a trusted issuer");
  }
  CG_RETURN_IF_ERROR(CheckAudience(jwt.get(), config_.audience));

  // Identity.
  Verified verified;
  verified.expires_at_unix = *exp;
  CG_ASSIGN_OR_RETURN(verified.principal.subject,
                      GetStringClaim(jwt.get(), "sub", "the caller's identity"));
  CG_ASSIGN_OR_RETURN(verified.principal.organization,
                      GetStringClaim(jwt.get(), "org", "the organization resource name"));
  CG_ASSIGN_OR_RETURN(verified.principal.roles, GetRoles(jwt.get()));
  return verified;
}

Authenticator::CacheStats Authenticator::cache_stats() const {
  CacheStats stats;
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.entries = cache_ != nullptr ? cache_->size() : 0;
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Roles.
// ---------------------------------------------------------------------------------------------

absl::Status RequireAnyRole(const Principal& p, std::initializer_list<absl::string_view> roles) {
  if (p.HasAnyRole(roles)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(roles.size() == 1 ? "requires the role: " : "requires one of the roles: ",
                   absl::StrJoin(roles, ", ")));
}

// ---------------------------------------------------------------------------------------------
// Minting.
// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::string> MintToken(const TokenSpec& spec, absl::string_view algorithm,
                                      absl::string_view key) {
  std::optional<jwt_alg_t> alg = ParseAlgorithm(algorithm);
  if (!alg.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown algorithm \"", absl::CHexEscape(algorithm), "\"; expected HS256, RS256 or ES256"));
  }
  if (*alg == JWT_ALG_HS256) {
    if (key.size() < kMinHs256SecretBytes) {
      return absl::InvalidArgumentError(absl::StrCat("HS256 secret is ", key.size(),
                                                     " bytes; at least ", kMinHs256SecretBytes,
                                                     " are required"));
    }
  } else {
    CG_RETURN_IF_ERROR(CheckPemKey(key, *alg, /*is_private=*/true, "private key"));
  }
  if (spec.issuer.empty() || spec.audience.empty()) {
    return absl::InvalidArgumentError("issuer and audience must not be empty");
  }

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0 || raw == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate a JWT");
  }
  JwtPtr jwt(raw);

  const int64_t now = spec.issued_at != 0 ? spec.issued_at : absl::ToUnixSeconds(absl::Now());
  int rc = 0;
  rc |= jwt_add_grant(jwt.get(), "iss", spec.issuer.c_str());
  rc |= jwt_add_grant(jwt.get(), "aud", spec.audience.c_str());
  if (!spec.subject.empty()) {
    rc |= jwt_add_grant(jwt.get(), "sub", spec.subject.c_str());
  }
  if (!spec.organization.empty()) {
    rc |= jwt_add_grant(jwt.get(), "org", spec.organization.c_str());
  }
  rc |= jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now));
  rc |= jwt_add_grant_int(jwt.get(), "nbf", static_cast<long>(now + spec.not_before_offset));
  rc |= jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now + spec.ttl_seconds));
  if (!spec.roles.empty()) {
    // {"roles": [...]} serialized by protobuf so every role string is escaped correctly.
    google::protobuf::Struct claims;
    google::protobuf::ListValue* list = (*claims.mutable_fields())["roles"].mutable_list_value();
    for (const std::string& role : spec.roles) {
      list->add_values()->set_string_value(role);
    }
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(claims, &json).ok()) {
      return absl::InternalError("cannot serialize the roles claim");
    }
    rc |= jwt_add_grants_json(jwt.get(), json.c_str());
  }
  if (rc != 0) {
    return absl::InvalidArgumentError("cannot add the claims to the token");
  }
  if (jwt_set_alg(jwt.get(), *alg, reinterpret_cast<const unsigned char*>(key.data()),
                  static_cast<int>(key.size())) != 0) {
    return absl::InvalidArgumentError("libjwt rejected the signing key");
  }
  MallocString encoded(jwt_encode_str(jwt.get()));
  ERR_clear_error();
  if (encoded == nullptr) {
    return absl::InternalError(absl::StrCat("signing the token with ", algorithm, " failed"));
  }
  return std::string(encoded.get());
}

}  // namespace clustergov

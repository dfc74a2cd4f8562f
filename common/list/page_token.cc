#include "common/list/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace clustergov {
namespace {

constexpr std::string_view kPageTokenField = "page_token";
constexpr std::string_view kPageSizeField = "page_size";

[[noreturn]] void Fatal(const char* message) {
  std::fprintf(stderr, "FATAL: %s\n", message);
  std::fflush(stderr);
  std::abort();
}

// Debian's Abseil is built with its own absl::string_view rather than an alias of
// std::string_view, so std::string_view arguments to Abseil functions are converted explicitly.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

void AppendBigEndian64(uint64_t value, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

absl::Status MalformedToken(std::string_view why) {
  return InvalidField(AbslView(kPageTokenField), absl::StrCat("invalid page token: ", AbslView(why)));
}

}  // namespace

PageTokenCodec::PageTokenCodec(std::string secret) : secret_(std::move(secret)) {
  if (secret_.empty()) {
    Fatal("PageTokenCodec requires a non-empty secret");
  }
}

std::string PageTokenCodec::Mac(std::string_view data) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &digest_len);
  if (ok == nullptr || digest_len < kMacSize) {
    Fatal("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), kMacSize);
}

std::string PageTokenCodec::Encode(clustergov::common::v1::PageTokenPayload payload, const Principal& caller) const {
  payload.set_caller_hash(CallerHash(caller));
  std::string raw = payload.SerializeAsString();
  const std::string mac = Mac(raw);
  raw += mac;
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<clustergov::common::v1::PageTokenPayload> PageTokenCodec::Decode(std::string_view token,
                                                                                uint64_t query_hash,
                                                                                const Principal& caller) const {
  auto payload = Verify(token, query_hash);
  if (!payload.ok()) return payload.status();
  if (payload->caller_hash() != CallerHash(caller)) {
    return MalformedToken("it was issued to another caller; start over without a page token");
  }
  return payload;
}

absl::StatusOr<std::string> PageTokenCodec::Reissue(std::string_view token, uint64_t query_hash,
                                                    const Principal& caller) const {
  auto payload = Verify(token, query_hash);
  if (!payload.ok()) return payload.status();
  if (payload->caller_hash() == CallerHash(caller)) return std::string(token);
  return Encode(*std::move(payload), caller);
}

absl::StatusOr<clustergov::common::v1::PageTokenPayload> PageTokenCodec::Verify(std::string_view token,
                                                                                uint64_t query_hash) const {
  if (token.empty()) {
    return MalformedToken("empty");
  }
  if (token.size() > kMaxTokenLength) {
    return MalformedToken("too long");
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(AbslView(token), &raw)) {
    return MalformedToken("not base64url");
  }
  // Only the exact encoding Encode() produces is accepted, so that no two token strings carry
  // the same content (padding, unused trailing bits).
  if (absl::WebSafeBase64Escape(raw) != token) {
    return MalformedToken("not canonical base64url");
  }
  if (raw.size() < kMacSize) {
    return MalformedToken("too short");
  }
  const std::string_view data = std::string_view(raw).substr(0, raw.size() - kMacSize);
  const std::string_view mac = std::string_view(raw).substr(raw.size() - kMacSize);
  const std::string expected = Mac(data);
  if (CRYPTO_memcmp(expected.data(), mac.data(), kMacSize) != 0) {
    return MalformedToken("signature mismatch");
  }
  clustergov::common::v1::PageTokenPayload payload;
  if (!payload.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return MalformedToken("undecodable payload");
  }
  if (payload.query_hash() != query_hash) {
    return MalformedToken(
        "it was issued for a different query; repeat the request with the same parameters "
        "(filter, order, ...) or start over without a page token");
  }
  return payload;
}

uint64_t QueryHash(std::initializer_list<std::string_view> parts) {
  std::string buffer;
  for (std::string_view part : parts) {
    AppendBigEndian64(part.size(), &buffer);
    buffer.append(part);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (SHA256(reinterpret_cast<const unsigned char*>(buffer.data()), buffer.size(), digest) ==
      nullptr) {
    Fatal("SHA-256 failed");
  }
  uint64_t hash = 0;
  for (int i = 0; i < 8; ++i) {
    hash = (hash << 8) | digest[i];
  }
  return hash;
}

uint64_t CallerHash(const Principal& caller) {
  return QueryHash({"caller", caller.subject, caller.organization});
}

absl::StatusOr<int> NormalizePageSize(int32_t requested, int default_size, int max_size) {
  if (requested < 0) {
    return InvalidField(AbslView(kPageSizeField),
                        absl::StrCat("must not be negative, got ", requested));
  }
  if (requested == 0) {
    return std::min(default_size, max_size);
  }
  if (requested > max_size) {
    return max_size;
  }
  return static_cast<int>(requested);
}

}  // namespace clustergov

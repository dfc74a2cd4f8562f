#pragma once

// Opaque, tamper-evident page tokens bound to the query that produced them and to the caller
// they were issued to, plus page-size normalization shared by every List method.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/auth/principal.h"

namespace clustergov {

// Signs and verifies page tokens.
//
// Token format: base64url without padding of (serialized PageTokenPayload || MAC), where MAC is
// the first 16 bytes of HMAC-SHA256(secret, serialized PageTokenPayload).
class PageTokenCodec {
 public:
  // Bytes of the truncated HMAC-SHA256 appended to the payload.
  static constexpr size_t kMacSize = 16;
  // Tokens longer than this are rejected before decoding.
  static constexpr size_t kMaxTokenLength = 4096;

  // `secret` is the HMAC key and must be non-empty; an empty secret aborts the process
  // (a deployment error that must never silently produce forgeable tokens).
  explicit PageTokenCodec(std::string secret);

  // Issues a token to `caller`: its caller_hash is set to CallerHash(caller).
  std::string Encode(clustergov::common::v1::PageTokenPayload payload, const Principal& caller) const;

  // INVALID_ARGUMENT naming field "page_token" when the token is malformed (including empty or
  // not in canonical base64url form), its signature is wrong, its query_hash differs from
  // `query_hash`, or it was issued to another caller than `caller`.
  absl::StatusOr<clustergov::common::v1::PageTokenPayload> Decode(std::string_view token, uint64_t query_hash,
                                                                  const Principal& caller) const;

  // The same position for `caller`: a token from a page cached for every caller was issued to
  // whoever loaded it. Checks the signature and the query as Decode does, not the caller.
  absl::StatusOr<std::string> Reissue(std::string_view token, uint64_t query_hash, const Principal& caller) const;

 private:
  std::string Mac(std::string_view data) const;
  absl::StatusOr<clustergov::common::v1::PageTokenPayload> Verify(std::string_view token, uint64_t query_hash) const;

  std::string secret_;
};

// A hash of the query parameters that a page token is bound to (filter, order, scope, ...).
// Stable across processes, machines and releases: the first 8 bytes, read big-endian, of
// SHA-256 over the concatenation, for each part, of its length as an 8-byte big-endian integer
// followed by its bytes. The length prefix keeps ("ab", "c") and ("a", "bc") apart.
uint64_t QueryHash(std::initializer_list<std::string_view> parts);

// Who a page token is issued to: a hash (as QueryHash) of the caller's subject and organization.
uint64_t CallerHash(const Principal& caller);

// Validates a requested page size: negative → INVALID_ARGUMENT naming field "page_size";
// 0 → `default_size`; above `max_size` → `max_size`; otherwise `requested`.
absl::StatusOr<int> NormalizePageSize(int32_t requested, int default_size = 50,
                                      int max_size = 500);

}  // namespace clustergov

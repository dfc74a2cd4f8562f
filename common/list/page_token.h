#pragma once

// Opaque, tamper-evident page tokens bound to the query that produced them, plus page-size
// normalization shared by every List method.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "clustergov/common/v1/common.pb.h"

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

  std::string Encode(const clustergov::common::v1::PageTokenPayload& payload) const;

  // INVALID_ARGUMENT naming field "page_token" when the token is malformed (including empty or
  // not in canonical base64url form), its signature is wrong, or its query_hash differs from
  // `query_hash`.
  absl::StatusOr<clustergov::common::v1::PageTokenPayload> Decode(std::string_view token,
                                                                  uint64_t query_hash) const;

 private:
  std::string Mac(std::string_view data) const;

  std::string secret_;
};

// A hash of the query parameters that a page token is bound to (filter, order, caller, ...).
// Stable across processes, machines and releases: the first 8 bytes, read big-endian, of
// SHA-256 over the concatenation, for each part, of its length as an 8-byte big-endian integer
// followed by its bytes. The length prefix keeps ("ab", "c") and ("a", "bc") apart.
uint64_t QueryHash(std::initializer_list<std::string_view> parts);

// Validates a requested page size: negative → INVALID_ARGUMENT naming field "page_size";
// 0 → `default_size`; above `max_size` → `max_size`; otherwise `requested`.
absl::StatusOr<int> NormalizePageSize(int32_t requested, int default_size = 50,
                                      int max_size = 500);

}  // namespace clustergov

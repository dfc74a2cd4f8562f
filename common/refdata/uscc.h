#pragma once

// The unified social credit code (统一社会信用代码, GB 32100-2015): the 18-character identifier
// of every legal person and other organization in China, used as the enterprise id
// ("enterprises/{uscc}").
//
//   position  1     registration authority (登记管理部门码): 1-9, A, N, Y
//   position  2     entity type (机构类别码), allowed values depend on the authority
//   positions 3-8   administrative division code (登记管理机关行政区划码, GB/T 2260)
//   positions 9-17  organization code (主体标识码)
//   position  18    check character (校验码), GB 32100-2015 modulo 31
//
// All characters come from the 31-character alphabet "0123456789ABCDEFGHJKLMNPQRTUWXY"
// (the digits and the capital letters without I, O, S, V, Z). Lower case is rejected.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace clustergov::refdata {

// The 31 characters a code is written in, in value order (a character's value is its index).
inline constexpr absl::string_view kUsccAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";

// OK when `code` is a well-formed unified social credit code with a correct check character;
// otherwise INVALID_ARGUMENT with one field violation on `field` describing the first rule
// broken (length, alphabet/case, registration authority, entity type, division code, check).
absl::Status ValidateUscc(absl::string_view code, absl::string_view field = "uscc");

// The check character (position 18) for `first17`, which must be exactly 17 characters of
// kUsccAlphabet; '\0' when it is not.
char UsccCheckCharacter(absl::string_view first17);

}  // namespace clustergov::refdata

#pragma once

// Update masks, the same way in every service (AIP-134): an empty mask or "*" means every
// updatable field; any other path must be one of them.

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/message.h"

namespace clustergov {

// The top-level field names to update. INVALID_ARGUMENT on `update_mask` for a path that is not
// updatable (unknown, output only, or nested).
absl::StatusOr<std::vector<std::string>> ResolveUpdateMask(const google::protobuf::FieldMask& mask,
                                                            const std::set<std::string>& updatable);

// Replaces the named top-level fields of `to` with those of `from` (repeated and message fields
// are replaced, not merged; an unset message field clears it).
void CopyFields(const std::vector<std::string>& paths, const google::protobuf::Message& from,
                google::protobuf::Message* to);

}  // namespace clustergov

#pragma once

// The seed data set: the 13 clusters of the plan and its 15 key tasks, compiled into the binary
// from services/clusters/seed/clusters.json (or read from a file given at run time).

#include <string>

#include "absl/status/statusor.h"
#include "clustergov/clusters/v1/clusters.pb.h"

namespace clustergov::clusters {

// Parses the embedded seed, or `path` when not empty. INVALID_ARGUMENT naming the problem when
// the JSON is malformed or has unknown fields.
absl::StatusOr<v1::SeedData> LoadSeedData(const std::string& path);

// The default evaluation rule set (published as ruleSets/v1 when missing), embedded from
// services/clusters/seed/rule_set_v1.json. Parsed only; ValidateRuleSet checks it.
absl::StatusOr<v1::RuleSet> LoadDefaultRuleSet();

}  // namespace clustergov::clusters

#pragma once

// Cluster strength by the US Cluster Mapping Project's method, in integers: per league region the
// location quotient (LQ) of the cluster's employment against all registered employment, and the
// "strong cluster-region" flag. Pure computation (docs/enterprises.md has a worked example).

#include <cstdint>
#include <string>
#include <vector>

#include "clustergov/enterprises/v1/enterprises.pb.h"

namespace clustergov::enterprises {

struct RegionEmployment {
  std::string region;
  int64_t employment = 0;         // the cluster's active members in the region
  int32_t establishments = 0;     // how many members
  int64_t region_employment = 0;  // every active registered enterprise in the region
};

// The nearest-rank `percentile` (1..100) of `values`: sorted ascending, the value at rank
// ceil(percentile / 100 × N) (1-based). 0 for no values.
int64_t NearestRankPercentile(std::vector<int64_t> values, int percentile);

// LQ = (cluster_region / region) / (cluster_total / total) in basis points, rounded half up;
// 0 when any denominator is 0.
int64_t LocationQuotientBp(int64_t cluster_region, int64_t region, int64_t cluster_total, int64_t total);

// One row per region in the order given (the caller passes every league region). Fills
// everything but `cluster` and `as_of`.
v1::ClusterStrength ComputeStrength(const std::vector<RegionEmployment>& regions);

}  // namespace clustergov::enterprises

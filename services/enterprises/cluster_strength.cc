#include "services/enterprises/cluster_strength.h"

#include <algorithm>

namespace clustergov::enterprises {

namespace {
constexpr int64_t kOneBp = 10000;  // LQ 1.0
}  // namespace

int64_t NearestRankPercentile(std::vector<int64_t> values, int percentile) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const int64_t n = static_cast<int64_t>(values.size());
  int64_t rank = (static_cast<int64_t>(percentile) * n + 99) / 100;  // ceil(p × N / 100)
  rank = std::clamp<int64_t>(rank, 1, n);
  return values[rank - 1];
}

int64_t LocationQuotientBp(int64_t cluster_region, int64_t region, int64_t cluster_total, int64_t total) {
  if (region <= 0 || cluster_total <= 0 || total <= 0 || cluster_region <= 0) return 0;
  // Up to 10^13 × 10^13 × 10^4: beyond 64 bits, so in 128.
  const __int128 num = static_cast<__int128>(cluster_region) * total * kOneBp;
  const __int128 den = static_cast<__int128>(region) * cluster_total;
  return static_cast<int64_t>((2 * num + den) / (2 * den));
}

v1::ClusterStrength ComputeStrength(const std::vector<RegionEmployment>& regions) {
  v1::ClusterStrength out;
  int64_t cluster_total = 0;
  int64_t total = 0;
  for (const auto& r : regions) {
    cluster_total += r.employment;
    total += r.region_employment;
  }
  std::vector<int64_t> lqs;
  std::vector<int64_t> employment;
  std::vector<int64_t> establishments;
  for (const auto& r : regions) {
    auto* row = out.add_regions();
    row->set_region(r.region);
    row->set_employment(r.employment);
    row->set_establishments(r.establishments);
    row->set_region_employment(r.region_employment);
    row->set_location_quotient_bp(LocationQuotientBp(r.employment, r.region_employment, cluster_total, total));
    if (r.establishments > 0) {  // percentiles over the regions where the cluster is present
      lqs.push_back(row->location_quotient_bp());
      employment.push_back(r.employment);
      establishments.push_back(r.establishments);
    }
  }
  out.set_cluster_employment(cluster_total);
  out.set_total_employment(total);
  out.set_location_quotient_p75_bp(NearestRankPercentile(lqs, 75));
  out.set_employment_p25(NearestRankPercentile(employment, 25));
  out.set_establishments_p25(static_cast<int32_t>(NearestRankPercentile(establishments, 25)));
  int strong = 0;
  for (auto& row : *out.mutable_regions()) {
    const bool is_strong = row.establishments() > 0 && row.location_quotient_bp() >= kOneBp &&
                           row.location_quotient_bp() >= out.location_quotient_p75_bp() &&
                           row.employment() >= out.employment_p25() &&
                           row.establishments() >= out.establishments_p25();
    row.set_strong(is_strong);
    if (is_strong) ++strong;
  }
  out.set_strong_regions(strong);
  return out;
}

}  // namespace clustergov::enterprises

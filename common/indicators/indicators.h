#pragma once

// The server side of GetClusterIndicators, shared by every service that owns data about clusters
// (enterprises, promotion, support, talent): request validation, the one authorization rule, and
// a builder that stamps every indicator with its source, as-of time and key prefix.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/auth/principal.h"

namespace clustergov::indicators {

inline constexpr int kMinYear = 2000;
inline constexpr int kMaxYear = 2100;

// Unit codes used by indicators.
namespace units {
inline constexpr absl::string_view kCount = "count";
inline constexpr absl::string_view kPerson = "person";
inline constexpr absl::string_view kCny10k = "cny_10k";    // ten-thousand yuan (万元)
inline constexpr absl::string_view kFen = "fen";           // 0.01 yuan
inline constexpr absl::string_view kBasisPoints = "bp";    // 1/10,000
}  // namespace units

// The cluster id of a valid request: INVALID_ARGUMENT naming `cluster` (not "clusters/{id}") or
// `year` (outside 2000..2100), all violations at once.
absl::StatusOr<std::string> ParseRequest(const common::v1::GetClusterIndicatorsRequest& req);

// Indicators are read by government, auditors, admins and other services; PERMISSION_DENIED
// otherwise.
absl::Status CheckReader(const Principal& caller);

// First and last calendar day of `year`, "YYYY-01-01" and "YYYY-12-31".
std::string YearStart(int year);
std::string YearEnd(int year);
// The instant `year` begins in China Standard Time (the year is [YearBegin(y), YearBegin(y + 1))).
absl::Time YearBegin(int year);

// The dimension a count of certifications feeds, by the enterprises service's CertificationKind
// name: advanced manufacturing for MANUFACTURING_PILOT, SMART_FACTORY, GREEN_FACTORY and
// QUALITY_MANAGEMENT, innovation for the others.
common::v1::Dimension CertificationDimension(absl::string_view kind_name);

// The response being built: Add("members.total", ...) records "<source>.members.total".
class IndicatorSet {
 public:
  IndicatorSet(absl::string_view source, const common::v1::GetClusterIndicatorsRequest& req,
               absl::Time as_of = absl::Now());

  void Add(absl::string_view name, int64_t value, absl::string_view unit, common::v1::Dimension dimension,
           absl::string_view description);
  void AddBasis(absl::string_view resource);

  common::v1::ClusterIndicators Take() { return std::move(out_); }

 private:
  std::string source_;
  absl::Time as_of_;
  common::v1::ClusterIndicators out_;
};

}  // namespace clustergov::indicators

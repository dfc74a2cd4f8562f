#include "common/indicators/indicators.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status.h"
#include "common/status/validation.h"

namespace clustergov::indicators {

absl::StatusOr<std::string> ParseRequest(const common::v1::GetClusterIndicatorsRequest& req) {
  FieldErrors errors;
  auto id = ParseResourceName("cluster", req.cluster(), "clusters");
  if (!id.ok()) {
    for (const auto& v : GetFieldViolations(id.status())) errors.Add(v.field, v.description);
  }
  if (req.year() < kMinYear || req.year() > kMaxYear) {
    errors.Add("year", absl::StrFormat("must be %d to %d", kMinYear, kMaxYear));
  }
  CG_RETURN_IF_ERROR(errors.ToStatus());
  return *id;
}

absl::Status CheckReader(const Principal& caller) {
  if (!caller.HasAnyRole({roles::kGovernment, roles::kAuditor, roles::kAdmin, roles::kService})) {
    return absl::PermissionDeniedError("cluster indicators are open to government, auditors, admins and services");
  }
  return absl::OkStatus();
}

common::v1::Dimension CertificationDimension(absl::string_view kind_name) {
  for (absl::string_view manufacturing : {"MANUFACTURING_PILOT", "SMART_FACTORY", "GREEN_FACTORY", "QUALITY_MANAGEMENT"}) {
    if (kind_name == manufacturing) return common::v1::DIMENSION_MANUFACTURING;
  }
  return common::v1::DIMENSION_INNOVATION;
}

std::string YearStart(int year) { return absl::StrFormat("%04d-01-01", year); }
std::string YearEnd(int year) { return absl::StrFormat("%04d-12-31", year); }

absl::Time YearBegin(int year) { return absl::FromCivil(absl::CivilDay(year, 1, 1), absl::FixedTimeZone(8 * 3600)); }

IndicatorSet::IndicatorSet(absl::string_view source, const common::v1::GetClusterIndicatorsRequest& req,
                           absl::Time as_of)
    : source_(source), as_of_(as_of) {
  out_.set_cluster(req.cluster());
  out_.set_year(req.year());
}

void IndicatorSet::Add(absl::string_view name, int64_t value, absl::string_view unit,
                       common::v1::Dimension dimension, absl::string_view description) {
  auto* i = out_.add_indicators();
  i->set_key(absl::StrCat(source_, ".", name));
  i->set_value(value);
  i->set_unit(std::string(unit));
  i->set_source(source_);
  const int64_t micros = absl::ToUnixMicros(as_of_);
  i->mutable_as_of()->set_seconds(micros / 1000000);
  i->mutable_as_of()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  i->set_dimension(dimension);
  i->set_description(std::string(description));
}

void IndicatorSet::AddBasis(absl::string_view resource) { out_.add_basis(std::string(resource)); }

}  // namespace clustergov::indicators

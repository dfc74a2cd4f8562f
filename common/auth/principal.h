#pragma once

// The authenticated caller. Header-only so that every layer can name it without linking auth.

#include "absl/strings/string_view.h"
#include <algorithm>
#include <string>

#include <vector>

namespace clustergov {

// Roles a token can carry.
namespace roles {
inline constexpr absl::string_view kGovernment = "government";
inline constexpr absl::string_view kPromotionOrg = "promotion_org";
inline constexpr absl::string_view kEnterprise = "enterprise";
inline constexpr absl::string_view kTalent = "talent";
inline constexpr absl::string_view kAuditor = "auditor";
inline constexpr absl::string_view kAdmin = "admin";
inline constexpr absl::string_view kService = "service";
// A third-party expert body scoring cluster evaluations (organization "experts/{id}").
inline constexpr absl::string_view kExpert = "expert";
// Every role a token may carry.
inline constexpr absl::string_view kAll[] = {kGovernment, kPromotionOrg, kEnterprise, kTalent,
                                             kAuditor,    kAdmin,        kService,    kExpert};
}  // namespace roles

struct Principal {
  std::string subject;
  // Resource name of the organization the caller acts for: "departments/industry_it",
  // "enterprises/{uscc}", "promotionOrgs/{id}", "talents/{id}", "agencies/{code}", "experts/{id}".
  std::string organization;
  std::vector<std::string> roles;

  bool HasRole(absl::string_view role) const {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
  }
  bool HasAnyRole(std::initializer_list<absl::string_view> wanted) const {
    for (auto r : wanted) {
      if (HasRole(r)) return true;
    }
    return false;
  }
  // True when the caller acts for government department `code` (e.g. "industry_it").
  bool ActsForDepartment(absl::string_view code) const {
    return HasRole(roles::kGovernment) && organization.size() == 12 + code.size() &&
           absl::string_view(organization).substr(0, 12) == "departments/" &&
           absl::string_view(organization).substr(12) == code;
  }
};

// A service acting on its own behalf (its calls to other services, its scheduled jobs' writes):
// subject "service:<name>", organization "services/<name>", role "service".
inline Principal ServicePrincipal(absl::string_view service) {
  const std::string name(service);
  return Principal{"service:" + name, "services/" + name, {std::string(roles::kService)}};
}

}  // namespace clustergov

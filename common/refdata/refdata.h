#pragma once

// Reference data every service validates against: the 12 league-level regions (GB/T 2260)
// and the government departments of the plan, with stable codes. Unknown codes are rejected.

#include "absl/strings/string_view.h"
#include <string>

#include <vector>

namespace clustergov::refdata {

struct RegionInfo {
  absl::string_view code;     // "150100"
  absl::string_view name_zh;  // "呼和浩特市"
  absl::string_view name_en;  // "Hohhot"
};

struct DepartmentInfo {
  absl::string_view code;     // "industry_it", or "league_150100" for a league government
  absl::string_view name_zh;
  absl::string_view name_en;
  absl::string_view kind;     // "department" | "league"
};

const std::vector<RegionInfo>& Regions();
const RegionInfo* FindRegion(absl::string_view code);
bool IsRegionCode(absl::string_view code);

// Autonomous-region departments followed by the 12 league governments.
const std::vector<DepartmentInfo>& Departments();
const DepartmentInfo* FindDepartment(absl::string_view code);
bool IsDepartmentCode(absl::string_view code);

// Organization resource name of a department: "departments/{code}".
std::string DepartmentOrganization(absl::string_view code);

}  // namespace clustergov::refdata

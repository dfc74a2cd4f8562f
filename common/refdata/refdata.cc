#include "absl/strings/string_view.h"
#include "common/refdata/refdata.h"

#include "absl/strings/str_cat.h"

namespace clustergov::refdata {

const std::vector<RegionInfo>& Regions() {
  static const auto* regions = new std::vector<RegionInfo>{
      {"150100", "呼和浩特市", "Hohhot"},     {"150200", "包头市", "Baotou"},
      {"150300", "乌海市", "Wuhai"},          {"150400", "赤峰市", "Chifeng"},
      {"150500", "通辽市", "Tongliao"},       {"150600", "鄂尔多斯市", "Ordos"},
      {"150700", "呼伦贝尔市", "Hulunbuir"},  {"150800", "巴彦淖尔市", "Bayannur"},
      {"150900", "乌兰察布市", "Ulanqab"},    {"152200", "兴安盟", "Hinggan"},
      {"152500", "锡林郭勒盟", "Xilingol"},   {"152900", "阿拉善盟", "Alxa"},
  };
  return *regions;
}

const RegionInfo* FindRegion(absl::string_view code) {
  for (const auto& r : Regions()) {
    if (r.code == code) return &r;
  }
  return nullptr;
}

bool IsRegionCode(absl::string_view code) { return FindRegion(code) != nullptr; }

const std::vector<DepartmentInfo>& Departments() {
  static const auto* departments = [] {
    auto* v = new std::vector<DepartmentInfo>{
        {"industry_it", "自治区工业和信息化厅", "Department of Industry and Information Technology", "department"},
        {"development_reform", "自治区发展和改革委员会", "Development and Reform Commission", "department"},
        {"energy", "自治区能源局", "Energy Bureau", "department"},
        {"science_technology", "自治区科学技术厅", "Department of Science and Technology", "department"},
        {"market_regulation", "自治区市场监督管理局", "Administration for Market Regulation", "department"},
        {"hr_social_security", "自治区人力资源和社会保障厅", "Department of Human Resources and Social Security", "department"},
        {"education", "自治区教育厅", "Department of Education", "department"},
        {"commerce", "自治区商务厅", "Department of Commerce", "department"},
    };
    // League/city governments (盟市人民政府/行政公署), one per region.
    static const std::vector<std::string>* league_codes = [] {
      auto* codes = new std::vector<std::string>();
      for (const auto& r : Regions()) codes->push_back(absl::StrCat("league_", r.code));
      return codes;
    }();
    static const std::vector<std::string>* league_names_en = [] {
      auto* names = new std::vector<std::string>();
      for (const auto& r : Regions()) names->push_back(absl::StrCat(r.name_en, " league/city government"));
      return names;
    }();
    static const std::vector<std::string>* league_names_zh = [] {
      auto* names = new std::vector<std::string>();
      for (const auto& r : Regions()) names->push_back(absl::StrCat(r.name_zh, "人民政府"));
      return names;
    }();
    for (size_t i = 0; i < Regions().size(); ++i) {
      v->push_back({(*league_codes)[i], (*league_names_zh)[i], (*league_names_en)[i], "league"});
    }
    return v;
  }();
  return *departments;
}

const DepartmentInfo* FindDepartment(absl::string_view code) {
  for (const auto& d : Departments()) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

bool IsDepartmentCode(absl::string_view code) { return FindDepartment(code) != nullptr; }

std::string DepartmentOrganization(absl::string_view code) { return absl::StrCat("departments/", code); }

}  // namespace clustergov::refdata

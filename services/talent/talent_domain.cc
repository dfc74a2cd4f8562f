#include "services/talent/talent_domain.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/indicators/indicators.h"
#include "common/log/log.h"
#include "common/list/paging.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"
#include "common/status/field_mask.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::talent {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxName = 200;
constexpr int kMaxMatchCandidates = 1000;

struct Term {
  const char* code;
  const char* title_zh;
};

constexpr Term kFields[] = {
    {"materials", "材料科学与工程"}, {"chemistry", "化学与化工"},   {"mechanical", "机械工程"},
    {"electrical", "电气工程"},      {"energy", "能源动力"},         {"food", "食品科学与工程"},
    {"biology", "生物与医药"},       {"information", "信息与软件"},  {"management", "工业管理"},
};

constexpr Term kSkills[] = {
    {"dairy_processing", "乳制品加工"},       {"rare_earth_materials", "稀土功能材料"},
    {"coal_chemical_process", "煤化工工艺"},  {"silicon_materials", "硅材料"},
    {"pv_manufacturing", "光伏制造"},         {"fine_chemicals", "精细化工"},
    {"biopharma", "生物制药"},                {"wind_turbine", "风电装备"},
    {"hydrogen_production", "氢能制取"},      {"energy_storage", "储能技术"},
    {"aluminium_processing", "铝加工"},       {"meat_processing", "肉类加工"},
    {"cashmere_textiles", "绒纺"},            {"alloy_metallurgy", "合金冶炼"},
    {"automation", "自动化"},                 {"industrial_software", "工业软件"},
    {"quality_control", "质量控制"},          {"process_engineering", "工艺工程"},
    {"data_analysis", "数据分析"},            {"equipment_maintenance", "设备运维"},
};

constexpr Term kProgrammes[] = {
    {"qiming", "启明计划"},
    {"manufacturing_talent_support", "制造业人才支持计划"},
    {"onsite_engineer", "驻厂工程师"},
    {"excellent_engineer", "卓越工程师"},
    {"caoyuan_yingcai", "草原英才"},
};

template <size_t N>
bool InVocabulary(const Term (&terms)[N], absl::string_view code) {
  for (const auto& t : terms) {
    if (code == t.code) return true;
  }
  return false;
}

absl::Status PermissionDenied(absl::string_view what) { return absl::PermissionDeniedError(what); }

absl::StatusOr<std::string> ParseTalentName(absl::string_view field, absl::string_view name) {
  return ParseResourceName(field, name, "talents");
}

absl::StatusOr<int64_t> ParseNumbered(absl::string_view field, absl::string_view name, absl::string_view collection) {
  return ParseNumberedName(field, name, collection);
}

bool IsTalentSelf(const Principal& p, absl::string_view talent_name) {
  return p.HasRole(roles::kTalent) && p.organization == talent_name;
}

// HR & Social Security, Education and Industry & IT register talents and see contact data.
bool IsTalentAuthority(const Principal& p) {
  return p.ActsForDepartment("hr_social_security") || p.ActsForDepartment("education") ||
         p.ActsForDepartment("industry_it");
}

// HR & Social Security grants levels and programme memberships (refdata department code).
constexpr absl::string_view kGrantingDepartment = "hr_social_security";

bool IsGrantingDepartment(const Principal& p) { return p.ActsForDepartment(kGrantingDepartment); }

void SetActor(common::v1::Actor* a, const Principal& p) {
  a->set_subject(p.subject);
  a->set_organization(p.organization);
  a->clear_roles();
  for (const auto& r : p.roles) a->add_roles(r);
}

bool ValidDate(const google::type::Date& d) { return IsCalendarDate(d, 2000, 2100); }

// Past its deadline (a calendar day in China Standard Time; the deadline day itself is open).
bool PastDeadline(const v1::Demand& d) { return DateKey(d.deadline()) < TodayInChina(); }

// Universities, research institutes, state-owned enterprises and public institutions are public
// bodies (事业单位/国有): their staff need the home institution's consent to take a placement.
bool NeedsConsent(v1::InstitutionKind kind) {
  return kind == v1::UNIVERSITY || kind == v1::RESEARCH_INSTITUTE || kind == v1::STATE_OWNED_OR_PUBLIC;
}

void ValidateMembership(const v1::ProgrammeMembership& m, absl::string_view field, FieldErrors& errors) {
  if (!InVocabulary(kProgrammes, m.programme())) {
    errors.Add(absl::StrCat(field, ".programme"), "unknown programme code");
  }
  if (m.year() < 2000 || m.year() > 2100) errors.Add(absl::StrCat(field, ".year"), "a year between 2000 and 2100");
}

void ValidateTalent(const v1::Talent& t, FieldErrors& errors) {
  CheckText(errors, "talent.display_name", t.display_name(), kMaxName, true);
  if (!InVocabulary(kFields, t.field())) errors.Add("talent.field", "required: a field code (GetReferenceData)");
  if (t.skills_size() == 0 || t.skills_size() > 20) errors.Add("talent.skills", "1 to 20 skills");
  std::set<std::string> seen;
  for (int i = 0; i < t.skills_size(); ++i) {
    if (!InVocabulary(kSkills, t.skills(i))) {
      errors.Add(absl::StrCat("talent.skills[", i, "]"), absl::StrCat("unknown skill \"", t.skills(i), "\""));
    } else if (!seen.insert(t.skills(i)).second) {
      errors.Add(absl::StrCat("talent.skills[", i, "]"), "duplicate skill");
    }
  }
  if (t.tags_size() > 20) errors.Add("talent.tags", "at most 20 tags");
  for (int i = 0; i < t.tags_size() && i < 20; ++i) {
    CheckText(errors, absl::StrCat("talent.tags[", i, "]"), t.tags(i), 40, true);
  }
  if (!v1::Level_IsValid(t.level())) {
    errors.Add("talent.level", "SKILLED_WORKER, ENGINEER, SENIOR_ENGINEER, HIGH_LEVEL, LEADING or none yet");
  }
  CheckText(errors, "talent.home_institution", t.home_institution(), kMaxName, true);
  if (!v1::InstitutionKind_IsValid(t.institution_kind()) || t.institution_kind() == v1::INSTITUTION_KIND_UNSPECIFIED) {
    errors.Add("talent.institution_kind", "required");
  }
  if (!refdata::IsRegionCode(t.region())) errors.Add("talent.region", "required: a league region code");
  for (int i = 0; i < t.programmes_size(); ++i) {
    ValidateMembership(t.programmes(i), absl::StrCat("talent.programmes[", i, "]"), errors);
  }
  for (int i = 0; i < t.recognized_qualifications_size(); ++i) {
    CheckText(errors, absl::StrCat("talent.recognized_qualifications[", i, "]"), t.recognized_qualifications(i),
              kMaxName, true);
  }
  CheckText(errors, "talent.contact.phone", t.contact().phone(), 40, false);
  if (!t.contact().email().empty() && t.contact().email().find('@') == std::string::npos) {
    errors.Add("talent.contact.email", "not an e-mail address");
  }
}

}  // namespace

int TalentDomain::ScoreValue(const v1::Demand& demand, int matched, int level, bool same_region) {
  // Skills: 60 points in proportion to the demand's skills the talent has; level: 25 at or above
  // the required level, 10 fewer per level below; region: 15 in the demand's region.
  int wanted = std::max(1, demand.skills_size());
  int gap = demand.level() - level;
  return 60 * matched / wanted + (gap <= 0 ? 25 : std::max(0, 25 - 10 * gap)) + (same_region ? 15 : 0);
}

int TalentDomain::Score(const v1::Demand& demand, const MatchRow& row, std::vector<std::string>* reasons) {
  int wanted = std::max(1, demand.skills_size());
  int matched = static_cast<int>(row.matched_skills.size());
  std::vector<std::string> sorted = row.matched_skills;
  std::sort(sorted.begin(), sorted.end());
  reasons->push_back(absl::StrCat("skills ", matched, "/", wanted, ": ", absl::StrJoin(sorted, ", ")));
  int gap = demand.level() - row.level;
  if (row.level == v1::LEVEL_UNSPECIFIED) {
    reasons->push_back(absl::StrCat("no level granted yet; ", v1::Level_Name(demand.level()), " wanted"));
  } else if (gap <= 0) {
    reasons->push_back(absl::StrCat("level ", v1::Level_Name(static_cast<v1::Level>(row.level)), " meets ",
                                    v1::Level_Name(demand.level())));
  } else {
    reasons->push_back(absl::StrCat("level ", v1::Level_Name(static_cast<v1::Level>(row.level)), " is ", gap,
                                    " below ", v1::Level_Name(demand.level())));
  }
  if (row.region == demand.region()) {
    reasons->push_back(absl::StrCat("in region ", row.region));
  } else {
    reasons->push_back(absl::StrCat("in region ", row.region, ", not ", demand.region()));
  }
  return ScoreValue(demand, matched, row.level, row.region == demand.region());
}

namespace {

int SkillBit(absl::string_view code) {
  for (size_t i = 0; i < sizeof(kSkills) / sizeof(kSkills[0]); ++i) {
    if (code == kSkills[i].code) return static_cast<int>(i);
  }
  return -1;
}

uint32_t SkillMask(const google::protobuf::RepeatedPtrField<std::string>& skills) {
  uint32_t mask = 0;
  for (const auto& s : skills) {
    int bit = SkillBit(s);
    if (bit >= 0) mask |= uint32_t{1} << bit;
  }
  return mask;
}

}  // namespace

absl::Status TalentDomain::LoadIndex() {
  // Listening first: a talent written after the load's snapshot is heard of.
  CG_ASSIGN_OR_RETURN(follow_, repo_->FollowTalents([this](const std::string& id) { RefreshIndex(id); },
                                                    [this] { ReloadIndex(); }));
  std::lock_guard<std::mutex> lock(index_mu_);
  return LoadIndexLocked();
}

absl::Status TalentDomain::EnsureIndex() {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (index_loaded_) return absl::OkStatus();
  return LoadIndexLocked();
}

void TalentDomain::ReloadIndex() {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (absl::Status s = LoadIndexLocked(); !s.ok()) {
    log::Warn("match index not reloaded: the next match retries", {{"error", std::string(s.message())}});
  }
}

void TalentDomain::RefreshIndex(const std::string& id) {
  auto t = repo_->GetTalent(id);
  if (t.ok() && t->has_value()) IndexPut(**t);
  if (t.ok()) return;
  log::Warn("match index entry not refreshed: the next match reloads the index",
            {{"talent", id}, {"error", std::string(t.status().message())}});
  std::lock_guard<std::mutex> lock(index_mu_);
  index_loaded_ = false;
}

absl::Status TalentDomain::LoadIndexLocked() {
  index_loaded_ = false;
  std::vector<std::string> all;
  for (const auto& t : kSkills) all.push_back(t.code);
  CG_ASSIGN_OR_RETURN(auto rows, repo_->MatchRows(all));
  index_.clear();
  index_pos_.clear();
  for (auto& row : rows) {
    IndexEntry e{row.id, row.level, row.region, 0, row.revision};
    for (const auto& s : row.matched_skills) {
      int bit = SkillBit(s);
      if (bit >= 0) e.skills |= uint32_t{1} << bit;
    }
    index_pos_[e.id] = index_.size();
    index_.push_back(std::move(e));
  }
  index_loaded_ = true;
  return absl::OkStatus();
}

void TalentDomain::IndexPut(const v1::Talent& t) {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (!index_loaded_) return;  // the first load reads it from the store
  IndexEntry e{t.name().substr(8), t.level(), t.region(), SkillMask(t.skills()), store::RevisionOf(t.etag())};
  auto it = index_pos_.find(e.id);
  if (it != index_pos_.end()) {
    // Only a newer revision replaces the entry (see IndexEntry).
    if (e.revision > index_[it->second].revision) index_[it->second] = std::move(e);
  } else {
    index_pos_[e.id] = index_.size();
    index_.push_back(std::move(e));
  }
}

TalentDomain::TalentDomain(std::unique_ptr<TalentRepository> repository, enterprises::EnterpriseDirectory* enterprises,
                           const PageTokenCodec* page_tokens)
    : repo_(std::move(repository)), enterprises_(enterprises), page_tokens_(page_tokens) {}

absl::Status TalentDomain::Redact(const Principal& p, v1::Talent* t) {
  if (IsTalentSelf(p, t->name()) || IsTalentAuthority(p)) return absl::OkStatus();
  if (p.HasRole(roles::kEnterprise)) {
    CG_ASSIGN_OR_RETURN(bool employs, repo_->Employs(p.organization, t->name()));
    if (employs) return absl::OkStatus();
  }
  t->clear_contact();
  return absl::OkStatus();
}

// ----------------------------------------------------------------------------- talents

absl::StatusOr<v1::Talent> TalentDomain::RegisterTalent(const CallContext& call, const v1::RegisterTalentRequest& req) {
  FieldErrors errors;
  if (!IsResourceId(req.talent_id())) errors.Add("talent_id", "required: 2-63 of [a-z0-9-]");
  ValidateTalent(req.talent(), errors);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  const std::string name = absl::StrCat("talents/", req.talent_id());
  if (!IsTalentSelf(p, name) && !IsTalentAuthority(p) && !p.HasRole(roles::kAdmin)) {
    return PermissionDenied("a talent registers itself; HR & Social Security, Education or Industry & IT may too");
  }
  if ((req.talent().level() != v1::LEVEL_UNSPECIFIED || req.talent().programmes_size() > 0) &&
      !IsGrantingDepartment(p)) {
    return PermissionDenied(
        "a level and programme memberships are granted by HR & Social Security, not declared: register without them");
  }
  store::WriteContext w{&p, "RegisterTalent", req.request_id(), call.request_id, "", &req};
  return Indexed(repo_->Write<v1::Talent>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Talent> {
    CG_ASSIGN_OR_RETURN(auto existing, tx.GetTalent(req.talent_id()));
    if (existing.has_value()) return absl::AlreadyExistsError(absl::StrCat(name, " already exists"));
    v1::Talent t = req.talent();
    t.set_name(name);
    CG_RETURN_IF_ERROR(tx.PutTalent(t, /*create=*/true));
    CG_RETURN_IF_ERROR(tx.Audit(name, "", t.etag()));
    return t;
  }));
}

absl::StatusOr<v1::Talent> TalentDomain::GetTalent(const CallContext& call, const v1::GetTalentRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseTalentName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto t, repo_->GetTalent(id));
  if (!t.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_RETURN_IF_ERROR(Redact(call.principal, &*t));
  return *t;
}

absl::StatusOr<v1::ListTalentsResponse> TalentDomain::ListTalents(const CallContext& call,
                                                                  const v1::ListTalentsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->TalentFilterFields(), {"ListTalents", req.filter()}));
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListTalents(ListQuery{plan.filter, plan.after_key, plan.page_size}));
  for (auto& t : items) CG_RETURN_IF_ERROR(Redact(call.principal, &t));
  v1::ListTalentsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_talents(),
                                    [](const v1::Talent& t) { return t.name().substr(8); }));
  return resp;
}

absl::StatusOr<v1::Talent> TalentDomain::UpdateTalent(const CallContext& call, const v1::UpdateTalentRequest& req) {
  const auto& in = req.talent();
  CG_ASSIGN_OR_RETURN(std::string id, ParseTalentName("talent.name", in.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  static const std::set<std::string> kPaths{"display_name",     "field",  "skills",
                                            "tags",             "home_institution",
                                            "institution_kind", "region", "recognized_qualifications",
                                            "contact"};
  for (const auto& path : req.update_mask().paths()) {
    if (path == "level" || path == "programmes") {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is granted by HR & Social Security ",
                                                      "(SetTalentLevel, GrantProgramme, RevokeProgramme)"));
    }
  }
  CG_ASSIGN_OR_RETURN(std::vector<std::string> paths, ResolveUpdateMask(req.update_mask(), kPaths));
  const Principal& p = call.principal;
  if (!IsTalentSelf(p, in.name()) && !IsTalentAuthority(p) && !p.HasRole(roles::kAdmin)) {
    return PermissionDenied("a talent updates only itself");
  }
  store::WriteContext w{&p, "UpdateTalent", req.request_id(), call.request_id, "", &req};
  return Indexed(repo_->Write<v1::Talent>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Talent> {
    CG_ASSIGN_OR_RETURN(auto t, tx.GetTalent(id));
    if (!t.has_value()) return absl::NotFoundError(absl::StrCat(in.name(), " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("talent.etag", in.etag(), t->etag()));
    std::string before = t->etag();
    CopyFields(paths, in, &*t);
    FieldErrors errors;
    ValidateTalent(*t, errors);
    CG_RETURN_IF_ERROR(errors.ToStatus());
    CG_RETURN_IF_ERROR(tx.PutTalent(*t, /*create=*/false));
    CG_RETURN_IF_ERROR(tx.Audit(t->name(), before, t->etag()));
    return *t;
  }));
}

absl::StatusOr<v1::Talent> TalentDomain::Grant(const CallContext& call, const google::protobuf::Message& req,
                                                const char* method, const std::string& name, const std::string& reason,
                                                const std::string& etag, const std::string& request_id,
                                                const std::function<absl::Status(v1::Talent&)>& change) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseTalentName("name", name));
  FieldErrors errors;
  CheckText(errors, "reason", reason, 2000, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(request_id));
  const Principal& p = call.principal;
  if (!IsGrantingDepartment(p)) {
    return PermissionDenied("levels and programme memberships are granted by HR & Social Security alone");
  }
  store::WriteContext w{&p, method, request_id, call.request_id, reason, &req};
  return Indexed(repo_->Write<v1::Talent>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Talent> {
    CG_ASSIGN_OR_RETURN(auto t, tx.GetTalent(id));
    if (!t.has_value()) return absl::NotFoundError(absl::StrCat(name, " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("etag", etag, t->etag()));
    std::string before = t->etag();
    CG_RETURN_IF_ERROR(change(*t));
    FieldErrors invalid;
    ValidateTalent(*t, invalid);
    CG_RETURN_IF_ERROR(invalid.ToStatus());
    CG_RETURN_IF_ERROR(tx.PutTalent(*t, /*create=*/false));
    CG_RETURN_IF_ERROR(tx.Audit(t->name(), before, t->etag()));
    return *t;
  }));
}

absl::StatusOr<v1::Talent> TalentDomain::SetTalentLevel(const CallContext& call, const v1::SetTalentLevelRequest& req) {
  if (!v1::Level_IsValid(req.level())) {
    return InvalidField("level", "SKILLED_WORKER, ENGINEER, SENIOR_ENGINEER, HIGH_LEVEL, LEADING or LEVEL_UNSPECIFIED");
  }
  return Grant(call, req, "SetTalentLevel", req.name(), req.reason(), req.etag(), req.request_id(),
               [&](v1::Talent& t) -> absl::Status {
                 t.set_level(req.level());
                 return absl::OkStatus();
               });
}

absl::StatusOr<v1::Talent> TalentDomain::GrantProgramme(const CallContext& call, const v1::GrantProgrammeRequest& req) {
  FieldErrors errors;
  ValidateMembership(req.membership(), "membership", errors);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  return Grant(call, req, "GrantProgramme", req.name(), req.reason(), req.etag(), req.request_id(),
               [&](v1::Talent& t) -> absl::Status {
                 for (const auto& m : t.programmes()) {
                   if (m.programme() == req.membership().programme()) {
                     return absl::AlreadyExistsError(
                         absl::StrCat(req.name(), " is already in ", m.programme(), " (", m.year(), ")"));
                   }
                 }
                 *t.add_programmes() = req.membership();
                 return absl::OkStatus();
               });
}

absl::StatusOr<v1::Talent> TalentDomain::RevokeProgramme(const CallContext& call,
                                                         const v1::RevokeProgrammeRequest& req) {
  if (!InVocabulary(kProgrammes, req.programme())) return InvalidField("programme", "unknown programme code");
  return Grant(call, req, "RevokeProgramme", req.name(), req.reason(), req.etag(), req.request_id(),
               [&](v1::Talent& t) -> absl::Status {
                 auto* programmes = t.mutable_programmes();
                 auto it = std::find_if(programmes->begin(), programmes->end(), [&](const v1::ProgrammeMembership& m) {
                   return m.programme() == req.programme();
                 });
                 if (it == programmes->end()) {
                   return absl::NotFoundError(absl::StrCat(req.name(), " is not in ", req.programme()));
                 }
                 programmes->erase(it);
                 return absl::OkStatus();
               });
}

// ----------------------------------------------------------------------------- demands

absl::StatusOr<v1::Demand> TalentDomain::PostDemand(const CallContext& call, const v1::PostDemandRequest& req) {
  const auto& in = req.demand();
  const Principal& p = call.principal;
  FieldErrors errors;
  if (!absl::StartsWith(in.cluster(), "clusters/") || !IsResourceId(in.cluster().substr(9))) {
    errors.Add("demand.cluster", "required: clusters/{cluster_id}");
  }
  CheckText(errors, "demand.title", in.title(), kMaxName, true);
  if (in.skills_size() == 0 || in.skills_size() > 20) errors.Add("demand.skills", "1 to 20 skills");
  std::set<std::string> seen;
  for (int i = 0; i < in.skills_size(); ++i) {
    if (!InVocabulary(kSkills, in.skills(i))) {
      errors.Add(absl::StrCat("demand.skills[", i, "]"), absl::StrCat("unknown skill \"", in.skills(i), "\""));
    } else if (!seen.insert(in.skills(i)).second) {
      // A repeated skill would count twice in the match score's denominator but match once.
      errors.Add(absl::StrCat("demand.skills[", i, "]"), "duplicate skill");
    }
  }
  if (!v1::Level_IsValid(in.level()) || in.level() == v1::LEVEL_UNSPECIFIED) errors.Add("demand.level", "required");
  if (in.count() < 1 || in.count() > 10000) errors.Add("demand.count", "1 to 10000 positions");
  if (!refdata::IsRegionCode(in.region())) errors.Add("demand.region", "required: a league region code");
  if (!ValidDate(in.deadline())) {
    errors.Add("demand.deadline", "required: a calendar date");
  } else if (PastDeadline(in)) {
    errors.Add("demand.deadline", absl::StrCat("must not be in the past (today is ", TodayInChina(), ")"));
  }
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  if (!p.HasRole(roles::kEnterprise) || !absl::StartsWith(p.organization, "enterprises/")) {
    return PermissionDenied("demands are posted by enterprises for themselves");
  }
  if (!in.enterprise().empty() && in.enterprise() != p.organization) {
    return PermissionDenied("an enterprise posts demands only for itself");
  }
  CG_RETURN_IF_ERROR(refdata::ValidateUscc(p.organization.substr(12), "enterprise"));
  // Registered and a member of the cluster (asked of the enterprises service; cached).
  CG_RETURN_IF_ERROR(enterprises_->CheckMember(call, p.organization.substr(12), in.cluster().substr(9)));
  store::WriteContext w{&p, "PostDemand", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::Demand>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Demand> {
    v1::Demand d = in;
    d.clear_name();
    d.set_enterprise(p.organization);
    d.set_state(v1::Demand::OPEN);
    d.set_filled(0);
    CG_RETURN_IF_ERROR(tx.PutDemand(d));
    CG_RETURN_IF_ERROR(tx.Audit(d.name(), "", d.etag()));
    return d;
  });
}

absl::StatusOr<v1::Demand> TalentDomain::GetDemand(const CallContext& call, const v1::GetDemandRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumbered("name", req.name(), "demands"));
  CG_ASSIGN_OR_RETURN(auto d, repo_->GetDemand(id));
  if (!d.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return *d;
}

absl::StatusOr<v1::ListDemandsResponse> TalentDomain::ListDemands(const CallContext& call,
                                                                  const v1::ListDemandsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->DemandFilterFields(), {"ListDemands", req.filter()}));
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListDemands(ListQuery{plan.filter, plan.after_key, plan.page_size}));
  v1::ListDemandsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_demands(), [](const v1::Demand& d) {
    return absl::StrCat(absl::Dec(std::stoll(d.name().substr(8)), absl::kZeroPad20));
  }));
  return resp;
}

absl::StatusOr<v1::Demand> TalentDomain::CloseDemand(const CallContext& call, const v1::CloseDemandRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumbered("name", req.name(), "demands"));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  store::WriteContext w{&p, "CloseDemand", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->Write<v1::Demand>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Demand> {
    CG_ASSIGN_OR_RETURN(auto d, tx.GetDemand(id));
    if (!d.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    if (!(p.HasRole(roles::kEnterprise) && p.organization == d->enterprise()) && !p.HasRole(roles::kAdmin)) {
      return PermissionDenied("only the posting enterprise closes a demand");
    }
    if (d->state() == v1::Demand::CLOSED) return absl::FailedPreconditionError(absl::StrCat(req.name(), " is closed"));
    std::string before = d->etag();
    d->set_state(v1::Demand::CLOSED);
    CG_RETURN_IF_ERROR(tx.PutDemand(*d));
    CG_RETURN_IF_ERROR(tx.Audit(d->name(), before, d->etag()));
    return *d;
  });
}

// ----------------------------------------------------------------------------- matching

absl::StatusOr<v1::MatchTalentsResponse> TalentDomain::MatchTalents(const CallContext& call,
                                                                    const v1::MatchTalentsRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumbered("demand", req.demand(), "demands"));
  static const std::vector<FilterField> kNoFields;
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              "", kNoFields, {"MatchTalents", req.demand()}));
  CG_ASSIGN_OR_RETURN(auto demand, repo_->GetDemand(id));
  if (!demand.has_value()) return absl::NotFoundError(absl::StrCat(req.demand(), " not found"));
  const Principal& p = call.principal;
  if (!(p.HasRole(roles::kEnterprise) && p.organization == demand->enterprise()) &&
      !p.HasAnyRole({roles::kGovernment, roles::kPromotionOrg, roles::kAdmin})) {
    return PermissionDenied("matches are for the posting enterprise, government and promotion organizations");
  }
  if (PastDeadline(*demand)) {
    return absl::FailedPreconditionError(absl::StrCat(req.demand(), "'s deadline (", DateKey(demand->deadline()),
                                                      ") has passed: it is no longer matched"));
  }
  CG_RETURN_IF_ERROR(EnsureIndex());
  int64_t offset = 0;
  if (!plan.after_key.empty() && !absl::SimpleAtoi(plan.after_key, &offset)) {
    return InvalidField("page_token", "invalid page token");
  }
  const uint32_t want = SkillMask(demand->skills());
  struct Ranked {
    int score;
    size_t pos;  // in index_
  };
  std::vector<MatchRow> page;  // copied out of the index under its lock
  size_t candidates = 0, keep = 0;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    std::vector<Ranked> ranked;
    for (size_t i = 0; i < index_.size(); ++i) {
      const IndexEntry& e = index_[i];
      uint32_t matched = e.skills & want;
      if (matched == 0) continue;
      ranked.push_back({ScoreValue(*demand, __builtin_popcount(matched), e.level, e.region == demand->region()), i});
    }
    candidates = ranked.size();
    // Deterministic: score, then talent id.
    keep = std::min<size_t>(ranked.size(), kMaxMatchCandidates);
    std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end(), [&](const Ranked& a, const Ranked& b) {
      return a.score != b.score ? a.score > b.score : index_[a.pos].id < index_[b.pos].id;
    });
    for (size_t i = offset; i < keep && page.size() < static_cast<size_t>(plan.page_size); ++i) {
      const IndexEntry& e = index_[ranked[i].pos];
      MatchRow row{e.id, e.level, e.region, {}};
      for (size_t b = 0; b < sizeof(kSkills) / sizeof(kSkills[0]); ++b) {
        if ((e.skills & want) & (uint32_t{1} << b)) row.matched_skills.push_back(kSkills[b].code);
      }
      page.push_back(std::move(row));
    }
  }
  v1::MatchTalentsResponse resp;
  resp.set_total_candidates(static_cast<int32_t>(candidates));
  std::vector<std::string> ids;
  for (const auto& row : page) ids.push_back(row.id);
  CG_ASSIGN_OR_RETURN(auto talents, repo_->GetTalents(ids));
  for (size_t i = 0; i < talents.size() && i < page.size(); ++i) {
    std::vector<std::string> reasons;
    int score = Score(*demand, page[i], &reasons);
    auto* c = resp.add_candidates();
    *c->mutable_talent() = std::move(talents[i]);
    CG_RETURN_IF_ERROR(Redact(p, c->mutable_talent()));
    c->set_score(score);
    for (const auto& reason : reasons) c->add_reasons(reason);
  }
  if (offset + static_cast<int64_t>(ids.size()) < static_cast<int64_t>(keep)) {
    resp.set_next_page_token(NextPageToken(*page_tokens_, plan, absl::StrCat(offset + ids.size())));
  }
  return resp;
}

// ----------------------------------------------------------------------------- placements

absl::StatusOr<v1::Placement> TalentDomain::CreatePlacement(const CallContext& call,
                                                            const v1::CreatePlacementRequest& req) {
  const auto& in = req.placement();
  CG_ASSIGN_OR_RETURN(std::string talent_id, ParseTalentName("placement.talent", in.talent()));
  CG_ASSIGN_OR_RETURN(int64_t demand_id, ParseNumbered("placement.demand", in.demand(), "demands"));
  FieldErrors errors;
  if (!v1::Placement::Type_IsValid(in.type()) || in.type() == v1::Placement::TYPE_UNSPECIFIED) {
    errors.Add("placement.type", "required: FULL_TIME, DUAL_APPOINTMENT or PART_TIME_PAID");
  }
  CheckText(errors, "placement.home_consent_reference", in.home_consent_reference(), kMaxName, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  store::WriteContext w{&p, "CreatePlacement", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::Placement>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Placement> {
    CG_ASSIGN_OR_RETURN(auto demand, tx.GetDemand(demand_id));
    if (!demand.has_value()) return absl::NotFoundError(absl::StrCat(in.demand(), " not found"));
    if (!(p.HasRole(roles::kEnterprise) && p.organization == demand->enterprise()) &&
        !p.ActsForDepartment("hr_social_security")) {
      return PermissionDenied("placements are made by the posting enterprise (or HR & Social Security)");
    }
    if (demand->state() != v1::Demand::OPEN) {
      return absl::FailedPreconditionError(absl::StrCat(in.demand(), " is ", v1::Demand::State_Name(demand->state())));
    }
    CG_ASSIGN_OR_RETURN(auto talent, tx.GetTalent(talent_id));
    if (!talent.has_value()) return absl::NotFoundError(absl::StrCat(in.talent(), " not found"));
    if (in.type() == v1::Placement::DUAL_APPOINTMENT && !demand->dual_appointment_ok()) {
      return absl::FailedPreconditionError(absl::StrCat(in.demand(), " does not accept dual appointments"));
    }
    if (talent->level() < demand->level()) {
      return absl::FailedPreconditionError(absl::StrCat(in.talent(), " is below the demand's level ",
                                                        v1::Level_Name(demand->level())));
    }
    if (NeedsConsent(talent->institution_kind()) && (!in.home_consent() || in.home_consent_reference().empty())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the home institution (", talent->home_institution(),
          ") is public: record its consent (home_consent and home_consent_reference)"));
    }
    CG_ASSIGN_OR_RETURN(auto active, tx.ActivePlacementsOf(in.talent()));
    for (const auto& other : active) {
      if (other.demand() == in.demand()) {
        return absl::AlreadyExistsError(absl::StrCat(in.talent(), " is already placed on ", in.demand()));
      }
      if (other.type() == v1::Placement::FULL_TIME && in.type() == v1::Placement::FULL_TIME) {
        return absl::FailedPreconditionError(absl::StrCat(in.talent(), " already holds a full-time placement (",
                                                          other.name(), ")"));
      }
    }
    v1::Placement placement;
    placement.set_talent(in.talent());
    placement.set_demand(in.demand());
    placement.set_enterprise(demand->enterprise());
    placement.set_cluster(demand->cluster());
    placement.set_type(in.type());
    placement.set_home_consent(in.home_consent());
    placement.set_home_consent_reference(in.home_consent_reference());
    placement.set_state(v1::Placement::ACTIVE);
    SetActor(placement.mutable_placed_by(), p);
    *placement.mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    CG_RETURN_IF_ERROR(tx.PutPlacement(placement));
    // Every placement, dual appointments included, counts against the demand.
    std::string before = demand->etag();
    demand->set_filled(demand->filled() + 1);
    if (demand->filled() >= demand->count()) demand->set_state(v1::Demand::FILLED);
    CG_RETURN_IF_ERROR(tx.PutDemand(*demand));
    CG_RETURN_IF_ERROR(tx.Audit(placement.name(), "", placement.etag()));
    CG_RETURN_IF_ERROR(tx.Audit(demand->name(), before, demand->etag()));
    CG_RETURN_IF_ERROR(
        tx.Publish(placement.name(), PlacementStartedEvent(placement), store::RevisionOf(placement.etag())));
    return placement;
  });
}

absl::StatusOr<v1::Placement> TalentDomain::EndPlacement(const CallContext& call, const v1::EndPlacementRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumbered("name", req.name(), "placements"));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), 2000, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  store::WriteContext w{&p, "EndPlacement", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->Write<v1::Placement>(w, [&](TalentTx& tx) -> absl::StatusOr<v1::Placement> {
    CG_ASSIGN_OR_RETURN(auto placement, tx.GetPlacement(id));
    if (!placement.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    if (!(p.HasRole(roles::kEnterprise) && p.organization == placement->enterprise()) &&
        !IsTalentSelf(p, placement->talent()) && !p.ActsForDepartment("hr_social_security")) {
      return PermissionDenied("only the employing enterprise, the talent or HR & Social Security ends a placement");
    }
    if (placement->state() != v1::Placement::ACTIVE) {
      return absl::FailedPreconditionError(absl::StrCat(req.name(), " has already ended"));
    }
    std::string before = placement->etag();
    placement->set_state(v1::Placement::ENDED);
    placement->set_end_reason(req.reason());
    *placement->mutable_end_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    CG_RETURN_IF_ERROR(tx.PutPlacement(*placement));
    CG_RETURN_IF_ERROR(tx.Audit(placement->name(), before, placement->etag()));
    events::v1::PlacementEnded ended;
    ended.set_placement(placement->name());
    ended.set_talent(placement->talent());
    ended.set_enterprise(placement->enterprise());
    ended.set_cluster(placement->cluster());
    ended.set_type(v1::Placement::Type_Name(placement->type()));
    ended.set_reason(req.reason());
    CG_RETURN_IF_ERROR(tx.Publish(placement->name(), ended, store::RevisionOf(placement->etag())));
    // Ending a placement reopens a filled demand.
    CG_ASSIGN_OR_RETURN(auto demand, tx.GetDemand(std::stoll(placement->demand().substr(8))));
    if (demand.has_value()) {
      std::string demand_before = demand->etag();
      demand->set_filled(std::max(0, demand->filled() - 1));
      if (demand->state() == v1::Demand::FILLED && demand->filled() < demand->count()) {
        demand->set_state(v1::Demand::OPEN);
      }
      CG_RETURN_IF_ERROR(tx.PutDemand(*demand));
      CG_RETURN_IF_ERROR(tx.Audit(demand->name(), demand_before, demand->etag()));
    }
    return *placement;
  });
}

absl::StatusOr<v1::ListPlacementsResponse> TalentDomain::ListPlacements(const CallContext& call,
                                                                        const v1::ListPlacementsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->PlacementFilterFields(), {"ListPlacements", req.filter()}));
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListPlacements(ListQuery{plan.filter, plan.after_key, plan.page_size}));
  v1::ListPlacementsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_placements(), [](const v1::Placement& x) {
    return absl::StrCat(absl::Dec(std::stoll(x.name().substr(11)), absl::kZeroPad20));
  }));
  return resp;
}

absl::StatusOr<v1::TalentStatistics> TalentDomain::GetTalentStatistics(const CallContext& call,
                                                                       const v1::GetTalentStatisticsRequest& req) {
  std::string cluster;
  if (req.cluster() != "clusters/-") {
    if (!absl::StartsWith(req.cluster(), "clusters/") || !IsResourceId(req.cluster().substr(9))) {
      return InvalidField("cluster", "must be clusters/{cluster_id} or clusters/-");
    }
    cluster = req.cluster();
  }
  CG_ASSIGN_OR_RETURN(ClusterCounts counts, repo_->Counts(cluster));
  v1::TalentStatistics out;
  out.set_cluster(req.cluster());
  for (const auto& [level, n] : counts.by_level) {
    auto* c = out.add_placed_talents_by_level();
    c->set_key(v1::Level_Name(static_cast<v1::Level>(std::stoi(level))));
    c->set_count(n);
  }
  for (const auto& [programme, n] : counts.by_programme) {
    auto* c = out.add_placed_talents_by_programme();
    c->set_key(programme);
    c->set_count(n);
  }
  for (const auto& [type, n] : counts.by_type) {
    auto* c = out.add_placements_by_type();
    c->set_key(v1::Placement::Type_Name(static_cast<v1::Placement::Type>(std::stoi(type))));
    c->set_count(n);
  }
  out.set_open_demands(counts.open_demands);
  out.set_open_positions(counts.open_positions);
  return out;
}

absl::StatusOr<common::v1::ClusterIndicators> TalentDomain::GetClusterIndicators(
    const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req) {
  CG_RETURN_IF_ERROR(indicators::ParseRequest(req).status());
  CG_RETURN_IF_ERROR(indicators::CheckReader(call.principal));
  // The talent service keeps no cluster registry: an unknown cluster has no demands or placements.
  CG_ASSIGN_OR_RETURN(TalentYear y,
                      repo_->YearFigures(req.cluster(), absl::ToUnixMicros(indicators::YearBegin(req.year())),
                                         absl::ToUnixMicros(indicators::YearBegin(req.year() + 1))));
  auto placements = [&](v1::Placement::Type type) {
    for (const auto& [t, n] : y.placements_by_type) {
      if (t == type) return n;
    }
    return 0;
  };
  namespace units = indicators::units;
  const auto kInnovation = common::v1::DIMENSION_INNOVATION;
  const auto kEcosystem = common::v1::DIMENSION_ECOSYSTEM;
  indicators::IndicatorSet set("talent", req);
  set.Add("demands.posted", y.demands, units::kCount, kEcosystem, "年内发布的人才需求数 (demands posted)");
  set.Add("demands.positions", y.positions, units::kPerson, kEcosystem, "需求岗位数 (positions of those demands)");
  set.Add("demands.matched", y.matched_demands, units::kCount, kEcosystem,
          "已对接的需求数 (those demands with at least one placement)");
  set.Add("placements.total", placements(v1::Placement::FULL_TIME) + placements(v1::Placement::DUAL_APPOINTMENT) +
                                  placements(v1::Placement::PART_TIME_PAID),
          units::kCount, kEcosystem, "年内人才落地数 (placements started)");
  set.Add("placements.full_time", placements(v1::Placement::FULL_TIME), units::kCount, kEcosystem,
          "全职引进数 (full-time placements)");
  set.Add("placements.dual_appointment", placements(v1::Placement::DUAL_APPOINTMENT), units::kCount, kInnovation,
          "双聘数 (dual appointments)");
  set.Add("placements.part_time_paid", placements(v1::Placement::PART_TIME_PAID), units::kCount, kInnovation,
          "兼职兼薪数 (part-time placements with pay)");
  set.Add("talents.placed", y.talents_placed, units::kPerson, kEcosystem, "落地人才数 (distinct talents placed)");
  set.Add("talents.high_level_placed", y.high_level_placed, units::kPerson, kInnovation,
          "高层次及领军人才落地数 (HIGH_LEVEL or LEADING talents placed)");
  return set.Take();
}

absl::StatusOr<v1::TalentReferenceData> TalentDomain::GetReferenceData(const CallContext& call,
                                                                       const v1::GetTalentReferenceDataRequest& req) {
  v1::TalentReferenceData out;
  for (const auto& t : kFields) {
    auto* x = out.add_fields();
    x->set_code(t.code);
    x->set_title_zh(t.title_zh);
  }
  for (const auto& t : kSkills) {
    auto* x = out.add_skills();
    x->set_code(t.code);
    x->set_title_zh(t.title_zh);
  }
  for (const auto& t : kProgrammes) {
    auto* x = out.add_programmes();
    x->set_code(t.code);
    x->set_title_zh(t.title_zh);
  }
  return out;
}

absl::StatusOr<common::v1::ListAuditEventsResponse> TalentDomain::ListAuditEvents(
    const CallContext& call, const common::v1::ListAuditEventsRequest& req) {
  return repo_->ListAuditEvents(call.principal, *page_tokens_, req);
}

}  // namespace clustergov::talent

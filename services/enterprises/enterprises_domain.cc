#include "services/enterprises/enterprises_domain.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/auth/principal.h"
#include "common/indicators/indicators.h"
#include "common/list/paging.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"
#include "common/status/field_mask.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "google/protobuf/util/time_util.h"
#include "services/enterprises/cluster_strength.h"

namespace clustergov::enterprises {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxName = 200;
constexpr size_t kMaxLongText = 2000;
// 10^9 × 10^4 yuan = 10^13 yuan: above any single enterprise's output.
constexpr int64_t kMaxAnnualOutputCny10k = 1000000000;
constexpr absl::string_view kLists = "lists";  // one generation for every list and pipeline

// ----------------------------------------------------------------------------- names

// "enterprises/{uscc}" → uscc (validated).
absl::StatusOr<std::string> ParseEnterpriseName(absl::string_view field, absl::string_view name) {
  if (!absl::StartsWith(name, "enterprises/")) {
    return InvalidField(field, "must be enterprises/{unified social credit code}");
  }
  absl::string_view code = name.substr(12);
  CG_RETURN_IF_ERROR(refdata::ValidateUscc(code, field));
  return std::string(code);
}

// "clusters/{id}" → id.
absl::StatusOr<std::string> ParseClusterName(absl::string_view field, absl::string_view name) {
  return ParseResourceName(field, name, "clusters");
}

// "{prefix}{uscc}/{collection}/{id}" → (uscc, id).
absl::StatusOr<std::pair<std::string, std::string>> ParseChildName(absl::string_view field, absl::string_view name,
                                                                   absl::string_view collection) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "enterprises" || parts[2] != collection || parts[3].empty()) {
    return InvalidField(field, absl::StrCat("must be enterprises/{uscc}/", collection, "/{id}"));
  }
  CG_RETURN_IF_ERROR(refdata::ValidateUscc(parts[1], field));
  return std::make_pair(parts[1], parts[3]);
}

absl::StatusOr<int64_t> ParseNumericId(absl::string_view field, absl::string_view id) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(id, &n) || n <= 0 || absl::StrCat(n) != id) return InvalidField(field, "unknown id");
  return n;
}

// ----------------------------------------------------------------------------- rules

struct Rule {
  v1::CertificationKind kind;
  const char* title_zh;
  std::vector<std::string> departments;
  v1::CertificationKind requires;
};

// Which departments grant and revoke each kind (reference data of the cultivation ladder).
const std::vector<Rule>& Rules() {
  static const auto* rules = new std::vector<Rule>{
      {v1::INNOVATIVE_SME, "创新型中小企业", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::SPECIALIZED_SME, "自治区专精特新中小企业", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::LITTLE_GIANT, "专精特新“小巨人”企业", {"industry_it"}, v1::SPECIALIZED_SME},
      {v1::SINGLE_CHAMPION, "制造业单项冠军企业", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::MANUFACTURING_PILOT, "制造业领航企业", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::HIGH_TECH, "高新技术企业", {"science_technology"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::TECH_LEADER, "科技领军企业", {"science_technology"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::SMART_FACTORY, "智能工厂", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::GREEN_FACTORY, "绿色工厂", {"industry_it"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
      {v1::QUALITY_MANAGEMENT, "质量管理体系认证", {"market_regulation"}, v1::CERTIFICATION_KIND_UNSPECIFIED},
  };
  return *rules;
}

const Rule* FindRule(v1::CertificationKind kind) {
  for (const auto& r : Rules()) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

bool ActsForAny(const Principal& p, const std::vector<std::string>& departments) {
  for (const auto& d : departments) {
    if (p.ActsForDepartment(d)) return true;
  }
  return false;
}

bool ActsForEnterprise(const Principal& p, absl::string_view uscc) {
  return p.HasRole(roles::kEnterprise) && p.organization == absl::StrCat("enterprises/", uscc);
}

bool ValidDate(const google::type::Date& d) { return IsCalendarDate(d, 1900, 2200); }

// The state a certification has today (expiry shows from the day after the expiry date, before
// the deadline job stores it).
v1::Certification::State StateOn(const v1::Certification& c, const std::string& today) {
  if (c.state() == v1::Certification::REVOKED) return v1::Certification::REVOKED;
  if (c.state() == v1::Certification::EXPIRED || DateKey(c.expiry_date()) < today) return v1::Certification::EXPIRED;
  return v1::Certification::VALID;
}

bool ValidOn(const v1::Certification& c, const std::string& today) {
  return StateOn(c, today) == v1::Certification::VALID && DateKey(c.grant_date()) <= today;
}

absl::Status PermissionDenied(absl::string_view what) { return absl::PermissionDeniedError(what); }

std::string Hex(uint64_t v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad16)); }

void ValidateEnterpriseFields(const v1::Enterprise& e, FieldErrors& errors) {
  CheckText(errors, "enterprise.legal_name_zh", e.legal_name_zh(), kMaxName, true);
  CheckText(errors, "enterprise.name_en", e.name_en(), kMaxName, false);
  if (!refdata::IsRegionCode(e.region())) errors.Add("enterprise.region", "required: a league region code, e.g. 150100");
  if (!IsLowerCode(e.industry())) errors.Add("enterprise.industry", "required: 1-64 of [a-z0-9_], e.g. dairy");
  if (!v1::SizeClass_IsValid(e.size_class()) || e.size_class() == v1::SIZE_CLASS_UNSPECIFIED) {
    errors.Add("enterprise.size_class", "required: LARGE, MEDIUM, SMALL or MICRO");
  }
  if (e.employees() < 0 || e.employees() > 10000000) errors.Add("enterprise.employees", "must be 0 to 10,000,000");
  if (e.annual_revenue_fen() < 0) errors.Add("enterprise.annual_revenue_fen", "must not be negative");
  if (e.rd_spend_fen() < 0) errors.Add("enterprise.rd_spend_fen", "must not be negative");
  if (e.annual_output_cny_10k() < 0 || e.annual_output_cny_10k() > kMaxAnnualOutputCny10k) {
    errors.Add("enterprise.annual_output_cny_10k", "must be 0 to 1,000,000,000 (ten-thousand yuan)");
  }
  if (!v1::ListingStatus_IsValid(e.listing_status())) errors.Add("enterprise.listing_status", "unknown value");
}

const std::set<std::string>& UpdatablePaths() {
  static const auto* paths = new std::set<std::string>{"legal_name_zh", "name_en",   "region",
                                                       "industry",      "size_class", "employees",
                                                       "annual_revenue_fen", "rd_spend_fen", "listing_status",
                                                       "annual_output_cny_10k"};
  return *paths;
}

void SetActor(common::v1::Actor* actor, const Principal& p) {
  actor->set_subject(p.subject);
  actor->set_organization(p.organization);
  actor->clear_roles();
  for (const auto& r : p.roles) actor->add_roles(r);
}

}  // namespace

std::string EnterprisesDomain::Today() { return TodayInChina(); }

EnterprisesDomain::EnterprisesDomain(std::unique_ptr<EnterpriseRepository> repository,
                                     std::unique_ptr<cache::Cache> cache, clusters::ClusterDirectory* clusters,
                                     const PageTokenCodec* page_tokens)
    : repo_(std::move(repository)), cache_(std::move(cache)), clusters_(clusters), page_tokens_(page_tokens) {}

cache::PendingWrite EnterprisesDomain::EnterpriseWrite(const std::string& uscc) {
  std::vector<std::string> keys{cache::Cache::GenerationKey(kLists)};
  if (!uscc.empty()) keys.push_back(absl::StrCat("enterprise:", uscc));
  return cache::PendingWrite(cache_.get(), std::move(keys));
}

absl::StatusOr<v1::Enterprise> EnterprisesDomain::LoadCached(const std::string& uscc) {
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto e, repo_->GetEnterprise(uscc));
    if (!e.has_value()) return absl::NotFoundError(absl::StrCat("enterprises/", uscc, " not found"));
    return e->SerializeAsString();
  };
  auto bytes = cache_ != nullptr ? cache_->GetOrLoad(absl::StrCat("enterprise:", uscc), load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::Enterprise e;
  if (!e.ParseFromString(*bytes)) return absl::InternalError("cached enterprise does not parse");
  return e;
}

// ----------------------------------------------------------------------------- registry

absl::StatusOr<v1::Enterprise> EnterprisesDomain::RegisterEnterprise(const CallContext& call,
                                                                     const v1::RegisterEnterpriseRequest& req) {
  const auto& input = req.enterprise();
  CG_RETURN_IF_ERROR(refdata::ValidateUscc(input.uscc(), "enterprise.uscc"));
  FieldErrors errors;
  ValidateEnterpriseFields(input, errors);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!ActsForEnterprise(p, input.uscc()) && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    return PermissionDenied("an enterprise registers itself; government and admins may register any");
  }
  const std::string uscc = input.uscc();
  store::WriteContext w{&p, "RegisterEnterprise", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto created = repo_->MutateEnterprise(
      w, uscc, [&](const std::optional<v1::Enterprise>& current, WriteView&) -> absl::StatusOr<Change<v1::Enterprise>> {
        if (current.has_value()) return absl::AlreadyExistsError(absl::StrCat("enterprises/", uscc, " is registered"));
        Change<v1::Enterprise> change;
        change.record = input;
        change.record.set_state(v1::Enterprise::ACTIVE);
        change.record.set_sample(false);
        if (change.record.listing_status() == v1::LISTING_STATUS_UNSPECIFIED) {
          change.record.set_listing_status(v1::UNLISTED);
        }
        change.record.clear_create_time();
        change.record.clear_update_time();
        change.record.clear_deregister_time();
        return change;
      });
  return created;
}

absl::StatusOr<v1::Enterprise> EnterprisesDomain::GetEnterprise(const CallContext& call,
                                                                const v1::GetEnterpriseRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("name", req.name()));
  return LoadCached(uscc);
}

std::optional<absl::StatusOr<v1::Enterprise>> EnterprisesDomain::GetEnterpriseFast(
    const CallContext& call, const v1::GetEnterpriseRequest& req) {
  auto uscc = ParseEnterpriseName("name", req.name());
  if (!uscc.ok()) return absl::StatusOr<v1::Enterprise>(uscc.status());
  std::string bytes;
  if (cache_ == nullptr || !cache_->PeekNear(absl::StrCat("enterprise:", *uscc), &bytes)) return std::nullopt;
  v1::Enterprise e;
  if (!e.ParseFromString(bytes)) return std::nullopt;
  return absl::StatusOr<v1::Enterprise>(std::move(e));
}

absl::StatusOr<v1::ListEnterprisesResponse> EnterprisesDomain::ListEnterprises(const CallContext& call,
                                                                               const v1::ListEnterprisesRequest& req) {
  const std::string deregistered = req.show_deregistered() ? "1" : "0";
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->EnterpriseFilterFields(),
                                              {"ListEnterprises", req.filter(), deregistered}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, req.show_deregistered(), ""};
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto items, repo_->ListEnterprises(q));
    v1::ListEnterprisesResponse resp;
    resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_enterprises(),
                                      [](const v1::Enterprise& e) { return e.uscc(); }));
    return resp.SerializeAsString();
  };
  std::string key = absl::StrCat("enterprises:", Hex(QueryHash({req.filter(), deregistered, plan.after_key,
                                                                  std::to_string(plan.page_size)})));
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kLists, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ListEnterprisesResponse resp;
  if (!resp.ParseFromString(*bytes)) return absl::InternalError("cached list does not parse");
  CG_ASSIGN_OR_RETURN(*resp.mutable_next_page_token(),
                      NextPageTokenForCaller(*page_tokens_, plan, resp.next_page_token()));
  return resp;
}

absl::StatusOr<v1::Enterprise> EnterprisesDomain::UpdateEnterprise(const CallContext& call,
                                                                   const v1::UpdateEnterpriseRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("enterprise.name", req.enterprise().name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  CG_ASSIGN_OR_RETURN(std::vector<std::string> paths, ResolveUpdateMask(req.update_mask(), UpdatablePaths()));
  const Principal& p = call.principal;
  if (!ActsForEnterprise(p, uscc) && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    return PermissionDenied("an enterprise updates only itself; government and admins may update any");
  }
  store::WriteContext w{&p, "UpdateEnterprise", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto updated = repo_->MutateEnterprise(
      w, uscc, [&](const std::optional<v1::Enterprise>& current, WriteView&) -> absl::StatusOr<Change<v1::Enterprise>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat("enterprises/", uscc, " not found"));
        CG_RETURN_IF_ERROR(CheckEtag("enterprise.etag", req.enterprise().etag(), current->etag()));
        if (current->state() != v1::Enterprise::ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("enterprises/", uscc, " is deregistered"));
        }
        Change<v1::Enterprise> change;
        change.record = *current;
        CopyFields(paths, req.enterprise(), &change.record);
        FieldErrors errors;
        ValidateEnterpriseFields(change.record, errors);
        CG_RETURN_IF_ERROR(errors.ToStatus());
        return change;
      });
  return updated;
}

absl::StatusOr<v1::Enterprise> EnterprisesDomain::DeregisterEnterprise(const CallContext& call,
                                                                       const v1::DeregisterEnterpriseRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("name", req.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  if (!ActsForEnterprise(p, uscc) && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    return PermissionDenied("an enterprise deregisters only itself; government and admins may deregister any");
  }
  store::WriteContext w{&p, "DeregisterEnterprise", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto done = repo_->MutateEnterprise(
      w, uscc, [&](const std::optional<v1::Enterprise>& current, WriteView&) -> absl::StatusOr<Change<v1::Enterprise>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat("enterprises/", uscc, " not found"));
        CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current->etag()));
        if (current->state() != v1::Enterprise::ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("enterprises/", uscc, " is already deregistered"));
        }
        Change<v1::Enterprise> change;
        change.record = *current;
        change.record.set_state(v1::Enterprise::DEREGISTERED);
        *change.record.mutable_deregister_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
        return change;
      });
  return done;
}

// ----------------------------------------------------------------------------- membership

absl::StatusOr<v1::Membership> EnterprisesDomain::JoinCluster(const CallContext& call,
                                                              const v1::JoinClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("parent", req.parent()));
  const auto& input = req.membership();
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ParseClusterName("membership.cluster", input.cluster()));
  FieldErrors errors;
  if (!v1::MemberRole_IsValid(input.role()) || input.role() == v1::MEMBER_ROLE_UNSPECIFIED) {
    errors.Add("membership.role", "required: LEAD_ENTERPRISE, CHAIN_LEADER or MEMBER");
  }
  CheckText(errors, "membership.chain_segment", input.chain_segment(), kMaxName, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kEnterprise, roles::kGovernment, roles::kPromotionOrg, roles::kAdmin})) {
    return PermissionDenied("joining a cluster needs the enterprise itself, a lead department or the promotion organization");
  }
  // The cluster must exist (answer cached; the clusters service is called on a miss).
  CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, cluster_id));
  if (cluster.state() != clusters::v1::Cluster::ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(input.cluster(), " is deleted"));
  }
  bool governs = clusters::IsLeadDepartmentOf(p, cluster) || clusters::IsPromotionOrganizationOf(p, cluster);
  if (input.role() != v1::MEMBER && !governs) {
    return PermissionDenied(absl::StrCat("only the lead department or the promotion organization of ", input.cluster(),
                                         " may grant the ", v1::MemberRole_Name(input.role()), " role"));
  }
  if (!governs && !ActsForEnterprise(p, uscc) && !p.HasRole(roles::kAdmin)) {
    return PermissionDenied("an enterprise joins a cluster only for itself");
  }
  store::WriteContext w{&p, "JoinCluster", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto joined = repo_->MutateMembership(
      w, uscc, cluster_id,
      [&](const std::optional<v1::Membership>& current, WriteView& view) -> absl::StatusOr<Change<v1::Membership>> {
        CG_ASSIGN_OR_RETURN(auto enterprise, view.Enterprise(uscc));
        if (!enterprise.has_value()) return absl::NotFoundError(absl::StrCat("enterprises/", uscc, " not found"));
        if (enterprise->state() != v1::Enterprise::ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("enterprises/", uscc, " is deregistered"));
        }
        if (current.has_value()) {
          return absl::AlreadyExistsError(absl::StrCat("enterprises/", uscc, " is already a member of ", input.cluster()));
        }
        Change<v1::Membership> change;
        change.record.set_role(input.role());
        change.record.set_chain_segment(input.chain_segment());
        SetActor(change.record.mutable_granted_by(), p);
        return change;
      });
  return joined;
}

absl::StatusOr<v1::Membership> EnterprisesDomain::UpdateMembership(const CallContext& call,
                                                                   const v1::UpdateMembershipRequest& req) {
  CG_ASSIGN_OR_RETURN(auto ids, ParseChildName("membership.name", req.membership().name(), "memberships"));
  auto [uscc, cluster_id] = ids;
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  bool set_role = req.update_mask().paths_size() == 0, set_segment = set_role;
  for (const auto& path : req.update_mask().paths()) {
    if (path == "role") {
      set_role = true;
    } else if (path == "chain_segment") {
      set_segment = true;
    } else {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is not updatable; use role, chain_segment"));
    }
  }
  const auto& input = req.membership();
  FieldErrors errors;
  if (set_role && (!v1::MemberRole_IsValid(input.role()) || input.role() == v1::MEMBER_ROLE_UNSPECIFIED)) {
    errors.Add("membership.role", "required: LEAD_ENTERPRISE, CHAIN_LEADER or MEMBER");
  }
  if (set_segment) CheckText(errors, "membership.chain_segment", input.chain_segment(), kMaxName, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, cluster_id));
  bool governs = clusters::IsLeadDepartmentOf(p, cluster) || clusters::IsPromotionOrganizationOf(p, cluster);
  store::WriteContext w{&p, "UpdateMembership", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto updated = repo_->MutateMembership(
      w, uscc, cluster_id,
      [&](const std::optional<v1::Membership>& current, WriteView&) -> absl::StatusOr<Change<v1::Membership>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat(input.name(), " not found"));
        CG_RETURN_IF_ERROR(CheckEtag("membership.etag", input.etag(), current->etag()));
        bool role_change = set_role && input.role() != current->role();
        if (role_change && !governs) {
          return PermissionDenied(absl::StrCat("only the lead department or the promotion organization of clusters/",
                                               cluster_id, " may change member roles"));
        }
        if (!governs && !ActsForEnterprise(p, uscc) && !p.HasRole(roles::kAdmin)) {
          return PermissionDenied("an enterprise updates only its own membership");
        }
        Change<v1::Membership> change;
        change.record = *current;
        if (set_role) change.record.set_role(input.role());
        if (set_segment) change.record.set_chain_segment(input.chain_segment());
        if (role_change) SetActor(change.record.mutable_granted_by(), p);
        return change;
      });
  return updated;
}

absl::StatusOr<v1::Membership> EnterprisesDomain::LeaveCluster(const CallContext& call,
                                                               const v1::LeaveClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(auto ids, ParseChildName("name", req.name(), "memberships"));
  auto [uscc, cluster_id] = ids;
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  bool governs = false;
  if (!ActsForEnterprise(p, uscc) && !p.HasRole(roles::kAdmin)) {
    CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, cluster_id));
    governs = clusters::IsLeadDepartmentOf(p, cluster) || clusters::IsPromotionOrganizationOf(p, cluster);
    if (!governs) return PermissionDenied("only the enterprise, the cluster's lead department or promotion organization");
  }
  store::WriteContext w{&p, "LeaveCluster", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto left = repo_->MutateMembership(
      w, uscc, cluster_id,
      [&](const std::optional<v1::Membership>& current, WriteView&) -> absl::StatusOr<Change<v1::Membership>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
        Change<v1::Membership> change;
        change.record = *current;
        change.remove = true;
        return change;
      });
  return left;
}

absl::StatusOr<v1::ListMembershipsResponse> EnterprisesDomain::ListMemberships(const CallContext& call,
                                                                               const v1::ListMembershipsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("parent", req.parent()));
  static const std::vector<FilterField> kNoFields;
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              "", kNoFields, {"ListMemberships", uscc}));
  CG_ASSIGN_OR_RETURN(auto e, LoadCached(uscc));
  (void)e;
  ListQuery q{plan.filter, plan.after_key, plan.page_size, false, uscc};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListMemberships(q, /*by_cluster=*/false));
  v1::ListMembershipsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_memberships(),
                                    [](const v1::Membership& m) { return m.cluster().substr(9); }));
  return resp;
}

absl::StatusOr<v1::ListClusterMembersResponse> EnterprisesDomain::ListClusterMembers(
    const CallContext& call, const v1::ListClusterMembersRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ParseClusterName("cluster", req.cluster()));
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->MemberFilterFields(),
                                              {"ListClusterMembers", cluster_id, req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, false, cluster_id};
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto items, repo_->ListMemberships(q, /*by_cluster=*/true));
    v1::ListClusterMembersResponse resp;
    resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_memberships(),
                                      [](const v1::Membership& m) { return m.enterprise().substr(12); }));
    return resp.SerializeAsString();
  };
  std::string key = absl::StrCat("members:", Hex(QueryHash({cluster_id, req.filter(), plan.after_key,
                                                              std::to_string(plan.page_size)})));
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kLists, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ListClusterMembersResponse resp;
  if (!resp.ParseFromString(*bytes)) return absl::InternalError("cached list does not parse");
  CG_ASSIGN_OR_RETURN(*resp.mutable_next_page_token(),
                      NextPageTokenForCaller(*page_tokens_, plan, resp.next_page_token()));
  return resp;
}

// ----------------------------------------------------------------------------- certifications

absl::StatusOr<v1::Certification> EnterprisesDomain::GrantCertification(const CallContext& call,
                                                                         const v1::GrantCertificationRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("parent", req.parent()));
  const auto& input = req.certification();
  const Principal& p = call.principal;
  FieldErrors errors;
  const Rule* rule = FindRule(input.kind());
  if (rule == nullptr) errors.Add("certification.kind", "required: a CertificationKind, e.g. SPECIALIZED_SME");
  std::string issuer = input.issuing_department();
  if (issuer.empty() && absl::StartsWith(p.organization, "departments/")) issuer = p.organization.substr(12);
  if (!refdata::IsDepartmentCode(issuer)) {
    errors.Add("certification.issuing_department", "required: a department code, e.g. industry_it");
  } else if (rule != nullptr && std::find(rule->departments.begin(), rule->departments.end(), issuer) ==
                                    rule->departments.end()) {
    errors.Add("certification.issuing_department",
               absl::StrCat(issuer, " does not issue ", v1::CertificationKind_Name(input.kind()), " (issued by ",
                            rule->departments.front(), ")"));
  }
  const std::string today = Today();
  if (!ValidDate(input.grant_date())) {
    errors.Add("certification.grant_date", "required: a calendar date");
  } else if (DateKey(input.grant_date()) > today) {
    errors.Add("certification.grant_date", "must not be in the future");
  }
  if (!ValidDate(input.expiry_date())) {
    errors.Add("certification.expiry_date", "required: a calendar date");
  } else if (ValidDate(input.grant_date()) && DateKey(input.expiry_date()) <= DateKey(input.grant_date())) {
    errors.Add("certification.expiry_date", "must be after the grant date");
  }
  CheckText(errors, "certification.certificate_number", input.certificate_number(), 64, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  if (!p.ActsForDepartment(issuer)) {
    return PermissionDenied(absl::StrCat("only ", issuer, " may grant ", v1::CertificationKind_Name(input.kind()),
                                         " in its own name"));
  }
  store::WriteContext w{&p, "GrantCertification", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto granted = repo_->MutateCertification(
      w, uscc, 0,
      [&](const std::optional<v1::Certification>&, WriteView& view) -> absl::StatusOr<Change<v1::Certification>> {
        CG_ASSIGN_OR_RETURN(auto enterprise, view.Enterprise(uscc));
        if (!enterprise.has_value()) return absl::NotFoundError(absl::StrCat("enterprises/", uscc, " not found"));
        if (enterprise->state() != v1::Enterprise::ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("enterprises/", uscc, " is deregistered"));
        }
        CG_ASSIGN_OR_RETURN(auto existing, view.Certifications(uscc));
        bool has_prerequisite = rule->requires == v1::CERTIFICATION_KIND_UNSPECIFIED;
        for (const auto& c : existing) {
          if (c.kind() == input.kind() && ValidOn(c, today)) {
            return absl::AlreadyExistsError(absl::StrCat("a valid ", v1::CertificationKind_Name(c.kind()),
                                                         " certification exists: ", c.name()));
          }
          if (c.kind() == rule->requires && ValidOn(c, today)) has_prerequisite = true;
        }
        if (!has_prerequisite) {
          return absl::FailedPreconditionError(absl::StrCat(v1::CertificationKind_Name(input.kind()), " needs a valid ",
                                                            v1::CertificationKind_Name(rule->requires),
                                                            " certification first"));
        }
        Change<v1::Certification> change;
        change.record = input;
        change.record.set_issuing_department(issuer);
        change.record.set_state(v1::Certification::VALID);
        change.record.clear_revoke_reason();
        change.record.clear_revoke_time();
        SetActor(change.record.mutable_granted_by(), p);
        return change;
      });
  if (!granted.ok()) return granted.status();
  v1::Certification out = *granted;
  out.set_state(StateOn(out, today));
  return out;
}

absl::StatusOr<v1::Certification> EnterprisesDomain::RevokeCertification(const CallContext& call,
                                                                          const v1::RevokeCertificationRequest& req) {
  CG_ASSIGN_OR_RETURN(auto ids, ParseChildName("name", req.name(), "certifications"));
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumericId("name", ids.second));
  const std::string uscc = ids.first;
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return PermissionDenied("only the issuing department may revoke");
  store::WriteContext w{&p, "RevokeCertification", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = EnterpriseWrite(uscc);
  auto revoked = repo_->MutateCertification(
      w, uscc, id,
      [&](const std::optional<v1::Certification>& current, WriteView&) -> absl::StatusOr<Change<v1::Certification>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
        const Rule* rule = FindRule(current->kind());
        if (rule == nullptr || !ActsForAny(p, rule->departments)) {
          return PermissionDenied(absl::StrCat("only ", rule != nullptr ? rule->departments.front() : "the issuer",
                                               " may revoke ", v1::CertificationKind_Name(current->kind())));
        }
        if (current->state() == v1::Certification::REVOKED) {
          return absl::FailedPreconditionError(absl::StrCat(req.name(), " is already revoked"));
        }
        Change<v1::Certification> change;
        change.record = *current;
        change.record.set_state(v1::Certification::REVOKED);
        change.record.set_revoke_reason(req.reason());
        *change.record.mutable_revoke_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
        return change;
      });
  return revoked;
}

absl::StatusOr<v1::ListCertificationsResponse> EnterprisesDomain::ListCertifications(
    const CallContext& call, const v1::ListCertificationsRequest& req) {
  std::string uscc;
  if (req.parent() != "enterprises/-") {
    CG_ASSIGN_OR_RETURN(uscc, ParseEnterpriseName("parent", req.parent()));
  }
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->CertificationFilterFields(),
                                              {"ListCertifications", req.parent(), req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, false, uscc};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListCertifications(q));
  const std::string today = Today();
  for (auto& c : items) c.set_state(StateOn(c, today));  // expiry is reported, not hidden
  v1::ListCertificationsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_certifications(),
                                    [](const v1::Certification& c) { return c.name().substr(c.name().rfind('/') + 1); }));
  return resp;
}

absl::StatusOr<v1::CertificationRules> EnterprisesDomain::GetCertificationRules(
    const CallContext& call, const v1::GetCertificationRulesRequest& req) {
  v1::CertificationRules out;
  for (const auto& r : Rules()) {
    auto* rule = out.add_rules();
    rule->set_kind(r.kind);
    rule->set_title_zh(r.title_zh);
    for (const auto& d : r.departments) rule->add_issuing_departments(d);
    rule->set_requires(r.requires);
  }
  return out;
}

// ----------------------------------------------------------------------------- supply links

absl::StatusOr<v1::SupplyLink> EnterprisesDomain::CreateSupplyLink(const CallContext& call,
                                                                   const v1::CreateSupplyLinkRequest& req) {
  const auto& input = req.supply_link();
  CG_ASSIGN_OR_RETURN(std::string supplier, ParseEnterpriseName("supply_link.supplier", input.supplier()));
  CG_ASSIGN_OR_RETURN(std::string buyer, ParseEnterpriseName("supply_link.buyer", input.buyer()));
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ParseClusterName("supply_link.cluster", input.cluster()));
  FieldErrors errors;
  if (supplier == buyer) errors.Add("supply_link.buyer", "must differ from the supplier");
  CheckText(errors, "supply_link.product", input.product(), kMaxName, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  bool party = ActsForEnterprise(p, supplier) || ActsForEnterprise(p, buyer);
  if (!party && !p.HasAnyRole({roles::kGovernment, roles::kPromotionOrg, roles::kAdmin})) {
    return PermissionDenied("a supply link is recorded by one of its ends, government or the promotion organization");
  }
  CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, cluster_id));
  if (p.HasRole(roles::kPromotionOrg) && !party && !clusters::IsPromotionOrganizationOf(p, cluster)) {
    return PermissionDenied(absl::StrCat("only the promotion organization of ", input.cluster()));
  }
  store::WriteContext w{&p, "CreateSupplyLink", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite("");
  auto created = repo_->MutateSupplyLink(
      w, 0, [&](const std::optional<v1::SupplyLink>&, WriteView& view) -> absl::StatusOr<Change<v1::SupplyLink>> {
        for (const auto& [field, uscc] : {std::pair<std::string, std::string>{"supplier", supplier}, {"buyer", buyer}}) {
          CG_ASSIGN_OR_RETURN(auto e, view.Enterprise(uscc));
          if (!e.has_value() || e->state() != v1::Enterprise::ACTIVE) {
            return absl::FailedPreconditionError(absl::StrCat("the ", field, " enterprises/", uscc, " is not registered"));
          }
          CG_ASSIGN_OR_RETURN(auto m, view.Membership(uscc, cluster_id));
          if (!m.has_value()) {
            return absl::FailedPreconditionError(
                absl::StrCat("the ", field, " enterprises/", uscc, " is not a member of ", input.cluster()));
          }
        }
        CG_ASSIGN_OR_RETURN(bool exists, view.SupplyLinkExists(input));
        if (exists) return absl::AlreadyExistsError("this supply link is already recorded");
        Change<v1::SupplyLink> change;
        change.record = input;
        SetActor(change.record.mutable_created_by(), p);
        return change;
      });
  return created;
}

absl::StatusOr<v1::SupplyLink> EnterprisesDomain::DeleteSupplyLink(const CallContext& call,
                                                                   const v1::DeleteSupplyLinkRequest& req) {
  if (!absl::StartsWith(req.name(), "supplyLinks/")) return InvalidField("name", "must be supplyLinks/{id}");
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumericId("name", req.name().substr(12)));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  auto is_party = [&](const v1::SupplyLink& l) {
    return ActsForEnterprise(p, l.supplier().substr(12)) || ActsForEnterprise(p, l.buyer().substr(12));
  };
  // As on create, a promotion organization acts only for its own cluster's links. The cluster is
  // looked up before the write (no call to the clusters service inside the transaction).
  std::string promoted_cluster;
  if (p.HasRole(roles::kPromotionOrg) && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    CG_ASSIGN_OR_RETURN(auto link, repo_->GetSupplyLink(id));
    if (link.has_value() && !is_party(*link)) {
      CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, link->cluster()));
      if (!clusters::IsPromotionOrganizationOf(p, cluster)) {
        return PermissionDenied(absl::StrCat("only the promotion organization of ", link->cluster()));
      }
      promoted_cluster = link->cluster();
    }
  }
  store::WriteContext w{&p, "DeleteSupplyLink", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = EnterpriseWrite("");
  auto deleted = repo_->MutateSupplyLink(
      w, id, [&](const std::optional<v1::SupplyLink>& current, WriteView&) -> absl::StatusOr<Change<v1::SupplyLink>> {
        if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
        bool promotes = !promoted_cluster.empty() && current->cluster() == promoted_cluster;
        if (!is_party(*current) && !promotes && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
          return PermissionDenied("only an end of the link, government or the promotion organization");
        }
        Change<v1::SupplyLink> change;
        change.record = *current;
        change.remove = true;
        return change;
      });
  return deleted;
}

absl::StatusOr<v1::ListSupplyLinksResponse> EnterprisesDomain::ListSupplyLinks(const CallContext& call,
                                                                               const v1::ListSupplyLinksRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->SupplyLinkFilterFields(), {"ListSupplyLinks", req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, false, ""};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListSupplyLinks(q));
  v1::ListSupplyLinksResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_supply_links(),
                                    [](const v1::SupplyLink& l) { return l.name().substr(12); }));
  return resp;
}

// ----------------------------------------------------------------------------- deadlines

absl::StatusOr<int> EnterprisesDomain::ExpireCertifications(const store::LeaseFence& fence, absl::Time now) {
  constexpr int kBatch = 100;
  const Principal self = ServicePrincipal("enterprises");
  store::WriteContext w{&self, "Job:ExpireCertifications", "", "", "validity passed", nullptr};
  w.fence = &fence;
  const std::string today = TodayInChina(now);
  const absl::TimeZone cst = absl::FixedTimeZone(8 * 3600);
  auto publish = [&](store::Transaction& tx, const v1::Certification& c, const std::vector<std::string>& clusters) {
    events::v1::CertificationExpired event;
    event.set_certification(c.name());
    event.set_enterprise(c.name().substr(0, c.name().find("/certifications/")));
    event.set_kind(v1::CertificationKind_Name(c.kind()));
    // Valid through its expiry date: until the start of the next day.
    const auto& d = c.expiry_date();
    *event.mutable_valid_until() = TimeUtil::SecondsToTimestamp(
        absl::ToUnixSeconds(absl::FromCivil(absl::CivilDay(d.year(), d.month(), d.day() + 1), cst)));
    for (const auto& cluster : clusters) event.add_clusters(cluster);
    return tx.Publish(c.name(), event, store::RevisionOf(c.etag()));
  };
  int total = 0;
  while (true) {
    cache::PendingWrite pending = EnterpriseWrite("");
    CG_ASSIGN_OR_RETURN(auto expired, repo_->ExpireCertifications(w, today, kBatch, publish));
    total += static_cast<int>(expired.size());
    if (expired.size() < kBatch) return total;
  }
}

// ----------------------------------------------------------------------------- pipeline, audit

absl::StatusOr<v1::CultivationPipeline> EnterprisesDomain::GetCultivationPipeline(
    const CallContext& call, const v1::GetCultivationPipelineRequest& req) {
  std::string cluster_id;
  if (req.cluster() != "clusters/-") {
    CG_ASSIGN_OR_RETURN(cluster_id, ParseClusterName("cluster", req.cluster()));
    // The cluster must exist (NOT_FOUND otherwise; answer cached), not just have no members.
    CG_RETURN_IF_ERROR(clusters_->Lookup(call, cluster_id).status());
  }
  const std::string today = Today();
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(PipelineCounts counts, repo_->Pipeline(cluster_id, today));
    v1::CultivationPipeline out;
    out.set_cluster(req.cluster());
    out.set_enterprise_count(counts.enterprise_count);
    for (const auto& [kind, n] : counts.certifications) {
      auto* k = out.add_certifications();
      k->set_kind(static_cast<v1::CertificationKind>(kind));
      k->set_count(n);
    }
    for (const auto& [size, n] : counts.sizes) {
      auto* s = out.add_sizes();
      s->set_size_class(static_cast<v1::SizeClass>(size));
      s->set_count(n);
    }
    for (const auto& [role, n] : counts.roles) {
      auto* r = out.add_roles();
      r->set_role(static_cast<v1::MemberRole>(role));
      r->set_count(n);
    }
    return out.SerializeAsString();
  };
  // Keyed by day too: validity changes at midnight without a write.
  std::string key = absl::StrCat("pipeline:", req.cluster(), ":", today);
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kLists, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::CultivationPipeline out;
  if (!out.ParseFromString(*bytes)) return absl::InternalError("cached pipeline does not parse");
  return out;
}

absl::StatusOr<common::v1::ListAuditEventsResponse> EnterprisesDomain::ListAuditEvents(
    const CallContext& call, const common::v1::ListAuditEventsRequest& req) {
  return repo_->ListAuditEvents(call.principal, *page_tokens_, req);
}

// ----------------------------------------------------------------------------- indicators

namespace {

int CountOf(const std::vector<std::pair<int, int>>& counts, int key) {
  for (const auto& [k, n] : counts) {
    if (k == key) return n;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> EnterprisesDomain::EmploymentByRegion() {
  // Shared by every cluster's strength and changed by any registry write: cached under the list
  // generation, which every write advances. Carried in a ClusterStrength (region, region_employment).
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto rows, repo_->EmploymentByRegion());
    v1::ClusterStrength carrier;
    for (const auto& [region, employment] : rows) {
      auto* r = carrier.add_regions();
      r->set_region(region);
      r->set_region_employment(employment);
    }
    return carrier.SerializeAsString();
  };
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kLists, "regionemployment", load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ClusterStrength carrier;
  if (!carrier.ParseFromString(*bytes)) return absl::InternalError("cached region employment does not parse");
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : carrier.regions()) out.push_back({r.region(), r.region_employment()});
  return out;
}

absl::StatusOr<v1::ClusterStrength> EnterprisesDomain::Strength(const std::string& cluster_id,
                                                                const std::vector<MemberGroup>& members) {
  CG_ASSIGN_OR_RETURN(auto totals, EmploymentByRegion());
  std::vector<RegionEmployment> rows;
  for (const auto& region : refdata::Regions()) {
    RegionEmployment row;
    row.region = std::string(region.code);
    for (const auto& [code, employment] : totals) {
      if (code == row.region) row.region_employment = employment;
    }
    for (const auto& g : members) {
      if (g.region != row.region) continue;
      row.employment += g.employees;
      row.establishments += g.members;
    }
    rows.push_back(std::move(row));
  }
  v1::ClusterStrength out = ComputeStrength(rows);
  out.set_cluster(absl::StrCat("clusters/", cluster_id));
  *out.mutable_as_of() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
  return out;
}

absl::StatusOr<v1::ClusterStrength> EnterprisesDomain::GetClusterStrength(const CallContext& call,
                                                                          const v1::GetClusterStrengthRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ParseClusterName("cluster", req.cluster()));
  CG_RETURN_IF_ERROR(indicators::CheckReader(call.principal));
  CG_RETURN_IF_ERROR(clusters_->Lookup(call, cluster_id).status());
  CG_ASSIGN_OR_RETURN(auto members, repo_->MemberGroups(cluster_id));
  return Strength(cluster_id, members);
}

absl::StatusOr<common::v1::ClusterIndicators> EnterprisesDomain::GetClusterIndicators(
    const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string cluster_id, indicators::ParseRequest(req));
  CG_RETURN_IF_ERROR(indicators::CheckReader(call.principal));
  CG_RETURN_IF_ERROR(clusters_->Lookup(call, cluster_id).status());
  CG_ASSIGN_OR_RETURN(auto members, repo_->MemberGroups(cluster_id));
  CG_ASSIGN_OR_RETURN(YearFigures year, repo_->Year(cluster_id, indicators::YearStart(req.year()),
                                                    indicators::YearEnd(req.year())));
  CG_ASSIGN_OR_RETURN(v1::ClusterStrength strength, Strength(cluster_id, members));
  std::map<int, int> roles;
  std::map<int, int> sizes;
  int total = 0;
  int64_t employees = 0;
  int64_t output = 0;
  for (const auto& g : members) {
    roles[g.role] += g.members;
    sizes[g.size_class] += g.members;
    total += g.members;
    employees += g.employees;
    output += g.annual_output_cny_10k;
  }
  namespace units = indicators::units;
  const auto kScale = common::v1::DIMENSION_SCALE;
  const auto kEcosystem = common::v1::DIMENSION_ECOSYSTEM;
  indicators::IndicatorSet set("enterprises", req);
  set.Add("members.total", total, units::kCount, kScale, "成员企业数 (active member enterprises)");
  set.Add("members.lead_enterprise", roles[v1::LEAD_ENTERPRISE], units::kCount, kScale, "龙头企业数 (lead enterprises)");
  set.Add("members.chain_leader", roles[v1::CHAIN_LEADER], units::kCount, kEcosystem, "链主企业数 (chain leaders)");
  set.Add("members.member", roles[v1::MEMBER], units::kCount, kScale, "一般成员企业数 (other members)");
  set.Add("members.size.large", sizes[v1::LARGE], units::kCount, kScale, "大型企业数 (large members)");
  set.Add("members.size.medium", sizes[v1::MEDIUM], units::kCount, kScale, "中型企业数 (medium members)");
  set.Add("members.size.small", sizes[v1::SMALL], units::kCount, kScale, "小型企业数 (small members)");
  set.Add("members.size.micro", sizes[v1::MICRO], units::kCount, kEcosystem, "微型企业数 (micro members)");
  for (const auto& rule : Rules()) {
    set.Add(absl::StrCat("certifications.", absl::AsciiStrToLower(v1::CertificationKind_Name(rule.kind))),
            CountOf(year.certifications, rule.kind), units::kCount,
            indicators::CertificationDimension(v1::CertificationKind_Name(rule.kind)),
            absl::StrCat(rule.title_zh, "（年内有效的成员企业数）"));
  }
  set.Add("supply_links.total", year.supply_links, units::kCount, kEcosystem,
          "成员间供需对接数 (supply links among members)");
  set.Add("supply_links.large_sme", year.large_sme_links, units::kCount, kEcosystem,
          "大中小企业融通对接数 (links between a large and a medium, small or micro member)");
  set.Add("employees", employees, units::kPerson, kScale, "成员企业从业人员 (members' employees)");
  set.Add("annual_output", output, units::kCny10k, kScale, "成员企业年产值（万元）(members' annual output)");
  int64_t max_lq = 0;
  for (const auto& r : strength.regions()) max_lq = std::max(max_lq, r.location_quotient_bp());
  set.Add("strength.strong_regions", strength.strong_regions(), units::kCount, kScale,
          "强集群地区数（区位商法）(strong cluster-regions)");
  set.Add("strength.max_location_quotient", max_lq, units::kBasisPoints, kScale,
          "最高区位商（基点）(highest regional location quotient, basis points)");
  return set.Take();
}

// ----------------------------------------------------------------------------- seed

absl::StatusOr<int> EnterprisesDomain::Seed(const clusters::v1::SeedData& seed) {
  std::vector<v1::Enterprise> enterprises;
  std::vector<v1::Membership> memberships;
  std::set<std::string> seen;
  for (const auto& sc : seed.clusters()) {
    for (const auto& lead : sc.cluster().lead_enterprises()) {
      if (lead.enterprise().empty()) continue;
      CG_ASSIGN_OR_RETURN(std::string uscc, ParseEnterpriseName("seed.lead_enterprises.enterprise", lead.enterprise()));
      if (seen.insert(uscc).second) {
        v1::Enterprise e;
        e.set_name(lead.enterprise());
        e.set_uscc(uscc);
        e.set_legal_name_zh(lead.name_zh());
        e.set_name_en(lead.name_en());
        e.set_region(sc.cluster().core_regions_size() > 0 ? sc.cluster().core_regions(0) : "");
        e.set_industry(sc.cluster().industry());
        e.set_size_class(v1::LARGE);
        e.set_listing_status(v1::UNLISTED);
        e.set_state(v1::Enterprise::ACTIVE);
        e.set_sample(true);
        enterprises.push_back(std::move(e));
      }
      v1::Membership m;
      m.set_enterprise(lead.enterprise());
      m.set_cluster(absl::StrCat("clusters/", sc.cluster_id()));
      m.set_role(v1::LEAD_ENTERPRISE);
      m.mutable_granted_by()->set_subject("system:seed");
      memberships.push_back(std::move(m));
    }
  }
  Principal seeder{"system:seed", "system", {std::string(roles::kAdmin)}};
  cache::PendingWrite pending = EnterpriseWrite("");
  return repo_->SeedMissing(seeder, enterprises, memberships);
}

}  // namespace clustergov::enterprises

#include "services/promotion/promotion_domain.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <set>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "common/auth/principal.h"
#include "common/indicators/indicators.h"
#include "common/list/paging.h"
#include "common/log/log.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"
#include "common/server/client.h"
#include "common/status/field_mask.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::promotion {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxName = 200;
constexpr size_t kMaxLongText = 20000;
constexpr int kMinStaff = 3;

struct Weight {
  const char* dimension;
  int32_t bp;
};
// Evaluation weights (reference data); they add up to 10000 basis points.
constexpr Weight kWeights[] = {{"services", 4000}, {"governance", 2500}, {"finance", 2000}, {"satisfaction", 1500}};

struct Criterion {
  const char* code;
  const char* title_zh;
};
constexpr Criterion kCriteria[] = {
    {"independent_legal_person", "具有独立法人资格"},
    {"bylaws", "制定章程"},
    {"legal_representative", "明确法定代表人"},
    {"min_full_time_staff", "专职工作人员不少于3人"},
    {"stable_income", "具有稳定收入来源（会费或服务收入）"},
    {"public_services", "提供至少一项公共服务"},
};

absl::Status PermissionDenied(absl::string_view what) { return absl::PermissionDeniedError(what); }

absl::StatusOr<std::string> ParseOrgName(absl::string_view field, absl::string_view name) {
  return ParseResourceName(field, name, "promotionOrgs");
}

absl::StatusOr<int64_t> ParseDesignationName(absl::string_view field, absl::string_view name) {
  return ParseNumberedName(field, name, "designations");
}

absl::Status CheckClusterName(absl::string_view field, absl::string_view name) {
  return ParseResourceName(field, name, "clusters").status();
}

bool ActsForOrg(const Principal& p, absl::string_view org_name) {
  return p.HasRole(roles::kPromotionOrg) && p.organization == org_name;
}

void SetActor(common::v1::Actor* a, const Principal& p) {
  a->set_subject(p.subject);
  a->set_organization(p.organization);
  a->clear_roles();
  for (const auto& r : p.roles) a->add_roles(r);
}

google::protobuf::Timestamp Now() { return TimeUtil::MicrosecondsToTimestamp(store::NowMicros()); }

// The designation events (the clusters service sets the cluster record's promotion organization
// from them), published in the write that made the change. Their revision is the cluster's
// designation sequence: the clusters service keeps the state of the highest it saw.
absl::Status PublishDesignated(PromotionTx& tx, const v1::Designation& d, const std::string& replaced) {
  events::v1::PromotionOrgDesignated e;
  e.set_designation(d.name());
  e.set_promotion_org(d.promotion_org());
  e.set_cluster(d.cluster());
  e.set_replaced_designation(replaced);
  CG_ASSIGN_OR_RETURN(int64_t sequence, tx.NextClusterSequence(d.cluster()));
  return tx.Publish(d.name(), e, sequence);
}

absl::Status PublishEnded(PromotionTx& tx, const v1::Designation& d, const std::string& reason) {
  events::v1::PromotionOrgDesignationRevoked e;
  e.set_designation(d.name());
  e.set_promotion_org(d.promotion_org());
  e.set_cluster(d.cluster());
  e.set_reason(reason);
  CG_ASSIGN_OR_RETURN(int64_t sequence, tx.NextClusterSequence(d.cluster()));
  return tx.Publish(d.name(), e, sequence);
}

// An annual report's event (AnnualReportSubmitted, AnnualReportAccepted or AnnualReportReturned).
template <typename Event>
absl::Status PublishReport(PromotionTx& tx, const v1::AnnualReport& r, const std::string& reason) {
  Event e;
  e.set_annual_report(r.name());
  e.set_promotion_org(r.promotion_org());
  e.set_cluster(r.cluster());
  e.set_year(r.year());
  if constexpr (!std::is_same_v<Event, events::v1::AnnualReportAccepted>) e.set_reason(reason);
  return tx.Publish(r.name(), e, store::RevisionOf(r.etag()));
}

// Founders: a kind and a name each; an enterprise founder may name its registry entry
// ("enterprises/{uscc}", a valid credit code), no other kind may.
void ValidateFounders(const google::protobuf::RepeatedPtrField<v1::Founder>& founders, FieldErrors& errors) {
  for (int i = 0; i < founders.size(); ++i) {
    const v1::Founder& f = founders[i];
    const std::string field = absl::StrCat("promotion_org.founders[", i, "]");
    if (!v1::FounderKind_IsValid(f.kind()) || f.kind() == v1::FOUNDER_KIND_UNSPECIFIED) {
      errors.Add(field + ".kind", "required");
    }
    CheckText(errors, field + ".name", f.name(), kMaxName, true);
    if (f.enterprise().empty()) continue;
    if (f.kind() != v1::ENTERPRISE) {
      errors.Add(field + ".enterprise", "only an ENTERPRISE founder names an enterprise");
    } else if (!absl::StartsWith(f.enterprise(), "enterprises/") ||
               !refdata::ValidateUscc(f.enterprise().substr(12)).ok()) {
      errors.Add(field + ".enterprise", "must be enterprises/{uscc} with a valid unified social credit code");
    }
  }
}

void ValidateOrg(const v1::PromotionOrg& o, FieldErrors& errors) {
  CheckText(errors, "promotion_org.display_name_zh", o.display_name_zh(), kMaxName, true);
  CheckText(errors, "promotion_org.display_name_en", o.display_name_en(), kMaxName, false);
  if (!v1::LegalForm_IsValid(o.legal_form()) || o.legal_form() == v1::LEGAL_FORM_UNSPECIFIED) {
    errors.Add("promotion_org.legal_form", "required: ASSOCIATION, ALLIANCE, COMPANY, PRIVATE_NON_ENTERPRISE or CONSORTIUM");
  }
  absl::Status uscc = refdata::ValidateUscc(o.uscc(), "promotion_org.uscc");
  if (!uscc.ok()) {
    for (const auto& v : GetFieldViolations(uscc)) errors.Add(v.field, v.description);
  }
  ValidateFounders(o.founders(), errors);
  CheckText(errors, "promotion_org.governance.legal_representative", o.governance().legal_representative(), kMaxName,
            false);
  for (int i = 0; i < o.governance().board_members_size(); ++i) {
    CheckText(errors, absl::StrCat("promotion_org.governance.board_members[", i, "].name"),
              o.governance().board_members(i).name(), kMaxName, true);
  }
  const auto& d = o.governance().bylaws_adopted();
  if (d.year() != 0 && !IsCalendarDate(d, 1949, 2100)) {
    errors.Add("promotion_org.governance.bylaws_adopted", "not a calendar date between 1949 and 2100");
  }
  if (o.full_time_staff() < 0 || o.full_time_staff() > 100000) {
    errors.Add("promotion_org.full_time_staff", "must be 0 to 100000");
  }
  for (int i = 0; i < o.income_sources_size(); ++i) {
    if (!v1::IncomeSource_IsValid(o.income_sources(i)) || o.income_sources(i) == v1::INCOME_SOURCE_UNSPECIFIED) {
      errors.Add(absl::StrCat("promotion_org.income_sources[", i, "]"), "unknown income source");
    }
  }
  for (int i = 0; i < o.services_size(); ++i) {
    if (!v1::PublicService_IsValid(o.services(i)) || o.services(i) == v1::PUBLIC_SERVICE_UNSPECIFIED) {
      errors.Add(absl::StrCat("promotion_org.services[", i, "]"), "unknown public service");
    }
  }
  CheckText(errors, "promotion_org.contact.person", o.contact().person(), kMaxName, false);
  CheckText(errors, "promotion_org.contact.phone", o.contact().phone(), 40, false);
  CheckText(errors, "promotion_org.contact.email", o.contact().email(), kMaxName, false);
  if (!o.contact().email().empty() && o.contact().email().find('@') == std::string::npos) {
    errors.Add("promotion_org.contact.email", "not an e-mail address");
  }
}

absl::Status ValidateMonitoring(const v1::MonitoringData& m) {
  FieldErrors errors;
  auto non_negative = [&](const char* field, int64_t v) {
    if (v < 0) errors.Add(absl::StrCat("annual_report.monitoring.", field), "must not be negative");
  };
  non_negative("output_value_fen", m.output_value_fen());
  non_negative("large_enterprises", m.large_enterprises());
  non_negative("medium_enterprises", m.medium_enterprises());
  non_negative("small_enterprises", m.small_enterprises());
  non_negative("micro_enterprises", m.micro_enterprises());
  non_negative("rd_spend_fen", m.rd_spend_fen());
  non_negative("patents", m.patents());
  non_negative("national_platforms", m.national_platforms());
  non_negative("region_platforms", m.region_platforms());
  non_negative("league_platforms", m.league_platforms());
  non_negative("green_factories", m.green_factories());
  non_negative("smart_factories", m.smart_factories());
  non_negative("employment", m.employment());
  for (const auto& [kind, count] : m.certifications()) {
    enterprises::v1::CertificationKind parsed;
    if (!enterprises::v1::CertificationKind_Parse(kind, &parsed) ||
        parsed == enterprises::v1::CERTIFICATION_KIND_UNSPECIFIED) {
      errors.Add(absl::StrCat("annual_report.monitoring.certifications[", kind, "]"), "unknown certification kind");
    } else if (count < 0) {
      errors.Add(absl::StrCat("annual_report.monitoring.certifications[", kind, "]"), "must not be negative");
    }
  }
  return errors.ToStatus();
}

// R&D intensity in basis points, exactly (128-bit: fen amounts may be large).
int32_t IntensityBp(int64_t rd, int64_t output) {
  if (output <= 0) return 0;
  __int128 bp = static_cast<__int128>(rd) * 10000 / output;
  return bp > INT32_MAX ? INT32_MAX : static_cast<int32_t>(bp);
}

}  // namespace

v1::EligibilityResult PromotionDomain::Evaluate(const v1::PromotionOrg& org) {
  v1::EligibilityResult out;
  out.set_promotion_org(org.name());
  bool all = true;
  for (const auto& c : kCriteria) {
    auto* r = out.add_criteria();
    r->set_code(c.code);
    r->set_title_zh(c.title_zh);
    std::string code = c.code;
    bool met = false;
    std::string reason;
    if (code == "independent_legal_person") {
      met = org.independent_legal_person();
      reason = met ? "registered as an independent legal person" : "not an independent legal person";
    } else if (code == "bylaws") {
      met = org.governance().bylaws_adopted().year() != 0;
      reason = met ? absl::StrCat("bylaws adopted ", org.governance().bylaws_adopted().year())
                   : "no bylaws adoption date recorded";
    } else if (code == "legal_representative") {
      met = !org.governance().legal_representative().empty();
      reason = met ? "legal representative named" : "no legal representative";
    } else if (code == "min_full_time_staff") {
      met = org.full_time_staff() >= kMinStaff;
      reason = absl::StrCat(org.full_time_staff(), " full-time staff; at least ", kMinStaff, " required");
    } else if (code == "stable_income") {
      for (int s : org.income_sources()) met = met || s == v1::MEMBERSHIP_FEES || s == v1::SERVICE_INCOME;
      reason = met ? "membership fees or service income" : "no membership fees or service income";
    } else if (code == "public_services") {
      met = org.services_size() > 0;
      reason = absl::StrCat(org.services_size(), " public services offered");
    }
    // A seed record holds only what the plan states: what it lacks was never recorded.
    if (!met && org.sample()) {
      reason = absl::StrCat("not recorded (", reason, "): a seed record holds only what the plan states; "
                            "the organization records the rest with UpdatePromotionOrg");
    }
    r->set_met(met);
    r->set_reason(reason);
    all = all && met;
  }
  out.set_eligible(all);
  return out;
}

void PromotionDomain::MarkIncomplete(v1::PromotionOrg& org) { org.set_incomplete(org.sample() && !Evaluate(org).eligible()); }

absl::Status PromotionDomain::CheckFounderEnterprises(const CallContext& call,
                                                      const google::protobuf::RepeatedPtrField<v1::Founder>& founders) {
  for (int i = 0; i < founders.size(); ++i) {
    const std::string& enterprise = founders[i].enterprise();
    if (enterprise.empty()) continue;
    if (deps_.enterprises == nullptr) return absl::UnavailableError("no enterprises service to check founders with");
    absl::Status s = deps_.enterprises->CheckRegistered(call, enterprise.substr(12));
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("promotion_org.founders[", i, "].enterprise: ", s.message()));
    }
  }
  return absl::OkStatus();
}

PromotionDomain::PromotionDomain(std::unique_ptr<PromotionRepository> repository, PromotionDeps deps,
                                 const PageTokenCodec* page_tokens)
    : repo_(std::move(repository)),
      deps_(std::move(deps)),
      support_stub_(support::v1::SupportService::NewStub(deps_.support_channel)),
      page_tokens_(page_tokens) {}

// ----------------------------------------------------------------------------- organizations

absl::StatusOr<v1::PromotionOrg> PromotionDomain::RegisterPromotionOrg(const CallContext& call,
                                                                       const v1::RegisterPromotionOrgRequest& req) {
  FieldErrors errors;
  if (!IsResourceId(req.promotion_org_id())) errors.Add("promotion_org_id", "required: 2-63 of [a-z0-9-]");
  ValidateOrg(req.promotion_org(), errors);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  const std::string name = absl::StrCat("promotionOrgs/", req.promotion_org_id());
  if (!ActsForOrg(p, name) && !p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    return PermissionDenied("a promotion organization registers itself; government and admins may register any");
  }
  CG_RETURN_IF_ERROR(CheckFounderEnterprises(call, req.promotion_org().founders()));
  store::WriteContext w{&p, "RegisterPromotionOrg", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::PromotionOrg>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::PromotionOrg> {
    CG_ASSIGN_OR_RETURN(auto existing, tx.GetOrg(req.promotion_org_id()));
    if (existing.has_value()) return absl::AlreadyExistsError(absl::StrCat(name, " already exists"));
    CG_ASSIGN_OR_RETURN(bool taken, tx.UsccTaken(req.promotion_org().uscc(), req.promotion_org_id()));
    if (taken) return absl::AlreadyExistsError("an organization with this credit code is registered");
    v1::PromotionOrg org = req.promotion_org();
    org.set_name(name);
    org.set_state(v1::PromotionOrg::ACTIVE);
    org.set_sample(false);
    org.set_incomplete(false);
    CG_RETURN_IF_ERROR(tx.PutOrg(org, /*create=*/true));
    CG_RETURN_IF_ERROR(tx.Audit(name, "", org.etag()));
    return org;
  });
}

absl::StatusOr<v1::PromotionOrg> PromotionDomain::GetPromotionOrg(const CallContext& call,
                                                                  const v1::GetPromotionOrgRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseOrgName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto org, repo_->GetOrg(id));
  if (!org.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return *org;
}

absl::StatusOr<v1::ListPromotionOrgsResponse> PromotionDomain::ListPromotionOrgs(
    const CallContext& call, const v1::ListPromotionOrgsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->OrgFilterFields(), {"ListPromotionOrgs", req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, ""};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListOrgs(q));
  v1::ListPromotionOrgsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_promotion_orgs(),
                                    [](const v1::PromotionOrg& o) { return o.name().substr(14); }));
  return resp;
}

absl::StatusOr<v1::PromotionOrg> PromotionDomain::UpdatePromotionOrg(const CallContext& call,
                                                                     const v1::UpdatePromotionOrgRequest& req) {
  const auto& in = req.promotion_org();
  CG_ASSIGN_OR_RETURN(std::string id, ParseOrgName("promotion_org.name", in.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  static const std::set<std::string> kPaths{"display_name_zh",  "display_name_en", "legal_form", "uscc",
                                            "independent_legal_person", "founders", "governance",
                                            "full_time_staff",  "income_sources",  "services",  "contact"};
  CG_ASSIGN_OR_RETURN(std::vector<std::string> paths, ResolveUpdateMask(req.update_mask(), kPaths));
  const Principal& p = call.principal;
  if (!ActsForOrg(p, in.name()) && !p.HasRole(roles::kAdmin)) {
    return PermissionDenied("a promotion organization updates only itself");
  }
  if (std::find(paths.begin(), paths.end(), "founders") != paths.end()) {
    // Founders' enterprises are asked of the enterprises service before the write (only when
    // well formed; the whole record is validated inside it).
    FieldErrors founder_errors;
    ValidateFounders(in.founders(), founder_errors);
    CG_RETURN_IF_ERROR(founder_errors.ToStatus());
    CG_RETURN_IF_ERROR(CheckFounderEnterprises(call, in.founders()));
  }
  store::WriteContext w{&p, "UpdatePromotionOrg", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::PromotionOrg>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::PromotionOrg> {
    CG_ASSIGN_OR_RETURN(auto org, tx.GetOrg(id));
    if (!org.has_value()) return absl::NotFoundError(absl::StrCat(in.name(), " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("promotion_org.etag", in.etag(), org->etag()));
    std::string before = org->etag();
    CopyFields(paths, in, &*org);
    FieldErrors errors;
    ValidateOrg(*org, errors);
    CG_RETURN_IF_ERROR(errors.ToStatus());
    CG_ASSIGN_OR_RETURN(bool taken, tx.UsccTaken(org->uscc(), id));
    if (taken) return absl::AlreadyExistsError("an organization with this credit code is registered");
    MarkIncomplete(*org);
    CG_RETURN_IF_ERROR(tx.PutOrg(*org, /*create=*/false));
    CG_RETURN_IF_ERROR(tx.Audit(org->name(), before, org->etag()));
    return *org;
  });
}

absl::StatusOr<v1::EligibilityResult> PromotionDomain::CheckEligibility(const CallContext& call,
                                                                        const v1::CheckEligibilityRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseOrgName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto org, repo_->GetOrg(id));
  if (!org.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return Evaluate(*org);
}

// ----------------------------------------------------------------------------- designation

absl::StatusOr<v1::Designation> PromotionDomain::ApplyForDesignation(const CallContext& call,
                                                                     const v1::ApplyForDesignationRequest& req) {
  const auto& in = req.designation();
  CG_ASSIGN_OR_RETURN(std::string org_id, ParseOrgName("designation.promotion_org", in.promotion_org()));
  CG_RETURN_IF_ERROR(CheckClusterName("designation.cluster", in.cluster()));
  FieldErrors errors;
  CheckText(errors, "designation.application_reason", in.application_reason(), 2000, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!ActsForOrg(p, in.promotion_org()) && !p.HasRole(roles::kAdmin)) {
    return PermissionDenied("a promotion organization applies only for itself");
  }
  CG_ASSIGN_OR_RETURN(auto cluster, deps_.clusters->Lookup(call, in.cluster()));
  if (cluster.state() != clusters::v1::Cluster::ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(in.cluster(), " is deleted"));
  }
  store::WriteContext w{&p, "ApplyForDesignation", req.request_id(), call.request_id, in.application_reason(), &req};
  return repo_->Write<v1::Designation>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::Designation> {
    CG_ASSIGN_OR_RETURN(auto org, tx.GetOrg(org_id));
    if (!org.has_value()) return absl::NotFoundError(absl::StrCat(in.promotion_org(), " not found"));
    if (org->state() != v1::PromotionOrg::ACTIVE) {
      return absl::FailedPreconditionError(absl::StrCat(in.promotion_org(), " is deregistered"));
    }
    v1::EligibilityResult eligibility = Evaluate(*org);
    if (!eligibility.eligible()) {
      std::vector<std::string> unmet;
      for (const auto& c : eligibility.criteria()) {
        if (!c.met()) unmet.push_back(absl::StrCat(c.code(), " (", c.reason(), ")"));
      }
      return absl::FailedPreconditionError(absl::StrCat("not eligible: ", absl::StrJoin(unmet, "; ")));
    }
    CG_ASSIGN_OR_RETURN(auto active, tx.ActiveDesignation(in.cluster()));
    if (active.has_value() && active->promotion_org() == in.promotion_org()) {
      return absl::FailedPreconditionError(absl::StrCat(in.promotion_org(), " already serves ", in.cluster()));
    }
    CG_ASSIGN_OR_RETURN(bool pending, tx.HasPending(in.promotion_org(), in.cluster()));
    if (pending) return absl::AlreadyExistsError("an application for this cluster is already pending");
    v1::Designation d;
    d.set_promotion_org(in.promotion_org());
    d.set_cluster(in.cluster());
    d.set_application_reason(in.application_reason());
    d.set_state(v1::Designation::PENDING);
    SetActor(d.mutable_applied_by(), p);
    *d.mutable_apply_time() = Now();
    CG_RETURN_IF_ERROR(tx.PutDesignation(d));
    CG_RETURN_IF_ERROR(tx.Audit(d.name(), "", d.etag()));
    return d;
  });
}

absl::StatusOr<v1::Designation> PromotionDomain::GetDesignation(const CallContext& call,
                                                                const v1::GetDesignationRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseDesignationName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto d, repo_->GetDesignation(id));
  if (!d.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return *d;
}

absl::StatusOr<v1::ListDesignationsResponse> PromotionDomain::ListDesignations(const CallContext& call,
                                                                               const v1::ListDesignationsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->DesignationFilterFields(), {"ListDesignations", req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, ""};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListDesignations(q));
  v1::ListDesignationsResponse resp;
  resp.set_next_page_token(
      TakePage(*page_tokens_, plan, items, resp.mutable_designations(), [](const v1::Designation& d) {
        return absl::StrCat(absl::Dec(std::stoll(d.name().substr(13)), absl::kZeroPad20));
      }));
  return resp;
}

absl::StatusOr<v1::Designation> PromotionDomain::Decide(const CallContext& call,
                                                        const v1::DesignationDecisionRequest& req, const char* method) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseDesignationName("name", req.name()));
  const std::string m = method;
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), 2000, m != "WithdrawDesignation");
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  CG_ASSIGN_OR_RETURN(auto current, repo_->GetDesignation(id));
  if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (m == "WithdrawDesignation") {
    if (!ActsForOrg(p, current->promotion_org())) return PermissionDenied("only the applicant withdraws");
  } else {
    // Government guides: only the cluster's lead department decides.
    CG_ASSIGN_OR_RETURN(auto cluster, deps_.clusters->Lookup(call, current->cluster()));
    if (!clusters::IsLeadDepartmentOf(p, cluster)) {
      return PermissionDenied(absl::StrCat("only a lead department of ", current->cluster(), " decides designations"));
    }
  }
  store::WriteContext w{&p, method, req.request_id(), call.request_id, req.reason(), &req};
  return repo_->Write<v1::Designation>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::Designation> {
    std::string replaced;  // the designation an approval supersedes
    CG_ASSIGN_OR_RETURN(auto d, tx.GetDesignation(id));
    if (!d.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), d->etag()));
    std::string before = d->etag();
    auto illegal = [&] {
      return absl::FailedPreconditionError(absl::StrCat("cannot ", m, " ", d->name(), " in state ",
                                                        v1::Designation::State_Name(d->state())));
    };
    if (m == "ApproveDesignation") {
      if (d->state() != v1::Designation::PENDING) return illegal();
      CG_ASSIGN_OR_RETURN(auto org, tx.GetOrg(d->promotion_org().substr(14)));
      if (!org.has_value() || !Evaluate(*org).eligible()) {
        return absl::FailedPreconditionError(absl::StrCat(d->promotion_org(), " is no longer eligible"));
      }
      // One active per cluster: the previous one ends now.
      CG_ASSIGN_OR_RETURN(auto previous, tx.ActiveDesignation(d->cluster()));
      if (previous.has_value()) {
        std::string prev_before = previous->etag();
        previous->set_state(v1::Designation::ENDED);
        *previous->mutable_end_time() = Now();
        CG_RETURN_IF_ERROR(tx.PutDesignation(*previous));
        CG_RETURN_IF_ERROR(tx.Audit(previous->name(), prev_before, previous->etag()));
        CG_RETURN_IF_ERROR(PublishEnded(tx, *previous, absl::StrCat("superseded by ", d->name())));
      }
      d->set_state(v1::Designation::ACTIVE);
      replaced = previous.has_value() ? previous->name() : "";
    } else if (m == "RejectDesignation") {
      if (d->state() != v1::Designation::PENDING) return illegal();
      d->set_state(v1::Designation::REJECTED);
    } else if (m == "RevokeDesignation") {
      if (d->state() != v1::Designation::ACTIVE) return illegal();
      d->set_state(v1::Designation::REVOKED);
      *d->mutable_end_time() = Now();
    } else {
      if (d->state() != v1::Designation::PENDING) return illegal();
      d->set_state(v1::Designation::WITHDRAWN);
    }
    d->set_decision_reason(req.reason());
    SetActor(d->mutable_decided_by(), p);
    *d->mutable_decide_time() = Now();
    CG_RETURN_IF_ERROR(tx.PutDesignation(*d));
    CG_RETURN_IF_ERROR(tx.Audit(d->name(), before, d->etag()));
    if (m == "ApproveDesignation") CG_RETURN_IF_ERROR(PublishDesignated(tx, *d, replaced));
    if (m == "RevokeDesignation") CG_RETURN_IF_ERROR(PublishEnded(tx, *d, req.reason()));
    return *d;
  });
}

absl::StatusOr<v1::Designation> PromotionDomain::ApproveDesignation(const CallContext& call,
                                                                    const v1::DesignationDecisionRequest& req) {
  return Decide(call, req, "ApproveDesignation");
}
absl::StatusOr<v1::Designation> PromotionDomain::RejectDesignation(const CallContext& call,
                                                                   const v1::DesignationDecisionRequest& req) {
  return Decide(call, req, "RejectDesignation");
}
absl::StatusOr<v1::Designation> PromotionDomain::RevokeDesignation(const CallContext& call,
                                                                   const v1::DesignationDecisionRequest& req) {
  return Decide(call, req, "RevokeDesignation");
}
absl::StatusOr<v1::Designation> PromotionDomain::WithdrawDesignation(const CallContext& call,
                                                                     const v1::DesignationDecisionRequest& req) {
  return Decide(call, req, "WithdrawDesignation");
}

// ----------------------------------------------------------------------------- annual reports

absl::StatusOr<v1::AnnualReport> PromotionDomain::SubmitAnnualReport(const CallContext& call,
                                                                     const v1::SubmitAnnualReportRequest& req) {
  const auto& in = req.annual_report();
  CG_RETURN_IF_ERROR(CheckClusterName("annual_report.cluster", in.cluster()));
  FieldErrors errors;
  if (in.year() < 2000 || in.year() > 2100) errors.Add("annual_report.year", "required: a year between 2000 and 2100");
  CheckText(errors, "annual_report.work_report", in.work_report(), kMaxLongText, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(ValidateMonitoring(in.monitoring()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kPromotionOrg)) return PermissionDenied("annual reports are submitted by the designated organization");
  const std::string id = absl::StrCat(in.cluster().substr(9), "-", in.year());
  store::WriteContext w{&p, "SubmitAnnualReport", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::AnnualReport>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::AnnualReport> {
    CG_ASSIGN_OR_RETURN(auto active, tx.ActiveDesignation(in.cluster()));
    if (!active.has_value() || active->promotion_org() != p.organization) {
      return PermissionDenied(absl::StrCat("only the designated promotion organization of ", in.cluster(),
                                           " submits its annual report"));
    }
    CG_ASSIGN_OR_RETURN(auto existing, tx.GetReport(id));
    // An overdue report is still submitted (late).
    const bool overdue = existing.has_value() && existing->state() == v1::AnnualReport::OVERDUE;
    if (existing.has_value() && !overdue) {
      return absl::AlreadyExistsError(absl::StrCat("annualReports/", id, " exists; correct it with UpdateAnnualReport"));
    }
    v1::AnnualReport r;
    r.set_name(absl::StrCat("annualReports/", id));
    r.set_cluster(in.cluster());
    r.set_year(in.year());
    r.set_promotion_org(p.organization);
    r.set_work_report(in.work_report());
    *r.mutable_monitoring() = in.monitoring();
    r.mutable_monitoring()->set_rd_intensity_bp(IntensityBp(in.monitoring().rd_spend_fen(), in.monitoring().output_value_fen()));
    r.set_state(v1::AnnualReport::SUBMITTED);
    *r.mutable_submit_time() = Now();
    if (overdue) {
      r.set_etag(existing->etag());
      *r.mutable_overdue_time() = existing->overdue_time();
    }
    CG_RETURN_IF_ERROR(tx.PutReport(r, /*create=*/!overdue));
    CG_RETURN_IF_ERROR(tx.Audit(r.name(), overdue ? existing->etag() : "", r.etag()));
    CG_RETURN_IF_ERROR(PublishReport<events::v1::AnnualReportSubmitted>(tx, r, ""));
    return r;
  });
}

absl::StatusOr<v1::AnnualReport> PromotionDomain::UpdateAnnualReport(const CallContext& call,
                                                                     const v1::UpdateAnnualReportRequest& req) {
  const auto& in = req.annual_report();
  if (!absl::StartsWith(in.name(), "annualReports/")) {
    return InvalidField("annual_report.name", "must be annualReports/{cluster_id}-{year}");
  }
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  bool set_report = req.update_mask().paths_size() == 0, set_monitoring = set_report;
  for (const auto& path : req.update_mask().paths()) {
    if (path == "work_report") {
      set_report = true;
    } else if (path == "monitoring") {
      set_monitoring = true;
    } else {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is not updatable; use work_report, monitoring"));
    }
  }
  FieldErrors errors;
  if (set_report) CheckText(errors, "annual_report.work_report", in.work_report(), kMaxLongText, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  if (set_monitoring) CG_RETURN_IF_ERROR(ValidateMonitoring(in.monitoring()));
  const Principal& p = call.principal;
  store::WriteContext w{&p, "UpdateAnnualReport", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::AnnualReport>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::AnnualReport> {
    CG_ASSIGN_OR_RETURN(auto r, tx.GetReport(in.name().substr(14)));
    if (!r.has_value()) return absl::NotFoundError(absl::StrCat(in.name(), " not found"));
    if (!ActsForOrg(p, r->promotion_org())) return PermissionDenied("only the submitting organization corrects it");
    CG_RETURN_IF_ERROR(CheckEtag("annual_report.etag", in.etag(), r->etag()));
    if (r->state() == v1::AnnualReport::ACCEPTED) {
      return absl::FailedPreconditionError(absl::StrCat(in.name(), " was accepted and can no longer be corrected"));
    }
    if (r->state() == v1::AnnualReport::OVERDUE) {
      return absl::FailedPreconditionError(absl::StrCat(in.name(), " has not been submitted: submit it with SubmitAnnualReport"));
    }
    std::string before = r->etag();
    if (set_report) r->set_work_report(in.work_report());
    if (set_monitoring) {
      *r->mutable_monitoring() = in.monitoring();
      r->mutable_monitoring()->set_rd_intensity_bp(
          IntensityBp(in.monitoring().rd_spend_fen(), in.monitoring().output_value_fen()));
    }
    const bool resubmitted = r->state() == v1::AnnualReport::RETURNED;
    r->set_state(v1::AnnualReport::SUBMITTED);
    CG_RETURN_IF_ERROR(tx.PutReport(*r, /*create=*/false));
    CG_RETURN_IF_ERROR(tx.Audit(r->name(), before, r->etag()));
    // A returned report, corrected, is submitted again.
    if (resubmitted) CG_RETURN_IF_ERROR(PublishReport<events::v1::AnnualReportSubmitted>(tx, *r, "corrected"));
    return *r;
  });
}

absl::StatusOr<v1::AnnualReport> PromotionDomain::DecideReport(const CallContext& call,
                                                               const v1::AnnualReportDecisionRequest& req,
                                                               bool accept) {
  if (!absl::StartsWith(req.name(), "annualReports/")) {
    return InvalidField("name", "must be annualReports/{cluster_id}-{year}");
  }
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), 2000, !accept);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  CG_ASSIGN_OR_RETURN(auto current, repo_->GetReport(req.name().substr(14)));
  if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_ASSIGN_OR_RETURN(auto cluster, deps_.clusters->Lookup(call, current->cluster()));
  if (!clusters::IsLeadDepartmentOf(p, cluster)) {
    return PermissionDenied(absl::StrCat("only a lead department of ", current->cluster(), " accepts or returns reports"));
  }
  store::WriteContext w{&p, accept ? "AcceptAnnualReport" : "ReturnAnnualReport", req.request_id(), call.request_id,
                 req.reason(), &req};
  return repo_->Write<v1::AnnualReport>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::AnnualReport> {
    CG_ASSIGN_OR_RETURN(auto r, tx.GetReport(req.name().substr(14)));
    if (!r.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), r->etag()));
    if (r->state() != v1::AnnualReport::SUBMITTED) {
      return absl::FailedPreconditionError(absl::StrCat(req.name(), " is ", v1::AnnualReport::State_Name(r->state())));
    }
    std::string before = r->etag();
    r->set_state(accept ? v1::AnnualReport::ACCEPTED : v1::AnnualReport::RETURNED);
    r->set_decision_reason(req.reason());
    CG_RETURN_IF_ERROR(tx.PutReport(*r, /*create=*/false));
    CG_RETURN_IF_ERROR(tx.Audit(r->name(), before, r->etag()));
    if (accept) {
      CG_RETURN_IF_ERROR(PublishReport<events::v1::AnnualReportAccepted>(tx, *r, req.reason()));
    } else {
      CG_RETURN_IF_ERROR(PublishReport<events::v1::AnnualReportReturned>(tx, *r, req.reason()));
    }
    return *r;
  });
}

absl::StatusOr<v1::AnnualReport> PromotionDomain::AcceptAnnualReport(const CallContext& call,
                                                                     const v1::AnnualReportDecisionRequest& req) {
  return DecideReport(call, req, true);
}
absl::StatusOr<v1::AnnualReport> PromotionDomain::ReturnAnnualReport(const CallContext& call,
                                                                     const v1::AnnualReportDecisionRequest& req) {
  return DecideReport(call, req, false);
}

absl::StatusOr<v1::AnnualReport> PromotionDomain::GetAnnualReport(const CallContext& call,
                                                                  const v1::GetAnnualReportRequest& req) {
  if (!absl::StartsWith(req.name(), "annualReports/")) {
    return InvalidField("name", "must be annualReports/{cluster_id}-{year}");
  }
  CG_ASSIGN_OR_RETURN(auto r, repo_->GetReport(req.name().substr(14)));
  if (!r.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return *r;
}

absl::StatusOr<v1::ListAnnualReportsResponse> PromotionDomain::ListAnnualReports(
    const CallContext& call, const v1::ListAnnualReportsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(),
                                              repo_->ReportFilterFields(), {"ListAnnualReports", req.filter()}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, ""};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListReports(q));
  v1::ListAnnualReportsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_annual_reports(),
                                    [](const v1::AnnualReport& r) { return r.name().substr(14); }));
  return resp;
}

// ----------------------------------------------------------------------------- deadlines

absl::StatusOr<int> PromotionDomain::FlagOverdueReports(const store::LeaseFence& fence, absl::Time now) {
  constexpr int kBatch = 100;
  const absl::TimeZone cst = absl::FixedTimeZone(8 * 3600);
  // What is owed: the organization of each active designation reports on its cluster for every
  // year from the one it was designated in, by the end of 30 April of the next year.
  struct Owed {
    v1::Designation designation;
    int year;
    absl::Time due;
  };
  std::vector<Owed> owed;
  CG_ASSIGN_OR_RETURN(auto designations, repo_->ActiveDesignations());
  for (const auto& d : designations) {
    if (!d.has_decide_time()) continue;
    const absl::Time designated = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(d.decide_time()));
    for (int year = std::max<int>(2000, absl::ToCivilYear(designated, cst).year());; ++year) {
      const absl::Time due = absl::FromCivil(absl::CivilDay(year + 1, 5, 1), cst);
      if (now < due) break;
      CG_ASSIGN_OR_RETURN(auto report, repo_->GetReport(absl::StrCat(d.cluster().substr(9), "-", year)));
      if (!report.has_value()) owed.push_back({d, year, due});
    }
  }
  const Principal self = ServicePrincipal("promotion");
  store::WriteContext w{&self, "Job:FlagOverdueReports", "", "", "annual report not submitted by 30 April", nullptr};
  w.fence = &fence;
  int flagged = 0;
  for (size_t first = 0; first < owed.size(); first += kBatch) {
    const size_t last = std::min(owed.size(), first + kBatch);
    CG_ASSIGN_OR_RETURN(int n, repo_->Write<int>(w, [&](PromotionTx& tx) -> absl::StatusOr<int> {
      int written = 0;
      for (size_t i = first; i < last; ++i) {
        const Owed& o = owed[i];
        const std::string id = absl::StrCat(o.designation.cluster().substr(9), "-", o.year);
        // Still owed by the same organization, and still missing.
        CG_ASSIGN_OR_RETURN(auto active, tx.ActiveDesignation(o.designation.cluster()));
        if (!active.has_value() || active->name() != o.designation.name()) continue;
        CG_ASSIGN_OR_RETURN(auto existing, tx.GetReport(id));
        if (existing.has_value()) continue;
        v1::AnnualReport r;
        r.set_name(absl::StrCat("annualReports/", id));
        r.set_cluster(o.designation.cluster());
        r.set_year(o.year);
        r.set_promotion_org(o.designation.promotion_org());
        r.set_state(v1::AnnualReport::OVERDUE);
        *r.mutable_overdue_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
        CG_RETURN_IF_ERROR(tx.PutReport(r, /*create=*/true));
        CG_RETURN_IF_ERROR(tx.Audit(r.name(), "", r.etag()));
        events::v1::AnnualReportOverdue event;
        event.set_annual_report(r.name());
        event.set_promotion_org(r.promotion_org());
        event.set_cluster(r.cluster());
        event.set_year(r.year());
        *event.mutable_due() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(o.due));
        CG_RETURN_IF_ERROR(tx.Publish(r.name(), event, store::RevisionOf(r.etag())));
        ++written;
      }
      return written;
    }));
    flagged += n;
  }
  return flagged;
}

// ----------------------------------------------------------------------------- indicators

absl::StatusOr<common::v1::ClusterIndicators> PromotionDomain::GetClusterIndicators(
    const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string cluster_id, indicators::ParseRequest(req));
  CG_RETURN_IF_ERROR(indicators::CheckReader(call.principal));
  CG_RETURN_IF_ERROR(deps_.clusters->Lookup(call, cluster_id).status());
  CG_ASSIGN_OR_RETURN(auto report, repo_->GetReport(absl::StrCat(cluster_id, "-", req.year())));
  if (!report.has_value() || report->state() != v1::AnnualReport::ACCEPTED) {
    return absl::FailedPreconditionError(absl::StrCat("no accepted annual report for ", req.cluster(), " in ",
                                                      req.year()));
  }
  namespace units = indicators::units;
  const auto kScale = common::v1::DIMENSION_SCALE;
  const auto kInnovation = common::v1::DIMENSION_INNOVATION;
  const auto kManufacturing = common::v1::DIMENSION_MANUFACTURING;
  const v1::MonitoringData& m = report->monitoring();
  // As of the report's acceptance (its last change): the figures are the report's, not today's.
  indicators::IndicatorSet set("promotion", req,
                               absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(report->update_time())));
  set.AddBasis(report->name());
  set.Add("output_value", m.output_value_fen(), units::kFen, kScale, "集群总产值 (output value, report)");
  set.Add("employment", m.employment(), units::kPerson, kScale, "从业人员 (employment, report)");
  set.Add("enterprises.large", m.large_enterprises(), units::kCount, kScale, "大型企业数 (report)");
  set.Add("enterprises.medium", m.medium_enterprises(), units::kCount, kScale, "中型企业数 (report)");
  set.Add("enterprises.small", m.small_enterprises(), units::kCount, kScale, "小型企业数 (report)");
  set.Add("enterprises.micro", m.micro_enterprises(), units::kCount, kScale, "微型企业数 (report)");
  set.Add("rd_spend", m.rd_spend_fen(), units::kFen, kInnovation, "研发投入 (R&D spending, report)");
  set.Add("rd_intensity", m.rd_intensity_bp(), units::kBasisPoints, kInnovation,
          "研发投入强度（基点）(R&D spending / output value, report)");
  set.Add("patents", m.patents(), units::kCount, kInnovation, "专利数 (patents, report)");
  set.Add("platforms.national", m.national_platforms(), units::kCount, kInnovation, "国家级创新平台数 (report)");
  set.Add("platforms.region", m.region_platforms(), units::kCount, kInnovation, "自治区级创新平台数 (report)");
  set.Add("platforms.league", m.league_platforms(), units::kCount, kInnovation, "盟市级创新平台数 (report)");
  set.Add("green_factories", m.green_factories(), units::kCount, kManufacturing, "绿色工厂数 (report)");
  set.Add("smart_factories", m.smart_factories(), units::kCount, kManufacturing, "智能工厂数 (report)");
  std::map<std::string, int32_t> certifications(m.certifications().begin(), m.certifications().end());
  for (const auto& [kind, n] : certifications) {
    set.Add(absl::StrCat("certifications.", absl::AsciiStrToLower(kind)), n, units::kCount,
            indicators::CertificationDimension(kind), absl::StrCat(kind, " 认定企业数 (report)"));
  }
  return set.Take();
}

// ----------------------------------------------------------------------------- funding

namespace {

// A definitive answer: the call was refused and changed nothing, unlike a timeout or an outage
// whose outcome is unknown.
bool IsRefusal(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAUTHENTICATED:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<v1::FundingApplication> PromotionDomain::ApplyForFunding(const CallContext& call,
                                                                        const v1::ApplyForFundingRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string org_id, ParseOrgName("promotion_org", req.promotion_org()));
  CG_RETURN_IF_ERROR(CheckClusterName("cluster", req.cluster()));
  FieldErrors errors;
  if (!refdata::IsRegionCode(req.region())) errors.Add("region", "required: a league region code");
  if (req.year() < 2000 || req.year() > 2100) errors.Add("year", "required: a year between 2000 and 2100");
  CheckText(errors, "project_name", req.project_name(), kMaxName, true);
  if (req.amount_fen() <= 0) errors.Add("amount_fen", "required: a positive amount in fen");
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!ActsForOrg(p, req.promotion_org())) return PermissionDenied("a promotion organization applies only for itself");
  CG_ASSIGN_OR_RETURN(auto active, repo_->ActiveDesignation(req.cluster()));
  if (!active.has_value() || active->promotion_org() != req.promotion_org()) {
    return absl::FailedPreconditionError(
        absl::StrCat(req.promotion_org(), " is not the designated promotion organization of ", req.cluster()));
  }
  // The application lives in the support service, with this organization as applicant, made
  // with the caller's own token (the support service checks it applies for itself).
  support::v1::CreateApplicationRequest create;
  auto* app = create.mutable_application();
  app->set_applicant(req.promotion_org());
  app->set_cluster(req.cluster());
  app->set_project_name(req.project_name());
  app->set_region(req.region());
  app->set_year(req.year());
  auto* item = app->add_items();
  item->set_kind(support::v1::SUBSIDY);
  item->set_quantity(req.amount_fen());
  if (!req.request_id().empty()) create.set_request_id(absl::StrCat(req.request_id(), ":create"));
  support::v1::Application created;
  {
    auto ctx = server::OutgoingContext(call, absl::Seconds(5));
    grpc::Status s = support_stub_->CreateApplication(ctx.get(), create, &created);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  support::v1::TransitionRequest submit;
  submit.set_name(created.name());
  if (!req.request_id().empty()) submit.set_request_id(absl::StrCat(req.request_id(), ":submit"));
  support::v1::Application submitted;
  grpc::Status s;
  {
    auto ctx = server::OutgoingContext(call, absl::Seconds(5));
    s = support_stub_->SubmitApplication(ctx.get(), submit, &submitted);
  }
  if (!s.ok()) {
    // A refusal (no subsidy pool, ...) must not leave a draft behind: withdraw it, then report the
    // refusal. When the outcome is unknown (UNAVAILABLE, DEADLINE_EXCEEDED, ...) the draft stays,
    // so a retry with the same request_id resumes it (create and submit are idempotent).
    if (IsRefusal(s.error_code())) {
      support::v1::TransitionRequest withdraw;
      withdraw.set_name(created.name());
      withdraw.set_reason("submission refused by the support service");
      if (!req.request_id().empty()) withdraw.set_request_id(absl::StrCat(req.request_id(), ":withdraw"));
      support::v1::Application withdrawn;
      auto ctx = server::OutgoingContext(call, absl::Seconds(5));
      if (grpc::Status w = support_stub_->WithdrawApplication(ctx.get(), withdraw, &withdrawn); !w.ok()) {
        log::Warn("could not withdraw a funding draft after its submission was refused",
                  {{"application", created.name()}, {"error", w.error_message()}});
      }
    }
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  v1::FundingApplication out;
  out.set_application(submitted.name());
  out.set_cluster(submitted.cluster());
  out.set_amount_fen(req.amount_fen());
  out.set_state(support::v1::Application::State_Name(submitted.state()));
  out.set_project_name(submitted.project_name());
  return out;
}

absl::StatusOr<v1::ListFundingApplicationsResponse> PromotionDomain::ListFundingApplications(
    const CallContext& call, const v1::ListFundingApplicationsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string org_id, ParseOrgName("promotion_org", req.promotion_org()));
  const Principal& p = call.principal;
  if (!ActsForOrg(p, req.promotion_org()) && !p.HasAnyRole({roles::kGovernment, roles::kAuditor, roles::kAdmin})) {
    return PermissionDenied("funding applications are visible to the organization, government and auditors");
  }
  v1::ListFundingApplicationsResponse out;
  support::v1::ListApplicationsRequest list;
  list.set_filter(absl::StrCat("applicant = \"", req.promotion_org(), "\""));
  list.set_page_size(500);
  for (int page = 0; page < 20; ++page) {
    support::v1::ListApplicationsResponse resp;
    auto ctx = server::OutgoingContext(call, absl::Seconds(5));
    grpc::Status s = support_stub_->ListApplications(ctx.get(), list, &resp);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    for (const auto& a : resp.applications()) {
      auto* f = out.add_applications();
      f->set_application(a.name());
      f->set_cluster(a.cluster());
      int64_t amount = 0;
      for (const auto& item : a.items()) amount += item.kind() == support::v1::SUBSIDY ? item.quantity() : 0;
      f->set_amount_fen(amount);
      f->set_state(support::v1::Application::State_Name(a.state()));
      f->set_project_name(a.project_name());
    }
    if (resp.next_page_token().empty()) break;
    list.set_page_token(resp.next_page_token());
  }
  return out;
}

// ----------------------------------------------------------------------------- evaluation

absl::StatusOr<v1::Evaluation> PromotionDomain::EvaluatePromotionOrg(const CallContext& call,
                                                                     const v1::EvaluatePromotionOrgRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string org_id, ParseOrgName("parent", req.parent()));
  const auto& in = req.evaluation();
  FieldErrors errors;
  if (in.year() < 2000 || in.year() > 2100) errors.Add("evaluation.year", "required: a year between 2000 and 2100");
  const int32_t scores[] = {in.scores().services(), in.scores().governance(), in.scores().finance(),
                            in.scores().satisfaction()};
  for (size_t i = 0; i < 4; ++i) {
    if (scores[i] < 0 || scores[i] > 100) {
      errors.Add(absl::StrCat("evaluation.scores.", kWeights[i].dimension), "must be 0 to 100");
    }
  }
  CheckText(errors, "evaluation.comment", in.comment(), 2000, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return PermissionDenied("government evaluates promotion organizations");
  int32_t total = 0;
  for (size_t i = 0; i < 4; ++i) total += scores[i] * kWeights[i].bp / 100;
  store::WriteContext w{&p, "EvaluatePromotionOrg", req.request_id(), call.request_id, in.comment(), &req};
  return repo_->Write<v1::Evaluation>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::Evaluation> {
    CG_ASSIGN_OR_RETURN(auto org, tx.GetOrg(org_id));
    if (!org.has_value()) return absl::NotFoundError(absl::StrCat(req.parent(), " not found"));
    CG_ASSIGN_OR_RETURN(bool exists, tx.HasEvaluation(org_id, in.year()));
    if (exists) return absl::AlreadyExistsError(absl::StrCat(req.parent(), " is already evaluated for ", in.year()));
    v1::Evaluation e = in;
    e.set_name(absl::StrCat(req.parent(), "/evaluations/", in.year()));
    e.set_total_centi(total);
    e.set_grade(total >= 9000 ? "EXCELLENT" : total >= 7500 ? "GOOD" : total >= 6000 ? "PASS" : "FAIL");
    SetActor(e.mutable_evaluated_by(), p);
    *e.mutable_evaluate_time() = Now();
    CG_RETURN_IF_ERROR(tx.PutEvaluation(org_id, e));
    CG_RETURN_IF_ERROR(tx.Audit(e.name(), "", ""));
    return e;
  });
}

absl::StatusOr<v1::ListEvaluationsResponse> PromotionDomain::ListEvaluations(const CallContext& call,
                                                                             const v1::ListEvaluationsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string org_id, ParseOrgName("parent", req.parent()));
  static const std::vector<FilterField> kNoFields;
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              "", kNoFields, {"ListEvaluations", org_id}));
  ListQuery q{plan.filter, plan.after_key, plan.page_size, org_id};
  CG_ASSIGN_OR_RETURN(auto items, repo_->ListEvaluations(q));
  v1::ListEvaluationsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, items, resp.mutable_evaluations(),
                                    [](const v1::Evaluation& e) { return absl::StrCat(absl::Dec(e.year(), absl::kZeroPad6)); }));
  return resp;
}

absl::StatusOr<v1::PromotionReferenceData> PromotionDomain::GetReferenceData(
    const CallContext& call, const v1::GetPromotionReferenceDataRequest& req) {
  v1::PromotionReferenceData out;
  for (const auto& c : kCriteria) {
    auto* x = out.add_eligibility_criteria();
    x->set_code(c.code);
    x->set_title_zh(c.title_zh);
  }
  for (const auto& w : kWeights) {
    auto* x = out.add_evaluation_weights();
    x->set_dimension(w.dimension);
    x->set_weight_bp(w.bp);
  }
  return out;
}

absl::StatusOr<common::v1::ListAuditEventsResponse> PromotionDomain::ListAuditEvents(
    const CallContext& call, const common::v1::ListAuditEventsRequest& req) {
  return repo_->ListAuditEvents(call.principal, *page_tokens_, req);
}

// ----------------------------------------------------------------------------- seed

absl::StatusOr<int> PromotionDomain::Seed(const clusters::v1::SeedData& seed) {
  Principal seeder{"system:seed", "system", {std::string(roles::kAdmin)}};
  store::WriteContext w{&seeder, "Seed", "", "", "seed data: promotion bodies named by the plan", nullptr};
  int created = 0;
  int sequence = 0;
  for (const auto& sc : seed.clusters()) {
    const std::string body = sc.cluster().named_promotion_body();
    if (body.empty()) continue;
    ++sequence;
    const std::string cluster = absl::StrCat("clusters/", sc.cluster_id());
    const std::string id = absl::StrCat(sc.cluster_id(), "-promotion");
    // A clearly sample code: social organization (5, 1), the cluster's league, "CG" + sequence.
    std::string first17 = absl::StrCat("51", sc.cluster().core_regions(0), "CGP", absl::Dec(sequence, absl::kZeroPad6));
    std::string uscc = first17 + refdata::UsccCheckCharacter(first17);
    auto result = repo_->Write<v1::PromotionOrg>(w, [&](PromotionTx& tx) -> absl::StatusOr<v1::PromotionOrg> {
      CG_ASSIGN_OR_RETURN(auto existing, tx.GetOrg(id));
      if (existing.has_value()) return *existing;
      v1::PromotionOrg org;
      org.set_name(absl::StrCat("promotionOrgs/", id));
      // Only what the plan states (the body's name; an association, by that name) and a sample
      // credit code: no invented governance, staff, income or services. Marked incomplete.
      org.set_display_name_zh(body);
      org.set_legal_form(v1::ASSOCIATION);
      org.set_uscc(uscc);
      org.set_state(v1::PromotionOrg::ACTIVE);
      org.set_sample(true);
      MarkIncomplete(org);
      CG_RETURN_IF_ERROR(tx.PutOrg(org, /*create=*/true));
      CG_RETURN_IF_ERROR(tx.Audit(org.name(), "", org.etag()));
      // The plan itself designates it ("以…为集群发展促进组织").
      CG_ASSIGN_OR_RETURN(auto active, tx.ActiveDesignation(cluster));
      if (!active.has_value()) {
        v1::Designation d;
        d.set_promotion_org(org.name());
        d.set_cluster(cluster);
        d.set_state(v1::Designation::ACTIVE);
        d.set_application_reason("named by the action plan");
        d.set_decision_reason("内蒙古自治区先进制造业集群建设行动方案");
        SetActor(d.mutable_decided_by(), seeder);
        *d.mutable_decide_time() = Now();
        CG_RETURN_IF_ERROR(tx.PutDesignation(d));
        CG_RETURN_IF_ERROR(tx.Audit(d.name(), "", d.etag()));
        CG_RETURN_IF_ERROR(PublishDesignated(tx, d, ""));
      }
      ++created;
      return org;
    });
    if (!result.ok()) return result.status();
  }
  return created;
}

}  // namespace clustergov::promotion

#include "services/clusters/evaluation_domain.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/auth/principal.h"
#include "common/list/paging.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "common/store/sqlite.h"
#include "google/protobuf/util/time_util.h"
#include "services/clusters/evaluation_rules.h"

namespace clustergov::clusters {
namespace {

using common::v1::Tier;
using google::protobuf::util::TimeUtil;
using State = v1::Evaluation::State;

constexpr size_t kMaxReason = 2000;
constexpr int kMinYear = 2000;
constexpr int kMaxYear = 2100;
constexpr int kMaxPerYear = 10000;

struct ClusterYear {
  std::string cluster_id;
  int year = 0;
};

// "clusters/{id}/{collection}/{year}" → (id, year); INVALID_ARGUMENT on `field` otherwise.
absl::StatusOr<ClusterYear> ParseClusterYear(absl::string_view field, absl::string_view name,
                                             absl::string_view collection) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  ClusterYear out;
  if (parts.size() != 4 || parts[0] != "clusters" || !IsResourceId(parts[1]) || parts[2] != collection ||
      !absl::SimpleAtoi(parts[3], &out.year) || out.year < kMinYear || out.year > kMaxYear ||
      absl::StrCat(out.year) != parts[3]) {
    return InvalidField(field, absl::StrCat("must be clusters/{cluster_id}/", collection, "/{year 2000..2100}"));
  }
  out.cluster_id = std::string(parts[1]);
  return out;
}

bool ActsForLeadDepartment(const Principal& p, const v1::Cluster& cluster) {
  for (const auto& d : cluster.lead_departments()) {
    if (p.ActsForDepartment(d)) return true;
  }
  return false;
}

bool ActsForCoreLeague(const Principal& p, const v1::Cluster& cluster) {
  for (const auto& r : cluster.core_regions()) {
    if (p.ActsForDepartment(absl::StrCat("league_", r))) return true;
  }
  return false;
}

const char* StateLabel(State s) {
  switch (s) {
    case v1::Evaluation::LEAGUE_REVIEW: return "league pre-review";
    case v1::Evaluation::DEPARTMENT_REVIEW: return "the lead department's review";
    case v1::Evaluation::EXPERT_REVIEW: return "the experts' review";
    case v1::Evaluation::DECISION: return "the decision";
    case v1::Evaluation::DECIDED: return "decided";
    default: return "unknown";
  }
}

// Who may act on an evaluation waiting at `state` (approve, submit, decide or return it).
absl::Status MayActAt(const Principal& p, const v1::Cluster& cluster, State state) {
  switch (state) {
    case v1::Evaluation::LEAGUE_REVIEW:
      if (ActsForCoreLeague(p, cluster)) return absl::OkStatus();
      return absl::PermissionDeniedError(absl::StrCat("league pre-review of ", cluster.name(),
                                                      " is for the government of one of its core regions (",
                                                      absl::StrJoin(cluster.core_regions(), ", "), ")"));
    case v1::Evaluation::DEPARTMENT_REVIEW:
    case v1::Evaluation::DECISION:
      if (ActsForLeadDepartment(p, cluster)) return absl::OkStatus();
      return absl::PermissionDeniedError(
          absl::StrCat(StateLabel(state), " of ", cluster.name(), " is for one of its lead departments (",
                       absl::StrJoin(cluster.lead_departments(), ", "), ")"));
    case v1::Evaluation::EXPERT_REVIEW:
      if (p.HasRole(roles::kExpert)) return absl::OkStatus();
      return absl::PermissionDeniedError("the experts' review needs the expert role");
    default:
      return absl::FailedPreconditionError("the evaluation is decided");
  }
}

absl::Status ExpectState(const v1::Evaluation& e, State expected) {
  if (e.state() == expected) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(e.name(), " is at ", StateLabel(e.state()), ", not at ",
                                                    StateLabel(expected)));
}

// The common checks of a workflow step's request: the evaluation's name, its etag (required),
// the reason (required where `reason_required`) and the request id. `errors` may already hold
// the step's own violations; all are reported at once.
absl::StatusOr<ClusterYear> CheckStepRequest(FieldErrors& errors, const std::string& name, const std::string& etag,
                                             const std::string& reason, bool reason_required,
                                             const std::string& request_id) {
  auto cy = ParseClusterYear("name", name, "evaluations");
  if (!cy.ok()) return cy.status();
  if (etag.empty()) errors.Add("etag", "required: the etag of the evaluation as last read");
  CheckText(errors, "reason", reason, kMaxReason, reason_required);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(request_id));
  return cy;
}

void AddStep(v1::Evaluation* e, absl::string_view action, State from, State to, const std::string& reason) {
  e->clear_stall();  // a stall belongs to one entry into a level
  auto* step = e->add_steps();
  step->set_action(std::string(action));
  step->set_from_state(from);
  step->set_to_state(to);
  step->set_reason(reason);
}

const v1::TierRule* FindTierRule(const v1::RuleSet& rs, Tier tier) {
  for (const auto& t : rs.tiers()) {
    if (t.tier() == tier) return &t;
  }
  return nullptr;
}

v1::Cluster::State ClusterState(const v1::Cluster& c) { return c.state(); }

}  // namespace

EvaluationDomain::EvaluationDomain(ClustersDomain* clusters, std::unique_ptr<EvaluationRepository> repository,
                                   std::vector<std::unique_ptr<IndicatorSource>> sources,
                                   const PageTokenCodec* page_tokens)
    : clusters_(clusters), repo_(std::move(repository)), sources_(std::move(sources)), page_tokens_(page_tokens) {}

absl::StatusOr<bool> EvaluationDomain::SeedRuleSet(const v1::RuleSet& default_rule_set) {
  v1::RuleSet rs = default_rule_set;
  rs.set_name("ruleSets/v1");
  CG_RETURN_IF_ERROR(ValidateRuleSet(rs, "rule_set."));
  Principal seeder{"system:seed", "system", {std::string(roles::kAdmin)}};
  return repo_->SeedRuleSet(seeder, "v1", rs);
}

// ----------------------------------------------------------------------------------- rule sets

absl::StatusOr<v1::RuleSet> EvaluationDomain::PublishRuleSet(const CallContext& call,
                                                             const v1::PublishRuleSetRequest& req) {
  FieldErrors errors;
  if (!IsResourceId(req.rule_set_id())) {
    errors.Add("rule_set_id", "required: 2-63 of [a-z0-9-], starting with a letter, e.g. v2");
  }
  if (!req.has_rule_set()) errors.Add("rule_set", "required");
  CheckText(errors, "reason", req.reason(), kMaxReason, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  v1::RuleSet rs = req.rule_set();
  rs.set_name(absl::StrCat("ruleSets/", req.rule_set_id()));
  CG_RETURN_IF_ERROR(ValidateRuleSet(rs, "rule_set."));
  if (!call.principal.HasRole(roles::kAdmin)) {
    return absl::PermissionDeniedError("publishing evaluation rules needs the admin role");
  }
  store::WriteContext w{&call.principal, "PublishRuleSet", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->PublishRuleSet(w, req.rule_set_id(), rs);
}

absl::StatusOr<v1::RuleSet> EvaluationDomain::LoadRuleSet(const std::string& name) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseResourceName("name", name, "ruleSets"));
  CG_ASSIGN_OR_RETURN(auto rs, repo_->GetRuleSet(id));
  if (!rs.has_value()) return absl::NotFoundError(absl::StrCat(name, " not found"));
  return *rs;
}

absl::StatusOr<v1::RuleSet> EvaluationDomain::GetRuleSet(const CallContext& call, const v1::GetRuleSetRequest& req) {
  return LoadRuleSet(req.name());
}

absl::StatusOr<v1::ListRuleSetsResponse> EvaluationDomain::ListRuleSets(const CallContext& call,
                                                                       const v1::ListRuleSetsRequest& req) {
  CG_ASSIGN_OR_RETURN(int page_size, NormalizePageSize(req.page_size()));
  const uint64_t query_hash = QueryHash({"ListRuleSets"});
  int64_t before = 0;
  if (!req.page_token().empty()) {
    CG_ASSIGN_OR_RETURN(auto payload, page_tokens_->Decode(req.page_token(), query_hash, call.principal));
    before = payload.offset();
  }
  std::vector<int64_t> seqs;
  CG_ASSIGN_OR_RETURN(auto rule_sets, repo_->ListRuleSets(before, page_size + 1, &seqs));
  v1::ListRuleSetsResponse resp;
  for (int i = 0; i < static_cast<int>(rule_sets.size()) && i < page_size; ++i) {
    *resp.add_rule_sets() = std::move(rule_sets[i]);
  }
  if (static_cast<int>(rule_sets.size()) > page_size) {
    common::v1::PageTokenPayload next;
    next.set_query_hash(query_hash);
    next.set_offset(seqs[page_size - 1]);
    resp.set_next_page_token(page_tokens_->Encode(next, call.principal));
  }
  return resp;
}

// ----------------------------------------------------------------------------------- snapshots

absl::StatusOr<v1::IndicatorSnapshot> EvaluationDomain::Gather(const CallContext& call, const std::string& cluster_id,
                                                              int year) {
  const std::string cluster = absl::StrCat("clusters/", cluster_id);
  v1::IndicatorSnapshot snapshot;
  std::set<std::string> keys;
  for (const auto& source : sources_) {
    // Any source failing fails the whole snapshot: nothing half-filled is ever stored.
    CG_ASSIGN_OR_RETURN(common::v1::ClusterIndicators got, source->GetClusterIndicators(call, cluster, year));
    snapshot.add_sources(source->name());
    for (auto& indicator : *got.mutable_indicators()) {
      if (indicator.source() != source->name() || !absl::StartsWith(indicator.key(), source->name() + ".") ||
          !keys.insert(indicator.key()).second) {
        return absl::UnavailableError(absl::StrCat("the ", source->name(), " service answered an indicator \"",
                                                   indicator.key(), "\" that is not its own or is repeated"));
      }
      *snapshot.add_indicators() = std::move(indicator);
    }
    for (auto& b : *got.mutable_basis()) snapshot.add_basis(std::move(b));
  }
  *snapshot.mutable_gather_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
  auto* by = snapshot.mutable_gathered_by();
  by->set_subject(call.principal.subject);
  by->set_organization(call.principal.organization);
  for (const auto& r : call.principal.roles) by->add_roles(r);
  return snapshot;
}

absl::StatusOr<v1::IndicatorSnapshot> EvaluationDomain::GatherSnapshot(const CallContext& call,
                                                                      const v1::GatherSnapshotRequest& req) {
  CG_ASSIGN_OR_RETURN(ClusterYear cy, ParseClusterYear("name", req.name(), "snapshots"));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kGovernment, roles::kAdmin})) {
    return absl::PermissionDeniedError("gathering a snapshot needs a lead department of the cluster or an admin");
  }
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cy.cluster_id));
  if (!p.HasRole(roles::kAdmin) && !ActsForLeadDepartment(p, cluster)) {
    return absl::PermissionDeniedError(
        absl::StrCat("only a lead department of ", cluster.name(), " (or an admin) may gather its snapshot"));
  }
  CG_ASSIGN_OR_RETURN(auto stored, repo_->GetSnapshot(cy.cluster_id, cy.year));
  if (stored.has_value() && stored->locked()) {
    return absl::FailedPreconditionError(absl::StrCat(stored->name(), " is used by an evaluation and never changes"));
  }
  CG_ASSIGN_OR_RETURN(v1::IndicatorSnapshot snapshot, Gather(call, cy.cluster_id, cy.year));
  store::WriteContext w{&p, "GatherSnapshot", req.request_id(), call.request_id, "", &req};
  return repo_->PutSnapshot(w, cy.cluster_id, cy.year, snapshot);
}

absl::StatusOr<v1::IndicatorSnapshot> EvaluationDomain::GetSnapshot(const CallContext& call,
                                                                   const v1::GetSnapshotRequest& req) {
  CG_ASSIGN_OR_RETURN(ClusterYear cy, ParseClusterYear("name", req.name(), "snapshots"));
  CG_ASSIGN_OR_RETURN(auto snapshot, repo_->GetSnapshot(cy.cluster_id, cy.year));
  if (!snapshot.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return *snapshot;
}

// --------------------------------------------------------------------------------- evaluations

absl::StatusOr<v1::Evaluation> EvaluationDomain::OpenEvaluation(const CallContext& call,
                                                                const v1::OpenEvaluationRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ParseResourceName("parent", req.parent(), "clusters"));
  FieldErrors errors;
  if (req.year() < kMinYear || req.year() > kMaxYear) errors.Add("year", "required: a year between 2000 and 2100");
  if (!req.rule_set().empty() && !ParseResourceName("rule_set", req.rule_set(), "ruleSets").ok()) {
    errors.Add("rule_set", "must be ruleSets/{id}, or empty for the latest");
  }
  CheckText(errors, "reason", req.reason(), kMaxReason, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) {
    return absl::PermissionDeniedError("opening an evaluation is for a lead department of the cluster");
  }
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cluster_id));
  if (!ActsForLeadDepartment(p, cluster)) {
    return absl::PermissionDeniedError(
        absl::StrCat("only a lead department of ", cluster.name(), " may open its evaluation"));
  }
  if (cluster.state() != v1::Cluster::ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(cluster.name(), " is deleted"));
  }
  v1::RuleSet rule_set;
  if (req.rule_set().empty()) {
    std::vector<int64_t> seqs;
    CG_ASSIGN_OR_RETURN(auto latest, repo_->ListRuleSets(0, 1, &seqs));
    if (latest.empty()) return absl::FailedPreconditionError("no evaluation rule set is published");
    rule_set = std::move(latest.front());
  } else {
    CG_ASSIGN_OR_RETURN(rule_set, LoadRuleSet(req.rule_set()));
  }
  CG_ASSIGN_OR_RETURN(auto existing, repo_->GetEvaluation(cluster_id, req.year()));
  if (existing.has_value()) return absl::AlreadyExistsError(absl::StrCat(existing->name(), " already exists"));

  // The snapshot: the stored one, or gathered now (which needs the accepted annual report).
  CG_ASSIGN_OR_RETURN(auto stored, repo_->GetSnapshot(cluster_id, req.year()));
  std::optional<v1::IndicatorSnapshot> gathered;
  if (!stored.has_value()) {
    CG_ASSIGN_OR_RETURN(gathered, Gather(call, cluster_id, req.year()));
  }

  // Consecutive WARN decisions of the earlier years, most recent first.
  CG_ASSIGN_OR_RETURN(auto history, repo_->ListEvaluations(cluster_id, 0, "", kMaxPerYear));
  std::sort(history.begin(), history.end(),
            [](const v1::Evaluation& a, const v1::Evaluation& b) { return a.year() > b.year(); });
  int warnings = 0;
  for (const auto& e : history) {
    if (e.year() >= req.year() || e.state() != v1::Evaluation::DECIDED) continue;
    if (e.decision() != v1::WARN) break;
    ++warnings;
  }

  store::WriteContext w{&p, "OpenEvaluation", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->OpenEvaluation(
      w, cluster_id, req.year(), gathered, [&](const v1::IndicatorSnapshot& snapshot) -> absl::StatusOr<v1::Evaluation> {
        // The promotion source refuses a cluster-year without an accepted annual report; the
        // snapshot must name the report it was taken from.
        if (std::none_of(snapshot.basis().begin(), snapshot.basis().end(),
                         [](const std::string& b) { return absl::StartsWith(b, "annualReports/"); })) {
          return absl::FailedPreconditionError(absl::StrCat(
              snapshot.name(), " names no accepted annual report: an evaluation needs the cluster-year's report"));
        }
        v1::Evaluation e;
        e.set_rule_set(rule_set.name());
        e.set_state(v1::Evaluation::LEAGUE_REVIEW);
        e.set_tier_at_open(cluster.tier());
        e.set_previous_warnings(warnings);
        ScoringInput input;
        input.rule_set = &rule_set;
        input.snapshot = &snapshot;
        input.current_tier = cluster.tier();
        input.previous_warnings = warnings;
        *e.mutable_result() = Score(input);
        AddStep(&e, "OPEN", v1::Evaluation::STATE_UNSPECIFIED, v1::Evaluation::LEAGUE_REVIEW, req.reason());
        return e;
      });
}

absl::Status EvaluationDomain::AddStanding(v1::Evaluation* evaluation) {
  CG_ASSIGN_OR_RETURN(auto year, repo_->ListEvaluations("", evaluation->year(), "", kMaxPerYear));
  std::vector<const v1::EvaluationResult*> results;
  for (const auto& e : year) {
    results.push_back(e.name() == evaluation->name() ? &evaluation->result() : &e.result());
  }
  ApplyStanding(results, evaluation->mutable_result());
  return absl::OkStatus();
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::GetEvaluation(const CallContext& call,
                                                               const v1::GetEvaluationRequest& req) {
  CG_ASSIGN_OR_RETURN(ClusterYear cy, ParseClusterYear("name", req.name(), "evaluations"));
  CG_ASSIGN_OR_RETURN(auto evaluation, repo_->GetEvaluation(cy.cluster_id, cy.year));
  if (!evaluation.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_RETURN_IF_ERROR(AddStanding(&*evaluation));
  return *evaluation;
}

absl::StatusOr<v1::ListEvaluationsResponse> EvaluationDomain::ListEvaluations(const CallContext& call,
                                                                             const v1::ListEvaluationsRequest& req) {
  std::string cluster_id;
  if (req.parent() != "clusters/-") {
    CG_ASSIGN_OR_RETURN(cluster_id, ParseResourceName("parent", req.parent(), "clusters"));
  }
  if (req.year() != 0 && (req.year() < kMinYear || req.year() > kMaxYear)) {
    return InvalidField("year", "a year between 2000 and 2100, or 0 for every year");
  }
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(), "", {},
                                              {"ListEvaluations", req.parent(), absl::StrCat(req.year())}));
  CG_ASSIGN_OR_RETURN(auto evaluations,
                      repo_->ListEvaluations(cluster_id, req.year(), plan.after_key, plan.page_size + 1));
  v1::ListEvaluationsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, evaluations, resp.mutable_evaluations(),
                                    [](const v1::Evaluation& e) {
                                      return absl::StrCat(e.cluster().substr(9), " ", e.year());
                                    }));
  for (auto& e : *resp.mutable_evaluations()) CG_RETURN_IF_ERROR(AddStanding(&e));
  return resp;
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::Approve(const CallContext& call, const v1::EvaluationStepRequest& req,
                                                         State at, const char* method) {
  FieldErrors errors;
  CG_ASSIGN_OR_RETURN(ClusterYear cy,
                      CheckStepRequest(errors, req.name(), req.etag(), req.reason(), false, req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return absl::PermissionDeniedError("reviews are for government callers");
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cy.cluster_id));
  const State next = static_cast<State>(at + 1);
  store::WriteContext w{&p, method, req.request_id(), call.request_id, req.reason(), &req};
  return repo_->MutateEvaluation(w, cy.cluster_id, cy.year,
                                 [&](const v1::Evaluation& current) -> absl::StatusOr<EvaluationChange> {
                                   CG_RETURN_IF_ERROR(ExpectState(current, at));
                                   CG_RETURN_IF_ERROR(MayActAt(p, cluster, at));
                                   CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current.etag()));
                                   EvaluationChange change;
                                   change.evaluation = current;
                                   change.evaluation.set_state(next);
                                   AddStep(&change.evaluation, method, at, next, req.reason());
                                   return change;
                                 });
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::ApproveLeagueReview(const CallContext& call,
                                                                     const v1::EvaluationStepRequest& req) {
  return Approve(call, req, v1::Evaluation::LEAGUE_REVIEW, "ApproveLeagueReview");
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::ApproveDepartmentReview(const CallContext& call,
                                                                         const v1::EvaluationStepRequest& req) {
  return Approve(call, req, v1::Evaluation::DEPARTMENT_REVIEW, "ApproveDepartmentReview");
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::SubmitExpertReview(const CallContext& call,
                                                                    const v1::SubmitExpertReviewRequest& req) {
  FieldErrors errors;
  CG_ASSIGN_OR_RETURN(ClusterYear cy,
                      CheckStepRequest(errors, req.name(), req.etag(), req.reason(), true, req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kExpert)) return absl::PermissionDeniedError("the experts' review needs the expert role");
  CG_ASSIGN_OR_RETURN(auto stored, repo_->GetEvaluation(cy.cluster_id, cy.year));
  if (!stored.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_ASSIGN_OR_RETURN(v1::RuleSet rule_set, LoadRuleSet(stored->rule_set()));
  CG_RETURN_IF_ERROR(ValidateAdjustments(rule_set, req.adjustments(), "adjustments"));
  CG_ASSIGN_OR_RETURN(auto snapshot, repo_->GetSnapshot(cy.cluster_id, cy.year));
  if (!snapshot.has_value()) return absl::InternalError("the evaluation's snapshot is missing");
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cy.cluster_id));
  store::WriteContext w{&p, "SubmitExpertReview", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->MutateEvaluation(
      w, cy.cluster_id, cy.year, [&](const v1::Evaluation& current) -> absl::StatusOr<EvaluationChange> {
        CG_RETURN_IF_ERROR(ExpectState(current, v1::Evaluation::EXPERT_REVIEW));
        CG_RETURN_IF_ERROR(MayActAt(p, cluster, v1::Evaluation::EXPERT_REVIEW));
        CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current.etag()));
        EvaluationChange change;
        change.evaluation = current;
        *change.evaluation.mutable_expert_adjustments() = req.adjustments();
        ScoringInput input;
        input.rule_set = &rule_set;
        input.snapshot = &*snapshot;
        input.current_tier = current.tier_at_open();
        input.previous_warnings = current.previous_warnings();
        input.adjustments.assign(req.adjustments().begin(), req.adjustments().end());
        *change.evaluation.mutable_result() = Score(input);
        change.evaluation.set_state(v1::Evaluation::DECISION);
        AddStep(&change.evaluation, "SubmitExpertReview", v1::Evaluation::EXPERT_REVIEW, v1::Evaluation::DECISION,
                req.reason());
        return change;
      });
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::DecideEvaluation(const CallContext& call,
                                                                  const v1::DecideEvaluationRequest& req) {
  FieldErrors errors;
  const bool changes_tier = req.decision() == v1::PROMOTE || req.decision() == v1::DEMOTE;
  if (req.decision() == v1::RECOMMENDATION_UNSPECIFIED || !v1::Recommendation_IsValid(req.decision())) {
    errors.Add("decision", "required: KEEP, PROMOTE, WARN or DEMOTE");
  }
  if (changes_tier && (req.tier() == Tier::TIER_UNSPECIFIED || !common::v1::Tier_IsValid(req.tier()))) {
    errors.Add("tier", "required for PROMOTE and DEMOTE: the new tier");
  }
  CG_ASSIGN_OR_RETURN(ClusterYear cy,
                      CheckStepRequest(errors, req.name(), req.etag(), req.reason(), true, req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return absl::PermissionDeniedError("the decision is for a lead department");
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cy.cluster_id));
  CG_ASSIGN_OR_RETURN(auto stored, repo_->GetEvaluation(cy.cluster_id, cy.year));
  if (!stored.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_ASSIGN_OR_RETURN(v1::RuleSet rule_set, LoadRuleSet(stored->rule_set()));

  store::WriteContext w{&p, "DecideEvaluation", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = clusters_->ClusterWrite(cy.cluster_id);
  auto decided = repo_->MutateEvaluation(
      w, cy.cluster_id, cy.year, [&](const v1::Evaluation& current) -> absl::StatusOr<EvaluationChange> {
        CG_RETURN_IF_ERROR(ExpectState(current, v1::Evaluation::DECISION));
        CG_RETURN_IF_ERROR(MayActAt(p, cluster, v1::Evaluation::DECISION));
        CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current.etag()));
        EvaluationChange change;
        change.evaluation = current;
        change.evaluation.set_state(v1::Evaluation::DECIDED);
        change.evaluation.set_decision(req.decision());
        change.evaluation.set_decided_tier(changes_tier ? req.tier() : cluster.tier());
        AddStep(&change.evaluation, "DecideEvaluation", v1::Evaluation::DECISION, v1::Evaluation::DECIDED,
                req.reason());
        if (!changes_tier) return change;
        const std::string reason = absl::StrCat("evaluation ", current.name(), ": ", v1::Recommendation_Name(req.decision()),
                                                "; ", req.reason());
        const Tier qualified = current.result().qualified_tier();
        change.cluster_write = store::WriteContext{&p, "DesignateTier", "", call.request_id, reason, nullptr};
        change.cluster_mutation = [&p, &req, &rule_set, qualified, reason, name = current.name(),
                                   id = cy.cluster_id](const std::optional<v1::Cluster>& now)
            -> absl::StatusOr<ClusterChange> {
          if (now.has_value() && req.decision() == v1::PROMOTE && req.tier() <= now->tier()) {
            return InvalidField("tier", "PROMOTE needs a tier above the current one");
          }
          if (now.has_value() && req.decision() == v1::DEMOTE && req.tier() >= now->tier()) {
            return InvalidField("tier", "DEMOTE needs a tier below the current one");
          }
          if (req.decision() == v1::PROMOTE && req.tier() > qualified) {
            return absl::FailedPreconditionError(absl::StrCat("the evaluation qualifies the cluster for ",
                                                              common::v1::Tier_Name(qualified), " at most"));
          }
          CG_ASSIGN_OR_RETURN(ClusterChange change, DesignationChange(p, now, id, req.tier(), reason, ""));
          change.evaluation = name;
          const v1::TierRule* rule = FindTierRule(rule_set, req.tier());
          if (rule != nullptr && rule->reward_cny_10k() > 0) {
            auto* reward = change.cluster.mutable_reward_eligibility();
            reward->Clear();
            reward->set_tier(req.tier());
            reward->set_evaluation(name);
            reward->set_rule_set(rule_set.name());
            reward->set_amount_cny_10k(rule->reward_cny_10k());
            reward->set_description(rule->reward_description());
            *reward->mutable_grant_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
          } else {
            change.cluster.clear_reward_eligibility();
          }
          return change;
        };
        return change;
      });
  return decided;
}

absl::StatusOr<v1::Evaluation> EvaluationDomain::ReturnEvaluation(const CallContext& call,
                                                                  const v1::EvaluationStepRequest& req) {
  FieldErrors errors;
  CG_ASSIGN_OR_RETURN(ClusterYear cy,
                      CheckStepRequest(errors, req.name(), req.etag(), req.reason(), true, req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kGovernment, roles::kExpert})) {
    return absl::PermissionDeniedError("returning an evaluation is for whoever acts at its current step");
  }
  CG_ASSIGN_OR_RETURN(v1::Cluster cluster, clusters_->LoadCached(cy.cluster_id));
  store::WriteContext w{&p, "ReturnEvaluation", req.request_id(), call.request_id, req.reason(), &req};
  return repo_->MutateEvaluation(
      w, cy.cluster_id, cy.year, [&](const v1::Evaluation& current) -> absl::StatusOr<EvaluationChange> {
        const State at = current.state();
        if (at != v1::Evaluation::DEPARTMENT_REVIEW && at != v1::Evaluation::EXPERT_REVIEW &&
            at != v1::Evaluation::DECISION) {
          return absl::FailedPreconditionError(absl::StrCat(current.name(), " is at ", StateLabel(at),
                                                            ": there is no earlier step to return it to"));
        }
        CG_RETURN_IF_ERROR(MayActAt(p, cluster, at));
        CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current.etag()));
        const State back = static_cast<State>(at - 1);
        EvaluationChange change;
        change.evaluation = current;
        change.evaluation.set_state(back);
        AddStep(&change.evaluation, "ReturnEvaluation", at, back, req.reason());
        return change;
      });
}

namespace {

// When the evaluation entered the level it waits at: its last step.
absl::Time EnteredLevel(const v1::Evaluation& e) {
  const auto& time = e.steps_size() > 0 && e.steps(e.steps_size() - 1).has_time()
                         ? e.steps(e.steps_size() - 1).time()
                         : e.create_time();
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(time));
}

// Who may act at `state` (MayActAt), as names.
std::vector<std::string> WaitingFor(const v1::Cluster& cluster, State state) {
  std::vector<std::string> out;
  if (state == v1::Evaluation::LEAGUE_REVIEW) {
    for (const auto& r : cluster.core_regions()) out.push_back(absl::StrCat("departments/league_", r));
  } else if (state == v1::Evaluation::EXPERT_REVIEW) {
    out.push_back(absl::StrCat("roles/", roles::kExpert));
  } else {
    for (const auto& d : cluster.lead_departments()) out.push_back(absl::StrCat("departments/", d));
  }
  return out;
}

}  // namespace

absl::StatusOr<int> EvaluationDomain::FlagStalledEvaluations(const store::LeaseFence& fence, absl::Time now,
                                                             absl::Duration stall_limit) {
  constexpr size_t kBatch = 100;
  auto stalled = [&](const v1::Evaluation& e) {
    return e.state() >= v1::Evaluation::LEAGUE_REVIEW && e.state() <= v1::Evaluation::DECISION && !e.has_stall() &&
           now - EnteredLevel(e) > stall_limit;
  };
  CG_ASSIGN_OR_RETURN(auto waiting, repo_->ListWaitingEvaluations());
  std::vector<std::pair<std::string, int>> due;
  std::map<std::string, v1::Cluster> clusters;
  for (const auto& e : waiting) {
    if (!stalled(e)) continue;
    const std::string id = e.cluster().substr(9);
    if (clusters.count(id) == 0) {
      CG_ASSIGN_OR_RETURN(clusters[id], clusters_->LoadCached(id));
    }
    due.emplace_back(id, e.year());
  }
  const Principal self = ServicePrincipal("clusters");
  store::WriteContext w{&self, "Job:FlagStalledEvaluations", "", "", "waiting longer than the stall limit", nullptr};
  w.fence = &fence;
  auto mark = [&](v1::Evaluation& e, store::Transaction& tx) -> absl::StatusOr<bool> {
    if (!stalled(e)) return false;  // moved on meanwhile
    auto* stall = e.mutable_stall();
    stall->set_level(e.state());
    *stall->mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(EnteredLevel(e)));
    for (auto& who : WaitingFor(clusters[e.cluster().substr(9)], e.state())) stall->add_waiting_for(who);
    *stall->mutable_flag_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
    events::v1::EvaluationStalled event;
    event.set_evaluation(e.name());
    event.set_cluster(e.cluster());
    event.set_year(e.year());
    event.set_level(v1::Evaluation::State_Name(e.state()));
    *event.mutable_since() = stall->since();
    *event.mutable_waiting_for() = stall->waiting_for();
    CG_RETURN_IF_ERROR(tx.Publish(e.name(), event, store::RevisionOf(e.etag())));
    return true;
  };
  int flagged = 0;
  for (size_t first = 0; first < due.size(); first += kBatch) {
    std::vector<std::pair<std::string, int>> batch(due.begin() + first,
                                                   due.begin() + std::min(due.size(), first + kBatch));
    CG_ASSIGN_OR_RETURN(int n, repo_->MarkEvaluations(w, batch, mark));
    flagged += n;
  }
  return flagged;
}

absl::StatusOr<v1::TargetProgress> EvaluationDomain::GetTargetProgress(const CallContext& call,
                                                                       const v1::GetTargetProgressRequest& req) {
  CG_ASSIGN_OR_RETURN(v1::TargetProgress progress, clusters_->GetTargetProgress(call, req));
  CG_ASSIGN_OR_RETURN(auto clusters, clusters_->AllClusters());
  CG_ASSIGN_OR_RETURN(auto evaluations, repo_->ListEvaluations("", 0, "", kMaxPerYear));
  // The latest decided evaluation of each cluster.
  std::map<std::string, const v1::Evaluation*> latest;
  for (const auto& e : evaluations) {
    if (e.state() != v1::Evaluation::DECIDED) continue;
    auto& slot = latest[e.cluster()];
    if (slot == nullptr || slot->year() < e.year()) slot = &e;
  }
  for (auto& tier : *progress.mutable_tiers()) {
    for (const auto& c : clusters) {
      if (ClusterState(c) != v1::Cluster::ACTIVE || c.target_tier() != tier.tier() ||
          c.target_year() > req.target_year()) {
        continue;
      }
      auto* gap = tier.add_gaps();
      gap->set_cluster(c.name());
      auto it = latest.find(c.name());
      if (it == latest.end()) continue;
      const v1::Evaluation& e = *it->second;
      gap->set_evaluation(e.name());
      gap->set_year(e.year());
      gap->set_total_score_bp(e.result().total_score_bp());
      for (const auto& g : e.result().tier_gaps()) {
        if (g.tier() != tier.tier()) continue;
        gap->set_score_gap_bp(g.score_gap_bp());
        gap->set_qualifies(g.qualifies());
      }
    }
  }
  return progress;
}

}  // namespace clustergov::clusters

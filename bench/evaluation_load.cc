// The yearly evaluation over every cluster: snapshots gathered from the four source services and
// evaluations opened (scored against the default rule set), for all the clusters the clusters
// service holds (the plan's 13), with the enterprises service holding what bench/run.sh filled.
//
//   clustergov-bench-evaluation --clusters_target=127.0.0.1:50051 --promotion_target=127.0.0.1:50054
//       --year=2026 --rounds=5
//
// Setup, per cluster (the clusters service must be wired to every source, the promotion service to
// that clusters service): a promotion organization registers and applies, the cluster's lead
// department approves it, the organization files the year's annual report and the lead department
// accepts it — the evaluation needs one.
// Measured: --rounds passes of GatherSnapshot over every cluster, one after another (a snapshot is
// gathered again until an evaluation uses it), then one pass of OpenEvaluation over every cluster
// (scores the stored snapshot and locks it). Any failed call fails the run.
// Verified: every evaluation carries a score for every indicator of the rule set, and the member
// count the enterprises service reported for each cluster is the one ListClusterMembers counts.
//
// Tokens are minted with --secret or $CLUSTERGOV_AUTH_HS256_SECRET. The last line is
// machine-readable for bench/run.sh:
//   evaluation: result clusters=13 rounds=R gather_p50_ms=A gather_max_ms=B open_ms=C total_ms=A+C ...

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/promotion/v1/promotion.grpc.pb.h"
#include "common/refdata/uscc.h"

ABSL_FLAG(std::string, clusters_target, "127.0.0.1:50051", "clusters service (wired to every indicator source)");
ABSL_FLAG(std::string, promotion_target, "127.0.0.1:50054", "promotion service (wired to that clusters service)");
ABSL_FLAG(std::string, enterprises_target, "127.0.0.1:50052", "enterprises service (to verify member counts)");
ABSL_FLAG(std::string, secret, "", "HS256 secret of the services; default $CLUSTERGOV_AUTH_HS256_SECRET");
ABSL_FLAG(int, year, 2026, "the evaluated year (annual reports, snapshots, evaluations)");
ABSL_FLAG(int, rounds, 5, "GatherSnapshot passes over every cluster");

namespace cv1 = clustergov::clusters::v1;
namespace ev1 = clustergov::enterprises::v1;
namespace pv1 = clustergov::promotion::v1;
using clustergov::bench::Clock;
using clustergov::bench::Ms;
using clustergov::bench::Percentile;

namespace {

constexpr char kTool[] = "evaluation_load";

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "%s: %s: %s (code %d)\n", kTool, what.c_str(), s.error_message().c_str(),
               static_cast<int>(s.error_code()));
  std::exit(1);
}

// One unary call with `auth`, a 60 s deadline; dies on failure.
template <typename Stub, typename Req, typename Resp>
Resp Must(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& auth,
          const Req& req, const std::string& what) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", auth);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  Resp resp;
  grpc::Status s = (stub->*method)(&ctx, req, &resp);
  if (!s.ok()) Die(what, s);
  return resp;
}

pv1::PromotionOrg EligibleOrg(int i) {
  pv1::PromotionOrg o;
  o.set_display_name_zh(absl::StrCat("基准测试集群促进会", i));
  o.set_display_name_en(absl::StrCat("Benchmark Cluster Promotion Association ", i));
  o.set_legal_form(pv1::ASSOCIATION);
  std::string first17 = absl::StrFormat("51150100MJ%07d", 9000000 + i);
  o.set_uscc(first17 + clustergov::refdata::UsccCheckCharacter(first17));
  o.set_independent_legal_person(true);
  auto* f = o.add_founders();
  f->set_kind(pv1::UNIVERSITY);
  f->set_name("内蒙古大学");
  auto* g = o.mutable_governance();
  g->set_legal_representative("张伟");
  auto* b = g->add_board_members();
  b->set_name("李强");
  b->set_organization("内蒙古大学");
  b->set_position("理事长");
  g->mutable_bylaws_adopted()->set_year(2024);
  g->mutable_bylaws_adopted()->set_month(3);
  g->mutable_bylaws_adopted()->set_day(15);
  o.set_full_time_staff(5);
  o.add_income_sources(pv1::MEMBERSHIP_FEES);
  o.add_services(pv1::SUPPLY_DEMAND_MATCHING);
  o.mutable_contact()->set_person("王芳");
  o.mutable_contact()->set_phone("0471-1234567");
  o.mutable_contact()->set_email("office@example.org");
  o.mutable_contact()->set_address("呼和浩特市");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string secret = clustergov::bench::SecretOr(absl::GetFlag(FLAGS_secret));
  if (secret.size() < 32) {
    std::fprintf(stderr, "%s: --secret or $CLUSTERGOV_AUTH_HS256_SECRET (at least 32 bytes) is required\n", kTool);
    return 2;
  }
  const int year = absl::GetFlag(FLAGS_year);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (rounds < 1) {
    std::fprintf(stderr, "%s: --rounds must be positive\n", kTool);
    return 2;
  }
  auto cstub = cv1::ClustersService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_clusters_target), grpc::InsecureChannelCredentials()));
  auto pstub = pv1::PromotionService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_promotion_target), grpc::InsecureChannelCredentials()));
  auto estub = ev1::EnterprisesService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_enterprises_target), grpc::InsecureChannelCredentials()));
  const std::string reader = clustergov::bench::MintBearer(kTool, secret, "bench-evaluation", "departments/audit",
                                                           "auditor");

  // --- every cluster, with a lead department to act for it --------------------------------------
  cv1::ListClustersRequest list;
  list.set_page_size(500);
  auto clusters = Must(cstub.get(), &cv1::ClustersService::Stub::ListClusters, reader, list, "ListClusters");
  std::vector<std::pair<std::string, std::string>> targets;  // cluster, lead department's bearer
  for (const auto& c : clusters.clusters()) {
    if (c.lead_departments().empty()) continue;
    targets.emplace_back(c.name(), clustergov::bench::MintBearer(kTool, secret, "bench-evaluation",
                                                                 "departments/" + c.lead_departments(0), "government"));
  }
  if (targets.empty()) {
    std::fprintf(stderr, "%s: no cluster with a lead department\n", kTool);
    return 1;
  }

  // --- setup: a promotion organization and an accepted annual report per cluster ---------------
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& [cluster, lead] = targets[i];
    const std::string org_id = absl::StrCat("bench-eval-", i);
    const std::string org_auth = clustergov::bench::MintBearer(kTool, secret, "bench-evaluation",
                                                               "promotionOrgs/" + org_id, "promotion_org");
    pv1::RegisterPromotionOrgRequest reg;
    *reg.mutable_promotion_org() = EligibleOrg(static_cast<int>(i));
    reg.set_promotion_org_id(org_id);
    Must(pstub.get(), &pv1::PromotionService::Stub::RegisterPromotionOrg, org_auth, reg, "RegisterPromotionOrg");
    pv1::ApplyForDesignationRequest apply;
    apply.mutable_designation()->set_promotion_org("promotionOrgs/" + org_id);
    apply.mutable_designation()->set_cluster(cluster);
    apply.mutable_designation()->set_application_reason("benchmark");
    auto designation =
        Must(pstub.get(), &pv1::PromotionService::Stub::ApplyForDesignation, org_auth, apply, "ApplyForDesignation");
    pv1::DesignationDecisionRequest approve;
    approve.set_name(designation.name());
    approve.set_reason("benchmark");
    Must(pstub.get(), &pv1::PromotionService::Stub::ApproveDesignation, lead, approve, "ApproveDesignation " + cluster);
    pv1::SubmitAnnualReportRequest report;
    auto* r = report.mutable_annual_report();
    r->set_cluster(cluster);
    r->set_year(year);
    r->set_work_report("benchmark");
    r->mutable_monitoring()->set_output_value_fen(int64_t{5000000} * 1000000 + static_cast<int64_t>(i) * 1000000);
    r->mutable_monitoring()->set_rd_spend_fen(int64_t{90000} * 1000000);
    r->mutable_monitoring()->set_patents(150 + static_cast<int>(i) * 10);
    auto filed = Must(pstub.get(), &pv1::PromotionService::Stub::SubmitAnnualReport, org_auth, report,
                      "SubmitAnnualReport " + cluster);
    pv1::AnnualReportDecisionRequest accept;
    accept.set_name(filed.name());
    accept.set_reason("benchmark");
    Must(pstub.get(), &pv1::PromotionService::Stub::AcceptAnnualReport, lead, accept, "AcceptAnnualReport " + cluster);
  }

  // --- measured: snapshots, then evaluations ----------------------------------------------------
  std::vector<double> round_ms, call_ms;
  std::map<std::string, cv1::IndicatorSnapshot> last;
  for (int round = 0; round < rounds; ++round) {
    const auto start = Clock::now();
    for (const auto& [cluster, lead] : targets) {
      cv1::GatherSnapshotRequest gather;
      gather.set_name(absl::StrCat(cluster, "/snapshots/", year));
      const auto t0 = Clock::now();
      last[cluster] = Must(cstub.get(), &cv1::ClustersService::Stub::GatherSnapshot, lead, gather,
                           "GatherSnapshot " + cluster);
      call_ms.push_back(Ms(Clock::now() - t0));
    }
    round_ms.push_back(Ms(Clock::now() - start));
  }
  std::vector<cv1::Evaluation> evaluations;
  const auto open_start = Clock::now();
  for (const auto& [cluster, lead] : targets) {
    cv1::OpenEvaluationRequest open;
    open.set_parent(cluster);
    open.set_year(year);
    open.set_reason("benchmark");
    evaluations.push_back(
        Must(cstub.get(), &cv1::ClustersService::Stub::OpenEvaluation, lead, open, "OpenEvaluation " + cluster));
  }
  const double open_ms = Ms(Clock::now() - open_start);

  // --- verified ---------------------------------------------------------------------------------
  int64_t members = 0;
  for (const auto& e : evaluations) {
    cv1::GetRuleSetRequest get;
    get.set_name(e.rule_set());
    auto rules = Must(cstub.get(), &cv1::ClustersService::Stub::GetRuleSet, reader, get, "GetRuleSet");
    if (e.result().indicators_size() != rules.indicators_size() || e.result().dimensions_size() != 4) {
      std::fprintf(stderr, "%s: %s scored %d of %d indicators, %d dimensions\n", kTool, e.name().c_str(),
                   e.result().indicators_size(), rules.indicators_size(), e.result().dimensions_size());
      return 1;
    }
    int64_t reported = -1;
    for (const auto& i : last[e.cluster()].indicators()) {
      if (i.key() == "enterprises.members.total") reported = i.value();
    }
    ev1::ListClusterMembersRequest lm;
    lm.set_cluster(e.cluster());
    lm.set_page_size(500);
    int64_t counted = 0;
    for (int guard = 0; guard < 1000; ++guard) {
      auto page = Must(estub.get(), &ev1::EnterprisesService::Stub::ListClusterMembers, reader, lm, "ListClusterMembers");
      counted += page.memberships_size();
      if (page.next_page_token().empty()) break;
      lm.set_page_token(page.next_page_token());
    }
    if (reported != counted) {
      std::fprintf(stderr, "%s: %s: the snapshot says %lld members, ListClusterMembers counts %lld\n", kTool,
                   e.cluster().c_str(), static_cast<long long>(reported), static_cast<long long>(counted));
      return 1;
    }
    members += counted;
  }

  const double gather_p50 = Percentile(round_ms, 0.5);
  std::printf("%s: %zu clusters, %lld members in all; GatherSnapshot per call p50 %.1f ms, max %.1f ms\n", kTool,
              targets.size(), static_cast<long long>(members), Percentile(call_ms, 0.5), Percentile(call_ms, 1.0));
  std::printf("%s: result clusters=%zu rounds=%d gather_p50_ms=%.1f gather_max_ms=%.1f open_ms=%.1f total_ms=%.1f\n",
              kTool, targets.size(), rounds, gather_p50, Percentile(round_ms, 1.0), open_ms, gather_p50 + open_ms);
  return 0;
}

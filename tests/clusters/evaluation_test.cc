// The evaluation cycle through the clusters service's gRPC API: rule sets, snapshots gathered
// from indicator sources, and the review workflow down to the tier designation. A real gRPC server
// on a loopback port, a real SQLite file and a real redis-server.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/indicators/indicator_source.h"
#include "common/server/client.h"
#include "services/clusters/seed.h"
#include "services/enterprises/client/indicator_source.h"
#include "services/promotion/client/indicator_source.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::clusters {
namespace {

using common::v1::Tier;
using indicators::IndicatorSource;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Stub = v1::ClustersService::Stub;
using testing::FieldsOf;
using testing::Invoke;

// The figures a source service reports per cluster-year, kept in the test's process. The
// promotion source answers FAILED_PRECONDITION for a cluster-year without an accepted annual
// report, as the promotion service does; `down` makes the source answer as an unreachable one.
class RecordedSource : public IndicatorSource {
 public:
  explicit RecordedSource(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }

  void Set(const std::string& cluster, int year, const std::map<std::string, int64_t>& values,
           const std::string& basis = "") {
    std::lock_guard<std::mutex> lock(mu_);
    common::v1::ClusterIndicators& out = data_[{cluster, year}];
    out.set_cluster(cluster);
    out.set_year(year);
    out.clear_indicators();
    for (const auto& [key, value] : values) {
      auto* i = out.add_indicators();
      i->set_key(absl::StrCat(name_, ".", key));
      i->set_value(value);
      i->set_unit("count");
      i->set_source(name_);
    }
    if (!basis.empty()) out.add_basis(basis);
  }
  void SetDown(bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = down;
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(const server::CallContext& call,
                                                                     absl::string_view cluster, int year) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (down_) return absl::UnavailableError(absl::StrCat("the ", name_, " service is unavailable; retry later"));
    auto it = data_.find({std::string(cluster), year});
    if (it == data_.end()) {
      if (name_ == "promotion") {
        return absl::FailedPreconditionError(
            absl::StrCat("promotion: no accepted annual report for ", cluster, " in ", year));
      }
      common::v1::ClusterIndicators empty;
      empty.set_cluster(std::string(cluster));
      empty.set_year(year);
      return empty;
    }
    return it->second;
  }

 private:
  std::string name_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, common::v1::ClusterIndicators> data_;
  bool down_ = false;
  int calls_ = 0;
};

class EvaluationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    auto enterprises = std::make_unique<RecordedSource>("enterprises");
    auto promotion = std::make_unique<RecordedSource>("promotion");
    auto talent = std::make_unique<RecordedSource>("talent");
    enterprises_ = enterprises.get();
    promotion_ = promotion.get();
    talent_ = talent.get();
    std::vector<std::unique_ptr<IndicatorSource>> sources;
    sources.push_back(std::move(enterprises));
    sources.push_back(std::move(promotion));
    sources.push_back(std::move(talent));
    auto started = server_.Start(testing::ServiceConfig("clusters", dir_->File("clusters.db"), redis_->port()), *seed,
                                 true, std::move(sources));
    ASSERT_TRUE(started.ok()) << started;
    stub_ = v1::ClustersService::NewStub(
        grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    stub_.reset();
    server_.Stop();
  }

  // The dairy cluster's 2026 figures of the worked example in docs/evaluation.md.
  void RecordDairy2026() {
    enterprises_->Set("clusters/hohhot-dairy", 2026,
                      {{"annual_output", 12000000},
                       {"members.total", 120},
                       {"strength.max_location_quotient", 25000},
                       {"certifications.little_giant", 6},
                       {"certifications.smart_factory", 10},
                       {"certifications.single_champion", 4},
                       {"certifications.green_factory", 12},
                       {"supply_links.large_sme", 60}});
    promotion_->Set("clusters/hohhot-dairy", 2026, {{"rd_intensity", 200}, {"patents", 650}},
                    "annualReports/hohhot-dairy-2026");
    talent_->Set("clusters/hohhot-dairy", 2026, {{"placements.total", 45}, {"placements.dual_appointment", 8}});
  }

  v1::Evaluation Open(const std::string& cluster, int year, grpc::Status* status, const std::string& token = "") {
    v1::OpenEvaluationRequest req;
    req.set_parent("clusters/" + cluster);
    req.set_year(year);
    req.set_reason("年度评价");
    v1::Evaluation out;
    *status = Invoke(stub_.get(), &Stub::OpenEvaluation, token.empty() ? lead_ : token, req, &out);
    return out;
  }

  v1::Evaluation GetEval(const std::string& name) {
    v1::GetEvaluationRequest req;
    req.set_name(name);
    v1::Evaluation out;
    grpc::Status s = Invoke(stub_.get(), &Stub::GetEvaluation, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << testing::Describe(s);
    return out;
  }

  grpc::Status Step(grpc::Status (Stub::*method)(grpc::ClientContext*, const v1::EvaluationStepRequest&,
                                                 v1::Evaluation*),
                    const std::string& token, const v1::Evaluation& e, const std::string& reason,
                    v1::Evaluation* out, const std::string& etag = "") {
    v1::EvaluationStepRequest req;
    req.set_name(e.name());
    req.set_etag(etag.empty() ? e.etag() : etag);
    req.set_reason(reason);
    return Invoke(stub_.get(), method, token, req, out);
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  testing::ClustersServer server_;
  std::unique_ptr<Stub> stub_;
  RecordedSource* enterprises_ = nullptr;
  RecordedSource* promotion_ = nullptr;
  RecordedSource* talent_ = nullptr;

  const std::string lead_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string hohhot_ = testing::MakeToken("han.bo", "departments/league_150100", {"government"});
  const std::string baotou_ = testing::MakeToken("li.na", "departments/league_150200", {"government"});
  const std::string expert_ = testing::MakeToken("prof.gao", "experts/dairy-panel", {"expert"});
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
  const std::string admin_ = testing::MakeToken("root", "departments/industry_it", {"admin"});
};

testing::RedisServer* EvaluationTest::redis_ = nullptr;

// ------------------------------------------------------------------------------- rule sets

TEST_F(EvaluationTest, RuleSetsAreVersionedAndNeverModified) {
  v1::RuleSet v1;
  v1::GetRuleSetRequest get;
  get.set_name("ruleSets/v1");
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GetRuleSet, auditor_, get, &v1).ok());
  EXPECT_EQ(v1.indicators_size(), 12);
  EXPECT_EQ(v1.gates_size(), 6);
  EXPECT_EQ(v1.published_by().subject(), "system:seed");

  v1::PublishRuleSetRequest pub;
  pub.set_rule_set_id("v2");
  *pub.mutable_rule_set() = v1;
  pub.mutable_rule_set()->set_title("2027 rules");
  pub.set_reason("2027 targets");
  v1::RuleSet out;
  // Only an admin publishes.
  grpc::Status s = Invoke(stub_.get(), &Stub::PublishRuleSet, lead_, pub, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << testing::Describe(s);
  // Weights not summing to 10,000; thresholds out of order; an unknown indicator.
  v1::PublishRuleSetRequest bad = pub;
  bad.mutable_rule_set()->mutable_indicators(0)->set_weight_bp(1400);
  bad.mutable_rule_set()->mutable_indicators(1)->set_ceiling(10);
  bad.mutable_rule_set()->mutable_indicators(2)->set_key("weather.rain");
  s = Invoke(stub_.get(), &Stub::PublishRuleSet, admin_, bad, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ::testing::UnorderedElementsAre("rule_set.indicators", "rule_set.indicators[1].ceiling",
                                                           "rule_set.indicators[2].key",
                                                           "rule_set.gates[0].criteria[0].indicator"));
  v1::ListRuleSetsResponse list;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListRuleSets, auditor_, v1::ListRuleSetsRequest(), &list).ok());
  EXPECT_EQ(list.rule_sets_size(), 1);

  ASSERT_TRUE(Invoke(stub_.get(), &Stub::PublishRuleSet, admin_, pub, &out).ok());
  EXPECT_EQ(out.name(), "ruleSets/v2");
  EXPECT_EQ(out.published_by().subject(), "root");
  // A published version is never replaced.
  pub.mutable_rule_set()->set_title("changed");
  s = Invoke(stub_.get(), &Stub::PublishRuleSet, admin_, pub, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  v1::ListRuleSetsRequest page;
  page.set_page_size(1);
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListRuleSets, auditor_, page, &list).ok());
  ASSERT_EQ(list.rule_sets_size(), 1);
  EXPECT_EQ(list.rule_sets(0).name(), "ruleSets/v2");  // newest first
  EXPECT_EQ(list.rule_sets(0).title(), "2027 rules");
  page.set_page_token(list.next_page_token());
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListRuleSets, auditor_, page, &list).ok());
  ASSERT_EQ(list.rule_sets_size(), 1);
  EXPECT_EQ(list.rule_sets(0).name(), "ruleSets/v1");
  EXPECT_TRUE(list.next_page_token().empty());
}

// ------------------------------------------------------------------------------- snapshots

TEST_F(EvaluationTest, OpeningNeedsAnAcceptedReportAndNothingIsStoredOnFailure) {
  RecordDairy2026();
  grpc::Status s;
  Open("hohhot-dairy", 2025, &s);  // no accepted annual report for 2025
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << testing::Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("annual report"));

  promotion_->SetDown(true);
  Open("hohhot-dairy", 2026, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << testing::Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("promotion"));
  v1::GatherSnapshotRequest gather;
  gather.set_name("clusters/hohhot-dairy/snapshots/2026");
  v1::IndicatorSnapshot snapshot;
  s = Invoke(stub_.get(), &Stub::GatherSnapshot, lead_, gather, &snapshot);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);

  // Nothing half-filled was kept.
  v1::GetSnapshotRequest get;
  get.set_name("clusters/hohhot-dairy/snapshots/2026");
  EXPECT_EQ(Invoke(stub_.get(), &Stub::GetSnapshot, auditor_, get, &snapshot).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetEvaluationRequest eval;
  eval.set_name("clusters/hohhot-dairy/evaluations/2026");
  v1::Evaluation e;
  EXPECT_EQ(Invoke(stub_.get(), &Stub::GetEvaluation, auditor_, eval, &e).error_code(), grpc::StatusCode::NOT_FOUND);

  // Once the service is back, the snapshot completes; only a lead department gathers it.
  promotion_->SetDown(false);
  EXPECT_EQ(Invoke(stub_.get(), &Stub::GatherSnapshot, energy_, gather, &snapshot).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GatherSnapshot, lead_, gather, &snapshot).ok());
  EXPECT_EQ(snapshot.indicators_size(), 12);
  EXPECT_THAT(snapshot.sources(), ElementsAre("enterprises", "promotion", "talent"));
  EXPECT_THAT(snapshot.basis(), ElementsAre("annualReports/hohhot-dairy-2026"));
  EXPECT_FALSE(snapshot.locked());
  EXPECT_EQ(snapshot.gathered_by().subject(), "wang.li");
}

// ------------------------------------------------------------------------------- the workflow

TEST_F(EvaluationTest, TheWholeReviewWorkflowDesignatesTheTier) {
  RecordDairy2026();
  grpc::Status s;
  Open("hohhot-dairy", 2026, &s, energy_);  // not a lead department of the dairy cluster
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::Evaluation e = Open("hohhot-dairy", 2026, &s);
  ASSERT_TRUE(s.ok()) << testing::Describe(s);
  EXPECT_EQ(e.name(), "clusters/hohhot-dairy/evaluations/2026");
  EXPECT_EQ(e.state(), v1::Evaluation::LEAGUE_REVIEW);
  EXPECT_EQ(e.rule_set(), "ruleSets/v1");
  EXPECT_EQ(e.result().total_score_bp(), 8014);
  EXPECT_EQ(e.result().qualified_tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(e.result().recommendation(), v1::PROMOTE);
  ASSERT_EQ(e.steps_size(), 1);
  EXPECT_EQ(e.steps(0).actor().subject(), "wang.li");
  Open("hohhot-dairy", 2026, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // The snapshot is locked: it never changes again.
  v1::GatherSnapshotRequest gather;
  gather.set_name(e.snapshot());
  v1::IndicatorSnapshot snapshot;
  s = Invoke(stub_.get(), &Stub::GatherSnapshot, lead_, gather, &snapshot);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << testing::Describe(s);

  // League pre-review: only a league government of a core region (Hohhot), in order.
  v1::Evaluation next;
  EXPECT_EQ(Step(&Stub::ApproveLeagueReview, baotou_, e, "ok", &next).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Step(&Stub::ApproveLeagueReview, lead_, e, "ok", &next).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Step(&Stub::ApproveDepartmentReview, lead_, e, "ok", &next).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Step(&Stub::ApproveLeagueReview, hohhot_, e, "ok", &next, "v9").error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_EQ(Step(&Stub::ReturnEvaluation, hohhot_, e, "nothing before", &next).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetEval(e.name()).etag(), e.etag());  // every refusal changed nothing
  ASSERT_TRUE(Step(&Stub::ApproveLeagueReview, hohhot_, e, "呼和浩特市预审通过", &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::DEPARTMENT_REVIEW);

  // The lead department's review.
  EXPECT_EQ(Step(&Stub::ApproveDepartmentReview, energy_, e, "ok", &next).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Step(&Stub::ApproveDepartmentReview, lead_, e, "材料齐全", &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::EXPERT_REVIEW);

  // The experts: their role only, adjustments within the rule set's limits, with reasons.
  v1::SubmitExpertReviewRequest review;
  review.set_name(e.name());
  review.set_etag(e.etag());
  review.set_reason("专家组评审意见");
  auto* adj = review.add_adjustments();
  adj->set_indicator("promotion.patents");
  adj->set_adjustment_bp(1500);
  adj->set_reason("PCT filings not yet granted");
  EXPECT_EQ(Invoke(stub_.get(), &Stub::SubmitExpertReview, lead_, review, &next).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  s = Invoke(stub_.get(), &Stub::SubmitExpertReview, expert_, review, &next);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("adjustments[0].adjustment_bp"));
  // The experts return it to the department for missing material; the department approves again.
  ASSERT_TRUE(Step(&Stub::ReturnEvaluation, expert_, e, "缺少专利清单", &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::DEPARTMENT_REVIEW);
  ASSERT_TRUE(Step(&Stub::ApproveDepartmentReview, lead_, e, "已补充专利清单", &e).ok());
  adj->set_adjustment_bp(500);
  review.set_etag(e.etag());
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::SubmitExpertReview, expert_, review, &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::DECISION);
  EXPECT_EQ(e.result().total_score_bp(), 8049);

  // The decision: promotion beyond the qualified tier is refused; national is designated.
  v1::DecideEvaluationRequest decide;
  decide.set_name(e.name());
  decide.set_etag(e.etag());
  decide.set_decision(v1::PROMOTE);
  decide.set_tier(Tier::TIER_WORLD_CLASS);
  decide.set_reason("综合评价");
  s = Invoke(stub_.get(), &Stub::DecideEvaluation, lead_, decide, &next);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << testing::Describe(s);
  decide.set_tier(Tier::TIER_NATIONAL);
  EXPECT_EQ(Invoke(stub_.get(), &Stub::DecideEvaluation, energy_, decide, &next).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::GetClusterRequest get_cluster;
  get_cluster.set_name("clusters/hohhot-dairy");
  v1::Cluster cluster;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GetCluster, lead_, get_cluster, &cluster).ok());
  EXPECT_EQ(cluster.tier(), Tier::TIER_NONE);  // the refusals designated nothing
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::DecideEvaluation, lead_, decide, &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::DECIDED);
  EXPECT_EQ(e.decision(), v1::PROMOTE);
  EXPECT_EQ(e.decided_tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(e.tier_designation(), "clusters/hohhot-dairy/tierDesignations/1");
  // Stale: a second decision on the old etag.
  EXPECT_EQ(Invoke(stub_.get(), &Stub::DecideEvaluation, lead_, decide, &next).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The cluster: designated national-level, eligible for the national reward.
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GetCluster, lead_, get_cluster, &cluster).ok());
  EXPECT_EQ(cluster.tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(cluster.reward_eligibility().tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(cluster.reward_eligibility().amount_cny_10k(), 1000);
  EXPECT_EQ(cluster.reward_eligibility().evaluation(), e.name());
  v1::ListTierDesignationsRequest designations;
  designations.set_parent("clusters/hohhot-dairy");
  v1::ListTierDesignationsResponse history;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListTierDesignations, lead_, designations, &history).ok());
  ASSERT_EQ(history.designations_size(), 1);
  EXPECT_THAT(history.designations(0).reason(), HasSubstr(e.name()));
  EXPECT_EQ(history.designations(0).actor().organization(), "departments/industry_it");

  // Every step with who, in which role and organization, when and why.
  e = GetEval(e.name());
  std::vector<std::string> actions;
  for (const auto& step : e.steps()) {
    actions.push_back(step.action());
    EXPECT_FALSE(step.actor().subject().empty());
    EXPECT_TRUE(step.has_time());
  }
  EXPECT_THAT(actions, ElementsAre("OPEN", "ApproveLeagueReview", "ApproveDepartmentReview", "ReturnEvaluation",
                                   "ApproveDepartmentReview", "SubmitExpertReview", "DecideEvaluation"));
  EXPECT_EQ(e.steps(1).actor().organization(), "departments/league_150100");
  EXPECT_EQ(e.steps(1).reason(), "呼和浩特市预审通过");
  EXPECT_EQ(e.steps(3).actor().organization(), "experts/dairy-panel");
  EXPECT_THAT(e.steps(3).actor().roles(), ElementsAre("expert"));
  EXPECT_EQ(e.steps(3).reason(), "缺少专利清单");
  EXPECT_EQ(e.result().rank(), 1);
  EXPECT_EQ(e.result().evaluated_count(), 1);
  common::v1::ListAuditEventsRequest audit;
  audit.set_filter(absl::StrCat("resource = \"", e.name(), "\""));
  common::v1::ListAuditEventsResponse events;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListAuditEvents, auditor_, audit, &events).ok());
  ASSERT_EQ(events.events_size(), 7);
  EXPECT_EQ(events.events(0).method(), "/clustergov.clusters.v1.ClustersService/DecideEvaluation");  // newest first
  EXPECT_EQ(events.events(0).reason(), "综合评价");
  EXPECT_EQ(events.events(6).method(), "/clustergov.clusters.v1.ClustersService/OpenEvaluation");

  // Progress toward 1/3/9: the dairy cluster's gap to world-class, 9,000 - 8,049.
  v1::GetTargetProgressRequest progress_req;
  progress_req.set_target_year(2027);
  v1::TargetProgress progress;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GetTargetProgress, auditor_, progress_req, &progress).ok());
  ASSERT_EQ(progress.tiers(0).tier(), Tier::TIER_WORLD_CLASS);
  ASSERT_EQ(progress.tiers(0).gaps_size(), 1);
  EXPECT_EQ(progress.tiers(0).gaps(0).cluster(), "clusters/hohhot-dairy");
  EXPECT_EQ(progress.tiers(0).gaps(0).evaluation(), e.name());
  EXPECT_EQ(progress.tiers(0).gaps(0).score_gap_bp(), 951);
  EXPECT_FALSE(progress.tiers(0).gaps(0).qualifies());
  EXPECT_EQ(progress.tiers(1).designated_count(), 1);
  EXPECT_EQ(progress.tiers(2).gaps_size(), 9);
}

TEST_F(EvaluationTest, RefusedStepsNeedEtagAndReason) {
  RecordDairy2026();
  grpc::Status s;
  v1::Evaluation e = Open("hohhot-dairy", 2026, &s);
  ASSERT_TRUE(s.ok()) << testing::Describe(s);
  v1::Evaluation next;
  v1::EvaluationStepRequest req;
  req.set_name(e.name());
  s = Invoke(stub_.get(), &Stub::ApproveLeagueReview, hohhot_, req, &next);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("etag"));
  ASSERT_TRUE(Step(&Stub::ApproveLeagueReview, hohhot_, e, "", &e).ok());
  EXPECT_EQ(Step(&Stub::ReturnEvaluation, lead_, e, "", &next).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Step(&Stub::ReturnEvaluation, lead_, e, "预审材料不全", &e).ok());
  EXPECT_EQ(e.state(), v1::Evaluation::LEAGUE_REVIEW);
  v1::GetEvaluationRequest bad;
  bad.set_name("clusters/hohhot-dairy/evaluations/99");
  s = Invoke(stub_.get(), &Stub::GetEvaluation, auditor_, bad, &next);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("name"));
}

// ------------------------------------------------------------------------------- real sources

// The production sources over gRPC: the enterprises service in process answers with the figures it
// owns; a promotion service that does not answer fails the snapshot as UNAVAILABLE naming it, and
// nothing is stored.
TEST(EvaluationSourcesTest, SnapshotsComeFromTheRealServicesAndFailWholeWhenOneIsDown) {
  testing::RedisServer redis;
  redis.Start();
  testing::TempDir dir;
  auto seed = LoadSeedData("");
  ASSERT_TRUE(seed.ok()) << seed.status();
  // The enterprises service reads clusters from its own clusters server.
  testing::ClustersServer registry;
  ASSERT_TRUE(registry.Start(testing::ServiceConfig("clusters", dir.File("registry.db"), redis.port()), *seed).ok());
  testing::EnterprisesServer enterprises;
  auto seeded = enterprises.Start(testing::ServiceConfig("enterprises", dir.File("enterprises.db"), redis.port()),
                                  registry.address(), &*seed);
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  ASSERT_GT(*seeded, 0);

  const std::string lead = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string dead = "127.0.0.1:1";  // nothing listens on port 1
  const auto start = [&](testing::ClustersServer& server, const std::string& db, bool with_promotion) {
    std::vector<std::unique_ptr<IndicatorSource>> sources;
    sources.push_back(enterprises::NewEnterprisesIndicatorSource(server::MakeChannel(enterprises.address()),
                                                                 absl::Seconds(5)));
    if (with_promotion) {
      sources.push_back(promotion::NewPromotionIndicatorSource(server::MakeChannel(dead), absl::Seconds(2)));
    }
    return server.Start(testing::ServiceConfig("clusters", dir.File(db), redis.port()), *seed, true,
                        std::move(sources));
  };
  v1::GatherSnapshotRequest gather;
  gather.set_name("clusters/hohhot-dairy/snapshots/2026");
  v1::IndicatorSnapshot snapshot;

  {
    testing::ClustersServer clusters;
    ASSERT_TRUE(start(clusters, "with-promotion.db", true).ok());
    auto stub = v1::ClustersService::NewStub(grpc::CreateChannel(clusters.address(), grpc::InsecureChannelCredentials()));
    grpc::Status s = Invoke(stub.get(), &Stub::GatherSnapshot, lead, gather, &snapshot);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << testing::Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("promotion"));
    v1::GetSnapshotRequest get;
    get.set_name(gather.name());
    EXPECT_EQ(Invoke(stub.get(), &Stub::GetSnapshot, lead, get, &snapshot).error_code(), grpc::StatusCode::NOT_FOUND);
    clusters.Stop();
  }

  testing::ClustersServer clusters;
  ASSERT_TRUE(start(clusters, "enterprises-only.db", false).ok());
  auto stub = v1::ClustersService::NewStub(grpc::CreateChannel(clusters.address(), grpc::InsecureChannelCredentials()));
  grpc::Status s = Invoke(stub.get(), &Stub::GatherSnapshot, lead, gather, &snapshot);
  ASSERT_TRUE(s.ok()) << testing::Describe(s);
  EXPECT_THAT(snapshot.sources(), ElementsAre("enterprises"));

  // The snapshot holds what the enterprises service itself answers for the cluster-year.
  auto direct = enterprises::v1::EnterprisesService::NewStub(
      grpc::CreateChannel(enterprises.address(), grpc::InsecureChannelCredentials()));
  common::v1::GetClusterIndicatorsRequest req;
  req.set_cluster("clusters/hohhot-dairy");
  req.set_year(2026);
  common::v1::ClusterIndicators answer;
  ASSERT_TRUE(Invoke(direct.get(), &enterprises::v1::EnterprisesService::Stub::GetClusterIndicators, lead, req,
                     &answer).ok());
  std::map<std::string, int64_t> expected;
  for (const auto& i : answer.indicators()) expected[i.key()] = i.value();
  ASSERT_GT(expected.at("enterprises.members.total"), 0);  // the seed's lead enterprises are members
  int compared = 0;
  for (const auto& i : snapshot.indicators()) {
    EXPECT_EQ(i.source(), "enterprises") << i.key();
    auto it = expected.find(i.key());
    ASSERT_NE(it, expected.end()) << i.key();
    EXPECT_EQ(i.value(), it->second) << i.key();
    ++compared;
  }
  EXPECT_GT(compared, 0);
  clusters.Stop();
  enterprises.Stop();
  registry.Stop();
}

}  // namespace
}  // namespace clustergov::clusters

// The yearly governance cycle end to end, through the REST gateway, against the whole platform as
// the README's one command starts it (scripts/run-local.sh: Redis, the five services on SQLite with
// their seed data, the gateway). Every call is what a frontend or another agency would send:
// HTTP/1.1 with a bearer token, JSON bodies, google.rpc.Status errors.
//
// A new cluster is registered with its target tier; a promotion body registers, applies and is
// approved; two enterprises register (credit codes checked), join and one is certified; its land
// and energy application is approved and allocated from the pools; a talent demand is matched and a
// placement made; the annual report is submitted and accepted; the evaluation goes through every
// level and designates the tier; progress toward 1/3/9 moves; the reward the decision makes the
// cluster eligible for is claimed from the subsidy pool. Each step's data is checked, and the audit
// trails name who did what, in which role and organization, and why.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "grpcpp/support/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/common/v1/common.pb.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "clustergov/promotion/v1/promotion.pb.h"
#include "clustergov/support/v1/support.pb.h"
#include "clustergov/talent/v1/talent.pb.h"
#include "common/refdata/uscc.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"

namespace clustergov {
namespace {

namespace cv1 = clusters::v1;
namespace ev1 = enterprises::v1;
namespace pv1 = promotion::v1;
namespace sv1 = support::v1;
namespace tv1 = talent::v1;
using common::v1::AuditEvent;
using common::v1::ListAuditEventsResponse;
using common::v1::Tier;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Property;
using testing::HttpResponse;

constexpr char kCluster[] = "clusters/e2e-dairy-tech";
constexpr char kRegion[] = "150100";  // Hohhot: the cluster's core region, the enterprises' and the pools'
constexpr char kOrg[] = "promotionOrgs/e2e-assoc";
constexpr char kRuleSet[] = "ruleSets/e2e-small";
constexpr int64_t kFenPer10k = 1000000;  // 1万元 in fen

std::string UsccOf(const std::string& first17) {
  return first17 + std::string(1, refdata::UsccCheckCharacter(first17));
}

// Today in China Standard Time, the calendar the services keep dates and indicator years in.
absl::CivilDay TodayCst() { return absl::ToCivilDay(absl::Now(), absl::FixedTimeZone(8 * 3600)); }

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(m, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class GovernanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new testing::Platform();
    absl::Status s = platform_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    delete platform_;
    platform_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(platform_, nullptr); }
  // A failure is explained by the services' side too: the ends of their logs.
  void TearDown() override {
    if (HasFailure() && platform_ != nullptr) std::fprintf(stderr, "%s\n", platform_->Logs().c_str());
  }

  // One request through the gateway; the response as sent.
  static HttpResponse Http(const std::string& method, const std::string& target, const std::string& token,
                           const std::string& body = "") {
    testing::HttpConnection c(platform_->gateway_port());
    EXPECT_TRUE(c.connected());
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token},
                                                                {"Connection", "close"}};
    EXPECT_TRUE(c.Send(testing::RawRequest(method, target, body, headers)));
    return c.Read();
  }

  // A call expected to succeed: its JSON answer parsed strictly into `M` (an unknown field fails).
  template <typename M>
  static M Ok(const std::string& method, const std::string& target, const std::string& token,
              const std::string& body = "") {
    HttpResponse r = Http(method, target, token, body);
    EXPECT_EQ(r.status, 200) << method << " " << target << ": " << r;
    M m;
    if (r.status == 200) {
      auto s = google::protobuf::util::JsonStringToMessage(r.body, &m);
      EXPECT_TRUE(s.ok()) << s.ToString() << " in " << r.body;
    }
    return m;
  }
  template <typename M>
  static M Ok(const std::string& method, const std::string& target, const std::string& token,
              const google::protobuf::Message& body) {
    return Ok<M>(method, target, token, Json(body));
  }

  // A call expected to be refused with gRPC `code` (and HTTP `http_status`): the error body.
  static testing::HttpErrorBody Refused(int http_status, grpc::StatusCode code, const std::string& method,
                                        const std::string& target, const std::string& token,
                                        const std::string& body = "") {
    HttpResponse r = Http(method, target, token, body);
    EXPECT_EQ(r.status, http_status) << method << " " << target << ": " << r;
    testing::HttpErrorBody e = testing::ParseHttpError(r);
    EXPECT_EQ(e.code, static_cast<int>(code)) << r;
    return e;
  }

  // The audit events of one resource in the service whose audit route is `route`, oldest first.
  static std::vector<AuditEvent> Audit(const std::string& route, const std::string& resource) {
    auto resp = Ok<ListAuditEventsResponse>(
        "GET",
        absl::StrCat(route, "?pageSize=100&filter=",
                     testing::PercentEncode(absl::StrCat("resource = \"", resource, "\""))),
        auditor_);
    std::vector<AuditEvent> events(resp.events().rbegin(), resp.events().rend());
    return events;
  }

  static testing::Platform* platform_;
  static std::string auditor_;
};

testing::Platform* GovernanceTest::platform_ = nullptr;
std::string GovernanceTest::auditor_;

// An audit event: its full method, who (subject — any when empty —, organization, a role) and why.
auto Did(const std::string& method, const std::string& subject, const std::string& organization,
         const std::string& role, const std::string& reason_part = "") {
  return AllOf(Property(&AuditEvent::method, method),
               Property(&AuditEvent::actor, AllOf(Property(&common::v1::Actor::subject, HasSubstr(subject)),
                                                  Property(&common::v1::Actor::organization, organization),
                                                  Property(&common::v1::Actor::roles, Contains(role)))),
               Property(&AuditEvent::reason, HasSubstr(reason_part)));
}

TEST_F(GovernanceTest, TheYearlyCycleFromRegistrationToTheRewardThroughTheGateway) {
  const int year = static_cast<int>(TodayCst().year());
  const absl::CivilDay today = TodayCst();
  auditor_ = platform_->Token("audit.office", "departments/audit", {"auditor"});
  // The people.
  const std::string admin = platform_->Token("ops.admin", "departments/industry_it", {"admin"});
  const std::string industry_it = platform_->Token("li.wei", "departments/industry_it", {"government"});
  const std::string energy = platform_->Token("zhao.min", "departments/energy", {"government"});
  const std::string hohhot = platform_->Token("han.bo", "departments/league_150100", {"government"});
  const std::string baotou = platform_->Token("li.na", "departments/league_150200", {"government"});
  const std::string hr = platform_->Token("zhang.hr", "departments/hr_social_security", {"government"});
  const std::string experts = platform_->Token("expert.chen", "experts/imau-panel", {"expert"});
  const std::string assoc = platform_->Token("assoc.wang", kOrg, {"promotion_org"});
  const std::string uscc_a = UsccOf("91150100MA0E2E001");
  const std::string uscc_b = UsccOf("91150100MA0E2E002");
  const std::string ent_a = platform_->Token("ent.a", "enterprises/" + uscc_a, {"enterprise"});
  const std::string ent_b = platform_->Token("ent.b", "enterprises/" + uscc_b, {"enterprise"});
  const std::string talent_token = platform_->Token("wang.fang", "talents/e2e-wang", {"talent"});

  // Progress toward 1/3/9 before anything happens.
  auto progress_before = Ok<cv1::TargetProgress>("GET", "/v1/targetProgress/2027", industry_it);
  auto region_designated = [](const cv1::TargetProgress& p) {
    for (const auto& t : p.tiers()) {
      if (t.tier() == common::v1::TIER_REGION) return t.designated_count();
    }
    return -1;
  };
  const int region_before = region_designated(progress_before);
  ASSERT_GE(region_before, 0);

  // ------------------------------------------------------------ 1. the cluster, with its target tier
  cv1::Cluster spec;
  spec.set_display_name_zh("呼和浩特乳业科技集群");
  spec.set_display_name_en("Hohhot dairy technology cluster");
  spec.set_industry("dairy");
  spec.set_target_tier(common::v1::TIER_REGION);
  spec.set_target_year(2027);
  spec.add_core_regions(kRegion);
  spec.add_lead_departments("industry_it");
  spec.add_chain_segments("乳品加工");
  // A frontend's mistake first: the field is named, nothing is created.
  cv1::Cluster bad = spec;
  bad.set_target_year(3000);
  auto e = Refused(400, grpc::StatusCode::INVALID_ARGUMENT, "POST", "/v1/clusters?clusterId=e2e-dairy-tech",
                   industry_it, Json(bad));
  EXPECT_THAT(e.fields, ElementsAre("cluster.target_year"));
  auto cluster = Ok<cv1::Cluster>("POST", "/v1/clusters?clusterId=e2e-dairy-tech", industry_it, spec);
  EXPECT_EQ(cluster.name(), kCluster);
  EXPECT_EQ(cluster.target_tier(), common::v1::TIER_REGION);
  EXPECT_NE(cluster.tier(), common::v1::TIER_REGION);

  // ------------------------------------------------------------ 2. the promotion body
  pv1::PromotionOrg org;
  org.set_display_name_zh("呼和浩特乳业科技促进会");
  org.set_display_name_en("Hohhot Dairy Technology Promotion Association");
  org.set_legal_form(pv1::ASSOCIATION);
  org.set_uscc(UsccOf("51150100MJE2E0001"));
  org.set_independent_legal_person(true);
  auto* founder = org.add_founders();
  founder->set_kind(pv1::UNIVERSITY);
  founder->set_name("内蒙古农业大学");
  org.mutable_governance()->set_legal_representative("王芳");
  auto* board = org.mutable_governance()->add_board_members();
  board->set_name("李强");
  board->set_organization("内蒙古农业大学");
  board->set_position("理事长");
  org.mutable_governance()->mutable_bylaws_adopted()->set_year(2024);
  org.mutable_governance()->mutable_bylaws_adopted()->set_month(3);
  org.mutable_governance()->mutable_bylaws_adopted()->set_day(15);
  org.set_full_time_staff(5);
  org.add_income_sources(pv1::MEMBERSHIP_FEES);
  org.add_services(pv1::SUPPLY_DEMAND_MATCHING);
  org.mutable_contact()->set_person("王芳");
  org.mutable_contact()->set_phone("0471-1234567");
  org.mutable_contact()->set_email("office@example.org");
  org.mutable_contact()->set_address("呼和浩特市金川开发区");
  auto registered_org = Ok<pv1::PromotionOrg>("POST", "/v1/promotionOrgs?promotionOrgId=e2e-assoc", assoc, org);
  EXPECT_EQ(registered_org.name(), kOrg);
  EXPECT_FALSE(registered_org.incomplete());

  pv1::Designation apply;
  apply.set_promotion_org(kOrg);
  apply.set_cluster(kCluster);
  apply.set_application_reason("承担集群日常运营、供需对接与年度监测");
  auto designation = Ok<pv1::Designation>("POST", "/v1/designations", assoc, apply);
  ASSERT_EQ(designation.state(), pv1::Designation::PENDING);
  // Another league's government does not decide it; the lead department does.
  pv1::DesignationDecisionRequest decide_designation;
  decide_designation.set_reason("章程、人员、服务齐备，同意认定");
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", absl::StrCat("/v1/", designation.name(), ":approve"),
          baotou, Json(decide_designation));
  designation = Ok<pv1::Designation>("POST", absl::StrCat("/v1/", designation.name(), ":approve"), industry_it,
                                     decide_designation);
  EXPECT_EQ(designation.state(), pv1::Designation::ACTIVE);
  EXPECT_EQ(designation.decided_by().organization(), "departments/industry_it");
  // The cluster record shows its promotion organization (pushed by the promotion service).
  std::string shown;
  for (int i = 0; i < 100 && shown != kOrg; ++i) {
    shown = Ok<cv1::Cluster>("GET", absl::StrCat("/v1/", kCluster), industry_it).promotion_organization();
    if (shown != kOrg) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(shown, kOrg);

  // ------------------------------------------------------------ 3. enterprises: register, join, certify
  auto enterprise = [&](const std::string& uscc, const std::string& name, ev1::SizeClass size, int64_t output) {
    ev1::Enterprise en;
    en.set_uscc(uscc);
    en.set_legal_name_zh(name);
    en.set_region(kRegion);
    en.set_industry("dairy");
    en.set_size_class(size);
    en.set_employees(size == ev1::LARGE ? 2400 : 300);
    en.set_annual_output_cny_10k(output);
    return en;
  };
  // A credit code with a wrong check character is refused, naming the field.
  ev1::Enterprise wrong_code = enterprise(uscc_a, "乳业科技甲有限公司", ev1::LARGE, 80000);
  wrong_code.set_uscc(uscc_a.substr(0, 17) + (uscc_a[17] == '0' ? "1" : "0"));
  e = Refused(400, grpc::StatusCode::INVALID_ARGUMENT, "POST", "/v1/enterprises", industry_it, Json(wrong_code));
  EXPECT_THAT(e.fields, ElementsAre("enterprise.uscc"));
  auto a = Ok<ev1::Enterprise>("POST", "/v1/enterprises", ent_a,
                               enterprise(uscc_a, "乳业科技甲有限公司", ev1::LARGE, 80000));
  auto b = Ok<ev1::Enterprise>("POST", "/v1/enterprises", ent_b,
                               enterprise(uscc_b, "乳业配套乙有限公司", ev1::MEDIUM, 30000));
  EXPECT_EQ(a.name(), "enterprises/" + uscc_a);
  for (const auto& [token, name] : {std::pair{ent_a, a.name()}, std::pair{ent_b, b.name()}}) {
    ev1::Membership join;
    join.set_cluster(kCluster);
    join.set_role(ev1::MEMBER);
    auto m = Ok<ev1::Membership>("POST", absl::StrCat("/v1/", name, "/memberships"), token, join);
    EXPECT_EQ(m.name(), absl::StrCat(name, "/memberships/e2e-dairy-tech"));
  }
  ev1::Certification cert;
  cert.set_kind(ev1::SMART_FACTORY);
  cert.mutable_grant_date()->set_year(static_cast<int>(today.year()));
  cert.mutable_grant_date()->set_month(today.month());
  cert.mutable_grant_date()->set_day(today.day());
  cert.mutable_expiry_date()->set_year(static_cast<int>(today.year()) + 3);
  cert.mutable_expiry_date()->set_month(1);
  cert.mutable_expiry_date()->set_day(1);
  cert.set_certificate_number("NMG-ZN-E2E-001");
  cert.set_issuing_department("industry_it");
  // An enterprise does not certify itself.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", absl::StrCat("/v1/", a.name(), "/certifications"), ent_a,
          Json(cert));
  auto granted = Ok<ev1::Certification>("POST", absl::StrCat("/v1/", a.name(), "/certifications"), industry_it, cert);
  EXPECT_EQ(granted.state(), ev1::Certification::VALID);
  EXPECT_EQ(granted.granted_by().organization(), "departments/industry_it");

  // ------------------------------------------------------------ 4. land and energy
  auto pool = [&](sv1::ResourceKind kind, int64_t capacity) {
    sv1::Pool p;
    p.set_region(kRegion);
    p.set_year(year);
    p.set_kind(kind);
    p.set_capacity(capacity);
    return p;
  };
  auto land_pool = Ok<sv1::Pool>("POST", "/v1/pools", industry_it, pool(sv1::LAND, 100000));
  auto energy_pool = Ok<sv1::Pool>("POST", "/v1/pools", energy, pool(sv1::ENERGY, 50000));
  EXPECT_EQ(land_pool.free(), 100000);
  sv1::Application land_app;
  land_app.set_cluster(kCluster);
  land_app.set_project_name("低温乳制品智能工厂");
  land_app.set_core_chain_project(true);
  land_app.set_region(kRegion);
  land_app.set_year(year);
  auto* item = land_app.add_items();
  item->set_kind(sv1::LAND);
  item->set_quantity(12000);
  item = land_app.add_items();
  item->set_kind(sv1::ENERGY);
  item->set_quantity(5000);
  auto app = Ok<sv1::Application>("POST", "/v1/applications", ent_a, land_app);
  ASSERT_EQ(app.state(), sv1::Application::DRAFT);
  sv1::TransitionRequest step;
  app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", app.name(), ":submit"), ent_a, step);
  EXPECT_EQ(app.state(), sv1::Application::SUBMITTED);
  // The applicant does not review its own application.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", absl::StrCat("/v1/", app.name(), ":startReview"), ent_a,
          Json(step));
  app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", app.name(), ":startReview"), industry_it, step);
  step.set_reason("符合园区规划和能耗双控要求");
  app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", app.name(), ":approve"), industry_it, step);
  EXPECT_EQ(app.state(), sv1::Application::APPROVED);
  EXPECT_EQ(Ok<sv1::Pool>("GET", absl::StrCat("/v1/", land_pool.name()), ent_a).reserved(), 12000);
  step.set_reason("土地出让合同已签订");
  app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", app.name(), ":allocate"), industry_it, step);
  EXPECT_EQ(app.state(), sv1::Application::ALLOCATED);
  land_pool = Ok<sv1::Pool>("GET", absl::StrCat("/v1/", land_pool.name()), ent_a);
  energy_pool = Ok<sv1::Pool>("GET", absl::StrCat("/v1/", energy_pool.name()), ent_a);
  EXPECT_EQ(land_pool.allocated(), 12000);
  EXPECT_EQ(land_pool.free(), 88000);
  EXPECT_EQ(energy_pool.allocated(), 5000);
  EXPECT_EQ(energy_pool.free(), 45000);
  const std::string land_app_name = app.name();

  // ------------------------------------------------------------ 5. talent: demand, match, placement
  tv1::Talent person;
  person.set_display_name("王芳");
  person.set_field("food");
  person.add_skills("dairy_processing");
  person.add_skills("automation");
  person.set_home_institution("测试单位");
  person.set_institution_kind(tv1::PRIVATE_ENTERPRISE);
  person.set_region(kRegion);
  person.mutable_contact()->set_phone("13800000000");
  person.mutable_contact()->set_email("wang.fang@example.org");
  auto talent = Ok<tv1::Talent>("POST", "/v1/talents?talentId=e2e-wang", talent_token, person);
  EXPECT_EQ(talent.name(), "talents/e2e-wang");
  tv1::SetTalentLevelRequest level;
  level.set_level(tv1::SENIOR_ENGINEER);
  level.set_reason("高级工程师职称评审通过");
  // Levels are granted by HR & Social Security, not declared.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", "/v1/talents/e2e-wang:setLevel", talent_token,
          Json(level));
  talent = Ok<tv1::Talent>("POST", "/v1/talents/e2e-wang:setLevel", hr, level);
  EXPECT_EQ(talent.level(), tv1::SENIOR_ENGINEER);
  tv1::Demand want;
  want.set_cluster(kCluster);
  want.set_title("乳品工艺工程师");
  want.add_skills("dairy_processing");
  want.set_level(tv1::ENGINEER);
  want.set_count(1);
  want.set_region(kRegion);
  want.mutable_deadline()->set_year(static_cast<int>(today.year()) + 1);
  want.mutable_deadline()->set_month(6);
  want.mutable_deadline()->set_day(30);
  auto demand = Ok<tv1::Demand>("POST", "/v1/demands", ent_a, want);
  ASSERT_FALSE(demand.name().empty());
  auto matched = Ok<tv1::MatchTalentsResponse>("GET", absl::StrCat("/v1/", demand.name(), ":match"), ent_a);
  ASSERT_GE(matched.candidates_size(), 1);
  EXPECT_EQ(matched.candidates(0).talent().name(), "talents/e2e-wang");
  tv1::Placement place;
  place.set_talent("talents/e2e-wang");
  place.set_demand(demand.name());
  place.set_type(tv1::Placement::FULL_TIME);
  auto placement = Ok<tv1::Placement>("POST", "/v1/placements", ent_a, place);
  EXPECT_EQ(placement.state(), tv1::Placement::ACTIVE);
  EXPECT_EQ(placement.cluster(), kCluster);

  // Published as data by an admin: the plan's four dimensions with a few indicators and targets
  // this young cluster can reach.
  const std::string rules = R"json({
    "title": "E2E small-cluster rules",
    "indicators": [
      {"key": "enterprises.annual_output", "dimension": "DIMENSION_SCALE", "unit": "cny_10k", "floor": 0,
       "regionTarget": 100000, "nationalTarget": 500000, "worldClassTarget": 1000000, "ceiling": 2000000,
       "weightBp": 3000, "maxExpertAdjustmentBp": 1000},
      {"key": "promotion.rd_intensity", "dimension": "DIMENSION_INNOVATION", "unit": "bp", "floor": 0,
       "regionTarget": 150, "nationalTarget": 250, "worldClassTarget": 350, "ceiling": 500,
       "weightBp": 2500, "maxExpertAdjustmentBp": 1000},
      {"key": "enterprises.certifications.smart_factory", "dimension": "DIMENSION_MANUFACTURING", "unit": "count",
       "floor": 0, "regionTarget": 1, "nationalTarget": 3, "worldClassTarget": 6, "ceiling": 10,
       "weightBp": 2500, "maxExpertAdjustmentBp": 1000},
      {"key": "talent.placements.total", "dimension": "DIMENSION_ECOSYSTEM", "unit": "count", "floor": 0,
       "regionTarget": 1, "nationalTarget": 5, "worldClassTarget": 10, "ceiling": 20,
       "weightBp": 1000, "maxExpertAdjustmentBp": 1000},
      {"key": "support.allocated.land", "dimension": "DIMENSION_ECOSYSTEM", "unit": "m2", "floor": 0,
       "regionTarget": 10000, "nationalTarget": 50000, "worldClassTarget": 100000, "ceiling": 200000,
       "weightBp": 1000, "maxExpertAdjustmentBp": 1000}
    ],
    "dimensions": [
      {"dimension": "DIMENSION_SCALE", "minScoreBp": 4000},
      {"dimension": "DIMENSION_INNOVATION", "minScoreBp": 4000},
      {"dimension": "DIMENSION_MANUFACTURING", "minScoreBp": 4000},
      {"dimension": "DIMENSION_ECOSYSTEM", "minScoreBp": 4000}
    ],
    "gates": [
      {"code": "scale_efficiency", "titleZh": "产业规模效益突出", "titleEn": "Outstanding scale and efficiency",
       "criteria": [{"indicator": "enterprises.annual_output", "minValue": 100000}]}
    ],
    "tiers": [
      {"tier": "TIER_REGION", "minScoreBp": 6000, "rewardCny10k": "300", "rewardDescription": "自治区级集群奖补"},
      {"tier": "TIER_NATIONAL", "minScoreBp": 8000, "rewardCny10k": "1000", "rewardDescription": "国家级集群奖补"},
      {"tier": "TIER_WORLD_CLASS", "minScoreBp": 9000}
    ],
    "warningsBeforeDemotion": 1
  })json";
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", "/v1/ruleSets?ruleSetId=e2e-small&reason=e2e",
          industry_it, rules);
  auto rule_set = Ok<cv1::RuleSet>("POST", "/v1/ruleSets?ruleSetId=e2e-small&reason=e2e", admin, rules);
  EXPECT_EQ(rule_set.name(), kRuleSet);

  // ------------------------------------------------------------ 6. the annual report
  pv1::AnnualReport report;
  report.set_cluster(kCluster);
  report.set_year(year);
  report.set_work_report("全年组织供需对接12场，新增智能工厂1家。");
  auto* monitoring = report.mutable_monitoring();
  monitoring->set_output_value_fen(110000 * kFenPer10k);  // 11亿元
  monitoring->set_rd_spend_fen(2200 * kFenPer10k);        // 2,200万元: 2.00%
  monitoring->set_large_enterprises(1);
  monitoring->set_medium_enterprises(1);
  monitoring->set_patents(12);
  monitoring->set_smart_factories(1);
  monitoring->set_employment(2700);
  // Only the cluster's promotion organization reports.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", "/v1/annualReports", ent_a, Json(report));
  auto filed = Ok<pv1::AnnualReport>("POST", "/v1/annualReports", assoc, report);
  ASSERT_EQ(filed.state(), pv1::AnnualReport::SUBMITTED);
  // Not yet accepted: the evaluation cannot open.
  cv1::OpenEvaluationRequest open;
  open.set_year(year);
  open.set_rule_set(kRuleSet);
  open.set_reason("年度评价");
  e = Refused(400, grpc::StatusCode::FAILED_PRECONDITION, "POST", absl::StrCat("/v1/", kCluster, "/evaluations"),
              industry_it, Json(open));
  EXPECT_THAT(e.message, HasSubstr("accepted annual report"));
  pv1::AnnualReportDecisionRequest accept;
  accept.set_reason("数据核实无误");
  filed = Ok<pv1::AnnualReport>("POST", absl::StrCat("/v1/", filed.name(), ":accept"), industry_it, accept);
  EXPECT_EQ(filed.state(), pv1::AnnualReport::ACCEPTED);

  // ------------------------------------------------------------ 7. the snapshot and the evaluation

  const std::string snapshot_path = absl::StrCat("/v1/", kCluster, "/snapshots/", year);
  auto snapshot = Ok<cv1::IndicatorSnapshot>("POST", snapshot_path + ":gather", industry_it, "{}");
  auto value = [&](const std::string& key) -> int64_t {
    for (const auto& i : snapshot.indicators()) {
      if (i.key() == key) return i.value();
    }
    ADD_FAILURE() << "no " << key << " in the snapshot";
    return -1;
  };
  EXPECT_EQ(value("enterprises.annual_output"), 110000);
  EXPECT_EQ(value("enterprises.members.total"), 2);
  EXPECT_EQ(value("enterprises.certifications.smart_factory"), 1);
  EXPECT_EQ(value("promotion.rd_intensity"), 200);
  EXPECT_EQ(value("talent.placements.total"), 1);
  EXPECT_EQ(value("support.allocated.land"), 12000);
  EXPECT_EQ(value("support.allocated.energy"), 5000);
  EXPECT_THAT(snapshot.basis(), Contains(filed.name()));
  EXPECT_FALSE(snapshot.locked());

  // Opening is the lead department's.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", absl::StrCat("/v1/", kCluster, "/evaluations"), hohhot,
          Json(open));
  auto ev = Ok<cv1::Evaluation>("POST", absl::StrCat("/v1/", kCluster, "/evaluations"), industry_it, open);
  const std::string ev_name = absl::StrCat(kCluster, "/evaluations/", year);
  ASSERT_EQ(ev.name(), ev_name);
  EXPECT_EQ(ev.state(), cv1::Evaluation::LEAGUE_REVIEW);
  EXPECT_EQ(ev.rule_set(), kRuleSet);
  EXPECT_EQ(ev.result().qualified_tier(), common::v1::TIER_REGION);
  EXPECT_EQ(ev.result().recommendation(), cv1::PROMOTE);
  EXPECT_TRUE(ev.result().gates_passed());
  EXPECT_TRUE(ev.result().sub_minima_met());
  const int total_at_open = ev.result().total_score_bp();
  const cv1::Evaluation ev_at_open = ev;
  EXPECT_GE(total_at_open, 6000);
  EXPECT_LT(total_at_open, 8000);
  EXPECT_TRUE(Ok<cv1::IndicatorSnapshot>("GET", snapshot_path, industry_it).locked());

  auto step_body = [](const cv1::Evaluation& at, const std::string& reason) {
    cv1::EvaluationStepRequest r;
    r.set_etag(at.etag());
    r.set_reason(reason);
    return Json(r);
  };
  const std::string ev_path = absl::StrCat("/v1/", ev_name);
  // League pre-review: the league of a core region, not another league.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", ev_path + ":approveLeagueReview", baotou,
          step_body(ev, "同意"));
  // A decision out of order changes nothing.
  cv1::DecideEvaluationRequest decide;
  decide.set_etag(ev.etag());
  decide.set_decision(cv1::PROMOTE);
  decide.set_tier(common::v1::TIER_REGION);
  decide.set_reason("达到自治区级集群标准");
  Refused(400, grpc::StatusCode::FAILED_PRECONDITION, "POST", ev_path + ":decide", industry_it, Json(decide));
  ev = Ok<cv1::Evaluation>("POST", ev_path + ":approveLeagueReview", hohhot, step_body(ev, "盟市预审通过"));
  EXPECT_EQ(ev.state(), cv1::Evaluation::DEPARTMENT_REVIEW);
  // The evaluation as it was before the league's review is stale: ABORTED (HTTP 409).
  Refused(409, grpc::StatusCode::ABORTED, "POST", ev_path + ":approveDepartmentReview", industry_it,
          step_body(ev_at_open, "x"));
  ev = Ok<cv1::Evaluation>("POST", ev_path + ":approveDepartmentReview", industry_it, step_body(ev, "材料齐全"));
  EXPECT_EQ(ev.state(), cv1::Evaluation::EXPERT_REVIEW);

  cv1::SubmitExpertReviewRequest review;
  review.set_etag(ev.etag());
  review.set_reason("集群协同创新成效明显");
  auto* adjust = review.add_adjustments();
  adjust->set_indicator("talent.placements.total");
  adjust->set_adjustment_bp(1500);  // beyond the rule's ±1,000
  adjust->set_reason("引进人才层次高");
  e = Refused(400, grpc::StatusCode::INVALID_ARGUMENT, "POST", ev_path + ":submitExpertReview", experts,
              Json(review));
  EXPECT_THAT(e.fields, ElementsAre("adjustments[0].adjustment_bp"));
  adjust->set_adjustment_bp(500);
  // The lead department is not the expert body.
  Refused(403, grpc::StatusCode::PERMISSION_DENIED, "POST", ev_path + ":submitExpertReview", industry_it,
          Json(review));
  ev = Ok<cv1::Evaluation>("POST", ev_path + ":submitExpertReview", experts, review);
  EXPECT_EQ(ev.state(), cv1::Evaluation::DECISION);
  // +500 on an indicator weighted 1,000: +50 on the total.
  EXPECT_EQ(ev.result().total_score_bp(), total_at_open + 50);

  decide.set_etag(ev.etag());
  ev = Ok<cv1::Evaluation>("POST", ev_path + ":decide", industry_it, decide);
  EXPECT_EQ(ev.state(), cv1::Evaluation::DECIDED);
  EXPECT_EQ(ev.decision(), cv1::PROMOTE);
  EXPECT_EQ(ev.decided_tier(), common::v1::TIER_REGION);
  EXPECT_FALSE(ev.tier_designation().empty());
  // Every level, with who, in which role and organization, and why.
  ASSERT_EQ(ev.steps_size(), 5);
  std::vector<std::pair<std::string, std::string>> who;
  for (const auto& s : ev.steps()) who.emplace_back(s.actor().organization(), s.reason());
  EXPECT_THAT(who, ElementsAre(std::pair<std::string, std::string>{"departments/industry_it", "年度评价"},
                               std::pair<std::string, std::string>{"departments/league_150100", "盟市预审通过"},
                               std::pair<std::string, std::string>{"departments/industry_it", "材料齐全"},
                               std::pair<std::string, std::string>{"experts/imau-panel", "集群协同创新成效明显"},
                               std::pair<std::string, std::string>{"departments/industry_it", "达到自治区级集群标准"}));

  // ------------------------------------------------------------ 8. the tier, the 1/3/9 progress, the reward
  cluster = Ok<cv1::Cluster>("GET", absl::StrCat("/v1/", kCluster), industry_it);
  EXPECT_EQ(cluster.tier(), common::v1::TIER_REGION);
  EXPECT_EQ(cluster.reward_eligibility().evaluation(), ev_name);
  EXPECT_EQ(cluster.reward_eligibility().amount_cny_10k(), 300);
  EXPECT_EQ(cluster.reward_eligibility().rule_set(), kRuleSet);
  auto designations = Ok<cv1::ListTierDesignationsResponse>(
      "GET", absl::StrCat("/v1/", kCluster, "/tierDesignations"), industry_it);
  ASSERT_GE(designations.designations_size(), 1);
  EXPECT_THAT(designations.designations(0).reason(), HasSubstr(ev_name));
  auto progress = Ok<cv1::TargetProgress>("GET", "/v1/targetProgress/2027", industry_it);
  EXPECT_EQ(region_designated(progress), region_before + 1);
  bool gap_seen = false;
  for (const auto& t : progress.tiers()) {
    for (const auto& g : t.gaps()) {
      if (g.cluster() == kCluster && t.tier() == common::v1::TIER_REGION) {
        gap_seen = true;
        EXPECT_EQ(g.total_score_bp(), ev.result().total_score_bp());
        EXPECT_TRUE(g.qualifies());
      }
    }
  }
  EXPECT_TRUE(gap_seen) << Json(progress);

  // The reward goes through the subsidy pool like any other application.
  auto subsidy_pool = Ok<sv1::Pool>("POST", "/v1/pools", industry_it, pool(sv1::SUBSIDY, 1000 * kFenPer10k));
  sv1::Application claim;
  claim.set_cluster(kCluster);
  claim.set_project_name("自治区级集群奖补");
  claim.set_region(kRegion);
  claim.set_year(year);
  claim.set_reward(ev_name);
  item = claim.add_items();
  item->set_kind(sv1::SUBSIDY);
  item->set_quantity(300 * kFenPer10k + 1);  // one fen over the 300万元 the rule set names
  auto over = Ok<sv1::Application>("POST", "/v1/applications", assoc, claim);
  ASSERT_FALSE(over.name().empty());
  e = Refused(400, grpc::StatusCode::FAILED_PRECONDITION, "POST", absl::StrCat("/v1/", over.name(), ":submit"), assoc,
              "{}");
  EXPECT_THAT(e.message, HasSubstr("eligible for 300"));
  claim.mutable_items(0)->set_quantity(300 * kFenPer10k);
  auto reward_app = Ok<sv1::Application>("POST", "/v1/applications", assoc, claim);
  reward_app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", reward_app.name(), ":submit"), assoc, "{}");
  EXPECT_EQ(reward_app.state(), sv1::Application::SUBMITTED);
  // One live claim per evaluation.
  auto twice = Ok<sv1::Application>("POST", "/v1/applications", assoc, claim);
  e = Refused(400, grpc::StatusCode::FAILED_PRECONDITION, "POST", absl::StrCat("/v1/", twice.name(), ":submit"), assoc,
              "{}");
  EXPECT_THAT(e.message, HasSubstr("already claimed by " + reward_app.name()));
  reward_app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", reward_app.name(), ":startReview"), industry_it, "{}");
  sv1::TransitionRequest grant;
  grant.set_reason("按评价结果拨付奖补");
  reward_app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", reward_app.name(), ":approve"), industry_it, grant);
  reward_app = Ok<sv1::Application>("POST", absl::StrCat("/v1/", reward_app.name(), ":allocate"), industry_it, grant);
  EXPECT_EQ(reward_app.state(), sv1::Application::ALLOCATED);
  subsidy_pool = Ok<sv1::Pool>("GET", absl::StrCat("/v1/", subsidy_pool.name()), assoc);
  EXPECT_EQ(subsidy_pool.allocated(), 300 * kFenPer10k);
  EXPECT_EQ(subsidy_pool.free(), 700 * kFenPer10k);

  // ------------------------------------------------------------ 9. the audit trails
  const std::string clusters_svc = "/clustergov.clusters.v1.ClustersService/";
  EXPECT_THAT(Audit("/v1/clusters:auditEvents", ev_name),
              ElementsAre(Did(clusters_svc + "OpenEvaluation", "li.wei", "departments/industry_it", "government", "年度评价"),
                          Did(clusters_svc + "ApproveLeagueReview", "han.bo", "departments/league_150100", "government",
                              "盟市预审通过"),
                          Did(clusters_svc + "ApproveDepartmentReview", "li.wei", "departments/industry_it", "government",
                              "材料齐全"),
                          Did(clusters_svc + "SubmitExpertReview", "expert.chen", "experts/imau-panel", "expert",
                              "集群协同创新成效明显"),
                          Did(clusters_svc + "DecideEvaluation", "li.wei", "departments/industry_it", "government",
                              "达到自治区级集群标准")));
  EXPECT_THAT(Audit("/v1/clusters:auditEvents", kCluster),
              AllOf(Contains(Did(clusters_svc + "CreateCluster", "li.wei", "departments/industry_it", "government")),
                    // The designation event, under the lead department that approved it, naming it.
                    Contains(Did("Event:PromotionOrgDesignated", "li.wei", "departments/industry_it", "government",
                                 designation.name())),
                    // The decision's tier change, through the registry's designation rule, naming the evaluation.
                    Contains(Did(clusters_svc + "DesignateTier", "li.wei", "departments/industry_it", "government",
                                 ev_name))));
  EXPECT_THAT(Audit("/v1/promotionOrgs:auditEvents", designation.name()),
              ElementsAre(Did("/clustergov.promotion.v1.PromotionService/ApplyForDesignation", "assoc.wang", kOrg,
                              "promotion_org"),
                          Did("/clustergov.promotion.v1.PromotionService/ApproveDesignation", "li.wei",
                              "departments/industry_it", "government", "同意认定")));
  EXPECT_THAT(Audit("/v1/applications:auditEvents", land_app_name),
              ElementsAre(Did("/clustergov.support.v1.SupportService/CreateApplication", "ent.a", a.name(), "enterprise"),
                          Did("/clustergov.support.v1.SupportService/SubmitApplication", "ent.a", a.name(), "enterprise"),
                          Did("/clustergov.support.v1.SupportService/StartReview", "li.wei", "departments/industry_it",
                              "government"),
                          Did("/clustergov.support.v1.SupportService/ApproveApplication", "li.wei",
                              "departments/industry_it", "government", "能耗双控"),
                          Did("/clustergov.support.v1.SupportService/AllocateApplication", "li.wei",
                              "departments/industry_it", "government", "出让合同")));
  EXPECT_THAT(Audit("/v1/enterprises:auditEvents", granted.name()),
              Contains(Did("/clustergov.enterprises.v1.EnterprisesService/GrantCertification", "li.wei",
                           "departments/industry_it", "government")));
  EXPECT_THAT(Audit("/v1/talents:auditEvents", "talents/e2e-wang"),
              Contains(Did("/clustergov.talent.v1.TalentService/SetTalentLevel", "zhang.hr",
                           "departments/hr_social_security", "government", "职称评审通过")));
}

}  // namespace
}  // namespace clustergov

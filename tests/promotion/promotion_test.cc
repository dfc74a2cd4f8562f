// The promotion organizations service end to end in-process: real clusters, enterprises, support
// and promotion services, each with its own Runtime (gRPC server on a loopback port, SQLite file),
// one real redis-server shared by all four, and clients calling through the generated stubs. The
// clusters service follows the promotion service's designation events (the cluster record's
// promotion organization); funding applications go to the support service over gRPC.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/promotion/v1/promotion.grpc.pb.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/refdata/uscc.h"
#include "common/store/outbox.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "common/status/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/cluster_repository.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_service.h"
#include "services/clusters/seed.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/enterprises/enterprise_repository.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/enterprises/enterprises_service.h"
#include "services/promotion/client/indicator_source.h"
#include "services/promotion/promotion_domain.h"
#include "services/promotion/promotion_repository.h"
#include "services/promotion/promotion_service.h"
#include "services/support/support_domain.h"
#include "services/support/support_repository.h"
#include "services/support/support_service.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::promotion {
namespace {

namespace cv1 = ::clustergov::clusters::v1;
namespace sv1 = ::clustergov::support::v1;
namespace ev1 = ::clustergov::enterprises::v1;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using Code = grpc::StatusCode;
using Designation = v1::Designation;
using Report = v1::AnnualReport;
using Stub = v1::PromotionService::Stub;
using CStub = cv1::ClustersService::Stub;
using SStub = sv1::SupportService::Stub;

constexpr int kYear = 2026;
constexpr char kHohhot[] = "150100";
constexpr char kDairy[] = "clusters/hohhot-dairy";
constexpr char kBaotou[] = "clusters/baotou-rare-earth";
constexpr char kHydrogen[] = "clusters/hydrogen";  // led by energy
constexpr char kSeedOrg[] = "promotionOrgs/hohhot-dairy-promotion";

using testing::FieldsOf;
using testing::Invoke;

using testing::Describe;

// A valid credit code of a social organization (registration authority 5, type 1) in Baotou.
std::string OrgUscc(int n) {
  std::string first17 = absl::StrFormat("51150200MJ%07d", n);
  char check = refdata::UsccCheckCharacter(first17);
  EXPECT_NE(check, '\0') << first17;
  return first17 + std::string(1, check);
}

std::string OrgName(const std::string& id) { return "promotionOrgs/" + id; }

std::string OrgToken(const std::string& id) {
  return testing::MakeToken("staff-" + id, OrgName(id), {"promotion_org"});
}

// An organization meeting every eligibility criterion.
v1::PromotionOrg EligibleSpec(int n) {
  v1::PromotionOrg o;
  o.set_display_name_zh(absl::StrCat("包头稀土产业促进会", n));
  o.set_display_name_en(absl::StrCat("Baotou Rare Earth Promotion Association ", n));
  o.set_legal_form(v1::ASSOCIATION);
  o.set_uscc(OrgUscc(n));
  o.set_independent_legal_person(true);
  auto* f = o.add_founders();
  f->set_kind(v1::ENTERPRISE);
  f->set_name("包头稀土高新材料有限公司");
  auto* u = o.add_founders();
  u->set_kind(v1::UNIVERSITY);
  u->set_name("内蒙古科技大学");
  auto* g = o.mutable_governance();
  g->set_legal_representative("张伟");
  auto* b = g->add_board_members();
  b->set_name("李强");
  b->set_organization("内蒙古科技大学");
  b->set_position("理事长");
  g->mutable_bylaws_adopted()->set_year(2024);
  g->mutable_bylaws_adopted()->set_month(3);
  g->mutable_bylaws_adopted()->set_day(15);
  o.set_full_time_staff(5);
  o.add_income_sources(v1::MEMBERSHIP_FEES);
  o.add_income_sources(v1::GRANTS);
  o.add_services(v1::POLICY_GUIDANCE);
  o.add_services(v1::SUPPLY_DEMAND_MATCHING);
  o.mutable_contact()->set_person("王芳");
  o.mutable_contact()->set_phone("0472-1234567");
  o.mutable_contact()->set_email("office@example.org");
  o.mutable_contact()->set_address("包头市稀土高新区");
  return o;
}

const v1::CriterionResult* FindCriterion(const v1::EligibilityResult& r, const std::string& code) {
  for (const auto& c : r.criteria()) {
    if (c.code() == code) return &c;
  }
  return nullptr;
}

v1::MonitoringData Monitoring(int64_t output_fen, int64_t rd_fen) {
  v1::MonitoringData m;
  m.set_output_value_fen(output_fen);
  m.set_large_enterprises(3);
  m.set_medium_enterprises(12);
  m.set_small_enterprises(40);
  m.set_micro_enterprises(85);
  m.set_rd_spend_fen(rd_fen);
  m.set_patents(210);
  m.set_national_platforms(2);
  m.set_region_platforms(7);
  m.set_league_platforms(11);
  (*m.mutable_certifications())["SPECIALIZED_SME"] = 9;
  (*m.mutable_certifications())["HIGH_TECH"] = 21;
  m.set_green_factories(4);
  m.set_smart_factories(2);
  m.set_employment(38000);
  return m;
}

class PromotionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  server::CommonConfig Config(const std::string& service, const std::string& db_file, int port = 0) {
    return testing::ServiceConfig(service, dir_->File(db_file), redis_->port(), port);
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    seed_ = *seed;

    // The clusters service, seeded.
    ASSERT_NO_FATAL_FAILURE(StartClusters(0, /*seed=*/true));
    clusters_port_ = clusters_.port();
    const std::string clusters_addr = absl::StrCat("127.0.0.1:", clusters_port_);

    // The enterprises service, checking clusters over gRPC.
    auto estarted = enterprises_.Start(Config("enterprises", "enterprises.db"), clusters_addr, nullptr);
    ASSERT_TRUE(estarted.ok()) << estarted.status();

    // The support service (funding applications).
    auto sstarted = support_.Start(Config("support", "support.db"), clusters_addr, enterprises_.address(),
                                   absl::Hours(24 * 180));
    ASSERT_TRUE(sstarted.ok()) << sstarted;
    sstub_ = sv1::SupportService::NewStub(
        grpc::CreateChannel(support_.address(), grpc::InsecureChannelCredentials()));

    // The promotion service, seeded, publishing its events as main() does.
    auto prt = server::Runtime::Create(Config("promotion", "promotion.db"));
    ASSERT_TRUE(prt.ok()) << prt.status();
    prt_ = std::move(*prt);
    auto service_token = prt_->ServiceToken();
    ASSERT_TRUE(service_token.ok()) << service_token.status();
    pdirectory_ = std::make_unique<clusters::ClusterDirectory>(*prt_, server::MakeChannel(clusters_addr),
                                                              std::chrono::seconds(60));
    auto prepo = CreatePromotionRepository(&prt_->db());
    ASSERT_TRUE(prepo.ok()) << prepo.status();
    penterprises_ = std::make_unique<enterprises::EnterpriseDirectory>(
        *prt_, server::MakeChannel(enterprises_.address()), std::chrono::seconds(60));
    PromotionDeps deps{pdirectory_.get(), server::MakeChannel(support_.address()), *service_token,
                       penterprises_.get()};
    pdomain_ = std::make_unique<PromotionDomain>(std::move(*prepo), deps, &prt_->page_tokens());
    auto created = pdomain_->Seed(seed_);
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_EQ(*created, 1);  // the dairy association: the only body the plan names
    prt_->PublishEvents();
    pservice_ = std::make_unique<PromotionServiceImpl>(pdomain_.get(), &prt_->handler());
    ASSERT_TRUE(prt_->Start({pservice_.get()}).ok());
    stub_ = v1::PromotionService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", prt_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (prt_) prt_->Shutdown();
    stub_.reset();
    pservice_.reset();
    pdomain_.reset();
    pdirectory_.reset();
    penterprises_.reset();
    prt_.reset();
    support_.Stop();
    enterprises_.Stop();
    StopClusters();
  }

  // The clusters service on clusters.db, listening on `port` (0: any).
  void StartClusters(int port, bool seed) {
    auto started = clusters_.Start(Config("clusters", "clusters.db", port), seed_, seed);
    ASSERT_TRUE(started.ok()) << started;
    cstub_ = cv1::ClustersService::NewStub(
        grpc::CreateChannel(clusters_.address(), grpc::InsecureChannelCredentials()));
  }

  void StopClusters() {
    cstub_.reset();
    clusters_.Stop();  // closes clusters.db
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    return Invoke(stub_.get(), method, token, req, resp);
  }

  // ---------------------------------------------------------------- clusters

  // The cluster's promotion organization as the clusters service reports it (GetCluster).
  std::string ClusterPromotionOrg(const std::string& cluster, grpc::Status* status = nullptr) {
    cv1::GetClusterRequest req;
    req.set_name(cluster);
    cv1::Cluster out;
    grpc::Status s = Invoke(cstub_.get(), &CStub::GetCluster, auditor_, req, &out);
    if (status != nullptr) *status = s;
    return s.ok() ? out.promotion_organization() : "<" + Describe(s) + ">";
  }

  cv1::Cluster GetCluster(const std::string& cluster) {
    cv1::GetClusterRequest req;
    req.set_name(cluster);
    cv1::Cluster out;
    grpc::Status s = Invoke(cstub_.get(), &CStub::GetCluster, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  // The envelope (bytes) of the promotion stream's event of type "clustergov.events.v1.<type>"
  // about `subject`; empty when there is none.
  std::string StreamEntry(const std::string& type, const std::string& subject) {
    auto entries = prt_->redis()->Command({"XRANGE", server::Runtime::EventStream("promotion"), "-", "+"});
    EXPECT_TRUE(entries.ok()) << entries.status();
    if (!entries.ok()) return "";
    for (const auto& entry : entries->elements) {
      const auto& fields = entry.elements.at(1).elements;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        events::v1::Envelope envelope;
        if (fields[i].str != "envelope" || !envelope.ParseFromString(fields[i + 1].str)) continue;
        if (envelope.type() == "clustergov.events.v1." + type && envelope.subject() == subject) {
          return fields[i + 1].str;
        }
      }
    }
    return "";
  }

  // Appends `envelope` (bytes) to the promotion stream again, as a redelivery (same event id) or
  // as a new event with the same content (`new_id`).
  void Republish(const std::string& bytes, bool new_id) {
    events::v1::Envelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(bytes));
    if (new_id) envelope.set_id(store::NewEventId());
    const std::string out = envelope.SerializeAsString();
    auto added = prt_->redis()->Command({"XADD", server::Runtime::EventStream("promotion"), "*", "id", envelope.id(),
                                         "type", envelope.type(), "envelope", out});
    ASSERT_TRUE(added.ok()) << added.status();
  }

  // Waits until the clusters service applied every promotion event so far: a designation of the
  // hydrogen cluster, appended last, shows (the group applies the stream in order).
  void WaitForClustersToCatchUp() {
    ++markers_;
    absl::Status s = clusters_.DesignatePromotionOrg(kHydrogen, absl::StrCat("promotionOrgs/marker-", markers_));
    ASSERT_TRUE(s.ok()) << s;
  }

  // Waits until the promotion service's cluster directory consumed the clusters stream so far.
  void WaitForDirectoryToCatchUp() {
    absl::Status s = testing::WaitForConsumerGroup(clusters_.runtime(), "promotion.directory");
    ASSERT_TRUE(s.ok()) << s;
  }

  // Polls GetCluster until the cluster shows `want`, at most `timeout`; returns the last answer.
  std::string WaitForClusterPromotionOrg(const std::string& cluster, const std::string& want,
                                         absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string got = ClusterPromotionOrg(cluster);
    while (got != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      got = ClusterPromotionOrg(cluster);
    }
    return got;
  }

  // ---------------------------------------------------------------- organizations

  grpc::Status Register(const std::string& token, const std::string& id, const v1::PromotionOrg& spec,
                        v1::PromotionOrg* out = nullptr) {
    v1::RegisterPromotionOrgRequest req;
    *req.mutable_promotion_org() = spec;
    req.set_promotion_org_id(id);
    v1::PromotionOrg ignored;
    return Call(&Stub::RegisterPromotionOrg, token, req, out != nullptr ? out : &ignored);
  }

  // Registers an eligible organization `id` (by government) and returns it.
  v1::PromotionOrg MakeOrg(const std::string& id, int n) {
    v1::PromotionOrg out;
    grpc::Status s = Register(industry_it_, id, EligibleSpec(n), &out);
    EXPECT_TRUE(s.ok()) << id << ": " << Describe(s);
    return out;
  }

  v1::PromotionOrg GetOrg(const std::string& name) {
    v1::GetPromotionOrgRequest req;
    req.set_name(name);
    v1::PromotionOrg out;
    grpc::Status s = Call(&Stub::GetPromotionOrg, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  grpc::Status Update(const std::string& token, const v1::PromotionOrg& change, const std::vector<std::string>& paths,
                      v1::PromotionOrg* out = nullptr) {
    v1::UpdatePromotionOrgRequest req;
    *req.mutable_promotion_org() = change;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    v1::PromotionOrg ignored;
    return Call(&Stub::UpdatePromotionOrg, token, req, out != nullptr ? out : &ignored);
  }

  v1::EligibilityResult Eligibility(const std::string& name) {
    v1::CheckEligibilityRequest req;
    req.set_name(name);
    v1::EligibilityResult out;
    grpc::Status s = Call(&Stub::CheckEligibility, industry_it_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  // ---------------------------------------------------------------- designations

  grpc::Status Apply(const std::string& token, const std::string& org, const std::string& cluster,
                     Designation* out = nullptr) {
    v1::ApplyForDesignationRequest req;
    req.mutable_designation()->set_promotion_org(org);
    req.mutable_designation()->set_cluster(cluster);
    req.mutable_designation()->set_application_reason("服务集群企业，开展产业监测与供需对接");
    Designation ignored;
    return Call(&Stub::ApplyForDesignation, token, req, out != nullptr ? out : &ignored);
  }

  // Applies for `cluster` as organization `id` (with its own token); the pending designation.
  Designation Applied(const std::string& id, const std::string& cluster) {
    Designation out;
    grpc::Status s = Apply(OrgToken(id), OrgName(id), cluster, &out);
    EXPECT_TRUE(s.ok()) << id << " -> " << cluster << ": " << Describe(s);
    EXPECT_EQ(out.state(), Designation::PENDING);
    return out;
  }

  enum class Decision { kApprove, kReject, kRevoke, kWithdraw };

  grpc::Status Decide(Decision d, const std::string& token, const std::string& name, const std::string& reason,
                      Designation* out = nullptr, const std::string& etag = "") {
    v1::DesignationDecisionRequest req;
    req.set_name(name);
    req.set_reason(reason);
    req.set_etag(etag);
    Designation ignored;
    Designation* resp = out != nullptr ? out : &ignored;
    switch (d) {
      case Decision::kApprove: return Call(&Stub::ApproveDesignation, token, req, resp);
      case Decision::kReject: return Call(&Stub::RejectDesignation, token, req, resp);
      case Decision::kRevoke: return Call(&Stub::RevokeDesignation, token, req, resp);
      case Decision::kWithdraw: return Call(&Stub::WithdrawDesignation, token, req, resp);
    }
    return grpc::Status(Code::INTERNAL, "unreachable");
  }

  Designation GetDesignation(const std::string& name) {
    v1::GetDesignationRequest req;
    req.set_name(name);
    Designation out;
    grpc::Status s = Call(&Stub::GetDesignation, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  std::vector<Designation> ListDesignations(const std::string& filter) {
    std::vector<Designation> all;
    v1::ListDesignationsRequest req;
    req.set_filter(filter);
    req.set_page_size(2);  // exercise paging
    for (int guard = 0; guard < 100; ++guard) {
      v1::ListDesignationsResponse resp;
      grpc::Status s = Call(&Stub::ListDesignations, auditor_, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
      if (!s.ok()) break;
      all.insert(all.end(), resp.designations().begin(), resp.designations().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  std::vector<Designation> ActiveOf(const std::string& cluster) {
    return ListDesignations(absl::StrCat("cluster = \"", cluster, "\" AND state = ACTIVE"));
  }

  // ---------------------------------------------------------------- annual reports

  grpc::Status Submit(const std::string& token, const std::string& cluster, int year, const v1::MonitoringData& m,
                      Report* out = nullptr, const std::string& work_report = "2026年度集群促进工作报告") {
    v1::SubmitAnnualReportRequest req;
    auto* r = req.mutable_annual_report();
    r->set_cluster(cluster);
    r->set_year(year);
    r->set_work_report(work_report);
    *r->mutable_monitoring() = m;
    Report ignored;
    return Call(&Stub::SubmitAnnualReport, token, req, out != nullptr ? out : &ignored);
  }

  grpc::Status UpdateReport(const std::string& token, const Report& change, const std::vector<std::string>& paths,
                            Report* out = nullptr) {
    v1::UpdateAnnualReportRequest req;
    *req.mutable_annual_report() = change;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    Report ignored;
    return Call(&Stub::UpdateAnnualReport, token, req, out != nullptr ? out : &ignored);
  }

  grpc::Status DecideReport(bool accept, const std::string& token, const std::string& name, const std::string& reason,
                            Report* out = nullptr, const std::string& etag = "") {
    v1::AnnualReportDecisionRequest req;
    req.set_name(name);
    req.set_reason(reason);
    req.set_etag(etag);
    Report ignored;
    Report* resp = out != nullptr ? out : &ignored;
    return accept ? Call(&Stub::AcceptAnnualReport, token, req, resp)
                  : Call(&Stub::ReturnAnnualReport, token, req, resp);
  }

  Report GetReport(const std::string& name) {
    v1::GetAnnualReportRequest req;
    req.set_name(name);
    Report out;
    grpc::Status s = Call(&Stub::GetAnnualReport, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  // ---------------------------------------------------------------- funding

  grpc::Status ApplyForFunding(const std::string& token, const std::string& org, const std::string& cluster,
                               int64_t amount, v1::FundingApplication* out = nullptr) {
    v1::ApplyForFundingRequest req;
    req.set_promotion_org(org);
    req.set_cluster(cluster);
    req.set_region(kHohhot);
    req.set_year(kYear);
    req.set_project_name("集群公共服务平台能力建设");
    req.set_amount_fen(amount);
    v1::FundingApplication ignored;
    return Call(&Stub::ApplyForFunding, token, req, out != nullptr ? out : &ignored);
  }

  std::vector<v1::FundingApplication> Funding(const std::string& token, const std::string& org) {
    v1::ListFundingApplicationsRequest req;
    req.set_promotion_org(org);
    v1::ListFundingApplicationsResponse out;
    grpc::Status s = Call(&Stub::ListFundingApplications, token, req, &out);
    EXPECT_TRUE(s.ok()) << org << ": " << Describe(s);
    return {out.applications().begin(), out.applications().end()};
  }

  grpc::Status SupportTransition(grpc::Status (SStub::*method)(grpc::ClientContext*, const sv1::TransitionRequest&,
                                                               sv1::Application*),
                                 const std::string& token, const std::string& name, sv1::Application* out) {
    sv1::TransitionRequest req;
    req.set_name(name);
    req.set_reason("能力建设资金审核");
    return Invoke(sstub_.get(), method, token, req, out);
  }

  // ---------------------------------------------------------------- evaluations

  grpc::Status Evaluate(const std::string& token, const std::string& org, int year, int services, int governance,
                        int finance, int satisfaction, v1::Evaluation* out = nullptr) {
    v1::EvaluatePromotionOrgRequest req;
    req.set_parent(org);
    auto* e = req.mutable_evaluation();
    e->set_year(year);
    e->mutable_scores()->set_services(services);
    e->mutable_scores()->set_governance(governance);
    e->mutable_scores()->set_finance(finance);
    e->mutable_scores()->set_satisfaction(satisfaction);
    e->set_comment("年度考核");
    v1::Evaluation ignored;
    return Call(&Stub::EvaluatePromotionOrg, token, req, out != nullptr ? out : &ignored);
  }

  std::vector<common::v1::AuditEvent> Audit(const std::string& filter) {
    std::vector<common::v1::AuditEvent> all;
    common::v1::ListAuditEventsRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    for (int guard = 0; guard < 100; ++guard) {
      common::v1::ListAuditEventsResponse resp;
      grpc::Status s = Call(&Stub::ListAuditEvents, auditor_, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
      if (!s.ok()) break;
      all.insert(all.end(), resp.events().begin(), resp.events().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  cv1::SeedData seed_;
  int clusters_port_ = 0;
  int markers_ = 0;

  testing::ClustersServer clusters_;
  std::unique_ptr<CStub> cstub_;
  testing::EnterprisesServer enterprises_;
  testing::SupportServer support_;
  std::unique_ptr<SStub> sstub_;

  std::unique_ptr<server::Runtime> prt_;
  std::unique_ptr<clusters::ClusterDirectory> pdirectory_;
  std::unique_ptr<enterprises::EnterpriseDirectory> penterprises_;
  std::unique_ptr<PromotionDomain> pdomain_;
  std::unique_ptr<PromotionServiceImpl> pservice_;
  std::unique_ptr<Stub> stub_;

  const std::string industry_it_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
  const std::string admin_ = testing::MakeToken("root", "agencies/ops", {"admin"});
  const std::string enterprise_ =
      testing::MakeToken("user-e", "enterprises/911501007014567890", {"enterprise"});
  const std::string seed_org_ = OrgToken("hohhot-dairy-promotion");
};

testing::RedisServer* PromotionTest::redis_ = nullptr;

// ------------------------------------------------------------------ seed

TEST_F(PromotionTest, SeedDesignatesTheDairyAssociationToTheDairyCluster) {
  v1::PromotionOrg org = GetOrg(kSeedOrg);
  EXPECT_EQ(org.name(), kSeedOrg);
  EXPECT_EQ(org.display_name_zh(), "内蒙古奶业协会");
  EXPECT_TRUE(org.sample());
  EXPECT_EQ(org.state(), v1::PromotionOrg::ACTIVE);
  EXPECT_EQ(org.legal_form(), v1::ASSOCIATION);
  EXPECT_TRUE(refdata::ValidateUscc(org.uscc()).ok()) << org.uscc();

  std::vector<Designation> active = ActiveOf(kDairy);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].promotion_org(), kSeedOrg);
  EXPECT_EQ(active[0].cluster(), kDairy);
  EXPECT_FALSE(active[0].decision_reason().empty());
  // Only the dairy cluster has a body named by the plan.
  EXPECT_EQ(ListDesignations("state = ACTIVE").size(), 1u);
  EXPECT_TRUE(ListDesignations(absl::StrCat("cluster = \"", kBaotou, "\"")).empty());

  // The clusters service shows it once it has the seed's designation event.
  EXPECT_EQ(WaitForClusterPromotionOrg(kDairy, kSeedOrg, absl::Seconds(10)), kSeedOrg);
  EXPECT_EQ(ClusterPromotionOrg(kBaotou), "");

  // Seeding again creates nothing and designates nothing twice.
  auto again = pdomain_->Seed(seed_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(ActiveOf(kDairy).size(), 1u);
}

// ------------------------------------------------------------------ registration

TEST_F(PromotionTest, RegisterValidatesEveryField) {
  // Credit code: the shared validator's rules, reported on promotion_org.uscc.
  for (const std::string& bad : {std::string(""), OrgUscc(1).substr(0, 17), absl::AsciiStrToLower(OrgUscc(1)),
                                 OrgUscc(1).substr(0, 17) + (OrgUscc(1).back() == '0' ? "1" : "0"),
                                 std::string("51150200MJ00000I1X")}) {
    v1::PromotionOrg spec = EligibleSpec(1);
    spec.set_uscc(bad);
    grpc::Status s = Register(industry_it_, "bad-code", spec);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.uscc")) << bad;
  }

  v1::PromotionOrg spec = EligibleSpec(1);
  spec.set_legal_form(v1::LEGAL_FORM_UNSPECIFIED);
  spec.set_display_name_zh("");
  spec.mutable_founders(0)->set_kind(v1::FOUNDER_KIND_UNSPECIFIED);
  spec.mutable_founders(1)->set_name("");
  spec.mutable_contact()->set_email("not-an-email");
  spec.set_full_time_staff(-1);
  spec.add_services(static_cast<v1::PublicService>(99));
  spec.mutable_governance()->mutable_bylaws_adopted()->set_month(13);
  grpc::Status s = Register(industry_it_, "bad-fields", spec);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(FieldsOf(s),
              UnorderedElementsAre("promotion_org.display_name_zh", "promotion_org.legal_form",
                                   "promotion_org.founders[0].kind", "promotion_org.founders[1].name",
                                   "promotion_org.contact.email", "promotion_org.full_time_staff",
                                   "promotion_org.services[2]", "promotion_org.governance.bylaws_adopted"));

  // The id.
  for (const char* bad_id : {"", "X", "Upper", "a_b", "ends-"}) {
    s = Register(industry_it_, bad_id, EligibleSpec(1));
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << bad_id;
    EXPECT_THAT(FieldsOf(s), Contains("promotion_org_id")) << bad_id;
  }
  // Nothing was stored.
  v1::ListPromotionOrgsResponse list;
  ASSERT_TRUE(Call(&Stub::ListPromotionOrgs, auditor_, v1::ListPromotionOrgsRequest(), &list).ok());
  ASSERT_EQ(list.promotion_orgs_size(), 1);
  EXPECT_EQ(list.promotion_orgs(0).name(), kSeedOrg);
}

TEST_F(PromotionTest, TheBylawsDateMustBeOnTheCalendar) {
  auto with_bylaws = [](int n, int year, int month, int day) {
    v1::PromotionOrg spec = EligibleSpec(n);
    auto* d = spec.mutable_governance()->mutable_bylaws_adopted();
    d->set_year(year);
    d->set_month(month);
    d->set_day(day);
    return spec;
  };
  struct Date {
    int year, month, day;
  };
  for (const Date& d : {Date{2024, 2, 31}, Date{2024, 2, 30}, Date{2023, 2, 29}, Date{2024, 4, 31}, Date{1900, 2, 29}}) {
    grpc::Status s = Register(industry_it_, "dated", with_bylaws(1, d.year, d.month, d.day));
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << d.year << "-" << d.month << "-" << d.day;
    EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.governance.bylaws_adopted"));
  }
  // A leap day in a leap year is a date.
  v1::PromotionOrg leap;
  grpc::Status s = Register(industry_it_, "dated", with_bylaws(1, 2024, 2, 29), &leap);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Updates are checked the same way; the record keeps its date.
  v1::PromotionOrg change = with_bylaws(1, 2025, 2, 29);
  change.set_name(leap.name());
  s = Update(OrgToken("dated"), change, {"governance"});
  EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.governance.bylaws_adopted"));
  EXPECT_EQ(GetOrg(leap.name()).governance().bylaws_adopted().day(), 29);
}

TEST_F(PromotionTest, AFoundersEnterpriseMustBeARegisteredEnterprise) {
  auto estub = ev1::EnterprisesService::NewStub(
      grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));
  const std::string registered = testing::Uscc(501);
  ev1::RegisterEnterpriseRequest reg;
  auto* e = reg.mutable_enterprise();
  e->set_uscc(registered);
  e->set_legal_name_zh("包头稀土高新材料有限公司");
  e->set_region("150200");
  e->set_industry("rare_earth");
  e->set_size_class(ev1::MEDIUM);
  e->set_employees(300);
  ev1::Enterprise enterprise;
  grpc::Status s = Invoke(estub.get(), &ev1::EnterprisesService::Stub::RegisterEnterprise, industry_it_, reg, &enterprise);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // The reference's form: "enterprises/{uscc}" with a valid code, on an ENTERPRISE founder.
  for (const std::string& bad : {std::string("enterprises/123"), std::string("companies/") + registered,
                                 std::string("enterprises/") + absl::AsciiStrToLower(registered), registered}) {
    v1::PromotionOrg spec = EligibleSpec(1);
    spec.mutable_founders(0)->set_enterprise(bad);
    s = Register(industry_it_, "founded", spec);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.founders[0].enterprise")) << bad;
  }
  v1::PromotionOrg university = EligibleSpec(1);
  university.mutable_founders(1)->set_enterprise("enterprises/" + registered);
  s = Register(industry_it_, "founded", university);
  EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.founders[1].enterprise"));

  // Well formed but not registered: refused, naming it.
  const std::string unknown = "enterprises/" + testing::Uscc(502);
  v1::PromotionOrg spec = EligibleSpec(1);
  spec.mutable_founders(0)->set_enterprise(unknown);
  s = Register(industry_it_, "founded", spec);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr(unknown));
  v1::GetPromotionOrgRequest get;
  get.set_name("promotionOrgs/founded");
  v1::PromotionOrg none;
  EXPECT_EQ(Call(&Stub::GetPromotionOrg, auditor_, get, &none).error_code(), Code::NOT_FOUND);

  // Registered: stored.
  v1::PromotionOrg founded;
  spec.mutable_founders(0)->set_enterprise("enterprises/" + registered);
  s = Register(industry_it_, "founded", spec, &founded);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(founded.founders(0).enterprise(), "enterprises/" + registered);

  // An update is checked the same way and changes nothing when refused.
  v1::PromotionOrg change;
  change.set_name(founded.name());
  *change.mutable_founders() = founded.founders();
  change.mutable_founders(0)->set_enterprise(unknown);
  s = Update(OrgToken("founded"), change, {"founders"});
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_EQ(GetOrg(founded.name()).founders(0).enterprise(), "enterprises/" + registered);
}

TEST_F(PromotionTest, TheSeedRecordHoldsOnlyWhatThePlanStatesAndSaysTheRestIsNotRecorded) {
  v1::PromotionOrg org = GetOrg(kSeedOrg);
  EXPECT_TRUE(org.sample());
  EXPECT_TRUE(org.incomplete());
  // Nothing invented: no governance, staff, income or services the plan does not state.
  EXPECT_EQ(org.governance().legal_representative(), "");
  EXPECT_FALSE(org.governance().has_bylaws_adopted());
  EXPECT_EQ(org.full_time_staff(), 0);
  EXPECT_EQ(org.income_sources_size(), 0);
  EXPECT_EQ(org.services_size(), 0);
  // Its eligibility says the data is not recorded rather than failed.
  v1::EligibilityResult r = Eligibility(kSeedOrg);
  EXPECT_FALSE(r.eligible());
  for (const auto& c : r.criteria()) {
    EXPECT_FALSE(c.met()) << c.code();
    EXPECT_THAT(c.reason(), HasSubstr("not recorded")) << c.code();
  }

  // Once the organization records its data, it is checked like any other.
  v1::PromotionOrg data = EligibleSpec(7);
  data.set_name(kSeedOrg);
  v1::PromotionOrg partly;
  grpc::Status s = Update(seed_org_, data, {"governance"}, &partly);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(partly.incomplete());
  v1::PromotionOrg completed;
  s = Update(seed_org_, data, {"independent_legal_person", "full_time_staff", "income_sources", "services"},
             &completed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_FALSE(completed.incomplete());
  EXPECT_TRUE(completed.sample());
  r = Eligibility(kSeedOrg);
  EXPECT_TRUE(r.eligible());
  for (const auto& c : r.criteria()) EXPECT_THAT(c.reason(), Not(HasSubstr("not recorded"))) << c.code();
}

TEST_F(PromotionTest, RegisterAuthorizationAndDuplicates) {
  // An organization registers itself...
  v1::PromotionOrg x;
  grpc::Status s = Register(OrgToken("x-assoc"), "x-assoc", EligibleSpec(1), &x);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(x.name(), "promotionOrgs/x-assoc");
  EXPECT_EQ(x.state(), v1::PromotionOrg::ACTIVE);
  EXPECT_FALSE(x.sample());
  EXPECT_FALSE(x.etag().empty());
  EXPECT_TRUE(x.has_create_time());
  // ... not another one.
  s = Register(OrgToken("x-assoc"), "y-assoc", EligibleSpec(2));
  EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  // Enterprises and auditors never register; government and admins may.
  EXPECT_EQ(Register(enterprise_, "y-assoc", EligibleSpec(2)).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Register(auditor_, "y-assoc", EligibleSpec(2)).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Register("", "y-assoc", EligibleSpec(2)).error_code(), Code::UNAUTHENTICATED);
  s = Register(energy_, "y-assoc", EligibleSpec(2));
  EXPECT_TRUE(s.ok()) << Describe(s);
  s = Register(admin_, "z-assoc", EligibleSpec(3));
  EXPECT_TRUE(s.ok()) << Describe(s);

  // Output-only fields are the service's.
  v1::PromotionOrg sneaky = EligibleSpec(4);
  sneaky.set_sample(true);
  sneaky.set_incomplete(true);
  sneaky.set_state(v1::PromotionOrg::DEREGISTERED);
  v1::PromotionOrg w;
  ASSERT_TRUE(Register(industry_it_, "w-assoc", sneaky, &w).ok());
  EXPECT_FALSE(w.sample());
  EXPECT_FALSE(w.incomplete());
  EXPECT_EQ(w.state(), v1::PromotionOrg::ACTIVE);

  // Duplicates: the same id, the same credit code (another id), the seed's credit code.
  s = Register(industry_it_, "x-assoc", EligibleSpec(9));
  EXPECT_EQ(s.error_code(), Code::ALREADY_EXISTS) << Describe(s);
  s = Register(industry_it_, "x-copy", EligibleSpec(1));
  EXPECT_EQ(s.error_code(), Code::ALREADY_EXISTS) << Describe(s);
  v1::PromotionOrg seed_copy = EligibleSpec(9);
  seed_copy.set_uscc(GetOrg(kSeedOrg).uscc());
  EXPECT_EQ(Register(industry_it_, "seed-copy", seed_copy).error_code(), Code::ALREADY_EXISTS);
  // The first registration is unchanged.
  v1::PromotionOrg still = GetOrg("promotionOrgs/x-assoc");
  EXPECT_EQ(still.uscc(), OrgUscc(1));
  EXPECT_EQ(still.etag(), x.etag());

  // Get/List.
  v1::GetPromotionOrgRequest get;
  get.set_name("promotionOrgs/nobody");
  v1::PromotionOrg ignored;
  EXPECT_EQ(Call(&Stub::GetPromotionOrg, auditor_, get, &ignored).error_code(), Code::NOT_FOUND);
  get.set_name("orgs/x-assoc");
  EXPECT_EQ(Call(&Stub::GetPromotionOrg, auditor_, get, &ignored).error_code(), Code::INVALID_ARGUMENT);
  v1::ListPromotionOrgsRequest list_req;
  list_req.set_filter(absl::StrCat("uscc = \"", OrgUscc(2), "\""));
  v1::ListPromotionOrgsResponse list;
  ASSERT_TRUE(Call(&Stub::ListPromotionOrgs, auditor_, list_req, &list).ok());
  ASSERT_EQ(list.promotion_orgs_size(), 1);
  EXPECT_EQ(list.promotion_orgs(0).name(), "promotionOrgs/y-assoc");
}

TEST_F(PromotionTest, UpdateAppliesOnlyTheMaskAndChecksTheEtag) {
  v1::PromotionOrg x = MakeOrg("x-assoc", 1);
  MakeOrg("y-assoc", 2);

  v1::PromotionOrg change;
  change.set_name(x.name());
  change.set_full_time_staff(12);
  change.set_display_name_zh("不应改变");  // not in the mask
  change.set_etag(x.etag());
  v1::PromotionOrg updated;
  grpc::Status s = Update(OrgToken("x-assoc"), change, {"full_time_staff"}, &updated);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(updated.full_time_staff(), 12);
  EXPECT_EQ(updated.display_name_zh(), x.display_name_zh());
  EXPECT_EQ(updated.uscc(), x.uscc());
  EXPECT_EQ(updated.governance().legal_representative(), x.governance().legal_representative());
  EXPECT_NE(updated.etag(), x.etag());
  EXPECT_EQ(GetOrg(x.name()).full_time_staff(), 12);

  // A stale etag: ABORTED, nothing changes.
  change.set_full_time_staff(20);
  s = Update(OrgToken("x-assoc"), change, {"full_time_staff"});
  EXPECT_EQ(s.error_code(), Code::ABORTED) << Describe(s);
  EXPECT_EQ(GetOrg(x.name()).full_time_staff(), 12);

  // Unknown or output-only paths.
  change.set_etag("");
  for (const char* path : {"state", "sample", "name", "etag", "bogus"}) {
    s = Update(OrgToken("x-assoc"), change, {path});
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << path;
    EXPECT_THAT(FieldsOf(s), ElementsAre("update_mask")) << path;
  }
  // The updated record is validated as a registration is.
  v1::PromotionOrg bad;
  bad.set_name(x.name());
  bad.mutable_contact()->set_email("nope");
  s = Update(OrgToken("x-assoc"), bad, {"contact"});
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.contact.email"));
  bad.set_uscc("51150200MJ0000001Z");
  s = Update(OrgToken("x-assoc"), bad, {"uscc"});
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("promotion_org.uscc"));
  // Another organization's credit code.
  bad.set_uscc(OrgUscc(2));
  EXPECT_EQ(Update(OrgToken("x-assoc"), bad, {"uscc"}).error_code(), Code::ALREADY_EXISTS);
  // Clearing a message field through the mask.
  v1::PromotionOrg clear;
  clear.set_name(x.name());
  ASSERT_TRUE(Update(OrgToken("x-assoc"), clear, {"governance"}, &updated).ok());
  EXPECT_FALSE(updated.has_governance());

  // Only the organization itself (or an admin) updates it.
  change.set_etag("");
  for (const std::string* token : {&industry_it_, &auditor_, &enterprise_}) {
    EXPECT_EQ(Update(*token, change, {"full_time_staff"}).error_code(), Code::PERMISSION_DENIED);
  }
  EXPECT_EQ(Update(OrgToken("y-assoc"), change, {"full_time_staff"}).error_code(), Code::PERMISSION_DENIED);
  ASSERT_TRUE(Update(admin_, change, {"full_time_staff"}, &updated).ok());
  EXPECT_EQ(updated.full_time_staff(), 20);
  change.set_name("promotionOrgs/nobody");
  EXPECT_EQ(Update(admin_, change, {"full_time_staff"}).error_code(), Code::NOT_FOUND);
}

// ------------------------------------------------------------------ eligibility

TEST_F(PromotionTest, EligibilityReportsEachCriterionWithItsReason) {
  v1::PromotionReferenceData ref;
  ASSERT_TRUE(Call(&Stub::GetReferenceData, auditor_, v1::GetPromotionReferenceDataRequest(), &ref).ok());
  std::vector<std::string> codes;
  for (const auto& c : ref.eligibility_criteria()) codes.push_back(c.code());
  EXPECT_THAT(codes, ElementsAre("independent_legal_person", "bylaws", "legal_representative", "min_full_time_staff",
                                 "stable_income", "public_services"));
  int weight_sum = 0;
  for (const auto& w : ref.evaluation_weights()) weight_sum += w.weight_bp();
  EXPECT_EQ(weight_sum, 10000);

  // Eligible: every criterion met.
  MakeOrg("good", 1);
  v1::EligibilityResult r = Eligibility("promotionOrgs/good");
  EXPECT_EQ(r.promotion_org(), "promotionOrgs/good");
  EXPECT_TRUE(r.eligible());
  ASSERT_EQ(r.criteria_size(), 6);
  for (const auto& c : r.criteria()) {
    EXPECT_TRUE(c.met()) << c.code() << ": " << c.reason();
    EXPECT_FALSE(c.title_zh().empty()) << c.code();
    EXPECT_FALSE(c.reason().empty()) << c.code();
  }
  EXPECT_THAT(FindCriterion(r, "bylaws")->reason(), HasSubstr("2024"));

  // Two staff and no bylaws date: exactly those two unmet.
  v1::PromotionOrg spec = EligibleSpec(2);
  spec.set_full_time_staff(2);
  spec.mutable_governance()->clear_bylaws_adopted();
  ASSERT_TRUE(Register(industry_it_, "small", spec).ok());
  r = Eligibility("promotionOrgs/small");
  EXPECT_FALSE(r.eligible());
  std::vector<std::string> unmet;
  for (const auto& c : r.criteria()) {
    if (!c.met()) unmet.push_back(c.code());
  }
  EXPECT_THAT(unmet, UnorderedElementsAre("min_full_time_staff", "bylaws"));
  EXPECT_THAT(FindCriterion(r, "min_full_time_staff")->reason(), AllOf(HasSubstr("2 full-time staff"), HasSubstr("3")));
  EXPECT_THAT(FindCriterion(r, "bylaws")->reason(), HasSubstr("no bylaws"));

  // Exactly three staff is enough.
  spec = EligibleSpec(3);
  spec.set_full_time_staff(3);
  ASSERT_TRUE(Register(industry_it_, "three", spec).ok());
  EXPECT_TRUE(FindCriterion(Eligibility("promotionOrgs/three"), "min_full_time_staff")->met());

  // The other criteria, one at a time.
  struct Case {
    const char* id;
    const char* code;
    void (*spoil)(v1::PromotionOrg&);
  };
  const Case cases[] = {
      {"not-legal", "independent_legal_person", [](v1::PromotionOrg& o) { o.set_independent_legal_person(false); }},
      {"no-rep", "legal_representative",
       [](v1::PromotionOrg& o) { o.mutable_governance()->clear_legal_representative(); }},
      // Grants and donations are not a stable income; fees or service income are.
      {"grants-only", "stable_income",
       [](v1::PromotionOrg& o) {
         o.clear_income_sources();
         o.add_income_sources(v1::GRANTS);
         o.add_income_sources(v1::DONATIONS);
       }},
      {"no-services", "public_services", [](v1::PromotionOrg& o) { o.clear_services(); }},
  };
  int n = 10;
  for (const Case& c : cases) {
    v1::PromotionOrg o = EligibleSpec(n++);
    c.spoil(o);
    grpc::Status s = Register(industry_it_, c.id, o);
    ASSERT_TRUE(s.ok()) << c.id << ": " << Describe(s);
    r = Eligibility(OrgName(c.id));
    EXPECT_FALSE(r.eligible()) << c.id;
    for (const auto& criterion : r.criteria()) {
      EXPECT_EQ(criterion.met(), criterion.code() != c.code) << c.id << " " << criterion.code();
    }
  }
  v1::PromotionOrg service_income = EligibleSpec(n++);
  service_income.clear_income_sources();
  service_income.add_income_sources(v1::SERVICE_INCOME);
  ASSERT_TRUE(Register(industry_it_, "service-income", service_income).ok());
  EXPECT_TRUE(Eligibility("promotionOrgs/service-income").eligible());

  // The seed body is designated by the plan, but as recorded it meets fewer criteria.
  EXPECT_FALSE(Eligibility(kSeedOrg).eligible());

  // An ineligible organization cannot apply; the error lists what is unmet.
  grpc::Status s = Apply(OrgToken("small"), "promotionOrgs/small", kBaotou);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("min_full_time_staff"), HasSubstr("bylaws"),
                                       Not(HasSubstr("legal_representative"))));
  EXPECT_TRUE(ListDesignations(absl::StrCat("cluster = \"", kBaotou, "\"")).empty());
  // Once it meets them, it may.
  v1::PromotionOrg fix;
  fix.set_name("promotionOrgs/small");
  fix.set_full_time_staff(4);
  fix.mutable_governance()->set_legal_representative("赵敏");
  fix.mutable_governance()->mutable_bylaws_adopted()->set_year(2025);
  fix.mutable_governance()->mutable_bylaws_adopted()->set_month(1);
  fix.mutable_governance()->mutable_bylaws_adopted()->set_day(8);
  ASSERT_TRUE(Update(OrgToken("small"), fix, {"full_time_staff", "governance"}).ok());
  EXPECT_TRUE(Eligibility("promotionOrgs/small").eligible());
  Designation d;
  s = Apply(OrgToken("small"), "promotionOrgs/small", kBaotou, &d);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Eligibility is checked again at approval: staff left meanwhile.
  fix.set_full_time_staff(1);
  ASSERT_TRUE(Update(OrgToken("small"), fix, {"full_time_staff"}).ok());
  s = Decide(Decision::kApprove, industry_it_, d.name(), "同意");
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("no longer eligible"));
  EXPECT_EQ(GetDesignation(d.name()).state(), Designation::PENDING);
  EXPECT_EQ(ClusterPromotionOrg(kBaotou), "");

  v1::CheckEligibilityRequest missing;
  missing.set_name("promotionOrgs/nobody");
  EXPECT_EQ(Call(&Stub::CheckEligibility, auditor_, missing, &r).error_code(), Code::NOT_FOUND);
}

// ------------------------------------------------------------------ designation

TEST_F(PromotionTest, DesignationFlowApproveReplaceRevoke) {
  MakeOrg("first", 1);
  MakeOrg("second", 2);
  ASSERT_EQ(ClusterPromotionOrg(kBaotou), "");

  // Apply: pending; a second pending application by the same organization is a duplicate.
  Designation d1 = Applied("first", kBaotou);
  EXPECT_EQ(d1.promotion_org(), "promotionOrgs/first");
  EXPECT_EQ(d1.cluster(), kBaotou);
  EXPECT_EQ(d1.applied_by().organization(), "promotionOrgs/first");
  EXPECT_TRUE(d1.has_apply_time());
  EXPECT_EQ(Apply(OrgToken("first"), "promotionOrgs/first", kBaotou).error_code(), Code::ALREADY_EXISTS);
  // Only for itself; the cluster must exist.
  EXPECT_EQ(Apply(OrgToken("second"), "promotionOrgs/first", kBaotou).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Apply(industry_it_, "promotionOrgs/first", kBaotou).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Apply(OrgToken("first"), "promotionOrgs/first", "clusters/no-such-cluster").error_code(),
            Code::NOT_FOUND);
  grpc::Status s = Apply(OrgToken("first"), "promotionOrgs/first", "baotou");
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("designation.cluster"));
  EXPECT_EQ(Apply(OrgToken("ghost"), "promotionOrgs/ghost", kBaotou).error_code(), Code::NOT_FOUND);

  // Only the cluster's lead department (industry_it) decides; energy does not lead Baotou.
  s = Decide(Decision::kApprove, energy_, d1.name(), "同意");
  EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  EXPECT_EQ(Decide(Decision::kApprove, OrgToken("first"), d1.name(), "同意").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Decide(Decision::kApprove, auditor_, d1.name(), "同意").error_code(), Code::PERMISSION_DENIED);
  // A reason is required; a stale etag is refused.
  s = Decide(Decision::kApprove, industry_it_, d1.name(), "");
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d1.name(), "同意", nullptr, "W/\"99\"").error_code(),
            Code::ABORTED);
  EXPECT_EQ(GetDesignation(d1.name()).state(), Designation::PENDING);
  EXPECT_EQ(ClusterPromotionOrg(kBaotou), "");

  // Approve: ACTIVE, and the clusters service shows it once it has the event.
  Designation approved;
  s = Decide(Decision::kApprove, industry_it_, d1.name(), "符合条件，同意确立", &approved, d1.etag());
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(approved.state(), Designation::ACTIVE);
  EXPECT_EQ(approved.decision_reason(), "符合条件，同意确立");
  EXPECT_EQ(approved.decided_by().organization(), "departments/industry_it");
  EXPECT_TRUE(approved.has_decide_time());
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/first"), "promotionOrgs/first");
  // The active organization applying again: FAILED_PRECONDITION (it already serves).
  EXPECT_EQ(Apply(OrgToken("first"), "promotionOrgs/first", kBaotou).error_code(), Code::FAILED_PRECONDITION);
  // Illegal transitions from ACTIVE.
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d1.name(), "again").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kReject, industry_it_, d1.name(), "no").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kWithdraw, OrgToken("first"), d1.name(), "").error_code(), Code::FAILED_PRECONDITION);

  // A second organization is approved: the first ENDS, the cluster shows the second.
  Designation d2 = Applied("second", kBaotou);
  s = Decide(Decision::kApprove, industry_it_, d2.name(), "改由第二家承担", &approved);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(approved.state(), Designation::ACTIVE);
  Designation ended = GetDesignation(d1.name());
  EXPECT_EQ(ended.state(), Designation::ENDED);
  EXPECT_TRUE(ended.has_end_time());
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/second"), "promotionOrgs/second");
  std::vector<Designation> active = ActiveOf(kBaotou);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].name(), d2.name());
  // An ENDED designation cannot be revoked or approved again.
  EXPECT_EQ(Decide(Decision::kRevoke, industry_it_, d1.name(), "x").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d1.name(), "x").error_code(), Code::FAILED_PRECONDITION);

  // Revoke: the lead department, with a reason; the cluster shows none.
  EXPECT_EQ(Decide(Decision::kRevoke, energy_, d2.name(), "撤销").error_code(), Code::PERMISSION_DENIED);
  s = Decide(Decision::kRevoke, industry_it_, d2.name(), "");
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  Designation revoked;
  s = Decide(Decision::kRevoke, industry_it_, d2.name(), "考核不合格，撤销", &revoked);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(revoked.state(), Designation::REVOKED);
  EXPECT_EQ(revoked.decision_reason(), "考核不合格，撤销");
  EXPECT_TRUE(revoked.has_end_time());
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, ""), "");
  EXPECT_TRUE(ActiveOf(kBaotou).empty());
  EXPECT_EQ(Decide(Decision::kRevoke, industry_it_, d2.name(), "again").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d2.name(), "again").error_code(), Code::FAILED_PRECONDITION);

  // Reject: the lead department, with a reason.
  Designation d3 = Applied("first", kBaotou);
  s = Decide(Decision::kReject, industry_it_, d3.name(), "");
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  EXPECT_EQ(Decide(Decision::kReject, energy_, d3.name(), "不同意").error_code(), Code::PERMISSION_DENIED);
  Designation rejected;
  ASSERT_TRUE(Decide(Decision::kReject, industry_it_, d3.name(), "材料不全", &rejected).ok());
  EXPECT_EQ(rejected.state(), Designation::REJECTED);
  EXPECT_EQ(rejected.decision_reason(), "材料不全");
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d3.name(), "x").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kWithdraw, OrgToken("first"), d3.name(), "").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(ClusterPromotionOrg(kBaotou), "");

  // Withdraw: only the applicant (no reason needed); then nothing else applies.
  Designation d4 = Applied("first", kBaotou);
  EXPECT_EQ(Decide(Decision::kWithdraw, OrgToken("second"), d4.name(), "").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Decide(Decision::kWithdraw, industry_it_, d4.name(), "").error_code(), Code::PERMISSION_DENIED);
  Designation withdrawn;
  ASSERT_TRUE(Decide(Decision::kWithdraw, OrgToken("first"), d4.name(), "", &withdrawn).ok());
  EXPECT_EQ(withdrawn.state(), Designation::WITHDRAWN);
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d4.name(), "x").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kRevoke, industry_it_, d4.name(), "x").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(Decision::kWithdraw, OrgToken("first"), d4.name(), "").error_code(), Code::FAILED_PRECONDITION);
  // After a withdrawal it may apply again.
  Applied("first", kBaotou);

  // Unknown or malformed names.
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, "designations/9999", "x").error_code(), Code::NOT_FOUND);
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, "designations/abc", "x").error_code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, "designations/007", "x").error_code(), Code::INVALID_ARGUMENT);

  // The history of the cluster, by state and organization.
  const std::string of_baotou = absl::StrCat("cluster = \"", kBaotou, "\"");
  EXPECT_EQ(ListDesignations(of_baotou).size(), 5u);
  EXPECT_EQ(ListDesignations(of_baotou + " AND state = ENDED").size(), 1u);
  EXPECT_EQ(ListDesignations(of_baotou + " AND state = REVOKED").size(), 1u);
  EXPECT_EQ(ListDesignations(of_baotou + " AND state = PENDING").size(), 1u);
  EXPECT_EQ(ListDesignations("promotion_org = \"promotionOrgs/first\"").size(), 4u);
  // The dairy cluster was untouched throughout.
  EXPECT_EQ(ActiveOf(kDairy).size(), 1u);
  EXPECT_EQ(WaitForClusterPromotionOrg(kDairy, kSeedOrg, absl::Seconds(10)), kSeedOrg);
}

TEST_F(PromotionTest, ALeadDepartmentDecidesOnlyForItsClusters) {
  MakeOrg("hydro", 1);
  Designation d = Applied("hydro", kHydrogen);
  // Hydrogen is led by energy, not industry_it.
  EXPECT_EQ(Decide(Decision::kApprove, industry_it_, d.name(), "同意").error_code(), Code::PERMISSION_DENIED);
  Designation approved;
  grpc::Status s = Decide(Decision::kApprove, energy_, d.name(), "同意", &approved);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(approved.state(), Designation::ACTIVE);
  EXPECT_EQ(WaitForClusterPromotionOrg(kHydrogen, "promotionOrgs/hydro"), "promotionOrgs/hydro");
  EXPECT_EQ(Decide(Decision::kRevoke, industry_it_, d.name(), "撤销").error_code(), Code::PERMISSION_DENIED);
  ASSERT_TRUE(Decide(Decision::kRevoke, energy_, d.name(), "撤销").ok());
  EXPECT_EQ(WaitForClusterPromotionOrg(kHydrogen, ""), "");
}

TEST_F(PromotionTest, ConcurrentApprovalsLeaveExactlyOneActive) {
  MakeOrg("alpha", 1);
  MakeOrg("beta", 2);
  for (const char* cluster : {kBaotou, "clusters/fine-chemicals", "clusters/biomedicine"}) {
    SCOPED_TRACE(cluster);
    Designation a = Applied("alpha", cluster);
    Designation b = Applied("beta", cluster);

    std::atomic<int> ready{0};
    grpc::Status sa, sb;
    Designation ra, rb;
    auto approve = [&](const Designation& d, grpc::Status* s, Designation* out) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      *s = Decide(Decision::kApprove, industry_it_, d.name(), "同意确立", out);
    };
    std::thread ta(approve, std::cref(a), &sa, &ra);
    std::thread tb(approve, std::cref(b), &sb, &rb);
    ta.join();
    tb.join();
    // Both approvals commit, one after the other: the later one ends the earlier one.
    ASSERT_TRUE(sa.ok()) << Describe(sa);
    ASSERT_TRUE(sb.ok()) << Describe(sb);

    std::vector<Designation> active = ActiveOf(cluster);
    ASSERT_EQ(active.size(), 1u);
    const bool alpha_won = active[0].name() == a.name();
    const Designation& winner = alpha_won ? a : b;
    const Designation& loser = alpha_won ? b : a;
    EXPECT_EQ(active[0].name(), winner.name());
    Designation lost = GetDesignation(loser.name());
    EXPECT_EQ(lost.state(), Designation::ENDED);
    EXPECT_TRUE(lost.has_end_time());
    EXPECT_EQ(GetDesignation(winner.name()).state(), Designation::ACTIVE);
    EXPECT_EQ(ListDesignations(absl::StrCat("cluster = \"", cluster, "\" AND state = ENDED")).size(), 1u);
    // The clusters service converges on the winner.
    EXPECT_EQ(WaitForClusterPromotionOrg(cluster, winner.promotion_org(), absl::Seconds(10)),
              winner.promotion_org());
    // And stays there: the loser's events are older than the winner's.
    ASSERT_NO_FATAL_FAILURE(WaitForClustersToCatchUp());
    EXPECT_EQ(ClusterPromotionOrg(cluster), winner.promotion_org());
  }
}

TEST_F(PromotionTest, ApprovalCommitsWhileClustersIsDownAndTheClusterCatchesUp) {
  MakeOrg("resilient", 1);
  ASSERT_EQ(WaitForClusterPromotionOrg(kDairy, kSeedOrg, absl::Seconds(10)), kSeedOrg);
  // Applying looks the cluster up (and caches it): the approval's lead-department check can be
  // answered while the clusters service is away (once the clusters' seed events, which drop
  // cached answers, are behind the directory).
  ASSERT_NO_FATAL_FAILURE(WaitForDirectoryToCatchUp());
  Designation d = Applied("resilient", kBaotou);

  StopClusters();
  Designation approved;
  grpc::Status s = Decide(Decision::kApprove, industry_it_, d.name(), "同意确立", &approved);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(approved.state(), Designation::ACTIVE);
  ASSERT_EQ(ActiveOf(kBaotou).size(), 1u);

  // The event waits in the promotion stream; the restarted clusters service applies it.
  ASSERT_NO_FATAL_FAILURE(StartClusters(clusters_port_, /*seed=*/false));
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/resilient", absl::Seconds(30)),
            "promotionOrgs/resilient");
  EXPECT_EQ(ClusterPromotionOrg(kDairy), kSeedOrg);

  // A revocation while it is down is caught up the same way. (The designation's ClusterChanged
  // dropped the cached cluster: the directory looks it up again first.)
  ASSERT_NO_FATAL_FAILURE(WaitForDirectoryToCatchUp());
  server::CallContext call;
  call.principal = Principal{"audit.one", "agencies/audit", {"auditor"}};
  call.own_token = auditor_;
  ASSERT_TRUE(pdirectory_->Lookup(call, kBaotou).ok());
  StopClusters();
  ASSERT_TRUE(Decide(Decision::kRevoke, industry_it_, d.name(), "撤销").ok());
  EXPECT_TRUE(ActiveOf(kBaotou).empty());
  ASSERT_NO_FATAL_FAILURE(StartClusters(clusters_port_, /*seed=*/false));
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, "", absl::Seconds(30)), "");
}

// The clusters service applies a designation event once, ignores one about a designation older
// than the one it follows, and audits what it applied under the event's actor.
TEST_F(PromotionTest, TheClusterRecordFollowsOnlyNewerDesignationsAndEachOnce) {
  MakeOrg("first", 1);
  MakeOrg("second", 2);
  Designation d1 = Applied("first", kBaotou);
  ASSERT_TRUE(Decide(Decision::kApprove, industry_it_, d1.name(), "同意").ok());
  ASSERT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/first"), "promotionOrgs/first");
  Designation d2 = Applied("second", kBaotou);
  ASSERT_TRUE(Decide(Decision::kApprove, industry_it_, d2.name(), "改由第二家承担").ok());
  ASSERT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/second"), "promotionOrgs/second");
  const cv1::Cluster before = GetCluster(kBaotou);

  // The stream holds the supersession of d1 and the designation of d2.
  const std::string revoked_d1 = StreamEntry("PromotionOrgDesignationRevoked", d1.name());
  const std::string designated_d2 = StreamEntry("PromotionOrgDesignated", d2.name());
  ASSERT_FALSE(revoked_d1.empty());
  ASSERT_FALSE(designated_d2.empty());
  // Delivered again (same event id): recorded as processed, skipped.
  Republish(designated_d2, /*new_id=*/false);
  // The same designation under a new event id: not newer than the one followed, ignored.
  Republish(designated_d2, /*new_id=*/true);
  // The superseded designation's revocation arriving late: it must not clear d2.
  Republish(revoked_d1, /*new_id=*/true);
  ASSERT_NO_FATAL_FAILURE(WaitForClustersToCatchUp());
  const cv1::Cluster after = GetCluster(kBaotou);
  EXPECT_EQ(after.promotion_organization(), "promotionOrgs/second");
  EXPECT_EQ(after.etag(), before.etag());

  // Each applied change is audited as the event, under the lead department who decided.
  common::v1::ListAuditEventsRequest audit;
  audit.set_filter(absl::StrCat("resource = \"", kBaotou, "\""));
  audit.set_page_size(100);
  common::v1::ListAuditEventsResponse trail;
  grpc::Status s = Invoke(cstub_.get(), &CStub::ListAuditEvents, auditor_, audit, &trail);
  ASSERT_TRUE(s.ok()) << Describe(s);
  int designated = 0, superseded = 0;
  for (const auto& e : trail.events()) {
    if (e.method() == "Event:PromotionOrgDesignated") {
      ++designated;
      EXPECT_EQ(e.actor().subject(), "wang.li");
    }
    if (e.method() == "Event:PromotionOrgDesignationRevoked") ++superseded;
  }
  // first, then second; the supersession of first did not clear anything twice (second followed it
  // in the same commit, so at most one clear was applied before second arrived).
  EXPECT_EQ(designated, 2);
  EXPECT_LE(superseded, 1);

  // A revocation of the designation followed clears it, once.
  ASSERT_TRUE(Decide(Decision::kRevoke, industry_it_, d2.name(), "撤销").ok());
  EXPECT_EQ(WaitForClusterPromotionOrg(kBaotou, ""), "");
  const std::string revoked_d2 = StreamEntry("PromotionOrgDesignationRevoked", d2.name());
  ASSERT_FALSE(revoked_d2.empty());
  const cv1::Cluster cleared = GetCluster(kBaotou);
  Republish(revoked_d2, /*new_id=*/true);
  Republish(designated_d2, /*new_id=*/true);  // older than the revocation followed: ignored
  ASSERT_NO_FATAL_FAILURE(WaitForClustersToCatchUp());
  EXPECT_EQ(GetCluster(kBaotou).etag(), cleared.etag());
  EXPECT_EQ(ClusterPromotionOrg(kBaotou), "");
}

// Cached cluster answers (TTL 60 s) are dropped as soon as the change's event is consumed, in the
// promotion and support services alike.
TEST_F(PromotionTest, DirectoryCachesDropAChangedClusterAtOnce) {
  server::CallContext call;
  call.principal = Principal{"audit.one", "agencies/audit", {"auditor"}};
  call.own_token = auditor_;
  auto lookup_departments = [&](clusters::ClusterDirectory& directory) {
    auto cluster = directory.Lookup(call, kBaotou);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    return cluster.ok() ? std::vector<std::string>(cluster->lead_departments().begin(),
                                                   cluster->lead_departments().end())
                        : std::vector<std::string>();
  };
  const std::vector<std::string> departments = lookup_departments(*pdirectory_);
  ASSERT_EQ(lookup_departments(support_.cluster_directory()), departments);
  ASSERT_EQ(std::count(departments.begin(), departments.end(), "energy"), 0);

  // The lead departments change in the clusters service.
  cv1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name(kBaotou);
  for (const auto& d : departments) update.mutable_cluster()->add_lead_departments(d);
  update.mutable_cluster()->add_lead_departments("energy");
  update.mutable_update_mask()->add_paths("lead_departments");
  cv1::Cluster updated;
  grpc::Status s = Invoke(cstub_.get(), &CStub::UpdateCluster, admin_, update, &updated);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // Both caches answer the new record well within the TTL.
  auto fresh = [&](clusters::ClusterDirectory& directory) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::vector<std::string> got = lookup_departments(directory);
    while (std::count(got.begin(), got.end(), "energy") == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      got = lookup_departments(directory);
    }
    return std::count(got.begin(), got.end(), "energy") == 1;
  };
  EXPECT_TRUE(fresh(*pdirectory_)) << "promotion's cached cluster outlived its change";
  EXPECT_TRUE(fresh(support_.cluster_directory())) << "support's cached cluster outlived its change";
}

// ------------------------------------------------------------------ annual reports

TEST_F(PromotionTest, AnnualReportsSubmissionCorrectionAndAcceptance) {
  MakeOrg("other", 1);
  // 4e15 fen output and 3.2e14 fen R&D: 800 bp, computed without overflowing 64 bits.
  const v1::MonitoringData m = Monitoring(4000000000000000, 320000000000000);

  // Only the designated organization of that cluster submits.
  grpc::Status s = Submit(OrgToken("other"), kDairy, kYear, m);
  EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  EXPECT_EQ(Submit(industry_it_, kDairy, kYear, m).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Submit(enterprise_, kDairy, kYear, m).error_code(), Code::PERMISSION_DENIED);
  // The dairy association does not serve Baotou.
  EXPECT_EQ(Submit(seed_org_, kBaotou, kYear, m).error_code(), Code::PERMISSION_DENIED);

  // Validation.
  v1::MonitoringData bad = m;
  (*bad.mutable_certifications())["NOT_A_KIND"] = 3;
  s = Submit(seed_org_, kDairy, kYear, bad);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("annual_report.monitoring.certifications[NOT_A_KIND]"));
  bad = m;
  (*bad.mutable_certifications())["CERTIFICATION_KIND_UNSPECIFIED"] = 1;
  EXPECT_EQ(Submit(seed_org_, kDairy, kYear, bad).error_code(), Code::INVALID_ARGUMENT);
  bad = m;
  bad.set_patents(-1);
  bad.set_rd_spend_fen(-5);
  s = Submit(seed_org_, kDairy, kYear, bad);
  EXPECT_THAT(FieldsOf(s),
              UnorderedElementsAre("annual_report.monitoring.patents", "annual_report.monitoring.rd_spend_fen"));
  s = Submit(seed_org_, kDairy, 1999, m);
  EXPECT_THAT(FieldsOf(s), ElementsAre("annual_report.year"));
  s = Submit(seed_org_, kDairy, kYear, m, nullptr, "");
  EXPECT_THAT(FieldsOf(s), ElementsAre("annual_report.work_report"));

  // Submitted: the intensity is computed, whatever the caller sent.
  v1::MonitoringData sent = m;
  sent.set_rd_intensity_bp(1);
  Report r;
  s = Submit(seed_org_, kDairy, kYear, sent, &r);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(r.name(), "annualReports/hohhot-dairy-2026");
  EXPECT_EQ(r.promotion_org(), kSeedOrg);
  EXPECT_EQ(r.state(), Report::SUBMITTED);
  EXPECT_EQ(r.monitoring().rd_intensity_bp(), 800);
  EXPECT_EQ(r.monitoring().certifications().at("HIGH_TECH"), 21);
  EXPECT_EQ(r.monitoring().employment(), 38000);
  EXPECT_TRUE(r.has_submit_time());

  // One per cluster-year; another year is another report.
  s = Submit(seed_org_, kDairy, kYear, m);
  EXPECT_EQ(s.error_code(), Code::ALREADY_EXISTS) << Describe(s);
  Report r2025;
  ASSERT_TRUE(Submit(seed_org_, kDairy, 2025, Monitoring(0, 100), &r2025).ok());
  EXPECT_EQ(r2025.monitoring().rd_intensity_bp(), 0);  // no output value: no intensity

  // Correction while SUBMITTED, with the mask and the etag; the intensity is recomputed exactly
  // (123456789 * 10000 / 9876543210 = 124.99..., truncated).
  Report change;
  change.set_name(r.name());
  change.set_work_report("更正后的工作报告");
  *change.mutable_monitoring() = Monitoring(9876543210, 123456789);
  change.set_etag(r.etag());
  Report corrected;
  s = UpdateReport(seed_org_, change, {"work_report", "monitoring"}, &corrected);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(corrected.work_report(), "更正后的工作报告");
  EXPECT_EQ(corrected.monitoring().rd_intensity_bp(), 124);
  EXPECT_EQ(corrected.state(), Report::SUBMITTED);
  EXPECT_NE(corrected.etag(), r.etag());
  s = UpdateReport(seed_org_, change, {"work_report"});  // r's etag is stale now
  EXPECT_EQ(s.error_code(), Code::ABORTED) << Describe(s);
  change.set_etag("");
  EXPECT_EQ(UpdateReport(OrgToken("other"), change, {"work_report"}).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(UpdateReport(industry_it_, change, {"work_report"}).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(UpdateReport(seed_org_, change, {"state"}).error_code(), Code::INVALID_ARGUMENT);
  // Only the work report changes under that mask.
  Report only_text = change;
  only_text.set_work_report("仅更正文字");
  only_text.mutable_monitoring()->set_patents(1);
  ASSERT_TRUE(UpdateReport(seed_org_, only_text, {"work_report"}, &corrected).ok());
  EXPECT_EQ(corrected.work_report(), "仅更正文字");
  EXPECT_EQ(corrected.monitoring().patents(), 210);

  // Return: the lead department (industry_it leads dairy), with a reason.
  EXPECT_EQ(DecideReport(false, energy_, r.name(), "退回").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(DecideReport(false, seed_org_, r.name(), "退回").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(DecideReport(true, energy_, r.name(), "").error_code(), Code::PERMISSION_DENIED);
  s = DecideReport(false, industry_it_, r.name(), "");
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  Report returned;
  ASSERT_TRUE(DecideReport(false, industry_it_, r.name(), "监测数据需补充", &returned).ok());
  EXPECT_EQ(returned.state(), Report::RETURNED);
  EXPECT_EQ(returned.decision_reason(), "监测数据需补充");
  // Not acceptable while returned; correctable, which submits it again.
  EXPECT_EQ(DecideReport(true, industry_it_, r.name(), "").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(DecideReport(false, industry_it_, r.name(), "再退").error_code(), Code::FAILED_PRECONDITION);
  change.set_etag(returned.etag());
  *change.mutable_monitoring() = Monitoring(1000000, 33333);
  ASSERT_TRUE(UpdateReport(seed_org_, change, {"monitoring"}, &corrected).ok());
  EXPECT_EQ(corrected.state(), Report::SUBMITTED);
  EXPECT_EQ(corrected.monitoring().rd_intensity_bp(), 333);

  // Accept (no reason needed): final.
  Report accepted;
  s = DecideReport(true, industry_it_, r.name(), "", &accepted, corrected.etag());
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(accepted.state(), Report::ACCEPTED);
  change.set_etag("");
  s = UpdateReport(seed_org_, change, {"work_report"});
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_EQ(DecideReport(false, industry_it_, r.name(), "退回").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(DecideReport(true, industry_it_, r.name(), "").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Submit(seed_org_, kDairy, kYear, m).error_code(), Code::ALREADY_EXISTS);
  Report stored = GetReport(r.name());
  EXPECT_EQ(stored.state(), Report::ACCEPTED);
  EXPECT_EQ(stored.monitoring().rd_intensity_bp(), 333);

  // Listing.
  v1::ListAnnualReportsRequest list_req;
  list_req.set_filter(absl::StrCat("cluster = \"", kDairy, "\" AND year = 2026"));
  v1::ListAnnualReportsResponse list;
  ASSERT_TRUE(Call(&Stub::ListAnnualReports, auditor_, list_req, &list).ok());
  ASSERT_EQ(list.annual_reports_size(), 1);
  EXPECT_EQ(list.annual_reports(0).name(), r.name());
  list_req.set_filter("state = SUBMITTED");
  ASSERT_TRUE(Call(&Stub::ListAnnualReports, auditor_, list_req, &list).ok());
  ASSERT_EQ(list.annual_reports_size(), 1);
  EXPECT_EQ(list.annual_reports(0).name(), r2025.name());
  v1::GetAnnualReportRequest get;
  get.set_name("annualReports/hohhot-dairy-2030");
  EXPECT_EQ(Call(&Stub::GetAnnualReport, auditor_, get, &stored).error_code(), Code::NOT_FOUND);
  EXPECT_EQ(DecideReport(true, industry_it_, "annualReports/hohhot-dairy-2030", "").error_code(), Code::NOT_FOUND);

  // Once replaced, the former organization no longer submits; the new one does.
  MakeOrg("successor", 2);
  Designation d = Applied("successor", kDairy);
  ASSERT_TRUE(Decide(Decision::kApprove, industry_it_, d.name(), "更换促进组织").ok());
  EXPECT_EQ(Submit(seed_org_, kDairy, 2027, m).error_code(), Code::PERMISSION_DENIED);
  Report by_successor;
  ASSERT_TRUE(Submit(OrgToken("successor"), kDairy, 2027, m, &by_successor).ok());
  EXPECT_EQ(by_successor.promotion_org(), "promotionOrgs/successor");
}

// ------------------------------------------------------------------ funding

TEST_F(PromotionTest, FundingGoesThroughTheSupportService) {
  // The subsidy pool, created by industry_it (responsible for SUBSIDY).
  sv1::CreatePoolRequest pool_req;
  pool_req.mutable_pool()->set_kind(sv1::SUBSIDY);
  pool_req.mutable_pool()->set_region(kHohhot);
  pool_req.mutable_pool()->set_year(kYear);
  pool_req.mutable_pool()->set_capacity(1000000000);
  sv1::Pool pool;
  grpc::Status s = Invoke(sstub_.get(), &SStub::CreatePool, industry_it_, pool_req, &pool);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // The support service checks the cluster record: wait for the seed's sync.
  ASSERT_EQ(WaitForClusterPromotionOrg(kDairy, kSeedOrg, absl::Seconds(10)), kSeedOrg);

  // Validation and authorization.
  s = ApplyForFunding(seed_org_, kSeedOrg, kDairy, 0);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("amount_fen"));
  EXPECT_EQ(ApplyForFunding(industry_it_, kSeedOrg, kDairy, 100).error_code(), Code::PERMISSION_DENIED);
  MakeOrg("outsider", 1);
  EXPECT_EQ(ApplyForFunding(seed_org_, "promotionOrgs/outsider", kDairy, 100).error_code(), Code::PERMISSION_DENIED);
  // An organization not designated to the cluster: FAILED_PRECONDITION, nothing in support.
  s = ApplyForFunding(OrgToken("outsider"), "promotionOrgs/outsider", kDairy, 100);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_EQ(ApplyForFunding(seed_org_, kSeedOrg, kBaotou, 100).error_code(), Code::FAILED_PRECONDITION);
  EXPECT_TRUE(Funding(OrgToken("outsider"), "promotionOrgs/outsider").empty());

  // The designated organization applies: an application in the support service.
  v1::FundingApplication f;
  s = ApplyForFunding(seed_org_, kSeedOrg, kDairy, 50000000, &f);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(f.application(), ::testing::StartsWith("applications/"));
  EXPECT_EQ(f.cluster(), kDairy);
  EXPECT_EQ(f.amount_fen(), 50000000);
  EXPECT_EQ(f.state(), "SUBMITTED");
  EXPECT_EQ(f.project_name(), "集群公共服务平台能力建设");

  sv1::GetApplicationRequest get;
  get.set_name(f.application());
  sv1::Application app;
  s = Invoke(sstub_.get(), &SStub::GetApplication, auditor_, get, &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.applicant(), kSeedOrg);
  EXPECT_EQ(app.cluster(), kDairy);
  EXPECT_EQ(app.state(), sv1::Application::SUBMITTED);
  ASSERT_EQ(app.items_size(), 1);
  EXPECT_EQ(app.items(0).kind(), sv1::SUBSIDY);
  EXPECT_EQ(app.items(0).quantity(), 50000000);
  EXPECT_EQ(app.items(0).pool(), support::SupportDomain::PoolName(kHohhot, kYear, sv1::SUBSIDY, ""));

  // Visible here with its state: to the organization, government and auditors.
  std::vector<v1::FundingApplication> listed = Funding(seed_org_, kSeedOrg);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].application(), f.application());
  EXPECT_EQ(listed[0].state(), "SUBMITTED");
  EXPECT_EQ(listed[0].amount_fen(), 50000000);
  EXPECT_EQ(Funding(auditor_, kSeedOrg).size(), 1u);
  EXPECT_EQ(Funding(industry_it_, kSeedOrg).size(), 1u);
  v1::ListFundingApplicationsRequest list_req;
  list_req.set_promotion_org(kSeedOrg);
  v1::ListFundingApplicationsResponse list;
  EXPECT_EQ(Call(&Stub::ListFundingApplications, OrgToken("outsider"), list_req, &list).error_code(),
            Code::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::ListFundingApplications, enterprise_, list_req, &list).error_code(),
            Code::PERMISSION_DENIED);

  // industry_it reviews and approves it in the support service: APPROVED here.
  sv1::Application reviewed;
  s = SupportTransition(&SStub::StartReview, industry_it_, f.application(), &reviewed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  listed = Funding(seed_org_, kSeedOrg);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state(), "UNDER_REVIEW");
  s = SupportTransition(&SStub::ApproveApplication, industry_it_, f.application(), &reviewed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(reviewed.state(), sv1::Application::APPROVED);
  listed = Funding(seed_org_, kSeedOrg);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state(), "APPROVED");
  sv1::GetPoolRequest pool_get;
  pool_get.set_name(pool.name());
  s = Invoke(sstub_.get(), &SStub::GetPool, auditor_, pool_get, &pool);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(pool.reserved(), 50000000);

  // A second application is listed beside it.
  ASSERT_TRUE(ApplyForFunding(seed_org_, kSeedOrg, kDairy, 700, &f).ok());
  listed = Funding(seed_org_, kSeedOrg);
  ASSERT_EQ(listed.size(), 2u);
  std::vector<std::string> states;
  for (const auto& a : listed) states.push_back(a.state());
  EXPECT_THAT(states, UnorderedElementsAre("APPROVED", "SUBMITTED"));

  // A freshly designated organization may apply as soon as the clusters service shows it.
  MakeOrg("newcomer", 2);
  Designation d = Applied("newcomer", kBaotou);
  ASSERT_TRUE(Decide(Decision::kApprove, industry_it_, d.name(), "同意").ok());
  ASSERT_EQ(WaitForClusterPromotionOrg(kBaotou, "promotionOrgs/newcomer"), "promotionOrgs/newcomer");
  s = ApplyForFunding(OrgToken("newcomer"), "promotionOrgs/newcomer", kBaotou, 1000, &f);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(f.state(), "SUBMITTED");
}

TEST_F(PromotionTest, RefusedFundingLeavesNoDraftBehind) {
  ASSERT_EQ(WaitForClusterPromotionOrg(kDairy, kSeedOrg, absl::Seconds(10)), kSeedOrg);
  // No subsidy pool for the year: the support service refuses the submission; the draft it
  // created is withdrawn, not left pending.
  grpc::Status s = ApplyForFunding(seed_org_, kSeedOrg, kDairy, 1000);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("there is no pool"));
  std::vector<v1::FundingApplication> listed = Funding(seed_org_, kSeedOrg);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state(), "WITHDRAWN");
}

// ------------------------------------------------------------------ evaluation

TEST_F(PromotionTest, EvaluationIsWeightedExactlyAndOncePerYear) {
  const std::string org = kSeedOrg;
  v1::Evaluation e;
  // 90*40 + 80*25 + 70*20 + 60*15 = 3600 + 2000 + 1400 + 900 = 7900.
  grpc::Status s = Evaluate(industry_it_, org, 2025, 90, 80, 70, 60, &e);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(e.name(), absl::StrCat(org, "/evaluations/2025"));
  EXPECT_EQ(e.total_centi(), 7900);
  EXPECT_EQ(e.grade(), "GOOD");
  EXPECT_EQ(e.comment(), "年度考核");
  EXPECT_EQ(e.evaluated_by().organization(), "departments/industry_it");
  EXPECT_TRUE(e.has_evaluate_time());

  // One per year.
  EXPECT_EQ(Evaluate(industry_it_, org, 2025, 100, 100, 100, 100).error_code(), Code::ALREADY_EXISTS);
  EXPECT_EQ(Evaluate(energy_, org, 2025, 100, 100, 100, 100).error_code(), Code::ALREADY_EXISTS);

  // Grade boundaries (totals are multiples of 5).
  struct Case {
    int year, services, governance, finance, satisfaction, total;
    const char* grade;
  };
  const Case cases[] = {
      {2010, 100, 100, 100, 100, 10000, "EXCELLENT"}, {2011, 75, 100, 100, 100, 9000, "EXCELLENT"},
      {2012, 76, 99, 99, 100, 8995, "GOOD"},          {2013, 40, 96, 100, 100, 7500, "GOOD"},
      {2014, 40, 97, 100, 98, 7495, "PASS"},          {2015, 40, 40, 95, 100, 6000, "PASS"},
      {2016, 40, 40, 97, 97, 5995, "FAIL"},           {2017, 0, 0, 0, 0, 0, "FAIL"},
  };
  for (const Case& c : cases) {
    s = Evaluate(energy_, org, c.year, c.services, c.governance, c.finance, c.satisfaction, &e);
    ASSERT_TRUE(s.ok()) << c.year << ": " << Describe(s);
    EXPECT_EQ(e.total_centi(), c.total) << c.year;
    EXPECT_EQ(e.grade(), c.grade) << c.year;
  }

  // Scores out of range, with the field.
  s = Evaluate(industry_it_, org, 2030, 101, 80, 70, -1);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("evaluation.scores.services", "evaluation.scores.satisfaction"));
  s = Evaluate(industry_it_, org, 2030, 50, -3, 101, 50);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("evaluation.scores.governance", "evaluation.scores.finance"));
  s = Evaluate(industry_it_, org, 1999, 50, 50, 50, 50);
  EXPECT_THAT(FieldsOf(s), ElementsAre("evaluation.year"));
  // Only government evaluates.
  EXPECT_EQ(Evaluate(enterprise_, org, 2030, 50, 50, 50, 50).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Evaluate(seed_org_, org, 2030, 100, 100, 100, 100).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Evaluate(auditor_, org, 2030, 50, 50, 50, 50).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Evaluate(industry_it_, "promotionOrgs/nobody", 2030, 50, 50, 50, 50).error_code(), Code::NOT_FOUND);
  EXPECT_EQ(Evaluate(industry_it_, "nobody", 2030, 50, 50, 50, 50).error_code(), Code::INVALID_ARGUMENT);

  // The history, by year, across pages.
  std::vector<int> years;
  std::vector<int> totals;
  v1::ListEvaluationsRequest req;
  req.set_parent(org);
  req.set_page_size(4);
  int pages = 0;
  for (int guard = 0; guard < 10; ++guard) {
    v1::ListEvaluationsResponse resp;
    s = Call(&Stub::ListEvaluations, auditor_, req, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ++pages;
    for (const auto& x : resp.evaluations()) {
      years.push_back(x.year());
      totals.push_back(x.total_centi());
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(years, ElementsAre(2010, 2011, 2012, 2013, 2014, 2015, 2016, 2017, 2025));
  EXPECT_THAT(totals, ElementsAre(10000, 9000, 8995, 7500, 7495, 6000, 5995, 0, 7900));
  // Another organization has none.
  MakeOrg("fresh", 1);
  v1::ListEvaluationsRequest other;
  other.set_parent("promotionOrgs/fresh");
  v1::ListEvaluationsResponse resp;
  ASSERT_TRUE(Call(&Stub::ListEvaluations, auditor_, other, &resp).ok());
  EXPECT_EQ(resp.evaluations_size(), 0);
}

// ------------------------------------------------------------------ audit and authentication

TEST_F(PromotionTest, AuditTrailAndAuthentication) {
  MakeOrg("audited", 1);
  Designation d = Applied("audited", kBaotou);
  ASSERT_TRUE(Decide(Decision::kApprove, industry_it_, d.name(), "审计可见的理由").ok());

  std::vector<common::v1::AuditEvent> events = Audit(absl::StrCat("resource = \"", d.name(), "\""));
  std::vector<std::string> methods;
  for (const auto& e : events) methods.push_back(e.method());
  EXPECT_THAT(methods, UnorderedElementsAre("/clustergov.promotion.v1.PromotionService/ApplyForDesignation", "/clustergov.promotion.v1.PromotionService/ApproveDesignation"));
  for (const auto& e : events) {
    if (e.method() == "/clustergov.promotion.v1.PromotionService/ApproveDesignation") {
      EXPECT_EQ(e.reason(), "审计可见的理由");
      EXPECT_EQ(e.actor().organization(), "departments/industry_it");
      EXPECT_FALSE(e.etag_before().empty());
      EXPECT_FALSE(e.etag_after().empty());
    } else {
      EXPECT_EQ(e.actor().organization(), "promotionOrgs/audited");
      EXPECT_TRUE(e.etag_before().empty());
    }
  }
  events = Audit("resource = \"promotionOrgs/audited\"");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].method(), "/clustergov.promotion.v1.PromotionService/RegisterPromotionOrg");
  // The seed's own records are in the trail too.
  EXPECT_FALSE(Audit(absl::StrCat("resource = \"", kSeedOrg, "\"")).empty());

  common::v1::ListAuditEventsRequest req;
  common::v1::ListAuditEventsResponse resp;
  EXPECT_EQ(Call(&Stub::ListAuditEvents, enterprise_, req, &resp).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::ListAuditEvents, OrgToken("audited"), req, &resp).error_code(), Code::PERMISSION_DENIED);
  EXPECT_TRUE(Call(&Stub::ListAuditEvents, industry_it_, req, &resp).ok());

  // No token: UNAUTHENTICATED everywhere, a bad token likewise.
  EXPECT_EQ(Call(&Stub::ListAuditEvents, "", req, &resp).error_code(), Code::UNAUTHENTICATED);
  v1::GetPromotionOrgRequest get;
  get.set_name(kSeedOrg);
  v1::PromotionOrg org;
  EXPECT_EQ(Call(&Stub::GetPromotionOrg, "", get, &org).error_code(), Code::UNAUTHENTICATED);
  EXPECT_EQ(Call(&Stub::GetPromotionOrg, "not-a-token", get, &org).error_code(), Code::UNAUTHENTICATED);
  const std::string forged = testing::MakeToken("x", "departments/industry_it", {"government"}, 3600,
                                                "another-secret-0123456789abcdef0123");
  EXPECT_EQ(Decide(Decision::kRevoke, forged, d.name(), "x").error_code(), Code::UNAUTHENTICATED);
  EXPECT_EQ(Decide(Decision::kRevoke, "", d.name(), "x").error_code(), Code::UNAUTHENTICATED);
  EXPECT_EQ(GetDesignation(d.name()).state(), Designation::ACTIVE);
  v1::ListDesignationsResponse designations;
  EXPECT_EQ(Call(&Stub::ListDesignations, "", v1::ListDesignationsRequest(), &designations).error_code(),
            Code::UNAUTHENTICATED);
  v1::PromotionReferenceData ref;
  EXPECT_EQ(Call(&Stub::GetReferenceData, "", v1::GetPromotionReferenceDataRequest(), &ref).error_code(),
            Code::UNAUTHENTICATED);
}

// ------------------------------------------------------------------ cluster indicators

TEST_F(PromotionTest, IndicatorsAreTheAcceptedReportsMonitoringData) {
  auto indicators = [&](const std::string& token, const std::string& cluster, int year,
                        common::v1::ClusterIndicators* out) {
    common::v1::GetClusterIndicatorsRequest req;
    req.set_cluster(cluster);
    req.set_year(year);
    return Call(&Stub::GetClusterIndicators, token, req, out);
  };
  common::v1::ClusterIndicators set;
  // No report yet, then a submitted (not accepted) one: the evaluation cannot use either.
  grpc::Status s = indicators(auditor_, kDairy, kYear, &set);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_EQ(s.error_message(), "no accepted annual report for clusters/hohhot-dairy in 2026");
  Report r;
  ASSERT_TRUE(Submit(seed_org_, kDairy, kYear, Monitoring(4000000000000000, 320000000000000), &r).ok());
  EXPECT_EQ(indicators(auditor_, kDairy, kYear, &set).error_code(), Code::FAILED_PRECONDITION);
  Report accepted;
  ASSERT_TRUE(DecideReport(true, industry_it_, r.name(), "数据完整", &accepted).ok());

  s = indicators(auditor_, kDairy, kYear, &set);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(set.cluster(), kDairy);
  EXPECT_EQ(set.year(), kYear);
  EXPECT_THAT(set.basis(), ElementsAre("annualReports/hohhot-dairy-2026"));
  std::map<std::string, common::v1::Indicator> v;
  for (const auto& i : set.indicators()) {
    v[i.key()] = i;
    EXPECT_EQ(i.source(), "promotion");
    EXPECT_EQ(i.as_of().seconds(), accepted.update_time().seconds()) << i.key();
  }
  EXPECT_EQ(v["promotion.output_value"].value(), 4000000000000000);
  EXPECT_EQ(v["promotion.output_value"].unit(), "fen");
  EXPECT_EQ(v["promotion.rd_spend"].value(), 320000000000000);
  EXPECT_EQ(v["promotion.rd_intensity"].value(), 800);
  EXPECT_EQ(v["promotion.rd_intensity"].dimension(), common::v1::DIMENSION_INNOVATION);
  EXPECT_EQ(v["promotion.employment"].value(), 38000);
  EXPECT_EQ(v["promotion.enterprises.large"].value(), 3);
  EXPECT_EQ(v["promotion.enterprises.medium"].value(), 12);
  EXPECT_EQ(v["promotion.enterprises.small"].value(), 40);
  EXPECT_EQ(v["promotion.enterprises.micro"].value(), 85);
  EXPECT_EQ(v["promotion.patents"].value(), 210);
  EXPECT_EQ(v["promotion.platforms.national"].value(), 2);
  EXPECT_EQ(v["promotion.platforms.region"].value(), 7);
  EXPECT_EQ(v["promotion.platforms.league"].value(), 11);
  EXPECT_EQ(v["promotion.green_factories"].value(), 4);
  EXPECT_EQ(v["promotion.green_factories"].dimension(), common::v1::DIMENSION_MANUFACTURING);
  EXPECT_EQ(v["promotion.smart_factories"].value(), 2);
  EXPECT_EQ(v["promotion.certifications.high_tech"].value(), 21);
  EXPECT_EQ(v["promotion.certifications.specialized_sme"].value(), 9);
  EXPECT_EQ(v.size(), 16u);

  // Another year has no accepted report; the other readers; refusals.
  s = indicators(admin_, kDairy, 2025, &set);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("clusters/hohhot-dairy in 2025"));
  EXPECT_TRUE(indicators(industry_it_, kDairy, kYear, &set).ok());
  EXPECT_TRUE(indicators(testing::MakeToken("svc", "services/clusters", {"service"}), kDairy, kYear, &set).ok());
  EXPECT_EQ(indicators(seed_org_, kDairy, kYear, &set).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(indicators(enterprise_, kDairy, kYear, &set).error_code(), Code::PERMISSION_DENIED);
  s = indicators(auditor_, "hohhot-dairy", 0, &set);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("cluster", "year"));
  EXPECT_EQ(indicators(auditor_, "clusters/no-such-cluster", kYear, &set).error_code(), Code::NOT_FOUND);

  // Through the client library the clusters service uses.
  auto source =
      NewPromotionIndicatorSource(server::MakeChannel(absl::StrCat("127.0.0.1:", prt_->port())), absl::Seconds(5));
  server::CallContext call;
  call.own_token = auditor_;
  auto got = source->GetClusterIndicators(call, kDairy, kYear);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->basis(0), "annualReports/hohhot-dairy-2026");
  auto missing = source->GetClusterIndicators(call, kDairy, 2025);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(missing.status().message(), "promotion: no accepted annual report for clusters/hohhot-dairy in 2025");
}

}  // namespace
}  // namespace clustergov::promotion

// The enterprises service end to end in-process: a real clusters service and a real enterprises
// service, each with its own Runtime (gRPC server on a loopback port, SQLite file), one real
// redis-server shared by both, and clients calling through the generated stubs. The enterprises
// service checks clusters through ClusterDirectory over real gRPC.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "common/refdata/uscc.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/cluster_repository.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_service.h"
#include "services/clusters/seed.h"
#include "services/enterprises/client/indicator_source.h"
#include "services/enterprises/cluster_strength.h"
#include "services/enterprises/enterprise_repository.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/enterprises/enterprises_service.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::enterprises {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;
using Stub = v1::EnterprisesService::Stub;
using ClustersStub = clusters::v1::ClustersService::Stub;

// A published, real unified social credit code (华为技术有限公司); its check character was verified
// independently of refdata::UsccCheckCharacter (Python, GB 32100-2015 weights).
constexpr char kHuawei[] = "914403001922038216";

using testing::FieldsOf;
using testing::Invoke;

// Sum of a counter family, optionally only the series with label `label` = `value`.
double CounterValue(prometheus::Registry& registry, const std::string& name, const std::string& label = "",
                    const std::string& value = "") {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool match = label.empty();
      for (const auto& l : m.label) {
        if (l.name == label && l.value == value) match = true;
      }
      if (match) total += m.counter.value;
    }
  }
  return total;
}

// 17 characters + the check character computed by refdata.
std::string WithCheck(const std::string& first17) {
  char check = refdata::UsccCheckCharacter(first17);
  EXPECT_NE(check, '\0') << first17;
  return first17 + std::string(1, check);
}

// A valid enterprise credit code in Hohhot: "91150100MA0" + 6 digits + check character.
std::string Code(int n) { return WithCheck(absl::StrFormat("91150100MA0%06d", n)); }

std::string NameOf(const std::string& uscc) { return "enterprises/" + uscc; }

google::type::Date D(int year, int month, int day) {
  google::type::Date d;
  d.set_year(year);
  d.set_month(month);
  d.set_day(day);
  return d;
}

int ThisYear() {
  int year = 0;
  EXPECT_TRUE(absl::SimpleAtoi(EnterprisesDomain::Today().substr(0, 4), &year));
  return year;
}

v1::Enterprise NewEnterprise(const std::string& uscc, const std::string& name_zh, const std::string& region = "150100",
                             v1::SizeClass size = v1::SMALL, const std::string& industry = "dairy") {
  v1::Enterprise e;
  e.set_uscc(uscc);
  e.set_legal_name_zh(name_zh);
  e.set_name_en("Test Co.");
  e.set_region(region);
  e.set_industry(industry);
  e.set_size_class(size);
  e.set_employees(120);
  e.set_annual_revenue_fen(1234567800);
  e.set_rd_spend_fen(5600000);
  return e;
}

template <typename Map, typename Repeated, typename KeyFn>
Map CountsOf(const Repeated& items, KeyFn key) {
  Map out;
  for (const auto& i : items) out[static_cast<int>(key(i))] = i.count();
  return out;
}

class EnterprisesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  server::CommonConfig Config(const std::string& service, const std::string& db_file) {
    return testing::ServiceConfig(service, dir_->File(db_file), redis_->port());
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    seed_ = *seed;

    // The clusters service.
    auto cstarted = clusters_.Start(Config("clusters", "clusters.db"), seed_);
    ASSERT_TRUE(cstarted.ok()) << cstarted;
    cstub_ = clusters::v1::ClustersService::NewStub(
        grpc::CreateChannel(clusters_.address(), grpc::InsecureChannelCredentials()));

    // The enterprises service, calling the clusters service over gRPC.
    auto ecreated = enterprises_.Start(Config("enterprises", "enterprises.db"), clusters_.address(), &seed_);
    ASSERT_TRUE(ecreated.ok()) << ecreated.status();
    seeded_ = *ecreated;
    stub_ = v1::EnterprisesService::NewStub(
        grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));

    // The dairy association promotes clusters/hohhot-dairy.
    absl::Status s = clusters_.DesignatePromotionOrg("clusters/hohhot-dairy", "promotionOrgs/dairy-association");
    ASSERT_TRUE(s.ok()) << s;
  }

  void TearDown() override {
    stub_.reset();
    cstub_.reset();
    enterprises_.Stop();
    clusters_.Stop();
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    return Invoke(stub_.get(), method, token, req, resp);
  }

  template <typename Req, typename Resp>
  grpc::Status CCall(grpc::Status (ClustersStub::*method)(grpc::ClientContext*, const Req&, Resp*),
                     const std::string& token, const Req& req, Resp* resp) {
    return Invoke(cstub_.get(), method, token, req, resp);
  }

  static std::string TokenFor(const std::string& uscc) {
    return testing::MakeToken("user-" + uscc, NameOf(uscc), {"enterprise"});
  }

  grpc::Status Register(const v1::Enterprise& e, v1::Enterprise* out = nullptr, const std::string& token = "",
                        const std::string& request_id = "") {
    v1::RegisterEnterpriseRequest req;
    *req.mutable_enterprise() = e;
    req.set_request_id(request_id);
    v1::Enterprise ignored;
    return Call(&Stub::RegisterEnterprise, token.empty() ? industry_it_ : token, req, out ? out : &ignored);
  }

  v1::Enterprise Get(const std::string& uscc, grpc::Status* status = nullptr) {
    v1::GetEnterpriseRequest req;
    req.set_name(NameOf(uscc));
    v1::Enterprise out;
    grpc::Status s = Call(&Stub::GetEnterprise, industry_it_, req, &out);
    if (status != nullptr) *status = s;
    return out;
  }

  grpc::Status Join(const std::string& token, const std::string& uscc, const std::string& cluster_id,
                    v1::MemberRole role, v1::Membership* out = nullptr, const std::string& segment = "") {
    v1::JoinClusterRequest req;
    req.set_parent(NameOf(uscc));
    req.mutable_membership()->set_cluster("clusters/" + cluster_id);
    req.mutable_membership()->set_role(role);
    req.mutable_membership()->set_chain_segment(segment);
    v1::Membership ignored;
    return Call(&Stub::JoinCluster, token, req, out ? out : &ignored);
  }

  grpc::Status Grant(const std::string& token, const std::string& uscc, v1::CertificationKind kind,
                     const google::type::Date& grant, const google::type::Date& expiry,
                     v1::Certification* out = nullptr, const std::string& issuing_department = "") {
    v1::GrantCertificationRequest req;
    req.set_parent(NameOf(uscc));
    auto* c = req.mutable_certification();
    c->set_kind(kind);
    c->set_issuing_department(issuing_department);
    *c->mutable_grant_date() = grant;
    *c->mutable_expiry_date() = expiry;
    c->set_certificate_number("NMG-2025-001");
    v1::Certification ignored;
    return Call(&Stub::GrantCertification, token, req, out ? out : &ignored);
  }

  // A currently valid period: granted last January, expiring in two years.
  google::type::Date GrantDate() const { return D(year_ - 1, 1, 1); }
  google::type::Date ExpiryDate() const { return D(year_ + 2, 12, 31); }

  // Every enterprise matching `filter`, through all pages.
  std::vector<v1::Enterprise> ListAll(const std::string& filter, bool show_deregistered = false, int page_size = 20,
                                      int* pages = nullptr) {
    std::vector<v1::Enterprise> all;
    v1::ListEnterprisesRequest req;
    req.set_filter(filter);
    req.set_page_size(page_size);
    req.set_show_deregistered(show_deregistered);
    int n = 0;
    for (int guard = 0; guard < 200; ++guard) {
      v1::ListEnterprisesResponse resp;
      grpc::Status s = Call(&Stub::ListEnterprises, industry_it_, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << s.error_message();
      if (!s.ok()) break;
      ++n;
      all.insert(all.end(), resp.enterprises().begin(), resp.enterprises().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    if (pages != nullptr) *pages = n;
    return all;
  }

  std::vector<std::string> UsccsOf(const std::string& filter, bool show_deregistered = false) {
    std::vector<std::string> out;
    for (const auto& e : ListAll(filter, show_deregistered)) out.push_back(e.uscc());
    return out;
  }

  std::vector<v1::Membership> Members(const std::string& cluster_id, const std::string& filter = "") {
    v1::ListClusterMembersRequest req;
    req.set_cluster("clusters/" + cluster_id);
    req.set_filter(filter);
    req.set_page_size(100);
    v1::ListClusterMembersResponse resp;
    grpc::Status s = Call(&Stub::ListClusterMembers, industry_it_, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.memberships().begin(), resp.memberships().end()};
  }

  std::vector<std::string> ClustersOf(const std::string& uscc) {
    v1::ListMembershipsRequest req;
    req.set_parent(NameOf(uscc));
    v1::ListMembershipsResponse resp;
    grpc::Status s = Call(&Stub::ListMemberships, industry_it_, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> out;
    for (const auto& m : resp.memberships()) out.push_back(m.cluster());
    return out;
  }

  std::vector<v1::SupplyLink> Links(const std::string& filter) {
    v1::ListSupplyLinksRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    v1::ListSupplyLinksResponse resp;
    grpc::Status s = Call(&Stub::ListSupplyLinks, industry_it_, req, &resp);
    EXPECT_TRUE(s.ok()) << filter << ": " << s.error_message();
    return {resp.supply_links().begin(), resp.supply_links().end()};
  }

  std::vector<v1::Certification> Certs(const std::string& parent, const std::string& filter = "") {
    v1::ListCertificationsRequest req;
    req.set_parent(parent);
    req.set_filter(filter);
    req.set_page_size(100);
    v1::ListCertificationsResponse resp;
    grpc::Status s = Call(&Stub::ListCertifications, industry_it_, req, &resp);
    EXPECT_TRUE(s.ok()) << filter << ": " << s.error_message();
    return {resp.certifications().begin(), resp.certifications().end()};
  }

  v1::CultivationPipeline Pipeline(const std::string& cluster) {
    v1::GetCultivationPipelineRequest req;
    req.set_cluster(cluster);
    v1::CultivationPipeline out;
    grpc::Status s = Call(&Stub::GetCultivationPipeline, industry_it_, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::vector<common::v1::AuditEvent> Audit(const std::string& filter) {
    common::v1::ListAuditEventsRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    common::v1::ListAuditEventsResponse resp;
    grpc::Status s = Call(&Stub::ListAuditEvents, auditor_, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.events().begin(), resp.events().end()};
  }

  double GetClusterCalls() {
    return CounterValue(clusters_.runtime().metrics().registry(), "grpc_server_handled_total", "grpc_method", "GetCluster");
  }

  // The distinct lead enterprises named by the seed, and how many (cluster, lead) pairs.
  std::set<std::string> SeedLeads(int* memberships = nullptr) const {
    std::set<std::string> names;
    int n = 0;
    for (const auto& sc : seed_.clusters()) {
      for (const auto& lead : sc.cluster().lead_enterprises()) {
        if (lead.enterprise().empty()) continue;
        names.insert(lead.enterprise());
        ++n;
      }
    }
    if (memberships != nullptr) *memberships = n;
    return names;
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  clusters::v1::SeedData seed_;
  int seeded_ = 0;

  testing::ClustersServer clusters_;
  std::unique_ptr<ClustersStub> cstub_;
  testing::EnterprisesServer enterprises_;
  std::unique_ptr<Stub> stub_;

  const int year_ = ThisYear();
  const std::string kYili = "91150100CG0000001G";
  const std::string kMengniu = "91150100CG0000002K";
  const std::string kA = Code(1);
  const std::string kB = Code(2);
  const std::string kC = Code(3);
  const std::string kD = Code(4);
  const std::string kUnregistered = Code(999);

  const std::string industry_it_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string science_ = testing::MakeToken("li.na", "departments/science_technology", {"government"});
  const std::string market_ = testing::MakeToken("chen.jie", "departments/market_regulation", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string enterprise_a_ = TokenFor(kA);
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
  const std::string admin_ = testing::MakeToken("root", "agencies/ops", {"admin"});
  const std::string promo_ =
      testing::MakeToken("dairy.assoc", "promotionOrgs/dairy-association", {"promotion_org"});
  const std::string service_token_ = testing::MakeToken("promotion-svc", "services/promotion", {"service"});
};

testing::RedisServer* EnterprisesTest::redis_ = nullptr;

// ------------------------------------------------------------------ seed

TEST_F(EnterprisesTest, SeedRegistersThePlansLeadEnterprisesAsSamples) {
  int seed_memberships = 0;
  std::set<std::string> leads = SeedLeads(&seed_memberships);
  ASSERT_GE(leads.size(), 2u);
  EXPECT_EQ(seeded_, static_cast<int>(leads.size()));

  // hohhot-dairy: 伊利 and 蒙牛, both LEAD_ENTERPRISE.
  auto members = Members("hohhot-dairy");
  ASSERT_EQ(members.size(), 2u);
  std::vector<std::string> names;
  for (const auto& m : members) {
    EXPECT_EQ(m.role(), v1::LEAD_ENTERPRISE) << m.name();
    EXPECT_EQ(m.cluster(), "clusters/hohhot-dairy");
    grpc::Status s;
    v1::Enterprise e = Get(m.enterprise().substr(12), &s);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(e.sample()) << e.name();
    EXPECT_EQ(e.state(), v1::Enterprise::ACTIVE);
    EXPECT_EQ(e.size_class(), v1::LARGE);
    EXPECT_EQ(e.region(), "150100");
    EXPECT_EQ(e.industry(), "dairy");
    names.push_back(e.legal_name_zh());
  }
  EXPECT_THAT(names, UnorderedElementsAre("伊利", "蒙牛"));

  // Every lead enterprise named in a cluster record resolves, as a sample, with its name.
  clusters::v1::ListClustersRequest lreq;
  lreq.set_page_size(100);
  clusters::v1::ListClustersResponse clusters_resp;
  ASSERT_TRUE(CCall(&ClustersStub::ListClusters, industry_it_, lreq, &clusters_resp).ok());
  ASSERT_EQ(clusters_resp.clusters_size(), 13);
  int resolved = 0;
  for (const auto& c : clusters_resp.clusters()) {
    for (const auto& lead : c.lead_enterprises()) {
      if (lead.enterprise().empty()) continue;
      v1::GetEnterpriseRequest req;
      req.set_name(lead.enterprise());
      v1::Enterprise e;
      grpc::Status s = Call(&Stub::GetEnterprise, enterprise_a_, req, &e);
      ASSERT_TRUE(s.ok()) << lead.enterprise() << ": " << s.error_message();
      EXPECT_EQ(e.legal_name_zh(), lead.name_zh());
      EXPECT_TRUE(e.sample());
      ++resolved;
    }
  }
  EXPECT_EQ(resolved, seed_memberships);

  // The registry lists exactly the samples, and seeding again creates nothing.
  EXPECT_EQ(ListAll("sample = true").size(), leads.size());
  EXPECT_THAT(ListAll("sample = false"), IsEmpty());
  auto again = enterprises_.domain().Seed(seed_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(ListAll("sample = true").size(), leads.size());
  EXPECT_EQ(Members("hohhot-dairy").size(), 2u);
}

// ------------------------------------------------------------------ register

TEST_F(EnterprisesTest, RegisterCreatesAnActiveNonSampleRecord) {
  v1::Enterprise input = NewEnterprise(kA, "呼和浩特测试乳业有限公司");
  input.set_sample(true);                        // output only
  input.set_state(v1::Enterprise::DEREGISTERED);  // output only
  v1::Enterprise created;
  grpc::Status s = Register(input, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.name(), NameOf(kA));
  EXPECT_EQ(created.uscc(), kA);
  EXPECT_EQ(created.legal_name_zh(), "呼和浩特测试乳业有限公司");
  EXPECT_EQ(created.state(), v1::Enterprise::ACTIVE);
  EXPECT_FALSE(created.sample());
  EXPECT_EQ(created.listing_status(), v1::UNLISTED);
  EXPECT_EQ(created.annual_revenue_fen(), 1234567800);
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  v1::Enterprise got = Get(kA);
  EXPECT_EQ(got.etag(), created.etag());
  EXPECT_EQ(got.legal_name_zh(), created.legal_name_zh());

  // A hard-coded real code (not computed by the function under test) is accepted too.
  v1::Enterprise huawei;
  s = Register(NewEnterprise(kHuawei, "华为技术有限公司", "150100", v1::LARGE, "electronics"), &huawei);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(huawei.name(), std::string("enterprises/") + kHuawei);

  // An enterprise may register itself.
  s = Register(NewEnterprise(kB, "自注册企业"), nullptr, TokenFor(kB));
  EXPECT_TRUE(s.ok()) << s.error_message();

  // Twice: ALREADY_EXISTS, and the record is unchanged.
  v1::Enterprise dup = NewEnterprise(kA, "另一个名字");
  s = Register(dup);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Get(kA).legal_name_zh(), "呼和浩特测试乳业有限公司");
  EXPECT_EQ(Get(kA).etag(), created.etag());
}

TEST_F(EnterprisesTest, RegisterRejectsEachCreditCodeRuleOnEnterpriseUscc) {
  const std::string valid17 = "91150100MA0000777";
  const std::string valid = WithCheck(valid17);
  ASSERT_TRUE(refdata::ValidateUscc(valid).ok());
  char wrong = valid.back() == '0' ? '1' : '0';

  struct Case {
    std::string code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"91150100MA000077", "must be 18 characters, got 16"},
      {"", "is empty"},
      {"91150100MA00007O7X", "is not allowed"},                  // O is not in the alphabet
      {"91150100ma0000777X", "upper case"},                      // lower case
      {WithCheck("C1150100MA0000777"), "registration authority"},  // C is no authority
      {WithCheck("94150100MA0000777"), "entity type"},             // 工商 registers types 1-3 only
      {WithCheck("91990100MA0000777"), "administrative division code"},
      {WithCheck("91151000MA0000777"), "administrative division code"},  // 1510 is no league
      {valid17 + std::string(1, wrong), absl::StrCat("expected \"", std::string(1, valid.back()), "\"")},
  };
  for (const auto& c : cases) {
    v1::Enterprise e = NewEnterprise(c.code, "坏代码企业");
    grpc::Status s = Register(e);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.code;
    EXPECT_THAT(FieldsOf(s), ElementsAre("enterprise.uscc")) << c.code;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.code;
  }
  // Nothing was written.
  EXPECT_THAT(ListAll("sample = false"), IsEmpty());
  EXPECT_THAT(Audit("method = \"/clustergov.enterprises.v1.EnterprisesService/RegisterEnterprise\""), IsEmpty());
  // The valid variant registers.
  EXPECT_TRUE(Register(NewEnterprise(valid, "好代码企业")).ok());
}

TEST_F(EnterprisesTest, RegisterRejectsOtherFieldsAndWritesNothing) {
  v1::Enterprise bad = NewEnterprise(kA, "");
  bad.set_region("159900");
  bad.set_industry("Dairy!");
  bad.set_size_class(v1::SIZE_CLASS_UNSPECIFIED);
  bad.set_annual_revenue_fen(-1);
  bad.set_rd_spend_fen(-100);
  grpc::Status s = Register(bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("enterprise.legal_name_zh", "enterprise.region", "enterprise.industry",
                                                "enterprise.size_class", "enterprise.annual_revenue_fen",
                                                "enterprise.rd_spend_fen"));

  // One at a time, each is reported on its own.
  struct Case {
    std::string field;
    std::function<void(v1::Enterprise*)> breaker;
  };
  const std::vector<Case> cases = {
      {"enterprise.legal_name_zh", [](v1::Enterprise* e) { e->clear_legal_name_zh(); }},
      {"enterprise.region", [](v1::Enterprise* e) { e->set_region("440300"); }},  // not a league of Inner Mongolia
      {"enterprise.industry", [](v1::Enterprise* e) { e->clear_industry(); }},
      {"enterprise.size_class", [](v1::Enterprise* e) { e->set_size_class(v1::SIZE_CLASS_UNSPECIFIED); }},
      {"enterprise.annual_revenue_fen", [](v1::Enterprise* e) { e->set_annual_revenue_fen(-5); }},
      {"enterprise.rd_spend_fen", [](v1::Enterprise* e) { e->set_rd_spend_fen(-5); }},
      {"enterprise.employees", [](v1::Enterprise* e) { e->set_employees(-1); }},
  };
  for (const auto& c : cases) {
    v1::Enterprise e = NewEnterprise(kA, "单项错误企业");
    c.breaker(&e);
    s = Register(e);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(FieldsOf(s), ElementsAre(c.field));
  }

  // An enterprise token may not register another code.
  s = Register(NewEnterprise(kC, "冒名企业"), nullptr, enterprise_a_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Nor may an auditor.
  s = Register(NewEnterprise(kC, "审计注册"), nullptr, auditor_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Nothing was written by any of these.
  Get(kA, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  Get(kC, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(ListAll("sample = false", /*show_deregistered=*/true), IsEmpty());
  EXPECT_THAT(Audit("method = \"/clustergov.enterprises.v1.EnterprisesService/RegisterEnterprise\""), IsEmpty());
}

TEST_F(EnterprisesTest, RegisterRetryWithRequestIdReturnsTheSameRecord) {
  v1::Enterprise input = NewEnterprise(kD, "幂等企业");
  v1::Enterprise first, second;
  ASSERT_TRUE(Register(input, &first, industry_it_, "register-kd-1").ok());
  grpc::Status s = Register(input, &second, industry_it_, "register-kd-1");
  ASSERT_TRUE(s.ok()) << s.error_message();  // not ALREADY_EXISTS: the first answer, replayed
  EXPECT_EQ(second.etag(), first.etag());
  EXPECT_EQ(second.create_time().seconds(), first.create_time().seconds());
  EXPECT_EQ(second.create_time().nanos(), first.create_time().nanos());
  EXPECT_EQ(Audit(absl::StrCat("resource = \"", NameOf(kD), "\"")).size(), 1u);
  // A new request id is a new attempt.
  EXPECT_EQ(Register(input, nullptr, industry_it_, "register-kd-2").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // A bad request id is a field error.
  s = Register(NewEnterprise(kC, "坏请求号"), nullptr, industry_it_, "bad id!");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("request_id"));
}

// ------------------------------------------------------------------ get, list

TEST_F(EnterprisesTest, GetUnknownOrMalformedName) {
  grpc::Status s;
  Get(kUnregistered, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetEnterpriseRequest req;
  req.set_name("enterprises/123");
  v1::Enterprise out;
  s = Call(&Stub::GetEnterprise, industry_it_, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("name"));
  req.set_name(std::string("companies/") + kHuawei);
  s = Call(&Stub::GetEnterprise, industry_it_, req, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("name"));
}

TEST_F(EnterprisesTest, ListFilters) {
  ASSERT_TRUE(Register(NewEnterprise(kA, "呼和浩特测试乳业有限公司", "150100", v1::SMALL)).ok());
  ASSERT_TRUE(Register(NewEnterprise(kB, "包头测试稀土有限公司", "150200", v1::MEDIUM, "rare_earth")).ok());
  ASSERT_TRUE(Register(NewEnterprise(kC, "赤峰微型企业", "150400", v1::MICRO)).ok());
  ASSERT_TRUE(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER).ok());
  ASSERT_TRUE(Join(industry_it_, kB, "baotou-rare-earth", v1::CHAIN_LEADER).ok());
  ASSERT_TRUE(Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(industry_it_, kC, v1::SPECIALIZED_SME, D(2019, 1, 1), D(2020, 1, 1)).ok());  // expired

  EXPECT_THAT(UsccsOf("region = \"150200\" AND sample = false"), ElementsAre(kB));
  auto baotou = ListAll("region = \"150200\"");
  EXPECT_GT(baotou.size(), 1u);  // seeded lead enterprises of Baotou's clusters too
  for (const auto& e : baotou) {
    EXPECT_EQ(e.region(), "150200") << e.name();
    EXPECT_EQ(e.sample(), e.uscc() != kB) << e.name();
  }
  EXPECT_THAT(UsccsOf("region = \"150400\""), ElementsAre(kC));
  EXPECT_THAT(UsccsOf("size_class = SMALL"), ElementsAre(kA));
  EXPECT_THAT(UsccsOf("size_class = MEDIUM OR size_class = MICRO"), UnorderedElementsAre(kB, kC));
  EXPECT_THAT(UsccsOf("cluster = \"clusters/hohhot-dairy\""), UnorderedElementsAre(kA, kYili, kMengniu));
  EXPECT_THAT(UsccsOf("cluster = \"clusters/hohhot-dairy\" AND sample = false"), ElementsAre(kA));
  EXPECT_THAT(UsccsOf("role = CHAIN_LEADER"), ElementsAre(kB));
  EXPECT_THAT(UsccsOf("role = MEMBER"), ElementsAre(kA));
  EXPECT_THAT(UsccsOf("certification = SPECIALIZED_SME"), ElementsAre(kA));  // kC's has expired
  EXPECT_THAT(UsccsOf("certification = LITTLE_GIANT"), IsEmpty());
  EXPECT_THAT(UsccsOf("sample = false"), UnorderedElementsAre(kA, kB, kC));
  EXPECT_THAT(UsccsOf("legal_name_zh:\"测试\""), UnorderedElementsAre(kA, kB));
  EXPECT_THAT(UsccsOf("legal_name_zh:\"伊利\""), ElementsAre(kYili));
  EXPECT_THAT(UsccsOf("legal_name_zh:\"伊\""), UnorderedElementsAre(kYili, "91150600CG00000080"));  // 伊利, 伊泰
  EXPECT_THAT(UsccsOf("legal_name_zh = \"蒙牛\""), ElementsAre(kMengniu));
  EXPECT_THAT(UsccsOf("industry = \"rare_earth\" AND sample = false"), ElementsAre(kB));

  // Bad filters name the filter field.
  for (const std::string bad : {"nosuch = 1", "size_class = HUGE", "region >", "sample = maybe",
                                "region < \"150100\""}) {
    v1::ListEnterprisesRequest req;
    req.set_filter(bad);
    v1::ListEnterprisesResponse resp;
    grpc::Status s = Call(&Stub::ListEnterprises, industry_it_, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("filter")) << bad;
  }
}

TEST_F(EnterprisesTest, ListPaginatesAndRejectsTamperedTokens) {
  std::set<std::string> leads = SeedLeads();
  int pages = 0;
  auto all = ListAll("", false, 10, &pages);
  EXPECT_EQ(all.size(), leads.size());
  EXPECT_EQ(pages, static_cast<int>((leads.size() + 9) / 10));
  EXPECT_GT(pages, 1);
  std::set<std::string> seen;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_TRUE(seen.insert(all[i].name()).second) << "duplicate " << all[i].name();
    if (i > 0) {
      EXPECT_LT(all[i - 1].uscc(), all[i].uscc());
    }
  }
  EXPECT_EQ(seen, leads);

  v1::ListEnterprisesRequest req;
  req.set_page_size(10);
  v1::ListEnterprisesResponse first;
  ASSERT_TRUE(Call(&Stub::ListEnterprises, industry_it_, req, &first).ok());
  ASSERT_EQ(first.enterprises_size(), 10);
  ASSERT_FALSE(first.next_page_token().empty());

  std::string tampered = first.next_page_token();
  size_t mid = tampered.size() / 2;
  tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
  req.set_page_token(tampered);
  v1::ListEnterprisesResponse resp;
  grpc::Status s = Call(&Stub::ListEnterprises, industry_it_, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));

  // A token is bound to its query.
  req.set_page_token(first.next_page_token());
  req.set_filter("sample = true");
  s = Call(&Stub::ListEnterprises, industry_it_, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));

  req.set_filter("");
  req.set_page_size(-1);
  req.clear_page_token();
  s = Call(&Stub::ListEnterprises, industry_it_, req, &resp);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_size"));
}

// ------------------------------------------------------------------ update, deregister

TEST_F(EnterprisesTest, UpdateWithMaskAndEtag) {
  v1::Enterprise created;
  ASSERT_TRUE(Register(NewEnterprise(kA, "原名称"), &created).ok());

  v1::UpdateEnterpriseRequest req;
  req.mutable_enterprise()->set_name(NameOf(kA));
  req.mutable_enterprise()->set_etag(created.etag());
  req.mutable_enterprise()->set_employees(300);
  req.mutable_enterprise()->set_legal_name_zh("不在掩码中");  // not in the mask: ignored
  req.mutable_update_mask()->add_paths("employees");
  v1::Enterprise updated;
  grpc::Status s = Call(&Stub::UpdateEnterprise, enterprise_a_, req, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.employees(), 300);
  EXPECT_EQ(updated.legal_name_zh(), "原名称");
  EXPECT_NE(updated.etag(), created.etag());
  EXPECT_EQ(updated.create_time().seconds(), created.create_time().seconds());

  // The old etag is stale now.
  req.mutable_enterprise()->set_employees(400);
  s = Call(&Stub::UpdateEnterprise, enterprise_a_, req, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get(kA).employees(), 300);

  // Unknown mask paths and invalid values are field errors.
  req.mutable_enterprise()->clear_etag();
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("uscc");
  s = Call(&Stub::UpdateEnterprise, industry_it_, req, &updated);
  EXPECT_THAT(FieldsOf(s), ElementsAre("update_mask"));
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("region");
  req.mutable_enterprise()->set_region("110000");
  s = Call(&Stub::UpdateEnterprise, industry_it_, req, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("enterprise.region"));

  // Another enterprise may not update it; an unknown one is NOT_FOUND.
  req.mutable_enterprise()->set_region("150200");
  s = Call(&Stub::UpdateEnterprise, TokenFor(kB), req, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Call(&Stub::UpdateEnterprise, industry_it_, req, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.region(), "150200");
  EXPECT_EQ(updated.employees(), 300);
  req.mutable_enterprise()->set_name(NameOf(kUnregistered));
  EXPECT_EQ(Call(&Stub::UpdateEnterprise, industry_it_, req, &updated).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(EnterprisesTest, DeregisterIsSoft) {
  v1::Enterprise created;
  ASSERT_TRUE(Register(NewEnterprise(kA, "将注销企业"), &created).ok());
  ASSERT_TRUE(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER).ok());

  v1::DeregisterEnterpriseRequest req;
  req.set_name(NameOf(kA));
  req.set_etag("v999");
  req.set_reason("merged into another company");
  v1::Enterprise out;
  EXPECT_EQ(Call(&Stub::DeregisterEnterprise, enterprise_a_, req, &out).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Call(&Stub::DeregisterEnterprise, TokenFor(kB), req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  req.set_etag(created.etag());
  EXPECT_EQ(Call(&Stub::DeregisterEnterprise, TokenFor(kB), req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status s = Call(&Stub::DeregisterEnterprise, enterprise_a_, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::Enterprise::DEREGISTERED);
  EXPECT_TRUE(out.has_deregister_time());

  // Still readable, hidden from lists unless asked for.
  v1::Enterprise got = Get(kA, &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(got.state(), v1::Enterprise::DEREGISTERED);
  EXPECT_THAT(UsccsOf("sample = false"), IsEmpty());
  EXPECT_THAT(UsccsOf("sample = false", /*show_deregistered=*/true), ElementsAre(kA));
  EXPECT_THAT(UsccsOf("state = DEREGISTERED", true), ElementsAre(kA));
  // Its membership no longer shows in the cluster.
  EXPECT_EQ(Members("hohhot-dairy").size(), 2u);

  // No more changes.
  v1::UpdateEnterpriseRequest update;
  update.mutable_enterprise()->set_name(NameOf(kA));
  update.mutable_enterprise()->set_employees(1);
  update.mutable_update_mask()->add_paths("employees");
  EXPECT_EQ(Call(&Stub::UpdateEnterprise, industry_it_, update, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  req.clear_etag();
  EXPECT_EQ(Call(&Stub::DeregisterEnterprise, industry_it_, req, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Join(industry_it_, kA, "baotou-rare-earth", v1::MEMBER).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // And its code stays taken.
  EXPECT_EQ(Register(NewEnterprise(kA, "重新注册")).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

// ------------------------------------------------------------------ membership

TEST_F(EnterprisesTest, JoinClusterRoles) {
  for (const auto& code : {kA, kB, kC, kD}) ASSERT_TRUE(Register(NewEnterprise(code, "成员企业")).ok());

  // The enterprise joins as a plain member itself.
  v1::Membership m;
  grpc::Status s = Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER, &m, "乳制品加工");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m.name(), NameOf(kA) + "/memberships/hohhot-dairy");
  EXPECT_EQ(m.enterprise(), NameOf(kA));
  EXPECT_EQ(m.cluster(), "clusters/hohhot-dairy");
  EXPECT_EQ(m.role(), v1::MEMBER);
  EXPECT_EQ(m.chain_segment(), "乳制品加工");
  EXPECT_EQ(m.granted_by().subject(), "user-" + kA);
  EXPECT_TRUE(m.has_join_time());
  // Twice: ALREADY_EXISTS.
  EXPECT_EQ(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // ... but may not give itself a leading role, nor join for another enterprise.
  EXPECT_EQ(Join(enterprise_a_, kA, "baotou-rare-earth", v1::LEAD_ENTERPRISE).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Join(enterprise_a_, kA, "baotou-rare-earth", v1::CHAIN_LEADER).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Join(enterprise_a_, kB, "baotou-rare-earth", v1::MEMBER).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Join(auditor_, kB, "hohhot-dairy", v1::MEMBER).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The lead department and the promotion organization of the cluster may grant CHAIN_LEADER.
  s = Join(industry_it_, kB, "hohhot-dairy", v1::CHAIN_LEADER, &m);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m.role(), v1::CHAIN_LEADER);
  EXPECT_EQ(m.granted_by().subject(), "wang.li");
  EXPECT_EQ(m.granted_by().organization(), "departments/industry_it");
  s = Join(promo_, kC, "hohhot-dairy", v1::CHAIN_LEADER, &m);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m.granted_by().organization(), "promotionOrgs/dairy-association");
  // ... not the promotion organization of another cluster's, nor a department that does not lead it.
  EXPECT_EQ(Join(promo_, kD, "baotou-rare-earth", v1::CHAIN_LEADER).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Join(energy_, kD, "hohhot-dairy", v1::CHAIN_LEADER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Join(energy_, kD, "hohhot-dairy", v1::MEMBER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The Energy Bureau does lead clusters/hydrogen.
  s = Join(energy_, kD, "hydrogen", v1::LEAD_ENTERPRISE, &m);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // An unknown cluster: NOT_FOUND, because the clusters service said so.
  s = Join(enterprise_a_, kA, "no-such-cluster", v1::MEMBER);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("clusters/no-such-cluster"));
  // Malformed input: field errors.
  s = Join(enterprise_a_, kA, "Bad_Cluster", v1::MEMBER);
  EXPECT_THAT(FieldsOf(s), ElementsAre("membership.cluster"));
  s = Join(enterprise_a_, kA, "hydrogen", v1::MEMBER_ROLE_UNSPECIFIED);
  EXPECT_THAT(FieldsOf(s), ElementsAre("membership.role"));
  // An unregistered enterprise cannot join.
  EXPECT_EQ(Join(industry_it_, kUnregistered, "hohhot-dairy", v1::MEMBER).error_code(), grpc::StatusCode::NOT_FOUND);

  std::map<std::string, v1::MemberRole> roles;
  for (const auto& mm : Members("hohhot-dairy")) roles[mm.enterprise()] = mm.role();
  EXPECT_THAT(roles, UnorderedElementsAre(Pair(NameOf(kYili), v1::LEAD_ENTERPRISE),
                                          Pair(NameOf(kMengniu), v1::LEAD_ENTERPRISE), Pair(NameOf(kA), v1::MEMBER),
                                          Pair(NameOf(kB), v1::CHAIN_LEADER), Pair(NameOf(kC), v1::CHAIN_LEADER)));
  EXPECT_EQ(Members("hohhot-dairy", "role = CHAIN_LEADER").size(), 2u);
  EXPECT_EQ(Members("hohhot-dairy", "chain_segment = \"乳制品加工\"").size(), 1u);
  EXPECT_THAT(ClustersOf(kD), ElementsAre("clusters/hydrogen"));
}

TEST_F(EnterprisesTest, UpdateMembershipAndLeave) {
  ASSERT_TRUE(Register(NewEnterprise(kA, "成员企业")).ok());
  ASSERT_TRUE(Register(NewEnterprise(kB, "其他企业")).ok());
  v1::Membership joined;
  ASSERT_TRUE(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER, &joined, "原料").ok());
  ASSERT_TRUE(Join(enterprise_a_, kA, "hydrogen", v1::MEMBER).ok());
  EXPECT_THAT(ClustersOf(kA), ElementsAre("clusters/hohhot-dairy", "clusters/hydrogen"));

  // The enterprise may change its chain segment ...
  v1::UpdateMembershipRequest req;
  req.mutable_membership()->set_name(joined.name());
  req.mutable_membership()->set_chain_segment("加工");
  req.mutable_membership()->set_etag(joined.etag());
  req.mutable_update_mask()->add_paths("chain_segment");
  v1::Membership out;
  grpc::Status s = Call(&Stub::UpdateMembership, enterprise_a_, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.chain_segment(), "加工");
  EXPECT_EQ(out.role(), v1::MEMBER);
  EXPECT_NE(out.etag(), joined.etag());
  // ... with the old etag: ABORTED.
  EXPECT_EQ(Call(&Stub::UpdateMembership, enterprise_a_, req, &out).error_code(), grpc::StatusCode::ABORTED);
  // ... but not its role.
  req.mutable_membership()->clear_etag();
  req.mutable_membership()->set_role(v1::CHAIN_LEADER);
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("role");
  EXPECT_EQ(Call(&Stub::UpdateMembership, enterprise_a_, req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Another enterprise may change nothing.
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("chain_segment");
  EXPECT_EQ(Call(&Stub::UpdateMembership, TokenFor(kB), req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The Energy Bureau does not lead the dairy cluster.
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("role");
  EXPECT_EQ(Call(&Stub::UpdateMembership, energy_, req, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The lead department may promote it; granted_by follows.
  s = Call(&Stub::UpdateMembership, industry_it_, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.role(), v1::CHAIN_LEADER);
  EXPECT_EQ(out.chain_segment(), "加工");  // not in the mask
  EXPECT_EQ(out.granted_by().subject(), "wang.li");
  // The promotion organization may demote it again.
  req.mutable_membership()->set_role(v1::MEMBER);
  s = Call(&Stub::UpdateMembership, promo_, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.role(), v1::MEMBER);
  // Bad masks and missing memberships.
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("cluster");
  s = Call(&Stub::UpdateMembership, industry_it_, req, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("update_mask"));
  req.mutable_update_mask()->clear_paths();
  req.mutable_membership()->set_name(NameOf(kB) + "/memberships/hohhot-dairy");
  EXPECT_EQ(Call(&Stub::UpdateMembership, industry_it_, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  // Leaving: not for another enterprise; the enterprise itself may.
  v1::LeaveClusterRequest leave;
  leave.set_name(NameOf(kA) + "/memberships/hydrogen");
  leave.set_reason("no longer in the hydrogen business");
  EXPECT_EQ(Call(&Stub::LeaveCluster, TokenFor(kB), leave, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Call(&Stub::LeaveCluster, enterprise_a_, leave, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.cluster(), "clusters/hydrogen");
  EXPECT_THAT(ClustersOf(kA), ElementsAre("clusters/hohhot-dairy"));
  EXPECT_EQ(Call(&Stub::LeaveCluster, enterprise_a_, leave, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  // The lead department may remove a member.
  leave.set_name(NameOf(kA) + "/memberships/hohhot-dairy");
  leave.set_reason("removed by the lead department");
  s = Call(&Stub::LeaveCluster, industry_it_, leave, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(ClustersOf(kA), IsEmpty());
  EXPECT_EQ(Members("hohhot-dairy").size(), 2u);
  // The leave is audited with its reason.
  auto events = Audit("method = \"/clustergov.enterprises.v1.EnterprisesService/LeaveCluster\"");
  ASSERT_EQ(events.size(), 2u);  // newest first
  EXPECT_EQ(events[0].reason(), "removed by the lead department");
  EXPECT_EQ(events[0].actor().subject(), "wang.li");
  EXPECT_EQ(events[1].reason(), "no longer in the hydrogen business");

  // Listing memberships of an unknown enterprise is NOT_FOUND.
  v1::ListMembershipsRequest list;
  list.set_parent(NameOf(kUnregistered));
  v1::ListMembershipsResponse resp;
  EXPECT_EQ(Call(&Stub::ListMemberships, industry_it_, list, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ the clusters service, cached

TEST_F(EnterprisesTest, ClusterChecksAreCachedAndNeverWrongWhenTheClustersServiceIsDown) {
  for (const auto& code : {kA, kB, kC, kD}) ASSERT_TRUE(Register(NewEnterprise(code, "缓存企业")).ok());
  // The clusters' changes so far (seed, promotion organization) are behind the directory: they
  // would drop the answer cached below.
  absl::Status caught_up = testing::WaitForConsumerGroup(clusters_.runtime(), "enterprises.directory");
  ASSERT_TRUE(caught_up.ok()) << caught_up;

  const double calls0 = GetClusterCalls();
  grpc::Status s = Join(TokenFor(kA), kA, "hohhot-dairy", v1::MEMBER);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The server records the handled call as it finishes; allow it a moment.
  for (int i = 0; i < 200 && GetClusterCalls() < calls0 + 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double calls1 = GetClusterCalls();
  EXPECT_EQ(calls1, calls0 + 1);

  // A second enterprise joining the same cluster: answered from Redis, no call.
  s = Join(TokenFor(kB), kB, "hohhot-dairy", v1::MEMBER);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(GetClusterCalls(), calls1);

  // The clusters service stops.
  clusters_.runtime().Shutdown();

  // A cluster looked up before still works.
  s = Join(TokenFor(kC), kC, "hohhot-dairy", v1::MEMBER);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // One never looked up: UNAVAILABLE, never NOT_FOUND or success; nothing is written, and the
  // failure is not cached.
  for (const std::string cluster : {"baotou-rare-earth", "baotou-rare-earth", "no-such-cluster"}) {
    s = Join(TokenFor(kD), kD, cluster, v1::MEMBER);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << cluster << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("clusters service")) << cluster;
  }
  EXPECT_THAT(ClustersOf(kD), IsEmpty());
  std::vector<std::string> members;
  for (const auto& m : Members("hohhot-dairy")) members.push_back(m.enterprise());
  EXPECT_THAT(members, UnorderedElementsAre(NameOf(kYili), NameOf(kMengniu), NameOf(kA), NameOf(kB), NameOf(kC)));
}

// ------------------------------------------------------------------ certifications

TEST_F(EnterprisesTest, CertificationDepartmentsAndTheLadder) {
  ASSERT_TRUE(Register(NewEnterprise(kA, "专精特新企业")).ok());
  ASSERT_TRUE(Register(NewEnterprise(kB, "过期企业")).ok());

  // Rules are published.
  v1::CertificationRules rules;
  ASSERT_TRUE(Call(&Stub::GetCertificationRules, enterprise_a_, v1::GetCertificationRulesRequest(), &rules).ok());
  bool found_little_giant = false;
  for (const auto& r : rules.rules()) {
    if (r.kind() == v1::LITTLE_GIANT) {
      found_little_giant = true;
      EXPECT_EQ(r.requires(), v1::SPECIALIZED_SME);
      EXPECT_THAT(r.issuing_departments(), ElementsAre("industry_it"));
    }
  }
  EXPECT_TRUE(found_little_giant);

  // Science & Technology does not issue SPECIALIZED_SME: a field error naming the issuer.
  grpc::Status s = Grant(science_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.issuing_department"));
  EXPECT_THAT(s.error_message(), HasSubstr("science_technology does not issue SPECIALIZED_SME"));
  EXPECT_THAT(s.error_message(), HasSubstr("industry_it"));
  // Industry & IT does not issue HIGH_TECH.
  s = Grant(industry_it_, kA, v1::HIGH_TECH, GrantDate(), ExpiryDate());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.issuing_department"));
  // ... nor in Science & Technology's name.
  s = Grant(industry_it_, kA, v1::HIGH_TECH, GrantDate(), ExpiryDate(), nullptr, "science_technology");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // An enterprise cannot certify itself.
  s = Grant(enterprise_a_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate(), nullptr, "industry_it");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The right departments may.
  v1::Certification high_tech, quality;
  ASSERT_TRUE(Grant(science_, kA, v1::HIGH_TECH, GrantDate(), ExpiryDate(), &high_tech).ok());
  EXPECT_EQ(high_tech.issuing_department(), "science_technology");
  ASSERT_TRUE(Grant(market_, kA, v1::QUALITY_MANAGEMENT, GrantDate(), ExpiryDate(), &quality).ok());

  // LITTLE_GIANT needs a valid SPECIALIZED_SME first.
  s = Grant(industry_it_, kA, v1::LITTLE_GIANT, GrantDate(), ExpiryDate());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("SPECIALIZED_SME"));
  v1::Certification sme;
  s = Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate(), &sme);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(sme.state(), v1::Certification::VALID);
  EXPECT_EQ(sme.issuing_department(), "industry_it");
  EXPECT_EQ(sme.granted_by().subject(), "wang.li");
  EXPECT_THAT(sme.name(), HasSubstr(NameOf(kA) + "/certifications/"));
  v1::Certification giant;
  s = Grant(industry_it_, kA, v1::LITTLE_GIANT, GrantDate(), ExpiryDate(), &giant);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(giant.state(), v1::Certification::VALID);
  // A second valid one of the same kind: ALREADY_EXISTS.
  EXPECT_EQ(Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  // An expired SPECIALIZED_SME is listed as EXPIRED and does not open the ladder.
  v1::Certification old;
  s = Grant(industry_it_, kB, v1::SPECIALIZED_SME, D(2019, 1, 1), D(2020, 1, 1), &old);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(old.state(), v1::Certification::EXPIRED);
  auto b_certs = Certs(NameOf(kB));
  ASSERT_EQ(b_certs.size(), 1u);
  EXPECT_EQ(b_certs[0].state(), v1::Certification::EXPIRED);
  s = Grant(industry_it_, kB, v1::LITTLE_GIANT, GrantDate(), ExpiryDate());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // ... nor blocks a fresh grant of the same kind.
  EXPECT_TRUE(Grant(industry_it_, kB, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).ok());

  // Filters.
  EXPECT_EQ(Certs(NameOf(kA)).size(), 4u);
  EXPECT_EQ(Certs(NameOf(kA), "kind = LITTLE_GIANT").size(), 1u);
  EXPECT_EQ(Certs("enterprises/-", "kind = LITTLE_GIANT").size(), 1u);
  EXPECT_EQ(Certs("enterprises/-", "kind = SPECIALIZED_SME").size(), 3u);
  EXPECT_EQ(Certs("enterprises/-", "state = VALID").size(), 5u);
  auto expired = Certs("enterprises/-", "state = EXPIRED");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].name(), old.name());
  EXPECT_EQ(Certs("enterprises/-", "issuing_department = \"science_technology\"").size(), 1u);
  v1::ListCertificationsRequest bad;
  bad.set_parent("enterprises/-");
  bad.set_filter("kind = GIANT");
  v1::ListCertificationsResponse bad_resp;
  s = Call(&Stub::ListCertifications, industry_it_, bad, &bad_resp);
  EXPECT_THAT(FieldsOf(s), ElementsAre("filter"));
}

TEST_F(EnterprisesTest, CertificationRevokeAndDateErrors) {
  ASSERT_TRUE(Register(NewEnterprise(kA, "认证企业")).ok());
  v1::Certification sme;
  ASSERT_TRUE(Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate(), &sme).ok());

  v1::RevokeCertificationRequest revoke;
  revoke.set_name(sme.name());
  v1::Certification out;
  // Without a reason: INVALID_ARGUMENT on reason.
  grpc::Status s = Call(&Stub::RevokeCertification, industry_it_, revoke, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  // By another department or the enterprise: PERMISSION_DENIED.
  revoke.set_reason("found to misreport R&D spending");
  EXPECT_EQ(Call(&Stub::RevokeCertification, science_, revoke, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::RevokeCertification, enterprise_a_, revoke, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Certs(NameOf(kA), "state = VALID").size(), 1u);
  // By the issuing department, with a reason.
  s = Call(&Stub::RevokeCertification, industry_it_, revoke, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::Certification::REVOKED);
  EXPECT_EQ(out.revoke_reason(), "found to misreport R&D spending");
  EXPECT_TRUE(out.has_revoke_time());
  EXPECT_EQ(Call(&Stub::RevokeCertification, industry_it_, revoke, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(Certs(NameOf(kA), "state = VALID"), IsEmpty());
  EXPECT_EQ(Certs(NameOf(kA), "state = REVOKED").size(), 1u);
  // A revoked prerequisite does not open the ladder.
  EXPECT_EQ(Grant(industry_it_, kA, v1::LITTLE_GIANT, GrantDate(), ExpiryDate()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  auto audit = Audit("method = \"/clustergov.enterprises.v1.EnterprisesService/RevokeCertification\"");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].reason(), "found to misreport R&D spending");
  EXPECT_EQ(audit[0].resource(), sme.name());
  // Unknown certification.
  revoke.set_name(NameOf(kA) + "/certifications/999");
  EXPECT_EQ(Call(&Stub::RevokeCertification, industry_it_, revoke, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  // Date errors, each on its field.
  s = Grant(industry_it_, kA, v1::INNOVATIVE_SME, D(year_ - 1, 13, 1), ExpiryDate());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.grant_date"));
  s = Grant(industry_it_, kA, v1::INNOVATIVE_SME, D(year_ - 1, 2, 30), ExpiryDate());
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.grant_date"));
  s = Grant(industry_it_, kA, v1::INNOVATIVE_SME, D(year_ - 1, 6, 1), D(year_ - 1, 5, 31));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.expiry_date"));
  s = Grant(industry_it_, kA, v1::INNOVATIVE_SME, D(year_ + 1, 1, 1), D(year_ + 3, 1, 1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.grant_date"));
  EXPECT_THAT(s.error_message(), HasSubstr("future"));
  s = Grant(industry_it_, kA, v1::INNOVATIVE_SME, GrantDate(), google::type::Date());
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.expiry_date"));
  s = Grant(industry_it_, kA, v1::CERTIFICATION_KIND_UNSPECIFIED, GrantDate(), ExpiryDate());
  EXPECT_THAT(FieldsOf(s), ElementsAre("certification.kind"));
  // None of these wrote anything.
  EXPECT_EQ(Certs(NameOf(kA)).size(), 1u);
}

// ------------------------------------------------------------------ supply links

TEST_F(EnterprisesTest, SupplyLinks) {
  for (const auto& code : {kA, kB, kC}) ASSERT_TRUE(Register(NewEnterprise(code, "链上企业")).ok());
  ASSERT_TRUE(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER).ok());
  ASSERT_TRUE(Join(TokenFor(kB), kB, "hohhot-dairy", v1::MEMBER).ok());
  ASSERT_TRUE(Join(TokenFor(kC), kC, "baotou-rare-earth", v1::MEMBER).ok());  // not in dairy

  auto link = [&](const std::string& supplier, const std::string& buyer, const std::string& product) {
    v1::CreateSupplyLinkRequest req;
    req.mutable_supply_link()->set_supplier(NameOf(supplier));
    req.mutable_supply_link()->set_buyer(NameOf(buyer));
    req.mutable_supply_link()->set_cluster("clusters/hohhot-dairy");
    req.mutable_supply_link()->set_product(product);
    return req;
  };

  // Both ends members: recorded by one of them, and by the lead department.
  v1::SupplyLink ab, a_yili, b_yili, out;
  grpc::Status s = Call(&Stub::CreateSupplyLink, enterprise_a_, link(kA, kB, "生鲜乳"), &ab);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(ab.name(), HasSubstr("supplyLinks/"));
  EXPECT_EQ(ab.created_by().subject(), "user-" + kA);
  EXPECT_TRUE(ab.has_create_time());
  s = Call(&Stub::CreateSupplyLink, industry_it_, link(kA, kYili, "包装材料"), &a_yili);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Call(&Stub::CreateSupplyLink, promo_, link(kB, kYili, "饲料"), &b_yili);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Call(&Stub::CreateSupplyLink, enterprise_a_, link(kA, kB, "生鲜乳"), &out).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  // One end not a member of the cluster; one end not registered.
  s = Call(&Stub::CreateSupplyLink, enterprise_a_, link(kA, kC, "生鲜乳"), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not a member"));
  s = Call(&Stub::CreateSupplyLink, enterprise_a_, link(kA, kUnregistered, "生鲜乳"), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not registered"));
  // Supplier == buyer.
  s = Call(&Stub::CreateSupplyLink, enterprise_a_, link(kA, kA, "生鲜乳"), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("supply_link.buyer"));
  // An unrelated enterprise, or an auditor.
  EXPECT_EQ(Call(&Stub::CreateSupplyLink, TokenFor(kC), link(kA, kB, "奶粉"), &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::CreateSupplyLink, auditor_, link(kA, kB, "奶粉"), &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Suppliers of a buyer, buyers of a supplier.
  auto suppliers_of_yili = Links(absl::StrCat("buyer = \"", NameOf(kYili), "\""));
  std::vector<std::string> suppliers;
  for (const auto& l : suppliers_of_yili) suppliers.push_back(l.supplier());
  EXPECT_THAT(suppliers, UnorderedElementsAre(NameOf(kA), NameOf(kB)));
  auto buyers_of_a = Links(absl::StrCat("supplier = \"", NameOf(kA), "\""));
  std::vector<std::string> buyers;
  for (const auto& l : buyers_of_a) buyers.push_back(l.buyer());
  EXPECT_THAT(buyers, UnorderedElementsAre(NameOf(kB), NameOf(kYili)));
  EXPECT_EQ(Links("cluster = \"clusters/hohhot-dairy\" AND product = \"生鲜乳\"").size(), 1u);

  // The promotion organization of another cluster may neither record nor delete dairy links.
  const std::string other_promo =
      testing::MakeToken("rare.earth", "promotionOrgs/rare-earth-alliance", {"promotion_org"});
  EXPECT_EQ(Call(&Stub::CreateSupplyLink, other_promo, link(kA, kB, "奶粉"), &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::DeleteSupplyLinkRequest del;
  del.set_name(a_yili.name());
  EXPECT_EQ(Call(&Stub::DeleteSupplyLink, other_promo, del, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Delete: not by an unrelated enterprise; by the lead department.
  EXPECT_EQ(Call(&Stub::DeleteSupplyLink, TokenFor(kC), del, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Call(&Stub::DeleteSupplyLink, industry_it_, del, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Call(&Stub::DeleteSupplyLink, industry_it_, del, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  buyers.clear();
  for (const auto& l : Links(absl::StrCat("supplier = \"", NameOf(kA), "\""))) buyers.push_back(l.buyer());
  EXPECT_THAT(buyers, ElementsAre(NameOf(kB)));
  // The cluster's own promotion organization may delete.
  del.set_name(b_yili.name());
  s = Call(&Stub::DeleteSupplyLink, promo_, del, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.name(), b_yili.name());
  EXPECT_THAT(Links(absl::StrCat("buyer = \"", NameOf(kYili), "\"")), IsEmpty());

  // Leaving the cluster ends the enterprise's links there.
  v1::LeaveClusterRequest leave;
  leave.set_name(NameOf(kB) + "/memberships/hohhot-dairy");
  v1::Membership left;
  ASSERT_TRUE(Call(&Stub::LeaveCluster, TokenFor(kB), leave, &left).ok());
  EXPECT_THAT(Links(absl::StrCat("supplier = \"", NameOf(kA), "\"")), IsEmpty());
  EXPECT_THAT(Links(absl::StrCat("supplier = \"", NameOf(kB), "\"")), IsEmpty());
  EXPECT_THAT(Links(""), IsEmpty());
}

// ------------------------------------------------------------------ pipeline

TEST_F(EnterprisesTest, CultivationPipelineCounts) {
  using Counts = std::map<int, int>;
  auto kinds = [](const v1::CultivationPipeline& p) {
    return CountsOf<Counts>(p.certifications(), [](const auto& k) { return k.kind(); });
  };
  auto sizes = [](const v1::CultivationPipeline& p) {
    return CountsOf<Counts>(p.sizes(), [](const auto& k) { return k.size_class(); });
  };
  auto roles = [](const v1::CultivationPipeline& p) {
    return CountsOf<Counts>(p.roles(), [](const auto& k) { return k.role(); });
  };

  v1::CultivationPipeline before = Pipeline("clusters/hohhot-dairy");
  EXPECT_EQ(before.cluster(), "clusters/hohhot-dairy");
  EXPECT_EQ(before.enterprise_count(), 2);
  EXPECT_EQ(sizes(before), (Counts{{v1::LARGE, 2}}));
  EXPECT_EQ(roles(before), (Counts{{v1::LEAD_ENTERPRISE, 2}}));
  EXPECT_TRUE(kinds(before).empty());

  ASSERT_TRUE(Register(NewEnterprise(kA, "小企业", "150100", v1::SMALL)).ok());
  ASSERT_TRUE(Register(NewEnterprise(kB, "中企业", "150100", v1::MEDIUM)).ok());
  ASSERT_TRUE(Register(NewEnterprise(kC, "区外企业", "150200", v1::MICRO)).ok());  // in no cluster
  ASSERT_TRUE(Join(enterprise_a_, kA, "hohhot-dairy", v1::MEMBER).ok());
  ASSERT_TRUE(Join(industry_it_, kB, "hohhot-dairy", v1::CHAIN_LEADER).ok());
  ASSERT_TRUE(Grant(industry_it_, kA, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(industry_it_, kYili, v1::SMART_FACTORY, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(industry_it_, kB, v1::SPECIALIZED_SME, D(2019, 1, 1), D(2020, 1, 1)).ok());  // expired
  ASSERT_TRUE(Grant(industry_it_, kC, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).ok());    // not a member

  v1::CultivationPipeline dairy = Pipeline("clusters/hohhot-dairy");
  EXPECT_EQ(dairy.enterprise_count(), 4);
  EXPECT_EQ(sizes(dairy), (Counts{{v1::LARGE, 2}, {v1::MEDIUM, 1}, {v1::SMALL, 1}}));
  EXPECT_EQ(roles(dairy), (Counts{{v1::LEAD_ENTERPRISE, 2}, {v1::CHAIN_LEADER, 1}, {v1::MEMBER, 1}}));
  EXPECT_EQ(kinds(dairy), (Counts{{v1::SPECIALIZED_SME, 1}, {v1::SMART_FACTORY, 1}}));
  // Asked again (now from the cache): the same.
  EXPECT_EQ(Pipeline("clusters/hohhot-dairy").SerializeAsString(), dairy.SerializeAsString());

  // A grant changes it (the cached pipeline is invalidated).
  ASSERT_TRUE(Grant(industry_it_, kA, v1::LITTLE_GIANT, GrantDate(), ExpiryDate()).ok());
  dairy = Pipeline("clusters/hohhot-dairy");
  EXPECT_EQ(kinds(dairy), (Counts{{v1::SPECIALIZED_SME, 1}, {v1::LITTLE_GIANT, 1}, {v1::SMART_FACTORY, 1}}));
  // So does leaving.
  v1::LeaveClusterRequest leave;
  leave.set_name(NameOf(kB) + "/memberships/hohhot-dairy");
  v1::Membership left;
  ASSERT_TRUE(Call(&Stub::LeaveCluster, industry_it_, leave, &left).ok());
  dairy = Pipeline("clusters/hohhot-dairy");
  EXPECT_EQ(dairy.enterprise_count(), 3);
  EXPECT_EQ(roles(dairy), (Counts{{v1::LEAD_ENTERPRISE, 2}, {v1::MEMBER, 1}}));

  // The whole region: every active enterprise, members or not.
  int seed_memberships = 0;
  const int leads = static_cast<int>(SeedLeads(&seed_memberships).size());
  v1::CultivationPipeline region = Pipeline("clusters/-");
  EXPECT_EQ(region.cluster(), "clusters/-");
  EXPECT_EQ(region.enterprise_count(), leads + 3);
  EXPECT_EQ(sizes(region), (Counts{{v1::LARGE, leads}, {v1::MEDIUM, 1}, {v1::SMALL, 1}, {v1::MICRO, 1}}));
  EXPECT_EQ(roles(region), (Counts{{v1::LEAD_ENTERPRISE, seed_memberships}, {v1::MEMBER, 1}}));
  EXPECT_EQ(kinds(region), (Counts{{v1::SPECIALIZED_SME, 2}, {v1::LITTLE_GIANT, 1}, {v1::SMART_FACTORY, 1}}));

  v1::GetCultivationPipelineRequest bad;
  bad.set_cluster("hohhot-dairy");
  v1::CultivationPipeline out;
  EXPECT_THAT(FieldsOf(Call(&Stub::GetCultivationPipeline, industry_it_, bad, &out)), ElementsAre("cluster"));
}

TEST_F(EnterprisesTest, CultivationPipelineOfAnUnknownClusterIsNotFound) {
  v1::GetCultivationPipelineRequest req;
  req.set_cluster("clusters/no-such-cluster");
  v1::CultivationPipeline out;
  grpc::Status s = Call(&Stub::GetCultivationPipeline, industry_it_, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("clusters/no-such-cluster"));
  // Asked again (nothing cached for it): still NOT_FOUND; a known cluster still answers.
  EXPECT_EQ(Call(&Stub::GetCultivationPipeline, industry_it_, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Pipeline("clusters/hohhot-dairy").cluster(), "clusters/hohhot-dairy");
}

// ------------------------------------------------------------------ cache

TEST_F(EnterprisesTest, GetEnterpriseIsCachedAndInvalidatedOnUpdate) {
  auto& registry = enterprises_.runtime().metrics().registry();
  grpc::Status s;
  v1::Enterprise first = Get(kYili, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const double hits0 = CounterValue(registry, "clustergov_cache_hits_total");
  v1::Enterprise second = Get(kYili, &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(CounterValue(registry, "clustergov_cache_hits_total"), hits0 + 1);
  EXPECT_EQ(second.SerializeAsString(), first.SerializeAsString());

  v1::UpdateEnterpriseRequest update;
  update.mutable_enterprise()->set_name(NameOf(kYili));
  update.mutable_enterprise()->set_name_en("Yili Group");
  update.mutable_enterprise()->set_employees(60000);
  update.mutable_update_mask()->add_paths("name_en");
  update.mutable_update_mask()->add_paths("employees");
  v1::Enterprise updated;
  s = Call(&Stub::UpdateEnterprise, industry_it_, update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int i = 0; i < 3; ++i) {
    v1::Enterprise after = Get(kYili);
    EXPECT_EQ(after.name_en(), "Yili Group");
    EXPECT_EQ(after.employees(), 60000);
    EXPECT_EQ(after.etag(), updated.etag());
  }
}

// ------------------------------------------------------------------ audit, auth

TEST_F(EnterprisesTest, AuditTrail) {
  ASSERT_TRUE(Register(NewEnterprise(kA, "审计企业"), nullptr, "", "register-a-0001").ok());
  auto events = Audit(absl::StrCat("method = \"/clustergov.enterprises.v1.EnterprisesService/RegisterEnterprise\" AND resource = \"", NameOf(kA), "\""));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].method(), "/clustergov.enterprises.v1.EnterprisesService/RegisterEnterprise");
  EXPECT_EQ(events[0].idempotency_key(), "register-a-0001");
  EXPECT_EQ(events[0].actor().subject(), "wang.li");
  EXPECT_EQ(events[0].actor().organization(), "departments/industry_it");
  EXPECT_THAT(events[0].actor().roles(), ElementsAre("government"));
  EXPECT_TRUE(events[0].etag_before().empty());
  EXPECT_FALSE(events[0].etag_after().empty());
  EXPECT_EQ(events[0].request_id(), "test-call");
  // The seed is audited too.
  EXPECT_FALSE(Audit("method = \"Seed\"").empty());

  common::v1::ListAuditEventsRequest req;
  common::v1::ListAuditEventsResponse resp;
  EXPECT_EQ(Call(&Stub::ListAuditEvents, enterprise_a_, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::ListAuditEvents, promo_, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(EnterprisesTest, CallsNeedAValidToken) {
  v1::GetEnterpriseRequest get;
  get.set_name(NameOf(kYili));
  v1::Enterprise out;
  EXPECT_EQ(Call(&Stub::GetEnterprise, "", get, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  std::string expired = testing::MakeToken("wang.li", "departments/industry_it", {"government"}, -600);
  EXPECT_EQ(Call(&Stub::GetEnterprise, expired, get, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::RegisterEnterpriseRequest reg;
  *reg.mutable_enterprise() = NewEnterprise(kA, "无令牌");
  EXPECT_EQ(Call(&Stub::RegisterEnterprise, "", reg, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::GetCultivationPipelineRequest pipe;
  pipe.set_cluster("clusters/-");
  v1::CultivationPipeline p;
  EXPECT_EQ(Call(&Stub::GetCultivationPipeline, "", pipe, &p).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status s;
  Get(kA, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}


// ------------------------------------------------------------------ cluster strength and indicators

namespace strength {

// The worked example of docs/enterprises.md: eight regions, the cluster present in five.
std::vector<RegionEmployment> Example() {
  return {{"150100", 500, 5, 2000}, {"150200", 300, 3, 1500}, {"150300", 40, 1, 100},
          {"150400", 100, 2, 4000}, {"150500", 60, 2, 2400},  {"150600", 0, 0, 3000},
          {"150700", 0, 0, 5000},   {"150800", 0, 0, 2000}};
}

TEST(ClusterStrengthTest, NearestRankPercentile) {
  EXPECT_EQ(NearestRankPercentile({}, 75), 0);
  EXPECT_EQ(NearestRankPercentile({7}, 25), 7);
  // N = 5: rank ceil(0.75 × 5) = 4, ceil(0.25 × 5) = 2.
  EXPECT_EQ(NearestRankPercentile({50, 10, 40, 20, 30}, 75), 40);
  EXPECT_EQ(NearestRankPercentile({50, 10, 40, 20, 30}, 25), 20);
  // N = 4: ranks 3 and 1 exactly.
  EXPECT_EQ(NearestRankPercentile({4, 3, 2, 1}, 75), 3);
  EXPECT_EQ(NearestRankPercentile({4, 3, 2, 1}, 25), 1);
  EXPECT_EQ(NearestRankPercentile({4, 3, 2, 1}, 100), 4);
}

TEST(ClusterStrengthTest, LocationQuotientInBasisPoints) {
  EXPECT_EQ(LocationQuotientBp(500, 2000, 1000, 20000), 50000);  // (500/2000) / (1000/20000) = 5
  EXPECT_EQ(LocationQuotientBp(1, 3, 1, 1), 3333);                // 0.33333 → 3333
  EXPECT_EQ(LocationQuotientBp(2, 3, 1, 1), 6667);                // 0.66667 → 6667 (half up)
  EXPECT_EQ(LocationQuotientBp(0, 100, 10, 100), 0);
  EXPECT_EQ(LocationQuotientBp(10, 0, 10, 100), 0);               // no registered employment
  EXPECT_EQ(LocationQuotientBp(10, 100, 0, 100), 0);
  // Beyond 64-bit intermediates: 10^7 × 10^13 × 10^4.
  EXPECT_EQ(LocationQuotientBp(10000000, 10000000, 10000000, 10000000000000LL), 10000000000000LL * 10000 / 10000000);
}

TEST(ClusterStrengthTest, WorkedExample) {
  v1::ClusterStrength s = ComputeStrength(Example());
  EXPECT_EQ(s.cluster_employment(), 1000);
  EXPECT_EQ(s.total_employment(), 20000);
  std::vector<int64_t> lqs;
  std::vector<bool> strong;
  for (const auto& r : s.regions()) {
    lqs.push_back(r.location_quotient_bp());
    strong.push_back(r.strong());
  }
  EXPECT_THAT(lqs, ElementsAre(50000, 40000, 80000, 5000, 5000, 0, 0, 0));
  // Present regions' LQs 5000 5000 40000 50000 80000: rank 4 → 50000; employment 40 60 100 300
  // 500: rank 2 → 60; establishments 1 2 2 3 5: rank 2 → 2.
  EXPECT_EQ(s.location_quotient_p75_bp(), 50000);
  EXPECT_EQ(s.employment_p25(), 60);
  EXPECT_EQ(s.establishments_p25(), 2);
  // 150100 is strong; 150300 has the highest LQ but too few employees and establishments.
  EXPECT_THAT(strong, ElementsAre(true, false, false, false, false, false, false, false));
  EXPECT_EQ(s.strong_regions(), 1);
}

TEST(ClusterStrengthTest, AtTheSeventyFifthPercentileButBelowOneIsNotStrong) {
  // LQs 820, 1230, 1640, 2050 and 352600 bp: the 75th percentile (rank 4) is 2050, which the
  // fourth region reaches, but an LQ under 1.0 is never strong.
  v1::ClusterStrength s = ComputeStrength(
      {{"150100", 2, 1, 100}, {"150200", 3, 1, 100}, {"150300", 4, 1, 100}, {"150400", 5, 1, 100}, {"150500", 86, 1, 10}});
  EXPECT_EQ(s.location_quotient_p75_bp(), 2050);
  EXPECT_EQ(s.regions(3).location_quotient_bp(), 2050);
  EXPECT_FALSE(s.regions(3).strong());
  EXPECT_EQ(s.regions(4).location_quotient_bp(), 352600);
  EXPECT_TRUE(s.regions(4).strong());
  EXPECT_EQ(s.strong_regions(), 1);
  // Members who employ nobody: nothing is strong.
  v1::ClusterStrength empty = ComputeStrength({{"150100", 0, 2, 400}, {"150200", 0, 0, 800}});
  EXPECT_EQ(empty.strong_regions(), 0);
}

}  // namespace strength

std::map<std::string, common::v1::Indicator> ByKey(const common::v1::ClusterIndicators& set) {
  std::map<std::string, common::v1::Indicator> out;
  for (const auto& i : set.indicators()) out[i.key()] = i;
  return out;
}

class ClusterIndicatorsTest : public EnterprisesTest {
 protected:
  // Registers an enterprise in `region` with `employees`, joined to the hydrogen cluster when
  // `role` is set (by its lead department, energy).
  std::string Add(const std::string& region, int employees, v1::MemberRole role = v1::MEMBER_ROLE_UNSPECIFIED,
                  v1::SizeClass size = v1::SMALL, int64_t output = 0) {
    const std::string code = Code(next_++);
    v1::Enterprise e = NewEnterprise(code, "氢能企业", region, size, "hydrogen");
    e.set_employees(employees);
    e.set_annual_output_cny_10k(output);
    grpc::Status s = Register(e);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (role != v1::MEMBER_ROLE_UNSPECIFIED) {
      s = Join(energy_, code, "hydrogen", role);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return code;
  }

  grpc::Status Indicators(const std::string& token, const std::string& cluster, int year,
                          common::v1::ClusterIndicators* out) {
    common::v1::GetClusterIndicatorsRequest req;
    req.set_cluster(cluster);
    req.set_year(year);
    return Call(&Stub::GetClusterIndicators, token, req, out);
  }

  int next_ = 100;
};

TEST_F(ClusterIndicatorsTest, StrengthFromTheRegistryMatchesTheWorkedExample) {
  // The example's members (establishments × employees) and, per region, one non-member making up
  // the rest of the registered employment.
  struct Region {
    const char* code;
    std::vector<int> members;
    int others;
  };
  const std::vector<Region> regions = {
      {"150100", {100, 100, 100, 100, 100}, 1500}, {"150200", {100, 100, 100}, 1200}, {"150300", {40}, 60},
      {"150400", {50, 50}, 3900},                  {"150500", {30, 30}, 2340},        {"150600", {}, 3000},
      {"150700", {}, 5000},                        {"150800", {}, 2000}};
  for (const auto& r : regions) {
    for (int employees : r.members) Add(r.code, employees, v1::MEMBER);
    Add(r.code, r.others);
  }
  // A deregistered member counts nowhere.
  const std::string gone = Add("150100", 7000, v1::MEMBER);
  v1::DeregisterEnterpriseRequest dereg;
  dereg.set_name(NameOf(gone));
  v1::Enterprise out;
  ASSERT_TRUE(Call(&Stub::DeregisterEnterprise, industry_it_, dereg, &out).ok());

  v1::GetClusterStrengthRequest req;
  req.set_cluster("clusters/hydrogen");
  v1::ClusterStrength s;
  grpc::Status status = Call(&Stub::GetClusterStrength, auditor_, req, &s);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.cluster(), "clusters/hydrogen");
  ASSERT_EQ(s.regions_size(), 12);  // every league region, in code order
  EXPECT_EQ(s.regions(0).region(), "150100");
  EXPECT_EQ(s.regions(11).region(), "152900");
  EXPECT_EQ(s.cluster_employment(), 1000);
  EXPECT_EQ(s.total_employment(), 20000);  // the seed's lead enterprises employ nobody
  std::map<std::string, int64_t> lq;
  std::set<std::string> strong;
  for (const auto& r : s.regions()) {
    lq[r.region()] = r.location_quotient_bp();
    if (r.strong()) strong.insert(r.region());
  }
  EXPECT_EQ(lq["150100"], 50000);
  EXPECT_EQ(lq["150200"], 40000);
  EXPECT_EQ(lq["150300"], 80000);
  EXPECT_EQ(lq["150400"], 5000);
  EXPECT_EQ(lq["150500"], 5000);
  EXPECT_EQ(lq["150600"], 0);
  EXPECT_EQ(s.regions(0).employment(), 500);
  EXPECT_EQ(s.regions(0).establishments(), 5);
  EXPECT_EQ(s.regions(0).region_employment(), 2000);
  EXPECT_EQ(s.location_quotient_p75_bp(), 50000);
  EXPECT_EQ(s.employment_p25(), 60);
  EXPECT_EQ(s.establishments_p25(), 2);
  EXPECT_THAT(strong, ElementsAre("150100"));
  EXPECT_TRUE(s.has_as_of());

  // The same figures as indicators.
  common::v1::ClusterIndicators set;
  ASSERT_TRUE(Indicators(service_token_, "clusters/hydrogen", year_, &set).ok());
  auto by_key = ByKey(set);
  EXPECT_EQ(by_key["enterprises.strength.strong_regions"].value(), 1);
  EXPECT_EQ(by_key["enterprises.strength.max_location_quotient"].value(), 80000);
  EXPECT_EQ(by_key["enterprises.strength.max_location_quotient"].unit(), "bp");
  EXPECT_EQ(by_key["enterprises.employees"].value(), 1000);

  // Bad and unknown clusters; callers who may not read.
  req.set_cluster("hydrogen");
  status = Call(&Stub::GetClusterStrength, auditor_, req, &s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(status), ElementsAre("cluster"));
  req.set_cluster("clusters/no-such-cluster");
  EXPECT_EQ(Call(&Stub::GetClusterStrength, auditor_, req, &s).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_cluster("clusters/hydrogen");
  EXPECT_EQ(Call(&Stub::GetClusterStrength, enterprise_a_, req, &s).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The region totals are cached until the next registry write, which the next answer sees.
  Add("150100", 2000);
  status = Call(&Stub::GetClusterStrength, auditor_, req, &s);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.regions(0).region_employment(), 4000);
  EXPECT_EQ(s.total_employment(), 22000);
  EXPECT_EQ(s.regions(0).location_quotient_bp(), 27500);  // (500/4000) / (1000/22000)
}

TEST_F(ClusterIndicatorsTest, MembersCertificationsLinksEmployeesAndOutput) {
  const std::string lead = Add("150100", 900, v1::LEAD_ENTERPRISE, v1::LARGE, 250000);
  const std::string chain = Add("150200", 300, v1::CHAIN_LEADER, v1::MEDIUM, 40000);
  const std::string small = Add("150200", 80, v1::MEMBER, v1::SMALL, 3000);
  const std::string micro = Add("150600", 9, v1::MEMBER, v1::MICRO, 120);
  Add("150100", 5000);  // not a member
  // Certifications: valid this year (the ladder: specialized, then little giant), one granted by
  // science and technology, and one revoked today (held this year, not next).
  ASSERT_TRUE(Grant(industry_it_, small, v1::SPECIALIZED_SME, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(industry_it_, small, v1::LITTLE_GIANT, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(science_, lead, v1::HIGH_TECH, GrantDate(), ExpiryDate()).ok());
  ASSERT_TRUE(Grant(science_, chain, v1::HIGH_TECH, GrantDate(), ExpiryDate()).ok());
  v1::Certification green;
  ASSERT_TRUE(Grant(industry_it_, lead, v1::GREEN_FACTORY, GrantDate(), ExpiryDate(), &green).ok());
  v1::RevokeCertificationRequest revoke;
  revoke.set_name(green.name());
  revoke.set_reason("整改未通过");
  v1::Certification revoked;
  ASSERT_TRUE(Call(&Stub::RevokeCertification, industry_it_, revoke, &revoked).ok());
  // Supply links: large → small (融通) and small → micro.
  auto link = [&](const std::string& supplier, const std::string& buyer) {
    v1::CreateSupplyLinkRequest req;
    req.mutable_supply_link()->set_supplier(NameOf(supplier));
    req.mutable_supply_link()->set_buyer(NameOf(buyer));
    req.mutable_supply_link()->set_cluster("clusters/hydrogen");
    req.mutable_supply_link()->set_product("氢气");
    v1::SupplyLink out;
    return Call(&Stub::CreateSupplyLink, energy_, req, &out);
  };
  ASSERT_TRUE(link(lead, small).ok());
  ASSERT_TRUE(link(small, micro).ok());

  common::v1::ClusterIndicators set;
  grpc::Status s = Indicators(industry_it_, "clusters/hydrogen", year_, &set);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(set.cluster(), "clusters/hydrogen");
  EXPECT_EQ(set.year(), year_);
  auto v = ByKey(set);
  std::map<std::string, int64_t> values;
  for (const auto& [key, i] : v) {
    values[key] = i.value();
    EXPECT_EQ(i.source(), "enterprises") << key;
    EXPECT_TRUE(i.has_as_of()) << key;
    EXPECT_NE(i.dimension(), common::v1::DIMENSION_UNSPECIFIED) << key;
    EXPECT_FALSE(i.unit().empty()) << key;
    EXPECT_FALSE(i.description().empty()) << key;
  }
  EXPECT_EQ(values["enterprises.members.total"], 4);
  EXPECT_EQ(values["enterprises.members.lead_enterprise"], 1);
  EXPECT_EQ(values["enterprises.members.chain_leader"], 1);
  EXPECT_EQ(values["enterprises.members.member"], 2);
  EXPECT_EQ(values["enterprises.members.size.large"], 1);
  EXPECT_EQ(values["enterprises.members.size.medium"], 1);
  EXPECT_EQ(values["enterprises.members.size.small"], 1);
  EXPECT_EQ(values["enterprises.members.size.micro"], 1);
  EXPECT_EQ(values["enterprises.certifications.specialized_sme"], 1);
  EXPECT_EQ(values["enterprises.certifications.little_giant"], 1);
  EXPECT_EQ(values["enterprises.certifications.high_tech"], 2);
  EXPECT_EQ(values["enterprises.certifications.green_factory"], 1);  // revoked today: held this year
  EXPECT_EQ(values["enterprises.certifications.single_champion"], 0);
  EXPECT_EQ(values["enterprises.supply_links.total"], 2);
  EXPECT_EQ(values["enterprises.supply_links.large_sme"], 1);
  EXPECT_EQ(values["enterprises.employees"], 900 + 300 + 80 + 9);
  EXPECT_EQ(values["enterprises.annual_output"], 250000 + 40000 + 3000 + 120);
  EXPECT_EQ(v["enterprises.annual_output"].unit(), "cny_10k");
  EXPECT_EQ(v["enterprises.certifications.little_giant"].dimension(), common::v1::DIMENSION_INNOVATION);
  EXPECT_EQ(v["enterprises.certifications.green_factory"].dimension(), common::v1::DIMENSION_MANUFACTURING);
  EXPECT_EQ(values.size(), 8u + 10u + 2u + 2u + 2u);  // members, kinds, links, employees/output, strength

  // Next year: the revoked certification is gone, the others still valid (they expire later).
  ASSERT_TRUE(Indicators(admin_, "clusters/hydrogen", year_ + 1, &set).ok());
  v = ByKey(set);
  EXPECT_EQ(v["enterprises.certifications.green_factory"].value(), 0);
  EXPECT_EQ(v["enterprises.certifications.high_tech"].value(), 2);
  // Five years on, every certification has expired; links made now did not exist last year.
  ASSERT_TRUE(Indicators(admin_, "clusters/hydrogen", year_ + 5, &set).ok());
  EXPECT_EQ(ByKey(set)["enterprises.certifications.high_tech"].value(), 0);
  ASSERT_TRUE(Indicators(admin_, "clusters/hydrogen", year_ - 1, &set).ok());
  EXPECT_EQ(ByKey(set)["enterprises.supply_links.total"].value(), 0);
  EXPECT_EQ(ByKey(set)["enterprises.certifications.high_tech"].value(), 2);  // granted last January
}

TEST_F(ClusterIndicatorsTest, RefusesBadInputUnknownClustersAndOtherRoles) {
  common::v1::ClusterIndicators set;
  grpc::Status s = Indicators(industry_it_, "hydrogen", 1999, &set);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("cluster", "year"));
  s = Indicators(industry_it_, "clusters/hydrogen", 2101, &set);
  EXPECT_THAT(FieldsOf(s), ElementsAre("year"));
  s = Indicators(industry_it_, "clusters/no-such-cluster", year_, &set);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  for (const auto& token : {enterprise_a_, promo_, testing::MakeToken("t1", "talents/t1", {"talent"})}) {
    EXPECT_EQ(Indicators(token, "clusters/hydrogen", year_, &set).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(Indicators("", "clusters/hydrogen", year_, &set).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  for (const auto& token : {industry_it_, auditor_, admin_, service_token_}) {
    EXPECT_TRUE(Indicators(token, "clusters/hydrogen", year_, &set).ok());
  }
}

TEST_F(ClusterIndicatorsTest, AnnualOutputIsValidatedAndUpdatable) {
  v1::Enterprise e = NewEnterprise(kA, "产值企业");
  e.set_annual_output_cny_10k(-1);
  grpc::Status s = Register(e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("enterprise.annual_output_cny_10k"));
  e.set_annual_output_cny_10k(1000000001);
  EXPECT_THAT(FieldsOf(Register(e)), ElementsAre("enterprise.annual_output_cny_10k"));
  e.set_annual_output_cny_10k(1000000000);
  v1::Enterprise created;
  ASSERT_TRUE(Register(e, &created).ok());
  EXPECT_EQ(created.annual_output_cny_10k(), 1000000000);

  v1::UpdateEnterpriseRequest update;
  update.mutable_enterprise()->set_name(NameOf(kA));
  update.mutable_enterprise()->set_annual_output_cny_10k(5200);
  update.mutable_enterprise()->set_employees(77);  // not in the mask: unchanged
  update.mutable_update_mask()->add_paths("annual_output_cny_10k");
  v1::Enterprise updated;
  ASSERT_TRUE(Call(&Stub::UpdateEnterprise, industry_it_, update, &updated).ok());
  EXPECT_EQ(updated.annual_output_cny_10k(), 5200);
  EXPECT_EQ(updated.employees(), 120);
  update.mutable_enterprise()->set_annual_output_cny_10k(-5);
  s = Call(&Stub::UpdateEnterprise, industry_it_, update, &updated);
  EXPECT_THAT(FieldsOf(s), ElementsAre("enterprise.annual_output_cny_10k"));
  EXPECT_EQ(Get(kA).annual_output_cny_10k(), 5200);
}

TEST_F(ClusterIndicatorsTest, TheClientLibraryAsTheClustersServiceUsesIt) {
  Add("150100", 10, v1::MEMBER);
  auto source = NewEnterprisesIndicatorSource(server::MakeChannel(enterprises_.address()), absl::Seconds(5));
  EXPECT_EQ(source->name(), "enterprises");
  server::CallContext call;
  call.own_token = service_token_;
  auto got = source->GetClusterIndicators(call, "clusters/hydrogen", year_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(ByKey(*got)["enterprises.members.total"].value(), 1);
  auto unknown = source->GetClusterIndicators(call, "clusters/no-such-cluster", year_);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("enterprises: "));
  auto bad = source->GetClusterIndicators(call, "clusters/hydrogen", 1999);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  call.own_token = enterprise_a_;
  EXPECT_EQ(source->GetClusterIndicators(call, "clusters/hydrogen", year_).status().code(),
            absl::StatusCode::kPermissionDenied);
  // The service down: UNAVAILABLE naming it.
  call.own_token = service_token_;
  enterprises_.Stop();
  auto down = source->GetClusterIndicators(call, "clusters/hydrogen", year_);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(down.status().message()), HasSubstr("the enterprises service is unavailable"));
}

}  // namespace
}  // namespace clustergov::enterprises

// The support service end to end in-process: real clusters, enterprises and support services,
// each with its own Runtime (gRPC server on a loopback port; its store a SQLite file, or in
// support_test_postgres a PostgreSQL database), one real redis-server shared by all three, and
// clients calling through the generated stubs. The support service checks clusters and membership through ClusterDirectory and EnterpriseDirectory over real gRPC.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "common/refdata/uscc.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "common/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
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
#include "prometheus/registry.h"
#include "services/support/client/indicator_source.h"
#include "services/support/support_domain.h"
#include "services/support/support_metrics.h"
#include "services/support/support_repository.h"
#include "services/support/support_service.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::support {
namespace {

namespace ev1 = ::clustergov::enterprises::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::google::protobuf::util::TimeUtil;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;
using App = v1::Application;
using Entry = v1::LedgerEntry;
using State = v1::Application::State;
using Stub = v1::SupportService::Stub;
using EStub = ev1::EnterprisesService::Stub;
using Code = grpc::StatusCode;

constexpr int kYear = 2025;
constexpr char kHohhot[] = "150100";
constexpr char kDairy[] = "clusters/hohhot-dairy";
constexpr int64_t k2Pow50 = int64_t{1} << 50;
const absl::Duration kDefaultLifetime = absl::Hours(24 * 180);

using testing::FieldsOf;
using testing::Invoke;

using testing::Describe;

using testing::Uscc;

std::string EnterpriseName(const std::string& uscc) { return "enterprises/" + uscc; }

std::string PoolOf(v1::ResourceKind kind, const std::string& pollutant = "", const std::string& region = kHohhot,
                   int year = kYear) {
  return SupportDomain::PoolName(region, year, kind, pollutant);
}

v1::Item Qty(v1::ResourceKind kind, int64_t quantity, const std::string& pollutant = "") {
  v1::Item item;
  item.set_kind(kind);
  item.set_quantity(quantity);
  item.set_pollutant(pollutant);
  return item;
}

v1::Item Land(const std::vector<std::string>& parcels) {
  v1::Item item;
  item.set_kind(v1::LAND);
  for (const auto& p : parcels) item.add_parcel_ids(p);
  return item;
}

v1::Parcel MakeParcel(const std::string& id, int64_t area, const std::string& location = "金山开发区") {
  v1::Parcel p;
  p.set_id(id);
  p.set_area_m2(area);
  p.set_location(location);
  return p;
}

int64_t Micros(const google::protobuf::Timestamp& t) { return TimeUtil::TimestampToMicroseconds(t); }

// Sleeps until `t` (plus a margin) has passed; bounded at 10 s.
void WaitUntilPast(const google::protobuf::Timestamp& t) {
  const absl::Time target = absl::FromUnixMicros(Micros(t)) + absl::Milliseconds(20);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() <= target && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_GT(absl::Now(), target);
}

// The value of the series of `name` whose labels are exactly `labels`; nullopt when there is none.
std::optional<double> GaugeValue(prometheus::Registry& registry, const std::string& name,
                                 const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label) have[l.name] = l.value;
      if (have == labels) return m.gauge.value;
    }
  }
  return std::nullopt;
}

// How many series `name` has (0 when it has none or is not registered).
size_t SeriesCount(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name) return family.metric.size();
  }
  return 0;
}

enum class Action { kSubmit, kStartReview, kApprove, kReject, kReturn, kAllocate, kWithdraw, kUpdate };

const char* ActionName(Action a) {
  switch (a) {
    case Action::kSubmit: return "submit";
    case Action::kStartReview: return "startReview";
    case Action::kApprove: return "approve";
    case Action::kReject: return "reject";
    case Action::kReturn: return "return";
    case Action::kAllocate: return "allocate";
    case Action::kWithdraw: return "withdraw";
    case Action::kUpdate: return "update";
  }
  return "?";
}

bool ByApplicant(Action a) { return a == Action::kSubmit || a == Action::kWithdraw || a == Action::kUpdate; }

// The legal transitions from DRAFT that reach `s` (EXPIRED: up to APPROVED, then expiry).
std::vector<Action> PathTo(State s) {
  switch (s) {
    case App::SUBMITTED: return {Action::kSubmit};
    case App::UNDER_REVIEW: return {Action::kSubmit, Action::kStartReview};
    case App::APPROVED:
    case App::EXPIRED: return {Action::kSubmit, Action::kStartReview, Action::kApprove};
    case App::REJECTED: return {Action::kSubmit, Action::kStartReview, Action::kReject};
    case App::RETURNED: return {Action::kSubmit, Action::kStartReview, Action::kReturn};
    case App::ALLOCATED: return {Action::kSubmit, Action::kStartReview, Action::kApprove, Action::kAllocate};
    case App::WITHDRAWN: return {Action::kWithdraw};
    default: return {};
  }
}

class SupportTest : public ::testing::Test {
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
    test_start_micros_ = absl::ToUnixMicros(absl::Now());
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();

    // The clusters service, seeded.
    auto cstarted = clusters_.Start(Config("clusters", "clusters.db"), *seed);
    ASSERT_TRUE(cstarted.ok()) << cstarted;

    // The enterprises service, seeded, checking clusters over gRPC.
    auto estarted = enterprises_.Start(Config("enterprises", "enterprises.db"), clusters_.address(), &*seed);
    ASSERT_TRUE(estarted.ok()) << estarted.status();
    estub_ = ev1::EnterprisesService::NewStub(
        grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));

    // Enterprise A: registered, a member of clusters/hohhot-dairy (joined by its lead department).
    grpc::Status s = RegisterEnterprise(kA);
    ASSERT_TRUE(s.ok()) << Describe(s);
    s = Join(industry_it_, kA, "hohhot-dairy");
    ASSERT_TRUE(s.ok()) << Describe(s);

    ASSERT_NO_FATAL_FAILURE(StartSupport(kDefaultLifetime));
  }

  void TearDown() override {
    StopSupport();
    enterprises_.Stop();
    clusters_.Stop();
    estub_.reset();
  }

  // The support service on support.db, with `lifetime` reservations.
  void StartSupport(absl::Duration lifetime) {
    auto rt = server::Runtime::Create(Config("support", "support.db"));
    ASSERT_TRUE(rt.ok()) << rt.status();
    srt_ = std::move(*rt);
    cluster_directory_ = std::make_unique<clusters::ClusterDirectory>(
        *srt_, server::MakeChannel(clusters_.address()), std::chrono::seconds(60));
    enterprise_directory_ = std::make_unique<enterprises::EnterpriseDirectory>(
        *srt_, server::MakeChannel(enterprises_.address()), std::chrono::seconds(60));
    auto repo = CreateSupportRepository(&srt_->db());
    ASSERT_TRUE(repo.ok()) << repo.status();
    sdomain_ = std::make_unique<SupportDomain>(std::move(*repo), srt_->MakeCache("support"), cluster_directory_.get(),
                                               enterprise_directory_.get(), &srt_->page_tokens(),
                                               lifetime);
    // As main.cc: the domain gauges, refreshed at startup and then every 15 s (tests call RefreshNow()).
    smetrics_ = std::make_unique<SupportMetrics>(sdomain_->repository(), srt_->metrics().registry());
    smetrics_->Start(absl::Seconds(15));
    sservice_ = std::make_unique<SupportServiceImpl>(sdomain_.get(), &srt_->handler());
    auto started = srt_->Start({sservice_.get()});
    ASSERT_TRUE(started.ok()) << started;
    stub_ = v1::SupportService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", srt_->port()), grpc::InsecureChannelCredentials()));
  }

  void StopSupport() {
    if (srt_) srt_->Shutdown();
    stub_.reset();
    sservice_.reset();
    smetrics_.reset();  // stops the refresher before the domain (its repository) and the store go
    sdomain_.reset();
    enterprise_directory_.reset();
    cluster_directory_.reset();
    srt_.reset();  // closes support.db
  }

  void RestartSupport(absl::Duration lifetime) {
    StopSupport();
    ASSERT_NO_FATAL_FAILURE(StartSupport(lifetime));
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    return Invoke(stub_.get(), method, token, req, resp);
  }

  // ---------------------------------------------------------------- enterprises

  grpc::Status RegisterEnterprise(const std::string& uscc) {
    ev1::RegisterEnterpriseRequest req;
    auto* e = req.mutable_enterprise();
    e->set_uscc(uscc);
    e->set_legal_name_zh("呼和浩特测试乳业有限公司");
    e->set_name_en("Test Dairy Co.");
    e->set_region(kHohhot);
    e->set_industry("dairy");
    e->set_size_class(ev1::SMALL);
    e->set_employees(120);
    e->set_annual_revenue_fen(1234567800);
    e->set_rd_spend_fen(5600000);
    ev1::Enterprise out;
    return Invoke(estub_.get(), &EStub::RegisterEnterprise, industry_it_, req, &out);
  }

  grpc::Status Join(const std::string& token, const std::string& uscc, const std::string& cluster_id) {
    ev1::JoinClusterRequest req;
    req.set_parent(EnterpriseName(uscc));
    req.mutable_membership()->set_cluster("clusters/" + cluster_id);
    req.mutable_membership()->set_role(ev1::MEMBER);
    ev1::Membership out;
    return Invoke(estub_.get(), &EStub::JoinCluster, token, req, &out);
  }

  // Registers `uscc` and joins it to clusters/hohhot-dairy.
  void MemberOfDairy(const std::string& uscc) {
    grpc::Status s = RegisterEnterprise(uscc);
    ASSERT_TRUE(s.ok()) << Describe(s);
    s = Join(industry_it_, uscc, "hohhot-dairy");
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  static std::string TokenFor(const std::string& uscc) {
    return testing::MakeToken("user-" + uscc, EnterpriseName(uscc), {"enterprise"});
  }

  // ---------------------------------------------------------------- pools

  static v1::Pool PoolSpec(v1::ResourceKind kind, int64_t capacity, const std::string& pollutant = "",
                           const std::string& region = kHohhot, int year = kYear) {
    v1::Pool p;
    p.set_kind(kind);
    p.set_capacity(capacity);
    p.set_pollutant(pollutant);
    p.set_region(region);
    p.set_year(year);
    return p;
  }

  grpc::Status CreatePool(const std::string& token, const v1::Pool& spec, v1::Pool* out = nullptr,
                          const std::string& request_id = "") {
    v1::CreatePoolRequest req;
    *req.mutable_pool() = spec;
    req.set_request_id(request_id);
    v1::Pool ignored;
    return Call(&Stub::CreatePool, token, req, out != nullptr ? out : &ignored);
  }

  // A token of a department responsible for `kind`.
  const std::string& Responsible(v1::ResourceKind kind) const {
    switch (kind) {
      case v1::LAND:
      case v1::SUBSIDY: return industry_it_;
      case v1::ENERGY:
      case v1::GREEN_POWER: return energy_;
      default: return development_reform_;
    }
  }

  v1::Pool MakePool(v1::ResourceKind kind, int64_t capacity, const std::string& pollutant = "",
                    const std::vector<v1::Parcel>& parcels = {}) {
    v1::Pool spec = PoolSpec(kind, capacity, pollutant);
    for (const auto& p : parcels) *spec.add_parcels() = p;
    v1::Pool out;
    grpc::Status s = CreatePool(Responsible(kind), spec, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  v1::Pool GetPool(const std::string& name) {
    v1::GetPoolRequest req;
    req.set_name(name);
    v1::Pool out;
    grpc::Status s = Call(&Stub::GetPool, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  grpc::Status SetCapacity(const std::string& token, const std::string& name, int64_t capacity,
                           const std::string& reason, const std::string& etag = "", v1::Pool* out = nullptr) {
    v1::SetPoolCapacityRequest req;
    req.set_name(name);
    req.set_capacity(capacity);
    req.set_reason(reason);
    req.set_etag(etag);
    v1::Pool ignored;
    return Call(&Stub::SetPoolCapacity, token, req, out != nullptr ? out : &ignored);
  }

  // ---------------------------------------------------------------- applications

  static App AppSpec(const std::vector<v1::Item>& items, bool core = false, const std::string& cluster = kDairy) {
    App a;
    a.set_cluster(cluster);
    a.set_project_name("乳制品深加工项目");
    a.set_project_description("年产10万吨液态奶生产线");
    a.set_core_chain_project(core);
    a.set_region(kHohhot);
    a.set_year(kYear);
    for (const auto& i : items) *a.add_items() = i;
    return a;
  }

  grpc::Status CreateApp(const std::string& token, const App& spec, App* out = nullptr,
                         const std::string& request_id = "") {
    v1::CreateApplicationRequest req;
    *req.mutable_application() = spec;
    req.set_request_id(request_id);
    App ignored;
    return Call(&Stub::CreateApplication, token, req, out != nullptr ? out : &ignored);
  }

  App MakeApp(const std::vector<v1::Item>& items, bool core = false, const std::string& token = "") {
    App out;
    grpc::Status s = CreateApp(token.empty() ? enterprise_a_ : token, AppSpec(items, core), &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  grpc::Status Update(const std::string& token, const App& app, const std::vector<std::string>& paths,
                      App* out = nullptr) {
    v1::UpdateApplicationRequest req;
    *req.mutable_application() = app;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    App ignored;
    return Call(&Stub::UpdateApplication, token, req, out != nullptr ? out : &ignored);
  }

  grpc::Status Act(Action action, const std::string& token, const std::string& name, App* out = nullptr,
                   const std::string& reason = "", const std::string& request_id = "", const std::string& etag = "") {
    App ignored;
    App* resp = out != nullptr ? out : &ignored;
    if (action == Action::kUpdate) {
      App change;
      change.set_name(name);
      change.set_project_name("改名后的项目");
      change.set_etag(etag);
      return Update(token, change, {"project_name"}, resp);
    }
    v1::TransitionRequest req;
    req.set_name(name);
    req.set_reason(reason);
    req.set_request_id(request_id);
    req.set_etag(etag);
    switch (action) {
      case Action::kSubmit: return Call(&Stub::SubmitApplication, token, req, resp);
      case Action::kStartReview: return Call(&Stub::StartReview, token, req, resp);
      case Action::kApprove: return Call(&Stub::ApproveApplication, token, req, resp);
      case Action::kReject: return Call(&Stub::RejectApplication, token, req, resp);
      case Action::kReturn: return Call(&Stub::ReturnApplication, token, req, resp);
      case Action::kAllocate: return Call(&Stub::AllocateApplication, token, req, resp);
      case Action::kWithdraw: return Call(&Stub::WithdrawApplication, token, req, resp);
      case Action::kUpdate: break;
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "unreachable");
  }

  // `action` by its usual actor: enterprise A for applicant actions, the dairy lead department
  // (industry_it) for review actions; every action carries a reason.
  grpc::Status Do(Action action, const std::string& name, App* out = nullptr, const std::string& reason = "理由") {
    return Act(action, ByApplicant(action) ? enterprise_a_ : industry_it_, name, out, reason);
  }

  // Drives `app` through legal transitions to `target` (for EXPIRED: to APPROVED).
  App Bring(App app, State target, const std::string& applicant_token = "") {
    for (Action a : PathTo(target)) {
      App out;
      const std::string& token =
          ByApplicant(a) ? (applicant_token.empty() ? enterprise_a_ : applicant_token) : industry_it_;
      grpc::Status s = Act(a, token, app.name(), &out, "理由");
      EXPECT_TRUE(s.ok()) << ActionName(a) << " " << app.name() << ": " << Describe(s);
      if (!s.ok()) return app;
      app = out;
    }
    return app;
  }

  App NewAppIn(State target, const std::vector<v1::Item>& items, bool core = false) {
    return Bring(MakeApp(items, core), target);
  }

  App Get(const std::string& name, const std::string& token = "") {
    v1::GetApplicationRequest req;
    req.set_name(name);
    App out;
    grpc::Status s = Call(&Stub::GetApplication, token.empty() ? auditor_ : token, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  // Names of the applications listed (every page).
  std::vector<std::string> ListNames(const std::string& filter, const std::string& order_by = "",
                                     const std::string& token = "", int page_size = 100) {
    std::vector<std::string> names;
    v1::ListApplicationsRequest req;
    req.set_filter(filter);
    req.set_order_by(order_by);
    req.set_page_size(page_size);
    for (int guard = 0; guard < 200; ++guard) {
      v1::ListApplicationsResponse resp;
      grpc::Status s = Call(&Stub::ListApplications, token.empty() ? auditor_ : token, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
      if (!s.ok()) break;
      for (const auto& a : resp.applications()) names.push_back(a.name());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return names;
  }

  std::vector<Entry> Ledger(const std::string& filter, int page_size = 500, int* pages = nullptr) {
    std::vector<Entry> all;
    v1::ListLedgerEntriesRequest req;
    req.set_filter(filter);
    req.set_page_size(page_size);
    int n = 0;
    for (int guard = 0; guard < 1000; ++guard) {
      v1::ListLedgerEntriesResponse resp;
      grpc::Status s = Call(&Stub::ListLedgerEntries, auditor_, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
      if (!s.ok()) break;
      ++n;
      all.insert(all.end(), resp.entries().begin(), resp.entries().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    if (pages != nullptr) *pages = n;
    return all;
  }

  std::vector<Entry> LedgerOf(const std::string& application) {
    return Ledger(absl::StrCat("application = \"", application, "\""));
  }

  v1::ConsistencyReport Check() {
    v1::ConsistencyReport report;
    grpc::Status s = Call(&Stub::CheckConsistency, auditor_, v1::CheckConsistencyRequest(), &report);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return report;
  }

  grpc::Status Expire(const std::string& token, v1::ExpireReservationsResponse* out) {
    return Call(&Stub::ExpireReservations, token, v1::ExpireReservationsRequest(), out);
  }

  v1::Utilization Utilization(const std::string& filter) {
    v1::GetUtilizationRequest req;
    req.set_filter(filter);
    v1::Utilization out;
    grpc::Status s = Call(&Stub::GetUtilization, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  static const v1::Parcel* FindParcel(const v1::Pool& pool, const std::string& id) {
    for (const auto& p : pool.parcels()) {
      if (p.id() == id) return &p;
    }
    return nullptr;
  }

  // Every history entry was recorded during this test, in order.
  void ExpectHistoryTimes(const App& app) {
    int64_t previous = test_start_micros_ - 1000000;
    const int64_t now = absl::ToUnixMicros(absl::Now()) + 1000000;
    for (const auto& t : app.history()) {
      EXPECT_TRUE(t.has_time()) << app.name();
      EXPECT_GE(Micros(t.time()), previous) << app.name();
      EXPECT_LE(Micros(t.time()), now) << app.name();
      previous = Micros(t.time());
    }
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  int64_t test_start_micros_ = 0;

  testing::ClustersServer clusters_;

  testing::EnterprisesServer enterprises_;
  std::unique_ptr<EStub> estub_;

  std::unique_ptr<server::Runtime> srt_;
  std::unique_ptr<clusters::ClusterDirectory> cluster_directory_;
  std::unique_ptr<enterprises::EnterpriseDirectory> enterprise_directory_;
  std::unique_ptr<SupportDomain> sdomain_;
  std::unique_ptr<SupportMetrics> smetrics_;
  std::unique_ptr<SupportServiceImpl> sservice_;
  std::unique_ptr<Stub> stub_;

  const std::string kA = Uscc(1);
  const std::string kB = Uscc(2);
  const std::string kC = Uscc(3);
  const std::string kUnregistered = Uscc(999);

  const std::string industry_it_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string development_reform_ =
      testing::MakeToken("liu.fang", "departments/development_reform", {"government"});
  const std::string enterprise_a_ = TokenFor(kA);
  const std::string enterprise_b_ = TokenFor(kB);
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
  const std::string admin_ = testing::MakeToken("root", "agencies/ops", {"admin"});
};

testing::RedisServer* SupportTest::redis_ = nullptr;

// ------------------------------------------------------------------ pools

TEST_F(SupportTest, PoolsAreCreatedOnlyByTheResponsibleDepartment) {
  // LAND: industry_it only; the name, unit and balances are set by the service.
  v1::Pool spec = PoolSpec(v1::LAND, 100000);
  *spec.add_parcels() = MakeParcel("P1", 10000);
  *spec.add_parcels() = MakeParcel("P2", 25000);
  spec.set_reserved(7);   // output only
  spec.set_name("pools/x");  // output only
  for (const std::string* token : {&energy_, &development_reform_, &enterprise_a_, &auditor_}) {
    EXPECT_EQ(CreatePool(*token, spec).error_code(), Code::PERMISSION_DENIED);
  }
  v1::Pool land;
  grpc::Status s = CreatePool(industry_it_, spec, &land);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(land.name(), "pools/150100-2025-land");
  EXPECT_EQ(land.unit(), "m2");
  EXPECT_EQ(land.capacity(), 100000);
  EXPECT_EQ(land.reserved(), 0);
  EXPECT_EQ(land.allocated(), 0);
  EXPECT_EQ(land.free(), 100000);
  ASSERT_EQ(land.parcels_size(), 2);
  EXPECT_EQ(land.parcels(1).area_m2(), 25000);
  EXPECT_EQ(land.parcels(1).held_by(), "");
  EXPECT_FALSE(land.etag().empty());
  EXPECT_TRUE(land.has_create_time());
  // Twice: ALREADY_EXISTS (even for another responsible caller).
  EXPECT_EQ(CreatePool(industry_it_, spec).error_code(), Code::ALREADY_EXISTS);

  struct Case {
    v1::ResourceKind kind;
    std::string pollutant;
    std::vector<std::string> allowed;
    std::vector<std::string> denied;
    std::string name;  // for the first allowed token (year kYear)
    std::string unit;
  };
  const std::vector<Case> cases = {
      {v1::SUBSIDY, "", {industry_it_}, {energy_, development_reform_}, "pools/150100-2025-subsidy", "fen"},
      {v1::ENERGY, "", {energy_, development_reform_}, {industry_it_}, "pools/150100-2025-energy", "kgce"},
      {v1::GREEN_POWER, "", {development_reform_, energy_}, {industry_it_}, "pools/150100-2025-green_power", "kWh"},
      {v1::WATER, "", {development_reform_}, {energy_, industry_it_}, "pools/150100-2025-water", "m3"},
      {v1::ENVIRONMENT, "so2", {development_reform_}, {energy_, industry_it_}, "pools/150100-2025-environment-so2",
       "kg"},
      {v1::ENVIRONMENT, "nox", {development_reform_}, {energy_}, "pools/150100-2025-environment-nox", "kg"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (const auto& token : c.denied) {
      EXPECT_EQ(CreatePool(token, PoolSpec(c.kind, 500, c.pollutant)).error_code(), Code::PERMISSION_DENIED);
    }
    for (size_t i = 0; i < c.allowed.size(); ++i) {
      v1::Pool out;
      s = CreatePool(c.allowed[i], PoolSpec(c.kind, 500 + static_cast<int>(i), c.pollutant, kHohhot,
                                            kYear + static_cast<int>(i)),
                     &out);
      ASSERT_TRUE(s.ok()) << Describe(s);
      EXPECT_EQ(out.name(), PoolOf(c.kind, c.pollutant, kHohhot, kYear + static_cast<int>(i)));
      if (i == 0) {
        EXPECT_EQ(out.name(), c.name);
      }
      EXPECT_EQ(out.unit(), c.unit);
      EXPECT_EQ(out.capacity(), 500 + static_cast<int>(i));
      EXPECT_EQ(out.free(), 500 + static_cast<int>(i));
      EXPECT_EQ(out.pollutant(), c.pollutant);
    }
  }
  EXPECT_EQ(CreatePool(development_reform_, PoolSpec(v1::ENVIRONMENT, 1, "so2")).error_code(), Code::ALREADY_EXISTS);

  // Each creation is an ADJUST entry of its initial capacity.
  auto adjust = Ledger("pool = \"pools/150100-2025-land\"");
  ASSERT_EQ(adjust.size(), 1u);
  EXPECT_EQ(adjust[0].type(), Entry::ADJUST);
  EXPECT_EQ(adjust[0].quantity(), 100000);
  EXPECT_EQ(adjust[0].actor().organization(), "departments/industry_it");
  EXPECT_EQ(Ledger("type = ADJUST").size(), 1u + 1 + 2 + 2 + 1 + 1 + 1);

  // The reference data names the same departments.
  v1::SupportReferenceData ref;
  ASSERT_TRUE(Call(&Stub::GetReferenceData, enterprise_a_, v1::GetReferenceDataRequest(), &ref).ok());
  std::map<int, std::vector<std::string>> departments;
  for (const auto& k : ref.kinds()) {
    departments[k.kind()] = {k.responsible_departments().begin(), k.responsible_departments().end()};
  }
  EXPECT_THAT(departments[v1::LAND], ElementsAre("industry_it"));
  EXPECT_THAT(departments[v1::SUBSIDY], ElementsAre("industry_it"));
  EXPECT_THAT(departments[v1::ENERGY], UnorderedElementsAre("energy", "development_reform"));
  EXPECT_THAT(departments[v1::GREEN_POWER], UnorderedElementsAre("energy", "development_reform"));
  EXPECT_THAT(departments[v1::WATER], ElementsAre("development_reform"));
  EXPECT_THAT(departments[v1::ENVIRONMENT], ElementsAre("development_reform"));

  // ListPools filters.
  v1::ListPoolsRequest list;
  list.set_filter("kind = ENVIRONMENT");
  v1::ListPoolsResponse pools;
  ASSERT_TRUE(Call(&Stub::ListPools, enterprise_a_, list, &pools).ok());
  std::vector<std::string> names;
  for (const auto& p : pools.pools()) names.push_back(p.name());
  EXPECT_THAT(names, ElementsAre("pools/150100-2025-environment-nox", "pools/150100-2025-environment-so2"));
  list.set_filter("kind = ENERGY AND year = 2026");
  ASSERT_TRUE(Call(&Stub::ListPools, enterprise_a_, list, &pools).ok());
  ASSERT_EQ(pools.pools_size(), 1);
  EXPECT_EQ(pools.pools(0).name(), "pools/150100-2026-energy");
}

TEST_F(SupportTest, WritesAreAuditedWithTheFullMethodAndTheClientsRequestId) {
  v1::Pool land;
  grpc::Status s = CreatePool(industry_it_, PoolSpec(v1::LAND, 100000), &land, "create-land-0001");
  ASSERT_TRUE(s.ok()) << Describe(s);
  common::v1::ListAuditEventsRequest req;
  req.set_filter("idempotency_key = \"create-land-0001\"");
  common::v1::ListAuditEventsResponse resp;
  s = Call(&Stub::ListAuditEvents, auditor_, req, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).method(), "/clustergov.support.v1.SupportService/CreatePool");
  EXPECT_EQ(resp.events(0).resource(), land.name());
  EXPECT_EQ(resp.events(0).idempotency_key(), "create-land-0001");
  EXPECT_FALSE(resp.events(0).request_id().empty());
}

TEST_F(SupportTest, PoolValidationNamesTheField) {
  auto fields = [&](const v1::Pool& spec, const std::string& token) {
    grpc::Status s = CreatePool(token, spec);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
    return FieldsOf(s);
  };
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "", "999999"), energy_), ElementsAre("pool.region"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "", ""), energy_), ElementsAre("pool.region"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "", kHohhot, 1999), energy_), ElementsAre("pool.year"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "", kHohhot, 0), energy_), ElementsAre("pool.year"));
  EXPECT_THAT(fields(PoolSpec(v1::RESOURCE_KIND_UNSPECIFIED, 10), energy_), ElementsAre("pool.kind"));
  // The pollutant: required for ENVIRONMENT (one of the list), refused for anything else.
  EXPECT_THAT(fields(PoolSpec(v1::ENVIRONMENT, 10), development_reform_), ElementsAre("pool.pollutant"));
  EXPECT_THAT(fields(PoolSpec(v1::ENVIRONMENT, 10, "co2"), development_reform_), ElementsAre("pool.pollutant"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "so2"), energy_), ElementsAre("pool.pollutant"));
  EXPECT_THAT(fields(PoolSpec(v1::WATER, 10, "cod"), development_reform_), ElementsAre("pool.pollutant"));
  // Parcels: LAND only; their total area within the capacity; ids valid and distinct.
  v1::Pool energy = PoolSpec(v1::ENERGY, 100000);
  *energy.add_parcels() = MakeParcel("P1", 10);
  EXPECT_THAT(fields(energy, energy_), ElementsAre("pool.parcels"));
  v1::Pool over = PoolSpec(v1::LAND, 15999);
  *over.add_parcels() = MakeParcel("P1", 10000);
  *over.add_parcels() = MakeParcel("P2", 6000);
  grpc::Status s = CreatePool(industry_it_, over);
  EXPECT_THAT(FieldsOf(s), ElementsAre("pool.capacity"));
  EXPECT_THAT(s.error_message(), HasSubstr("16000"));
  v1::Pool bad_ids = PoolSpec(v1::LAND, 100000);
  *bad_ids.add_parcels() = MakeParcel("P 1", 10);
  *bad_ids.add_parcels() = MakeParcel("P2", 10);
  *bad_ids.add_parcels() = MakeParcel("P2", 10);
  *bad_ids.add_parcels() = MakeParcel("P4", 0);
  EXPECT_THAT(fields(bad_ids, industry_it_),
              ElementsAre("pool.parcels[0].id", "pool.parcels[2].id", "pool.parcels[3].area_m2"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, -1), energy_), ElementsAre("pool.capacity"));
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, k2Pow50 + 1), energy_), ElementsAre("pool.capacity"));
  // Several at once.
  EXPECT_THAT(fields(PoolSpec(v1::ENERGY, 10, "so2", "1", 3000), energy_),
              UnorderedElementsAre("pool.region", "pool.year", "pool.pollutant"));

  // Nothing was created; a parcel bundle exactly filling the capacity is fine.
  v1::ListPoolsResponse pools;
  ASSERT_TRUE(Call(&Stub::ListPools, auditor_, v1::ListPoolsRequest(), &pools).ok());
  EXPECT_THAT(pools.pools(), IsEmpty());
  over.set_capacity(16000);
  s = CreatePool(industry_it_, over);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(CreatePool(energy_, PoolSpec(v1::ENERGY, k2Pow50)).ok());
}

TEST_F(SupportTest, QuantitiesOverTheLimitAreRefusedNamingTheLimit) {
  // Every quantity is at most 2^50 base units; a refusal says so (not "must be 0 or more").
  const std::string limit = absl::StrCat(k2Pow50);
  grpc::Status s = CreatePool(energy_, PoolSpec(v1::ENERGY, k2Pow50 + 1));
  EXPECT_THAT(FieldsOf(s), ElementsAre("pool.capacity"));
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr(limit), HasSubstr("kgce")));
  v1::Pool parcels = PoolSpec(v1::LAND, k2Pow50);
  *parcels.add_parcels() = MakeParcel("P1", k2Pow50 + 1);
  s = CreatePool(industry_it_, parcels);
  EXPECT_THAT(FieldsOf(s), ElementsAre("pool.parcels[0].area_m2"));
  EXPECT_THAT(s.error_message(), HasSubstr(limit));

  v1::Pool pool = MakePool(v1::ENERGY, 1000);
  s = SetCapacity(energy_, pool.name(), k2Pow50 + 1, "扩容");
  EXPECT_THAT(FieldsOf(s), ElementsAre("capacity"));
  EXPECT_THAT(s.error_message(), HasSubstr(limit));
  s = SetCapacity(energy_, pool.name(), -1, "扩容");
  EXPECT_THAT(FieldsOf(s), ElementsAre("capacity"));
  EXPECT_THAT(s.error_message(), HasSubstr(limit));

  s = CreateApp(enterprise_a_, AppSpec({Qty(v1::ENERGY, k2Pow50 + 1)}));
  EXPECT_THAT(FieldsOf(s), ElementsAre("application.items[0].quantity"));
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr(limit), HasSubstr("kgce")));
  EXPECT_EQ(GetPool(pool.name()).capacity(), 1000);
}

TEST_F(SupportTest, SetPoolCapacityNeverGoesBelowWhatIsUsed) {
  v1::Pool created = MakePool(v1::ENERGY, 1000);
  const std::string name = created.name();
  App app = NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 300)});
  v1::Pool pool = GetPool(name);
  EXPECT_EQ(pool.reserved(), 300);
  EXPECT_EQ(pool.free(), 700);

  grpc::Status s = SetCapacity(energy_, name, 299, "压减");
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("300"));
  s = SetCapacity(energy_, name, 1500, "");
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  s = SetCapacity(energy_, name, -1, "压减");
  EXPECT_THAT(FieldsOf(s), ElementsAre("capacity"));
  EXPECT_EQ(SetCapacity(industry_it_, name, 1500, "扩容").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(SetCapacity(enterprise_a_, name, 1500, "扩容").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(SetCapacity(energy_, "pools/150100-2025-water", 1500, "扩容").error_code(), Code::NOT_FOUND);
  // The creation etag is stale: the approval rewrote the pool.
  ASSERT_NE(created.etag(), pool.etag());
  EXPECT_EQ(SetCapacity(energy_, name, 1500, "扩容", created.etag()).error_code(), Code::ABORTED);
  EXPECT_EQ(GetPool(name).capacity(), 1000);

  v1::Pool out;
  s = SetCapacity(energy_, name, 1500, "扩容", pool.etag(), &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.capacity(), 1500);
  EXPECT_EQ(out.reserved(), 300);
  EXPECT_EQ(out.free(), 1200);
  // Exactly what is used is allowed (development_reform is responsible for ENERGY too).
  s = SetCapacity(development_reform_, name, 300, "压减", "", &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.free(), 0);
  // Once allocated, still counted.
  ASSERT_TRUE(Do(Action::kAllocate, app.name()).ok());
  s = SetCapacity(energy_, name, 299, "压减");
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  pool = GetPool(name);
  EXPECT_EQ(pool.capacity(), 300);
  EXPECT_EQ(pool.allocated(), 300);

  // Land: never below the parcels' area.
  MakePool(v1::LAND, 50000, "", {MakeParcel("P1", 10000), MakeParcel("P2", 20000)});
  EXPECT_EQ(SetCapacity(industry_it_, PoolOf(v1::LAND), 29999, "调整").error_code(), Code::FAILED_PRECONDITION);
  EXPECT_TRUE(SetCapacity(industry_it_, PoolOf(v1::LAND), 30000, "调整").ok());

  // The ledger has every change as an ADJUST of the delta, with who and why.
  auto adjust = Ledger(absl::StrCat("pool = \"", name, "\" AND type = ADJUST"));
  ASSERT_EQ(adjust.size(), 3u);
  EXPECT_EQ(adjust[0].quantity(), 1000);
  EXPECT_EQ(adjust[1].quantity(), 500);
  EXPECT_EQ(adjust[2].quantity(), -1200);
  EXPECT_EQ(adjust[1].reason(), "扩容");
  EXPECT_EQ(adjust[2].reason(), "压减");
  EXPECT_EQ(adjust[1].actor().organization(), "departments/energy");
  EXPECT_EQ(adjust[2].actor().organization(), "departments/development_reform");
  EXPECT_EQ(adjust[2].actor().subject(), "liu.fang");
  EXPECT_TRUE(Check().consistent());
}

// ------------------------------------------------------------------ the lifecycle

TEST_F(SupportTest, FullLifecycleReservesThenAllocatesExactly) {
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000), MakeParcel("P2", 30000), MakeParcel("P3", 15000)});
  MakePool(v1::ENERGY, 5000);
  MakePool(v1::SUBSIDY, 1000000000);

  App spec = AppSpec({Qty(v1::ENERGY, 1200), Land({"P1", "P2"}), Qty(v1::SUBSIDY, 250000001)}, /*core=*/true);
  spec.set_state(App::APPROVED);  // output only
  spec.set_name("applications/999");
  App app;
  grpc::Status s = CreateApp(enterprise_a_, spec, &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(app.name(), ::testing::StartsWith("applications/"));
  EXPECT_NE(app.name(), "applications/999");
  EXPECT_EQ(app.state(), App::DRAFT);
  EXPECT_EQ(app.applicant(), EnterpriseName(kA));
  EXPECT_EQ(app.items(0).pool(), "pools/150100-2025-energy");
  EXPECT_EQ(app.items(1).pool(), "pools/150100-2025-land");
  EXPECT_EQ(app.items(2).pool(), "pools/150100-2025-subsidy");
  EXPECT_EQ(app.items(1).quantity(), 0);  // a bundle's area is known on submission
  ASSERT_EQ(app.history_size(), 1);
  EXPECT_EQ(app.history(0).to(), App::DRAFT);
  EXPECT_EQ(app.history(0).actor().organization(), EnterpriseName(kA));

  // Update: stale etag → ABORTED; then the change lands and the state stays DRAFT.
  App change = app;
  change.set_project_name("乳清蛋白项目");
  change.mutable_items(0)->set_quantity(1500);
  change.set_etag("v999");
  EXPECT_EQ(Update(enterprise_a_, change, {"project_name", "items"}).error_code(), Code::ABORTED);
  change.set_etag(app.etag());
  EXPECT_THAT(FieldsOf(Update(enterprise_a_, change, {"state"})), ElementsAre("update_mask"));
  s = Update(enterprise_a_, change, {"project_name", "items"}, &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.project_name(), "乳清蛋白项目");
  EXPECT_EQ(app.items(0).quantity(), 1500);
  EXPECT_EQ(app.state(), App::DRAFT);
  EXPECT_EQ(app.history_size(), 1);

  s = Act(Action::kSubmit, enterprise_a_, app.name(), &app, "请审核");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::SUBMITTED);
  EXPECT_TRUE(app.has_submit_time());
  s = Act(Action::kStartReview, industry_it_, app.name(), &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::UNDER_REVIEW);

  const v1::Pool energy0 = GetPool(PoolOf(v1::ENERGY));
  const v1::Pool land0 = GetPool(PoolOf(v1::LAND));
  const v1::Pool subsidy0 = GetPool(PoolOf(v1::SUBSIDY));
  s = Act(Action::kApprove, industry_it_, app.name(), &app, "符合条件");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::APPROVED);
  EXPECT_EQ(app.items(1).quantity(), 50000);
  const int64_t approve_micros = Micros(app.history().rbegin()->time());
  EXPECT_NEAR(Micros(app.reservation_expire_time()) - approve_micros, absl::ToInt64Microseconds(kDefaultLifetime),
              1000000);

  v1::Pool energy1 = GetPool(PoolOf(v1::ENERGY));
  v1::Pool land1 = GetPool(PoolOf(v1::LAND));
  v1::Pool subsidy1 = GetPool(PoolOf(v1::SUBSIDY));
  EXPECT_EQ(energy1.reserved(), energy0.reserved() + 1500);
  EXPECT_EQ(energy1.free(), energy0.free() - 1500);
  EXPECT_EQ(land1.reserved(), land0.reserved() + 50000);
  EXPECT_EQ(land1.free(), 50000);
  EXPECT_EQ(subsidy1.reserved(), 250000001);
  EXPECT_EQ(subsidy1.free(), 1000000000 - 250000001);
  EXPECT_EQ(FindParcel(land1, "P1")->held_by(), app.name());
  EXPECT_EQ(FindParcel(land1, "P2")->held_by(), app.name());
  EXPECT_EQ(FindParcel(land1, "P3")->held_by(), "");

  auto reserve = LedgerOf(app.name());
  ASSERT_EQ(reserve.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reserve[i].type(), Entry::RESERVE);
    EXPECT_EQ(reserve[i].item_index(), i);
    EXPECT_EQ(reserve[i].pool(), app.items(i).pool());
    EXPECT_EQ(reserve[i].quantity(), app.items(i).quantity());
    EXPECT_EQ(reserve[i].application(), app.name());
    EXPECT_EQ(reserve[i].actor().organization(), "departments/industry_it");
    EXPECT_EQ(reserve[i].reason(), "符合条件");
  }
  EXPECT_THAT(reserve[1].parcel_ids(), ElementsAre("P1", "P2"));

  s = Act(Action::kAllocate, industry_it_, app.name(), &app, "已供地");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::ALLOCATED);
  EXPECT_FALSE(app.has_reservation_expire_time());
  v1::Pool energy2 = GetPool(PoolOf(v1::ENERGY));
  v1::Pool land2 = GetPool(PoolOf(v1::LAND));
  v1::Pool subsidy2 = GetPool(PoolOf(v1::SUBSIDY));
  EXPECT_EQ(energy2.reserved(), energy0.reserved());
  EXPECT_EQ(energy2.allocated(), 1500);
  EXPECT_EQ(energy2.free(), 3500);
  EXPECT_EQ(land2.reserved(), 0);
  EXPECT_EQ(land2.allocated(), 50000);
  EXPECT_EQ(subsidy2.allocated(), 250000001);
  EXPECT_TRUE(FindParcel(land2, "P1")->allocated());
  EXPECT_FALSE(FindParcel(land2, "P3")->allocated());
  auto all = LedgerOf(app.name());
  ASSERT_EQ(all.size(), 6u);
  for (int i = 3; i < 6; ++i) {
    EXPECT_EQ(all[i].type(), Entry::ALLOCATE);
    EXPECT_EQ(all[i].item_index(), i - 3);
    EXPECT_EQ(all[i].quantity(), app.items(i - 3).quantity());
  }

  // The history: every transition with who (subject, organization, roles), why and when.
  struct Want {
    State from, to;
    std::string subject, organization, role, reason;
  };
  const std::vector<Want> want = {
      {App::STATE_UNSPECIFIED, App::DRAFT, "user-" + kA, EnterpriseName(kA), "enterprise", ""},
      {App::DRAFT, App::SUBMITTED, "user-" + kA, EnterpriseName(kA), "enterprise", "请审核"},
      {App::SUBMITTED, App::UNDER_REVIEW, "wang.li", "departments/industry_it", "government", ""},
      {App::UNDER_REVIEW, App::APPROVED, "wang.li", "departments/industry_it", "government", "符合条件"},
      {App::APPROVED, App::ALLOCATED, "wang.li", "departments/industry_it", "government", "已供地"},
  };
  ASSERT_EQ(app.history_size(), static_cast<int>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& t = app.history(static_cast<int>(i));
    EXPECT_EQ(t.from(), want[i].from) << i;
    EXPECT_EQ(t.to(), want[i].to) << i;
    EXPECT_EQ(t.actor().subject(), want[i].subject) << i;
    EXPECT_EQ(t.actor().organization(), want[i].organization) << i;
    EXPECT_THAT(t.actor().roles(), ElementsAre(want[i].role)) << i;
    EXPECT_EQ(t.reason(), want[i].reason) << i;
  }
  ExpectHistoryTimes(app);
  EXPECT_TRUE(MessageDifferencer::Equals(Get(app.name()), app));

  // Each change is in the audit trail.
  common::v1::ListAuditEventsRequest audit;
  audit.set_filter(absl::StrCat("resource = \"", app.name(), "\""));
  common::v1::ListAuditEventsResponse events;
  ASSERT_TRUE(Call(&Stub::ListAuditEvents, auditor_, audit, &events).ok());
  EXPECT_EQ(events.events_size(), 6);
  EXPECT_TRUE(Check().consistent());
}

TEST_F(SupportTest, ALandBundlesAreaIsShownFromSubmission) {
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000), MakeParcel("P2", 30000)});
  MakePool(v1::ENERGY, 5000);
  App app = MakeApp({Qty(v1::ENERGY, 100), Land({"P1", "P2"})});
  EXPECT_EQ(app.items(1).quantity(), 0);  // a draft's parcels are not checked yet

  // Submitted: the reviewer sees the area asked for, before any approval.
  grpc::Status s = Act(Action::kSubmit, enterprise_a_, app.name(), &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.items(1).quantity(), 50000);
  EXPECT_EQ(Get(app.name(), industry_it_).items(1).quantity(), 50000);
  EXPECT_EQ(GetPool(PoolOf(v1::LAND)).reserved(), 0);

  // Returned and changed without touching the items, then resubmitted: still shown.
  ASSERT_TRUE(Do(Action::kStartReview, app.name()).ok());
  ASSERT_TRUE(Do(Action::kReturn, app.name(), nullptr, "补充材料").ok());
  s = Act(Action::kUpdate, enterprise_a_, app.name(), &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Act(Action::kSubmit, enterprise_a_, app.name(), &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.items(1).quantity(), 50000);

  // A parcel the pool does not have is refused at submission, naming it; the draft stays.
  App unknown = MakeApp({Land({"P1", "P9"})});
  s = Act(Action::kSubmit, enterprise_a_, unknown.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("items[0]"), HasSubstr("parcel P9")));
  EXPECT_EQ(Get(unknown.name()).state(), App::DRAFT);
}

TEST_F(SupportTest, ReturnedApplicationsAreChangedAndResubmitted) {
  MakePool(v1::ENERGY, 1000);
  MakePool(v1::WATER, 1000);
  App app = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 100)});
  const int64_t first_submit = Micros(app.submit_time());

  grpc::Status s = Act(Action::kReturn, industry_it_, app.name(), nullptr, "");
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  EXPECT_EQ(Get(app.name()).state(), App::UNDER_REVIEW);
  s = Act(Action::kReturn, industry_it_, app.name(), &app, "请补充节能审查意见");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::RETURNED);
  EXPECT_EQ(app.history().rbegin()->reason(), "请补充节能审查意见");

  App change;
  change.set_name(app.name());
  *change.add_items() = Qty(v1::ENERGY, 80);
  *change.add_items() = Qty(v1::WATER, 40);
  s = Update(enterprise_a_, change, {"items"}, &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::RETURNED);
  ASSERT_EQ(app.items_size(), 2);
  EXPECT_EQ(app.items(1).pool(), "pools/150100-2025-water");

  s = Act(Action::kSubmit, enterprise_a_, app.name(), &app, "已补充");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::SUBMITTED);
  EXPECT_EQ(app.history().rbegin()->from(), App::RETURNED);
  EXPECT_GE(Micros(app.submit_time()), first_submit);
  ASSERT_TRUE(Do(Action::kStartReview, app.name()).ok());
  s = Do(Action::kApprove, app.name(), &app);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(app.state(), App::APPROVED);
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 80);
  EXPECT_EQ(GetPool(PoolOf(v1::WATER)).reserved(), 40);
  std::vector<State> path;
  for (const auto& t : app.history()) path.push_back(t.to());
  EXPECT_THAT(path, ElementsAre(App::DRAFT, App::SUBMITTED, App::UNDER_REVIEW, App::RETURNED, App::SUBMITTED,
                                App::UNDER_REVIEW, App::APPROVED));
  ExpectHistoryTimes(app);

  // Withdraw from DRAFT, SUBMITTED and RETURNED: nothing touches a pool.
  for (State from : {App::DRAFT, App::SUBMITTED, App::RETURNED}) {
    App w = NewAppIn(from, {Qty(v1::ENERGY, 10)});
    App out;
    s = Act(Action::kWithdraw, enterprise_a_, w.name(), &out, "项目取消");
    ASSERT_TRUE(s.ok()) << App::State_Name(from) << ": " << Describe(s);
    EXPECT_EQ(out.state(), App::WITHDRAWN);
    EXPECT_EQ(out.history().rbegin()->from(), from);
    EXPECT_EQ(out.history().rbegin()->reason(), "项目取消");
    EXPECT_EQ(out.history().rbegin()->actor().organization(), EnterpriseName(kA));
    EXPECT_THAT(LedgerOf(w.name()), IsEmpty());
  }
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 80);
  EXPECT_TRUE(Check().consistent());
}

TEST_F(SupportTest, RejectFromReviewTouchesNothingAndFromApprovalReleases) {
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000), MakeParcel("P2", 30000)});
  MakePool(v1::ENERGY, 1000);

  App a = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 100)});
  EXPECT_THAT(FieldsOf(Act(Action::kReject, industry_it_, a.name(), nullptr, "")), ElementsAre("reason"));
  grpc::Status s = Act(Action::kReject, industry_it_, a.name(), &a, "不符合产业政策");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(a.state(), App::REJECTED);
  EXPECT_THAT(LedgerOf(a.name()), IsEmpty());
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 0);

  App b = NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 300), Land({"P1"})});
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).free(), 700);
  EXPECT_EQ(GetPool(PoolOf(v1::LAND)).reserved(), 20000);
  s = Act(Action::kReject, industry_it_, b.name(), &b, "项目未按期开工");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(b.state(), App::REJECTED);
  EXPECT_EQ(b.history().rbegin()->from(), App::APPROVED);
  auto entries = LedgerOf(b.name());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[2].type(), Entry::RELEASE);
  EXPECT_EQ(entries[2].quantity(), 300);
  EXPECT_EQ(entries[3].type(), Entry::RELEASE);
  EXPECT_EQ(entries[3].quantity(), 20000);
  EXPECT_THAT(entries[3].parcel_ids(), ElementsAre("P1"));
  EXPECT_EQ(entries[3].reason(), "项目未按期开工");
  v1::Pool energy = GetPool(PoolOf(v1::ENERGY));
  v1::Pool land = GetPool(PoolOf(v1::LAND));
  EXPECT_EQ(energy.reserved(), 0);
  EXPECT_EQ(energy.free(), 1000);
  EXPECT_EQ(land.reserved(), 0);
  EXPECT_EQ(land.free(), 100000);
  EXPECT_EQ(FindParcel(land, "P1")->held_by(), "");

  // The parcel is free again for another application.
  App c = NewAppIn(App::APPROVED, {Land({"P1", "P2"})});
  EXPECT_EQ(c.state(), App::APPROVED);
  EXPECT_EQ(FindParcel(GetPool(PoolOf(v1::LAND)), "P1")->held_by(), c.name());
  EXPECT_TRUE(Check().consistent());
}

TEST_F(SupportTest, EveryIllegalTransitionIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(RestartSupport(absl::Seconds(1)));  // so EXPIRED is reachable
  MakePool(v1::ENERGY, 1000000);
  const std::vector<State> states = {App::DRAFT,    App::SUBMITTED, App::UNDER_REVIEW,
                                     App::APPROVED, App::REJECTED,  App::RETURNED,
                                     App::ALLOCATED, App::WITHDRAWN, App::EXPIRED};
  const std::vector<Action> actions = {Action::kSubmit, Action::kStartReview, Action::kApprove, Action::kReject,
                                       Action::kReturn, Action::kAllocate,    Action::kWithdraw, Action::kUpdate};
  const std::map<std::pair<State, Action>, State> legal = {
      {{App::DRAFT, Action::kSubmit}, App::SUBMITTED},
      {{App::RETURNED, Action::kSubmit}, App::SUBMITTED},
      {{App::SUBMITTED, Action::kStartReview}, App::UNDER_REVIEW},
      {{App::UNDER_REVIEW, Action::kApprove}, App::APPROVED},
      {{App::UNDER_REVIEW, Action::kReject}, App::REJECTED},
      {{App::APPROVED, Action::kReject}, App::REJECTED},
      {{App::UNDER_REVIEW, Action::kReturn}, App::RETURNED},
      {{App::APPROVED, Action::kAllocate}, App::ALLOCATED},
      {{App::DRAFT, Action::kWithdraw}, App::WITHDRAWN},
      {{App::SUBMITTED, Action::kWithdraw}, App::WITHDRAWN},
      {{App::RETURNED, Action::kWithdraw}, App::WITHDRAWN},
      {{App::DRAFT, Action::kUpdate}, App::DRAFT},
      {{App::RETURNED, Action::kUpdate}, App::RETURNED},
  };

  // One fresh application per (state, action). The EXPIRED ones first: approved now, expired
  // once their one-second reservation has passed.
  std::map<std::pair<State, Action>, std::string> apps;
  google::protobuf::Timestamp latest;
  std::set<std::string> expiring;
  for (Action a : actions) {
    App app = NewAppIn(App::EXPIRED, {Qty(v1::ENERGY, 10)});
    ASSERT_EQ(app.state(), App::APPROVED);
    apps[{App::EXPIRED, a}] = app.name();
    expiring.insert(app.name());
    latest = app.reservation_expire_time();
  }
  ASSERT_NO_FATAL_FAILURE(WaitUntilPast(latest));
  v1::ExpireReservationsResponse expired;
  grpc::Status s = Expire(industry_it_, &expired);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(expired.expired(), UnorderedElementsAreArray(expiring));
  for (State st : states) {
    if (st == App::EXPIRED) continue;
    for (Action a : actions) {
      App app = NewAppIn(st, {Qty(v1::ENERGY, 10)});
      ASSERT_EQ(app.state(), st) << App::State_Name(st);
      apps[{st, a}] = app.name();
    }
  }

  int illegal = 0;
  for (State st : states) {
    for (Action a : actions) {
      const std::string& name = apps[{st, a}];
      SCOPED_TRACE(absl::StrCat(ActionName(a), " from ", App::State_Name(st), " (", name, ")"));
      const App before = Get(name);
      ASSERT_EQ(before.state(), st);
      const size_t entries_before = LedgerOf(name).size();
      App out;
      s = Do(a, name, &out);
      auto it = legal.find({st, a});
      if (it != legal.end()) {
        ASSERT_TRUE(s.ok()) << Describe(s);
        EXPECT_EQ(out.state(), it->second);
        continue;
      }
      ++illegal;
      EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
      EXPECT_THAT(s.error_message(), AllOf(HasSubstr(name), HasSubstr(App::State_Name(st))));
      const App after = Get(name);
      EXPECT_EQ(after.state(), st);
      EXPECT_EQ(after.etag(), before.etag());
      EXPECT_EQ(after.history_size(), before.history_size());
      EXPECT_EQ(LedgerOf(name).size(), entries_before);
    }
  }
  EXPECT_EQ(illegal, static_cast<int>(states.size() * actions.size() - legal.size()));
  EXPECT_EQ(illegal, 59);
  EXPECT_TRUE(Check().consistent());
}

// ------------------------------------------------------------------ authorization

TEST_F(SupportTest, OnlyTheApplicantChangesAndOnlyAResponsibleOrLeadDepartmentReviews) {
  ASSERT_NO_FATAL_FAILURE(MemberOfDairy(kB));
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000)});
  MakePool(v1::ENERGY, 100000);
  MakePool(v1::GREEN_POWER, 100000);
  MakePool(v1::WATER, 100000);
  MakePool(v1::ENVIRONMENT, 100000, "so2");

  // Only enterprises create, each for itself.
  const App spec = AppSpec({Qty(v1::ENERGY, 10)});
  for (const std::string* token : {&industry_it_, &energy_, &auditor_, &admin_}) {
    EXPECT_EQ(CreateApp(*token, spec).error_code(), Code::PERMISSION_DENIED);
  }
  App for_b = spec;
  for_b.set_applicant(EnterpriseName(kB));
  EXPECT_EQ(CreateApp(enterprise_a_, for_b).error_code(), Code::PERMISSION_DENIED);
  // A promotion organization applies only for SUBSIDY.
  const std::string promo = testing::MakeToken("assoc", "promotionOrgs/dairy-association", {"promotion_org"});
  EXPECT_THAT(FieldsOf(CreateApp(promo, spec)), ElementsAre("application.items[0].kind"));

  App a = MakeApp({Qty(v1::ENERGY, 10)});
  for (const std::string* token : {&enterprise_b_, &industry_it_, &admin_}) {
    EXPECT_EQ(Act(Action::kUpdate, *token, a.name()).error_code(), Code::PERMISSION_DENIED);
    EXPECT_EQ(Act(Action::kSubmit, *token, a.name()).error_code(), Code::PERMISSION_DENIED);
    EXPECT_EQ(Act(Action::kWithdraw, *token, a.name(), nullptr, "x").error_code(), Code::PERMISSION_DENIED);
  }
  ASSERT_TRUE(Do(Action::kSubmit, a.name()).ok());
  // Enterprises and auditors never review, not even their own.
  for (const std::string* token : {&enterprise_a_, &enterprise_b_, &auditor_}) {
    EXPECT_EQ(Act(Action::kStartReview, *token, a.name()).error_code(), Code::PERMISSION_DENIED);
  }
  EXPECT_EQ(Get(a.name()).state(), App::SUBMITTED);

  // ENERGY + GREEN_POWER: energy is responsible for every item.
  App energy_only = Bring(MakeApp({Qty(v1::ENERGY, 10), Qty(v1::GREEN_POWER, 20)}), App::SUBMITTED);
  grpc::Status s = Act(Action::kStartReview, energy_, energy_only.name());
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Act(Action::kApprove, energy_, energy_only.name(), &energy_only);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(energy_only.history().rbegin()->actor().organization(), "departments/energy");

  // LAND + ENERGY for dairy: energy is not responsible for LAND and does not lead dairy.
  App mixed = Bring(MakeApp({Land({"P1"}), Qty(v1::ENERGY, 10)}), App::SUBMITTED);
  EXPECT_EQ(Act(Action::kStartReview, energy_, mixed.name()).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Act(Action::kStartReview, development_reform_, mixed.name()).error_code(), Code::PERMISSION_DENIED);
  ASSERT_TRUE(Act(Action::kStartReview, industry_it_, mixed.name()).ok());
  s = Act(Action::kApprove, energy_, mixed.name());
  EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  EXPECT_EQ(Act(Action::kReturn, energy_, mixed.name(), nullptr, "x").error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Get(mixed.name()).state(), App::UNDER_REVIEW);
  EXPECT_EQ(GetPool(PoolOf(v1::LAND)).reserved(), 0);
  // industry_it leads dairy: it may approve anything for dairy.
  s = Act(Action::kApprove, industry_it_, mixed.name());
  EXPECT_TRUE(s.ok()) << Describe(s);
  App water = Bring(MakeApp({Qty(v1::WATER, 10), Qty(v1::ENVIRONMENT, 5, "so2")}), App::UNDER_REVIEW);
  EXPECT_EQ(Act(Action::kApprove, energy_, water.name()).error_code(), Code::PERMISSION_DENIED);
  s = Act(Action::kApprove, industry_it_, water.name());
  EXPECT_TRUE(s.ok()) << Describe(s);
  // ... and development_reform is responsible for WATER and ENVIRONMENT.
  water = Bring(MakeApp({Qty(v1::WATER, 10), Qty(v1::ENVIRONMENT, 5, "so2")}), App::SUBMITTED);
  ASSERT_TRUE(Act(Action::kStartReview, development_reform_, water.name()).ok());
  s = Act(Action::kApprove, development_reform_, water.name());
  EXPECT_TRUE(s.ok()) << Describe(s);

  // A cluster industry_it does not lead (hydrogen: energy): industry_it may not review a WATER
  // application there, energy (its lead) may.
  s = Join(energy_, kA, "hydrogen");
  ASSERT_TRUE(s.ok()) << Describe(s);
  App h = MakeApp({Qty(v1::WATER, 10)});
  App change;
  change.set_name(h.name());
  change.set_cluster("clusters/hydrogen");
  ASSERT_TRUE(Update(enterprise_a_, change, {"cluster"}, &h).ok());
  h = Bring(h, App::SUBMITTED);
  EXPECT_EQ(Act(Action::kStartReview, industry_it_, h.name()).error_code(), Code::PERMISSION_DENIED);
  ASSERT_TRUE(Act(Action::kStartReview, energy_, h.name()).ok());
  s = Act(Action::kApprove, energy_, h.name());
  EXPECT_TRUE(s.ok()) << Describe(s);

  // Reads: an enterprise sees only its own applications.
  App b = MakeApp({Qty(v1::ENERGY, 1)}, false, enterprise_b_);
  v1::GetApplicationRequest get;
  get.set_name(a.name());
  App ignored;
  EXPECT_EQ(Call(&Stub::GetApplication, enterprise_b_, get, &ignored).error_code(), Code::PERMISSION_DENIED);
  get.set_name(b.name());
  EXPECT_EQ(Call(&Stub::GetApplication, enterprise_a_, get, &ignored).error_code(), Code::PERMISSION_DENIED);
  EXPECT_TRUE(Call(&Stub::GetApplication, enterprise_b_, get, &ignored).ok());
  EXPECT_TRUE(Call(&Stub::GetApplication, industry_it_, get, &ignored).ok());
  EXPECT_THAT(ListNames("", "", enterprise_b_), ElementsAre(b.name()));
  auto mine = ListNames("", "", enterprise_a_);
  EXPECT_EQ(mine.size(), 6u);
  EXPECT_EQ(std::count(mine.begin(), mine.end(), b.name()), 0);
  EXPECT_THAT(ListNames(absl::StrCat("applicant = \"", EnterpriseName(kB), "\""), "", enterprise_a_), IsEmpty());
  EXPECT_EQ(ListNames("").size(), 7u);
  EXPECT_EQ(ListNames("", "", industry_it_).size(), 7u);
}

// A cluster's reward is claimed by its promotion organization, for SUBSIDY only, naming an
// evaluation of the application's own cluster; a cluster without eligibility is refused at
// submission and nothing changes. (The granted case runs end to end in the governance test.)
TEST_F(SupportTest, RewardClaimsAreValidatedAndNeedTheClustersEligibility) {
  const std::string promo_org = "promotionOrgs/dairy-association";
  const std::string promo = testing::MakeToken("assoc", promo_org, {"promotion_org"});
  {
    absl::Status s = clusters_.DesignatePromotionOrg(kDairy, promo_org);
    ASSERT_TRUE(s.ok()) << s;
  }
  const v1::Pool pool = MakePool(v1::SUBSIDY, 500000000);
  const std::string reward = absl::StrCat(kDairy, "/evaluations/2026");

  App claim = AppSpec({Qty(v1::SUBSIDY, 3000000)});
  claim.set_reward(reward);
  // The evaluation must be of the application's own cluster, and well formed.
  for (const std::string bad : {"clusters/hydrogen/evaluations/2026", "clusters/hohhot-dairy/evaluations/x",
                                "clusters/hohhot-dairy/evaluations/1999", "evaluations/2026"}) {
    App wrong = claim;
    wrong.set_reward(bad);
    EXPECT_THAT(FieldsOf(CreateApp(promo, wrong)), ElementsAre("application.reward")) << bad;
  }
  // SUBSIDY only; and an enterprise does not claim a cluster's reward.
  App land = claim;
  *land.add_items() = Qty(v1::LAND, 10);
  EXPECT_THAT(FieldsOf(CreateApp(promo, land)), ElementsAre("application.items[1].kind"));
  EXPECT_THAT(FieldsOf(CreateApp(enterprise_a_, claim)), ElementsAre("application.reward"));

  App made;
  grpc::Status s = CreateApp(promo, claim, &made);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(made.reward(), reward);
  // The dairy cluster has no reward eligibility: refused at submission, nothing changes.
  s = Act(Action::kSubmit, promo, made.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("not eligible for a reward"));
  EXPECT_EQ(Get(made.name()).state(), App::DRAFT);
  EXPECT_EQ(Get(made.name()).etag(), made.etag());
  // The claim is an updatable field, checked like on creation.
  App change;
  change.set_name(made.name());
  change.set_reward("clusters/hydrogen/evaluations/2026");
  EXPECT_THAT(FieldsOf(Update(promo, change, {"reward"})), ElementsAre("application.reward"));
  change.set_reward("");
  App cleared;
  s = Update(promo, change, {"reward"}, &cleared);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(cleared.reward().empty());
  // Without the claim it is an ordinary funds application of the cluster's promotion organization.
  s = Act(Action::kSubmit, promo, made.name());
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(GetPool(pool.name()).reserved(), 0);
}

// ------------------------------------------------------------------ membership on submit

TEST_F(SupportTest, SubmitChecksMembershipRegistrationAndPools) {
  MakePool(v1::ENERGY, 1000);
  // The setup's enterprise changes are behind the directory (a late one would drop A's answer,
  // cached below and relied on once the enterprises service is down).
  ASSERT_TRUE(testing::WaitForConsumerGroup(enterprises_.runtime(), "support.directory").ok());

  // Registered but not a member: FAILED_PRECONDITION, not cached — after joining, it submits.
  ASSERT_TRUE(RegisterEnterprise(kC).ok());
  App c = MakeApp({Qty(v1::ENERGY, 10)}, false, TokenFor(kC));
  grpc::Status s = Act(Action::kSubmit, TokenFor(kC), c.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("is not a member of clusters/hohhot-dairy"));
  EXPECT_EQ(Get(c.name()).state(), App::DRAFT);
  ASSERT_TRUE(Join(TokenFor(kC), kC, "hohhot-dairy").ok());
  s = Act(Action::kSubmit, TokenFor(kC), c.name());
  EXPECT_TRUE(s.ok()) << Describe(s);

  // A member of another cluster only.
  App other = MakeApp({Qty(v1::ENERGY, 10)});
  App change;
  change.set_name(other.name());
  change.set_cluster("clusters/baotou-rare-earth");
  ASSERT_TRUE(Update(enterprise_a_, change, {"cluster"}).ok());
  s = Act(Action::kSubmit, enterprise_a_, other.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("clusters/baotou-rare-earth"));

  // Unregistered (a valid code the registry does not know).
  const std::string unregistered = TokenFor(kUnregistered);
  App u = MakeApp({Qty(v1::ENERGY, 10)}, false, unregistered);
  s = Act(Action::kSubmit, unregistered, u.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("is not registered"));
  EXPECT_EQ(Get(u.name()).state(), App::DRAFT);

  // A pool missing for an item: refused at submit, naming the item and the pool.
  App w = MakeApp({Qty(v1::ENERGY, 10), Qty(v1::WATER, 10)});
  s = Act(Action::kSubmit, enterprise_a_, w.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("items[1]"), HasSubstr("pools/150100-2025-water")));
  EXPECT_EQ(Get(w.name()).state(), App::DRAFT);
  App next_year = AppSpec({Qty(v1::ENERGY, 10)});
  next_year.set_year(kYear + 1);
  App ny;
  ASSERT_TRUE(CreateApp(enterprise_a_, next_year, &ny).ok());
  s = Act(Action::kSubmit, enterprise_a_, ny.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("pools/150100-2026-energy"));

  // The enterprises service stops. A's membership was checked before (cached): A still submits.
  // B's never was: UNAVAILABLE, never a guess, and nothing changes.
  ASSERT_NO_FATAL_FAILURE(MemberOfDairy(kB));
  App a2 = MakeApp({Qty(v1::ENERGY, 10)});
  App b = MakeApp({Qty(v1::ENERGY, 10)}, false, enterprise_b_);
  enterprises_.runtime().Shutdown();
  s = Act(Action::kSubmit, enterprise_a_, a2.name());
  EXPECT_TRUE(s.ok()) << Describe(s);
  for (int i = 0; i < 2; ++i) {
    s = Act(Action::kSubmit, enterprise_b_, b.name());
    EXPECT_EQ(s.error_code(), Code::UNAVAILABLE) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("enterprises service"));
  }
  EXPECT_EQ(Get(b.name()).state(), App::DRAFT);
}

// ------------------------------------------------------------------ all or nothing

TEST_F(SupportTest, ApprovalIsAllOrNothing) {
  MakePool(v1::ENERGY, 1000);
  MakePool(v1::SUBSIDY, 100);
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 10000), MakeParcel("P2", 20000), MakeParcel("P3", 5000)});

  auto expect_refused = [&](const App& app, const std::vector<std::string>& substrings) {
    const App before = Get(app.name());
    const size_t reserve_entries = Ledger("type = RESERVE").size();
    const v1::Pool energy = GetPool(PoolOf(v1::ENERGY));
    const v1::Pool subsidy = GetPool(PoolOf(v1::SUBSIDY));
    const v1::Pool land = GetPool(PoolOf(v1::LAND));
    grpc::Status s = Act(Action::kApprove, industry_it_, app.name());
    EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
    for (const auto& sub : substrings) EXPECT_THAT(s.error_message(), HasSubstr(sub));
    const App after = Get(app.name());
    EXPECT_EQ(after.state(), App::UNDER_REVIEW);
    EXPECT_EQ(after.etag(), before.etag());
    EXPECT_THAT(LedgerOf(app.name()), IsEmpty());
    EXPECT_EQ(Ledger("type = RESERVE").size(), reserve_entries);
    EXPECT_TRUE(MessageDifferencer::Equals(GetPool(PoolOf(v1::ENERGY)), energy));
    EXPECT_TRUE(MessageDifferencer::Equals(GetPool(PoolOf(v1::SUBSIDY)), subsidy));
    EXPECT_TRUE(MessageDifferencer::Equals(GetPool(PoolOf(v1::LAND)), land));
  };

  // The second item exceeds its pool's free amount: nothing is reserved in either pool.
  App over = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 500), Qty(v1::SUBSIDY, 101)});
  expect_refused(over, {"items[1]", "pools/150100-2025-subsidy", "101", "100 fen free"});
  // Items of one application on the same pool are summed.
  App same = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 600), Qty(v1::ENERGY, 500)});
  expect_refused(same, {"items[1]", "400 kgce free"});
  // After another reservation, the free amount named is what is left.
  NewAppIn(App::APPROVED, {Qty(v1::SUBSIDY, 60)});
  App later = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 500), Qty(v1::SUBSIDY, 50)});
  expect_refused(later, {"items[1]", "40 fen free"});

  // A land bundle with one parcel already held by another approved application.
  App holder = NewAppIn(App::APPROVED, {Land({"P1"})});
  ASSERT_EQ(holder.state(), App::APPROVED);
  App bundle = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 100), Land({"P2", "P1"})});
  expect_refused(bundle, {"items[1]", "parcel P1", absl::StrCat("already held by ", holder.name())});
  v1::Pool land = GetPool(PoolOf(v1::LAND));
  EXPECT_EQ(FindParcel(land, "P2")->held_by(), "");
  EXPECT_EQ(land.reserved(), 10000);

  // Once there is room, the same application is approved whole.
  ASSERT_TRUE(Act(Action::kReject, industry_it_, holder.name(), nullptr, "让出地块").ok());
  grpc::Status s = Act(Action::kApprove, industry_it_, bundle.name(), &bundle);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(bundle.items(1).quantity(), 30000);
  EXPECT_EQ(GetPool(PoolOf(v1::LAND)).reserved(), 30000);
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 100);
  EXPECT_TRUE(Check().consistent());
}

TEST_F(SupportTest, MoneyAndQuantitiesAreExactIntegers) {
  const int64_t cap = k2Pow50 - 1;  // odd, the largest below the limit
  MakePool(v1::SUBSIDY, cap);
  const int64_t q1 = (int64_t{1} << 49) + 1;
  const int64_t q2 = (int64_t{1} << 49) - 3;
  App app = NewAppIn(App::APPROVED, {Qty(v1::SUBSIDY, q1), Qty(v1::SUBSIDY, q2)});
  ASSERT_EQ(app.state(), App::APPROVED);
  v1::Pool pool = GetPool(PoolOf(v1::SUBSIDY));
  EXPECT_EQ(pool.reserved(), q1 + q2);
  EXPECT_EQ(pool.reserved(), cap - 1);
  EXPECT_EQ(pool.free(), 1);
  auto bp = [](int64_t used, int64_t capacity) {
    return static_cast<int32_t>(static_cast<__int128>(used) * 10000 / capacity);
  };
  auto use = Utilization("kind = SUBSIDY");
  ASSERT_EQ(use.pools_size(), 1);
  EXPECT_EQ(use.pools(0).reserved(), cap - 1);
  EXPECT_EQ(use.pools(0).used_bp(), bp(cap - 1, cap));
  EXPECT_EQ(use.pools(0).used_bp(), 9999);

  App two = NewAppIn(App::UNDER_REVIEW, {Qty(v1::SUBSIDY, 2)});
  grpc::Status s = Act(Action::kApprove, industry_it_, two.name());
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("1 fen free"));
  App one = NewAppIn(App::APPROVED, {Qty(v1::SUBSIDY, 1)});
  ASSERT_EQ(one.state(), App::APPROVED);
  EXPECT_EQ(GetPool(PoolOf(v1::SUBSIDY)).free(), 0);
  EXPECT_EQ(Utilization("kind = SUBSIDY").pools(0).used_bp(), 10000);

  ASSERT_TRUE(Do(Action::kAllocate, app.name()).ok());
  pool = GetPool(PoolOf(v1::SUBSIDY));
  EXPECT_EQ(pool.allocated(), cap - 1);
  EXPECT_EQ(pool.reserved(), 1);
  int64_t reserved_sum = 0;
  for (const auto& e : Ledger("type = RESERVE")) reserved_sum += e.quantity();
  EXPECT_EQ(reserved_sum, cap);
  auto entries = LedgerOf(app.name());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].quantity(), q1);
  EXPECT_EQ(entries[1].quantity(), q2);
  EXPECT_EQ(entries[2].quantity(), q1);
  EXPECT_EQ(entries[3].quantity(), q2);

  // Per cluster and kind, exact too.
  use = Utilization("");
  bool found = false;
  for (const auto& c : use.clusters()) {
    if (c.cluster() == kDairy && c.kind() == v1::SUBSIDY) {
      found = true;
      EXPECT_EQ(c.reserved(), 1);
      EXPECT_EQ(c.allocated(), cap - 1);
    }
  }
  EXPECT_TRUE(found);

  // Basis points truncate exactly: 1/3 → 3333, 5/7 → 7142.
  MakePool(v1::ENERGY, 3);
  MakePool(v1::GREEN_POWER, 7);
  NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 1), Qty(v1::GREEN_POWER, 5)});
  std::map<std::string, int32_t> used;
  const v1::Utilization small = Utilization("kind = ENERGY OR kind = GREEN_POWER");
  for (const auto& p : small.pools()) used[p.pool()] = p.used_bp();
  EXPECT_EQ(used[PoolOf(v1::ENERGY)], 3333);
  EXPECT_EQ(used[PoolOf(v1::GREEN_POWER)], 7142);

  // Quantities are bounded: 2^50 is allowed, beyond (or zero, or negative) is a field error.
  EXPECT_TRUE(CreateApp(enterprise_a_, AppSpec({Qty(v1::SUBSIDY, k2Pow50)})).ok());
  for (int64_t q : {k2Pow50 + 1, int64_t{0}, int64_t{-5}}) {
    EXPECT_THAT(FieldsOf(CreateApp(enterprise_a_, AppSpec({Qty(v1::SUBSIDY, q)}))),
                ElementsAre("application.items[0].quantity"))
        << q;
  }
  EXPECT_TRUE(Check().consistent());
}

// ------------------------------------------------------------------ the ledger

TEST_F(SupportTest, LedgerFiltersPagesStaysConsistentAndIsAppendOnlyInTheDatabase) {
  MakePool(v1::ENERGY, 1000);
  MakePool(v1::WATER, 500);
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000)});
  const std::string energy = PoolOf(v1::ENERGY);

  App a = NewAppIn(App::ALLOCATED, {Qty(v1::ENERGY, 100), Qty(v1::WATER, 50)});
  App b = NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 200), Land({"P1"})});
  ASSERT_TRUE(Act(Action::kReject, industry_it_, b.name(), nullptr, "撤销").ok());
  App c = NewAppIn(App::APPROVED, {Qty(v1::WATER, 70)});
  v1::Pool current = GetPool(energy);
  ASSERT_TRUE(SetCapacity(energy_, energy, 1200, "扩容", current.etag()).ok());
  NewAppIn(App::WITHDRAWN, {Qty(v1::ENERGY, 5)});

  auto types = [](const std::vector<Entry>& entries) {
    std::vector<Entry::Type> out;
    for (const auto& e : entries) out.push_back(e.type());
    return out;
  };
  EXPECT_THAT(types(Ledger(absl::StrCat("pool = \"", energy, "\""))),
              ElementsAre(Entry::ADJUST, Entry::RESERVE, Entry::ALLOCATE, Entry::RESERVE, Entry::RELEASE,
                          Entry::ADJUST));
  auto of_b = LedgerOf(b.name());
  EXPECT_THAT(types(of_b), ElementsAre(Entry::RESERVE, Entry::RESERVE, Entry::RELEASE, Entry::RELEASE));
  EXPECT_EQ(of_b[1].item_index(), 1);
  EXPECT_EQ(of_b[1].pool(), PoolOf(v1::LAND));
  auto released = Ledger("type = RELEASE");
  ASSERT_EQ(released.size(), 2u);
  for (const auto& e : released) EXPECT_EQ(e.application(), b.name());
  EXPECT_EQ(Ledger(absl::StrCat("type = ADJUST AND pool = \"", energy, "\"")).size(), 2u);
  EXPECT_EQ(Ledger(absl::StrCat("type = RESERVE AND application = \"", c.name(), "\"")).size(), 1u);
  EXPECT_EQ(Ledger("type = ALLOCATE").size(), 2u);

  // Pages: the same entries in the same order, ids strictly increasing.
  const auto all = Ledger("", 500);
  int pages = 0;
  const auto paged = Ledger("", 2, &pages);
  ASSERT_EQ(all.size(), 3u + 4 + 4 + 1 + 1);  // ADJUST×3, a: RESERVE×2 ALLOCATE×2, b: 4, c: 1, ADJUST
  EXPECT_EQ(pages, static_cast<int>((all.size() + 1) / 2));
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(paged[i].id(), all[i].id());
    if (i > 0) {
      EXPECT_GT(all[i].id(), all[i - 1].id());
    }
  }
  v1::ListLedgerEntriesRequest req;
  req.set_page_size(2);
  v1::ListLedgerEntriesResponse resp;
  ASSERT_TRUE(Call(&Stub::ListLedgerEntries, auditor_, req, &resp).ok());
  ASSERT_FALSE(resp.next_page_token().empty());
  req.set_page_token(resp.next_page_token());
  req.set_filter("type = RESERVE");  // a token belongs to its query
  EXPECT_THAT(FieldsOf(Call(&Stub::ListLedgerEntries, auditor_, req, &resp)), ElementsAre("page_token"));
  req.set_filter("");
  std::string tampered = req.page_token();
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  req.set_page_token(tampered);
  EXPECT_THAT(FieldsOf(Call(&Stub::ListLedgerEntries, auditor_, req, &resp)), ElementsAre("page_token"));
  req.set_page_token("");
  for (const std::string bad : {"colour = red", "type = BOGUS", "pool >"}) {
    req.set_filter(bad);
    grpc::Status s = Call(&Stub::ListLedgerEntries, auditor_, req, &resp);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("filter")) << bad;
  }
  req.set_filter("");
  EXPECT_EQ(Call(&Stub::ListLedgerEntries, enterprise_a_, req, &resp).error_code(), Code::PERMISSION_DENIED);
  v1::ConsistencyReport ignored;
  EXPECT_EQ(Call(&Stub::CheckConsistency, enterprise_a_, v1::CheckConsistencyRequest(), &ignored).error_code(),
            Code::PERMISSION_DENIED);

  // Consistent, pool by pool, with the balances recomputed from the ledger alone.
  v1::ConsistencyReport report = Check();
  EXPECT_TRUE(report.consistent());
  ASSERT_EQ(report.pools_size(), 3);
  for (const auto& p : report.pools()) {
    EXPECT_TRUE(p.consistent()) << p.pool();
    EXPECT_EQ(p.ledger_capacity(), p.capacity()) << p.pool();
    EXPECT_EQ(p.ledger_reserved(), p.stored_reserved()) << p.pool();
    EXPECT_EQ(p.ledger_allocated(), p.stored_allocated()) << p.pool();
    if (p.pool() == energy) {
      EXPECT_EQ(p.capacity(), 1200);
      EXPECT_EQ(p.stored_reserved(), 0);
      EXPECT_EQ(p.stored_allocated(), 100);
    }
    if (p.pool() == PoolOf(v1::WATER)) {
      EXPECT_EQ(p.stored_reserved(), 70);
      EXPECT_EQ(p.stored_allocated(), 50);
    }
  }

  // The database itself refuses to change the ledger or to overdraw a pool (on either backend:
  // triggers and a CHECK constraint).
  store::Store& db = srt_->db();
  auto exec = [&](const char* sql) {
    return db.Write([&](store::Connection& c) -> absl::Status {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
      return stmt.Run();
    });
  };
  EXPECT_TRUE(absl::IsFailedPrecondition(exec("UPDATE ledger SET quantity = 0")));
  EXPECT_TRUE(absl::IsFailedPrecondition(exec("DELETE FROM ledger")));
  EXPECT_TRUE(absl::IsFailedPrecondition(exec("UPDATE pools SET reserved = capacity + 1")));
  EXPECT_TRUE(absl::IsFailedPrecondition(exec("UPDATE pools SET allocated = capacity - reserved + 1")));
  int64_t sum = 0;
  for (const auto& e : all) sum += e.quantity();
  auto stored = db.ReadResult<std::pair<int64_t, int64_t>>(
      [](store::Connection& c) -> absl::StatusOr<std::pair<int64_t, int64_t>> {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT count(*), sum(quantity) FROM ledger"));
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) return absl::InternalError("no row");
        return std::make_pair(stmt.Int(0), stmt.Int(1));
      });
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->first, static_cast<int64_t>(all.size()));
  EXPECT_EQ(stored->second, sum);
  StopSupport();

  // Restarted on the same file: nothing changed.
  ASSERT_NO_FATAL_FAILURE(StartSupport(kDefaultLifetime));
  EXPECT_TRUE(Check().consistent());
  EXPECT_EQ(Ledger("").size(), all.size());
}

// ------------------------------------------------------------------ expiry

TEST_F(SupportTest, ExpiredReservationsAreReleased) {
  ASSERT_NO_FATAL_FAILURE(RestartSupport(absl::Seconds(1)));
  MakePool(v1::ENERGY, 1000);
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000)});

  App allocated = NewAppIn(App::ALLOCATED, {Qty(v1::ENERGY, 100)});
  App reviewing = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 50)});
  const absl::Time before_approval = absl::Now();
  App a = NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 300), Land({"P1"})});
  ASSERT_EQ(a.state(), App::APPROVED);
  EXPECT_NEAR(Micros(a.reservation_expire_time()) - Micros(a.history().rbegin()->time()), 1000000, 50000);
  v1::ExpireReservationsResponse expired;
  if (absl::Now() - before_approval < absl::Milliseconds(800)) {
    ASSERT_TRUE(Expire(industry_it_, &expired).ok());
    EXPECT_THAT(expired.expired(), IsEmpty());  // not yet
  }
  EXPECT_EQ(Expire(enterprise_a_, &expired).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Expire(auditor_, &expired).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 300);

  ASSERT_NO_FATAL_FAILURE(WaitUntilPast(a.reservation_expire_time()));
  grpc::Status s = Expire(industry_it_, &expired);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(expired.expired(), ElementsAre(a.name()));
  a = Get(a.name());
  EXPECT_EQ(a.state(), App::EXPIRED);
  EXPECT_EQ(a.history().rbegin()->from(), App::APPROVED);
  EXPECT_EQ(a.history().rbegin()->reason(), "reservation expired");
  EXPECT_EQ(a.history().rbegin()->actor().organization(), "departments/industry_it");
  auto releases = Ledger(absl::StrCat("application = \"", a.name(), "\" AND type = RELEASE"));
  ASSERT_EQ(releases.size(), 2u);
  EXPECT_EQ(releases[0].quantity(), 300);
  EXPECT_EQ(releases[1].quantity(), 20000);
  v1::Pool energy = GetPool(PoolOf(v1::ENERGY));
  EXPECT_EQ(energy.reserved(), 0);
  EXPECT_EQ(energy.allocated(), 100);
  EXPECT_EQ(energy.free(), 900);
  v1::Pool land = GetPool(PoolOf(v1::LAND));
  EXPECT_EQ(land.reserved(), 0);
  EXPECT_EQ(FindParcel(land, "P1")->held_by(), "");
  EXPECT_EQ(Get(allocated.name()).state(), App::ALLOCATED);
  EXPECT_EQ(Get(reviewing.name()).state(), App::UNDER_REVIEW);

  // Once only; an expired reservation cannot be allocated.
  ASSERT_TRUE(Expire(industry_it_, &expired).ok());
  EXPECT_THAT(expired.expired(), IsEmpty());
  EXPECT_EQ(Do(Action::kAllocate, a.name()).error_code(), Code::FAILED_PRECONDITION);
  EXPECT_TRUE(Check().consistent());
}

// ------------------------------------------------------------------ listing

TEST_F(SupportTest, PriorityOrderListsCoreChainProjectsFirstThenBySubmission) {
  MakePool(v1::ENERGY, 100000);
  // Created in one order, submitted in another.
  App c2 = MakeApp({Qty(v1::ENERGY, 1)}, /*core=*/true);
  App n1 = MakeApp({Qty(v1::ENERGY, 1)}, false);
  App c1 = MakeApp({Qty(v1::ENERGY, 1)}, true);
  App n2 = MakeApp({Qty(v1::ENERGY, 1)}, false);
  MakeApp({Qty(v1::ENERGY, 1)}, true);  // a draft: never submitted
  for (App* app : {&n1, &c1, &n2, &c2}) {
    *app = Bring(*app, App::SUBMITTED);
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_LT(Micros(n1.submit_time()), Micros(c1.submit_time()));
  ASSERT_LT(Micros(c1.submit_time()), Micros(c2.submit_time()));

  const std::vector<std::string> priority = {c1.name(), c2.name(), n1.name(), n2.name()};
  EXPECT_THAT(ListNames("state = SUBMITTED", "priority"), ElementsAreArray(priority));
  EXPECT_THAT(ListNames("state = SUBMITTED", "priority", "", 1), ElementsAreArray(priority));
  EXPECT_THAT(ListNames("state = SUBMITTED", "priority", enterprise_a_, 3), ElementsAreArray(priority));
  const std::vector<std::string> created = {c2.name(), n1.name(), c1.name(), n2.name()};
  EXPECT_THAT(ListNames("state = SUBMITTED", "create_time"), ElementsAreArray(created));
  EXPECT_THAT(ListNames("state = SUBMITTED", "", "", 1), ElementsAreArray(created));

  v1::ListApplicationsRequest req;
  req.set_order_by("bogus");
  v1::ListApplicationsResponse resp;
  grpc::Status s = Call(&Stub::ListApplications, auditor_, req, &resp);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("order_by"));
}

TEST_F(SupportTest, ListFiltersAndPageTokens) {
  ASSERT_NO_FATAL_FAILURE(MemberOfDairy(kB));
  MakePool(v1::ENERGY, 100000);
  MakePool(v1::LAND, 100000);
  App a1 = MakeApp({Qty(v1::ENERGY, 1)}, /*core=*/true);
  App a2 = NewAppIn(App::SUBMITTED, {Qty(v1::LAND, 100)});
  App b1 = Bring(MakeApp({Qty(v1::ENERGY, 1), Qty(v1::LAND, 5)}, true, enterprise_b_), App::UNDER_REVIEW,
                 enterprise_b_);
  App spec = AppSpec({Qty(v1::WATER, 3)}, false, "clusters/baotou-rare-earth");
  App b2;
  ASSERT_TRUE(CreateApp(enterprise_b_, spec, &b2).ok());
  ASSERT_EQ(b1.state(), App::UNDER_REVIEW);

  EXPECT_THAT(ListNames("state = DRAFT"), ElementsAre(a1.name(), b2.name()));
  EXPECT_THAT(ListNames("state = UNDER_REVIEW"), ElementsAre(b1.name()));
  EXPECT_THAT(ListNames("state = DRAFT OR state = SUBMITTED"), ElementsAre(a1.name(), a2.name(), b2.name()));
  EXPECT_THAT(ListNames("kind = LAND"), ElementsAre(a2.name(), b1.name()));
  EXPECT_THAT(ListNames("kind = WATER"), ElementsAre(b2.name()));
  EXPECT_THAT(ListNames("kind != ENERGY"), ElementsAre(a2.name(), b2.name()));
  EXPECT_THAT(ListNames("cluster = \"clusters/baotou-rare-earth\""), ElementsAre(b2.name()));
  EXPECT_THAT(ListNames(absl::StrCat("applicant = \"", EnterpriseName(kB), "\"")), ElementsAre(b1.name(), b2.name()));
  EXPECT_THAT(ListNames("core_chain_project = true"), ElementsAre(a1.name(), b1.name()));
  EXPECT_THAT(ListNames("core_chain_project = true AND kind = LAND"), ElementsAre(b1.name()));
  EXPECT_THAT(ListNames("region = \"150100\" AND year = 2025"), ::testing::SizeIs(4));
  EXPECT_THAT(ListNames("year = 2026"), IsEmpty());
  // An enterprise's own only, whatever the filter.
  EXPECT_THAT(ListNames("kind = ENERGY", "", enterprise_a_), ElementsAre(a1.name()));
  EXPECT_THAT(ListNames("core_chain_project = true", "", enterprise_b_), ElementsAre(b1.name()));
  // Every page, no duplicates.
  EXPECT_THAT(ListNames("", "", "", 1), ElementsAre(a1.name(), a2.name(), b1.name(), b2.name()));

  v1::ListApplicationsRequest req;
  v1::ListApplicationsResponse resp;
  for (const std::string bad : {"colour = red", "state = NOPE", "year > soon", "core_chain_project = maybe",
                                "state = DRAFT state = SUBMITTED"}) {
    req.set_filter(bad);
    grpc::Status s = Call(&Stub::ListApplications, auditor_, req, &resp);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("filter")) << bad;
  }
  // Page tokens: bound to their query and caller, and tamper-evident.
  req.set_filter("");
  req.set_page_size(1);
  ASSERT_TRUE(Call(&Stub::ListApplications, auditor_, req, &resp).ok());
  const std::string token = resp.next_page_token();
  ASSERT_FALSE(token.empty());
  req.set_page_token(token);
  ASSERT_TRUE(Call(&Stub::ListApplications, auditor_, req, &resp).ok());
  EXPECT_EQ(resp.applications(0).name(), a2.name());
  for (size_t i : {size_t{0}, token.size() / 2, token.size() - 1}) {
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    req.set_page_token(tampered);
    EXPECT_THAT(FieldsOf(Call(&Stub::ListApplications, auditor_, req, &resp)), ElementsAre("page_token")) << i;
  }
  req.set_page_token(token);
  req.set_filter("state = DRAFT");
  EXPECT_THAT(FieldsOf(Call(&Stub::ListApplications, auditor_, req, &resp)), ElementsAre("page_token"));
  req.set_filter("");
  req.set_order_by("priority");
  EXPECT_THAT(FieldsOf(Call(&Stub::ListApplications, auditor_, req, &resp)), ElementsAre("page_token"));
  req.set_order_by("");
  EXPECT_THAT(FieldsOf(Call(&Stub::ListApplications, enterprise_a_, req, &resp)), ElementsAre("page_token"));
  req.set_page_token("not-a-token");
  EXPECT_THAT(FieldsOf(Call(&Stub::ListApplications, auditor_, req, &resp)), ElementsAre("page_token"));
}

// ------------------------------------------------------------------ idempotency

TEST_F(SupportTest, RetriedApprovalWithTheSameRequestIdReservesOnce) {
  MakePool(v1::ENERGY, 1000);
  App app = NewAppIn(App::UNDER_REVIEW, {Qty(v1::ENERGY, 300)});

  App first;
  grpc::Status s = Act(Action::kApprove, industry_it_, app.name(), &first, "同意", "approve-once");
  ASSERT_TRUE(s.ok()) << Describe(s);
  App second;
  s = Act(Action::kApprove, industry_it_, app.name(), &second, "同意", "approve-once");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(MessageDifferencer::Equals(first, second));
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 300);
  EXPECT_EQ(LedgerOf(app.name()).size(), 1u);
  EXPECT_EQ(Get(app.name()).etag(), first.etag());

  // The same id for a different request; a new id; another reviewer with the same id.
  s = Act(Action::kApprove, industry_it_, app.name(), nullptr, "另一个理由", "approve-once");
  EXPECT_THAT(FieldsOf(s), ElementsAre("request_id"));
  EXPECT_EQ(Act(Action::kApprove, industry_it_, app.name(), nullptr, "同意", "approve-twice").error_code(),
            Code::FAILED_PRECONDITION);
  EXPECT_EQ(Act(Action::kApprove, energy_, app.name(), nullptr, "同意", "approve-once").error_code(),
            Code::FAILED_PRECONDITION);
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), 300);
  EXPECT_EQ(LedgerOf(app.name()).size(), 1u);

  // Creation is idempotent too: one application for one request id.
  App c1, c2;
  ASSERT_TRUE(CreateApp(enterprise_a_, AppSpec({Qty(v1::ENERGY, 7)}), &c1, "create-1").ok());
  ASSERT_TRUE(CreateApp(enterprise_a_, AppSpec({Qty(v1::ENERGY, 7)}), &c2, "create-1").ok());
  EXPECT_EQ(c1.name(), c2.name());
  EXPECT_EQ(ListNames("").size(), 2u);
  EXPECT_TRUE(Check().consistent());
}

// ------------------------------------------------------------------ domain metrics

TEST_F(SupportTest, DomainMetricsCountStatesAgeTheQueueAndMeasurePools) {
  // The support runtime's registry at the time of the call (the service restarts below).
  auto registry = [&]() -> prometheus::Registry& { return srt_->metrics().registry(); };
  auto state = [&](const std::string& name) {
    return GaugeValue(registry(), "clustergov_support_applications", {{"state", name}});
  };
  auto pending = [&](const char* name) {
    return GaugeValue(registry(), "clustergov_support_oldest_pending_application_seconds", {{"state", name}});
  };
  auto ratio = [&](const std::string& pool, const char* kind) {
    return GaugeValue(registry(), "clustergov_support_pool_utilization_ratio",
                      {{"pool", pool}, {"region", kHohhot}, {"year", std::to_string(kYear)}, {"kind", kind}});
  };
  const std::vector<std::string> kStates = {"DRAFT",    "SUBMITTED", "UNDER_REVIEW", "APPROVED", "REJECTED",
                                            "RETURNED", "ALLOCATED", "WITHDRAWN",    "EXPIRED"};

  // From the start (empty store): every state's series at 0, none for STATE_UNSPECIFIED, no pools.
  for (const auto& s : kStates) EXPECT_EQ(state(s), 0.0) << s;
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_applications"), kStates.size());
  EXPECT_EQ(pending("SUBMITTED"), 0.0);
  EXPECT_EQ(pending("UNDER_REVIEW"), 0.0);
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_oldest_pending_application_seconds"), 2u);
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_pool_utilization_ratio"), 0u);

  // Reservations of 1 s, so that one approval can expire.
  ASSERT_NO_FATAL_FAILURE(RestartSupport(absl::Seconds(1)));
  MakePool(v1::ENERGY, 1000);
  MakePool(v1::WATER, 10000);
  MakePool(v1::GREEN_POWER, 0);
  App expiring = NewAppIn(App::APPROVED, {Qty(v1::WATER, 500)});
  ASSERT_EQ(expiring.state(), App::APPROVED);
  ASSERT_NO_FATAL_FAILURE(WaitUntilPast(expiring.reservation_expire_time()));
  v1::ExpireReservationsResponse expired;
  ASSERT_TRUE(Expire(industry_it_, &expired).ok());
  ASSERT_THAT(expired.expired(), ElementsAre(expiring.name()));
  ASSERT_NO_FATAL_FAILURE(RestartSupport(kDefaultLifetime));

  const std::map<std::string, int> want = {{"DRAFT", 3},    {"SUBMITTED", 2}, {"UNDER_REVIEW", 1},
                                           {"APPROVED", 1}, {"REJECTED", 1},  {"RETURNED", 1},
                                           {"ALLOCATED", 2}, {"WITHDRAWN", 1}, {"EXPIRED", 1}};
  for (int i = 0; i < 3; ++i) MakeApp({Qty(v1::WATER, 10)});
  // Submitted first of all, returned, submitted again at the end: in SUBMITTED since the second
  // submission, so not the oldest there.
  App resubmitted = NewAppIn(App::RETURNED, {Qty(v1::WATER, 10)});
  // Submitted next, moved to review last: its age in review counts from the review.
  App reviewed = NewAppIn(App::SUBMITTED, {Qty(v1::WATER, 10)});
  absl::SleepFor(absl::Milliseconds(50));
  App submitted_first = NewAppIn(App::SUBMITTED, {Qty(v1::WATER, 10)});
  NewAppIn(App::RETURNED, {Qty(v1::WATER, 10)});
  App approved = NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 250)});  // 250 of 1000 reserved
  NewAppIn(App::REJECTED, {Qty(v1::WATER, 10)});
  NewAppIn(App::ALLOCATED, {Qty(v1::WATER, 1000)});
  NewAppIn(App::ALLOCATED, {Qty(v1::WATER, 2000)});  // 3000 of 10000 allocated
  NewAppIn(App::WITHDRAWN, {Qty(v1::WATER, 10)});
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(Do(Action::kSubmit, resubmitted.name(), &resubmitted).ok());  // RETURNED -> SUBMITTED again
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(Do(Action::kStartReview, reviewed.name(), &reviewed).ok());
  ASSERT_EQ(reviewed.state(), App::UNDER_REVIEW);
  ASSERT_EQ(approved.state(), App::APPROVED);

  // The store changed; the gauges have not been refreshed since the restart.
  EXPECT_EQ(state("DRAFT"), 0.0);
  EXPECT_EQ(ratio(PoolOf(v1::ENERGY), "ENERGY"), 0.0);  // as of the refresh at startup, before the approval

  const int64_t before = absl::ToUnixMicros(absl::Now());
  ASSERT_TRUE(smetrics_->RefreshNow().ok());
  const int64_t after = absl::ToUnixMicros(absl::Now());

  for (const auto& [name, n] : want) EXPECT_EQ(state(name), static_cast<double>(n)) << name;
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_applications"), kStates.size());

  // SUBMITTED: the oldest now in the state is `submitted_first` (`resubmitted` was submitted
  // before it, but entered SUBMITTED again later), aged from its submission; UNDER_REVIEW:
  // `reviewed`, aged from the start of its review.
  auto entered = [](const App& app) { return Micros(app.history().rbegin()->time()); };
  ASSERT_EQ(submitted_first.history().rbegin()->to(), App::SUBMITTED);
  ASSERT_EQ(reviewed.history().rbegin()->to(), App::UNDER_REVIEW);
  std::optional<double> submitted_age = pending("SUBMITTED");
  ASSERT_TRUE(submitted_age.has_value());
  EXPECT_GT(*submitted_age, 0);
  EXPECT_GE(*submitted_age, (before - entered(submitted_first)) / 1e6);
  EXPECT_LE(*submitted_age, (after - entered(submitted_first)) / 1e6);
  EXPECT_LT(*submitted_age, 60);
  // Not from `resubmitted`'s first submission.
  EXPECT_LT(*submitted_age, (before - Micros(resubmitted.history(0).time())) / 1e6);
  std::optional<double> review_age = pending("UNDER_REVIEW");
  ASSERT_TRUE(review_age.has_value());
  EXPECT_GT(*review_age, 0);
  EXPECT_GE(*review_age, (before - entered(reviewed)) / 1e6);
  EXPECT_LE(*review_age, (after - entered(reviewed)) / 1e6);
  EXPECT_LT(*review_age, (before - Micros(reviewed.submit_time())) / 1e6);  // not from its submission

  EXPECT_EQ(ratio(PoolOf(v1::ENERGY), "ENERGY"), 0.25);
  EXPECT_EQ(ratio(PoolOf(v1::WATER), "WATER"), 0.3);
  EXPECT_EQ(ratio(PoolOf(v1::GREEN_POWER), "GREEN_POWER"), 0.0);  // capacity 0
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_pool_utilization_ratio"), 3u);

  // A pool created at runtime appears at the next refresh; the other series follow the store.
  MakePool(v1::LAND, 4000);
  EXPECT_FALSE(ratio(PoolOf(v1::LAND), "LAND").has_value());
  ASSERT_TRUE(Do(Action::kAllocate, approved.name()).ok());
  ASSERT_TRUE(Do(Action::kStartReview, submitted_first.name()).ok());
  ASSERT_TRUE(Do(Action::kStartReview, resubmitted.name()).ok());
  ASSERT_TRUE(smetrics_->RefreshNow().ok());
  EXPECT_EQ(ratio(PoolOf(v1::LAND), "LAND"), 0.0);
  EXPECT_EQ(ratio(PoolOf(v1::ENERGY), "ENERGY"), 0.25);  // allocated now, still used
  EXPECT_EQ(SeriesCount(registry(), "clustergov_support_pool_utilization_ratio"), 4u);
  EXPECT_EQ(state("SUBMITTED"), 0.0);
  EXPECT_EQ(state("UNDER_REVIEW"), 3.0);
  EXPECT_EQ(state("APPROVED"), 0.0);
  EXPECT_EQ(state("ALLOCATED"), 3.0);
  EXPECT_EQ(pending("SUBMITTED"), 0.0);  // none left
  EXPECT_GT(*pending("UNDER_REVIEW"), 0);
}

TEST_F(SupportTest, DomainMetricsRefreshStopsWithTheServiceAndFailuresKeepTheLastValues) {
  MakePool(v1::ENERGY, 1000);
  NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 100)});
  ASSERT_TRUE(smetrics_->RefreshNow().ok());
  auto& registry = srt_->metrics().registry();
  EXPECT_EQ(GaugeValue(registry, "clustergov_support_applications", {{"state", "APPROVED"}}), 1.0);

  // Stopping wakes the refresher at once (it does not wait out its 15 s period).
  const absl::Time t = absl::Now();
  smetrics_->Stop();
  EXPECT_LT(absl::Now() - t, absl::Seconds(1));
  smetrics_->Stop();  // idempotent

  // A refresh that cannot read everything fails with a status and sets nothing: the application
  // counts (readable) keep their last values too.
  NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 100)});
  ASSERT_TRUE(srt_->db()
                  .Write([](store::Connection& c) { return c.Exec("ALTER TABLE pools RENAME TO pools_elsewhere"); })
                  .ok());
  absl::Status failed = smetrics_->RefreshNow();
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(GaugeValue(registry, "clustergov_support_applications", {{"state", "APPROVED"}}), 1.0);
}

// ------------------------------------------------------------------ cluster indicators

TEST_F(SupportTest, IndicatorsSumTheLedgersAllocationsToTheClusterYear) {
  MakePool(v1::LAND, 100000, "", {MakeParcel("P1", 20000), MakeParcel("P2", 30000)});
  MakePool(v1::ENERGY, 5000);
  MakePool(v1::WATER, 1000);
  MakePool(v1::ENVIRONMENT, 100, "so2");
  MakePool(v1::GREEN_POWER, 9000);
  MakePool(v1::SUBSIDY, 1000000);
  // Allocated: a core chain project drawing on every kind, and another drawing energy.
  App core = NewAppIn(App::ALLOCATED, {Qty(v1::ENERGY, 1200), Land({"P1"}), Qty(v1::WATER, 80),
                                       Qty(v1::ENVIRONMENT, 30, "so2"), Qty(v1::GREEN_POWER, 700),
                                       Qty(v1::SUBSIDY, 500)},
                      /*core=*/true);
  ASSERT_EQ(core.state(), App::ALLOCATED);
  App other = NewAppIn(App::ALLOCATED, {Qty(v1::ENERGY, 300)});
  ASSERT_EQ(other.state(), App::ALLOCATED);
  // Approved only (reserved, not allocated) and rejected: not counted.
  ASSERT_EQ(NewAppIn(App::APPROVED, {Qty(v1::ENERGY, 100), Land({"P2"})}).state(), App::APPROVED);
  ASSERT_EQ(NewAppIn(App::REJECTED, {Qty(v1::ENERGY, 50)}).state(), App::REJECTED);

  auto indicators = [&](const std::string& token, const std::string& cluster, int year,
                        common::v1::ClusterIndicators* out) {
    common::v1::GetClusterIndicatorsRequest req;
    req.set_cluster(cluster);
    req.set_year(year);
    return Call(&Stub::GetClusterIndicators, token, req, out);
  };
  common::v1::ClusterIndicators set;
  grpc::Status s = indicators(auditor_, kDairy, kYear, &set);
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::map<std::string, common::v1::Indicator> v;
  for (const auto& i : set.indicators()) {
    v[i.key()] = i;
    EXPECT_EQ(i.source(), "support");
  }
  EXPECT_EQ(v["support.allocated.land"].value(), 20000);
  EXPECT_EQ(v["support.allocated.land"].unit(), "m2");
  EXPECT_EQ(v["support.allocated.energy"].value(), 1500);
  EXPECT_EQ(v["support.allocated.energy"].unit(), "kgce");
  EXPECT_EQ(v["support.allocated.water"].value(), 80);
  EXPECT_EQ(v["support.allocated.environment.so2"].value(), 30);
  EXPECT_EQ(v["support.allocated.environment.so2"].unit(), "kg");
  EXPECT_EQ(v["support.allocated.environment.nox"].value(), 0);
  EXPECT_EQ(v["support.allocated.green_power"].value(), 700);
  EXPECT_EQ(v["support.allocated.green_power"].unit(), "kwh");
  EXPECT_EQ(v["support.allocated.green_power"].dimension(), common::v1::DIMENSION_MANUFACTURING);
  EXPECT_EQ(v["support.allocated.subsidy"].value(), 500);
  EXPECT_EQ(v["support.allocated.subsidy"].unit(), "fen");
  EXPECT_EQ(v["support.allocated.subsidy"].dimension(), common::v1::DIMENSION_ECOSYSTEM);
  EXPECT_EQ(v["support.applications.allocated"].value(), 2);
  EXPECT_EQ(v["support.applications.core_chain_allocated"].value(), 1);
  EXPECT_EQ(v.size(), 5u + 6u + 2u);  // five kinds, six pollutants, two application counts

  // Another year, another cluster: nothing allocated.
  ASSERT_TRUE(indicators(industry_it_, kDairy, kYear + 1, &set).ok());
  for (const auto& i : set.indicators()) EXPECT_EQ(i.value(), 0) << i.key();
  ASSERT_TRUE(indicators(admin_, "clusters/baotou-rare-earth", kYear, &set).ok());
  for (const auto& i : set.indicators()) EXPECT_EQ(i.value(), 0) << i.key();

  // Refusals.
  s = indicators(auditor_, "clusters/X", 3000, &set);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("cluster", "year"));
  EXPECT_EQ(indicators(auditor_, "clusters/no-such-cluster", kYear, &set).error_code(), Code::NOT_FOUND);
  EXPECT_EQ(indicators(enterprise_a_, kDairy, kYear, &set).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(indicators(testing::MakeToken("p", "promotionOrgs/x", {"promotion_org"}), kDairy, kYear, &set)
                .error_code(),
            Code::PERMISSION_DENIED);

  // Through the client library the clusters service uses, with a service token.
  auto source =
      NewSupportIndicatorSource(server::MakeChannel(absl::StrCat("127.0.0.1:", srt_->port())), absl::Seconds(5));
  server::CallContext call;
  call.own_token = testing::MakeToken("svc", "services/clusters", {"service"});
  auto got = source->GetClusterIndicators(call, kDairy, kYear);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->indicators_size(), 13);
}

}  // namespace
}  // namespace clustergov::support

// The talent service end to end in-process: real clusters, enterprises and talent services, each
// with its own Runtime (gRPC server on a loopback port, SQLite file), one real redis-server shared
// by all three, and clients calling through the generated stubs. The talent service checks cluster
// membership through EnterpriseDirectory over real gRPC.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/talent/v1/talent.grpc.pb.h"
#include "common/refdata/uscc.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/cluster_repository.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_service.h"
#include "services/clusters/seed.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/enterprises/enterprise_repository.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/enterprises/enterprises_service.h"
#include "services/talent/client/indicator_source.h"
#include "services/talent/talent_domain.h"
#include "services/talent/talent_repository.h"
#include "services/talent/talent_service.h"
#include "tests/support/in_process.h"
#include "tests/support/postgres.h"
#include "tests/support/test_support.h"

namespace clustergov::talent {
namespace {

namespace ev1 = ::clustergov::enterprises::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using Code = grpc::StatusCode;
using EStub = ev1::EnterprisesService::Stub;
using Stub = v1::TalentService::Stub;
using Placement = v1::Placement;
using Demand = v1::Demand;

constexpr char kHohhot[] = "150100";
constexpr char kBaotou[] = "150200";
constexpr char kDairy[] = "clusters/hohhot-dairy";
constexpr char kRareEarth[] = "clusters/baotou-rare-earth";
constexpr char kPhone[] = "13900001111";
constexpr char kEmail[] = "person@example.cn";

using testing::FieldsOf;
using testing::Invoke;

using testing::Describe;

using testing::Uscc;

std::string EnterpriseName(const std::string& uscc) { return "enterprises/" + uscc; }
std::string TalentName(const std::string& id) { return "talents/" + id; }

std::string TokenFor(const std::string& uscc) {
  return testing::MakeToken("user-" + uscc, EnterpriseName(uscc), {"enterprise"});
}
std::string TalentToken(const std::string& id) {
  return testing::MakeToken("person-" + id, TalentName(id), {"talent"});
}

v1::Talent NewTalent(const std::string& display_name, const std::vector<std::string>& skills, v1::Level level,
                     const std::string& region = kHohhot, v1::InstitutionKind kind = v1::PRIVATE_ENTERPRISE) {
  v1::Talent t;
  t.set_display_name(display_name);
  t.set_field("food");
  for (const auto& s : skills) t.add_skills(s);
  t.add_tags("乳业");
  t.set_level(level);
  t.set_home_institution(kind == v1::UNIVERSITY ? "内蒙古农业大学" : "测试单位");
  t.set_institution_kind(kind);
  t.set_region(region);
  t.add_recognized_qualifications("高级工程师（北京市认定）");
  t.mutable_contact()->set_phone(kPhone);
  t.mutable_contact()->set_email(kEmail);
  return t;
}

void AddProgramme(v1::Talent* t, const std::string& code, int year) {
  auto* p = t->add_programmes();
  p->set_programme(code);
  p->set_year(year);
}

Demand DemandSpec(const std::vector<std::string>& skills, v1::Level level, int count, bool dual_ok = true,
                  const std::string& region = kHohhot, const std::string& cluster = kDairy) {
  Demand d;
  d.set_cluster(cluster);
  d.set_title("乳品工艺工程师");
  for (const auto& s : skills) d.add_skills(s);
  d.set_level(level);
  d.set_count(count);
  d.set_dual_appointment_ok(dual_ok);
  d.set_region(region);
  d.mutable_deadline()->set_year(2030);
  d.mutable_deadline()->set_month(6);
  d.mutable_deadline()->set_day(30);
  return d;
}

// Today in China Standard Time plus `days`, as a date.
google::type::Date DayFromToday(int days) {
  absl::CivilDay day = absl::ToCivilDay(absl::Now(), absl::FixedTimeZone(8 * 3600)) + days;
  google::type::Date d;
  d.set_year(static_cast<int32_t>(day.year()));
  d.set_month(day.month());
  d.set_day(day.day());
  return d;
}

// The score formula of docs/talent.md, written out independently of TalentDomain::Score.
int ExpectedScore(int wanted, int matched, int demand_level, int level, bool same_region) {
  int score = 60 * matched / wanted;
  score += level >= demand_level ? 25 : std::max(0, 25 - 10 * (demand_level - level));
  if (same_region) score += 15;
  return score;
}

template <typename Repeated>
std::vector<std::pair<std::string, int>> Pairs(const Repeated& counts) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& c : counts) out.emplace_back(c.key(), c.count());
  return out;
}

// A talent service in-process, wired as main() wires it: its match index loaded and following
// the store, membership checked with the enterprises service at `enterprises`.
struct TalentReplica {
  absl::Status Start(const server::CommonConfig& config, const std::string& enterprises) {
    auto rt = server::Runtime::Create(config);
    if (!rt.ok()) return rt.status();
    runtime = std::move(*rt);
    directory = std::make_unique<enterprises::EnterpriseDirectory>(*runtime, server::MakeChannel(enterprises),
                                                                   std::chrono::seconds(60));
    auto repo = CreateTalentRepository(&runtime->db());
    if (!repo.ok()) return repo.status();
    domain = std::make_unique<TalentDomain>(std::move(*repo), directory.get(), &runtime->page_tokens());
    if (absl::Status s = domain->LoadIndex(); !s.ok()) return s;
    service = std::make_unique<TalentServiceImpl>(domain.get(), &runtime->handler());
    if (absl::Status s = runtime->Start({service.get()}); !s.ok()) return s;
    stub = v1::TalentService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runtime->port()), grpc::InsecureChannelCredentials()));
    return absl::OkStatus();
  }
  void Stop() {
    if (runtime) runtime->Shutdown();
    stub.reset();
    service.reset();
    domain.reset();
    directory.reset();
    runtime.reset();
  }

  std::unique_ptr<server::Runtime> runtime;
  std::unique_ptr<enterprises::EnterpriseDirectory> directory;
  std::unique_ptr<TalentDomain> domain;
  std::unique_ptr<TalentServiceImpl> service;
  std::unique_ptr<Stub> stub;
};

class TalentTest : public ::testing::Test {
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

    // The clusters service, seeded.
    auto cstarted = clusters_.Start(Config("clusters", "clusters.db"), *seed);
    ASSERT_TRUE(cstarted.ok()) << cstarted;

    // The enterprises service, seeded, checking clusters over gRPC.
    auto estarted = enterprises_.Start(Config("enterprises", "enterprises.db"), clusters_.address(), &*seed);
    ASSERT_TRUE(estarted.ok()) << estarted.status();
    estub_ = ev1::EnterprisesService::NewStub(
        grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));

    // Enterprise A: registered and a member of clusters/hohhot-dairy. B: registered, no member.
    ASSERT_NO_FATAL_FAILURE(MemberOf(kA, "hohhot-dairy"));
    grpc::Status s = RegisterEnterprise(kB);
    ASSERT_TRUE(s.ok()) << Describe(s);

    // The talent service, checking membership with the enterprises service over gRPC.
    auto tstarted = talent_.Start(Config("talent", "talent.db"), enterprises_.address());
    ASSERT_TRUE(tstarted.ok()) << tstarted;
  }

  void TearDown() override {
    talent_.Stop();
    enterprises_.Stop();
    clusters_.Stop();
    estub_.reset();
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    return Invoke(talent_.stub.get(), method, token, req, resp);
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

  // The enterprise joins `cluster_id` itself, as a plain member.
  grpc::Status Join(const std::string& uscc, const std::string& cluster_id) {
    ev1::JoinClusterRequest req;
    req.set_parent(EnterpriseName(uscc));
    req.mutable_membership()->set_cluster("clusters/" + cluster_id);
    req.mutable_membership()->set_role(ev1::MEMBER);
    ev1::Membership out;
    return Invoke(estub_.get(), &EStub::JoinCluster, TokenFor(uscc), req, &out);
  }

  void MemberOf(const std::string& uscc, const std::string& cluster_id) {
    grpc::Status s = RegisterEnterprise(uscc);
    ASSERT_TRUE(s.ok()) << Describe(s);
    s = Join(uscc, cluster_id);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // ---------------------------------------------------------------- talents

  grpc::Status Register(const std::string& token, const std::string& id, const v1::Talent& t,
                        v1::Talent* out = nullptr) {
    v1::RegisterTalentRequest req;
    *req.mutable_talent() = t;
    req.set_talent_id(id);
    v1::Talent ignored;
    return Call(&Stub::RegisterTalent, token, req, out != nullptr ? out : &ignored);
  }

  // Registers through HR & Social Security; fails the test otherwise.
  void MustRegister(const std::string& id, const v1::Talent& t) {
    grpc::Status s = Register(hr_, id, t);
    ASSERT_TRUE(s.ok()) << id << ": " << Describe(s);
  }

  v1::Talent GetTalent(const std::string& token, const std::string& id, grpc::Status* status = nullptr) {
    v1::GetTalentRequest req;
    req.set_name(TalentName(id));
    v1::Talent out;
    grpc::Status s = Call(&Stub::GetTalent, token, req, &out);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << id << ": " << Describe(s);
    }
    return out;
  }

  // Every talent matching `filter`, through all pages.
  std::vector<v1::Talent> ListTalents(const std::string& token, const std::string& filter, int page_size = 100) {
    std::vector<v1::Talent> all;
    v1::ListTalentsRequest req;
    req.set_filter(filter);
    req.set_page_size(page_size);
    for (int guard = 0; guard < 100; ++guard) {
      v1::ListTalentsResponse resp;
      grpc::Status s = Call(&Stub::ListTalents, token, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
      if (!s.ok()) break;
      all.insert(all.end(), resp.talents().begin(), resp.talents().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  std::vector<std::string> TalentIds(const std::string& filter) {
    std::vector<std::string> out;
    for (const auto& t : ListTalents(hr_, filter)) out.push_back(t.name().substr(8));
    return out;
  }

  // Gives talent `id` these skills and region (UpdateTalent) and level (SetTalentLevel, by HR &
  // Social Security) through `stub`; `request_id` keys both calls.
  grpc::Status Reprofile(Stub* stub, const std::string& request_id, const std::string& id,
                         const std::vector<std::string>& skills, const std::string& region, v1::Level level) {
    v1::UpdateTalentRequest req;
    req.set_request_id(request_id);
    req.mutable_talent()->set_name(TalentName(id));
    for (const auto& skill : skills) req.mutable_talent()->add_skills(skill);
    req.mutable_talent()->set_region(region);
    for (const char* path : {"skills", "region"}) req.mutable_update_mask()->add_paths(path);
    v1::Talent out;
    grpc::Status s = Invoke(stub, &Stub::UpdateTalent, hr_, req, &out);
    if (!s.ok()) return s;
    v1::SetTalentLevelRequest grant;
    grant.set_request_id(absl::StrCat(request_id, "-level"));
    grant.set_name(TalentName(id));
    grant.set_level(level);
    grant.set_reason("评定");
    return Invoke(stub, &Stub::SetTalentLevel, hr_, grant, &out);
  }

  // ---------------------------------------------------------------- demands

  grpc::Status Post(const std::string& token, const Demand& d, Demand* out = nullptr) {
    v1::PostDemandRequest req;
    *req.mutable_demand() = d;
    Demand ignored;
    return Call(&Stub::PostDemand, token, req, out != nullptr ? out : &ignored);
  }

  // Posts as enterprise A; fails the test otherwise.
  Demand MustPost(const Demand& d, const std::string& token = "") {
    Demand out;
    grpc::Status s = Post(token.empty() ? enterprise_a_ : token, d, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  Demand GetDemand(const std::string& name) {
    v1::GetDemandRequest req;
    req.set_name(name);
    Demand out;
    grpc::Status s = Call(&Stub::GetDemand, energy_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  grpc::Status Close(const std::string& token, const std::string& name, Demand* out = nullptr) {
    v1::CloseDemandRequest req;
    req.set_name(name);
    req.set_reason("岗位取消");
    Demand ignored;
    return Call(&Stub::CloseDemand, token, req, out != nullptr ? out : &ignored);
  }

  std::vector<std::string> DemandNames(const std::string& filter) {
    v1::ListDemandsRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    v1::ListDemandsResponse resp;
    grpc::Status s = Call(&Stub::ListDemands, energy_, req, &resp);
    EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
    std::vector<std::string> out;
    for (const auto& d : resp.demands()) out.push_back(d.name());
    return out;
  }

  // ---------------------------------------------------------------- matching

  grpc::Status Match(const std::string& token, const std::string& demand, int page_size, const std::string& page_token,
                     v1::MatchTalentsResponse* out) {
    v1::MatchTalentsRequest req;
    req.set_demand(demand);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    return Call(&Stub::MatchTalents, token, req, out);
  }

  // The first page of 100 candidates; fails the test when the call does.
  v1::MatchTalentsResponse MustMatch(const std::string& token, const std::string& demand) {
    v1::MatchTalentsResponse out;
    grpc::Status s = Match(token, demand, 100, "", &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  // ---------------------------------------------------------------- placements

  grpc::Status Place(const std::string& token, const std::string& talent_id, const std::string& demand,
                     Placement::Type type, Placement* out = nullptr, bool consent = false,
                     const std::string& reference = "") {
    v1::CreatePlacementRequest req;
    auto* p = req.mutable_placement();
    p->set_talent(TalentName(talent_id));
    p->set_demand(demand);
    p->set_type(type);
    p->set_home_consent(consent);
    p->set_home_consent_reference(reference);
    Placement ignored;
    return Call(&Stub::CreatePlacement, token, req, out != nullptr ? out : &ignored);
  }

  // Places as enterprise A; fails the test otherwise.
  Placement MustPlace(const std::string& talent_id, const std::string& demand, Placement::Type type,
                      bool consent = false, const std::string& reference = "") {
    Placement out;
    grpc::Status s = Place(enterprise_a_, talent_id, demand, type, &out, consent, reference);
    EXPECT_TRUE(s.ok()) << talent_id << " on " << demand << ": " << Describe(s);
    return out;
  }

  grpc::Status End(const std::string& token, const std::string& name, const std::string& reason,
                   Placement* out = nullptr) {
    v1::EndPlacementRequest req;
    req.set_name(name);
    req.set_reason(reason);
    Placement ignored;
    return Call(&Stub::EndPlacement, token, req, out != nullptr ? out : &ignored);
  }

  std::vector<std::string> PlacementNames(const std::string& filter) {
    v1::ListPlacementsRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    v1::ListPlacementsResponse resp;
    grpc::Status s = Call(&Stub::ListPlacements, hr_, req, &resp);
    EXPECT_TRUE(s.ok()) << filter << ": " << Describe(s);
    std::vector<std::string> out;
    for (const auto& p : resp.placements()) out.push_back(p.name());
    return out;
  }

  v1::TalentStatistics Stats(const std::string& cluster) {
    v1::GetTalentStatisticsRequest req;
    req.set_cluster(cluster);
    v1::TalentStatistics out;
    grpc::Status s = Call(&Stub::GetTalentStatistics, industry_it_, req, &out);
    EXPECT_TRUE(s.ok()) << cluster << ": " << Describe(s);
    return out;
  }

  std::vector<common::v1::AuditEvent> Audit(const std::string& filter) {
    common::v1::ListAuditEventsRequest req;
    req.set_filter(filter);
    req.set_page_size(100);
    common::v1::ListAuditEventsResponse resp;
    grpc::Status s = Call(&Stub::ListAuditEvents, auditor_, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return {resp.events().begin(), resp.events().end()};
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;

  testing::ClustersServer clusters_;

  testing::EnterprisesServer enterprises_;
  std::unique_ptr<EStub> estub_;

  TalentReplica talent_;

  const std::string kA = Uscc(1);
  const std::string kB = Uscc(2);
  const std::string kC = Uscc(3);
  const std::string kUnregistered = Uscc(999);

  const std::string enterprise_a_ = TokenFor(kA);
  const std::string enterprise_b_ = TokenFor(kB);
  const std::string hr_ = testing::MakeToken("zhang.hr", "departments/hr_social_security", {"government"});
  const std::string education_ = testing::MakeToken("liu.edu", "departments/education", {"government"});
  const std::string industry_it_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
};

testing::RedisServer* TalentTest::redis_ = nullptr;

// ------------------------------------------------------------------ registration

TEST_F(TalentTest, RegisterStoresTheProfile) {
  v1::Talent in = NewTalent("王工", {"dairy_processing", "quality_control"}, v1::SENIOR_ENGINEER);
  AddProgramme(&in, "caoyuan_yingcai", 2023);
  AddProgramme(&in, "qiming", 2024);
  in.set_name("talents/ignored");  // output only
  v1::Talent created;
  // Registered by HR & Social Security, which grants the level and programmes with it.
  grpc::Status s = Register(hr_, "wang-gong", in, &created);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(created.name(), "talents/wang-gong");
  EXPECT_EQ(created.display_name(), "王工");
  EXPECT_THAT(created.skills(), ElementsAre("dairy_processing", "quality_control"));
  EXPECT_EQ(created.level(), v1::SENIOR_ENGINEER);
  EXPECT_EQ(created.institution_kind(), v1::PRIVATE_ENTERPRISE);
  ASSERT_EQ(created.programmes_size(), 2);
  EXPECT_EQ(created.programmes(0).programme(), "caoyuan_yingcai");
  EXPECT_EQ(created.programmes(1).year(), 2024);
  EXPECT_THAT(created.recognized_qualifications(), ElementsAre("高级工程师（北京市认定）"));
  EXPECT_EQ(created.contact().email(), kEmail);
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  v1::Talent got = GetTalent(TalentToken("wang-gong"), "wang-gong");
  EXPECT_TRUE(MessageDifferencer::Equals(got, created)) << got.DebugString();

  // Twice: ALREADY_EXISTS, and the record is unchanged.
  v1::Talent other = NewTalent("另一个", {"biopharma"}, v1::ENGINEER);
  EXPECT_EQ(Register(hr_, "wang-gong", other).error_code(), Code::ALREADY_EXISTS);
  EXPECT_EQ(GetTalent(hr_, "wang-gong").display_name(), "王工");
  EXPECT_EQ(GetTalent(hr_, "wang-gong").etag(), created.etag());

  // Unknown and malformed names.
  grpc::Status gs;
  GetTalent(hr_, "nobody", &gs);
  EXPECT_EQ(gs.error_code(), Code::NOT_FOUND);
  GetTalent(hr_, "Bad_Id", &gs);
  EXPECT_THAT(FieldsOf(gs), ElementsAre("name"));

  // The vocabularies are reference data.
  v1::TalentReferenceData ref;
  s = Call(&Stub::GetReferenceData, enterprise_b_, v1::GetTalentReferenceDataRequest(), &ref);
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::vector<std::string> fields, skills, programmes;
  for (const auto& t : ref.fields()) fields.push_back(t.code());
  for (const auto& t : ref.skills()) skills.push_back(t.code());
  for (const auto& t : ref.programmes()) programmes.push_back(t.code());
  EXPECT_THAT(fields, ::testing::Contains("food"));
  EXPECT_THAT(skills, ::testing::Contains("dairy_processing"));
  EXPECT_EQ(skills.size(), 20u);
  EXPECT_THAT(programmes, UnorderedElementsAre("qiming", "manufacturing_talent_support", "onsite_engineer",
                                               "excellent_engineer", "caoyuan_yingcai"));
}

TEST_F(TalentTest, RegisterNamesEachInvalidField) {
  const v1::Talent valid = NewTalent("李工", {"automation", "data_analysis"}, v1::ENGINEER);
  struct Case {
    std::string id;
    std::function<void(v1::Talent&)> mutate;
    std::vector<std::string> fields;
  };
  const std::vector<Case> cases = {
      {"Bad_Id", [](v1::Talent&) {}, {"talent_id"}},
      {"x", [](v1::Talent&) {}, {"talent_id"}},
      {"ok-id", [](v1::Talent& t) { t.set_display_name("  "); }, {"talent.display_name"}},
      {"ok-id", [](v1::Talent& t) { t.set_field("astrology"); }, {"talent.field"}},
      {"ok-id", [](v1::Talent& t) { t.set_field(""); }, {"talent.field"}},
      {"ok-id", [](v1::Talent& t) { t.clear_skills(); }, {"talent.skills"}},
      {"ok-id", [](v1::Talent& t) { t.add_skills("juggling"); }, {"talent.skills[2]"}},
      {"ok-id", [](v1::Talent& t) { t.add_skills("automation"); }, {"talent.skills[2]"}},
      {"ok-id", [](v1::Talent& t) { t.set_level(static_cast<v1::Level>(9)); }, {"talent.level"}},
      {"ok-id", [](v1::Talent& t) { t.set_home_institution(""); }, {"talent.home_institution"}},
      {"ok-id", [](v1::Talent& t) { t.set_institution_kind(v1::INSTITUTION_KIND_UNSPECIFIED); },
       {"talent.institution_kind"}},
      {"ok-id", [](v1::Talent& t) { t.set_region("110000"); }, {"talent.region"}},
      {"ok-id", [](v1::Talent& t) { t.set_region(""); }, {"talent.region"}},
      {"ok-id", [](v1::Talent& t) { AddProgramme(&t, "no_such_programme", 2024); },
       {"talent.programmes[0].programme"}},
      {"ok-id", [](v1::Talent& t) { AddProgramme(&t, "qiming", 1999); }, {"talent.programmes[0].year"}},
      {"ok-id", [](v1::Talent& t) { t.mutable_contact()->set_email("not-an-address"); }, {"talent.contact.email"}},
      {"ok-id", [](v1::Talent& t) { t.mutable_contact()->set_phone(std::string(41, '1')); },
       {"talent.contact.phone"}},
      {"ok-id", [](v1::Talent& t) { t.add_tags(""); }, {"talent.tags[1]"}},
      {"ok-id", [](v1::Talent& t) { t.add_recognized_qualifications(" "); }, {"talent.recognized_qualifications[1]"}},
      {"ok-id",
       [](v1::Talent& t) {
         t.set_field("x");
         t.set_region("x");
       },
       {"talent.field", "talent.region"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    v1::Talent t = valid;
    cases[i].mutate(t);
    grpc::Status s = Register(hr_, cases[i].id, t);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << i;
    EXPECT_THAT(FieldsOf(s), ElementsAreArray(cases[i].fields)) << i << ": " << s.error_message();
  }
  // Nothing was written; the valid input is then accepted, also without contact data.
  EXPECT_THAT(TalentIds(""), IsEmpty());
  v1::Talent no_contact = valid;
  no_contact.clear_contact();
  grpc::Status s = Register(hr_, "ok-id", no_contact);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(TalentIds(""), ElementsAre("ok-id"));
}

TEST_F(TalentTest, WhoMayRegisterATalent) {
  // The talent itself, and HR & Social Security, Education, Industry & IT (only HR & Social
  // Security with a level: it grants levels).
  const v1::Talent t = NewTalent("赵工", {"automation"}, v1::LEVEL_UNSPECIFIED);
  EXPECT_TRUE(Register(TalentToken("self-reg"), "self-reg", t).ok());
  EXPECT_TRUE(Register(hr_, "by-hr", NewTalent("赵工", {"automation"}, v1::ENGINEER)).ok());
  EXPECT_TRUE(Register(education_, "by-education", t).ok());
  EXPECT_TRUE(Register(industry_it_, "by-industry", t).ok());
  // Not another talent for someone else, nor another department, an enterprise or an auditor.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"another talent", TalentToken("self-reg")},
      {"energy", energy_},
      {"enterprise", enterprise_a_},
      {"auditor", auditor_},
      {"talent role, other organization", testing::MakeToken("p", "enterprises/" + kA, {"talent"})},
      {"hr organization without government role", testing::MakeToken("p", "departments/hr_social_security",
                                                                      {"enterprise"})},
  };
  for (const auto& [who, token] : refused) {
    grpc::Status s = Register(token, "someone-else", t);
    EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << who << ": " << Describe(s);
  }
  EXPECT_THAT(TalentIds(""), UnorderedElementsAre("self-reg", "by-hr", "by-education", "by-industry"));

  // The audit trail records who registered.
  auto events = Audit("method = \"/clustergov.talent.v1.TalentService/RegisterTalent\" AND resource = \"talents/by-education\"");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor().organization(), "departments/education");
}

TEST_F(TalentTest, UpdateTalentByItselfOrTheDepartments) {
  v1::Talent created;
  ASSERT_TRUE(Register(hr_, "upd", NewTalent("周工", {"automation"}, v1::ENGINEER), &created).ok());

  v1::UpdateTalentRequest req;
  req.mutable_talent()->set_name("talents/upd");
  req.mutable_talent()->set_home_institution("包头钢铁集团");
  req.mutable_talent()->add_skills("industrial_software");
  req.mutable_talent()->set_etag(created.etag());
  req.mutable_update_mask()->add_paths("home_institution");
  req.mutable_update_mask()->add_paths("skills");
  v1::Talent out;
  grpc::Status s = Call(&Stub::UpdateTalent, TalentToken("upd"), req, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.home_institution(), "包头钢铁集团");
  EXPECT_EQ(out.level(), v1::ENGINEER);
  EXPECT_THAT(out.skills(), ElementsAre("industrial_software"));
  EXPECT_EQ(out.display_name(), "周工");  // not in the mask
  EXPECT_NE(out.etag(), created.etag());
  // The skill index follows: the old skill no longer finds the talent.
  EXPECT_THAT(TalentIds("skills: automation"), IsEmpty());
  EXPECT_THAT(TalentIds("skills: industrial_software"), ElementsAre("upd"));

  // A stale etag: ABORTED. Another talent, energy, an enterprise: PERMISSION_DENIED.
  EXPECT_EQ(Call(&Stub::UpdateTalent, TalentToken("upd"), req, &out).error_code(), Code::ABORTED);
  req.mutable_talent()->clear_etag();
  for (const auto& token : {TalentToken("other"), energy_, enterprise_a_}) {
    EXPECT_EQ(Call(&Stub::UpdateTalent, token, req, &out).error_code(), Code::PERMISSION_DENIED);
  }
  EXPECT_TRUE(Call(&Stub::UpdateTalent, education_, req, &out).ok());
  // Unknown mask paths and invalid values are refused.
  req.mutable_update_mask()->add_paths("name");
  EXPECT_THAT(FieldsOf(Call(&Stub::UpdateTalent, hr_, req, &out)), ElementsAre("update_mask"));
  req.mutable_update_mask()->clear_paths();
  req.mutable_update_mask()->add_paths("region");
  req.mutable_talent()->set_region("999999");
  EXPECT_THAT(FieldsOf(Call(&Stub::UpdateTalent, hr_, req, &out)), ElementsAre("talent.region"));
  EXPECT_EQ(GetTalent(hr_, "upd").region(), kHohhot);
}

TEST_F(TalentTest, ATalentCannotDeclareItsOwnLevelOrProgrammes) {
  // Level and programme memberships are granted by HR & Social Security, not self-declared.
  v1::Talent declared = NewTalent("自评", {"automation"}, v1::LEADING);
  AddProgramme(&declared, "caoyuan_yingcai", 2024);
  grpc::Status s = Register(TalentToken("self"), "self", declared);
  EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  v1::Talent only_level = NewTalent("自评", {"automation"}, v1::LEADING);
  EXPECT_EQ(Register(education_, "self", only_level).error_code(), Code::PERMISSION_DENIED);

  // Registered without them: no level yet, no programmes.
  v1::Talent plain = NewTalent("自评", {"automation"}, v1::LEVEL_UNSPECIFIED);
  v1::Talent created;
  s = Register(TalentToken("self"), "self", plain, &created);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(created.level(), v1::LEVEL_UNSPECIFIED);
  EXPECT_EQ(created.programmes_size(), 0);

  // Nobody changes them through UpdateTalent, the talent least of all.
  v1::UpdateTalentRequest req;
  req.mutable_talent()->set_name("talents/self");
  req.mutable_talent()->set_level(v1::LEADING);
  AddProgramme(req.mutable_talent(), "caoyuan_yingcai", 2024);
  for (const char* path : {"level", "programmes"}) {
    req.mutable_update_mask()->clear_paths();
    req.mutable_update_mask()->add_paths(path);
    v1::Talent out;
    for (const std::string& token : {TalentToken("self"), education_, hr_}) {
      s = Call(&Stub::UpdateTalent, token, req, &out);
      EXPECT_THAT(FieldsOf(s), ElementsAre("update_mask")) << path << ": " << Describe(s);
    }
  }
  // A whole-record update leaves them alone.
  req.mutable_update_mask()->clear_paths();
  *req.mutable_talent() = NewTalent("自评二", {"automation"}, v1::LEADING);
  req.mutable_talent()->set_name("talents/self");
  AddProgramme(req.mutable_talent(), "qiming", 2024);
  v1::Talent out;
  s = Call(&Stub::UpdateTalent, TalentToken("self"), req, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.display_name(), "自评二");
  v1::Talent stored = GetTalent(hr_, "self");
  EXPECT_EQ(stored.level(), v1::LEVEL_UNSPECIFIED);
  EXPECT_EQ(stored.programmes_size(), 0);
  EXPECT_THAT(TalentIds("programmes: caoyuan_yingcai"), IsEmpty());
}

TEST_F(TalentTest, HrAndSocialSecurityGrantsLevelsAndProgrammes) {
  MustRegister("granted", NewTalent("授予", {"automation"}, v1::LEVEL_UNSPECIFIED));
  Demand demand = MustPost(DemandSpec({"automation"}, v1::SENIOR_ENGINEER, 1));
  v1::MatchTalentsResponse before = MustMatch(enterprise_a_, demand.name());
  ASSERT_EQ(before.candidates_size(), 1);
  EXPECT_THAT(before.candidates(0).reasons(), ::testing::Contains(HasSubstr("no level granted yet")));

  v1::SetTalentLevelRequest level;
  level.set_name("talents/granted");
  level.set_level(v1::SENIOR_ENGINEER);
  level.set_reason("职称评审通过");
  v1::Talent out;
  // Nobody else: the talent, Education, Industry & IT, an admin, an enterprise.
  for (const std::string& token : {TalentToken("granted"), education_, industry_it_, enterprise_a_,
                                   testing::MakeToken("root", "agencies/ops", {"admin"})}) {
    EXPECT_EQ(Call(&Stub::SetTalentLevel, token, level, &out).error_code(), Code::PERMISSION_DENIED);
  }
  level.set_reason("");
  EXPECT_THAT(FieldsOf(Call(&Stub::SetTalentLevel, hr_, level, &out)), ElementsAre("reason"));
  level.set_reason("职称评审通过");
  level.set_etag("v999");
  EXPECT_EQ(Call(&Stub::SetTalentLevel, hr_, level, &out).error_code(), Code::ABORTED);
  EXPECT_EQ(GetTalent(hr_, "granted").level(), v1::LEVEL_UNSPECIFIED);
  level.clear_etag();
  grpc::Status s = Call(&Stub::SetTalentLevel, hr_, level, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.level(), v1::SENIOR_ENGINEER);
  // Matching follows at once (the index is kept current by the grant).
  v1::MatchTalentsResponse after = MustMatch(enterprise_a_, demand.name());
  ASSERT_EQ(after.candidates_size(), 1);
  EXPECT_EQ(after.candidates(0).score(), ExpectedScore(1, 1, v1::SENIOR_ENGINEER, v1::SENIOR_ENGINEER, true));

  // Programmes: granted once each, revoked by name.
  v1::GrantProgrammeRequest grant;
  grant.set_name("talents/granted");
  grant.mutable_membership()->set_programme("caoyuan_yingcai");
  grant.mutable_membership()->set_year(2025);
  grant.set_reason("入选草原英才");
  EXPECT_EQ(Call(&Stub::GrantProgramme, TalentToken("granted"), grant, &out).error_code(), Code::PERMISSION_DENIED);
  s = Call(&Stub::GrantProgramme, hr_, grant, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(out.programmes_size(), 1);
  EXPECT_EQ(out.programmes(0).programme(), "caoyuan_yingcai");
  EXPECT_EQ(Call(&Stub::GrantProgramme, hr_, grant, &out).error_code(), Code::ALREADY_EXISTS);
  grant.mutable_membership()->set_programme("no_such_programme");
  EXPECT_THAT(FieldsOf(Call(&Stub::GrantProgramme, hr_, grant, &out)), ElementsAre("membership.programme"));
  EXPECT_THAT(TalentIds("programmes: caoyuan_yingcai"), ElementsAre("granted"));

  v1::RevokeProgrammeRequest revoke;
  revoke.set_name("talents/granted");
  revoke.set_programme("qiming");
  revoke.set_reason("撤销");
  EXPECT_EQ(Call(&Stub::RevokeProgramme, hr_, revoke, &out).error_code(), Code::NOT_FOUND);
  revoke.set_programme("caoyuan_yingcai");
  EXPECT_EQ(Call(&Stub::RevokeProgramme, education_, revoke, &out).error_code(), Code::PERMISSION_DENIED);
  s = Call(&Stub::RevokeProgramme, hr_, revoke, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.programmes_size(), 0);
  EXPECT_THAT(TalentIds("programmes: caoyuan_yingcai"), IsEmpty());

  // Each grant is audited with its reason.
  auto events = Audit("method = \"/clustergov.talent.v1.TalentService/SetTalentLevel\" AND resource = \"talents/granted\"");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor().organization(), "departments/hr_social_security");
  EXPECT_EQ(events[0].reason(), "职称评审通过");
}

TEST_F(TalentTest, ListTalentsFilters) {
  v1::Talent a = NewTalent("甲", {"dairy_processing", "automation"}, v1::LEADING, kHohhot, v1::UNIVERSITY);
  AddProgramme(&a, "qiming", 2024);
  v1::Talent b = NewTalent("乙", {"automation"}, v1::ENGINEER, kBaotou, v1::PRIVATE_ENTERPRISE);
  b.set_field("mechanical");
  v1::Talent c = NewTalent("丙", {"rare_earth_materials"}, v1::ENGINEER, kBaotou, v1::RESEARCH_INSTITUTE);
  AddProgramme(&c, "qiming", 2023);
  AddProgramme(&c, "caoyuan_yingcai", 2024);
  ASSERT_NO_FATAL_FAILURE(MustRegister("t-c", c));
  ASSERT_NO_FATAL_FAILURE(MustRegister("t-a", a));
  ASSERT_NO_FATAL_FAILURE(MustRegister("t-b", b));

  EXPECT_THAT(TalentIds(""), ElementsAre("t-a", "t-b", "t-c"));  // by id
  EXPECT_THAT(TalentIds("level = LEADING"), ElementsAre("t-a"));
  EXPECT_THAT(TalentIds("level = ENGINEER"), ElementsAre("t-b", "t-c"));
  EXPECT_THAT(TalentIds("field = \"mechanical\""), ElementsAre("t-b"));
  EXPECT_THAT(TalentIds("region = \"150200\""), ElementsAre("t-b", "t-c"));
  EXPECT_THAT(TalentIds("institution_kind = UNIVERSITY"), ElementsAre("t-a"));
  EXPECT_THAT(TalentIds("skills: automation"), ElementsAre("t-a", "t-b"));
  EXPECT_THAT(TalentIds("programmes: qiming"), ElementsAre("t-a", "t-c"));
  EXPECT_THAT(TalentIds("programmes: caoyuan_yingcai AND region = \"150200\""), ElementsAre("t-c"));
  EXPECT_THAT(TalentIds("skills != automation"), ElementsAre("t-c"));

  // Pages of one, and a tampered token.
  v1::ListTalentsRequest req;
  req.set_page_size(1);
  v1::ListTalentsResponse resp;
  ASSERT_TRUE(Call(&Stub::ListTalents, hr_, req, &resp).ok());
  ASSERT_EQ(resp.talents_size(), 1);
  ASSERT_FALSE(resp.next_page_token().empty());
  std::string token = resp.next_page_token();
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  req.set_page_token(token);
  EXPECT_EQ(Call(&Stub::ListTalents, hr_, req, &resp).error_code(), Code::INVALID_ARGUMENT);
  req.clear_page_token();
  req.set_filter("level = NOT_A_LEVEL");
  EXPECT_THAT(FieldsOf(Call(&Stub::ListTalents, hr_, req, &resp)), ElementsAre("filter"));
  req.set_filter("");
  req.set_page_size(-1);
  EXPECT_THAT(FieldsOf(Call(&Stub::ListTalents, hr_, req, &resp)), ElementsAre("page_size"));
}

// ------------------------------------------------------------------ personal data

TEST_F(TalentTest, ContactIsShownOnlyToPermittedCallers) {
  ASSERT_NO_FATAL_FAILURE(MustRegister("c-wang", NewTalent("王工", {"dairy_processing"}, v1::SENIOR_ENGINEER)));
  ASSERT_NO_FATAL_FAILURE(MustRegister("c-li", NewTalent("李工", {"dairy_processing"}, v1::ENGINEER, kBaotou)));
  const Demand demand = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 3));
  ASSERT_FALSE(demand.name().empty());
  const std::string promo =
      testing::MakeToken("dairy.assoc", "promotionOrgs/dairy-association", {"promotion_org"});

  struct Who {
    std::string name;
    std::string token;
    bool sees;      // c-wang's contact
    bool sees_li;   // c-li's contact (c-li is never placed)
    bool may_match;
  };
  // `employer_sees`: whether enterprise A currently employs c-wang.
  auto check = [&](const std::string& phase, bool employer_sees) {
    const std::vector<Who> callers = {
        {"the talent", TalentToken("c-wang"), true, false, false},
        {"hr_social_security", hr_, true, true, true},
        {"education", education_, true, true, true},
        {"industry_it", industry_it_, true, true, true},
        {"enterprise A", enterprise_a_, employer_sees, false, true},
        {"enterprise B", enterprise_b_, false, false, false},
        {"energy", energy_, false, false, true},
        {"auditor", auditor_, false, false, false},
        {"another talent (c-li)", TalentToken("c-li"), false, true, false},
        {"promotion org", promo, false, false, true},
    };
    for (const auto& who : callers) {
      SCOPED_TRACE(phase + ", " + who.name);
      // Get.
      v1::Talent got = GetTalent(who.token, "c-wang");
      EXPECT_EQ(got.display_name(), "王工");
      EXPECT_EQ(got.level(), v1::SENIOR_ENGINEER);
      if (who.sees) {
        EXPECT_EQ(got.contact().phone(), kPhone);
        EXPECT_EQ(got.contact().email(), kEmail);
      } else {
        EXPECT_FALSE(got.has_contact()) << got.contact().DebugString();
      }
      // List: c-wang as for Get; c-li (never placed) only for its own readers.
      auto listed = ListTalents(who.token, "");
      ASSERT_EQ(listed.size(), 2u);
      EXPECT_EQ(listed[1].name(), "talents/c-wang");
      EXPECT_EQ(listed[1].has_contact(), who.sees);
      if (who.sees) EXPECT_EQ(listed[1].contact().phone(), kPhone);
      EXPECT_EQ(listed[0].name(), "talents/c-li");
      EXPECT_EQ(listed[0].has_contact(), who.sees_li);
      // Match.
      v1::MatchTalentsResponse m;
      grpc::Status s = Match(who.token, demand.name(), 10, "", &m);
      if (!who.may_match) {
        EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
        continue;
      }
      ASSERT_TRUE(s.ok()) << Describe(s);
      ASSERT_EQ(m.candidates_size(), 2);
      EXPECT_EQ(m.candidates(0).talent().name(), "talents/c-wang");
      EXPECT_EQ(m.candidates(0).talent().has_contact(), who.sees);
      if (who.sees) EXPECT_EQ(m.candidates(0).talent().contact().email(), kEmail);
      EXPECT_EQ(m.candidates(1).talent().name(), "talents/c-li");
      EXPECT_EQ(m.candidates(1).talent().has_contact(), who.sees_li);
    }
  };

  ASSERT_NO_FATAL_FAILURE(check("before placement", false));
  Placement placed = MustPlace("c-wang", demand.name(), Placement::FULL_TIME);
  ASSERT_EQ(placed.state(), Placement::ACTIVE);
  ASSERT_NO_FATAL_FAILURE(check("during placement", true));
  // Ending A's placement hides the contact from A again.
  grpc::Status s = End(enterprise_a_, placed.name(), "合同到期");
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_NO_FATAL_FAILURE(check("after EndPlacement", false));
}

// ------------------------------------------------------------------ demands

TEST_F(TalentTest, DemandLifecycle) {
  // A member enterprise posts: OPEN, for itself, nothing filled.
  Demand in = DemandSpec({"dairy_processing", "quality_control"}, v1::SENIOR_ENGINEER, 2, false);
  in.set_state(Demand::CLOSED);  // output only
  in.set_filled(7);              // output only
  in.set_name("demands/99");     // output only
  Demand posted;
  grpc::Status s = Post(enterprise_a_, in, &posted);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(posted.name(), "demands/1");
  EXPECT_EQ(posted.enterprise(), EnterpriseName(kA));
  EXPECT_EQ(posted.cluster(), kDairy);
  EXPECT_EQ(posted.state(), Demand::OPEN);
  EXPECT_EQ(posted.filled(), 0);
  EXPECT_EQ(posted.count(), 2);
  EXPECT_FALSE(posted.dual_appointment_ok());
  EXPECT_THAT(posted.skills(), ElementsAre("dairy_processing", "quality_control"));
  EXPECT_TRUE(MessageDifferencer::Equals(GetDemand(posted.name()), posted));
  // The enterprise field may be given, but only as itself.
  Demand own = DemandSpec({"automation"}, v1::ENGINEER, 1);
  own.set_enterprise(EnterpriseName(kA));
  EXPECT_TRUE(Post(enterprise_a_, own).ok());
  own.set_enterprise(EnterpriseName(kB));
  EXPECT_EQ(Post(enterprise_a_, own).error_code(), Code::PERMISSION_DENIED);

  // Not a member of the cluster: FAILED_PRECONDITION from the membership check.
  s = Post(enterprise_b_, DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("is not a member of clusters/hohhot-dairy"));
  // A member of another cluster only.
  ASSERT_TRUE(Join(kB, "baotou-rare-earth").ok());
  s = Post(enterprise_b_, DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_TRUE(Post(enterprise_b_, DemandSpec({"automation"}, v1::ENGINEER, 1, true, kBaotou, kRareEarth)).ok());
  // Unregistered, and an unknown cluster.
  s = Post(TokenFor(kUnregistered), DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("is not registered"));
  s = Post(enterprise_a_, DemandSpec({"automation"}, v1::ENGINEER, 1, true, kHohhot, "clusters/no-such-cluster"));
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);

  // Government, talents, auditors do not post; an enterprise token with a malformed code neither.
  for (const auto& token : {hr_, industry_it_, energy_, TalentToken("c-wang"), auditor_}) {
    EXPECT_EQ(Post(token, DemandSpec({"automation"}, v1::ENGINEER, 1)).error_code(), Code::PERMISSION_DENIED);
  }
  s = Post(testing::MakeToken("x", "enterprises/123", {"enterprise"}), DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);

  // Validation names each field.
  struct Case {
    std::function<void(Demand&)> mutate;
    std::vector<std::string> fields;
  };
  const std::vector<Case> cases = {
      {[](Demand& d) { d.set_cluster("hohhot-dairy"); }, {"demand.cluster"}},
      {[](Demand& d) { d.set_cluster("clusters/Bad_Id"); }, {"demand.cluster"}},
      {[](Demand& d) { d.set_title(""); }, {"demand.title"}},
      {[](Demand& d) { d.clear_skills(); }, {"demand.skills"}},
      {[](Demand& d) { d.add_skills("juggling"); }, {"demand.skills[1]"}},
      {[](Demand& d) { d.add_skills("automation"); }, {"demand.skills[1]"}},
      {[](Demand& d) { d.set_level(v1::LEVEL_UNSPECIFIED); }, {"demand.level"}},
      {[](Demand& d) { d.set_count(0); }, {"demand.count"}},
      {[](Demand& d) { d.set_count(10001); }, {"demand.count"}},
      {[](Demand& d) { d.set_region("150000"); }, {"demand.region"}},
      {[](Demand& d) { d.clear_deadline(); }, {"demand.deadline"}},
      {[](Demand& d) { d.mutable_deadline()->set_month(13); }, {"demand.deadline"}},
      {[](Demand& d) {
         d.set_count(-1);
         d.set_region("");
       },
       {"demand.count", "demand.region"}},
  };
  const size_t before = DemandNames("").size();
  for (size_t i = 0; i < cases.size(); ++i) {
    Demand d = DemandSpec({"automation"}, v1::ENGINEER, 1);
    cases[i].mutate(d);
    s = Post(enterprise_a_, d);
    EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << i;
    EXPECT_THAT(FieldsOf(s), ElementsAreArray(cases[i].fields)) << i << ": " << s.error_message();
  }
  EXPECT_EQ(DemandNames("").size(), before);

  // Close: only the posting enterprise; then CLOSED, once.
  EXPECT_EQ(Close(enterprise_b_, posted.name()).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Close(hr_, posted.name()).error_code(), Code::PERMISSION_DENIED);
  Demand closed;
  s = Close(enterprise_a_, posted.name(), &closed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(closed.state(), Demand::CLOSED);
  EXPECT_NE(closed.etag(), posted.etag());
  EXPECT_EQ(Close(enterprise_a_, posted.name()).error_code(), Code::FAILED_PRECONDITION);
  EXPECT_EQ(Close(enterprise_a_, "demands/404").error_code(), Code::NOT_FOUND);
  EXPECT_THAT(FieldsOf(Close(enterprise_a_, "demands/01")), ElementsAre("name"));
  // A closed demand takes no placement.
  ASSERT_NO_FATAL_FAILURE(MustRegister("late", NewTalent("晚到", {"dairy_processing"}, v1::LEADING)));
  s = Place(enterprise_a_, "late", posted.name(), Placement::FULL_TIME);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("CLOSED"));

  // List filters.
  EXPECT_THAT(DemandNames(""), ElementsAre("demands/1", "demands/2", "demands/3"));
  EXPECT_THAT(DemandNames("state = OPEN"), ElementsAre("demands/2", "demands/3"));
  EXPECT_THAT(DemandNames("state = CLOSED"), ElementsAre("demands/1"));
  EXPECT_THAT(DemandNames("cluster = \"clusters/baotou-rare-earth\""), ElementsAre("demands/3"));
  EXPECT_THAT(DemandNames(absl::StrCat("enterprise = \"", EnterpriseName(kA), "\"")),
              ElementsAre("demands/1", "demands/2"));
  EXPECT_THAT(DemandNames("level = SENIOR_ENGINEER"), ElementsAre("demands/1"));
  EXPECT_THAT(DemandNames("level = ENGINEER AND state = OPEN"), ElementsAre("demands/2", "demands/3"));
  v1::ListDemandsRequest lreq;
  lreq.set_filter("state = BOGUS");
  v1::ListDemandsResponse lresp;
  EXPECT_THAT(FieldsOf(Call(&Stub::ListDemands, hr_, lreq, &lresp)), ElementsAre("filter"));
}

TEST_F(TalentTest, ADemandsDeadlineIsACalendarDayNotPast) {
  Demand d = DemandSpec({"automation"}, v1::ENGINEER, 1);
  *d.mutable_deadline() = DayFromToday(-1);
  grpc::Status s = Post(enterprise_a_, d);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(FieldsOf(s), ElementsAre("demand.deadline"));
  d.mutable_deadline()->set_year(2030);
  d.mutable_deadline()->set_month(2);
  d.mutable_deadline()->set_day(30);
  EXPECT_THAT(FieldsOf(Post(enterprise_a_, d)), ElementsAre("demand.deadline"));
  d.mutable_deadline()->set_month(4);
  d.mutable_deadline()->set_day(31);
  EXPECT_THAT(FieldsOf(Post(enterprise_a_, d)), ElementsAre("demand.deadline"));
  EXPECT_THAT(DemandNames(""), IsEmpty());
  // Today is still open.
  *d.mutable_deadline() = DayFromToday(0);
  s = Post(enterprise_a_, d);
  EXPECT_TRUE(s.ok()) << Describe(s);
}

TEST_F(TalentTest, ADemandPastItsDeadlineIsNotMatched) {
  MustRegister("t-auto", NewTalent("自动化工程师", {"automation"}, v1::ENGINEER));
  Demand open = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(MustMatch(enterprise_a_, open.name()).total_candidates(), 1);

  // A demand posted while its deadline was ahead, now past it (written to the store as posted).
  auto repo = CreateTalentRepository(&talent_.runtime->db());
  ASSERT_TRUE(repo.ok()) << repo.status();
  Principal poster{"user-a", EnterpriseName(kA), {"enterprise"}};
  store::WriteContext w{&poster, "PostDemand", "", "", "", nullptr};
  Demand past = DemandSpec({"automation"}, v1::ENGINEER, 1);
  *past.mutable_deadline() = DayFromToday(-1);
  past.set_enterprise(EnterpriseName(kA));
  past.set_state(Demand::OPEN);
  auto written = (*repo)->Write<Demand>(w, [&](TalentTx& tx) -> absl::StatusOr<Demand> {
    Demand d = past;
    absl::Status put = tx.PutDemand(d);
    if (!put.ok()) return put;
    return d;
  });
  ASSERT_TRUE(written.ok()) << written.status();

  v1::MatchTalentsResponse out;
  grpc::Status s = Match(enterprise_a_, written->name(), 10, "", &out);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("deadline"));
  EXPECT_EQ(out.candidates_size(), 0);
}

TEST_F(TalentTest, PostDemandWhenTheEnterprisesServiceIsDown) {
  // C joins the cluster but its membership is never asked by the talent service.
  ASSERT_NO_FATAL_FAILURE(MemberOf(kC, "hohhot-dairy"));
  // The enterprises' changes so far are behind the directory (they would drop A's answer).
  absl::Status caught_up = testing::WaitForConsumerGroup(enterprises_.runtime(), "talent.directory");
  ASSERT_TRUE(caught_up.ok()) << caught_up;
  ASSERT_FALSE(MustPost(DemandSpec({"automation"}, v1::ENGINEER, 1)).name().empty());

  enterprises_.runtime().Shutdown();

  // A's membership was checked before (cached): A still posts.
  Demand d;
  grpc::Status s = Post(enterprise_a_, DemandSpec({"automation"}, v1::ENGINEER, 1), &d);
  EXPECT_TRUE(s.ok()) << Describe(s);
  // C's never was: UNAVAILABLE, never a guess either way, not cached, and nothing is written.
  for (int i = 0; i < 2; ++i) {
    s = Post(TokenFor(kC), DemandSpec({"automation"}, v1::ENGINEER, 1));
    EXPECT_EQ(s.error_code(), Code::UNAVAILABLE) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("enterprises service"));
  }
  // B (not a member) gets UNAVAILABLE too: a negative answer was never cached.
  s = Post(enterprise_b_, DemandSpec({"automation"}, v1::ENGINEER, 1));
  EXPECT_EQ(s.error_code(), Code::UNAVAILABLE) << Describe(s);
  EXPECT_THAT(DemandNames(absl::StrCat("enterprise = \"", EnterpriseName(kC), "\"")), IsEmpty());
  EXPECT_EQ(DemandNames("").size(), 2u);
}

// ------------------------------------------------------------------ matching

TEST_F(TalentTest, MatchingOrderScoresAndReasons) {
  struct Spec {
    std::string id;
    std::vector<std::string> skills;
    v1::Level level;
    std::string region;
  };
  // Registered out of order, so the ranking cannot come from insertion or id order.
  const std::vector<Spec> specs = {
      {"m-zeta", {"quality_control"}, v1::HIGH_LEVEL, kHohhot},                           // 20+25+15 = 60
      {"m-far", {"automation", "biopharma"}, v1::SKILLED_WORKER, kBaotou},                // 20+5+0 = 25
      {"m-none", {"biopharma", "wind_turbine"}, v1::LEADING, kHohhot},                    // no skill
      {"m-alpha", {"quality_control", "dairy_processing"}, v1::SKILLED_WORKER, kHohhot},  // 40+5+15 = 60
      {"m-two-high", {"automation", "quality_control"}, v1::HIGH_LEVEL, kBaotou},         // 40+25+0 = 65
      {"m-full-eng", {"quality_control", "automation", "dairy_processing"}, v1::ENGINEER, kBaotou},  // 60+15 = 75
      {"m-two-senior", {"dairy_processing", "biopharma", "automation"}, v1::SENIOR_ENGINEER, kHohhot},  // 80
      {"m-best", {"automation", "quality_control", "dairy_processing"}, v1::LEADING, kHohhot},  // 100
  };
  for (const auto& sp : specs) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(sp.id, NewTalent(sp.id, sp.skills, sp.level, sp.region)));
  }
  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER, 2));

  struct Want {
    std::string id;
    int score;
    std::vector<std::string> reasons;
  };
  const std::vector<Want> want = {
      {"m-best",
       100,
       {"skills 3/3: automation, dairy_processing, quality_control", "level LEADING meets SENIOR_ENGINEER",
        "in region 150100"}},
      {"m-two-senior",
       80,
       {"skills 2/3: automation, dairy_processing", "level SENIOR_ENGINEER meets SENIOR_ENGINEER", "in region 150100"}},
      {"m-full-eng",
       75,
       {"skills 3/3: automation, dairy_processing, quality_control", "level ENGINEER is 1 below SENIOR_ENGINEER",
        "in region 150200, not 150100"}},
      {"m-two-high",
       65,
       {"skills 2/3: automation, quality_control", "level HIGH_LEVEL meets SENIOR_ENGINEER",
        "in region 150200, not 150100"}},
      {"m-alpha",
       60,
       {"skills 2/3: dairy_processing, quality_control", "level SKILLED_WORKER is 2 below SENIOR_ENGINEER",
        "in region 150100"}},
      {"m-zeta", 60, {"skills 1/3: quality_control", "level HIGH_LEVEL meets SENIOR_ENGINEER", "in region 150100"}},
      {"m-far",
       25,
       {"skills 1/3: automation", "level SKILLED_WORKER is 2 below SENIOR_ENGINEER", "in region 150200, not 150100"}},
  };
  // The expected scores follow the documented formula.
  for (const auto& w : want) {
    const auto& sp = *std::find_if(specs.begin(), specs.end(), [&](const Spec& s) { return s.id == w.id; });
    int matched = 0;
    for (const auto& skill : sp.skills) matched += skill != "biopharma" && skill != "wind_turbine";
    EXPECT_EQ(w.score, ExpectedScore(3, matched, v1::SENIOR_ENGINEER, sp.level, sp.region == kHohhot)) << w.id;
  }

  v1::MatchTalentsResponse first = MustMatch(enterprise_a_, demand.name());
  EXPECT_EQ(first.total_candidates(), 7);
  EXPECT_TRUE(first.next_page_token().empty());
  ASSERT_EQ(first.candidates_size(), static_cast<int>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& c = first.candidates(static_cast<int>(i));
    EXPECT_EQ(c.talent().name(), TalentName(want[i].id)) << i;
    EXPECT_EQ(c.score(), want[i].score) << want[i].id;
    EXPECT_THAT(c.reasons(), ElementsAreArray(want[i].reasons)) << want[i].id;
    EXPECT_EQ(c.talent().display_name(), want[i].id);  // the full profile, read for the page
  }
  // Deterministic: the same answer again, from the government too.
  for (int i = 0; i < 3; ++i) {
    v1::MatchTalentsResponse again = MustMatch(i == 0 ? energy_ : enterprise_a_, demand.name());
    EXPECT_TRUE(MessageDifferencer::Equals(again, first)) << i;
  }

  // TalentDomain::Score directly: the level part never goes below 0.
  Demand leading = demand;
  leading.set_level(v1::LEADING);
  MatchRow row{"x", v1::SKILLED_WORKER, kBaotou, {"automation"}};
  std::vector<std::string> reasons;
  EXPECT_EQ(TalentDomain::Score(leading, row, &reasons), 20);
  EXPECT_THAT(reasons, ElementsAre("skills 1/3: automation", "level SKILLED_WORKER is 4 below LEADING",
                                   "in region 150200, not 150100"));

  // Who may match: the posting enterprise, government, promotion organizations.
  v1::MatchTalentsResponse m;
  EXPECT_EQ(Match(enterprise_b_, demand.name(), 10, "", &m).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Match(TalentToken("m-best"), demand.name(), 10, "", &m).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Match(auditor_, demand.name(), 10, "", &m).error_code(), Code::PERMISSION_DENIED);
  EXPECT_EQ(Match(enterprise_a_, "demands/404", 10, "", &m).error_code(), Code::NOT_FOUND);
  EXPECT_THAT(FieldsOf(Match(enterprise_a_, "demand/1", 10, "", &m)), ElementsAre("demand"));
  EXPECT_THAT(FieldsOf(Match(enterprise_a_, demand.name(), -5, "", &m)), ElementsAre("page_size"));

  // A demand no talent has a skill for: no candidates.
  const Demand lonely = MustPost(DemandSpec({"hydrogen_production"}, v1::ENGINEER, 1));
  v1::MatchTalentsResponse empty = MustMatch(enterprise_a_, lonely.name());
  EXPECT_EQ(empty.total_candidates(), 0);
  EXPECT_EQ(empty.candidates_size(), 0);
  EXPECT_TRUE(empty.next_page_token().empty());
}

TEST_F(TalentTest, MatchingPagesOverLargerPools) {
  const std::vector<std::string> pool = {"dairy_processing", "quality_control", "automation", "data_analysis"};
  const v1::Level kLevels[] = {v1::SKILLED_WORKER, v1::ENGINEER, v1::SENIOR_ENGINEER, v1::HIGH_LEVEL, v1::LEADING};
  struct Expected {
    std::string id;
    int score;
  };
  std::vector<Expected> expected;
  // 27 talents (in reverse id order); 25 of them share at least one skill with the demand.
  for (int i = 26; i >= 0; --i) {
    const std::string id = absl::StrFormat("p-%02d", i);
    std::vector<std::string> skills;
    if (i >= 25) {
      skills = {"biopharma"};
    } else {
      for (size_t k = 0; k < pool.size(); ++k) {
        if ((i >> k) & 1 || k == static_cast<size_t>(i % 4)) skills.push_back(pool[k]);
      }
    }
    const v1::Level level = kLevels[(i * 3) % 5];
    const std::string region = i % 3 == 0 ? kBaotou : kHohhot;
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, NewTalent(id, skills, level, region)));
    if (i >= 25) continue;
    int matched = 0;
    for (const auto& s : skills) matched += s != "data_analysis";  // the demand wants the first three
    if (matched == 0) continue;
    expected.push_back({id, ExpectedScore(3, matched, v1::ENGINEER, level, region == kHohhot)});
  }
  std::sort(expected.begin(), expected.end(), [](const Expected& a, const Expected& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
  ASSERT_GT(expected.size(), 20u);
  // There are ties, so the id order matters.
  int ties = 0;
  for (size_t i = 1; i < expected.size(); ++i) ties += expected[i].score == expected[i - 1].score;
  ASSERT_GT(ties, 3);

  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::ENGINEER, 5));
  const Demand other = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 5));

  std::vector<Expected> got;
  std::vector<std::string> tokens;
  std::string token;
  int pages = 0;
  for (int guard = 0; guard < 10; ++guard) {
    v1::MatchTalentsResponse resp;
    grpc::Status s = Match(enterprise_a_, demand.name(), 10, token, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ++pages;
    EXPECT_EQ(resp.total_candidates(), static_cast<int>(expected.size()));
    EXPECT_LE(resp.candidates_size(), 10);
    for (const auto& c : resp.candidates()) got.push_back({c.talent().name().substr(8), c.score()});
    if (resp.next_page_token().empty()) break;
    token = resp.next_page_token();
    tokens.push_back(token);
  }
  EXPECT_EQ(pages, static_cast<int>((expected.size() + 9) / 10));
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i].id, expected[i].id) << i;
    EXPECT_EQ(got[i].score, expected[i].score) << expected[i].id;
  }

  // The second page again: the same candidates, also for another caller paging with its own
  // tokens (a token is bound to the caller it was issued to).
  v1::MatchTalentsResponse a, b, first;
  ASSERT_TRUE(Match(enterprise_a_, demand.name(), 10, tokens[0], &a).ok());
  grpc::Status foreign = Match(industry_it_, demand.name(), 10, tokens[0], &b);
  EXPECT_EQ(foreign.error_code(), Code::INVALID_ARGUMENT) << Describe(foreign);
  EXPECT_THAT(FieldsOf(foreign), ElementsAre("page_token"));
  ASSERT_TRUE(Match(industry_it_, demand.name(), 10, "", &first).ok());
  ASSERT_TRUE(Match(industry_it_, demand.name(), 10, first.next_page_token(), &b).ok());
  ASSERT_EQ(a.candidates_size(), 10);
  EXPECT_EQ(a.candidates(0).talent().name(), TalentName(expected[10].id));
  for (int i = 0; i < a.candidates_size(); ++i) {
    EXPECT_EQ(a.candidates(i).talent().name(), b.candidates(i).talent().name());
  }

  // A tampered token, one from another demand, one from ListTalents: INVALID_ARGUMENT.
  std::string tampered = tokens[0];
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  v1::MatchTalentsResponse resp;
  grpc::Status s = Match(enterprise_a_, demand.name(), 10, tampered, &resp);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));
  s = Match(enterprise_a_, other.name(), 10, tokens[0], &resp);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
  v1::ListTalentsRequest lreq;
  lreq.set_page_size(1);
  v1::ListTalentsResponse lresp;
  ASSERT_TRUE(Call(&Stub::ListTalents, hr_, lreq, &lresp).ok());
  s = Match(enterprise_a_, demand.name(), 10, lresp.next_page_token(), &resp);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
  s = Match(enterprise_a_, demand.name(), 10, "not-a-token", &resp);
  EXPECT_EQ(s.error_code(), Code::INVALID_ARGUMENT) << Describe(s);
}

// ------------------------------------------------------------------ placements

// What matching must say of a talent, from its stored row.
struct Standing {
  int score;
  std::vector<std::string> reasons;
};

Standing StandingOf(const Demand& demand, const v1::Talent& stored) {
  MatchRow row{stored.name().substr(8), stored.level(), stored.region(), {}};
  for (const auto& skill : stored.skills()) {
    if (std::find(demand.skills().begin(), demand.skills().end(), skill) != demand.skills().end()) {
      row.matched_skills.push_back(skill);
    }
  }
  Standing out;
  out.score = TalentDomain::Score(demand, row, &out.reasons);
  return out;
}

TEST_F(TalentTest, MatchingUsesTheNewestRevisionAfterAReplay) {
  ASSERT_NO_FATAL_FAILURE(MustRegister("re-play", NewTalent("回放", {"dairy_processing"}, v1::ENGINEER)));
  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER, 1));
  ASSERT_EQ(MustMatch(enterprise_a_, demand.name()).candidates_size(), 1);  // the index is loaded

  // The level is granted (SetTalentLevel); the skills are the talent's own (UpdateTalent).
  auto update = [&](const std::string& request_id, const std::vector<std::string>& skills, v1::Level level) {
    v1::SetTalentLevelRequest grant;
    grant.set_request_id(request_id + "-level");
    grant.set_name(TalentName("re-play"));
    grant.set_level(level);
    grant.set_reason("评定");
    v1::Talent out;
    grpc::Status s = Call(&Stub::SetTalentLevel, hr_, grant, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    v1::UpdateTalentRequest req;
    req.set_request_id(request_id);
    req.mutable_talent()->set_name(TalentName("re-play"));
    for (const auto& skill : skills) req.mutable_talent()->add_skills(skill);
    req.mutable_update_mask()->add_paths("skills");
    s = Call(&Stub::UpdateTalent, hr_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  };
  const v1::Talent first = update("re-play-1", {"dairy_processing", "quality_control"}, v1::SENIOR_ENGINEER);
  const v1::Talent second = update("re-play-2", {"dairy_processing", "quality_control", "automation"}, v1::LEADING);
  // A client retries the first updates: it gets the first answers back, and changes nothing.
  const v1::Talent replayed = update("re-play-1", {"dairy_processing", "quality_control"}, v1::SENIOR_ENGINEER);
  EXPECT_EQ(replayed.etag(), first.etag());
  const v1::Talent stored = GetTalent(hr_, "re-play");
  EXPECT_EQ(stored.etag(), second.etag());

  const v1::MatchTalentsResponse m = MustMatch(enterprise_a_, demand.name());
  ASSERT_EQ(m.candidates_size(), 1);
  const Standing want = StandingOf(demand, stored);
  EXPECT_EQ(want.score, 100);
  EXPECT_EQ(m.candidates(0).score(), want.score);
  EXPECT_THAT(m.candidates(0).reasons(), ElementsAreArray(want.reasons));
}

TEST_F(TalentTest, MatchingConvergesToTheStoredRowUnderConcurrentUpdates) {
  const std::vector<std::string> ids = {"conc-a", "conc-b", "conc-c"};
  for (const auto& id : ids) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, NewTalent(id, {"dairy_processing"}, v1::ENGINEER)));
  }
  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER, 1));
  ASSERT_EQ(MustMatch(enterprise_a_, demand.name()).candidates_size(), 3);  // the index is loaded

  // Each round, several callers update every talent at once, each to a different profile; the
  // store keeps the last commit, and so must the matcher.
  struct Variant {
    std::vector<std::string> skills;
    v1::Level level;
    std::string region;
  };
  const std::vector<Variant> variants = {
      {{"dairy_processing"}, v1::SKILLED_WORKER, kHohhot},
      {{"dairy_processing", "quality_control"}, v1::ENGINEER, kBaotou},
      {{"dairy_processing", "automation"}, v1::SENIOR_ENGINEER, kHohhot},
      {{"quality_control", "automation", "dairy_processing"}, v1::HIGH_LEVEL, kBaotou},
      {{"automation"}, v1::LEADING, kHohhot},
      {{"quality_control"}, v1::SKILLED_WORKER, kBaotou},
  };
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> callers;
    std::atomic<int> failed{0};
    for (size_t v = 0; v < variants.size(); ++v) {
      callers.emplace_back([&, v] {
        auto stub = v1::TalentService::NewStub(
            grpc::CreateChannel(absl::StrCat("127.0.0.1:", talent_.runtime->port()), grpc::InsecureChannelCredentials()));
        for (const auto& id : ids) {
          // The level grant races the updates too.
          if (!Reprofile(stub.get(), absl::StrCat("conc-", round, "-", v, "-", id), id, variants[v].skills,
                         variants[v].region, variants[v].level)
                   .ok()) {
            ++failed;
          }
        }
      });
    }
    for (auto& c : callers) c.join();
    ASSERT_EQ(failed.load(), 0);

    std::map<std::string, Standing> matched;
    const v1::MatchTalentsResponse m = MustMatch(enterprise_a_, demand.name());
    for (const auto& c : m.candidates()) {
      matched[c.talent().name()] = {c.score(), {c.reasons().begin(), c.reasons().end()}};
    }
    for (const auto& id : ids) {
      SCOPED_TRACE(absl::StrCat("round ", round, ", ", id));
      const Standing want = StandingOf(demand, GetTalent(hr_, id));
      auto it = matched.find(TalentName(id));
      ASSERT_NE(it, matched.end());
      EXPECT_EQ(it->second.score, want.score);
      EXPECT_THAT(it->second.reasons, ElementsAreArray(want.reasons));
    }
  }
}

// Whether `stub`'s service ranks each of `ids` for `demand` as its record (read through `reader`)
// stands, within a few seconds (a replica hears of the others' writes shortly after they commit).
bool MatchesTheStore(Stub* stub, Stub* reader, const std::string& token, const Demand& demand,
                     const std::vector<std::string>& ids) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string differs;
  do {
    differs.clear();
    v1::MatchTalentsRequest req;
    req.set_demand(demand.name());
    req.set_page_size(100);
    v1::MatchTalentsResponse m;
    grpc::Status s = Invoke(stub, &Stub::MatchTalents, token, req, &m);
    for (const auto& id : ids) {
      v1::GetTalentRequest get;
      get.set_name(TalentName(id));
      v1::Talent stored;
      if (!s.ok() || !Invoke(reader, &Stub::GetTalent, token, get, &stored).ok()) return false;
      const Standing want = StandingOf(demand, stored);
      auto it = std::find_if(m.candidates().begin(), m.candidates().end(),
                             [&](const auto& c) { return c.talent().name() == TalentName(id); });
      if (it == m.candidates().end() || it->score() != want.score ||
          std::vector<std::string>(it->reasons().begin(), it->reasons().end()) != want.reasons) {
        differs = id;
      }
    }
    if (differs.empty()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  ADD_FAILURE() << "talents/" << differs << " is not matched as stored";
  return false;
}

TEST_F(TalentTest, ReplicasSharingAStoreMatchEachOthersWrites) {
  if (!testing::TestStoreIsPostgres()) GTEST_SKIP() << "replicas share a PostgreSQL store (talent_test_postgres)";
  TalentReplica other;
  auto started = other.Start(Config("talent", "talent.db"), enterprises_.address());
  ASSERT_TRUE(started.ok()) << started;
  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER, 1));

  // Registered on this replica, matched on the other.
  ASSERT_NO_FATAL_FAILURE(MustRegister("rep-one", NewTalent("副本", {"dairy_processing"}, v1::ENGINEER)));
  EXPECT_TRUE(MatchesTheStore(other.stub.get(), talent_.stub.get(), enterprise_a_, demand, {"rep-one"}));
  // Updated on the other, matched here with the new profile.
  grpc::Status s = Reprofile(other.stub.get(), "rep-one-1", "rep-one", {"dairy_processing", "automation"}, kBaotou,
                             v1::LEADING);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(GetTalent(hr_, "rep-one").level(), v1::LEADING);
  EXPECT_TRUE(MatchesTheStore(talent_.stub.get(), talent_.stub.get(), enterprise_a_, demand, {"rep-one"}));
  other.Stop();
}

TEST_F(TalentTest, AReplicaWhoseListenerWasCutOffResyncsWithTheStore) {
  if (!testing::TestStoreIsPostgres()) GTEST_SKIP() << "replicas share a PostgreSQL store (talent_test_postgres)";
  const std::vector<std::string> ids = {"cut-a", "cut-b", "cut-c"};
  for (const auto& id : ids) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, NewTalent(id, {"dairy_processing"}, v1::ENGINEER)));
  }
  const Demand demand =
      MustPost(DemandSpec({"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER, 1));
  // The other replica has one store connection, which the test takes so that its listener, on
  // hearing of a write, waits for it instead of reading on.
  server::CommonConfig config = Config("talent", "talent.db");
  config.pg.pool_size = 1;
  TalentReplica other;
  auto started = other.Start(config, enterprises_.address());
  ASSERT_TRUE(started.ok()) << started;
  auto counted = [&](const std::string& family) {
    double total = 0;
    for (const auto& f : other.runtime->metrics().registry().Collect()) {
      for (const auto& m : f.metric) total += f.name == family ? m.counter.value : 0;
    }
    return total;
  };
  absl::Notification holding, release;
  std::thread holder([&] {
    EXPECT_TRUE(other.runtime->db()
                    .Read([&](store::Connection&) {
                      holding.Notify();
                      release.WaitForNotification();
                      return absl::OkStatus();
                    })
                    .ok());
  });
  holding.WaitForNotification();
  grpc::Status s = Reprofile(talent_.stub.get(), "cut-0", "cut-a", {"automation"}, kHohhot, v1::SKILLED_WORKER);
  ASSERT_TRUE(s.ok()) << Describe(s);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (counted("clustergov_store_notifications_received_total") < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }

  // Both replicas' listeners are cut off (terminated, and gone when this returns), then every
  // talent changes: the other replica hears of none of it.
  const std::string url = config.db.path;
  const std::string database = url.substr(url.rfind('/') + 1);
  EXPECT_EQ(testing::SharedPostgres().Psql(absl::StrCat(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE application_name = 'clustergov-listener' AND datname = '", database, "'")),
            "2");
  for (size_t i = 0; i < ids.size(); ++i) {
    s = Reprofile(talent_.stub.get(), absl::StrCat("cut-1-", i), ids[i], {"dairy_processing", "quality_control"},
                  kBaotou, v1::HIGH_LEVEL);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  release.Notify();
  holder.join();

  // Its listener reconnects and reloads the index in full.
  EXPECT_TRUE(MatchesTheStore(other.stub.get(), talent_.stub.get(), enterprise_a_, demand, ids));
  EXPECT_EQ(counted("clustergov_store_listener_resyncs_total"), 1);
  EXPECT_GE(counted("clustergov_store_notifications_received_total"), 1);
  other.Stop();
}

TEST_F(TalentTest, PlacementRules) {
  ASSERT_NO_FATAL_FAILURE(
      MustRegister("u-univ", NewTalent("高校", {"dairy_processing"}, v1::HIGH_LEVEL, kHohhot, v1::UNIVERSITY)));
  ASSERT_NO_FATAL_FAILURE(MustRegister(
      "u-inst", NewTalent("院所", {"dairy_processing"}, v1::HIGH_LEVEL, kHohhot, v1::RESEARCH_INSTITUTE)));
  ASSERT_NO_FATAL_FAILURE(MustRegister(
      "u-soe", NewTalent("国企", {"dairy_processing"}, v1::ENGINEER, kHohhot, v1::STATE_OWNED_OR_PUBLIC)));
  ASSERT_NO_FATAL_FAILURE(MustRegister(
      "u-private", NewTalent("民企", {"dairy_processing"}, v1::ENGINEER, kHohhot, v1::PRIVATE_ENTERPRISE)));
  ASSERT_NO_FATAL_FAILURE(MustRegister("u-low", NewTalent("技工", {"dairy_processing"}, v1::SKILLED_WORKER)));
  const Demand dual_ok = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 10, true));
  const Demand no_dual = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 10, false));

  // Public home institutions need consent recorded: both the flag and a reference.
  int placed = 0;
  for (const std::string id : {"u-univ", "u-inst", "u-soe"}) {
    SCOPED_TRACE(id);
    grpc::Status s = Place(enterprise_a_, id, dual_ok.name(), Placement::PART_TIME_PAID);
    EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("consent"));
    s = Place(enterprise_a_, id, dual_ok.name(), Placement::PART_TIME_PAID, nullptr, true, "");
    EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
    s = Place(enterprise_a_, id, dual_ok.name(), Placement::PART_TIME_PAID, nullptr, false, "同意函〔2025〕1号");
    EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
    EXPECT_EQ(GetDemand(dual_ok.name()).filled(), placed);  // refusals write nothing
    Placement p;
    s = Place(enterprise_a_, id, dual_ok.name(), Placement::PART_TIME_PAID, &p, true, "同意函〔2025〕1号");
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_TRUE(p.home_consent());
    EXPECT_EQ(p.home_consent_reference(), "同意函〔2025〕1号");
    ++placed;
  }
  // A private enterprise's staff need none.
  Placement full = MustPlace("u-private", dual_ok.name(), Placement::FULL_TIME);
  EXPECT_EQ(full.talent(), "talents/u-private");
  EXPECT_EQ(full.demand(), dual_ok.name());
  EXPECT_EQ(full.enterprise(), EnterpriseName(kA));
  EXPECT_EQ(full.cluster(), kDairy);
  EXPECT_EQ(full.type(), Placement::FULL_TIME);
  EXPECT_EQ(full.state(), Placement::ACTIVE);
  EXPECT_FALSE(full.home_consent());
  EXPECT_EQ(full.placed_by().subject(), "user-" + kA);
  EXPECT_TRUE(full.has_start_time());
  EXPECT_FALSE(full.has_end_time());
  EXPECT_EQ(GetDemand(dual_ok.name()).filled(), 4);

  // DUAL_APPOINTMENT only where the demand accepts one.
  grpc::Status s = Place(enterprise_a_, "u-private", no_dual.name(), Placement::DUAL_APPOINTMENT);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("does not accept dual appointments"));
  // A second FULL_TIME for the same talent, on another demand: refused; part-time is fine.
  s = Place(enterprise_a_, "u-private", no_dual.name(), Placement::FULL_TIME);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("already holds a full-time placement"));
  EXPECT_EQ(GetDemand(no_dual.name()).filled(), 0);
  EXPECT_TRUE(Place(enterprise_a_, "u-private", no_dual.name(), Placement::PART_TIME_PAID).ok());
  // The same talent twice on one demand.
  s = Place(enterprise_a_, "u-univ", dual_ok.name(), Placement::FULL_TIME, nullptr, true, "函");
  EXPECT_EQ(s.error_code(), Code::ALREADY_EXISTS) << Describe(s);
  // A level below the demand's.
  s = Place(enterprise_a_, "u-low", dual_ok.name(), Placement::PART_TIME_PAID);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("below the demand's level ENGINEER"));

  // Malformed and unknown references.
  EXPECT_THAT(FieldsOf(Place(enterprise_a_, "u-low", dual_ok.name(), Placement::TYPE_UNSPECIFIED)),
              ElementsAre("placement.type"));
  EXPECT_THAT(FieldsOf(Place(enterprise_a_, "U_LOW", dual_ok.name(), Placement::FULL_TIME)),
              ElementsAre("placement.talent"));
  EXPECT_THAT(FieldsOf(Place(enterprise_a_, "u-low", "demands/x", Placement::FULL_TIME)),
              ElementsAre("placement.demand"));
  EXPECT_EQ(Place(enterprise_a_, "nobody", dual_ok.name(), Placement::FULL_TIME).error_code(), Code::NOT_FOUND);
  EXPECT_EQ(Place(enterprise_a_, "u-low", "demands/404", Placement::FULL_TIME).error_code(), Code::NOT_FOUND);

  // Who places: the posting enterprise or HR & Social Security — nobody else.
  ASSERT_NO_FATAL_FAILURE(MustRegister("u-other", NewTalent("他人", {"dairy_processing"}, v1::ENGINEER)));
  for (const auto& token : {enterprise_b_, TalentToken("u-other"), energy_, education_, industry_it_, auditor_}) {
    s = Place(token, "u-other", no_dual.name(), Placement::FULL_TIME);
    EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  }
  EXPECT_EQ(GetDemand(no_dual.name()).filled(), 1);
  Placement by_hr;
  s = Place(hr_, "u-other", no_dual.name(), Placement::FULL_TIME, &by_hr);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(by_hr.enterprise(), EnterpriseName(kA));
  EXPECT_EQ(by_hr.placed_by().organization(), "departments/hr_social_security");

  // The placements list filters.
  EXPECT_EQ(PlacementNames("").size(), 6u);
  EXPECT_EQ(PlacementNames("type = PART_TIME_PAID").size(), 4u);
  EXPECT_THAT(PlacementNames("talent = \"talents/u-private\""), ElementsAre(full.name(), ::testing::_));
  EXPECT_EQ(PlacementNames(absl::StrCat("demand = \"", no_dual.name(), "\"")).size(), 2u);
  EXPECT_EQ(PlacementNames("state = ACTIVE AND cluster = \"clusters/hohhot-dairy\"").size(), 6u);
}

TEST_F(TalentTest, PlacementsFillAndReopenTheDemand) {
  for (const std::string id : {"f-1", "f-2", "f-3", "f-4"}) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, NewTalent(id, {"automation"}, v1::ENGINEER)));
  }
  const Demand demand = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 2, true));

  // A full-time and a dual appointment fill both positions.
  Placement p1 = MustPlace("f-1", demand.name(), Placement::FULL_TIME);
  Demand d = GetDemand(demand.name());
  EXPECT_EQ(d.state(), Demand::OPEN);
  EXPECT_EQ(d.filled(), 1);
  Placement p2 = MustPlace("f-2", demand.name(), Placement::DUAL_APPOINTMENT);
  d = GetDemand(demand.name());
  EXPECT_EQ(d.state(), Demand::FILLED);
  EXPECT_EQ(d.filled(), 2);
  // Then no further placement.
  grpc::Status s = Place(enterprise_a_, "f-3", demand.name(), Placement::PART_TIME_PAID);
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("FILLED"));

  // Ending: a reason is required; only the employing enterprise, the talent or HR & SS.
  EXPECT_THAT(FieldsOf(End(enterprise_a_, p1.name(), "")), ElementsAre("reason"));
  EXPECT_THAT(FieldsOf(End(enterprise_a_, p1.name(), "   ")), ElementsAre("reason"));
  for (const auto& token : {enterprise_b_, TalentToken("f-2"), energy_, education_, industry_it_, auditor_}) {
    s = End(token, p1.name(), "试图结束");
    EXPECT_EQ(s.error_code(), Code::PERMISSION_DENIED) << Describe(s);
  }
  EXPECT_THAT(FieldsOf(End(enterprise_a_, "placements/abc", "x")), ElementsAre("name"));
  EXPECT_EQ(End(enterprise_a_, "placements/404", "x").error_code(), Code::NOT_FOUND);
  EXPECT_EQ(GetDemand(demand.name()).state(), Demand::FILLED);

  // The employing enterprise ends one: the demand reopens.
  Placement ended;
  s = End(enterprise_a_, p1.name(), "合同到期", &ended);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(ended.state(), Placement::ENDED);
  EXPECT_EQ(ended.end_reason(), "合同到期");
  EXPECT_TRUE(ended.has_end_time());
  d = GetDemand(demand.name());
  EXPECT_EQ(d.state(), Demand::OPEN);
  EXPECT_EQ(d.filled(), 1);
  // Twice: FAILED_PRECONDITION, and the demand does not move.
  s = End(enterprise_a_, p1.name(), "再次");
  EXPECT_EQ(s.error_code(), Code::FAILED_PRECONDITION) << Describe(s);
  EXPECT_EQ(GetDemand(demand.name()).filled(), 1);

  // Filled again by a part-time placement; f-1 is free to take a full-time placement again.
  Placement p3 = MustPlace("f-3", demand.name(), Placement::PART_TIME_PAID);
  EXPECT_EQ(GetDemand(demand.name()).state(), Demand::FILLED);
  const Demand next = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 1, false));
  Placement again = MustPlace("f-1", next.name(), Placement::FULL_TIME);
  EXPECT_EQ(GetDemand(next.name()).state(), Demand::FILLED);

  // The talent ends its own; HR & Social Security ends another.
  s = End(TalentToken("f-2"), p2.name(), "回原单位");
  ASSERT_TRUE(s.ok()) << Describe(s);
  d = GetDemand(demand.name());
  EXPECT_EQ(d.state(), Demand::OPEN);
  EXPECT_EQ(d.filled(), 1);
  s = End(hr_, p3.name(), "协调结束");
  ASSERT_TRUE(s.ok()) << Describe(s);
  d = GetDemand(demand.name());
  EXPECT_EQ(d.state(), Demand::OPEN);
  EXPECT_EQ(d.filled(), 0);

  // Ending a placement on a closed demand leaves it closed.
  ASSERT_TRUE(Close(enterprise_a_, next.name()).ok());
  ASSERT_TRUE(End(enterprise_a_, again.name(), "岗位取消").ok());
  d = GetDemand(next.name());
  EXPECT_EQ(d.state(), Demand::CLOSED);
  EXPECT_EQ(d.filled(), 0);

  EXPECT_THAT(PlacementNames("state = ACTIVE"), IsEmpty());
  EXPECT_EQ(PlacementNames("state = ENDED").size(), 4u);
}

// ------------------------------------------------------------------ statistics

TEST_F(TalentTest, StatisticsPerClusterAndAcross) {
  ASSERT_TRUE(Join(kA, "baotou-rare-earth").ok());
  v1::Talent s1 = NewTalent("s1", {"dairy_processing"}, v1::SENIOR_ENGINEER);
  AddProgramme(&s1, "qiming", 2023);
  AddProgramme(&s1, "caoyuan_yingcai", 2024);
  v1::Talent s2 = NewTalent("s2", {"dairy_processing"}, v1::ENGINEER);
  AddProgramme(&s2, "qiming", 2024);
  v1::Talent s3 = NewTalent("s3", {"rare_earth_materials"}, v1::LEADING);
  v1::Talent s4 = NewTalent("s4", {"dairy_processing"}, v1::ENGINEER);  // never placed
  AddProgramme(&s4, "excellent_engineer", 2024);
  v1::Talent s5 = NewTalent("s5", {"dairy_processing"}, v1::HIGH_LEVEL);  // placement ended
  AddProgramme(&s5, "onsite_engineer", 2024);
  for (const auto& [id, t] : std::vector<std::pair<std::string, v1::Talent>>{
           {"s1", s1}, {"s2", s2}, {"s3", s3}, {"s4", s4}, {"s5", s5}}) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, t));
  }
  const Demand d1 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 3));
  const Demand d2 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 2));
  const Demand d3 =
      MustPost(DemandSpec({"rare_earth_materials"}, v1::ENGINEER, 4, true, kBaotou, kRareEarth));
  const Demand d4 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 5));
  ASSERT_TRUE(Close(enterprise_a_, d4.name()).ok());

  MustPlace("s1", d1.name(), Placement::FULL_TIME);
  MustPlace("s1", d2.name(), Placement::PART_TIME_PAID);  // s1 counts once by level
  MustPlace("s2", d1.name(), Placement::DUAL_APPOINTMENT);
  MustPlace("s3", d3.name(), Placement::FULL_TIME);
  Placement p5 = MustPlace("s5", d2.name(), Placement::FULL_TIME);
  EXPECT_EQ(GetDemand(d2.name()).state(), Demand::FILLED);
  ASSERT_TRUE(End(enterprise_a_, p5.name(), "离职").ok());

  // clusters/hohhot-dairy: s1 and s2 placed; d1 (3-2) and d2 (2-1) open; d4 closed.
  v1::TalentStatistics dairy = Stats(kDairy);
  EXPECT_EQ(dairy.cluster(), kDairy);
  EXPECT_THAT(Pairs(dairy.placed_talents_by_level()), ElementsAre(Pair("ENGINEER", 1), Pair("SENIOR_ENGINEER", 1)));
  EXPECT_THAT(Pairs(dairy.placed_talents_by_programme()), ElementsAre(Pair("caoyuan_yingcai", 1), Pair("qiming", 2)));
  EXPECT_EQ(dairy.open_demands(), 2);
  EXPECT_EQ(dairy.open_positions(), 2);
  EXPECT_THAT(Pairs(dairy.placements_by_type()),
              ElementsAre(Pair("FULL_TIME", 1), Pair("DUAL_APPOINTMENT", 1), Pair("PART_TIME_PAID", 1)));

  // clusters/baotou-rare-earth: s3.
  v1::TalentStatistics rare = Stats(kRareEarth);
  EXPECT_THAT(Pairs(rare.placed_talents_by_level()), ElementsAre(Pair("LEADING", 1)));
  EXPECT_THAT(Pairs(rare.placed_talents_by_programme()), IsEmpty());
  EXPECT_EQ(rare.open_demands(), 1);
  EXPECT_EQ(rare.open_positions(), 3);
  EXPECT_THAT(Pairs(rare.placements_by_type()), ElementsAre(Pair("FULL_TIME", 1)));

  // Across all clusters.
  v1::TalentStatistics all = Stats("clusters/-");
  EXPECT_EQ(all.cluster(), "clusters/-");
  EXPECT_THAT(Pairs(all.placed_talents_by_level()),
              ElementsAre(Pair("ENGINEER", 1), Pair("SENIOR_ENGINEER", 1), Pair("LEADING", 1)));
  EXPECT_THAT(Pairs(all.placed_talents_by_programme()), ElementsAre(Pair("caoyuan_yingcai", 1), Pair("qiming", 2)));
  EXPECT_EQ(all.open_demands(), 3);
  EXPECT_EQ(all.open_positions(), 5);
  EXPECT_THAT(Pairs(all.placements_by_type()),
              ElementsAre(Pair("FULL_TIME", 2), Pair("DUAL_APPOINTMENT", 1), Pair("PART_TIME_PAID", 1)));

  // A cluster with nothing, and malformed names.
  v1::TalentStatistics none = Stats("clusters/hydrogen");
  EXPECT_THAT(Pairs(none.placed_talents_by_level()), IsEmpty());
  EXPECT_EQ(none.open_demands(), 0);
  EXPECT_EQ(none.open_positions(), 0);
  for (const std::string bad : {"", "clusters/", "clusters/Bad_Id", "hohhot-dairy"}) {
    v1::GetTalentStatisticsRequest req;
    req.set_cluster(bad);
    v1::TalentStatistics out;
    EXPECT_THAT(FieldsOf(Call(&Stub::GetTalentStatistics, hr_, req, &out)), ElementsAre("cluster")) << bad;
  }
}

// ------------------------------------------------------------------ audit, auth

TEST_F(TalentTest, AuditTrailForAuditors) {
  ASSERT_NO_FATAL_FAILURE(MustRegister("a-1", NewTalent("审计", {"automation"}, v1::ENGINEER)));
  const Demand d = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 1));
  Placement p = MustPlace("a-1", d.name(), Placement::FULL_TIME);
  ASSERT_TRUE(End(TalentToken("a-1"), p.name(), "个人原因").ok());

  auto events = Audit("resource = \"talents/a-1\"");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].method(), "/clustergov.talent.v1.TalentService/RegisterTalent");
  EXPECT_EQ(events[0].actor().subject(), "zhang.hr");
  EXPECT_EQ(events[0].actor().organization(), "departments/hr_social_security");
  EXPECT_THAT(events[0].actor().roles(), ElementsAre("government"));
  EXPECT_TRUE(events[0].etag_before().empty());
  EXPECT_FALSE(events[0].etag_after().empty());
  EXPECT_EQ(events[0].request_id(), "test-call");

  // Newest first.
  events = Audit(absl::StrCat("resource = \"", p.name(), "\""));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].method(), "/clustergov.talent.v1.TalentService/CreatePlacement");
  EXPECT_EQ(events[1].actor().organization(), EnterpriseName(kA));
  EXPECT_TRUE(events[1].etag_before().empty());
  EXPECT_EQ(events[0].method(), "/clustergov.talent.v1.TalentService/EndPlacement");
  EXPECT_EQ(events[0].actor().organization(), "talents/a-1");
  EXPECT_EQ(events[0].reason(), "个人原因");
  EXPECT_EQ(events[0].etag_before(), events[1].etag_after());

  std::vector<std::string> methods;
  for (const auto& e : Audit(absl::StrCat("resource = \"", d.name(), "\""))) methods.push_back(e.method());
  EXPECT_THAT(methods, ElementsAre("/clustergov.talent.v1.TalentService/EndPlacement", "/clustergov.talent.v1.TalentService/CreatePlacement", "/clustergov.talent.v1.TalentService/PostDemand"));

  common::v1::ListAuditEventsRequest req;
  common::v1::ListAuditEventsResponse resp;
  for (const auto& token : {enterprise_a_, TalentToken("a-1")}) {
    EXPECT_EQ(Call(&Stub::ListAuditEvents, token, req, &resp).error_code(), Code::PERMISSION_DENIED);
  }
  EXPECT_TRUE(Call(&Stub::ListAuditEvents, energy_, req, &resp).ok());
}

TEST_F(TalentTest, CallsNeedAValidToken) {
  ASSERT_NO_FATAL_FAILURE(MustRegister("tok", NewTalent("令牌", {"automation"}, v1::ENGINEER)));
  const Demand d = MustPost(DemandSpec({"automation"}, v1::ENGINEER, 1));
  const std::string expired = testing::MakeToken("zhang.hr", "departments/hr_social_security", {"government"}, -600);
  const std::string forged =
      testing::MakeToken("zhang.hr", "departments/hr_social_security", {"government"}, 3600,
                         "another-secret-of-at-least-32-bytes-0123456789");
  for (const std::string& token : {std::string(), expired, forged}) {
    v1::Talent t;
    v1::RegisterTalentRequest reg;
    *reg.mutable_talent() = NewTalent("x", {"automation"}, v1::ENGINEER);
    reg.set_talent_id("no-token");
    EXPECT_EQ(Call(&Stub::RegisterTalent, token, reg, &t).error_code(), Code::UNAUTHENTICATED);
    v1::GetTalentRequest get;
    get.set_name("talents/tok");
    EXPECT_EQ(Call(&Stub::GetTalent, token, get, &t).error_code(), Code::UNAUTHENTICATED);
    v1::ListTalentsResponse lt;
    EXPECT_EQ(Call(&Stub::ListTalents, token, v1::ListTalentsRequest(), &lt).error_code(), Code::UNAUTHENTICATED);
    v1::PostDemandRequest post;
    *post.mutable_demand() = DemandSpec({"automation"}, v1::ENGINEER, 1);
    Demand dout;
    EXPECT_EQ(Call(&Stub::PostDemand, token, post, &dout).error_code(), Code::UNAUTHENTICATED);
    v1::MatchTalentsResponse m;
    EXPECT_EQ(Match(token, d.name(), 10, "", &m).error_code(), Code::UNAUTHENTICATED);
    EXPECT_EQ(Place(token, "tok", d.name(), Placement::FULL_TIME).error_code(), Code::UNAUTHENTICATED);
    EXPECT_EQ(End(token, "placements/1", "x").error_code(), Code::UNAUTHENTICATED);
    v1::GetTalentStatisticsRequest st;
    st.set_cluster("clusters/-");
    v1::TalentStatistics stats;
    EXPECT_EQ(Call(&Stub::GetTalentStatistics, token, st, &stats).error_code(), Code::UNAUTHENTICATED);
    v1::TalentReferenceData ref;
    EXPECT_EQ(Call(&Stub::GetReferenceData, token, v1::GetTalentReferenceDataRequest(), &ref).error_code(),
              Code::UNAUTHENTICATED);
    common::v1::ListAuditEventsResponse audit;
    EXPECT_EQ(Call(&Stub::ListAuditEvents, token, common::v1::ListAuditEventsRequest(), &audit).error_code(),
              Code::UNAUTHENTICATED);
  }
  // Nothing was written by the refused calls.
  EXPECT_THAT(TalentIds(""), ElementsAre("tok"));
  EXPECT_EQ(GetDemand(d.name()).filled(), 0);
  EXPECT_THAT(PlacementNames(""), IsEmpty());
}

// ------------------------------------------------------------------ cluster indicators

TEST_F(TalentTest, IndicatorsCountTheYearsDemandsPlacementsAndMatches) {
  // The statistics test's talents, demands and placements, all made this year.
  ASSERT_TRUE(Join(kA, "baotou-rare-earth").ok());
  for (const auto& [id, t] : std::vector<std::pair<std::string, v1::Talent>>{
           {"s1", NewTalent("s1", {"dairy_processing"}, v1::SENIOR_ENGINEER)},
           {"s2", NewTalent("s2", {"dairy_processing"}, v1::ENGINEER)},
           {"s3", NewTalent("s3", {"rare_earth_materials"}, v1::LEADING)},
           {"s5", NewTalent("s5", {"dairy_processing"}, v1::HIGH_LEVEL)}}) {
    ASSERT_NO_FATAL_FAILURE(MustRegister(id, t));
  }
  const Demand d1 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 3));
  const Demand d2 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 2));
  const Demand d3 = MustPost(DemandSpec({"rare_earth_materials"}, v1::ENGINEER, 4, true, kBaotou, kRareEarth));
  const Demand d4 = MustPost(DemandSpec({"dairy_processing"}, v1::ENGINEER, 5));
  ASSERT_TRUE(Close(enterprise_a_, d4.name()).ok());  // posted this year, never matched
  MustPlace("s1", d1.name(), Placement::FULL_TIME);
  MustPlace("s1", d2.name(), Placement::PART_TIME_PAID);
  MustPlace("s2", d1.name(), Placement::DUAL_APPOINTMENT);
  MustPlace("s3", d3.name(), Placement::FULL_TIME);
  Placement p5 = MustPlace("s5", d2.name(), Placement::FULL_TIME);
  ASSERT_TRUE(End(enterprise_a_, p5.name(), "离职").ok());  // ended, but it started this year

  int year = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::FormatTime("%Y", absl::Now(), absl::FixedTimeZone(8 * 3600)), &year));
  auto indicators = [&](const std::string& token, const std::string& cluster, int y,
                        std::map<std::string, int64_t>* values) {
    common::v1::GetClusterIndicatorsRequest req;
    req.set_cluster(cluster);
    req.set_year(y);
    common::v1::ClusterIndicators out;
    grpc::Status s = Call(&Stub::GetClusterIndicators, token, req, &out);
    values->clear();
    for (const auto& i : out.indicators()) {
      (*values)[i.key()] = i.value();
      EXPECT_EQ(i.source(), "talent");
      EXPECT_NE(i.dimension(), common::v1::DIMENSION_UNSPECIFIED);
    }
    return s;
  };
  std::map<std::string, int64_t> v;
  grpc::Status s = indicators(auditor_, kDairy, year, &v);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(v, (std::map<std::string, int64_t>{{"talent.demands.posted", 3},
                                               {"talent.demands.positions", 10},
                                               {"talent.demands.matched", 2},
                                               {"talent.placements.total", 4},
                                               {"talent.placements.full_time", 2},
                                               {"talent.placements.dual_appointment", 1},
                                               {"talent.placements.part_time_paid", 1},
                                               {"talent.talents.placed", 3},
                                               {"talent.talents.high_level_placed", 1}}));
  ASSERT_TRUE(indicators(industry_it_, kRareEarth, year, &v).ok());
  EXPECT_EQ(v["talent.demands.posted"], 1);
  EXPECT_EQ(v["talent.demands.positions"], 4);
  EXPECT_EQ(v["talent.demands.matched"], 1);
  EXPECT_EQ(v["talent.placements.full_time"], 1);
  EXPECT_EQ(v["talent.talents.high_level_placed"], 1);
  // Last year and next year: nothing.
  for (int other : {year - 1, year + 1}) {
    ASSERT_TRUE(indicators(testing::MakeToken("svc", "services/clusters", {"service"}), kDairy, other, &v).ok());
    for (const auto& [key, value] : v) EXPECT_EQ(value, 0) << key << " in " << other;
  }
  // Refusals.
  s = indicators(auditor_, "clusters/", 99, &v);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("cluster", "year"));
  EXPECT_EQ(indicators(enterprise_a_, kDairy, year, &v).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(indicators(hr_, kDairy, year, &v).error_code(), grpc::StatusCode::OK);  // government

  // Through the client library the clusters service uses.
  auto source = NewTalentIndicatorSource(server::MakeChannel(absl::StrCat("127.0.0.1:", talent_.runtime->port())));
  server::CallContext call;
  call.own_token = auditor_;
  auto got = source->GetClusterIndicators(call, kDairy, year);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->indicators_size(), 9);
}

}  // namespace
}  // namespace clustergov::talent

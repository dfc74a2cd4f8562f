// The cluster record's counts (Cluster.counts) end to end: real clusters, enterprises, support
// and talent services in-process (SQLite files, or PostgreSQL databases in counts_test_postgres),
// one real redis-server carrying their event streams; the counts are read with GetCluster, which
// answers from the clusters cache.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "clustergov/talent/v1/talent.grpc.pb.h"
#include "common/store/outbox.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/clusters/cluster_counts.h"
#include "services/clusters/seed.h"
#include "services/support/support_domain.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::clusters {
namespace {

namespace ev1 = ::clustergov::enterprises::v1;
namespace sv1 = ::clustergov::support::v1;
namespace tv1 = ::clustergov::talent::v1;
using CStub = v1::ClustersService::Stub;
using EStub = ev1::EnterprisesService::Stub;
using SStub = sv1::SupportService::Stub;
using TStub = tv1::TalentService::Stub;
using testing::Describe;
using testing::Invoke;
using testing::Uscc;

constexpr char kDairy[] = "hohhot-dairy";
constexpr char kHohhot[] = "150100";

// Waits (up to a minute, never asserting on time) until `done` holds; returns whether it did.
bool PollUntil(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class CountsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  server::CommonConfig Config(const std::string& service) {
    return testing::ServiceConfig(service, dir_->File(service + ".db"), redis_->port());
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    for (const auto& sc : seed->clusters()) {
      if (sc.cluster_id() != kDairy) continue;
      for (const auto& lead : sc.cluster().lead_enterprises()) seed_leads_ += lead.enterprise().empty() ? 0 : 1;
    }
    auto cstarted = clusters_.Start(Config("clusters"), *seed);
    ASSERT_TRUE(cstarted.ok()) << cstarted;
    auto estarted = enterprises_.Start(Config("enterprises"), clusters_.address(), &*seed);
    ASSERT_TRUE(estarted.ok()) << estarted.status();
    auto sstarted = support_.Start(Config("support"), clusters_.address(), enterprises_.address(), absl::Hours(24));
    ASSERT_TRUE(sstarted.ok()) << sstarted;
    auto tstarted = talent_.Start(Config("talent"), enterprises_.address());
    ASSERT_TRUE(tstarted.ok()) << tstarted;
    auto channel = [](const std::string& a) { return grpc::CreateChannel(a, grpc::InsecureChannelCredentials()); };
    cstub_ = v1::ClustersService::NewStub(channel(clusters_.address()));
    estub_ = ev1::EnterprisesService::NewStub(channel(enterprises_.address()));
    sstub_ = sv1::SupportService::NewStub(channel(support_.address()));
    tstub_ = tv1::TalentService::NewStub(channel(talent_.address()));
    // The seed's lead enterprises arrive as MembershipChanged events.
    ASSERT_GT(seed_leads_, 0);
    ASSERT_TRUE(PollUntil([&] { return Counts().lead_enterprises() == seed_leads_; })) << Counts().DebugString();
  }

  void TearDown() override {
    talent_.Stop();
    support_.Stop();
    enterprises_.Stop();
    clusters_.Stop();
  }

  v1::Cluster Dairy() {
    v1::GetClusterRequest req;
    req.set_name(absl::StrCat("clusters/", kDairy));
    v1::Cluster out;
    grpc::Status s = Invoke(cstub_.get(), &CStub::GetCluster, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }
  v1::ClusterCounts Counts() { return Dairy().counts(); }

  // Registers `uscc` and joins it to the dairy cluster as a plain member.
  void Member(const std::string& uscc) {
    ev1::RegisterEnterpriseRequest reg;
    auto* e = reg.mutable_enterprise();
    e->set_uscc(uscc);
    e->set_legal_name_zh("呼和浩特测试乳业有限公司");
    e->set_name_en("Test Dairy Co.");
    e->set_region(kHohhot);
    e->set_industry("dairy");
    e->set_size_class(ev1::SMALL);
    e->set_employees(120);
    ev1::Enterprise enterprise;
    grpc::Status s = Invoke(estub_.get(), &EStub::RegisterEnterprise, industry_it_, reg, &enterprise);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ev1::JoinClusterRequest join;
    join.set_parent("enterprises/" + uscc);
    join.mutable_membership()->set_cluster(absl::StrCat("clusters/", kDairy));
    join.mutable_membership()->set_role(ev1::MEMBER);
    ev1::Membership membership;
    s = Invoke(estub_.get(), &EStub::JoinCluster, industry_it_, join, &membership);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  static std::string MembershipName(const std::string& uscc) {
    return absl::StrCat("enterprises/", uscc, "/memberships/", kDairy);
  }
  static std::string EnterpriseToken(const std::string& uscc) {
    return testing::MakeToken("user-" + uscc, "enterprises/" + uscc, {"enterprise"});
  }

  // Granted last year; valid until the end of the year after next, or until `expiry_year` ended.
  ev1::Certification Grant(const std::string& uscc, ev1::CertificationKind kind, int expiry_year = 0) {
    ev1::GrantCertificationRequest req;
    req.set_parent("enterprises/" + uscc);
    auto* c = req.mutable_certification();
    c->set_kind(kind);
    c->set_issuing_department("industry_it");
    const absl::CivilDay today = absl::ToCivilDay(absl::Now(), absl::FixedTimeZone(8 * 3600));
    c->mutable_grant_date()->set_year(expiry_year != 0 ? expiry_year - 1 : static_cast<int32_t>(today.year()) - 1);
    c->mutable_grant_date()->set_month(1);
    c->mutable_grant_date()->set_day(1);
    c->mutable_expiry_date()->set_year(expiry_year != 0 ? expiry_year : static_cast<int32_t>(today.year()) + 2);
    c->mutable_expiry_date()->set_month(12);
    c->mutable_expiry_date()->set_day(31);
    c->set_certificate_number("NMG-2025-001");
    ev1::Certification out;
    grpc::Status s = Invoke(estub_.get(), &EStub::GrantCertification, industry_it_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  // Failed handler attempts of the clusters service's consumers.
  double HandlerFailures() {
    double failures = 0;
    for (const auto& family : clusters_.runtime().metrics().registry().Collect()) {
      if (family.name != "clustergov_events_handler_failures_total") continue;
      for (const auto& m : family.metric) failures += m.counter.value;
    }
    return failures;
  }

  // The stream entries whose envelope is of `type`, as XADD field lists.
  std::vector<std::vector<std::string>> Entries(const std::string& stream, const std::string& type) {
    std::vector<std::vector<std::string>> out;
    auto reply = clusters_.runtime().redis()->Command({"XRANGE", stream, "-", "+"});
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return out;
    for (const auto& item : reply->elements) {
      std::vector<std::string> fields;
      bool match = false;
      for (const auto& f : item.elements[1].elements) fields.push_back(f.str);
      for (size_t i = 0; i + 1 < fields.size(); i += 2) match |= fields[i] == "type" && fields[i + 1] == type;
      if (match) out.push_back(std::move(fields));
    }
    return out;
  }

  // Adds `fields` to `stream` again: the same envelope, as a relay republishing it would.
  void Republish(const std::string& stream, const std::vector<std::string>& fields) {
    std::vector<absl::string_view> argv = {"XADD", stream, "*"};
    for (const auto& f : fields) argv.push_back(f);
    auto reply = clusters_.runtime().redis()->Command(argv);
    ASSERT_TRUE(reply.ok()) << reply.status();
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  int seed_leads_ = 0;
  testing::ClustersServer clusters_;
  testing::EnterprisesServer enterprises_;
  testing::SupportServer support_;
  testing::TalentServer talent_;
  std::unique_ptr<CStub> cstub_;
  std::unique_ptr<EStub> estub_;
  std::unique_ptr<SStub> sstub_;
  std::unique_ptr<TStub> tstub_;
  const std::string kA = Uscc(1);
  const std::string kB = Uscc(2);
  const std::string industry_it_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string hr_ = testing::MakeToken("zhang.hr", "departments/hr_social_security", {"government"});
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
};

testing::RedisServer* CountsTest::redis_ = nullptr;

TEST_F(CountsTest, MembersByRoleFollowJoinRoleChangeAndLeaveThroughTheCache) {
  const v1::Cluster before = Dairy();  // cached from here on (the TTL is minutes)
  EXPECT_EQ(before.counts().members(), 0);
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  ASSERT_TRUE(PollUntil([&] { return Counts().members() == 1; })) << Counts().DebugString();

  // A counts change is not a client's write: the etag and update time stay, and an update
  // conditioned on the etag read before the member joined succeeds.
  const v1::Cluster joined = Dairy();
  EXPECT_EQ(joined.etag(), before.etag());
  EXPECT_EQ(joined.update_time().seconds(), before.update_time().seconds());
  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name(before.name());
  update.mutable_cluster()->set_etag(before.etag());
  update.mutable_cluster()->set_development_focus("液态奶与奶酪");
  update.mutable_update_mask()->add_paths("development_focus");
  v1::Cluster updated;
  grpc::Status s = Invoke(cstub_.get(), &CStub::UpdateCluster, industry_it_, update, &updated);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(updated.counts().members(), 1) << "an update keeps the counts";

  ev1::UpdateMembershipRequest role;
  role.mutable_membership()->set_name(MembershipName(kA));
  role.mutable_membership()->set_role(ev1::CHAIN_LEADER);
  role.mutable_update_mask()->add_paths("role");
  ev1::Membership membership;
  s = Invoke(estub_.get(), &EStub::UpdateMembership, industry_it_, role, &membership);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().chain_leaders() == 1; })) << Counts().DebugString();
  EXPECT_EQ(Counts().members(), 0);
  EXPECT_EQ(Counts().lead_enterprises(), seed_leads_);

  ev1::LeaveClusterRequest leave;
  leave.set_name(MembershipName(kA));
  leave.set_reason("迁出");
  s = Invoke(estub_.get(), &EStub::LeaveCluster, industry_it_, leave, &membership);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().chain_leaders() == 0; })) << Counts().DebugString();
  EXPECT_EQ(Counts().members(), 0);
}

TEST_F(CountsTest, CertificationsOfMembersByKind) {
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  ASSERT_TRUE(PollUntil([&] { return Counts().members() == 1; }));
  // One whose validity is over is recorded and not counted (seen once the revocation of the
  // valid one, later in the stream, leaves none counted).
  const ev1::Certification expired = Grant(kA, ev1::SPECIALIZED_SME, 2020);
  const ev1::Certification first = Grant(kA, ev1::SPECIALIZED_SME);
  ASSERT_TRUE(PollUntil([&] { return Counts().certifications().count("SPECIALIZED_SME") == 1; }))
      << Counts().DebugString();
  EXPECT_EQ(Counts().certifications().at("SPECIALIZED_SME"), 1);

  ev1::RevokeCertificationRequest revoke;
  revoke.set_name(first.name());
  revoke.set_reason("材料不实");
  ev1::Certification revoked;
  grpc::Status s = Invoke(estub_.get(), &EStub::RevokeCertification, industry_it_, revoke, &revoked);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().certifications().empty(); })) << Counts().DebugString();
  // Revoking the expired one changes nothing (and is no handler error: the next event applies).
  revoke.set_name(expired.name());
  s = Invoke(estub_.get(), &EStub::RevokeCertification, industry_it_, revoke, &revoked);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // A certification held by an enterprise leaves the counts with it, and comes back when it joins.
  Grant(kA, ev1::SPECIALIZED_SME);
  ASSERT_TRUE(PollUntil([&] { return Counts().certifications().count("SPECIALIZED_SME") == 1; }));
  ev1::LeaveClusterRequest leave;
  leave.set_name(MembershipName(kA));
  leave.set_reason("迁出");
  ev1::Membership membership;
  s = Invoke(estub_.get(), &EStub::LeaveCluster, industry_it_, leave, &membership);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().members() == 0 && Counts().certifications().empty(); }))
      << Counts().DebugString();
  ev1::JoinClusterRequest join;
  join.set_parent("enterprises/" + kA);
  join.mutable_membership()->set_cluster(absl::StrCat("clusters/", kDairy));
  join.mutable_membership()->set_role(ev1::MEMBER);
  s = Invoke(estub_.get(), &EStub::JoinCluster, industry_it_, join, &membership);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().certifications().count("SPECIALIZED_SME") == 1; }))
      << Counts().DebugString();
  EXPECT_EQ(HandlerFailures(), 0);
}

TEST_F(CountsTest, AllocatedQuotaCountsAllocationsOnly) {
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  sv1::CreatePoolRequest pool;
  pool.mutable_pool()->set_kind(sv1::ENERGY);
  pool.mutable_pool()->set_capacity(10000);
  pool.mutable_pool()->set_region(kHohhot);
  pool.mutable_pool()->set_year(2025);
  sv1::Pool created_pool;
  grpc::Status s = Invoke(sstub_.get(), &SStub::CreatePool, energy_, pool, &created_pool);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // Drives a new application of `quantity` ENERGY through `steps`.
  auto application = [&](int64_t quantity, const std::vector<grpc::Status (SStub::*)(
                                               grpc::ClientContext*, const sv1::TransitionRequest&, sv1::Application*)>&
                                               steps) {
    sv1::CreateApplicationRequest create;
    auto* a = create.mutable_application();
    a->set_cluster(absl::StrCat("clusters/", kDairy));
    a->set_project_name("乳制品深加工项目");
    a->set_project_description("年产10万吨液态奶生产线");
    a->set_region(kHohhot);
    a->set_year(2025);
    a->add_items()->set_kind(sv1::ENERGY);
    a->mutable_items(0)->set_quantity(quantity);
    sv1::Application app;
    grpc::Status st = Invoke(sstub_.get(), &SStub::CreateApplication, EnterpriseToken(kA), create, &app);
    EXPECT_TRUE(st.ok()) << Describe(st);
    for (auto step : steps) {
      sv1::TransitionRequest req;
      req.set_name(app.name());
      req.set_reason("理由");
      const bool applicant = step == &SStub::SubmitApplication;
      st = Invoke(sstub_.get(), step, applicant ? EnterpriseToken(kA) : industry_it_, req, &app);
      EXPECT_TRUE(st.ok()) << app.name() << ": " << Describe(st);
    }
    return app;
  };
  sv1::Application allocated = application(
      700, {&SStub::SubmitApplication, &SStub::StartReview, &SStub::ApproveApplication, &SStub::AllocateApplication});
  EXPECT_EQ(allocated.state(), sv1::Application::ALLOCATED);
  ASSERT_TRUE(PollUntil([&] { return Counts().allocated_quota().count("ENERGY") == 1; })) << Counts().DebugString();
  EXPECT_EQ(Counts().allocated_quota().at("ENERGY"), 700);

  // Approved (reserved) and then rejected: nothing allocated. Another allocation after it shows
  // the rejection was applied and added nothing.
  sv1::Application rejected = application(
      200, {&SStub::SubmitApplication, &SStub::StartReview, &SStub::ApproveApplication, &SStub::RejectApplication});
  EXPECT_EQ(rejected.state(), sv1::Application::REJECTED);
  application(50, {&SStub::SubmitApplication, &SStub::StartReview, &SStub::ApproveApplication,
                   &SStub::AllocateApplication});
  ASSERT_TRUE(PollUntil([&] { return Counts().allocated_quota().at("ENERGY") != 700; })) << Counts().DebugString();
  EXPECT_EQ(Counts().allocated_quota().at("ENERGY"), 750);

  // ApplicationRejected carries every field the message defines.
  auto entries = Entries(server::Runtime::EventStream("support"), "clustergov.events.v1.ApplicationRejected");
  ASSERT_EQ(entries.size(), 1u);
  events::v1::Envelope envelope;
  for (size_t i = 0; i + 1 < entries[0].size(); i += 2) {
    if (entries[0][i] == "envelope") ASSERT_TRUE(envelope.ParseFromString(entries[0][i + 1]));
  }
  events::v1::ApplicationRejected event;
  ASSERT_TRUE(envelope.data().UnpackTo(&event));
  EXPECT_EQ(event.application(), rejected.name());
  EXPECT_EQ(event.applicant(), "enterprises/" + kA);
  EXPECT_EQ(event.cluster(), absl::StrCat("clusters/", kDairy));
  EXPECT_EQ(event.reason(), "理由");
  ASSERT_EQ(event.items_size(), 1);
  EXPECT_EQ(event.items(0).kind(), "ENERGY");
  EXPECT_EQ(event.items(0).quantity(), 200);
  EXPECT_EQ(event.items(0).pool(), created_pool.name());
}

TEST_F(CountsTest, ActivePlacements) {
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  tv1::RegisterTalentRequest reg;
  reg.set_talent_id("dairy-engineer");
  auto* t = reg.mutable_talent();
  t->set_display_name("王工");
  t->set_field("food");
  t->add_skills("dairy_processing");
  t->set_level(tv1::ENGINEER);
  t->set_home_institution("测试单位");
  t->set_institution_kind(tv1::PRIVATE_ENTERPRISE);
  t->set_region(kHohhot);
  t->mutable_contact()->set_phone("13900001111");
  t->mutable_contact()->set_email("person@example.cn");
  tv1::Talent talent;
  grpc::Status s = Invoke(tstub_.get(), &TStub::RegisterTalent, hr_, reg, &talent);
  ASSERT_TRUE(s.ok()) << Describe(s);
  tv1::PostDemandRequest post;
  auto* d = post.mutable_demand();
  d->set_cluster(absl::StrCat("clusters/", kDairy));
  d->set_title("乳品工艺工程师");
  d->add_skills("dairy_processing");
  d->set_level(tv1::ENGINEER);
  d->set_count(2);
  d->set_dual_appointment_ok(true);
  d->set_region(kHohhot);
  d->mutable_deadline()->set_year(2030);
  d->mutable_deadline()->set_month(6);
  d->mutable_deadline()->set_day(30);
  tv1::Demand demand;
  s = Invoke(tstub_.get(), &TStub::PostDemand, EnterpriseToken(kA), post, &demand);
  ASSERT_TRUE(s.ok()) << Describe(s);
  tv1::CreatePlacementRequest place;
  place.mutable_placement()->set_talent(talent.name());
  place.mutable_placement()->set_demand(demand.name());
  place.mutable_placement()->set_type(tv1::Placement::FULL_TIME);
  tv1::Placement placement;
  s = Invoke(tstub_.get(), &TStub::CreatePlacement, EnterpriseToken(kA), place, &placement);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().active_placements() == 1; })) << Counts().DebugString();

  tv1::EndPlacementRequest end;
  end.set_name(placement.name());
  end.set_reason("合同期满");
  s = Invoke(tstub_.get(), &TStub::EndPlacement, EnterpriseToken(kA), end, &placement);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(PollUntil([&] { return Counts().active_placements() == 0; })) << Counts().DebugString();
}

TEST_F(CountsTest, AnEventDeliveredTwiceCountsOnce) {
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  ASSERT_TRUE(PollUntil([&] { return Counts().members() == 1; }));
  const std::string stream = server::Runtime::EventStream("enterprises");
  auto joins = Entries(stream, "clustergov.events.v1.MembershipChanged");
  ASSERT_FALSE(joins.empty());
  // kA's join (the last membership event so far) again, then kB joins: once kB is counted, the
  // repeat (ahead of it in the stream) has been handled too.
  ASSERT_NO_FATAL_FAILURE(Republish(stream, joins.back()));
  ASSERT_NO_FATAL_FAILURE(Member(kB));
  ASSERT_TRUE(PollUntil([&] { return Counts().members() >= 2; })) << Counts().DebugString();
  EXPECT_EQ(Counts().members(), 2);
  EXPECT_EQ(Counts().lead_enterprises(), seed_leads_);
  EXPECT_EQ(HandlerFailures(), 0);
}

TEST_F(CountsTest, RecordsFromBeforeTheEventsArePublishedOnce) {
  ASSERT_NO_FATAL_FAILURE(Member(kA));
  Grant(kA, ev1::SPECIALIZED_SME);
  ASSERT_TRUE(PollUntil([&] { return Counts().certifications().count("SPECIALIZED_SME") == 1; }));
  // As if the enterprises store predated its events: its backfill never ran and its stream is
  // gone. A clusters service on a new store then learns the memberships and certifications from
  // the backfill the enterprises service runs when it starts.
  absl::Status forgot = enterprises_.runtime().db().Write([](store::Connection& c) {
    return c.Exec("DELETE FROM event_backfills");
  });
  ASSERT_TRUE(forgot.ok()) << forgot;
  talent_.Stop();
  support_.Stop();
  enterprises_.Stop();
  clusters_.Stop();
  redis_->Cli({"DEL", server::Runtime::EventStream("enterprises")});
  ASSERT_EQ(redis_->Cli({"EXISTS", server::Runtime::EventStream("enterprises")}), "0");

  auto seed = LoadSeedData("");
  ASSERT_TRUE(seed.ok()) << seed.status();
  auto cstarted = clusters_.Start(
      testing::ServiceConfig("clusters", dir_->File("clusters-new.db"), redis_->port()), *seed);
  ASSERT_TRUE(cstarted.ok()) << cstarted;
  auto estarted = enterprises_.Start(Config("enterprises"), clusters_.address(), &*seed);
  ASSERT_TRUE(estarted.ok()) << estarted.status();
  EXPECT_EQ(*estarted, 0) << "the seed's enterprises exist";
  cstub_ = v1::ClustersService::NewStub(grpc::CreateChannel(clusters_.address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(PollUntil([&] {
    const auto counts = Counts();
    return counts.members() == 1 && counts.certifications().count("SPECIALIZED_SME") == 1;
  })) << Counts().DebugString();
  EXPECT_EQ(Counts().lead_enterprises(), seed_leads_);
  // Once: a restart publishes nothing again.
  const std::string stream = server::Runtime::EventStream("enterprises");
  const size_t published = Entries(stream, "clustergov.events.v1.MembershipChanged").size();
  EXPECT_GT(published, static_cast<size_t>(seed_leads_));
  enterprises_.Stop();
  estarted = enterprises_.Start(Config("enterprises"), clusters_.address(), &*seed);
  ASSERT_TRUE(estarted.ok()) << estarted.status();
  estub_ = ev1::EnterprisesService::NewStub(
      grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));
  ASSERT_NO_FATAL_FAILURE(Member(kB));
  ASSERT_TRUE(PollUntil([&] { return Counts().members() == 2; })) << Counts().DebugString();
  EXPECT_EQ(Entries(stream, "clustergov.events.v1.MembershipChanged").size(), published + 1);
}

TEST_F(CountsTest, AnInconsistentEventIsAHandlerErrorAndChangesNothing) {
  events::v1::MembershipChanged leave;
  leave.set_enterprise("enterprises/" + kB);  // never a member
  leave.set_cluster(absl::StrCat("clusters/", kDairy));
  leave.set_previous_role("MEMBER");
  const auto envelope = store::MakeEnvelope("clustergov/enterprises", MembershipName(kB), leave, common::v1::Actor(), 1);
  absl::Status applied = clusters_.runtime().db().Write([&](store::Connection& c) {
    return ApplyCountsEvent(c, envelope);
  });
  EXPECT_EQ(applied.code(), absl::StatusCode::kFailedPrecondition) << applied;
  EXPECT_EQ(Counts().members(), 0);
  EXPECT_EQ(Counts().lead_enterprises(), seed_leads_);
}

}  // namespace
}  // namespace clustergov::clusters

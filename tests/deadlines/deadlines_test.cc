// The scheduled deadline jobs (docs/events.md "Scheduled deadlines") against real services
// in-process (clusters, enterprises, support as main() wires them; promotion's domain on its own
// runtime), one real redis-server, their stores on SQLite files or PostgreSQL databases: each job
// changes exactly what is past its deadline, publishes one event per change in the same write
// (read from the outbox), is audited under the service's own identity, and changes nothing when
// run again; one replica at a time holds a job's lease, and a holder whose lease was taken over
// cannot commit.

#include <atomic>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/promotion/v1/promotion.pb.h"
#include "clustergov/support/v1/support.pb.h"
#include "common/events/schedule.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "common/status/status.h"
#include "common/store/lease.h"
#include "common/store/records.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/evaluation_domain.h"
#include "services/clusters/seed.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/promotion/promotion_domain.h"
#include "services/promotion/promotion_repository.h"
#include "services/support/support_domain.h"
#include "tests/support/in_process.h"
#include "tests/support/postgres.h"
#include "tests/support/test_support.h"

namespace clustergov {
namespace {

namespace cv1 = ::clustergov::clusters::v1;
namespace ev1 = ::clustergov::enterprises::v1;
namespace pv1 = ::clustergov::promotion::v1;
namespace sv1 = ::clustergov::support::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kDairy[] = "clusters/hohhot-dairy";

const Principal kIndustryIt{"wang.li", "departments/industry_it", {"government"}};

// A call by `p` (with its token, for the calls the domain makes on to other services).
server::CallContext As(const Principal& p) {
  return server::CallContext{p, "test-call", nullptr, testing::MakeToken(p.subject, p.organization, p.roles)};
}

google::type::Date D(int y, int m, int d) {
  google::type::Date out;
  out.set_year(y);
  out.set_month(m);
  out.set_day(d);
  return out;
}

// The promotion service as an indicator source, as far as opening an evaluation needs it: the
// cluster-year's accepted annual report as the basis, no figures.
class ReportBasis final : public indicators::IndicatorSource {
 public:
  const std::string& name() const override { return name_; }
  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(const server::CallContext&,
                                                                     absl::string_view cluster, int year) override {
    common::v1::ClusterIndicators out;
    out.add_basis(absl::StrCat("annualReports/", cluster.substr(9), "-", year));
    return out;
  }

 private:
  const std::string name_ = "promotion";
};

// The envelopes of type `type` ("clustergov.events.v1.X") in the store's outbox, in order.
std::vector<events::v1::Envelope> Outbox(store::Store& db, const std::string& type) {
  auto rows = db.ReadResult<std::vector<events::v1::Envelope>>(
      [&](store::Connection& c) -> absl::StatusOr<std::vector<events::v1::Envelope>> {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT envelope FROM outbox_events WHERE type = ? ORDER BY seq"));
        stmt.Bind(1, type);
        std::vector<events::v1::Envelope> out;
        while (true) {
          CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          events::v1::Envelope e;
          if (!e.ParseFromString(stmt.Blob(0))) return absl::InternalError("envelope does not parse");
          out.push_back(std::move(e));
        }
        return out;
      });
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? *rows : std::vector<events::v1::Envelope>{};
}

template <typename Msg>
Msg Data(const events::v1::Envelope& e) {
  Msg m;
  EXPECT_TRUE(e.data().UnpackTo(&m)) << e.type();
  return m;
}

// The audit methods recorded for `resource`, oldest first.
std::vector<std::string> AuditMethods(store::Store& db, const std::string& resource) {
  auto rows = db.ReadResult<std::vector<std::string>>([&](store::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT method, actor_subject FROM audit_events WHERE resource = ?"
                                             " ORDER BY id"));
    stmt.Bind(1, resource);
    std::vector<std::string> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(absl::StrCat(stmt.Text(0), " by ", stmt.Text(1)));
    }
    return out;
  });
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? *rows : std::vector<std::string>{};
}

// The lease of job `name` for `holder`, held for `ttl`.
store::LeaseFence Lease(store::Store& db, const std::string& name, const std::string& holder,
                        std::chrono::milliseconds ttl = std::chrono::minutes(5)) {
  auto fence = store::TryAcquireLease(db, "job:" + name, holder, ttl);
  EXPECT_TRUE(fence.ok()) << fence.status();
  EXPECT_TRUE(fence.ok() && fence->has_value()) << name << " is held by another holder";
  return fence.ok() && fence->has_value() ? **fence : store::LeaseFence{};
}

class DeadlinesTest : public ::testing::Test {
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
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    seed_ = *seed;
    std::vector<std::unique_ptr<indicators::IndicatorSource>> sources;
    sources.push_back(std::make_unique<ReportBasis>());
    auto started = clusters_.Start(Config("clusters"), seed_, true, std::move(sources));
    ASSERT_TRUE(started.ok()) << started;
    for (const auto& sc : seed_.clusters()) {
      if (sc.cluster_id() == "hohhot-dairy") lead_ = sc.cluster().lead_enterprises(0).enterprise();
    }
    ASSERT_FALSE(lead_.empty());
  }

  void StartEnterprises() {
    auto started = enterprises_.Start(Config("enterprises"), clusters_.address(), &seed_);
    ASSERT_TRUE(started.ok()) << started.status();
  }

  ev1::Certification Grant(ev1::CertificationKind kind, const google::type::Date& grant,
                           const google::type::Date& expiry) {
    ev1::GrantCertificationRequest req;
    req.set_parent(lead_);
    req.mutable_certification()->set_kind(kind);
    *req.mutable_certification()->mutable_grant_date() = grant;
    *req.mutable_certification()->mutable_expiry_date() = expiry;
    auto granted = enterprises_.domain().GrantCertification(As(kIndustryIt), req);
    EXPECT_TRUE(granted.ok()) << granted.status();
    return granted.ok() ? *granted : ev1::Certification();
  }

  std::map<std::string, ev1::Certification::State> CertificationStates() {
    ev1::ListCertificationsRequest req;
    req.set_parent(lead_);
    auto list = enterprises_.domain().ListCertifications(As(kIndustryIt), req);
    EXPECT_TRUE(list.ok()) << list.status();
    std::map<std::string, ev1::Certification::State> out;
    if (list.ok()) {
      for (const auto& c : list->certifications()) out[c.name()] = c.state();
    }
    return out;
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  cv1::SeedData seed_;
  std::string lead_;  // the dairy cluster's seeded lead enterprise, "enterprises/{uscc}"
  testing::ClustersServer clusters_;
  testing::EnterprisesServer enterprises_;
};

testing::RedisServer* DeadlinesTest::redis_ = nullptr;

// ------------------------------------------------------------------------------ enterprises

TEST_F(DeadlinesTest, ExpiredCertificationsAreStoredAndPublishedOnce) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprises());
  const ev1::Certification past = Grant(ev1::SPECIALIZED_SME, D(2020, 1, 1), D(2021, 6, 30));
  const ev1::Certification current = Grant(ev1::INNOVATIVE_SME, D(2024, 1, 1), D(2099, 12, 31));
  ASSERT_FALSE(past.name().empty());
  ASSERT_FALSE(current.name().empty());
  // Reported expired from the day after the expiry date, before the job stores it.
  EXPECT_EQ(CertificationStates()[past.name()], ev1::Certification::EXPIRED);

  store::Store& db = enterprises_.runtime().db();
  const store::LeaseFence fence = Lease(db, "expire-certifications", "replica-a");
  auto expired = enterprises_.domain().ExpireCertifications(fence, absl::Now());
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 1);

  auto events = Outbox(db, "clustergov.events.v1.CertificationExpired");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].subject(), past.name());
  EXPECT_EQ(events[0].source(), "clustergov/enterprises");
  EXPECT_EQ(events[0].actor().subject(), "service:enterprises");
  EXPECT_EQ(events[0].revision(), 2);
  auto data = Data<events::v1::CertificationExpired>(events[0]);
  EXPECT_EQ(data.certification(), past.name());
  EXPECT_EQ(data.enterprise(), lead_);
  EXPECT_EQ(data.kind(), "SPECIALIZED_SME");
  // Valid through 30 June 2021 (China Standard Time): until 1 July 00:00 +08:00.
  EXPECT_EQ(data.valid_until().seconds(), absl::ToUnixSeconds(absl::FromCivil(absl::CivilDay(2021, 7, 1),
                                                                              absl::FixedTimeZone(8 * 3600))));
  EXPECT_THAT(data.clusters(), ElementsAre(kDairy));
  EXPECT_THAT(AuditMethods(db, past.name()),
              ElementsAre("/clustergov.enterprises.v1.EnterprisesService/GrantCertification by wang.li",
                          "Job:ExpireCertifications by service:enterprises"));
  auto states = CertificationStates();
  EXPECT_EQ(states[past.name()], ev1::Certification::EXPIRED);
  EXPECT_EQ(states[current.name()], ev1::Certification::VALID);

  // Again: nothing left to expire.
  expired = enterprises_.domain().ExpireCertifications(fence, absl::Now());
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 0);
  EXPECT_THAT(Outbox(db, "clustergov.events.v1.CertificationExpired"), SizeIs(1));

  // The current one expires once its day has passed.
  expired = enterprises_.domain().ExpireCertifications(fence, absl::FromCivil(absl::CivilDay(2100, 1, 2),
                                                                             absl::FixedTimeZone(8 * 3600)));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 1);
  EXPECT_THAT(Outbox(db, "clustergov.events.v1.CertificationExpired"), SizeIs(2));
}

// A replica whose lease was taken over (it stalled past its expiry) cannot commit the job's write.
TEST_F(DeadlinesTest, HolderWhoseLeaseWasTakenOverCannotCommit) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprises());
  const ev1::Certification past = Grant(ev1::SPECIALIZED_SME, D(2020, 1, 1), D(2021, 6, 30));
  store::Store& db = enterprises_.runtime().db();
  const store::LeaseFence stale = Lease(db, "expire-certifications", "replica-a", std::chrono::milliseconds(1));
  // Another replica takes the lease once it has expired.
  std::optional<store::LeaseFence> taken;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!taken.has_value() && absl::Now() < give_up) {
    auto fence = store::TryAcquireLease(db, "job:expire-certifications", "replica-b", std::chrono::minutes(5));
    ASSERT_TRUE(fence.ok()) << fence.status();
    taken = *fence;
  }
  ASSERT_TRUE(taken.has_value());
  EXPECT_GT(taken->token, stale.token);

  auto expired = enterprises_.domain().ExpireCertifications(stale, absl::Now());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kAborted) << expired.status();
  EXPECT_THAT(Outbox(db, "clustergov.events.v1.CertificationExpired"), SizeIs(0));
  EXPECT_THAT(AuditMethods(db, past.name()), SizeIs(1));  // the grant only

  expired = enterprises_.domain().ExpireCertifications(*taken, absl::Now());
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 1);
  EXPECT_THAT(Outbox(db, "clustergov.events.v1.CertificationExpired"), SizeIs(1));
}

// Two replicas on one store (on PostgreSQL two runtimes, each with its pool, on one database):
// one runs the job while it holds the lease, the other stands by; it takes over once released.
TEST_F(DeadlinesTest, OneReplicaAtATimeRunsAJob) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprises());
  Grant(ev1::SPECIALIZED_SME, D(2020, 1, 1), D(2021, 6, 30));
  store::Store& a = enterprises_.runtime().db();
  // The second replica's store: on PostgreSQL another runtime on the same database; on SQLite (one
  // process per file) the same store.
  std::unique_ptr<server::Runtime> other;
  store::Store* b = &a;
  if (testing::TestStoreIsPostgres()) {
    auto rt = server::Runtime::Create(Config("enterprises"));
    ASSERT_TRUE(rt.ok()) << rt.status();
    other = std::move(*rt);
    b = &other->db();
  }
  std::atomic<int> runs_a{0}, runs_b{0};
  events::ScheduleOptions options;
  options.name = "expire-certifications";
  options.interval = std::chrono::minutes(1);
  options.holder = "replica-a";
  events::ScheduledJob job_a(&a, options, [&](const store::LeaseFence& fence) {
    ++runs_a;
    return enterprises_.domain().ExpireCertifications(fence, absl::Now()).status();
  }, nullptr);
  options.holder = "replica-b";
  events::ScheduledJob job_b(b, options, [&](const store::LeaseFence& fence) {
    ++runs_b;
    return enterprises_.domain().ExpireCertifications(fence, absl::Now()).status();
  }, nullptr);

  for (int i = 0; i < 3; ++i) {
    auto ran = job_a.RunOnce();
    ASSERT_TRUE(ran.ok()) << ran.status();
    EXPECT_TRUE(*ran);
    ran = job_b.RunOnce();
    ASSERT_TRUE(ran.ok()) << ran.status();
    EXPECT_FALSE(*ran);
  }
  EXPECT_EQ(runs_a.load(), 3);
  EXPECT_EQ(runs_b.load(), 0);
  EXPECT_THAT(Outbox(a, "clustergov.events.v1.CertificationExpired"), SizeIs(1));

  job_a.Stop();  // gives the lease up
  auto ran = job_b.RunOnce();
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_TRUE(*ran);
  EXPECT_EQ(runs_b.load(), 1);
  EXPECT_THAT(Outbox(*b, "clustergov.events.v1.CertificationExpired"), SizeIs(1));
}

// ---------------------------------------------------------------------------------- support

TEST_F(DeadlinesTest, ExpiredReservationsReleaseQuotaAndPublishOnce) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprises());
  testing::SupportServer support;
  const absl::Duration lifetime = absl::Hours(24 * 180);
  auto started = support.Start(Config("support"), clusters_.address(), enterprises_.address(), lifetime);
  ASSERT_TRUE(started.ok()) << started;
  support::SupportDomain& domain = support.domain();

  sv1::CreatePoolRequest pool_req;
  pool_req.mutable_pool()->set_kind(sv1::LAND);
  pool_req.mutable_pool()->set_region("150100");
  pool_req.mutable_pool()->set_year(2026);
  pool_req.mutable_pool()->set_capacity(10000);
  auto pool = domain.CreatePool(As(kIndustryIt), pool_req);
  ASSERT_TRUE(pool.ok()) << pool.status();

  const Principal applicant{"user-lead", lead_, {"enterprise"}};
  // Two approved applications; the job runs as of when only the first one's reservation is past.
  std::vector<sv1::Application> approved;
  for (int64_t quantity : {1200, 800}) {
    sv1::CreateApplicationRequest req;
    auto* a = req.mutable_application();
    a->set_cluster(kDairy);
    a->set_project_name("乳制品深加工项目");
    a->set_region("150100");
    a->set_year(2026);
    auto* item = a->add_items();
    item->set_kind(sv1::LAND);
    item->set_quantity(quantity);
    auto app = domain.CreateApplication(As(applicant), req);
    ASSERT_TRUE(app.ok()) << app.status();
    sv1::TransitionRequest step;
    step.set_name(app->name());
    step.set_reason("理由");
    ASSERT_TRUE(domain.SubmitApplication(As(applicant), step).ok());
    ASSERT_TRUE(domain.StartReview(As(kIndustryIt), step).ok());
    auto done = domain.ApproveApplication(As(kIndustryIt), step);
    ASSERT_TRUE(done.ok()) << done.status();
    approved.push_back(*done);
  }
  auto due = [](const sv1::Application& a) {
    return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(a.reservation_expire_time()));
  };
  const absl::Time first_due = due(approved[0]);
  const absl::Time second_due = due(approved[1]);
  ASSERT_LT(first_due, second_due);

  store::Store& db = support.runtime().db();
  const store::LeaseFence fence = Lease(db, "expire-reservations", "replica-a");
  auto expired = domain.ExpireReservationsJob(fence, first_due + absl::Microseconds(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 1);

  auto events = Outbox(db, "clustergov.events.v1.ApplicationExpired");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].subject(), approved[0].name());
  EXPECT_EQ(events[0].actor().subject(), "service:support");
  auto data = Data<events::v1::ApplicationExpired>(events[0]);
  EXPECT_EQ(data.application(), approved[0].name());
  EXPECT_EQ(data.applicant(), lead_);
  EXPECT_EQ(data.cluster(), kDairy);
  ASSERT_THAT(data.items(), SizeIs(1));
  EXPECT_EQ(data.items(0).kind(), "LAND");
  EXPECT_EQ(data.items(0).quantity(), 1200);
  EXPECT_EQ(data.items(0).pool(), pool->name());
  EXPECT_THAT(AuditMethods(db, approved[0].name()).back(), HasSubstr("Job:ExpireReservations by service:support"));

  sv1::GetApplicationRequest get;
  get.set_name(approved[0].name());
  auto first = domain.GetApplication(As(kIndustryIt), get);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state(), sv1::Application::EXPIRED);
  get.set_name(approved[1].name());
  auto second = domain.GetApplication(As(kIndustryIt), get);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), sv1::Application::APPROVED);
  sv1::GetPoolRequest pool_get;
  pool_get.set_name(pool->name());
  auto after = domain.GetPool(As(kIndustryIt), pool_get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->reserved(), 800);  // the first reservation went back

  // Again, as of the same time: nothing changes.
  expired = domain.ExpireReservationsJob(fence, first_due + absl::Microseconds(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 0);
  EXPECT_THAT(Outbox(db, "clustergov.events.v1.ApplicationExpired"), SizeIs(1));

  // The operators' RPC still expires what is due, and publishes too.
  auto rpc = domain.ExpireReservations(As(kIndustryIt), sv1::ExpireReservationsRequest());
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  EXPECT_EQ(rpc->expired_size(), 0);  // the second is not due yet
  support.Stop();
}

// -------------------------------------------------------------------------------- promotion

TEST_F(DeadlinesTest, OverdueAnnualReportsAreFlaggedOncePerReport) {
  auto rt = server::Runtime::Create(Config("promotion"));
  ASSERT_TRUE(rt.ok()) << rt.status();
  auto repo = promotion::CreatePromotionRepository(&(*rt)->db());
  ASSERT_TRUE(repo.ok()) << repo.status();
  clusters::ClusterDirectory directory(**rt, server::MakeChannel(clusters_.address()), std::chrono::seconds(60));
  promotion::PromotionDeps deps;
  deps.clusters = &directory;
  deps.support_channel = server::MakeChannel("127.0.0.1:1");
  promotion::PromotionDomain domain(std::move(*repo), deps, &(*rt)->page_tokens());
  auto seeded = domain.Seed(seed_);  // designates the dairy association now
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  const absl::TimeZone cst = absl::FixedTimeZone(8 * 3600);
  const int year = absl::ToCivilYear(absl::Now(), cst).year();
  const std::string org = "promotionOrgs/hohhot-dairy-promotion";
  const std::string report = absl::StrCat("annualReports/hohhot-dairy-", year);

  store::Store& db = (*rt)->db();
  const store::LeaseFence fence = Lease(db, "flag-overdue-reports", "replica-a");
  // On 30 April of the next year the report is not overdue yet; on 1 May it is.
  auto flagged = domain.FlagOverdueReports(fence, absl::FromCivil(absl::CivilSecond(year + 1, 4, 30, 23, 59, 59), cst));
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  const absl::Time may_first = absl::FromCivil(absl::CivilDay(year + 1, 5, 1), cst);
  flagged = domain.FlagOverdueReports(fence, may_first);
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);

  auto events = Outbox(db, "clustergov.events.v1.AnnualReportOverdue");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].subject(), report);
  EXPECT_EQ(events[0].actor().subject(), "service:promotion");
  auto data = Data<events::v1::AnnualReportOverdue>(events[0]);
  EXPECT_EQ(data.annual_report(), report);
  EXPECT_EQ(data.promotion_org(), org);
  EXPECT_EQ(data.cluster(), kDairy);
  EXPECT_EQ(data.year(), year);
  EXPECT_EQ(data.due().seconds(), absl::ToUnixSeconds(may_first));
  EXPECT_THAT(AuditMethods(db, report), ElementsAre("Job:FlagOverdueReports by service:promotion"));

  pv1::GetAnnualReportRequest get;
  get.set_name(report);
  auto stored = domain.GetAnnualReport(As(kIndustryIt), get);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), pv1::AnnualReport::OVERDUE);
  EXPECT_EQ(stored->promotion_org(), org);
  EXPECT_TRUE(stored->has_overdue_time());

  // Again: flagged once.
  flagged = domain.FlagOverdueReports(fence, may_first + absl::Hours(1));
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);

  // Submitted late: SUBMITTED, still marked as found overdue, and never flagged again.
  const Principal association{"staff", org, {"promotion_org"}};
  pv1::SubmitAnnualReportRequest submit;
  submit.mutable_annual_report()->set_cluster(kDairy);
  submit.mutable_annual_report()->set_year(year);
  submit.mutable_annual_report()->set_work_report("年度工作报告");
  auto late = domain.SubmitAnnualReport(As(association), submit);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->state(), pv1::AnnualReport::SUBMITTED);
  EXPECT_EQ(late->overdue_time().seconds(), stored->overdue_time().seconds());
  EXPECT_EQ(store::RevisionOf(late->etag()), 2);

  // A year later the next report is due too: only that one is flagged.
  flagged = domain.FlagOverdueReports(fence, absl::FromCivil(absl::CivilDay(year + 2, 5, 2), cst));
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);
  events = Outbox(db, "clustergov.events.v1.AnnualReportOverdue");
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(Data<events::v1::AnnualReportOverdue>(events[1]).year(), year + 1);
  (*rt)->Shutdown();
}

// --------------------------------------------------------------------------------- clusters

TEST_F(DeadlinesTest, StalledEvaluationsAreFlaggedOncePerLevel) {
  clusters::EvaluationDomain& evaluation = clusters_.evaluation();
  auto cluster = clusters_.domain().LoadCached("hohhot-dairy");
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_GT(cluster->lead_departments_size(), 0);
  const Principal department{"dept.official", "departments/" + cluster->lead_departments(0), {"government"}};
  cv1::OpenEvaluationRequest open;
  open.set_parent(kDairy);
  open.set_year(2025);
  open.set_reason("年度评估");
  auto opened = evaluation.OpenEvaluation(As(department), open);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(opened->state(), cv1::Evaluation::LEAGUE_REVIEW);

  store::Store& db = clusters_.runtime().db();
  const store::LeaseFence fence = Lease(db, "flag-stalled-evaluations", "replica-a");
  const absl::Duration limit = absl::Hours(24 * 30);
  auto flagged = evaluation.FlagStalledEvaluations(fence, absl::Now() + absl::Hours(24 * 29), limit);
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  const absl::Time later = absl::Now() + absl::Hours(24 * 31);
  flagged = evaluation.FlagStalledEvaluations(fence, later, limit);
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);

  auto events = Outbox(db, "clustergov.events.v1.EvaluationStalled");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].subject(), opened->name());
  EXPECT_EQ(events[0].actor().subject(), "service:clusters");
  EXPECT_EQ(events[0].revision(), 2);
  auto data = Data<events::v1::EvaluationStalled>(events[0]);
  EXPECT_EQ(data.evaluation(), opened->name());
  EXPECT_EQ(data.cluster(), kDairy);
  EXPECT_EQ(data.year(), 2025);
  EXPECT_EQ(data.level(), "LEAGUE_REVIEW");
  EXPECT_EQ(data.since().seconds(), opened->steps(0).time().seconds());
  ASSERT_GT(cluster->core_regions_size(), 0);
  EXPECT_THAT(data.waiting_for(), ::testing::Contains("departments/league_" + cluster->core_regions(0)));
  EXPECT_THAT(AuditMethods(db, opened->name()).back(), "Job:FlagStalledEvaluations by service:clusters");

  cv1::GetEvaluationRequest get;
  get.set_name(opened->name());
  auto stalled = evaluation.GetEvaluation(As(department), get);
  ASSERT_TRUE(stalled.ok()) << stalled.status();
  EXPECT_EQ(stalled->stall().level(), cv1::Evaluation::LEAGUE_REVIEW);
  EXPECT_EQ(stalled->stall().since().seconds(), data.since().seconds());

  // Again: once per entry into a level.
  flagged = evaluation.FlagStalledEvaluations(fence, later + absl::Hours(24), limit);
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);

  // The next step clears the stall; the new level stalls on its own.
  const Principal league{"league.official", "departments/league_" + cluster->core_regions(0), {"government"}};
  cv1::EvaluationStepRequest step;
  step.set_name(opened->name());
  step.set_etag(stalled->etag());
  auto moved = evaluation.ApproveLeagueReview(As(league), step);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_FALSE(moved->has_stall());
  flagged = evaluation.FlagStalledEvaluations(fence, later, limit);
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);
  events = Outbox(db, "clustergov.events.v1.EvaluationStalled");
  ASSERT_THAT(events, SizeIs(2));
  auto second = Data<events::v1::EvaluationStalled>(events[1]);
  EXPECT_EQ(second.level(), "DEPARTMENT_REVIEW");
  std::vector<std::string> departments;
  for (const auto& d : cluster->lead_departments()) departments.push_back("departments/" + d);
  EXPECT_THAT(second.waiting_for(), ::testing::ElementsAreArray(departments));
}

}  // namespace
}  // namespace clustergov

// The notifications inboxes end to end: events appended to the outboxes of test stores of the
// publishing services (support, promotion, clusters), published by real relays to their Redis
// streams on a real redis-server, consumed by the real clusters service in process (consumer group
// clusters.notifications), then read and marked through gRPC and through the REST gateway.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/notifications/v1/notifications.grpc.pb.h"
#include "common/events/outbox.h"
#include "common/server/runtime.h"
#include "common/store/outbox.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/clusters/notifications_domain.h"
#include "services/clusters/seed.h"
#include "services/gateway/gateway.h"
#include "tests/support/http_client.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

#ifndef CLUSTERGOV_DESCRIPTOR_SET
#error "CLUSTERGOV_DESCRIPTOR_SET must name the built descriptor set"
#endif

namespace clustergov::notifications {
namespace {

namespace ev = ::clustergov::events::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Stub = v1::NotificationsService::Stub;
using testing::Describe;
using testing::FieldsOf;
using testing::Invoke;

constexpr char kDepartment[] = "departments/industry_it";  // hohhot-dairy's lead department
constexpr char kCluster[] = "clusters/hohhot-dairy";
constexpr char kPromotionOrg[] = "promotionOrgs/dairy-association";

// A publishing service's store: what it appends to its outbox, a real relay publishes to
// "cg:events:<service>".
class Publisher {
 public:
  absl::Status Start(const std::string& service, const server::CommonConfig& config) {
    auto rt = server::Runtime::Create(config);
    if (!rt.ok()) return rt.status();
    runtime_ = std::move(*rt);
    if (auto s = runtime_->db().Migrate("outbox", store::OutboxMigrations()); !s.ok()) return s;
    events::RelayOptions options;
    options.stream = server::Runtime::EventStream(service);
    options.poll_interval = std::chrono::milliseconds(20);
    options.retry_backoff = std::chrono::milliseconds(50);
    options.holder = absl::StrCat("test-", service);
    source_ = absl::StrCat("clustergov/", service);
    relay_ = std::make_unique<events::Relay>(&runtime_->db(), runtime_->redis(), options, nullptr);
    relay_->Start();
    return absl::OkStatus();
  }

  void Stop() {
    relay_.reset();
    if (runtime_) runtime_->Shutdown();
    runtime_.reset();
  }

  // Commits `data` about `subject` to the outbox; returns its envelope.
  ev::Envelope Publish(const std::string& subject, const google::protobuf::Message& data) {
    common::v1::Actor actor;
    actor.set_subject("publisher");
    actor.set_organization(kDepartment);
    ev::Envelope e = store::MakeEnvelope(source_, subject, data, actor, ++revision_);
    EXPECT_TRUE(runtime_->db().Write([&](store::Connection& c) { return store::AppendEvent(c, e); }).ok());
    relay_->Notify();
    return e;
  }

  // As if the relay crashed between XADD and marking the batch sent: every event goes out again.
  void Republish() {
    EXPECT_TRUE(runtime_->db()
                    .Write([](store::Connection& c) { return c.Exec("UPDATE outbox_events SET sent_micros = NULL"); })
                    .ok());
    relay_->Notify();
  }

 private:
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<events::Relay> relay_;
  std::string source_;
  int64_t revision_ = 0;
};

class NotificationsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  // Redis replies get a second: a blocking read that times out on a loaded machine leaves what
  // Redis delivered pending until the consumer claims it back (claim_idle, 30 s).
  server::CommonConfig Config(const std::string& service, const std::string& db_file) {
    server::CommonConfig config = testing::ServiceConfig(service, dir_->File(db_file), redis_->port());
    config.redis.io_timeout = std::chrono::seconds(1);
    return config;
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    auto started = clusters_.Start(Config("clusters", "clusters.db"), *seed);
    ASSERT_TRUE(started.ok()) << started;
    stub_ = v1::NotificationsService::NewStub(testing::Connect(clusters_.port()));
    ASSERT_TRUE(support_.Start("support", Config("support", "support.db")).ok());
    ASSERT_TRUE(promotion_.Start("promotion", Config("promotion", "promotion.db")).ok());
    // The clusters stream's publisher: a store of its own, not the consuming service's.
    ASSERT_TRUE(clusters_events_.Start("clusters", Config("clusters-events", "clusters-events.db")).ok());
  }

  void TearDown() override {
    if (gateway_) gateway_->Shutdown();
    gateway_.reset();
    clusters_events_.Stop();
    promotion_.Stop();
    support_.Stop();
    clusters_.Stop();
  }

  void StartGateway() {
    gateway::GatewayConfig config;
    config.http.listen = "127.0.0.1:0";
    config.http.io_threads = 2;
    config.metrics_listen = "";
    config.descriptor_set = CLUSTERGOV_DESCRIPTOR_SET;
    config.backends = {{"clustergov.notifications.v1.NotificationsService", {clusters_.address()}}};
    config.access_log = false;
    auto gw = gateway::Gateway::Create(std::move(config));
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = std::move(*gw);
    ASSERT_TRUE(gateway_->Start().ok());
  }

  testing::HttpResponse Http(const std::string& method, const std::string& target, const std::string& token,
                             const std::string& body = "") {
    testing::HttpConnection conn(gateway_->port());
    EXPECT_TRUE(conn.Send(testing::RawRequest(method, target, body, {{"Authorization", "Bearer " + token}})));
    return conn.Read();
  }

  grpc::Status List(const std::string& token, const std::string& filter, v1::ListNotificationsResponse* resp) {
    v1::ListNotificationsRequest req;
    req.set_filter(filter);
    return Invoke(stub_.get(), &Stub::ListNotifications, token, req, resp);
  }

  // The caller's notifications matching `filter`, once there are at least `want` (waits for the
  // consumers, long enough for an entry to be claimed back after a lost read; then fails the test).
  std::vector<v1::Notification> AwaitInbox(const std::string& token, size_t want, const std::string& filter = "") {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    v1::ListNotificationsResponse resp;
    while (true) {
      resp.Clear();
      grpc::Status s = List(token, filter, &resp);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok() || static_cast<size_t>(resp.notifications_size()) >= want || absl::Now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GE(static_cast<size_t>(resp.notifications_size()), want) << "filter " << filter;
    return {resp.notifications().begin(), resp.notifications().end()};
  }

  // The notification of `kind` among `ns` (events retried after an error are applied out of
  // order, so tests do not rely on the order between events).
  static v1::Notification OfKind(const std::vector<v1::Notification>& ns, v1::Kind kind) {
    for (const auto& n : ns) {
      if (n.kind() == kind) return n;
    }
    ADD_FAILURE() << "no notification of kind " << v1::Kind_Name(kind);
    return v1::Notification();
  }

  static std::vector<std::string> Recipients(const std::vector<v1::Notification>& ns) {
    std::vector<std::string> out;
    for (const auto& n : ns) out.push_back(n.recipient());
    return out;
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  testing::ClustersServer clusters_;
  std::unique_ptr<Stub> stub_;
  Publisher support_;
  Publisher promotion_;
  Publisher clusters_events_;
  std::unique_ptr<gateway::Gateway> gateway_;

  const std::string enterprise_ = absl::StrCat("enterprises/", testing::Uscc(1));
  const std::string other_enterprise_ = absl::StrCat("enterprises/", testing::Uscc(2));
  const std::string enterprise_token_ = testing::MakeToken("ent.user", enterprise_, {"enterprise"});
  const std::string other_token_ = testing::MakeToken("other.user", other_enterprise_, {"enterprise"});
  const std::string department_token_ = testing::MakeToken("it.officer", kDepartment, {"government"});
  const std::string promotion_token_ = testing::MakeToken("assoc.user", kPromotionOrg, {"promotion_org"});
};

testing::RedisServer* NotificationsTest::redis_ = nullptr;

ev::ApplicationSubmitted Submitted(const std::string& applicant, const std::string& application) {
  ev::ApplicationSubmitted m;
  m.set_application(application);
  m.set_applicant(applicant);
  m.set_cluster(kCluster);
  m.set_region("150100");
  m.set_year(2026);
  auto* item = m.add_items();
  item->set_kind("LAND");
  item->set_quantity(20000);
  return m;
}

ev::ApplicationApproved Approved(const std::string& applicant, const std::string& application) {
  ev::ApplicationApproved m;
  m.set_application(application);
  m.set_applicant(applicant);
  m.set_cluster(kCluster);
  return m;
}

TEST_F(NotificationsTest, SupportEventsReachTheApplicantAndTheReviewingDepartmentOnly) {
  support_.Publish("applications/1", Submitted(enterprise_, "applications/1"));
  const ev::Envelope approved = support_.Publish("applications/1", Approved(enterprise_, "applications/1"));
  ev::ApplicationRejected rejected;
  rejected.set_application("applications/2");
  rejected.set_applicant(enterprise_);
  rejected.set_cluster(kCluster);
  rejected.set_reason("用地指标已用完");
  support_.Publish("applications/2", rejected);

  // The department reviews: it sees the submission, in Chinese, about the application.
  auto department = AwaitInbox(department_token_, 1);
  ASSERT_EQ(department.size(), 1u);
  EXPECT_EQ(department[0].kind(), v1::APPLICATION_SUBMITTED);
  EXPECT_EQ(department[0].recipient(), kDepartment);
  EXPECT_EQ(department[0].resource(), "applications/1");
  EXPECT_THAT(department[0].body(), HasSubstr("呼和浩特乳制品先进制造业集群"));
  EXPECT_FALSE(department[0].read());

  // The enterprise sees its approval and its rejection (with the reason).
  auto enterprise = AwaitInbox(enterprise_token_, 2);
  ASSERT_EQ(enterprise.size(), 2u);
  EXPECT_THAT(OfKind(enterprise, v1::APPLICATION_REJECTED).body(), HasSubstr("用地指标已用完"));
  const v1::Notification approval = OfKind(enterprise, v1::APPLICATION_APPROVED);
  EXPECT_EQ(approval.event(), approved.id());
  EXPECT_EQ(approval.create_time(), approved.time());
  EXPECT_EQ(approval.title(), "要素支持申请已批准");

  // Another organization sees nothing, and may not read or mark what is not in its inboxes.
  v1::ListNotificationsResponse other;
  ASSERT_TRUE(List(other_token_, "", &other).ok());
  EXPECT_THAT(other.notifications(), IsEmpty());
  EXPECT_EQ(other.unread_count(), 0);
  v1::GetNotificationRequest get;
  get.set_name(approval.name());
  v1::Notification got;
  EXPECT_EQ(Invoke(stub_.get(), &Stub::GetNotification, other_token_, get, &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::MarkNotificationRequest mark;
  mark.set_name(approval.name());
  EXPECT_EQ(Invoke(stub_.get(), &Stub::MarkNotificationRead, other_token_, mark, &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::MarkAllNotificationsReadRequest all_of_other;
  all_of_other.set_recipient(enterprise_);
  v1::MarkAllNotificationsReadResponse marked;
  EXPECT_EQ(Invoke(stub_.get(), &Stub::MarkAllNotificationsRead, other_token_, all_of_other, &marked).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The owner reads it.
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::GetNotification, enterprise_token_, get, &got).ok());
  EXPECT_EQ(got.name(), approval.name());
  EXPECT_EQ(got.etag(), approval.etag());

  // Errors name the field; a well-formed name that does not exist is NOT_FOUND.
  get.set_name("notifications/999999");
  EXPECT_EQ(Invoke(stub_.get(), &Stub::GetNotification, enterprise_token_, get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.set_name("applications/1");
  grpc::Status bad = Invoke(stub_.get(), &Stub::GetNotification, enterprise_token_, get, &got);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(bad), ElementsAre("name"));
  v1::ListNotificationsResponse listed;
  bad = List(enterprise_token_, "colour = red", &listed);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(bad), ElementsAre("filter"));
}

TEST_F(NotificationsTest, ReadAndUnreadWithEtagsFiltersAndPages) {
  for (int i = 1; i <= 3; ++i) {
    const std::string app = absl::StrCat("applications/", i);
    support_.Publish(app, Approved(enterprise_, app));
  }
  auto inbox = AwaitInbox(enterprise_token_, 3);
  ASSERT_EQ(inbox.size(), 3u);

  v1::MarkNotificationRequest mark;
  mark.set_name(inbox[1].name());
  mark.set_etag(inbox[1].etag());
  v1::Notification read;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::MarkNotificationRead, enterprise_token_, mark, &read).ok());
  EXPECT_TRUE(read.read());
  EXPECT_TRUE(read.has_read_time());
  EXPECT_NE(read.etag(), inbox[1].etag());

  // The etag it was marked with is stale now.
  v1::Notification again;
  EXPECT_EQ(Invoke(stub_.get(), &Stub::MarkNotificationUnread, enterprise_token_, mark, &again).error_code(),
            grpc::StatusCode::ABORTED);
  // Marking what already is so changes nothing.
  mark.set_etag(read.etag());
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::MarkNotificationRead, enterprise_token_, mark, &again).ok());
  EXPECT_EQ(again.etag(), read.etag());

  v1::ListNotificationsResponse unread;
  ASSERT_TRUE(List(enterprise_token_, "read = false", &unread).ok());
  ASSERT_EQ(unread.notifications_size(), 2);
  EXPECT_EQ(unread.unread_count(), 2);
  EXPECT_NE(unread.notifications(0).name(), read.name());
  EXPECT_NE(unread.notifications(1).name(), read.name());
  v1::ListNotificationsResponse by_kind;
  ASSERT_TRUE(List(enterprise_token_, "kind = APPLICATION_REJECTED", &by_kind).ok());
  EXPECT_THAT(by_kind.notifications(), IsEmpty());

  ASSERT_TRUE(Invoke(stub_.get(), &Stub::MarkNotificationUnread, enterprise_token_, mark, &again).ok());
  EXPECT_FALSE(again.read());
  EXPECT_FALSE(again.has_read_time());

  // Two pages of two and one, newest first, then every one marked read.
  v1::ListNotificationsRequest page;
  page.set_page_size(2);
  v1::ListNotificationsResponse first, second;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListNotifications, enterprise_token_, page, &first).ok());
  ASSERT_EQ(first.notifications_size(), 2);
  ASSERT_FALSE(first.next_page_token().empty());
  page.set_page_token(first.next_page_token());
  // A page token is the caller's own.
  EXPECT_EQ(Invoke(stub_.get(), &Stub::ListNotifications, other_token_, page, &second).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::ListNotifications, enterprise_token_, page, &second).ok());
  ASSERT_EQ(second.notifications_size(), 1);
  EXPECT_TRUE(second.next_page_token().empty());
  EXPECT_EQ(second.notifications(0).name(), inbox[2].name());

  v1::MarkAllNotificationsReadResponse marked;
  ASSERT_TRUE(Invoke(stub_.get(), &Stub::MarkAllNotificationsRead, enterprise_token_,
                     v1::MarkAllNotificationsReadRequest(), &marked)
                  .ok());
  EXPECT_EQ(marked.marked(), 3);
  ASSERT_TRUE(List(enterprise_token_, "read = false", &unread).ok());
  EXPECT_THAT(unread.notifications(), IsEmpty());
  EXPECT_EQ(unread.unread_count(), 0);
}

TEST_F(NotificationsTest, AnEventDeliveredTwiceMakesOneNotification) {
  const ev::Envelope first = support_.Publish("applications/7", Approved(enterprise_, "applications/7"));
  AwaitInbox(enterprise_token_, 1);
  // Published again (a relay that died before marking it sent), then a later event: once the
  // later one is in, the repeat was handled before it (one consumer, stream order).
  support_.Republish();
  support_.Publish("applications/8", Approved(enterprise_, "applications/8"));
  auto inbox = AwaitInbox(enterprise_token_, 2);
  EXPECT_EQ(inbox.size(), 2u);
  v1::ListNotificationsResponse of_first;
  ASSERT_TRUE(List(enterprise_token_, absl::StrCat("event = \"", first.id(), "\""), &of_first).ok());
  EXPECT_EQ(of_first.notifications_size(), 1);
  // ... and it was delivered again indeed (a delivery that failed is retried later: waits).
  auto duplicates = [&] {
    double total = 0;
    for (const auto& family : clusters_.runtime().metrics().registry().Collect()) {
      if (family.name != "clustergov_events_duplicates_total") continue;
      for (const auto& m : family.metric) total += m.counter.value;
    }
    return total;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (duplicates() < 1 && absl::Now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(duplicates(), 1);

  // The handler itself adds an (event, recipient) once, whatever runs it.
  auto count = [&] {
    return clusters_.runtime().db().ReadResult<int64_t>([&](store::Connection& c) -> absl::StatusOr<int64_t> {
      auto stmt = c.Prepare("SELECT count(*) FROM notifications WHERE event_id = ?");
      if (!stmt.ok()) return stmt.status();
      stmt->Bind(1, first.id());
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      return stmt->Int(0);
    });
  };
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(clusters_.runtime().db().Write([&](store::Connection& c) { return AddNotifications(c, first); }).ok());
  }
  auto n = count();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
}

TEST_F(NotificationsTest, PromotionAndEvaluationEventsReachTheirOrganizations) {
  ev::AnnualReportReturned returned;
  returned.set_annual_report("promotionOrgs/dairy-association/annualReports/2025");
  returned.set_promotion_org(kPromotionOrg);
  returned.set_cluster(kCluster);
  returned.set_year(2025);
  returned.set_reason("产值数据缺少佐证材料");
  promotion_.Publish(returned.annual_report(), returned);
  ev::AnnualReportOverdue overdue;
  overdue.set_annual_report("annualReports/hohhot-dairy-2026");
  overdue.set_promotion_org(kPromotionOrg);
  overdue.set_cluster(kCluster);
  overdue.set_year(2026);
  *overdue.mutable_due() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1809100800);  // the end of 2027-04-30, +08
  promotion_.Publish(overdue.annual_report(), overdue);
  ev::PromotionOrgDesignated designated;
  designated.set_designation("promotionOrgs/dairy-association/designations/1");
  designated.set_promotion_org(kPromotionOrg);
  designated.set_cluster(kCluster);
  promotion_.Publish(designated.designation(), designated);

  ev::EvaluationDecided decided;
  decided.set_evaluation("clusters/hohhot-dairy/evaluations/2026");
  decided.set_cluster(kCluster);
  decided.set_year(2026);
  decided.set_decision("PROMOTE");
  clusters_events_.Publish(kCluster, decided);
  ev::EvaluationStalled stalled;
  stalled.set_evaluation("clusters/hohhot-dairy/evaluations/2025");
  stalled.set_cluster(kCluster);
  stalled.set_year(2025);
  stalled.set_level("DEPARTMENT_REVIEW");
  stalled.add_waiting_for(kDepartment);
  stalled.add_waiting_for("roles/expert");  // a role has no inbox
  clusters_events_.Publish(kCluster, stalled);
  ev::EvaluationStalled expert_stalled = stalled;  // a role has no inbox
  expert_stalled.set_level("EXPERT_REVIEW");
  expert_stalled.clear_waiting_for();
  expert_stalled.add_waiting_for("roles/expert");
  clusters_events_.Publish(kCluster, expert_stalled);

  auto promotion = AwaitInbox(promotion_token_, 3);
  ASSERT_EQ(promotion.size(), 3u);
  std::vector<v1::Kind> kinds;
  for (const auto& n : promotion) kinds.push_back(n.kind());
  EXPECT_THAT(
      kinds, UnorderedElementsAre(v1::ANNUAL_REPORT_RETURNED, v1::ANNUAL_REPORT_OVERDUE, v1::PROMOTION_ORG_DESIGNATED));
  for (const auto& n : promotion) {
    if (n.kind() == v1::ANNUAL_REPORT_OVERDUE) {
      EXPECT_THAT(n.body(), HasSubstr("2027年04月30日"));
    } else if (n.kind() == v1::ANNUAL_REPORT_RETURNED) {
      EXPECT_THAT(n.body(), HasSubstr("产值数据缺少佐证材料"));
    }
  }

  // The cluster has no promotion organization on record: the decision reaches its lead
  // department only; the stall reaches the department it waits for.
  auto department = AwaitInbox(department_token_, 2);
  ASSERT_EQ(department.size(), 2u);
  EXPECT_THAT(OfKind(department, v1::EVALUATION_STALLED).body(), HasSubstr("部门审核"));
  EXPECT_EQ(OfKind(department, v1::EVALUATION_DECIDED).resource(), "clusters/hohhot-dairy/evaluations/2026");
  EXPECT_THAT(Recipients(department), ElementsAre(kDepartment, kDepartment));
  v1::ListNotificationsResponse of_promotion;
  ASSERT_TRUE(List(promotion_token_, "kind = EVALUATION_DECIDED", &of_promotion).ok());
  EXPECT_THAT(of_promotion.notifications(), IsEmpty());
}

TEST_F(NotificationsTest, ThroughTheGateway) {
  ASSERT_NO_FATAL_FAILURE(StartGateway());
  support_.Publish("applications/5", Submitted(enterprise_, "applications/5"));
  support_.Publish("applications/5", Approved(enterprise_, "applications/5"));
  auto inbox = AwaitInbox(enterprise_token_, 1);
  AwaitInbox(department_token_, 1);

  testing::HttpResponse r = Http("GET", "/v1/notifications?filter=read%20%3D%20false", enterprise_token_);
  ASSERT_EQ(r.status, 200) << r;
  v1::ListNotificationsResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &listed).ok()) << r.body;
  ASSERT_EQ(listed.notifications_size(), 1);
  EXPECT_EQ(listed.notifications(0).kind(), v1::APPLICATION_APPROVED);
  EXPECT_THAT(r.body, HasSubstr("\"unreadCount\":1"));
  const std::string id = listed.notifications(0).name().substr(14);

  r = Http("GET", "/v1/notifications/" + id, other_token_);
  EXPECT_EQ(r.status, 403) << r;
  r = Http("GET", "/v1/notifications/" + id, enterprise_token_);
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_FALSE(r.Header("etag").empty());

  r = Http("POST", "/v1/notifications/" + id + ":markRead", enterprise_token_, "{}");
  ASSERT_EQ(r.status, 200) << r;
  v1::Notification read;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &read).ok()) << r.body;
  EXPECT_TRUE(read.read());
  r = Http("POST", "/v1/notifications/" + id + ":markUnread", enterprise_token_, "{}");
  ASSERT_EQ(r.status, 200) << r;

  // The department marks its whole inbox read.
  r = Http("POST", "/v1/notifications:markAllRead", department_token_, "{}");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_THAT(r.body, HasSubstr("\"marked\":1"));
  r = Http("GET", "/v1/notifications", department_token_);
  ASSERT_EQ(r.status, 200) << r;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &listed).ok()) << r.body;
  ASSERT_EQ(listed.notifications_size(), 1);
  EXPECT_TRUE(listed.notifications(0).read());
  EXPECT_EQ(listed.unread_count(), 0);
}

}  // namespace
}  // namespace clustergov::notifications

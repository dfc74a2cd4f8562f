// The REST gateway end to end: real HTTP/1.1 over loopback against the gateway running in-process
// in front of the real clusters (and enterprises and support) services, on real SQLite files and a
// real redis-server. Every annotated clusters route round-trips path, query and body; each error
// mapping, the body limit, malformed targets, oversized tokens, conditional requests, CORS, request
// ids, a backend going away and coming back, rate limiting, probes, metrics, the OpenAPI document
// (checked with the real validator) and the web console's files are covered.

#include "services/gateway/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "common/server/client.h"
#include "common/status/status.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
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
#include "services/gateway/http_request.h"
#include "services/gateway/json_printer.h"
#include "services/gateway/path_template.h"
#include "services/gateway/routes.h"
#include "services/gateway/static_files.h"
#include "services/support/support_domain.h"
#include "services/support/support_repository.h"
#include "services/support/support_service.h"
#include "tests/support/http_client.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

#ifndef CLUSTERGOV_DESCRIPTOR_SET
#error "CLUSTERGOV_DESCRIPTOR_SET must name the built descriptor set"
#endif

namespace clustergov::gateway {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kClustersService[] = "clustergov.clusters.v1.ClustersService";
constexpr char kEnterprisesService[] = "clustergov.enterprises.v1.EnterprisesService";
constexpr char kSupportService[] = "clustergov.support.v1.SupportService";

// ------------------------------------------------------------------ HTTP and JSON helpers

using Response = testing::HttpResponse;
using ErrorBody = testing::HttpErrorBody;
using testing::HttpConnection;
using testing::RawRequest;

ErrorBody ParseError(const Response& r) { return testing::ParseHttpError(r); }
std::string Escape(const std::string& s) { return testing::PercentEncode(s); }

template <typename M>
M FromJson(const std::string& json) {
  M m;
  google::protobuf::util::JsonParseOptions options;  // strict: an unexpected field fails the test
  auto s = google::protobuf::util::JsonStringToMessage(json, &m, options);
  EXPECT_TRUE(s.ok()) << s.ToString() << " in " << json;
  return m;
}

// ------------------------------------------------------------------ the fixture

class GatewayTest : public ::testing::Test {
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
    ASSERT_NO_FATAL_FAILURE(StartClusters(0));
    ASSERT_NO_FATAL_FAILURE(StartGateway(DefaultConfig()));
  }

  void TearDown() override {
    conn_.reset();
    if (gateway_) gateway_->Shutdown();
    gateway_.reset();
    StopSupport();
    StopEnterprises();
    StopClusters();
  }

  void StartClusters(int port) {
    auto started = clusters_.Start(Config("clusters", "clusters.db", port), seed_);
    ASSERT_TRUE(started.ok()) << started;
    clusters_port_ = clusters_.port();
  }

  void StopClusters() { clusters_.Stop(); }

  void StartEnterprisesAndSupport() {
    const std::string clusters_address = absl::StrCat("127.0.0.1:", clusters_port_);
    auto seeded = enterprises_.Start(Config("enterprises", "enterprises.db"), clusters_address, &seed_);
    ASSERT_TRUE(seeded.ok()) << seeded.status();
    auto started = support_.Start(Config("support", "support.db"), clusters_address, enterprises_.address(),
                                  absl::Hours(24));
    ASSERT_TRUE(started.ok()) << started;
  }

  void StopEnterprises() { enterprises_.Stop(); }
  void StopSupport() { support_.Stop(); }

  GatewayConfig DefaultConfig() {
    GatewayConfig config;
    config.http.listen = "127.0.0.1:0";
    config.http.io_threads = 2;
    config.http.max_body_bytes = 64 * 1024;
    config.metrics_listen = "";  // the metrics test turns it on (stopping the exposer takes a second)
    config.descriptor_set = CLUSTERGOV_DESCRIPTOR_SET;
    config.backends = {{kClustersService, {absl::StrCat("127.0.0.1:", clusters_port_)}}};
    config.backend_timeout = absl::Seconds(5);
    config.backend_options.max_reconnect_backoff = absl::Milliseconds(300);
    config.cors_origins = {"https://app.example.gov.cn"};
    config.drain_timeout = absl::Seconds(2);
    config.access_log = getenv("GW_ACCESS_LOG") != nullptr;
    return config;
  }

  void StartGateway(GatewayConfig config) {
    conn_.reset();
    if (gateway_) gateway_->Shutdown();
    gateway_.reset();
    auto gw = Gateway::Create(std::move(config));
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = std::move(*gw);
    auto started = gateway_->Start();
    ASSERT_TRUE(started.ok()) << started;
    port_ = gateway_->port();
  }

  // A request on the fixture's keep-alive connection (reopened when the server closed it).
  Response Http(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& token = "", std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    std::string raw = RawRequest(method, target, body, headers);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (conn_ == nullptr || !conn_->connected()) conn_ = std::make_unique<HttpConnection>(port_);
      if (conn_->Send(raw)) {
        Response r = conn_->Read();
        if (r.status != 0) {
          if (absl::EqualsIgnoreCase(r.Header("connection"), "close")) conn_.reset();
          return r;
        }
      }
      conn_.reset();  // a keep-alive connection the server had closed: once more on a new one
    }
    return Response{};
  }

  Response Get(const std::string& target, const std::string& token) { return Http("GET", target, "", token); }

  std::string ClusterJson(const std::string& name_en = "Gateway test cluster") {
    return absl::StrCat(R"({"displayNameZh":"网关测试集群","displayNameEn":")", name_en,
                        R"(","industry":"testing","targetTier":"TIER_REGION","targetYear":2027,)",
                        R"("coreRegions":["150100"],"supportingRegions":["150200"],"leadDepartments":["industry_it"],)",
                        R"("chainSegments":["上游","下游"],"leadEnterprises":[{"nameZh":"甲","nameEn":"A"}]})");
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  clusters::v1::SeedData seed_;

  testing::ClustersServer clusters_;
  int clusters_port_ = 0;
  testing::EnterprisesServer enterprises_;
  testing::SupportServer support_;

  std::unique_ptr<Gateway> gateway_;
  int port_ = 0;
  std::unique_ptr<HttpConnection> conn_;

  const std::string gov_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string enterprise_ = testing::MakeToken("ent.user", "enterprises/911501007014176160", {"enterprise"});
  const std::string admin_ = testing::MakeToken("root", "departments/industry_it", {"admin"});
  const std::string service_token_ = testing::MakeToken("promotion-svc", "services/promotion", {"service"});
};

testing::RedisServer* GatewayTest::redis_ = nullptr;

// ------------------------------------------------------------------ templates (no servers needed)

TEST(PathTemplateTest, ParsesAndMatchesVariablesVerbsAndWildcards) {
  auto t = PathTemplate::Parse("/v1/{task_progress.name=clusters/*/taskProgress/*}");
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::string> values;
  ASSERT_TRUE(t->Match("/v1/clusters/hohhot-dairy/taskProgress/3", &values));
  EXPECT_THAT(values, ElementsAre("clusters/hohhot-dairy/taskProgress/3"));
  EXPECT_THAT(t->variables()[0].field_path, ElementsAre("task_progress", "name"));
  EXPECT_FALSE(t->Match("/v1/clusters/hohhot-dairy/taskProgress", &values));
  EXPECT_FALSE(t->Match("/v1/clusters//taskProgress/3", &values));

  auto verb = PathTemplate::Parse("/v1/{name=clusters/*}:undelete");
  ASSERT_TRUE(verb.ok());
  ASSERT_TRUE(verb->Match("/v1/clusters/a%2Db:undelete", &values));
  EXPECT_THAT(values, ElementsAre("clusters/a-b"));  // percent-decoded
  EXPECT_FALSE(verb->Match("/v1/clusters/a-b", &values));
  EXPECT_FALSE(verb->Match("/v1/clusters/a-b:delete", &values));

  auto multi = PathTemplate::Parse("/v1/{name=files/**}");
  ASSERT_TRUE(multi.ok());
  ASSERT_TRUE(multi->Match("/v1/files/a/b/c", &values));
  EXPECT_THAT(values, ElementsAre("files/a/b/c"));

  auto simple = PathTemplate::Parse("/v1/targetProgress/{target_year}");
  ASSERT_TRUE(simple.ok());
  ASSERT_TRUE(simple->Match("/v1/targetProgress/2027", &values));
  EXPECT_THAT(values, ElementsAre("2027"));

  for (const char* bad : {"v1/x", "/v1/{name", "/v1/{=x}", "/v1/**/x", "/v1/{a={b}}", "/v1/x:"}) {
    EXPECT_FALSE(PathTemplate::Parse(bad).ok()) << bad;
  }
}

TEST(HttpRequestTest, ParsesPipelinedRequestsAndRefusesWhatTheServerRefuses) {
  std::string two =
      "PATCH /v1/clusters/a?updateMask=x HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}GET /healthz HTTP/1.0\r\n\r\n";
  size_t consumed = 0;
  auto first = ParseHttpRequest(two, 1024, 1024, &consumed);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->request.read_error, 0);
  EXPECT_EQ(first->request.method, "PATCH");
  EXPECT_EQ(first->request.target, "/v1/clusters/a?updateMask=x");
  EXPECT_EQ(first->request.Header("content-type"), "application/json");  // names lower-cased
  EXPECT_EQ(first->request.body, "{}");
  EXPECT_TRUE(first->keep_alive);
  auto second = ParseHttpRequest(absl::string_view(two).substr(consumed), 1024, 1024, &consumed);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->request.target, "/healthz");
  EXPECT_EQ(second->version, 10u);
  EXPECT_FALSE(second->keep_alive);

  EXPECT_FALSE(ParseHttpRequest("", 1024, 1024).has_value());  // nothing to answer
  auto body = ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n{}", 1024, 1024);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(body->request.read_error, 413);
  EXPECT_EQ(body->request.method, "POST");  // the header is known
  EXPECT_FALSE(body->keep_alive);
  auto header = ParseHttpRequest(absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(2000, 'x'), "\r\n\r\n"), 1024, 1024);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->request.read_error, 431);
  auto truncated = ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}", 1024, 1024);
  ASSERT_TRUE(truncated.has_value());
  EXPECT_EQ(truncated->request.read_error, 400);
  auto junk = ParseHttpRequest("\x01\x02 nonsense\r\n\r\n", 1024, 1024);
  ASSERT_TRUE(junk.has_value());
  EXPECT_EQ(junk->request.read_error, 400);
}

TEST(RouteTableTest, EveryAnnotatedMethodBecomesARouteAndVerbsWin) {
  auto table = RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
  ASSERT_TRUE(table.ok()) << table.status();
  std::set<std::string> clusters_methods;
  for (const auto& r : (*table)->routes()) {
    if (r->service == kClustersService) clusters_methods.insert(r->method->name());
  }
  EXPECT_THAT(clusters_methods, SizeIs(27));
  RouteMatch m = (*table)->Match("POST", "/v1/clusters/x:undelete");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->method->name(), "UndeleteCluster");
  m = (*table)->Match("GET", "/v1/clusters/x:undelete");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_THAT(m.allowed_methods, ElementsAre("POST"));
  m = (*table)->Match("GET", "/v1/clusters:auditEvents");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->method->name(), "ListAuditEvents");
  EXPECT_EQ(m.route->service, kClustersService);
  m = (*table)->Match("PATCH", "/v1/clusters/hohhot-dairy/taskProgress/3");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->grpc_method, "/clustergov.clusters.v1.ClustersService/UpdateTaskProgress");
  EXPECT_EQ((*table)->Match("GET", "/v1/nothing").allowed_methods.size(), 0u);
}

// The notifications service (served by the clusters process): the collection's custom method
// beside the item's.
TEST(RouteTableTest, NotificationRoutes) {
  auto table = RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::vector<std::tuple<std::string, std::string, std::string>> routes = {
      {"GET", "/v1/notifications", "ListNotifications"},
      {"GET", "/v1/notifications/12", "GetNotification"},
      {"POST", "/v1/notifications/12:markRead", "MarkNotificationRead"},
      {"POST", "/v1/notifications/12:markUnread", "MarkNotificationUnread"},
      {"POST", "/v1/notifications:markAllRead", "MarkAllNotificationsRead"}};
  for (const auto& [method, path, rpc] : routes) {
    RouteMatch m = (*table)->Match(method, path);
    ASSERT_NE(m.route, nullptr) << method << " " << path;
    EXPECT_EQ(m.route->method->name(), rpc);
    EXPECT_EQ(m.route->service, "clustergov.notifications.v1.NotificationsService");
  }
  EXPECT_THAT((*table)->Match("GET", "/v1/notifications:markAllRead").allowed_methods, ElementsAre("POST"));
}

// Found by the transcoder fuzz target (tests/fuzz/transcoder_fuzz.cc): text that is not UTF-8
// once percent-decoded, in a path variable, a query parameter or If-Match, was put into the
// request's proto3 string fields, which the backend then failed to parse.
TEST(TranscoderTest, TextThatIsNotUtf8IsRefusedBeforeTheBackend) {
  auto table = RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
  ASSERT_TRUE(table.ok()) << table.status();
  Transcoder transcoder(table->get(), {});
  RouteMatch get = (*table)->Match("GET", "/v1/clusters/a%D9b");
  ASSERT_NE(get.route, nullptr);
  auto built = transcoder.BuildRequest(*get.route, get.values, "", "", "");
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument) << built.status();
  EXPECT_THAT(GetFieldViolations(built.status()), ElementsAre(Field(&FieldViolation::field, "name")));

  RouteMatch list = (*table)->Match("GET", "/v1/clusters");
  ASSERT_NE(list.route, nullptr);
  built = transcoder.BuildRequest(*list.route, list.values, "filter=%FF", "", "");
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument) << built.status();
  EXPECT_TRUE(transcoder.BuildRequest(*list.route, list.values, "filter=industry%3D%E4%B9%B3", "", "").ok());

  RouteMatch patch = (*table)->Match("PATCH", "/v1/clusters/hohhot-dairy");
  ASSERT_NE(patch.route, nullptr);
  built = transcoder.BuildRequest(*patch.route, patch.values, "", "{}", "\"e\x89\"");
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument) << built.status();
  EXPECT_TRUE(transcoder.BuildRequest(*patch.route, patch.values, "", "{}", "\"e1\"").ok());
}

// Found by the transcoder fuzz target: bytes that do not parse as the response type were handed to
// protobuf's binary-to-JSON converter, which never returned on these (it kept rendering a packed
// field). They are refused as INTERNAL (500) instead.
TEST(TranscoderTest, ResponseBytesThatDoNotParseAreRefused) {
  auto table = RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string bytes("/v1/clus\xff\xff\xff\xffters/v1/an}nualRepello\x12\x03");
  for (bool fast : {true, false}) {
    Transcoder transcoder(table->get(), {/*emit_defaults=*/false, /*pretty=*/!fast, /*fast=*/fast});
    for (const auto& route : (*table)->routes()) {
      auto json = transcoder.ResponseToJson(*route, bytes);
      EXPECT_EQ(json.status().code(), absl::StatusCode::kInternal) << route->grpc_method;
      auto any = transcoder.ToJson(route->response_prototype->GetDescriptor()->full_name(), bytes);
      EXPECT_EQ(any.status().code(), absl::StatusCode::kInternal) << route->grpc_method;
    }
  }
}

TEST(JsonPrinterTest, AgreesWithProtobufsPrinter) {
  auto table = RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
  ASSERT_TRUE(table.ok()) << table.status();
  Transcoder fast(table->get(), JsonOutputOptions{});
  JsonOutputOptions reference_options;
  reference_options.fast = false;
  Transcoder reference(table->get(), reference_options);
  auto same = [&](const google::protobuf::Message& m) {
    std::string bytes = m.SerializeAsString();
    auto a = fast.ToJson(m.GetDescriptor()->full_name(), bytes);
    auto b = reference.ToJson(m.GetDescriptor()->full_name(), bytes);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(*a, *b);
  };
  // Timestamps across the calendar (leap days, before 1970, the ends of the range) and every
  // precision protobuf prints; int64 ids.
  for (int64_t seconds : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{86399}, int64_t{951782400}, int64_t{951868800},
                          int64_t{4102444800}, int64_t{-62135596800}, int64_t{253402300799}, int64_t{1795000000}}) {
    for (int32_t nanos : {0, 1000000, 120000000, 1000, 1, 999999999}) {
      common::v1::AuditEvent e;
      e.set_id(seconds);
      e.set_method("/x.Y/Z");
      e.mutable_time()->set_seconds(seconds);
      e.mutable_time()->set_nanos(nanos);
      e.mutable_actor()->add_roles("government");
      ASSERT_NO_FATAL_FAILURE(same(e)) << seconds << "." << nanos;
    }
  }
  // Every seed cluster; escapes; enums; nested and repeated messages; empty messages.
  auto seed = clusters::LoadSeedData("");
  ASSERT_TRUE(seed.ok());
  clusters::v1::ListClustersResponse list;
  for (const auto& s : seed->clusters()) {
    ASSERT_NO_FATAL_FAILURE(same(s.cluster()));
    *list.add_clusters() = s.cluster();
  }
  list.mutable_clusters(0)->set_development_focus("quote \" backslash \\ newline \n tab \t bell \a");
  list.set_total_size(-3);
  ASSERT_NO_FATAL_FAILURE(same(list));
  ASSERT_NO_FATAL_FAILURE(same(*seed));
  ASSERT_NO_FATAL_FAILURE(same(clusters::v1::ListKeyTasksResponse()));
  clusters::v1::UpdateClusterRequest update;  // a FieldMask
  update.mutable_update_mask()->add_paths("display_name_en");
  update.mutable_update_mask()->add_paths("lead_enterprises");
  update.mutable_cluster()->set_tier(common::v1::TIER_NATIONAL);
  ASSERT_NO_FATAL_FAILURE(same(update));
  enterprises::v1::Enterprise enterprise;  // google.type.Date and friends
  enterprise.set_name("enterprises/911501007014176160");
  ASSERT_NO_FATAL_FAILURE(same(enterprise));
}

// ------------------------------------------------------------------ every clusters route

TEST_F(GatewayTest, GetClusterRoundTripsThePathAndTheJsonMapping) {
  Response r = Get("/v1/clusters/hohhot-dairy", gov_);
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  auto c = FromJson<clusters::v1::Cluster>(r.body);
  EXPECT_EQ(c.name(), "clusters/hohhot-dairy");
  EXPECT_EQ(c.display_name_zh(), "呼和浩特乳制品先进制造业集群");
  EXPECT_EQ(c.target_tier(), common::v1::TIER_WORLD_CLASS);
  EXPECT_EQ(r.Header("etag"), absl::StrCat("\"", c.etag(), "\""));
  // lowerCamelCase names, enums by name, RFC 3339 timestamps.
  EXPECT_THAT(r.body, HasSubstr("\"displayNameZh\":"));
  EXPECT_THAT(r.body, HasSubstr("\"targetTier\":\"TIER_WORLD_CLASS\""));
  EXPECT_TRUE(std::regex_search(r.body, std::regex(R"("createTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")")))
      << r.body;
  EXPECT_THAT(r.body, Not(HasSubstr("display_name_zh")));

  // If-None-Match with the current ETag: 304, no body.
  Response same = Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"If-None-Match", r.Header("etag")}});
  EXPECT_EQ(same.status, 304) << same;
  EXPECT_TRUE(same.body.empty());
}

TEST_F(GatewayTest, ListClustersTakesFilterPageSizeAndPageTokenFromTheQuery) {
  std::string filter = Escape("tier = TIER_NONE AND regions:150200");
  Response r = Get(absl::StrCat("/v1/clusters?filter=", filter, "&pageSize=2"), gov_);
  ASSERT_EQ(r.status, 200) << r;
  auto page = FromJson<clusters::v1::ListClustersResponse>(r.body);
  ASSERT_EQ(page.clusters_size(), 2);
  ASSERT_FALSE(page.next_page_token().empty());
  std::set<std::string> names;
  for (const auto& c : page.clusters()) names.insert(c.name());
  int pages = 1;
  while (!page.next_page_token().empty() && pages < 20) {
    // Snake-case parameter names work too.
    r = Get(absl::StrCat("/v1/clusters?filter=", filter, "&page_size=2&pageToken=", Escape(page.next_page_token())),
            gov_);
    ASSERT_EQ(r.status, 200) << r;
    page = FromJson<clusters::v1::ListClustersResponse>(r.body);
    for (const auto& c : page.clusters()) {
      EXPECT_THAT(c.supporting_regions().size() + c.core_regions().size(), ::testing::Gt(0));
      names.insert(c.name());
    }
    ++pages;
  }
  EXPECT_GT(names.size(), 2u);
  EXPECT_GT(pages, 1);

  // A bool parameter; a query that is not a field; a value of the wrong type.
  EXPECT_EQ(Get("/v1/clusters?showDeleted=true&pageSize=1", gov_).status, 200);
  Response unknown = Get("/v1/clusters?pageSize=1&colour=red", gov_);
  ASSERT_EQ(unknown.status, 400) << unknown;
  EXPECT_THAT(ParseError(unknown).fields, ElementsAre("colour"));
  Response bad = Get("/v1/clusters?pageSize=many", gov_);
  ASSERT_EQ(bad.status, 400) << bad;
  ErrorBody e = ParseError(bad);
  EXPECT_EQ(e.code, 3);
  EXPECT_THAT(e.fields, ElementsAre("pageSize"));
  // The backend's own validation of a query value comes back as its BadRequest.
  Response bad_filter = Get(absl::StrCat("/v1/clusters?filter=", Escape("nosuchfield = 1")), gov_);
  EXPECT_EQ(bad_filter.status, 400) << bad_filter;
  EXPECT_THAT(ParseError(bad_filter).fields, ElementsAre("filter"));
}

TEST_F(GatewayTest, CreateUpdateDeleteUndeleteRoundTripBodyQueryAndIfMatch) {
  Response created = Http("POST", "/v1/clusters?clusterId=gw-one&requestId=create-gw-one", ClusterJson(), gov_);
  ASSERT_EQ(created.status, 200) << created;
  auto c = FromJson<clusters::v1::Cluster>(created.body);
  EXPECT_EQ(c.name(), "clusters/gw-one");
  EXPECT_EQ(c.display_name_en(), "Gateway test cluster");
  ASSERT_EQ(c.lead_enterprises_size(), 1);
  EXPECT_EQ(c.lead_enterprises(0).name_en(), "A");
  EXPECT_THAT(c.chain_segments(), ElementsAre("上游", "下游"));

  // The same idempotency key returns the first result; a new key on the same id conflicts.
  Response retry = Http("POST", "/v1/clusters?clusterId=gw-one&requestId=create-gw-one", ClusterJson(), gov_);
  ASSERT_EQ(retry.status, 200) << retry;
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(retry.body).etag(), c.etag());
  Response again = Http("POST", "/v1/clusters?clusterId=gw-one", ClusterJson(), gov_);
  EXPECT_EQ(again.status, 409) << again;
  EXPECT_EQ(ParseError(again).code, 6);  // ALREADY_EXISTS

  // PATCH: the name from the path, the fields from the body, the mask from the query, the etag
  // from If-Match.
  Response updated = Http("PATCH", "/v1/clusters/gw-one?updateMask=displayNameEn,industry",
                          R"({"displayNameEn":"Renamed","industry":"renamed","displayNameZh":"不应改变"})", gov_,
                          {{"If-Match", created.Header("etag")}});
  ASSERT_EQ(updated.status, 200) << updated;
  auto u = FromJson<clusters::v1::Cluster>(updated.body);
  EXPECT_EQ(u.display_name_en(), "Renamed");
  EXPECT_EQ(u.industry(), "renamed");
  EXPECT_EQ(u.display_name_zh(), "网关测试集群");  // not in the mask
  EXPECT_NE(u.etag(), c.etag());
  EXPECT_EQ(updated.Header("etag"), absl::StrCat("\"", u.etag(), "\""));

  // A stale If-Match: 409 (ABORTED), nothing changed.
  Response stale = Http("PATCH", "/v1/clusters/gw-one?updateMask=displayNameEn", R"({"displayNameEn":"Lost"})", gov_,
                        {{"If-Match", created.Header("etag")}});
  ASSERT_EQ(stale.status, 409) << stale;
  EXPECT_EQ(ParseError(stale).code, 10);
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(Get("/v1/clusters/gw-one", gov_).body).display_name_en(), "Renamed");
  // An etag in the body wins over nothing; a stale one there is refused the same way.
  Response stale_body = Http("PATCH", "/v1/clusters/gw-one",
                             absl::StrCat(R"({"displayNameEn":"Lost","etag":")", c.etag(), R"("})"), gov_);
  EXPECT_EQ(stale_body.status, 409) << stale_body;

  // DELETE with query parameters, then :undelete with a body.
  Response deleted = Http(
      "DELETE", absl::StrCat("/v1/clusters/gw-one?reason=", Escape("合并到其他集群"), "&etag=", u.etag()), "", gov_);
  ASSERT_EQ(deleted.status, 200) << deleted;
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(deleted.body).state(), clusters::v1::Cluster::DELETED);
  Response restored = Http("POST", "/v1/clusters/gw-one:undelete", R"({"reason":"误删恢复"})", gov_);
  ASSERT_EQ(restored.status, 200) << restored;
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(restored.body).state(), clusters::v1::Cluster::ACTIVE);
  // Undeleting an active cluster: FAILED_PRECONDITION is a 400.
  Response twice = Http("POST", "/v1/clusters/gw-one:undelete", R"({"reason":"again"})", gov_);
  EXPECT_EQ(twice.status, 400) << twice;
  EXPECT_EQ(ParseError(twice).code, 9);
}

TEST_F(GatewayTest, IfNoneMatchTakesListsStarAndWeakValidators) {
  Response r = Get("/v1/clusters/hohhot-dairy", gov_);
  ASSERT_EQ(r.status, 200) << r;
  const std::string etag = r.Header("etag");  // "abc"
  ASSERT_GT(etag.size(), 2u);
  const std::string opaque = etag.substr(1, etag.size() - 2);
  auto get = [&](const std::string& if_none_match) {
    return Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"If-None-Match", if_none_match}});
  };
  // RFC 9110 13.1.2: weak comparison over a list, or "*".
  for (const std::string& matching :
       {etag, opaque, absl::StrCat("W/", etag), absl::StrCat("\"other\", ", etag),
        absl::StrCat("W/\"x\",W/", etag, ", \"y\""), absl::StrCat(" , ", etag, " ,"), absl::StrCat("\"a,b\", ", etag), std::string("*")}) {
    Response m = get(matching);
    EXPECT_EQ(m.status, 304) << matching << " -> " << m;
    EXPECT_TRUE(m.body.empty()) << matching;
    EXPECT_EQ(m.Header("etag"), etag) << matching;
  }
  for (const std::string& other : {std::string("\"other\""), std::string("W/\"other\", \"x\"")}) {
    Response m = get(other);
    EXPECT_EQ(m.status, 200) << other << " -> " << m;
    EXPECT_EQ(FromJson<clusters::v1::Cluster>(m.body).name(), "clusters/hohhot-dairy");
  }
  for (const std::string& malformed : {absl::StrCat("\"", opaque), absl::StrCat(etag, " ", etag),
                                       absl::StrCat("*, ", etag)}) {
    Response m = get(malformed);
    EXPECT_EQ(m.status, 400) << malformed << " -> " << m;
    EXPECT_THAT(ParseError(m).message, HasSubstr("If-None-Match")) << malformed;
  }
  // A list answer carries no etag: If-None-Match does not apply there.
  Response list = Http("GET", "/v1/clusters?pageSize=1", "", gov_, {{"If-None-Match", "*"}});
  EXPECT_EQ(list.status, 200) << list;
}

TEST_F(GatewayTest, IfMatchComparesStronglyTakesStarAndRefusesWhatItCannotCompare) {
  Response created = Http("POST", "/v1/clusters?clusterId=gw-if-match", ClusterJson(), gov_);
  ASSERT_EQ(created.status, 200) << created;
  std::string etag = created.Header("etag");
  auto patch = [&](const std::string& if_match, const std::string& name) {
    return Http("PATCH", "/v1/clusters/gw-if-match?updateMask=displayNameEn",
                absl::StrCat(R"({"displayNameEn":")", name, R"("})"), gov_, {{"If-Match", if_match}});
  };
  auto current_name = [&] {
    return FromJson<clusters::v1::Cluster>(Get("/v1/clusters/gw-if-match", gov_).body).display_name_en();
  };

  // A weak entity tag never matches strongly: ABORTED, as for a stale one, and nothing changes.
  Response weak = patch(absl::StrCat("W/", etag), "Weak");
  EXPECT_EQ(weak.status, 409) << weak;
  EXPECT_EQ(ParseError(weak).code, 10);
  EXPECT_THAT(ParseError(weak).message, HasSubstr("weak"));
  // Several different entity tags: the service compares with one, so the gateway refuses.
  Response several = patch(absl::StrCat("\"other\", ", etag), "Several");
  EXPECT_EQ(several.status, 400) << several;
  EXPECT_THAT(ParseError(several).message, HasSubstr("If-Match"));
  Response malformed = patch(absl::StrCat("\"", etag), "Malformed");
  EXPECT_EQ(malformed.status, 400) << malformed;
  Response empty_tag = patch("\"\"", "Empty");
  EXPECT_EQ(empty_tag.status, 409) << empty_tag;
  EXPECT_EQ(current_name(), "Gateway test cluster");

  // The current strong tag, alone or next to weak ones (which cannot match), applies.
  Response listed = patch(absl::StrCat("W/\"old\", ", etag), "Listed");
  ASSERT_EQ(listed.status, 200) << listed;
  etag = listed.Header("etag");
  EXPECT_EQ(current_name(), "Listed");
  // The tag that was current is now stale.
  Response stale = patch(created.Header("etag"), "Stale");
  EXPECT_EQ(stale.status, 409) << stale;
  // "*": any current version.
  Response any = patch("*", "Any");
  ASSERT_EQ(any.status, 200) << any;
  EXPECT_EQ(current_name(), "Any");

  // A route with no etag to compare refuses If-Match rather than ignoring it: a read, or a create
  // (the new cluster's etag is output-only).
  Response get = Http("GET", "/v1/clusters/gw-if-match", "", gov_, {{"If-Match", any.Header("etag")}});
  EXPECT_EQ(get.status, 400) << get;
  EXPECT_THAT(ParseError(get).message, HasSubstr("If-Match"));
  Response create = Http("POST", "/v1/clusters?clusterId=gw-if-match-2", ClusterJson(), gov_, {{"If-Match", "*"}});
  EXPECT_EQ(create.status, 400) << create;
  EXPECT_EQ(Get("/v1/clusters/gw-if-match-2", gov_).status, 404);
}

TEST_F(GatewayTest, DesignateTierHistoryTargetProgressAndPromotionOrganization) {
  Response designated = Http("POST", "/v1/clusters/hohhot-dairy:designateTier",
                             R"({"tier":"TIER_WORLD_CLASS","reason":"列入国家先进制造业集群名单"})", gov_);
  ASSERT_EQ(designated.status, 200) << designated;
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(designated.body).tier(), common::v1::TIER_WORLD_CLASS);

  Response history = Get("/v1/clusters/hohhot-dairy/tierDesignations?pageSize=10", gov_);
  ASSERT_EQ(history.status, 200) << history;
  auto h = FromJson<clusters::v1::ListTierDesignationsResponse>(history.body);
  ASSERT_EQ(h.designations_size(), 1);
  EXPECT_EQ(h.designations(0).tier(), common::v1::TIER_WORLD_CLASS);
  EXPECT_EQ(h.designations(0).actor().subject(), "wang.li");  // the bearer token reached the service

  // An integer path variable.
  Response progress = Get("/v1/targetProgress/2027", gov_);
  ASSERT_EQ(progress.status, 200) << progress;
  auto p = FromJson<clusters::v1::TargetProgress>(progress.body);
  EXPECT_EQ(p.target_year(), 2027);
  EXPECT_EQ(p.achieved_total(), 1);
  Response not_a_year = Get("/v1/targetProgress/soon", gov_);
  ASSERT_EQ(not_a_year.status, 400) << not_a_year;
  EXPECT_THAT(ParseError(not_a_year).fields, ElementsAre("target_year"));
}

TEST_F(GatewayTest, TaskProgressKeyTasksReferenceDataAndAuditEvents) {
  Response updated = Http("PATCH", "/v1/clusters/hohhot-dairy/taskProgress/3?updateMask=status,percent",
                          R"({"status":"IN_PROGRESS","percent":40,"note":"not in the mask"})", gov_);
  ASSERT_EQ(updated.status, 200) << updated;
  auto t = FromJson<clusters::v1::TaskProgress>(updated.body);
  EXPECT_EQ(t.name(), "clusters/hohhot-dairy/taskProgress/3");
  EXPECT_EQ(t.task_number(), 3);
  EXPECT_EQ(t.status(), clusters::v1::TaskProgress::IN_PROGRESS);
  EXPECT_EQ(t.percent(), 40);
  EXPECT_EQ(t.note(), "");

  Response listed =
      Get(absl::StrCat("/v1/clusters/hohhot-dairy/taskProgress?filter=", Escape("status = IN_PROGRESS")), gov_);
  ASSERT_EQ(listed.status, 200) << listed;
  auto l = FromJson<clusters::v1::ListTaskProgressResponse>(listed.body);
  ASSERT_EQ(l.task_progress_size(), 1);
  EXPECT_EQ(l.task_progress(0).task_number(), 3);

  Response tasks = Get("/v1/keyTasks", gov_);
  ASSERT_EQ(tasks.status, 200) << tasks;
  EXPECT_EQ(FromJson<clusters::v1::ListKeyTasksResponse>(tasks.body).tasks_size(), 15);

  Response ref = Get("/v1/referenceData", enterprise_);
  ASSERT_EQ(ref.status, 200) << ref;
  EXPECT_EQ(FromJson<clusters::v1::ReferenceData>(ref.body).regions_size(), 12);

  // The request id sent to the gateway is the one the service records; int64 ids are strings.
  Response del = Http("DELETE", "/v1/clusters/hydrogen?reason=gw", "", energy_, {{"X-Request-Id", "gw-audit-0001"}});
  ASSERT_EQ(del.status, 200) << del;
  EXPECT_EQ(del.Header("x-request-id"), "gw-audit-0001");
  Response audit =
      Get(absl::StrCat("/v1/clusters:auditEvents?pageSize=5&filter=", Escape("request_id = \"gw-audit-0001\"")), gov_);
  ASSERT_EQ(audit.status, 200) << audit;
  auto events = FromJson<common::v1::ListAuditEventsResponse>(audit.body);
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.events(0).resource(), "clusters/hydrogen");
  EXPECT_EQ(events.events(0).reason(), "gw");
  EXPECT_TRUE(std::regex_search(audit.body, std::regex(R"("id":"\d+")"))) << audit.body;
}

// ------------------------------------------------------------------ errors

TEST_F(GatewayTest, GrpcStatusesMapToHttpWithTheStatusBody) {
  // 401: no token, a forged token.
  Response none = Get("/v1/clusters/hohhot-dairy", "");
  ASSERT_EQ(none.status, 401) << none;
  EXPECT_EQ(ParseError(none).code, 16);
  Response forged =
      Get("/v1/clusters/hohhot-dairy", testing::MakeToken("x", "departments/industry_it", {"government"}, 3600,
                                                          "another-secret-another-secret-0123456789"));
  EXPECT_EQ(forged.status, 401) << forged;

  // 403: an enterprise may not create clusters; another department may not designate.
  Response denied = Http("POST", "/v1/clusters?clusterId=by-enterprise", ClusterJson(), enterprise_);
  ASSERT_EQ(denied.status, 403) << denied;
  EXPECT_EQ(ParseError(denied).code, 7);

  // 404.
  Response missing = Get("/v1/clusters/no-such-cluster", gov_);
  ASSERT_EQ(missing.status, 404) << missing;
  EXPECT_EQ(ParseError(missing).code, 5);

  // 400 with the service's google.rpc.BadRequest field violations as JSON.
  Response invalid = Http("POST", "/v1/clusters?clusterId=gw-invalid", R"({"displayNameEn":"only this"})", gov_);
  ASSERT_EQ(invalid.status, 400) << invalid;
  ErrorBody e = ParseError(invalid);
  EXPECT_EQ(e.code, 3);
  EXPECT_THAT(e.fields, Contains("cluster.display_name_zh"));
  EXPECT_THAT(e.fields, Contains("cluster.lead_departments"));
  EXPECT_THAT(invalid.body, HasSubstr(R"("@type":"type.googleapis.com/google.rpc.BadRequest")"));
  EXPECT_THAT(invalid.body, HasSubstr(R"("fieldViolations":[)"));
}

TEST_F(GatewayTest, UnknownFieldsMalformedJsonWrongTypesAndContentTypes) {
  Response unknown = Http("POST", "/v1/clusters?clusterId=gw-two", R"({"displayNameZh":"x","colour":"red"})", gov_);
  ASSERT_EQ(unknown.status, 400) << unknown;
  ErrorBody e = ParseError(unknown);
  EXPECT_THAT(e.fields, ElementsAre("colour"));
  EXPECT_THAT(e.message, HasSubstr("colour"));

  Response nested =
      Http("POST", "/v1/clusters?clusterId=gw-two", R"({"leadEnterprises":[{"nameZh":"a","oops":1}]})", gov_);
  ASSERT_EQ(nested.status, 400) << nested;
  EXPECT_THAT(ParseError(nested).fields, ElementsAre(HasSubstr("oops")));

  for (const char* body : {R"({"displayNameZh":)", "{not json}", "[1,2]", R"({"displayNameZh":"x"} trailing)"}) {
    Response bad = Http("POST", "/v1/clusters?clusterId=gw-two", body, gov_);
    EXPECT_EQ(bad.status, 400) << body << " -> " << bad;
    EXPECT_EQ(ParseError(bad).code, 3) << body;
  }
  Response malformed = Http("POST", "/v1/clusters?clusterId=gw-two", R"({"displayNameZh":)", gov_);
  EXPECT_THAT(ParseError(malformed).message, HasSubstr("malformed JSON"));

  Response wrong_type = Http("POST", "/v1/clusters?clusterId=gw-two", R"({"targetYear":"soon"})", gov_);
  ASSERT_EQ(wrong_type.status, 400) << wrong_type;
  EXPECT_THAT(ParseError(wrong_type).fields, ElementsAre("target_year"));
  Response bad_enum = Http("POST", "/v1/clusters?clusterId=gw-two", R"({"targetTier":"TIER_GALACTIC"})", gov_);
  EXPECT_EQ(bad_enum.status, 400) << bad_enum;

  Response text = Http("POST", "/v1/clusters?clusterId=gw-two", ClusterJson(), gov_, {{"Content-Type", "text/plain"}});
  EXPECT_EQ(text.status, 415) << text;
  Response body_on_get = Http("GET", "/v1/clusters/hohhot-dairy", R"({"name":"x"})", gov_);
  EXPECT_EQ(body_on_get.status, 400) << body_on_get;
  Response query_for_body = Http("POST", "/v1/clusters/hohhot-dairy:undelete?reason=x", "{}", gov_);
  EXPECT_EQ(query_for_body.status, 400) << query_for_body;
  // None of that created anything.
  EXPECT_EQ(Get("/v1/clusters/gw-two", gov_).status, 404);
}

TEST_F(GatewayTest, MalformedPercentEncodingAndInvalidUtf8InTheTargetAre400) {
  // Refused by the gateway itself, before routing: a bad escape is not a "wrong method".
  struct Case {
    std::string method;
    std::string target;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/clusters/%zz", "malformed percent-encoding"},
      {"PATCH", "/v1/clusters/%zz", "malformed percent-encoding"},
      {"GET", "/v1/clusters/hohhot-dairy%2", "malformed percent-encoding"},
      {"GET", "/v1/clusters/%FF", "not UTF-8"},
      {"GET", "/v1/clusters/%C3%28", "not UTF-8"},
      {"GET", "/v1/clusters/%ED%A0%80", "not UTF-8"},  // a UTF-16 surrogate
      {"GET", "/v1/clusters?filter=%zz", "malformed percent-encoding"},
      {"GET", "/v1/clusters?pageSize=2&filter=industry%20%3D%20%22%E4%B9%B3%22%FF", "not UTF-8"},
      {"GET", "/v1/clusters?%FF=1", "not UTF-8"},
      {"DELETE", "/v1/clusters/hohhot-dairy?reason=%E5%90", "not UTF-8"},
  };
  for (const auto& c : cases) {
    Response r = Http(c.method, c.target, "", gov_);
    EXPECT_EQ(r.status, 400) << c.method << " " << c.target << " -> " << r;
    ErrorBody e = ParseError(r);
    EXPECT_EQ(e.code, 3) << c.target;
    EXPECT_THAT(e.message, HasSubstr(c.message)) << c.target;
    EXPECT_FALSE(r.Has("allow")) << c.target;
  }
  // Raw bytes that are not UTF-8 are refused too.
  Response raw = Http("GET", "/v1/clusters/\xff\xfe", "", gov_);
  EXPECT_EQ(raw.status, 400) << raw;
  // Nothing was deleted; well-formed UTF-8 still passes through, decoded.
  EXPECT_EQ(Get("/v1/clusters/hohhot-dairy", gov_).status, 200);
  Response utf8 = Get(absl::StrCat("/v1/clusters?filter=",
                                   Escape("display_name_zh = \"呼和浩特乳制品先进制造业集群\"")),
                      gov_);
  ASSERT_EQ(utf8.status, 200) << utf8;
  EXPECT_THAT(utf8.body, HasSubstr("clusters/hohhot-dairy"));
}

TEST_F(GatewayTest, BodyLimitIs413AndTheServerStaysUsable) {
  GatewayConfig config = DefaultConfig();
  config.http.max_body_bytes = 2048;
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));
  std::string big = absl::StrCat(R"({"displayNameZh":")", std::string(4096, 'x'), R"("})");
  Response r = Http("POST", "/v1/clusters?clusterId=big", big, gov_, {{"Origin", "https://app.example.gov.cn"}});
  ASSERT_EQ(r.status, 413) << r;
  EXPECT_EQ(ParseError(r).code, 8);
  EXPECT_EQ(r.Header("access-control-allow-origin"), "https://app.example.gov.cn");
  EXPECT_FALSE(r.Header("x-request-id").empty());

  // Chunked, with no length up front.
  HttpConnection conn(port_);
  std::string chunked = absl::StrCat(
      "POST /v1/clusters?clusterId=big HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ",
      gov_, "\r\n\r\n");
  for (int i = 0; i < 4; ++i) absl::StrAppend(&chunked, "400\r\n", std::string(1024, ' '), "\r\n");
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(conn.Send(chunked));
  EXPECT_EQ(conn.Read().status, 413);

  EXPECT_EQ(Get("/v1/clusters/hohhot-dairy", gov_).status, 200);
}

TEST_F(GatewayTest, UnknownRoutesAre404AndWrongMethods405) {
  for (const char* path : {"/v1/nothing", "/v1/clusters/a/b/c", "/v2/clusters", "/", "/v1/clusters/"}) {
    Response r = Get(path, gov_);
    EXPECT_EQ(r.status, 404) << path << " " << r;
    EXPECT_EQ(ParseError(r).code, 5) << path;
  }
  Response put = Http("PUT", "/v1/clusters/hohhot-dairy", "{}", gov_);
  ASSERT_EQ(put.status, 405) << put;
  EXPECT_EQ(put.Header("allow"), "GET, PATCH, DELETE");
  Response get_verb = Get("/v1/clusters/hohhot-dairy:undelete", gov_);
  ASSERT_EQ(get_verb.status, 405) << get_verb;
  EXPECT_EQ(get_verb.Header("allow"), "POST");
  EXPECT_EQ(Http("POST", "/healthz", "{}").status, 405);
}

// ------------------------------------------------------------------ headers

TEST_F(GatewayTest, CorsPreflightAndResponses) {
  Response pre = Http("OPTIONS", "/v1/clusters/hohhot-dairy", "", "",
                      {{"Origin", "https://app.example.gov.cn"},
                       {"Access-Control-Request-Method", "PATCH"},
                       {"Access-Control-Request-Headers", "authorization, content-type, if-match"}});
  ASSERT_EQ(pre.status, 204) << pre;
  EXPECT_EQ(pre.Header("access-control-allow-origin"), "https://app.example.gov.cn");
  EXPECT_THAT(pre.Header("access-control-allow-methods"), HasSubstr("PATCH"));
  EXPECT_THAT(pre.Header("access-control-allow-methods"), HasSubstr("GET"));
  EXPECT_THAT(pre.Header("access-control-allow-headers"), HasSubstr("authorization"));
  EXPECT_THAT(pre.Header("access-control-allow-headers"), HasSubstr("if-match"));
  EXPECT_FALSE(pre.Header("access-control-max-age").empty());

  Response foreign = Http("OPTIONS", "/v1/clusters/hohhot-dairy", "", "",
                          {{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "DELETE"}});
  EXPECT_EQ(foreign.status, 403) << foreign;
  EXPECT_FALSE(foreign.Has("access-control-allow-origin"));
  EXPECT_EQ(Http("OPTIONS", "/v1/nowhere", "", "",
                 {{"Origin", "https://app.example.gov.cn"}, {"Access-Control-Request-Method", "GET"}})
                .status,
            404);

  Response actual = Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"Origin", "https://app.example.gov.cn"}});
  ASSERT_EQ(actual.status, 200);
  EXPECT_EQ(actual.Header("access-control-allow-origin"), "https://app.example.gov.cn");
  EXPECT_THAT(actual.Header("access-control-expose-headers"), HasSubstr("x-request-id"));
  EXPECT_THAT(actual.Header("vary"), HasSubstr("Origin"));
  Response other = Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"Origin", "https://evil.example.com"}});
  EXPECT_FALSE(other.Has("access-control-allow-origin"));
}

TEST_F(GatewayTest, RequestIdsAndSecurityHeaders) {
  Response given = Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"X-Request-Id", "client-req-42"}});
  EXPECT_EQ(given.Header("x-request-id"), "client-req-42");
  Response generated = Get("/v1/clusters/hohhot-dairy", gov_);
  EXPECT_TRUE(std::regex_match(generated.Header("x-request-id"), std::regex("[0-9a-f]{32}")))
      << generated.Header("x-request-id");
  Response junk = Http("GET", "/v1/clusters/hohhot-dairy", "", gov_, {{"X-Request-Id", "has spaces; and \"quotes\""}});
  EXPECT_TRUE(std::regex_match(junk.Header("x-request-id"), std::regex("[0-9a-f]{32}")));
  // Errors carry them too.
  Response error = Http("GET", "/v1/nothing", "", "", {{"X-Request-Id", "client-req-43"}});
  EXPECT_EQ(error.Header("x-request-id"), "client-req-43");
  for (const Response* r : {&given, &error}) {
    EXPECT_EQ(r->Header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r->Header("x-frame-options"), "DENY");
    EXPECT_THAT(r->Header("content-security-policy"), HasSubstr("default-src 'none'"));
    EXPECT_EQ(r->Header("cache-control"), "no-store");
    EXPECT_EQ(r->Header("referrer-policy"), "no-referrer");
  }
}

// ------------------------------------------------------------------ the web console's files

class ConsoleFilesTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    site_ = std::make_unique<testing::TempDir>();
    std::filesystem::create_directories(site_->File("console/assets"));
    Write("console/index.html", kIndex);
    Write("console/assets/index-3f9a1c2b.js", "console.log('app');");
    Write("console/assets/index-77aa01ee.css", "body{margin:0}");
    Write("console/favicon.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    Write("secret.txt", "outside the console directory");
    GatewayConfig config = DefaultConfig();
    config.console_dir = site_->File("console");
    ASSERT_NO_FATAL_FAILURE(StartGateway(std::move(config)));
  }

  void Write(const std::string& name, const std::string& content) {
    std::ofstream out(site_->File(name), std::ios::binary);
    out << content;
  }

  static constexpr char kIndex[] = "<!doctype html><title>console</title><div id=app></div>";
  std::unique_ptr<testing::TempDir> site_;
};

TEST_F(ConsoleFilesTest, FilesHaveTheirTypesCachingAndThePagesPolicy) {
  Response index = Get("/", "");
  ASSERT_EQ(index.status, 200) << index;
  EXPECT_EQ(index.body, kIndex);
  EXPECT_EQ(index.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.Header("cache-control"), "no-cache");
  EXPECT_EQ(index.Header("content-security-policy"),
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'");
  EXPECT_THAT(index.Header("content-security-policy"), Not(HasSubstr("unsafe-inline")));
  EXPECT_EQ(index.Header("x-frame-options"), "DENY");
  EXPECT_EQ(index.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(index.Header("referrer-policy"), "no-referrer");
  ASSERT_FALSE(index.Header("etag").empty());
  EXPECT_EQ(Get("/index.html", "").body, kIndex);

  // index.html is revalidated: a matching validator is 304 without a body.
  Response again = Http("GET", "/", "", "", {{"If-None-Match", index.Header("etag")}});
  EXPECT_EQ(again.status, 304) << again;
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(Http("GET", "/", "", "", {{"If-None-Match", "\"other\""}}).status, 200);

  Response js = Get("/assets/index-3f9a1c2b.js", "");
  ASSERT_EQ(js.status, 200) << js;
  EXPECT_EQ(js.body, "console.log('app');");
  EXPECT_EQ(js.Header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.Header("cache-control"), "public, max-age=31536000, immutable");
  Response css = Get("/assets/index-77aa01ee.css", "");
  EXPECT_EQ(css.Header("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(css.Header("cache-control"), "public, max-age=31536000, immutable");
  Response svg = Get("/favicon.svg", "");
  EXPECT_EQ(svg.Header("content-type"), "image/svg+xml");
  EXPECT_EQ(svg.Header("cache-control"), "no-cache");
  EXPECT_EQ(StaticFiles::ContentType("font.woff2"), "font/woff2");
  EXPECT_EQ(StaticFiles::ContentType("data.bin"), "application/octet-stream");
}

TEST_F(ConsoleFilesTest, ClientRoutesFallBackToIndexWhileTheApiStaysJson) {
  for (const char* route : {"/clusters/hohhot-dairy", "/reviews/support", "/dashboard?lang=en"}) {
    Response r = Get(route, "");
    EXPECT_EQ(r.status, 200) << route << " " << r;
    EXPECT_EQ(r.body, kIndex) << route;
    EXPECT_EQ(r.Header("cache-control"), "no-cache") << route;
  }
  // A missing file is not the application: 404, never HTML cached for a year.
  for (const char* missing : {"/assets/index-00000000.js", "/robots.txt", "/assets/"}) {
    Response r = Get(missing, "");
    EXPECT_EQ(r.status, 404) << missing << " " << r;
    EXPECT_EQ(ParseError(r).code, 5) << missing;
    EXPECT_EQ(r.Header("cache-control"), "no-store") << missing;
  }
  // The API and the built-in endpoints are unchanged.
  for (const char* api : {"/v1/nothing", "/v1", "/v1/"}) {
    Response r = Get(api, gov_);
    EXPECT_EQ(r.status, 404) << api << " " << r;
    EXPECT_EQ(ParseError(r).code, 5) << api;
    EXPECT_THAT(r.Header("content-security-policy"), HasSubstr("default-src 'none'")) << api;
  }
  Response cluster = Get("/v1/clusters/hohhot-dairy", gov_);
  EXPECT_EQ(cluster.status, 200) << cluster;
  EXPECT_EQ(cluster.Header("cache-control"), "no-store");
  EXPECT_EQ(Get("/healthz", "").body, R"({"status":"ok"})");
  EXPECT_EQ(Get("/openapi.json", "").Header("content-type"), "application/json");
  // Only GET: the console is read-only.
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    Response r = Http(method, "/clusters", "", "");
    EXPECT_EQ(r.status, 405) << method << " " << r;
    EXPECT_EQ(r.Header("allow"), "GET") << method;
  }
}

TEST_F(ConsoleFilesTest, PathsThatTryToLeaveTheDirectoryAreRefused) {
  for (const char* path : {"/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt",
                           "/assets/%2E%2E/%2E%2E/secret.txt", "/./index.html", "/assets/..%5c..%5csecret.txt",
                           "/index.html%00.js"}) {
    Response r = Get(path, "");
    EXPECT_EQ(r.status, 400) << path << " " << r;
    EXPECT_THAT(r.body, Not(HasSubstr("outside the console directory"))) << path;
  }
  // Only files under the directory exist; nothing else is reachable by any name.
  Response r = Get("/secret.txt", "");
  EXPECT_EQ(r.status, 404) << r;
}

TEST_F(ConsoleFilesTest, ADirectoryWithoutIndexOrMissingStopsTheGatewayAtStartup) {
  GatewayConfig missing = DefaultConfig();
  missing.console_dir = site_->File("nowhere");
  auto gw = Gateway::Create(std::move(missing));
  ASSERT_FALSE(gw.ok());
  EXPECT_THAT(std::string(gw.status().message()), HasSubstr("not a directory"));

  std::filesystem::create_directories(site_->File("empty"));
  GatewayConfig no_index = DefaultConfig();
  no_index.console_dir = site_->File("empty");
  gw = Gateway::Create(std::move(no_index));
  ASSERT_FALSE(gw.ok());
  EXPECT_THAT(std::string(gw.status().message()), HasSubstr("index.html"));

  GatewayConfig too_big = DefaultConfig();
  too_big.console_dir = site_->File("console");
  too_big.console_max_bytes = 16;
  gw = Gateway::Create(std::move(too_big));
  ASSERT_FALSE(gw.ok());
  EXPECT_THAT(std::string(gw.status().message()), HasSubstr("more than 16 bytes"));
}

TEST_F(GatewayTest, KeepAliveAndPipelinedRequestsAnswerInOrder) {
  HttpConnection conn(port_);
  std::string two =
      absl::StrCat(RawRequest("GET", "/v1/clusters/hohhot-dairy", "", {{"Authorization", "Bearer " + gov_}}),
                   RawRequest("GET", "/v1/clusters/hydrogen", "", {{"Authorization", "Bearer " + gov_}}),
                   RawRequest("GET", "/healthz", "", {}));
  ASSERT_TRUE(conn.Send(two));
  Response a = conn.Read();
  Response b = conn.Read();
  Response c = conn.Read();
  ASSERT_EQ(a.status, 200) << a;
  ASSERT_EQ(b.status, 200) << b;
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(a.body).name(), "clusters/hohhot-dairy");
  EXPECT_EQ(FromJson<clusters::v1::Cluster>(b.body).name(), "clusters/hydrogen");
  EXPECT_EQ(c.status, 200);
  // Still open for more.
  ASSERT_TRUE(conn.Send(RawRequest("GET", "/healthz", "", {})));
  EXPECT_EQ(conn.Read().status, 200);

  // Many concurrent connections, served by two I/O threads.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      HttpConnection c(port_);
      for (int k = 0; k < 10; ++k) {
        if (!c.Send(RawRequest("GET", "/v1/clusters/hohhot-dairy", "", {{"Authorization", "Bearer " + gov_}}))) return;
        if (c.Read().status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 160);
}

TEST_F(GatewayTest, AnOversizedAuthorizationIs401AndOtherCallersAreUnaffected) {
  const std::string huge = std::string(10 * 1024, 'a');
  Response once = Get("/v1/clusters/hohhot-dairy", huge);
  ASSERT_EQ(once.status, 401) << once;
  ErrorBody e = ParseError(once);
  EXPECT_EQ(e.code, 16);
  EXPECT_THAT(e.message, HasSubstr("Authorization header longer than"));

  // The offender sends its token over and over while others use the same gateway (and so the
  // same backend connection): only the offender is refused.
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0}, offender_other{0};
  std::thread offender([&] {
    HttpConnection c(port_);
    while (!stop.load()) {
      if (!c.Send(RawRequest("GET", "/v1/clusters/hohhot-dairy", "", {{"Authorization", "Bearer " + huge}}))) break;
      Response r = c.Read();
      (r.status == 401 ? refused : offender_other)++;
      if (r.status != 401) break;
    }
  });
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> failures;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      HttpConnection c(port_);
      for (int k = 0; k < 40; ++k) {
        if (!c.Send(RawRequest("GET", "/v1/clusters/hohhot-dairy", "", {{"Authorization", "Bearer " + gov_}}))) return;
        Response r = c.Read();
        if (r.status == 200) {
          ++ok;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(absl::StrCat(r.status, " ", r.body.substr(0, 200)));
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  stop.store(true);
  offender.join();
  EXPECT_EQ(ok.load(), 160) << (failures.empty() ? "" : failures.front());
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(offender_other.load(), 0);

  // Refused before any backend call: with the backend down it is still 401, not 503.
  StopClusters();
  Response down = Get("/v1/clusters/hohhot-dairy", huge);
  EXPECT_EQ(down.status, 401) << down;
}

TEST_F(GatewayTest, RateLimitPerClientAnswers429WithRetryAfter) {
  GatewayConfig config = DefaultConfig();
  config.rate_limit_rps = 1;
  config.rate_limit_burst = 3;
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));
  std::vector<int> statuses;
  Response limited;
  for (int i = 0; i < 5; ++i) {
    Response r = Get("/v1/clusters/hohhot-dairy", gov_);
    statuses.push_back(r.status);
    if (r.status == 429) limited = r;
  }
  EXPECT_THAT(statuses, ElementsAre(200, 200, 200, 429, 429));
  ASSERT_EQ(limited.status, 429);
  int retry_after = 0;
  ASSERT_TRUE(absl::SimpleAtoi(limited.Header("retry-after"), &retry_after)) << limited;
  EXPECT_GE(retry_after, 1);
  EXPECT_EQ(ParseError(limited).code, 8);
  // Probes are not limited.
  EXPECT_EQ(Get("/healthz", "").status, 200);
  absl::SleepFor(absl::Seconds(retry_after));
  EXPECT_EQ(Get("/v1/clusters/hohhot-dairy", gov_).status, 200);
}

// ------------------------------------------------------------------ backends

TEST_F(GatewayTest, AStoppedBackendIs503AndTheGatewayRecoversWhenItReturns) {
  ASSERT_EQ(Get("/v1/clusters/hohhot-dairy", gov_).status, 200);
  ASSERT_EQ(Get("/readyz", "").status, 200);
  int port = clusters_port_;
  StopClusters();

  Response down = Get("/v1/clusters/hohhot-dairy", gov_);
  ASSERT_EQ(down.status, 503) << down;
  EXPECT_EQ(ParseError(down).code, 14);
  Response not_ready = Get("/readyz", "");
  EXPECT_EQ(not_ready.status, 503) << not_ready;
  EXPECT_THAT(not_ready.body, HasSubstr(kClustersService));
  EXPECT_EQ(Get("/healthz", "").status, 200);  // the gateway itself is fine

  ASSERT_NO_FATAL_FAILURE(StartClusters(port));  // same port, same database
  int status = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    status = Get("/v1/clusters/hohhot-dairy", gov_).status;
    if (status == 200) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(Get("/readyz", "").status, 200);
}

TEST_F(GatewayTest, RoundRobinOverSeveralAddressesAndAServiceWithoutBackend) {
  // A second clusters server on the same database.
  testing::ClustersServer second;
  auto second_started = second.Start(Config("clusters", "clusters.db"), seed_, /*load_seed=*/false);
  ASSERT_TRUE(second_started.ok()) << second_started;

  GatewayConfig config = DefaultConfig();
  config.backends = {
      {kClustersService, {absl::StrCat("127.0.0.1:", clusters_port_), second.address()}}};
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Get("/v1/keyTasks", gov_).status, 200);
  auto handled = [](server::Runtime& rt) {
    double total = 0;
    for (const auto& family : rt.metrics().registry().Collect()) {
      if (family.name != "grpc_server_handled_total") continue;
      for (const auto& m : family.metric) {
        for (const auto& l : m.label) {
          if (l.name == "grpc_method" && l.value == "ListKeyTasks") total += m.counter.value;
        }
      }
    }
    return total;
  };
  EXPECT_GT(handled(clusters_.runtime()), 0);
  EXPECT_GT(handled(second.runtime()), 0);
  EXPECT_EQ(handled(clusters_.runtime()) + handled(second.runtime()), 20);

  // One address gone: the other serves.
  second.runtime().Shutdown();
  int ok = 0;
  for (int i = 0; i < 10; ++i) ok += Get("/v1/keyTasks", gov_).status == 200;
  EXPECT_GE(ok, 9);

  // Routes of a service with no configured backend answer 503 naming it.
  Response none = Get("/v1/pools", gov_);
  EXPECT_EQ(none.status, 503) << none;
  EXPECT_THAT(ParseError(none).message, HasSubstr(kSupportService));
}

TEST_F(GatewayTest, EnterprisesAndSupportRoutesNeedNoGatewayCode) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprisesAndSupport());
  GatewayConfig config = DefaultConfig();
  config.backends.push_back({kEnterprisesService, {enterprises_.address()}});
  config.backends.push_back({kSupportService, {support_.address()}});
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));

  Response list = Get("/v1/enterprises?pageSize=2", gov_);
  ASSERT_EQ(list.status, 200) << list;
  auto page = FromJson<enterprises::v1::ListEnterprisesResponse>(list.body);
  ASSERT_EQ(page.enterprises_size(), 2);
  Response one = Get(absl::StrCat("/v1/", page.enterprises(0).name()), gov_);
  ASSERT_EQ(one.status, 200) << one;
  EXPECT_EQ(FromJson<enterprises::v1::Enterprise>(one.body).name(), page.enterprises(0).name());
  Response members = Get("/v1/clusters/hohhot-dairy/members", gov_);
  EXPECT_EQ(members.status, 200) << members;
  Response rules = Get("/v1/certificationRules", gov_);
  EXPECT_EQ(rules.status, 200) << rules;
  Response pools = Get("/v1/pools", gov_);
  EXPECT_EQ(pools.status, 200) << pools;
  Response missing = Get("/v1/enterprises/911501000000000000", gov_);
  EXPECT_THAT(missing.status, ::testing::AnyOf(400, 404)) << missing;

  Response ready = Get("/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready;
  EXPECT_THAT(ready.body, HasSubstr(kEnterprisesService));
  EXPECT_THAT(ready.body, HasSubstr(kSupportService));
}

TEST_F(GatewayTest, ClusterIndicatorsAndStrengthRouteByTheirAnnotations) {
  ASSERT_NO_FATAL_FAILURE(StartEnterprisesAndSupport());
  GatewayConfig config = DefaultConfig();
  config.backends.push_back({kEnterprisesService, {enterprises_.address()}});
  config.backends.push_back({kSupportService, {support_.address()}});
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));

  Response ent = Get("/v1/clusters/hohhot-dairy/enterpriseIndicators?year=2026", gov_);
  ASSERT_EQ(ent.status, 200) << ent;
  auto set = FromJson<common::v1::ClusterIndicators>(ent.body);
  EXPECT_EQ(set.cluster(), "clusters/hohhot-dairy");
  EXPECT_EQ(set.year(), 2026);
  EXPECT_THAT(ent.body, HasSubstr("\"key\":\"enterprises.members.lead_enterprise\""));
  EXPECT_THAT(ent.body, HasSubstr("\"dimension\":\"DIMENSION_SCALE\""));
  Response sup = Get("/v1/clusters/hohhot-dairy/supportIndicators?year=2026", gov_);
  ASSERT_EQ(sup.status, 200) << sup;
  EXPECT_THAT(sup.body, HasSubstr("support.allocated.land"));
  Response strength = Get("/v1/clusters/hohhot-dairy/strength", gov_);
  ASSERT_EQ(strength.status, 200) << strength;
  EXPECT_EQ(FromJson<enterprises::v1::ClusterStrength>(strength.body).regions_size(), 12);
  EXPECT_THAT(strength.body, HasSubstr("\"region\":\"150100\""));
  // The field named in the error body; a role that may not read.
  Response bad = Get("/v1/clusters/hohhot-dairy/enterpriseIndicators?year=1999", gov_);
  EXPECT_EQ(bad.status, 400) << bad;
  EXPECT_THAT(bad.body, HasSubstr("\"year\""));
  const std::string enterprise = testing::MakeToken("e", "enterprises/911501007014567890", {"enterprise"});
  EXPECT_EQ(Get("/v1/clusters/hohhot-dairy/strength", enterprise).status, 403);
}

// ------------------------------------------------------------------ ops

TEST_F(GatewayTest, HealthzReadyzAndMetricsByRouteTemplate) {
  GatewayConfig config = DefaultConfig();
  config.metrics_listen = "127.0.0.1:0";
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));
  Response health = Get("/healthz", "");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  Response ready = Get("/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready;
  EXPECT_THAT(ready.body, HasSubstr("SERVING"));

  ASSERT_EQ(Get("/v1/clusters/hohhot-dairy", gov_).status, 200);
  ASSERT_EQ(Get("/v1/clusters/hydrogen", gov_).status, 200);
  ASSERT_EQ(Get("/v1/clusters/nope", gov_).status, 404);
  auto scraped = testing::HttpGet(gateway_->metrics_port(), "/metrics");
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_THAT(*scraped, HasSubstr(R"(http_requests_total{code="200",method="GET",route="/v1/{name=clusters/*}"} 2)"));
  EXPECT_THAT(*scraped, HasSubstr(R"(http_requests_total{code="404",method="GET",route="/v1/{name=clusters/*}"} 1)"));
  EXPECT_THAT(*scraped,
              HasSubstr(R"(http_request_duration_seconds_bucket{method="GET",route="/v1/{name=clusters/*}")"));
  EXPECT_THAT(*scraped,
              HasSubstr(R"(http_request_duration_seconds_count{method="GET",route="/v1/{name=clusters/*}"} 3)"));
  EXPECT_THAT(*scraped, Not(HasSubstr("hohhot-dairy")));  // templates, never raw paths
}

TEST_F(GatewayTest, DeadlinesAre504AndShutdownDrainsRequestsInFlight) {
  // A backend that completes the HTTP/2 handshake (an empty SETTINGS frame) and then never answers:
  // calls to it end at their deadline.
  int hole = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(hole, 64), 0);
  socklen_t len = sizeof(addr);
  getsockname(hole, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<std::thread> silent;
  std::thread acceptor([&] {
    while (true) {
      int fd = accept(hole, nullptr, nullptr);
      if (fd < 0) return;
      silent.emplace_back([fd] {
        const char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
        if (send(fd, settings, sizeof(settings), MSG_NOSIGNAL) == sizeof(settings)) {
          char buf[4096];
          while (recv(fd, buf, sizeof(buf), 0) > 0) {
          }
        }
        close(fd);
      });
    }
  });
  GatewayConfig config = DefaultConfig();
  config.backends.push_back({kSupportService, {absl::StrCat("127.0.0.1:", ntohs(addr.sin_port))}});
  config.backend_timeout = absl::Milliseconds(1500);
  config.pre_stop_delay = absl::Milliseconds(500);
  config.drain_timeout = absl::Seconds(5);
  ASSERT_NO_FATAL_FAILURE(StartGateway(config));

  absl::Time start = absl::Now();
  Response slow = Get("/v1/pools", gov_);
  ASSERT_EQ(slow.status, 504) << slow;
  EXPECT_EQ(ParseError(slow).code, 4);  // DEADLINE_EXCEEDED
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1400));

  // A request in flight when SIGTERM's shutdown starts is still answered.
  Response in_flight;
  std::thread client([&] {
    HttpConnection c(port_);
    if (c.Send(RawRequest("GET", "/v1/pools", "", {{"Authorization", "Bearer " + gov_}}))) in_flight = c.Read();
  });
  absl::SleepFor(absl::Milliseconds(300));
  std::thread stopper([&] { gateway_->Shutdown(); });
  absl::SleepFor(absl::Milliseconds(150));
  // During the pre-stop delay: not ready, still alive, still serving.
  HttpConnection probe(port_);
  ASSERT_TRUE(probe.connected());
  ASSERT_TRUE(probe.Send(RawRequest("GET", "/readyz", "", {})));
  Response ready = probe.Read();
  EXPECT_EQ(ready.status, 503) << ready;
  EXPECT_THAT(ready.body, HasSubstr("draining"));
  client.join();
  stopper.join();
  EXPECT_EQ(in_flight.status, 504) << in_flight;
  shutdown(hole, SHUT_RDWR);
  close(hole);
  acceptor.join();
  gateway_.reset();  // closes its channels, so the silent connections end
  for (auto& t : silent) t.join();

  // Stopped: nothing answers any more.
  HttpConnection after(port_);
  EXPECT_FALSE(after.connected() && after.Send(RawRequest("GET", "/healthz", "", {})) && after.Read().status == 200);
}

// ------------------------------------------------------------------ OpenAPI

TEST_F(GatewayTest, OpenApiDocumentValidatesWithTheRealValidator) {
  std::string out;
  // scripts/install-deps.sh installs Node.js: a missing one is a broken setup, not a reason to skip.
  ASSERT_EQ(testing::RunCommand("command -v node", &out), 0) << "node is not installed (scripts/install-deps.sh)";

  Response doc = Get("/openapi.json", "");
  ASSERT_EQ(doc.status, 200);
  EXPECT_THAT(doc.body, HasSubstr(R"("openapi":"3.0.3")"));
  for (const char* expected :
       {R"("/v1/clusters/{clusterId}":{)", R"("/v1/clusters/{clusterId}:undelete")",
        R"("/v1/clusters/{clusterId}/taskProgress/{taskProgressId}")", R"("/v1/targetProgress/{targetYear}")",
        R"("clustergov.clusters.v1.Cluster":{)", R"("clustergov.common.v1.Tier":{"type":"string","enum":[)",
        R"("google.rpc.Status":{)", R"("name":"updateMask","in":"query")",
        R"("operationId":"ClustersService_GetCluster")"}) {
    EXPECT_THAT(doc.body, HasSubstr(expected));
  }
  testing::TempDir dir;
  std::string file = dir.File("openapi.json");
  std::ofstream(file) << doc.body;

  // The validator, installed once into the build directory (the npm registry is reachable).
  std::string npm_dir = testing::BinaryPath("gateway-openapi-validator");
  std::string module = npm_dir + "/node_modules/@apidevtools/swagger-parser";
  if (testing::RunCommand(absl::StrCat("test -d '", module, "'"), &out) != 0) {
    int rc = testing::RunCommand(absl::StrCat("mkdir -p '", npm_dir, "' && cd '", npm_dir,
                                              "' && npm install --no-audit --no-fund --loglevel=error "
                                              "@apidevtools/swagger-parser@10 2>&1"),
                                 &out);
    ASSERT_EQ(rc, 0) << "npm install @apidevtools/swagger-parser failed:\n" << out;
  }
  std::string script = absl::StrCat("require('", module, "').validate('", file,
                                    "').then(api => console.log('VALID ' + Object.keys(api.paths).length))"
                                    ".catch(e => { console.error('INVALID ' + e.message); process.exit(1); })");
  int rc = testing::RunCommand(absl::StrCat("node -e \"", script, "\""), &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("VALID "));

  // And a broken document is refused by the same check: the validator really runs.
  std::ofstream(dir.File("broken.json"))
      << R"({"openapi":"3.0.3","info":{"title":"x"},"paths":{"/a/{id}":{"get":{}}}})";
  std::string broken = absl::StrCat("require('", module, "').validate('", dir.File("broken.json"),
                                    "').then(() => console.log('VALID')).catch(e => { console.error('INVALID'); "
                                    "process.exit(1); })");
  EXPECT_NE(testing::RunCommand(absl::StrCat("node -e \"", broken, "\""), &out), 0) << out;
}

// The member at `path` ("paths", "/v1/clusters/{clusterId}", "get") of a JSON document, or null.
const google::protobuf::Value* At(const google::protobuf::Value& doc, const std::vector<std::string>& path) {
  const google::protobuf::Value* v = &doc;
  for (const auto& key : path) {
    if (!v->has_struct_value()) return nullptr;
    auto it = v->struct_value().fields().find(key);
    if (it == v->struct_value().fields().end()) return nullptr;
    v = &it->second;
  }
  return v;
}

// The $refs of an operation's parameters.
std::vector<std::string> ParameterRefs(const google::protobuf::Value& doc, const std::string& path,
                                       const std::string& method) {
  std::vector<std::string> refs;
  const auto* params = At(doc, {"paths", path, method, "parameters"});
  if (params == nullptr) return refs;
  for (const auto& p : params->list_value().values()) {
    if (const auto* ref = At(p, {"$ref"})) refs.push_back(ref->string_value());
  }
  return refs;
}

TEST_F(GatewayTest, OpenApiDeclaresTheConditionalRequestsTheGatewayServes) {
  Response r = Get("/openapi.json", "");
  ASSERT_EQ(r.status, 200);
  google::protobuf::Value doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &doc).ok());
  const std::string if_match = "#/components/parameters/IfMatch";
  const std::string if_none_match = "#/components/parameters/IfNoneMatch";
  const std::string etag_header = "#/components/headers/ETag";

  // GetCluster: If-None-Match, the ETag header on 200 and a 304 without a body.
  const std::string cluster = "/v1/clusters/{clusterId}";
  EXPECT_THAT(ParameterRefs(doc, cluster, "get"), Contains(if_none_match));
  EXPECT_THAT(ParameterRefs(doc, cluster, "get"), Not(Contains(if_match)));
  const auto* ok_etag = At(doc, {"paths", cluster, "get", "responses", "200", "headers", "ETag", "$ref"});
  ASSERT_NE(ok_etag, nullptr);
  EXPECT_EQ(ok_etag->string_value(), etag_header);
  const auto* not_modified = At(doc, {"paths", cluster, "get", "responses", "304"});
  ASSERT_NE(not_modified, nullptr);
  EXPECT_EQ(At(*not_modified, {"content"}), nullptr);
  EXPECT_NE(At(*not_modified, {"headers", "ETag"}), nullptr);
  // UpdateCluster and DeleteCluster take If-Match; they answer the new ETag but no 304.
  for (const char* method : {"patch", "delete"}) {
    EXPECT_THAT(ParameterRefs(doc, cluster, method), Contains(if_match)) << method;
    EXPECT_THAT(ParameterRefs(doc, cluster, method), Not(Contains(if_none_match))) << method;
    EXPECT_NE(At(doc, {"paths", cluster, method, "responses", "200", "headers", "ETag"}), nullptr) << method;
    EXPECT_EQ(At(doc, {"paths", cluster, method, "responses", "304"}), nullptr) << method;
  }
  // ListClusters and CreateCluster have no etag to compare.
  EXPECT_THAT(ParameterRefs(doc, "/v1/clusters", "get"), Not(Contains(if_none_match)));
  EXPECT_EQ(At(doc, {"paths", "/v1/clusters", "get", "responses", "304"}), nullptr);
  EXPECT_THAT(ParameterRefs(doc, "/v1/clusters", "post"), Not(Contains(if_match)));

  // The components they refer to.
  const auto* p = At(doc, {"components", "parameters", "IfMatch"});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(At(*p, {"name"})->string_value(), "If-Match");
  EXPECT_EQ(At(*p, {"in"})->string_value(), "header");
  p = At(doc, {"components", "parameters", "IfNoneMatch"});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(At(*p, {"name"})->string_value(), "If-None-Match");
  EXPECT_EQ(At(*p, {"in"})->string_value(), "header");
  EXPECT_NE(At(doc, {"components", "headers", "ETag", "schema"}), nullptr);
}

// ------------------------------------------------------------------ the binary

TEST_F(GatewayTest, TheBinaryServesFromFlagsAndStopsOnSigterm) {
  int port = testing::FreePort();
  testing::TempDir dir;
  testing::Process gw(
      {testing::BinaryPath("services/gateway/clustergov-gateway"), absl::StrCat("--listen=127.0.0.1:", port),
       "--metrics_listen=off", absl::StrCat("--descriptor_set=", CLUSTERGOV_DESCRIPTOR_SET),
       absl::StrCat("--backend=", kClustersService, "=127.0.0.1:", clusters_port_), "--backend",
       absl::StrCat(kEnterprisesService, "=127.0.0.1:", testing::FreePort()),
       "--cors_origins=https://a.example,https://b.example", "--io_threads=2"},
      dir.File("gateway.log"));
  Response r;
  for (int i = 0; i < 100 && r.status == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    HttpConnection c(port);
    if (c.connected() && c.Send(RawRequest("GET", "/v1/clusters/hohhot-dairy", "",
                                           {{"Authorization", "Bearer " + gov_}, {"X-Request-Id", "binary-req-1"}}))) {
      r = c.Read();
    }
  }
  ASSERT_EQ(r.status, 200) << r << "\n" << gw.Log();
  // Both --backend flags count; the request is logged with its id.
  EXPECT_THAT(gw.Log(), HasSubstr(absl::StrCat("\"backends\":\"", kClustersService, ",", kEnterprisesService, "\"")));
  EXPECT_THAT(gw.Log(), HasSubstr("\"request_id\":\"binary-req-1\""));
  gw.Signal(SIGTERM);
  EXPECT_EQ(gw.Wait(10000), 0) << gw.Log();
  EXPECT_THAT(gw.Log(), HasSubstr("\"msg\":\"stopped\""));

  testing::Process bad({testing::BinaryPath("services/gateway/clustergov-gateway"), "--listen=127.0.0.1:0",
                        "--metrics_listen=off", "--backend=nonsense"},
                       dir.File("bad.log"));
  EXPECT_EQ(bad.Wait(10000), 1);
  EXPECT_THAT(bad.Log(), HasSubstr("--backend"));
}

}  // namespace
}  // namespace clustergov::gateway

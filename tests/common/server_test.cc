// The server core (common/server, common/metrics, common/auth) at its edges, through a real
// service: the clusters service in-process on a loopback port with its SQLite file, called over
// real gRPC channels (MakeChannel's, as the services and the gateway make them, and a plain
// default channel, as an outside client makes it). The cache is off: Redis plays no part here.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "common/auth/auth.h"
#include "common/server/client.h"
#include "common/server/config.h"
#include "common/server/grpc_status.h"
#include "common/server/interceptors.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "services/clusters/seed.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using Stub = clusters::v1::ClustersService::Stub;

constexpr char kGetCluster[] = "/clustergov.clusters.v1.ClustersService/GetCluster";

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Lines of series (samples) of the gRPC server families in a /metrics exposition.
std::vector<std::string> GrpcSeries(const std::string& exposition) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::StartsWith(line, "grpc_server_")) out.emplace_back(line);
  }
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    server::CommonConfig config = Config("clusters");
    config.server.metrics_listen = "127.0.0.1:0";
    config.auth.leeway_seconds = 0;  // an expired token is refused at once
    ASSERT_TRUE(clusters_.Start(config, *seed).ok());
    channel_ = server::MakeChannel(clusters_.address());
    stub_ = clusters::v1::ClustersService::NewStub(channel_);
  }

  server::CommonConfig Config(const std::string& service) {
    server::CommonConfig config = testing::ServiceConfig(service, dir_.File(service + ".db"), /*redis_port=*/0);
    config.cache_enabled = false;
    return config;
  }

  // GetCluster as the bearer of `token` ("" sends no authorization).
  grpc::Status GetCluster(Stub* stub, const std::string& token, const std::string& id = "hohhot-dairy") {
    clusters::v1::GetClusterRequest req;
    req.set_name("clusters/" + id);
    clusters::v1::Cluster out;
    return testing::Invoke(stub, &Stub::GetCluster, token, req, &out);
  }

  // One unary call of `method` with `body` as the raw request bytes.
  grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::string& body, const std::string& token) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::ByteBuffer request = ToByteBuffer(body);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  std::string Scrape() {
    auto body = testing::HttpGet(clusters_.runtime().metrics_port(), "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return body.ok() ? *body : "";
  }

  testing::TempDir dir_;
  testing::ClustersServer clusters_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
  const std::string gov_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
};

// ------------------------------------------------------------------ oversized bearer tokens

// A token over the authenticator's limit but within the transport's reaches the service's own
// check: its caller gets UNAUTHENTICATED, and the calls sharing its connection go on.
TEST_F(ServerTest, OversizedBearerTokenFailsOnlyItsOwnCall) {
  ASSERT_TRUE(GetCluster(stub_.get(), gov_).ok());
  const std::string oversized = std::string(kMaxBearerTokenBytes + 2048, 'a');
  const std::string larger = std::string(3 * kMaxBearerTokenBytes, 'a');

  std::atomic<int> good_failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        grpc::Status s = GetCluster(stub_.get(), gov_);
        if (!s.ok()) {
          ++good_failures;
          ADD_FAILURE() << testing::Describe(s);
        }
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    for (const std::string* token : {&oversized, &larger}) {
      grpc::Status s = GetCluster(stub_.get(), *token);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << testing::Describe(s);
      EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("longer than ", kMaxBearerTokenBytes, " bytes")));
    }
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(good_failures.load(), 0);

  // The first call of a new connection (before the server's settings are known) and a client
  // with gRPC's default channel arguments: the same answer, and the connection stays usable.
  for (auto channel : {server::MakeChannel(clusters_.address()),
                       grpc::CreateChannel(clusters_.address(), grpc::InsecureChannelCredentials())}) {
    auto stub = clusters::v1::ClustersService::NewStub(channel);
    EXPECT_EQ(GetCluster(stub.get(), oversized).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(GetCluster(stub.get(), gov_).ok());
  }
}

// ------------------------------------------------------------------ bounded error messages

// A 64 KB value echoed by a validation message comes back abbreviated: INVALID_ARGUMENT naming the
// field, within the bounds, for an outside client with default limits too.
TEST_F(ServerTest, ErrorsEchoingAHugeValueAreBounded) {
  const std::string huge(64 * 1024, 'x');
  clusters::v1::CreateClusterRequest req;
  req.set_cluster_id("huge-echo");
  auto* c = req.mutable_cluster();
  c->set_display_name_zh("测试集群");
  c->set_display_name_en("Test cluster");
  c->set_industry("testing");
  c->set_target_tier(common::v1::Tier::TIER_REGION);
  c->set_target_year(2027);
  c->add_core_regions(huge);  // "unknown region \"<value>\""
  c->add_lead_departments("industry_it");
  c->add_chain_segments("上游");

  auto outside = clusters::v1::ClustersService::NewStub(
      grpc::CreateChannel(clusters_.address(), grpc::InsecureChannelCredentials()));
  for (Stub* stub : {stub_.get(), outside.get()}) {
    clusters::v1::Cluster out;
    grpc::Status s = testing::Invoke(stub, &Stub::CreateCluster, gov_, req, &out);
    ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << testing::Describe(s).substr(0, 300);
    EXPECT_LE(s.error_message().size(), server::kMaxStatusMessageBytes);
    EXPECT_THAT(s.error_message(), HasSubstr("cluster.core_regions[0]"));
    EXPECT_THAT(s.error_message(), HasSubstr(" bytes)"));
    EXPECT_THAT(testing::FieldsOf(s), Contains("cluster.core_regions[0]"));
    google::rpc::Status details;
    ASSERT_TRUE(details.ParseFromString(s.error_details()));
    EXPECT_LE(s.error_details().size(),
              server::kMaxStatusMessageBytes + server::kMaxViolationsBytes + 256);
  }

  // A name that is echoed by NOT_FOUND or INVALID_ARGUMENT: bounded as well.
  grpc::Status s = GetCluster(outside.get(), gov_, huge);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              s.error_code() == grpc::StatusCode::NOT_FOUND)
      << testing::Describe(s).substr(0, 300);
  EXPECT_LE(s.error_message().size(), server::kMaxStatusMessageBytes);
}

// ------------------------------------------------------------------ unparsable requests

// Bytes that do not parse as the method's request: INVALID_ARGUMENT with a message, for every
// method (the helper is in the server, before any handler), counted as such in the metrics.
TEST_F(ServerTest, UnparsableRequestsAreInvalidArgument) {
  clusters::v1::GetClusterRequest valid;
  valid.set_name("clusters/hohhot-dairy");
  const std::string bytes = valid.SerializeAsString();
  ASSERT_TRUE(RawCall(channel_, kGetCluster, bytes, gov_).ok());

  const std::string truncated = bytes.substr(0, bytes.size() - 5);
  const std::string bad_utf8 = std::string("\x0a\x03\xff\xfe\xfd", 5);  // name: 3 bytes, not UTF-8
  const std::string bad_tag = std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
  for (const std::string* body : {&truncated, &bad_utf8, &bad_tag}) {
    for (const char* method : {kGetCluster, "/clustergov.clusters.v1.ClustersService/CreateCluster"}) {
      // With and without a token: the request is refused before anything else.
      for (const std::string& token : {gov_, std::string()}) {
        grpc::Status s = RawCall(channel_, method, *body, token);
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << testing::Describe(s);
        EXPECT_EQ(s.error_message(), server::kMalformedRequestMessage);
      }
    }
  }
  // The connection is fine afterwards.
  EXPECT_TRUE(GetCluster(stub_.get(), gov_).ok());
  EXPECT_GE(testing::SampleValue(Scrape(), "grpc_server_handled_total",
                                 {"grpc_method=\"GetCluster\"", "grpc_code=\"InvalidArgument\""}),
            6);
}

// ------------------------------------------------------------------ metric cardinality

// Method names a client makes up add no series: they share one "unknown" set. Served methods,
// the health service's included, keep their own.
TEST_F(ServerTest, MadeUpMethodNamesAddNoSeries) {
  ASSERT_TRUE(GetCluster(stub_.get(), gov_).ok());
  const size_t before = GrpcSeries(Scrape()).size();

  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    std::string suffix = absl::StrCat(absl::Hex(rng()));
    names.push_back(i % 2 == 0 ? absl::StrCat("/made.up", suffix, ".Service/Method", suffix)
                               : absl::StrCat("/clustergov.clusters.v1.ClustersService/NoSuch", suffix));
    // Unauthenticated, as an attacker would.
    grpc::Status s = RawCall(channel_, names.back(), "", "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << names.back();
  }
  const std::string after = Scrape();
  const std::vector<std::string> series = GrpcSeries(after);
  // One "unknown" set at most: started + 17 codes + the histogram's 15 buckets, sum and count.
  EXPECT_LE(series.size(), before + 1 + 17 + 17) << after;
  for (const std::string& name : names) {
    EXPECT_THAT(after, ::testing::Not(HasSubstr(name.substr(name.rfind('/') + 1)))) << name;
  }
  EXPECT_GE(testing::SampleValue(after, "grpc_server_handled_total",
                                 {"grpc_service=\"unknown\"", "grpc_method=\"unknown\"", "grpc_code=\"Unimplemented\""}),
            5)
      << after;

  // Served methods keep their labels: a clusters method and the health service's Check.
  EXPECT_GE(testing::SampleValue(after, "grpc_server_handled_total", {"grpc_method=\"GetCluster\"", "grpc_code=\"OK\""}),
            1);
  ASSERT_TRUE(RawCall(channel_, "/grpc.health.v1.Health/Check", "", "").ok());
  EXPECT_GE(testing::SampleValue(Scrape(), "grpc_server_handled_total",
                                 {"grpc_service=\"grpc.health.v1.Health\"", "grpc_method=\"Check\"",
                                  "grpc_code=\"OK\""}),
            1);
}

// ------------------------------------------------------------------ the service token

// The token a service uses for its own calls stays valid past its lifetime: it is re-minted.
TEST_F(ServerTest, MintedServiceTokenOutlivesItsLifetime) {
  server::CommonConfig config = Config("promotion");
  config.service_token_lifetime = absl::Seconds(2);
  auto rt = server::Runtime::Create(config);
  ASSERT_TRUE(rt.ok()) << rt.status();
  auto tokens = (*rt)->ServiceToken();
  ASSERT_TRUE(tokens.ok()) << tokens.status();

  auto own_call = [&](const std::string& token) {
    server::CallContext own;
    own.own_token = token;
    auto ctx = server::OutgoingContext(own, absl::Seconds(5));
    clusters::v1::GetClusterRequest req;
    req.set_name("clusters/hohhot-dairy");
    clusters::v1::Cluster out;
    return stub_->GetCluster(ctx.get(), req, &out);
  };
  const std::string first = (*tokens)->Current();
  ASSERT_TRUE(own_call(first).ok());
  absl::SleepFor(absl::Seconds(3));
  // The first token has expired; the source hands out a fresh one.
  EXPECT_EQ(own_call(first).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string now = (*tokens)->Current();
  EXPECT_NE(now, first);
  grpc::Status s = own_call(now);
  EXPECT_TRUE(s.ok()) << testing::Describe(s);
}

// A token file replaced while the service runs (a rotated Kubernetes Secret) is used from then on.
TEST_F(ServerTest, ServiceTokenFileIsReReadWhenItChanges) {
  const std::string file = dir_.File("service-token");
  const std::string old_token = testing::MakeToken("service:promotion", "services/promotion", {"service"}, 1);
  const std::string new_token = testing::MakeToken("service:promotion", "services/promotion", {"service"}, 3600);
  {
    std::ofstream out(file);
    out << old_token << "\n";
  }
  server::CommonConfig config = Config("promotion");
  config.service_token_file = file;
  auto rt = server::Runtime::Create(config);
  ASSERT_TRUE(rt.ok()) << rt.status();
  auto tokens = (*rt)->ServiceToken();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)->Current(), old_token);

  // As the kubelet does: the new content appears under the same path in one step.
  {
    std::ofstream out(file + ".new");
    out << new_token << "\n";
  }
  ASSERT_EQ(std::rename((file + ".new").c_str(), file.c_str()), 0);
  EXPECT_EQ((*tokens)->Current(), new_token);
  absl::SleepFor(absl::Seconds(2));  // the old one has expired by now
  server::CallContext own;
  own.own_token = (*tokens)->Current();
  auto ctx = server::OutgoingContext(own, absl::Seconds(5));
  clusters::v1::GetClusterRequest req;
  req.set_name("clusters/hohhot-dairy");
  clusters::v1::Cluster out;
  grpc::Status s = stub_->GetCluster(ctx.get(), req, &out);
  EXPECT_TRUE(s.ok()) << testing::Describe(s);

  // A missing file (mid-rotation) keeps the last token; a bad path fails at startup naming the flag.
  ASSERT_EQ(std::remove(file.c_str()), 0);
  EXPECT_EQ((*tokens)->Current(), new_token);
  config.service_token_file = dir_.File("absent");
  auto bad = server::Runtime::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--service_token_file="));
}

}  // namespace
}  // namespace clustergov

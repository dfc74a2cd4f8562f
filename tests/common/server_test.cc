// The server core (common/server, common/auth) at its edges, through a real
// service: the clusters service in-process on a loopback port with its SQLite file, called over
// real gRPC channels (MakeChannel's, as the services and the gateway make them, and a plain
// default channel, as an outside client makes it). The cache is off: Redis plays no part here.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "common/server/client.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/clusters/seed.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov {
namespace {

using ::testing::HasSubstr;
using Stub = clusters::v1::ClustersService::Stub;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto seed = clusters::LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    server::CommonConfig config = Config("clusters");
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

  testing::TempDir dir_;
  testing::ClustersServer clusters_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
  const std::string gov_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
};

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

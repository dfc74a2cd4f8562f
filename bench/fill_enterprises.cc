// Registers N synthetic enterprises through the enterprises service (real gRPC writes, so the
// benchmark measures a store filled the way production fills it), and joins every tenth to a
// cluster. Codes are valid GB 32100 codes "91" + region + "BM" + 7-digit index + check character.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50052", "enterprises service");
ABSL_FLAG(std::string, token, "", "bearer token (government or admin)");
ABSL_FLAG(int, count, 100000, "enterprises to register");
ABSL_FLAG(int, threads, 16, "concurrent writers");
ABSL_FLAG(std::string, cluster, "clusters/hohhot-dairy", "cluster every tenth enterprise joins");

namespace v1 = clustergov::enterprises::v1;

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials());
  auto stub = v1::EnterprisesService::NewStub(channel);
  const int count = absl::GetFlag(FLAGS_count);
  const std::string auth = absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token));
  const auto& regions = clustergov::refdata::Regions();
  std::atomic<int> next{0}, failed{0}, done{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < absl::GetFlag(FLAGS_threads); ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        std::string region(regions[i % regions.size()].code);
        std::string first17 = absl::StrFormat("91%sBM%07d", region, i);
        std::string uscc = first17 + clustergov::refdata::UsccCheckCharacter(first17);
        v1::RegisterEnterpriseRequest req;
        auto* e = req.mutable_enterprise();
        e->set_uscc(uscc);
        e->set_legal_name_zh(absl::StrCat("基准测试企业", i));
        e->set_name_en(absl::StrCat("Benchmark Enterprise ", i));
        e->set_region(region);
        e->set_industry(i % 3 == 0 ? "dairy" : (i % 3 == 1 ? "rare_earth" : "silicon_pv"));
        e->set_size_class(static_cast<v1::SizeClass>(1 + i % 4));
        e->set_employees(10 + i % 5000);
        e->set_annual_revenue_fen(int64_t{100000} * (i % 100000));
        e->set_annual_output_cny_10k(100 + i % 20000);  // 1百万元 to 2亿元: the cluster-output indicators
        v1::Enterprise out;
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", auth);
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        grpc::Status s = stub->RegisterEnterprise(&ctx, req, &out);
        if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
          if (failed++ < 5) std::fprintf(stderr, "register %s: %s\n", uscc.c_str(), s.error_message().c_str());
          continue;
        }
        if (i % 10 == 0) {
          v1::JoinClusterRequest join;
          join.set_parent(absl::StrCat("enterprises/", uscc));
          join.mutable_membership()->set_cluster(absl::GetFlag(FLAGS_cluster));
          join.mutable_membership()->set_role(v1::MEMBER);
          v1::Membership m;
          grpc::ClientContext jctx;
          jctx.AddMetadata("authorization", auth);
          jctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          grpc::Status js = stub->JoinCluster(&jctx, join, &m);
          if (!js.ok() && js.error_code() != grpc::StatusCode::ALREADY_EXISTS && failed++ < 5) {
            std::fprintf(stderr, "join %s: %s\n", uscc.c_str(), js.error_message().c_str());
          }
        }
        done++;
      }
    });
  }
  for (auto& w : workers) w.join();
  std::printf("registered %d enterprises (%d failures)\n", done.load(), failed.load());
  return failed.load() > 0 ? 1 : 0;
}

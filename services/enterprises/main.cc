// clustergov-enterprises: the enterprise registry service.

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/server/client.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/seed.h"
#include "services/enterprises/enterprise_repository.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/enterprises/enterprises_service.h"

ABSL_FLAG(std::string, clusters_addr, "127.0.0.1:50051",
          "Clusters service address (host:port, or dns:///name:port to balance over several)");
ABSL_FLAG(int, cluster_cache_seconds, 60, "How long answers from the clusters service are cached");
ABSL_FLAG(bool, seed, true, "Register the plan's lead enterprises (sample credit codes) when missing");

namespace {

constexpr int kDefaultPort = 50052;
constexpr int kDefaultMetricsPort = 9452;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-enterprises: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  server::ParseFlags(argc, argv, "clustergov-enterprises: the enterprise registry of the manufacturing clusters (gRPC)");
  auto config = server::CommonConfigFromFlags("enterprises", kDefaultPort, kDefaultMetricsPort);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::GetFlag(FLAGS_clusters_addr).empty()) return Fail("--clusters_addr is required");
  if (absl::GetFlag(FLAGS_cluster_cache_seconds) <= 0) return Fail("--cluster_cache_seconds must be positive");
  auto runtime = server::Runtime::Create(*config);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()));
  auto& rt = **runtime;

  clusters::ClusterDirectory directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_clusters_addr), config->server.max_message_bytes),
      std::chrono::seconds(absl::GetFlag(FLAGS_cluster_cache_seconds)));
  auto repo = enterprises::CreateEnterpriseRepository(&rt.db());
  if (!repo.ok()) return Fail(std::string(repo.status().message()));
  enterprises::EnterprisesDomain domain(std::move(*repo), rt.MakeCache("enterprises"), &directory, &rt.page_tokens());
  if (absl::GetFlag(FLAGS_seed)) {
    auto seed = clusters::LoadSeedData("");
    if (!seed.ok()) return Fail(std::string(seed.status().message()));
    auto created = domain.Seed(*seed);
    if (!created.ok()) return Fail(absl::StrCat("seeding failed: ", created.status().message()));
    log::Info("seed data loaded", {{"created", std::to_string(*created)}});
  }
  rt.Schedule("expire-certifications", config->deadline_interval, [&domain](const store::LeaseFence& fence) {
    return domain.ExpireCertifications(fence, absl::Now()).status();
  });
  enterprises::EnterprisesServiceImpl service(&domain, &rt.handler());
  rt.PublishEvents();
  if (auto s = rt.Start({&service}); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  return 0;
}

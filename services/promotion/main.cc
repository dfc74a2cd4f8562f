// clustergov-promotion: cluster promotion organizations — registration, designation, reports,
// funding, evaluation.

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
#include "services/enterprises/client/enterprise_directory.h"
#include "services/promotion/promotion_domain.h"
#include "services/promotion/promotion_repository.h"
#include "services/promotion/promotion_service.h"

ABSL_FLAG(std::string, clusters_addr, "127.0.0.1:50051", "Clusters service address");
ABSL_FLAG(std::string, support_addr, "127.0.0.1:50053", "Support service address (funding applications)");
ABSL_FLAG(std::string, enterprises_addr, "127.0.0.1:50052", "Enterprises service address (founders' enterprises)");
ABSL_FLAG(int, directory_cache_seconds, 60, "How long cluster lookups and positive enterprise answers are cached");
ABSL_FLAG(bool, seed, true, "Register the promotion bodies the plan names and designate them");

namespace {

constexpr int kDefaultPort = 50054;
constexpr int kDefaultMetricsPort = 9454;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-promotion: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  server::ParseFlags(argc, argv, "clustergov-promotion: cluster promotion organizations (gRPC)");
  auto config = server::CommonConfigFromFlags("promotion", kDefaultPort, kDefaultMetricsPort);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::GetFlag(FLAGS_clusters_addr).empty()) return Fail("--clusters_addr is required");
  if (absl::GetFlag(FLAGS_support_addr).empty()) return Fail("--support_addr is required");
  if (absl::GetFlag(FLAGS_enterprises_addr).empty()) return Fail("--enterprises_addr is required");
  if (absl::GetFlag(FLAGS_directory_cache_seconds) <= 0) return Fail("--directory_cache_seconds must be positive");
  auto runtime = server::Runtime::Create(*config);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()));
  auto& rt = **runtime;
  auto service_token = rt.ServiceToken();
  if (!service_token.ok()) return Fail(std::string(service_token.status().message()));
  const std::chrono::seconds directory_ttl(absl::GetFlag(FLAGS_directory_cache_seconds));
  clusters::ClusterDirectory directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_clusters_addr), config->server.max_message_bytes), directory_ttl);
  enterprises::EnterpriseDirectory enterprise_directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_enterprises_addr), config->server.max_message_bytes),
      directory_ttl);
  auto repo = promotion::CreatePromotionRepository(&rt.db());
  if (!repo.ok()) return Fail(std::string(repo.status().message()));
  promotion::PromotionDeps deps;
  deps.clusters = &directory;
  deps.support_channel = server::MakeChannel(absl::GetFlag(FLAGS_support_addr), config->server.max_message_bytes);
  deps.service_token = *service_token;
  deps.enterprises = &enterprise_directory;
  promotion::PromotionDomain domain(std::move(*repo), deps, &rt.page_tokens());
  if (absl::GetFlag(FLAGS_seed)) {
    auto seed = clusters::LoadSeedData("");
    if (!seed.ok()) return Fail(std::string(seed.status().message()));
    auto created = domain.Seed(*seed);
    if (!created.ok()) return Fail(absl::StrCat("seeding failed: ", created.status().message()));
    log::Info("seed data loaded", {{"created", std::to_string(*created)}});
  }
  // Designations and annual reports publish their changes; the clusters service follows them.
  rt.PublishEvents();
  rt.Schedule("flag-overdue-reports", config->deadline_interval, [&domain](const store::LeaseFence& fence) {
    return domain.FlagOverdueReports(fence, absl::Now()).status();
  });
  promotion::PromotionServiceImpl service(&domain, &rt.handler());
  if (auto s = rt.Start({&service}); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  return 0;
}

// clustergov-support: land and energy support — pools, applications, review, the ledger.

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/client.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/support/support_domain.h"
#include "services/support/support_metrics.h"
#include "services/support/support_repository.h"
#include "services/support/support_service.h"

ABSL_FLAG(std::string, clusters_addr, "127.0.0.1:50051", "Clusters service address");
ABSL_FLAG(std::string, enterprises_addr, "127.0.0.1:50052", "Enterprises service address");
ABSL_FLAG(int, directory_cache_seconds, 60, "How long answers from the clusters and enterprises services are cached");
ABSL_FLAG(int, reservation_days, 180, "Days an approval's reservation lasts before it may be expired");
ABSL_FLAG(int, domain_metrics_seconds, 15,
          "How often the application, review-queue and pool gauges are re-read from the store");

namespace {

constexpr int kDefaultPort = 50053;
constexpr int kDefaultMetricsPort = 9453;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-support: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  server::ParseFlags(argc, argv, "clustergov-support: land and energy support pools, applications and ledger (gRPC)");
  auto config = server::CommonConfigFromFlags("support", kDefaultPort, kDefaultMetricsPort);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::GetFlag(FLAGS_clusters_addr).empty()) return Fail("--clusters_addr is required");
  if (absl::GetFlag(FLAGS_enterprises_addr).empty()) return Fail("--enterprises_addr is required");
  if (absl::GetFlag(FLAGS_directory_cache_seconds) <= 0) return Fail("--directory_cache_seconds must be positive");
  if (absl::GetFlag(FLAGS_reservation_days) <= 0) return Fail("--reservation_days must be positive");
  if (absl::GetFlag(FLAGS_domain_metrics_seconds) <= 0) return Fail("--domain_metrics_seconds must be positive");
  auto runtime = server::Runtime::Create(*config);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()));
  auto& rt = **runtime;
  std::chrono::seconds directory_ttl(absl::GetFlag(FLAGS_directory_cache_seconds));
  clusters::ClusterDirectory cluster_directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_clusters_addr), config->server.max_message_bytes), directory_ttl);
  enterprises::EnterpriseDirectory enterprise_directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_enterprises_addr), config->server.max_message_bytes),
      directory_ttl);
  auto repo = support::CreateSupportRepository(&rt.db());
  if (!repo.ok()) return Fail(std::string(repo.status().message()));
  support::SupportDomain domain(std::move(*repo), rt.MakeCache("support"), &cluster_directory, &enterprise_directory,
                                &rt.page_tokens(), absl::Hours(24) * absl::GetFlag(FLAGS_reservation_days));
  // Declared after the domain (which owns the repository) and the runtime (store, registry): destroyed,
  // and so stopped, before either.
  support::SupportMetrics domain_metrics(domain.repository(), rt.metrics().registry());
  domain_metrics.Start(absl::Seconds(absl::GetFlag(FLAGS_domain_metrics_seconds)));
  rt.Schedule("expire-reservations", config->deadline_interval, [&domain](const store::LeaseFence& fence) {
    return domain.ExpireReservationsJob(fence, absl::Now()).status();
  });
  support::SupportServiceImpl service(&domain, &rt.handler());
  rt.PublishEvents();
  if (auto s = rt.Start({&service}); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  domain_metrics.Stop();
  return 0;
}

// clustergov-clusters: the cluster registry service.

#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "absl/flags/flag.h"
#include "common/log/log.h"
#include "common/server/client.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/clusters/clusters_graph.h"
#include "services/clusters/seed.h"
#include "services/enterprises/client/indicator_source.h"
#include "services/promotion/client/indicator_source.h"
#include "services/support/client/indicator_source.h"
#include "services/talent/client/indicator_source.h"

ABSL_FLAG(bool, seed, true, "Load the plan's 13 clusters at startup when they are missing (idempotent)");
ABSL_FLAG(std::string, seed_file, "", "Seed JSON to load instead of the embedded one");
ABSL_FLAG(std::string, enterprises_addr, "127.0.0.1:50052", "Enterprises service address (evaluation indicators)");
ABSL_FLAG(std::string, support_addr, "127.0.0.1:50053", "Support service address (evaluation indicators)");
ABSL_FLAG(std::string, promotion_addr, "127.0.0.1:50054", "Promotion service address (evaluation indicators)");
ABSL_FLAG(std::string, talent_addr, "127.0.0.1:50055", "Talent service address (evaluation indicators)");
ABSL_FLAG(int, indicator_timeout_seconds, 10, "Deadline of one indicator call while a snapshot is gathered");
ABSL_FLAG(int, evaluation_stall_days, 30,
          "Days an evaluation may wait at one review level before it is flagged stalled (EvaluationStalled)");

namespace {

constexpr int kDefaultPort = 50051;
constexpr int kDefaultMetricsPort = 9451;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-clusters: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  server::ParseFlags(argc, argv, "clustergov-clusters: the advanced manufacturing cluster registry (gRPC)");
  auto config = server::CommonConfigFromFlags("clusters", kDefaultPort, kDefaultMetricsPort);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto runtime = server::Runtime::Create(*config);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()));
  auto& rt = **runtime;

  auto seed = clusters::LoadSeedData(absl::GetFlag(FLAGS_seed_file));
  if (!seed.ok()) return Fail(std::string(seed.status().message()));
  for (const auto* flag : {&FLAGS_enterprises_addr, &FLAGS_support_addr, &FLAGS_promotion_addr, &FLAGS_talent_addr}) {
    if (absl::GetFlag(*flag).empty()) return Fail("--enterprises_addr, --support_addr, --promotion_addr and --talent_addr are required");
  }
  const int timeout_seconds = absl::GetFlag(FLAGS_indicator_timeout_seconds);
  if (timeout_seconds <= 0) return Fail("--indicator_timeout_seconds must be positive");
  const int stall_days = absl::GetFlag(FLAGS_evaluation_stall_days);
  if (stall_days <= 0) return Fail("--evaluation_stall_days must be positive");
  // Channels connect lazily: a source that is down fails the snapshot that needs it (UNAVAILABLE
  // naming it), not the start of this service.
  const auto channel = [&](const std::string& addr) { return server::MakeChannel(addr, config->server.max_message_bytes); };
  const absl::Duration timeout = absl::Seconds(timeout_seconds);
  std::vector<std::unique_ptr<indicators::IndicatorSource>> sources;
  sources.push_back(enterprises::NewEnterprisesIndicatorSource(channel(absl::GetFlag(FLAGS_enterprises_addr)), timeout));
  sources.push_back(promotion::NewPromotionIndicatorSource(channel(absl::GetFlag(FLAGS_promotion_addr)), timeout));
  sources.push_back(support::NewSupportIndicatorSource(channel(absl::GetFlag(FLAGS_support_addr)), timeout));
  sources.push_back(talent::NewTalentIndicatorSource(channel(absl::GetFlag(FLAGS_talent_addr)), timeout));
  auto graph = clusters::BuildClustersGraph(rt, *seed, absl::GetFlag(FLAGS_seed), std::move(sources));
  if (!graph.ok()) return Fail(absl::StrCat("starting failed: ", graph.status().message()));
  if (absl::GetFlag(FLAGS_seed)) log::Info("seed data loaded", {{"created", std::to_string(graph->seeded_clusters)}});
  rt.Schedule("flag-stalled-evaluations", config->deadline_interval,
              [evaluation = graph->evaluation.get(), stall_days](const store::LeaseFence& fence) {
                return evaluation->FlagStalledEvaluations(fence, absl::Now(), absl::Hours(24) * stall_days).status();
              });
  if (auto s = rt.Start(graph->services()); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  return 0;
}

// clustergov-clusters: the cluster registry service.

#include <cstdio>

#include "absl/strings/str_cat.h"

#include "absl/flags/flag.h"
#include "common/log/log.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/clusters/clusters_graph.h"
#include "services/clusters/seed.h"

ABSL_FLAG(bool, seed, true, "Load the plan's 13 clusters at startup when they are missing (idempotent)");
ABSL_FLAG(std::string, seed_file, "", "Seed JSON to load instead of the embedded one");

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
  auto graph = clusters::BuildClustersGraph(rt, *seed, absl::GetFlag(FLAGS_seed), {});
  if (!graph.ok()) return Fail(absl::StrCat("starting failed: ", graph.status().message()));
  if (absl::GetFlag(FLAGS_seed)) log::Info("seed data loaded", {{"created", std::to_string(graph->seeded_clusters)}});
  auto& service = *graph->service;
  if (auto s = rt.Start({&service}); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  return 0;
}

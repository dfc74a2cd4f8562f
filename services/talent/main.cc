// clustergov-talent: talent profiles, enterprise demands, matching and placements.

#include <cstdio>

#include "absl/flags/flag.h"
#include "common/server/client.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/talent/talent_domain.h"
#include "services/talent/talent_repository.h"
#include "services/talent/talent_service.h"

ABSL_FLAG(std::string, enterprises_addr, "127.0.0.1:50052", "Enterprises service address");
ABSL_FLAG(int, directory_cache_seconds, 60, "How long membership answers from the enterprises service are cached");

namespace {

constexpr int kDefaultPort = 50055;
constexpr int kDefaultMetricsPort = 9455;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-talent: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  server::ParseFlags(argc, argv, "clustergov-talent: talent, demands, matching and placements (gRPC)");
  auto config = server::CommonConfigFromFlags("talent", kDefaultPort, kDefaultMetricsPort);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::GetFlag(FLAGS_enterprises_addr).empty()) return Fail("--enterprises_addr is required");
  if (absl::GetFlag(FLAGS_directory_cache_seconds) <= 0) return Fail("--directory_cache_seconds must be positive");
  auto runtime = server::Runtime::Create(*config);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()));
  auto& rt = **runtime;
  enterprises::EnterpriseDirectory directory(
      rt, server::MakeChannel(absl::GetFlag(FLAGS_enterprises_addr), config->server.max_message_bytes),
      std::chrono::seconds(absl::GetFlag(FLAGS_directory_cache_seconds)));
  auto repo = talent::CreateTalentRepository(&rt.db());
  if (!repo.ok()) return Fail(std::string(repo.status().message()));
  talent::TalentDomain domain(std::move(*repo), &directory, &rt.page_tokens());
  if (auto s = domain.LoadIndex(); !s.ok()) return Fail(std::string(s.message()));
  talent::TalentServiceImpl service(&domain, &rt.handler());
  rt.PublishEvents();
  if (auto s = rt.Start({&service}); !s.ok()) return Fail(std::string(s.message()));
  rt.ServeUntilSignal();
  return 0;
}

// clustergov-gateway: the REST/JSON gateway in front of the clustergov gRPC services.

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "services/gateway/gateway.h"

#ifndef CLUSTERGOV_DEFAULT_DESCRIPTOR_SET
#define CLUSTERGOV_DEFAULT_DESCRIPTOR_SET "clustergov_descriptors.pb"
#endif

// Shared with every service (common/server/flags.cc).
ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(int, max_message_bytes);
ABSL_DECLARE_FLAG(int, pre_stop_seconds);
ABSL_DECLARE_FLAG(int, drain_seconds);
ABSL_DECLARE_FLAG(std::string, log_level);

ABSL_FLAG(std::string, descriptor_set, CLUSTERGOV_DEFAULT_DESCRIPTOR_SET,
          "FileDescriptorSet of the API protos (protoc --include_imports), read at startup");
ABSL_FLAG(std::string, backend, "",
          "Backend of a service: <package.Service>=host:port[,host:port...] (round-robin). Repeat the flag, or "
          "separate entries with ';' (e.g. in CLUSTERGOV_BACKEND)");
ABSL_FLAG(int, backend_timeout_ms, 10000, "Deadline of every backend call, in milliseconds");
ABSL_FLAG(int, backend_max_backoff_ms, 2000, "Longest wait between reconnection attempts to a backend");
ABSL_FLAG(std::string, cors_origins, "", "Comma-separated origins allowed by CORS ('*' for any); empty: none");
ABSL_FLAG(double, rate_limit_rps, 0, "Requests per second allowed per client IP (token bucket); 0 disables");
ABSL_FLAG(double, rate_limit_burst, 0, "Bucket size of the rate limit (default 2 x rps)");
ABSL_FLAG(int, max_body_bytes, 1024 * 1024, "Largest request body accepted (larger: 413)");
ABSL_FLAG(int, io_threads, 0, "HTTP I/O threads (0: one per core, at least 2)");
ABSL_FLAG(int, idle_timeout_seconds, 60, "Keep-alive connections idle this long are closed");
ABSL_FLAG(bool, access_log, true, "Log every request (false: only 5xx answers are logged)");
ABSL_FLAG(std::string, console_dir, "",
          "Directory of the built web console (scripts/build.sh: <build>/console), served under / beside the API; "
          "read once at startup. Empty: no console");
ABSL_FLAG(bool, json_emit_defaults, false, "Print fields holding default values in JSON responses");

namespace {

constexpr int kDefaultPort = 8080;
constexpr int kDefaultMetricsPort = 9460;

int Fail(const std::string& what) {
  std::fprintf(stderr, "clustergov-gateway: %s\n", what.c_str());
  return 1;
}

// absl keeps only the last value of a repeated flag; --backend is repeatable, so read them all.
std::vector<std::string> RepeatedFlag(int argc, char** argv, const char* name) {
  std::vector<std::string> values;
  std::string eq = absl::StrCat("--", name, "=");
  std::string bare = absl::StrCat("--", name);
  std::string single_eq = absl::StrCat("-", name, "=");
  std::string single_bare = absl::StrCat("-", name);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (absl::StartsWith(arg, eq)) {
      values.push_back(arg.substr(eq.size()));
    } else if (absl::StartsWith(arg, single_eq)) {
      values.push_back(arg.substr(single_eq.size()));
    } else if ((arg == bare || arg == single_bare) && i + 1 < argc) {
      values.push_back(argv[++i]);
    }
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustergov;
  server::BlockTerminationSignals();
  std::vector<std::string> backend_args = RepeatedFlag(argc, argv, "backend");
  server::ParseFlags(argc, argv,
                     "clustergov-gateway: REST/JSON gateway to the clustergov gRPC services.\n"
                     "  clustergov-gateway --backend=clustergov.clusters.v1.ClustersService=127.0.0.1:50051 ...");
  log::Level level = log::Level::kInfo;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail(absl::StrCat("--log_level=", absl::GetFlag(FLAGS_log_level), ": expected debug, info, warn or error"));
  }
  log::Init("gateway", level);

  gateway::GatewayConfig config;
  config.http.listen = absl::GetFlag(FLAGS_listen);
  if (config.http.listen.empty()) config.http.listen = absl::StrCat("0.0.0.0:", kDefaultPort);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (config.metrics_listen.empty()) config.metrics_listen = absl::StrCat("0.0.0.0:", kDefaultMetricsPort);
  if (config.metrics_listen == "off") config.metrics_listen.clear();
  int io_threads = absl::GetFlag(FLAGS_io_threads);
  if (io_threads < 0) return Fail("--io_threads must not be negative");
  config.http.io_threads =
      io_threads > 0 ? io_threads : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  if (absl::GetFlag(FLAGS_max_body_bytes) <= 0) return Fail("--max_body_bytes must be positive");
  config.http.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  if (absl::GetFlag(FLAGS_idle_timeout_seconds) <= 0) return Fail("--idle_timeout_seconds must be positive");
  config.http.idle_timeout = absl::Seconds(absl::GetFlag(FLAGS_idle_timeout_seconds));

  config.descriptor_set = absl::GetFlag(FLAGS_descriptor_set);
  if (backend_args.empty() && !absl::GetFlag(FLAGS_backend).empty())
    backend_args.push_back(absl::GetFlag(FLAGS_backend));
  if (backend_args.empty()) {
    return Fail(
        "no --backend: give one per service, e.g. "
        "--backend=clustergov.clusters.v1.ClustersService=127.0.0.1:50051");
  }
  auto backends = gateway::ParseBackendSpecs(backend_args);
  if (!backends.ok()) return Fail(std::string(backends.status().message()));
  config.backends = std::move(*backends);
  if (absl::GetFlag(FLAGS_backend_timeout_ms) <= 0) return Fail("--backend_timeout_ms must be positive");
  config.backend_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_backend_timeout_ms));
  if (absl::GetFlag(FLAGS_backend_max_backoff_ms) <= 0) return Fail("--backend_max_backoff_ms must be positive");
  config.backend_options.max_reconnect_backoff = absl::Milliseconds(absl::GetFlag(FLAGS_backend_max_backoff_ms));
  if (absl::GetFlag(FLAGS_max_message_bytes) <= 0) return Fail("--max_message_bytes must be positive");
  config.backend_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);

  for (absl::string_view o : absl::StrSplit(absl::GetFlag(FLAGS_cors_origins), ',', absl::SkipWhitespace())) {
    config.cors_origins.emplace_back(absl::StripAsciiWhitespace(o));
  }
  if (absl::GetFlag(FLAGS_rate_limit_rps) < 0 || absl::GetFlag(FLAGS_rate_limit_burst) < 0) {
    return Fail("--rate_limit_rps and --rate_limit_burst must not be negative");
  }
  config.rate_limit_rps = absl::GetFlag(FLAGS_rate_limit_rps);
  config.rate_limit_burst = absl::GetFlag(FLAGS_rate_limit_burst);
  if (absl::GetFlag(FLAGS_pre_stop_seconds) < 0 || absl::GetFlag(FLAGS_drain_seconds) <= 0) {
    return Fail("--pre_stop_seconds must not be negative and --drain_seconds must be positive");
  }
  config.pre_stop_delay = absl::Seconds(absl::GetFlag(FLAGS_pre_stop_seconds));
  config.drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  config.access_log = absl::GetFlag(FLAGS_access_log);
  config.json.emit_defaults = absl::GetFlag(FLAGS_json_emit_defaults);
  config.console_dir = absl::GetFlag(FLAGS_console_dir);

  auto gw = gateway::Gateway::Create(std::move(config));
  if (!gw.ok()) return Fail(std::string(gw.status().message()));
  if (auto s = (*gw)->Start(); !s.ok()) return Fail(std::string(s.message()));
  (*gw)->ServeUntilSignal();
  return 0;
}

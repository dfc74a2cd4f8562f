#pragma once

// The whole platform as the README's one command starts it: scripts/run-local.sh --no-build with
// every port free and its run folder (data, logs, development secret) in a temporary directory —
// a local Redis, the five services with their seed data and the gateway, all real processes.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/support/test_support.h"

namespace clustergov::testing {

class Platform {
 public:
  Platform();
  ~Platform();  // Stop()
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  // Starts the script and waits (up to `timeout_seconds`) until it reports the platform running;
  // the error carries the script's output when it fails or exits first.
  absl::Status Start(int timeout_seconds = 180);
  // SIGTERM to the script (it stops its children and waits for them); SIGKILL to the whole
  // process group if it has not exited within 40 s.
  void Stop();

  int gateway_port() const { return ports_.at("GATEWAY_PORT"); }
  // "<SERVICE>_PORT" or "<SERVICE>_METRICS_PORT", as run-local.sh names them.
  int port(const std::string& variable) const { return ports_.at(variable); }
  const std::string& run_dir() const { return dir_.path(); }
  // A token signed with the run's development secret.
  std::string Token(const std::string& subject, const std::string& organization,
                    const std::vector<std::string>& roles) const;
  // The script's output and, appended, the last lines of every service log.
  std::string Logs() const;

 private:
  TempDir dir_;
  std::map<std::string, int> ports_;
  std::unique_ptr<Process> script_;
  std::string secret_;
};

// The repository root (CLUSTERGOV_SOURCE_DIR, set by CMake for tests).
std::string SourceDir();

}  // namespace clustergov::testing

#include "tests/support/platform.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace clustergov::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string SourceDir() {
  const char* dir = std::getenv("CLUSTERGOV_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

Platform::Platform() {
  for (const char* service : {"REDIS", "CLUSTERS", "ENTERPRISES", "SUPPORT", "PROMOTION", "TALENT", "GATEWAY"}) {
    ports_[absl::StrCat(service, "_PORT")] = FreePort();
    if (std::string(service) != "REDIS") ports_[absl::StrCat(service, "_METRICS_PORT")] = FreePort();
  }
}

Platform::~Platform() { Stop(); }

absl::Status Platform::Start(int timeout_seconds) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  for (const auto& [variable, port] : ports_) argv.push_back(absl::StrCat(variable, "=", port));
  argv.push_back(absl::StrCat("BUILD_DIR=", BinaryPath("")));
  argv.push_back(absl::StrCat("CLUSTERGOV_RUN_DIR=", dir_.path()));
  argv.push_back(absl::StrCat("CLUSTERGOV_STARTUP_TIMEOUT=", timeout_seconds));
  argv.push_back("bash");
  argv.push_back(SourceDir() + "/scripts/run-local.sh");
  argv.push_back("--no-build");
  script_ = std::make_unique<Process>(argv, dir_.File("run-local.out"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds + 10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (absl::StrContains(ReadFile(dir_.File("run-local.out")), "clustergov is running:")) {
      secret_ = std::string(absl::StripAsciiWhitespace(ReadFile(dir_.File("dev-secret"))));
      return absl::OkStatus();
    }
    if (!script_->Running()) {
      return absl::UnavailableError(absl::StrCat("run-local.sh exited before the platform ran:\n", Logs()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat("the platform did not start in time:\n", Logs()));
}

void Platform::Stop() {
  if (script_ == nullptr) return;
  if (script_->Running()) {
    script_->Signal(SIGTERM);
    if (script_->Wait(40000) == -1) {
      kill(-script_->pid(), SIGKILL);  // the script and everything it started (its own process group)
      script_->Wait(5000);
    }
  }
  script_.reset();
}

std::string Platform::Token(const std::string& subject, const std::string& organization,
                            const std::vector<std::string>& roles) const {
  return MakeToken(subject, organization, roles, 3600, secret_);
}

std::string Platform::Logs() const {
  std::string out = ReadFile(dir_.File("run-local.out"));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.File("logs"), ec)) {
    std::string log = ReadFile(entry.path().string());
    if (log.size() > 4000) log = log.substr(log.size() - 4000);
    absl::StrAppend(&out, "\n--- ", entry.path().filename().string(), " (end)\n", log);
  }
  return out;
}

}  // namespace clustergov::testing

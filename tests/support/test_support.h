#pragma once

// Real parts for tests: a redis-server process on a free loopback port, temporary directories,
// free ports chosen by the OS, tokens, and a small HTTP GET for /metrics.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace clustergov::testing {

// A port the OS reports free right now (bind to 127.0.0.1:0, read it, close).
int FreePort();

// A channel to 127.0.0.1:`port` with a connection of its own (none shared with channels to an
// earlier process on the same port), reconnecting quickly while the server (re)starts.
std::shared_ptr<grpc::Channel> Connect(int port);

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A real redis-server child process (no persistence) on 127.0.0.1:port.
class RedisServer {
 public:
  RedisServer();  // picks a free port and starts; aborts the test binary if redis-server is missing
  ~RedisServer();
  int port() const { return port_; }
  void Stop();     // SIGKILL, like a crash; waits for the port to close
  void Start();    // (re)starts on the same port, empty; waits until it answers PING
  // Makes Redis unresponsive (SIGSTOP) or responsive again (SIGCONT): a slow/hung Redis.
  void Pause();
  void Resume();
  // Runs one command through redis-cli and returns its output (trimmed).
  std::string Cli(const std::vector<std::string>& args) const;

 private:
  int port_;
  pid_t pid_ = -1;
};

// A child process running `argv` with stdout+stderr captured to `log_path`.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to timeout_ms; returns the exit code, 128+signal if killed, or -1 on timeout.
  int Wait(int timeout_ms);
  bool Running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int status_ = -1;
};

// HTTP/1.0 GET to 127.0.0.1:port; the body, or an error.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// In Prometheus text `metrics_text`, the value of the first sample of `family` whose line contains
// every one of `labels` (e.g. `state="SUBMITTED"`); -1 when there is none.
double SampleValue(const std::string& metrics_text, absl::string_view family, const std::vector<std::string>& labels);

// Runs a shell command; returns its exit code and fills `output` with stdout+stderr.
int RunCommand(const std::string& command, std::string* output);

// The shared development secret tests sign tokens with.
inline constexpr char kTestSecret[] = "clustergov-test-secret-0123456789abcdef";

// A signed HS256 test token.
std::string MakeToken(const std::string& subject, const std::string& organization,
                      const std::vector<std::string>& roles, int ttl_seconds = 3600,
                      const std::string& secret = kTestSecret);

// Path of a built binary (CLUSTERGOV_BINARY_DIR is set by CMake for tests).
std::string BinaryPath(const std::string& relative);

}  // namespace clustergov::testing

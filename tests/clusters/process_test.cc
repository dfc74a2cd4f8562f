// The real clustergov-clusters binary, driven as a child process: startup and readiness (health,
// reflection, a real RPC), /metrics (content and `promtool check metrics`), graceful shutdown on
// SIGTERM, startup errors, Redis down at startup and while serving (clustergov_redis_up), and
// durability across SIGKILL.
//
// Health and reflection are spoken through grpc::GenericStub with hand-encoded protobuf bytes (no
// extra proto targets); responses are decoded with google::protobuf::UnknownFieldSet.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace clustergov::testing {
namespace {

namespace v1 = ::clustergov::clusters::v1;

constexpr char kHohhotDairyZh[] = "呼和浩特乳制品先进制造业集群";
constexpr int kSeedClusters = 13;
// Health check ServingStatus values (grpc/health/v1/health.proto).
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// ---------------------------------------------------------------------------------------------
// Hand-rolled protobuf wire encoding and gRPC plumbing.
// ---------------------------------------------------------------------------------------------

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A length-delimited field (string or embedded message).
std::string StringField(int number, absl::string_view value) {
  std::string out;
  AppendVarint(&out, (static_cast<uint64_t>(number) << 3) | 2);
  AppendVarint(&out, value.size());
  out.append(value.data(), value.size());
  return out;
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// grpc.health.v1.Health/Check for the whole server (service ""): the ServingStatus (0 UNKNOWN,
// 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN), or -1 when the call itself failed.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, int timeout_ms = 1000) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::ByteBuffer request = ToByteBuffer("");  // HealthCheckRequest{service: ""}: zero bytes
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) return -1;
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(FromByteBuffer(response))) return -1;
  int serving = 0;  // proto3: UNKNOWN (0) is sent as no field at all
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& f = fields.field(i);
    if (f.number() == 1 && f.type() == google::protobuf::UnknownField::TYPE_VARINT) {
      serving = static_cast<int>(f.varint());
    }
  }
  return serving;
}

// grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo with one list_services request.
absl::StatusOr<std::vector<std::string>> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  if (call == nullptr) return absl::InternalError("PrepareCall failed");

  void* got_tag = nullptr;
  bool ok = false;
  auto step = [&](void* tag) {
    if (!cq.Next(&got_tag, &ok)) return false;
    return got_tag == tag && ok;
  };
  int start_tag, write_tag, done_tag, read_tag, finish_tag;
  call->StartCall(&start_tag);
  bool healthy = step(&start_tag);
  std::vector<std::string> responses;
  if (healthy) {
    // ServerReflectionRequest{list_services: "*"} (field 7).
    call->Write(ToByteBuffer(StringField(7, "*")), &write_tag);
    healthy = step(&write_tag);
  }
  if (healthy) {
    call->WritesDone(&done_tag);
    healthy = step(&done_tag);
  }
  while (healthy) {
    grpc::ByteBuffer response;
    call->Read(&response, &read_tag);
    if (!step(&read_tag)) break;
    responses.push_back(FromByteBuffer(response));
  }
  grpc::Status status;
  call->Finish(&status, &finish_tag);
  cq.Next(&got_tag, &ok);
  cq.Shutdown();
  while (cq.Next(&got_tag, &ok)) {
  }
  if (!status.ok()) return absl::UnavailableError(absl::StrCat("reflection call failed: ", status.error_message()));
  if (responses.empty()) return absl::InternalError("reflection returned no response");

  // ServerReflectionResponse{list_services_response (6): ListServiceResponse{service (1):
  // ServiceResponse{name (1)}}}.
  std::vector<std::string> names;
  for (const auto& bytes : responses) {
    google::protobuf::UnknownFieldSet top;
    if (!top.ParseFromString(bytes)) return absl::InternalError("reflection response does not parse");
    for (int i = 0; i < top.field_count(); ++i) {
      const auto& f = top.field(i);
      if (f.number() == 7) return absl::InternalError("reflection returned an error_response");
      if (f.number() != 6 || f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
      google::protobuf::UnknownFieldSet list;
      if (!list.ParseFromString(f.length_delimited())) return absl::InternalError("ListServiceResponse");
      for (int j = 0; j < list.field_count(); ++j) {
        if (list.field(j).number() != 1) continue;
        google::protobuf::UnknownFieldSet service;
        if (!service.ParseFromString(list.field(j).length_delimited())) return absl::InternalError("ServiceResponse");
        for (int k = 0; k < service.field_count(); ++k) {
          if (service.field(k).number() == 1) names.push_back(service.field(k).length_delimited());
        }
      }
    }
  }
  return names;
}

void Authorize(grpc::ClientContext* ctx, const std::string& token, int timeout_ms = 10000) {
  ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

std::string LeadToken() { return MakeToken("op", "departments/industry_it", {"government"}); }
std::string AuditorToken() { return MakeToken("aud", "agencies/audit", {"auditor"}); }

grpc::Status GetCluster(v1::ClustersService::Stub* stub, const std::string& name, v1::Cluster* out,
                        const std::string& token = LeadToken()) {
  grpc::ClientContext ctx;
  Authorize(&ctx, token);
  v1::GetClusterRequest req;
  req.set_name(name);
  return stub->GetCluster(&ctx, req, out);
}

// GetCluster calls on their own threads, each on its own connection.
class CallBatch {
 public:
  CallBatch(int port, int n, int timeout_ms) : statuses_(n), clusters_(n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port, i, timeout_ms] {
        auto stub = v1::ClustersService::NewStub(Connect(port));
        grpc::ClientContext ctx;
        Authorize(&ctx, LeadToken(), timeout_ms);
        v1::GetClusterRequest req;
        req.set_name("clusters/hohhot-dairy");
        statuses_[i] = stub->GetCluster(&ctx, req, &clusters_[i]);
      });
    }
  }
  ~CallBatch() { Join(); }
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  const std::vector<grpc::Status>& statuses() const { return statuses_; }
  const std::vector<v1::Cluster>& clusters() const { return clusters_; }

 private:
  std::vector<grpc::Status> statuses_;
  std::vector<v1::Cluster> clusters_;
  std::vector<std::thread> threads_;
};

// Polls /metrics until the server has started at least `n` GetCluster calls.
bool WaitStartedGetClusters(int metrics_port, int n) {
  for (int i = 0; i < 600; ++i) {
    auto body = HttpGet(metrics_port, "/metrics");
    if (body.ok() && SampleValue(*body, "grpc_server_started_total", {"grpc_method=\"GetCluster\""}) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Polls /metrics (every 100 ms, up to `timeout_ms`) until the sample equals `want`; returns the
// last value seen (-1: absent or no scrape).
double WaitForSample(int metrics_port, absl::string_view family, const std::vector<std::string>& labels, double want,
                     int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  double value = -1;
  while (true) {
    auto body = HttpGet(metrics_port, "/metrics");
    value = body.ok() ? SampleValue(*body, family, labels) : -1;
    if (value == want || std::chrono::steady_clock::now() > deadline) return value;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// ---------------------------------------------------------------------------------------------
// A clustergov-clusters child process.
// ---------------------------------------------------------------------------------------------

struct ServerOptions {
  int port = 0;          // 0: a free one
  int redis_port = 0;    // required
  std::string db;        // required
  bool with_secret = true;
  std::vector<std::string> env;    // NAME=value, set in the child through env(1)
  std::vector<std::string> extra;  // more flags
};

class ClustersProcess {
 public:
  ClustersProcess(const TempDir& dir, ServerOptions options) : options_(std::move(options)) {
    static std::atomic<int> counter{0};
    port_ = options_.port != 0 ? options_.port : FreePort();
    metrics_port_ = FreePort();
    log_path_ = dir.File(absl::StrCat("clusters-", counter.fetch_add(1), ".log"));
    // env -u keeps a developer's own CLUSTERGOV_AUTH_HS256_SECRET from leaking into the child.
    std::vector<std::string> argv{"env", "-u", "CLUSTERGOV_AUTH_HS256_SECRET"};
    for (const auto& e : options_.env) argv.push_back(e);
    argv.push_back(BinaryPath("services/clusters/clustergov-clusters"));
    argv.push_back(absl::StrCat("--listen=127.0.0.1:", port_));
    argv.push_back(absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port_));
    argv.push_back(absl::StrCat("--redis=127.0.0.1:", options_.redis_port));
    argv.push_back(absl::StrCat("--db=", options_.db));
    if (options_.with_secret) argv.push_back(absl::StrCat("--auth_hs256_secret=", kTestSecret));
    for (const auto& f : options_.extra) argv.push_back(f);
    argv_ = absl::StrJoin(argv, " ");
    process_ = std::make_unique<Process>(argv, log_path_);
  }

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  Process& process() { return *process_; }
  std::string Log() const { return process_->Log(); }
  std::string Describe() const { return absl::StrCat("command: ", argv_, "\nlog:\n", Log()); }

  // Polls health until SERVING; false when the process exits first or it takes over 60 s.
  bool WaitServing() {
    auto channel = Connect(port_);
    for (int i = 0; i < 600; ++i) {
      if (!process_->Running()) return false;
      if (HealthCheck(channel, 500) == kServing) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::unique_ptr<v1::ClustersService::Stub> Stub() { return v1::ClustersService::NewStub(Connect(port_)); }

 private:
  ServerOptions options_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string log_path_;
  std::string argv_;
  std::unique_ptr<Process> process_;
};

class ProcessTest : public ::testing::Test {
 protected:
  ServerOptions Defaults() {
    ServerOptions o;
    o.redis_port = redis_.port();
    o.db = dir_.File("clusters.db");
    return o;
  }

  std::unique_ptr<ClustersProcess> StartServing(ServerOptions options) {
    auto p = std::make_unique<ClustersProcess>(dir_, std::move(options));
    EXPECT_TRUE(p->WaitServing()) << p->Describe();
    return p;
  }

  // Runs an instance expected to fail at startup; returns its exit code and fills its log.
  int RunFailing(ServerOptions options, std::string* log) {
    ClustersProcess p(dir_, std::move(options));
    int code = p.process().Wait(60000);
    *log = p.Describe();
    return code;
  }

  RedisServer redis_;
  TempDir dir_;
};

// ---------------------------------------------------------------------------------------------
// 1. Startup and readiness.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, StartsServingWithReflectionAndAnswersGetCluster) {
  auto server = StartServing(Defaults());
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  auto channel = Connect(server->port());
  EXPECT_EQ(HealthCheck(channel), kServing);

  auto services = ListServicesByReflection(channel);
  ASSERT_TRUE(services.ok()) << services.status();
  std::set<std::string> names(services->begin(), services->end());
  std::printf("reflection lists: %s\n", absl::StrJoin(names, ", ").c_str());
  EXPECT_TRUE(names.count("clustergov.clusters.v1.ClustersService")) << absl::StrJoin(names, ", ");
  EXPECT_TRUE(names.count("grpc.health.v1.Health")) << absl::StrJoin(names, ", ");
  bool has_reflection = false;
  for (const auto& n : names) has_reflection = has_reflection || absl::StartsWith(n, "grpc.reflection.");
  EXPECT_TRUE(has_reflection) << absl::StrJoin(names, ", ");

  auto stub = v1::ClustersService::NewStub(channel);
  v1::Cluster cluster;
  grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(cluster.name(), "clusters/hohhot-dairy");
  EXPECT_EQ(cluster.display_name_zh(), kHohhotDairyZh);

  // Without a token the same call is refused: the binary really authenticates.
  grpc::ClientContext anonymous;
  anonymous.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetClusterRequest req;
  req.set_name("clusters/hohhot-dairy");
  v1::Cluster ignored;
  EXPECT_EQ(stub->GetCluster(&anonymous, req, &ignored).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// ---------------------------------------------------------------------------------------------
// 2. Metrics.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, MetricsExposeRpcCountersAndPassPromtool) {
  auto server = StartServing(Defaults());
  auto stub = server->Stub();
  constexpr int kCalls = 5;
  for (int i = 0; i < kCalls; ++i) {
    v1::Cluster cluster;
    grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  {
    v1::Cluster cluster;  // one failing call, so a non-OK code is counted too
    EXPECT_EQ(GetCluster(stub.get(), "clusters/no-such-cluster", &cluster).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // Scrape twice: the second scrape also carries the exposer's own scrape metrics with values.
  ASSERT_TRUE(HttpGet(server->metrics_port(), "/metrics").ok());
  auto body = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  const std::string& text = *body;

  EXPECT_GE(SampleValue(text, "grpc_server_handled_total", {"grpc_method=\"GetCluster\"", "grpc_code=\"OK\""}),
            kCalls)
      << text;
  EXPECT_GE(SampleValue(text, "grpc_server_handled_total", {"grpc_method=\"GetCluster\"", "grpc_code=\"NotFound\""}),
            1)
      << text;
  EXPECT_GE(SampleValue(text, "grpc_server_started_total",
                        {"grpc_method=\"GetCluster\"", "grpc_service=\"clustergov.clusters.v1.ClustersService\"",
                         "grpc_type=\"unary\""}),
            kCalls + 1)
      << text;
  EXPECT_GE(SampleValue(text, "grpc_server_handling_seconds_bucket", {"grpc_method=\"GetCluster\"", "le=\"+Inf\""}),
            kCalls + 1)
      << text;
  EXPECT_EQ(SampleValue(text, "clustergov_build_info", {"service=\"clusters\""}), 1) << text;
  // The same cluster read five times with Redis up: the reads after the first come from Redis.
  EXPECT_GE(SampleValue(text, "clustergov_cache_hits_total", {"cache=\"clusters\""}), 1) << text;

  std::string file = dir_.File("metrics.txt");
  {
    std::ofstream out(file);
    out << text;
  }
  std::string output;
  int rc = RunCommand(absl::StrCat("promtool check metrics < '", file, "'"), &output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "") << "promtool reported problems:\n" << output;
}

// ---------------------------------------------------------------------------------------------
// 3. Graceful shutdown.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, SigtermDrainsInFlightCallsAndExitsZero) {
  ServerOptions options = Defaults();
  options.extra = {"--drain_seconds=5", "--pre_stop_seconds=0"};
  auto server = StartServing(options);
  ASSERT_TRUE(server->process().Running());

  std::atomic<bool> stop{false};
  std::atomic<int> ok_calls{0};
  std::mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::vector<std::string> wrong;
  auto burst = [&]() {
    auto stub = server->Stub();
    while (!stop.load()) {
      v1::Cluster cluster;
      grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster);
      std::lock_guard<std::mutex> lock(mu);
      codes[status.error_code()]++;
      if (status.ok()) {
        ok_calls.fetch_add(1);
        if (cluster.display_name_zh() != kHohhotDairyZh) wrong.push_back(cluster.DebugString());
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(burst);

  // SIGTERM only once the burst is really flowing.
  for (int i = 0; i < 1000 && ok_calls.load() < 50; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(ok_calls.load(), 50);
  server->process().Signal(SIGTERM);
  int code = server->process().Wait(60000);
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(code, 0) << server->Describe();
  std::vector<std::string> summary;
  for (const auto& [c, n] : codes) summary.push_back(absl::StrCat("code ", static_cast<int>(c), ": ", n));
  std::printf("burst during SIGTERM: %s\n", absl::StrJoin(summary, ", ").c_str());
  std::string log = server->Log();
  EXPECT_TRUE(absl::StrContains(log, "\"msg\":\"signal received\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, "\"msg\":\"draining\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, "\"msg\":\"stopped\"")) << log;
  EXPECT_TRUE(wrong.empty()) << wrong.front();
  // Calls either completed or were refused because the server was going away; nothing else.
  // CANCELLED is gRPC core's answer to a call that reaches an open connection after Shutdown()
  // began (it is never matched to a handler: no "rpc failed" is logged); calls already in a
  // handler finish OK (InFlightCallsFinishDuringTheDrain).
  for (const auto& [c, n] : codes) {
    EXPECT_TRUE(c == grpc::StatusCode::OK || c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::CANCELLED)
        << "status code " << c << " seen " << n << " times\n"
        << server->Describe();
  }
}

TEST_F(ProcessTest, InFlightCallsFinishDuringTheDrain) {
  ServerOptions options = Defaults();
  // Redis is paused below, so every GetCluster stays in its handler (a Redis GET that cannot
  // time out before the test resumes Redis): the calls are provably in flight at SIGTERM.
  options.extra = {"--drain_seconds=30", "--pre_stop_seconds=0", "--redis_timeout_ms=60000"};
  auto server = StartServing(options);
  constexpr int kCalls = 4;
  redis_.Pause();
  CallBatch batch(server->port(), kCalls, /*timeout_ms=*/60000);
  bool started = WaitStartedGetClusters(server->metrics_port(), kCalls);
  if (!started) redis_.Resume();
  ASSERT_TRUE(started) << server->Describe();

  server->process().Signal(SIGTERM);
  bool draining = false;
  for (int i = 0; i < 600 && !draining; ++i) {
    draining = absl::StrContains(server->Log(), "\"msg\":\"draining\"");
    if (!draining) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(draining) << server->Describe();
  EXPECT_TRUE(server->process().Running()) << "exited with calls still in flight\n" << server->Describe();
  redis_.Resume();
  batch.Join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(batch.statuses()[i].ok()) << i << ": " << batch.statuses()[i].error_code() << " "
                                          << batch.statuses()[i].error_message();
    EXPECT_EQ(batch.clusters()[i].display_name_zh(), kHohhotDairyZh);
  }
  EXPECT_EQ(server->process().Wait(60000), 0) << server->Describe();
  EXPECT_TRUE(absl::StrContains(server->Log(), "\"msg\":\"stopped\"")) << server->Describe();
}

TEST_F(ProcessTest, CallsOutlastingTheDrainAreCancelledAndTheProcessStillExitsZero) {
  ServerOptions options = Defaults();
  options.extra = {"--drain_seconds=1", "--pre_stop_seconds=0", "--redis_timeout_ms=60000"};
  auto server = StartServing(options);
  constexpr int kCalls = 4;
  redis_.Pause();
  CallBatch batch(server->port(), kCalls, /*timeout_ms=*/60000);
  bool started = WaitStartedGetClusters(server->metrics_port(), kCalls);
  if (!started) redis_.Resume();
  ASSERT_TRUE(started) << server->Describe();

  server->process().Signal(SIGTERM);
  batch.Join();  // Redis stays paused: only the end of the drain can finish these calls
  // gRPC cancels them at the end of the drain ("Cancelling all calls", UNAVAILABLE); without that
  // they would hang until their 60 s deadline.
  for (int i = 0; i < kCalls; ++i) {
    auto code = batch.statuses()[i].error_code();
    EXPECT_TRUE(code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::CANCELLED)
        << i << ": " << code << " " << batch.statuses()[i].error_message();
  }
  // The handlers are still blocked on Redis; once they return, the process must finish cleanly.
  redis_.Resume();
  EXPECT_EQ(server->process().Wait(60000), 0) << server->Describe();
  EXPECT_TRUE(absl::StrContains(server->Log(), "\"msg\":\"stopped\"")) << server->Describe();
}

TEST_F(ProcessTest, PreStopReportsNotServingBeforeExit) {
  ServerOptions options = Defaults();
  options.extra = {"--drain_seconds=5", "--pre_stop_seconds=1"};
  auto server = StartServing(options);
  auto channel = Connect(server->port());
  ASSERT_EQ(HealthCheck(channel), kServing);

  server->process().Signal(SIGTERM);
  bool saw_not_serving = false;
  std::vector<int> seen;
  for (int i = 0; i < 1000 && !saw_not_serving && server->process().Running(); ++i) {
    int status = HealthCheck(channel, 500);
    seen.push_back(status);
    saw_not_serving = status == kNotServing;
    if (!saw_not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("health statuses after SIGTERM: %s\n", absl::StrJoin(seen, ",").c_str());
  EXPECT_TRUE(saw_not_serving) << "health statuses seen: " << absl::StrJoin(seen, ",") << "\n" << server->Describe();
  EXPECT_EQ(server->process().Wait(60000), 0) << server->Describe();
}

// ---------------------------------------------------------------------------------------------
// 4. Startup errors.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, PortInUseFailsWithCannotListen) {
  auto first = StartServing(Defaults());
  ServerOptions second = Defaults();
  second.port = first->port();
  second.db = dir_.File("second.db");
  std::string log;
  int code = RunFailing(second, &log);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "still running\n" << log;
  EXPECT_TRUE(absl::StrContains(log, "cannot listen")) << log;
  EXPECT_TRUE(first->process().Running()) << first->Describe();
  EXPECT_EQ(HealthCheck(Connect(first->port())), kServing);
}

TEST_F(ProcessTest, DatabaseInMissingDirectoryFailsNamingThePath) {
  ServerOptions options = Defaults();
  options.db = "/nonexistent/dir/x.db";
  std::string log;
  int code = RunFailing(options, &log);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "still running\n" << log;
  EXPECT_TRUE(absl::StrContains(log, "/nonexistent/dir/x.db")) << log;
}

TEST_F(ProcessTest, MissingSecretFailsNamingTheFlag) {
  ServerOptions options = Defaults();
  options.with_secret = false;
  std::string log;
  int code = RunFailing(options, &log);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "still running\n" << log;
  EXPECT_TRUE(absl::StrContains(log, "auth_hs256_secret")) << log;
}

TEST_F(ProcessTest, BadRedisAddressFailsNamingTheFlag) {
  ServerOptions options = Defaults();
  options.extra = {"--redis=nohostport"};  // after the default --redis: the last one wins
  std::string log;
  int code = RunFailing(options, &log);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "still running\n" << log;
  EXPECT_TRUE(absl::StrContains(log, "--redis")) << log;
  EXPECT_TRUE(absl::StrContains(log, "nohostport")) << log;
}

TEST_F(ProcessTest, BadSynchronousModeFailsNamingTheFlag) {
  ServerOptions options = Defaults();
  options.extra = {"--db_synchronous=sometimes"};
  std::string log;
  int code = RunFailing(options, &log);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "still running\n" << log;
  EXPECT_TRUE(absl::StrContains(log, "--db_synchronous")) << log;
}

TEST_F(ProcessTest, SecretFromEnvironmentIsUsed) {
  ServerOptions options = Defaults();
  options.with_secret = false;
  options.env = {absl::StrCat("CLUSTERGOV_AUTH_HS256_SECRET=", kTestSecret)};
  auto server = StartServing(options);
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  // The environment's secret is the one tokens are checked with.
  auto stub = server->Stub();
  v1::Cluster cluster;
  grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cluster.display_name_zh(), kHohhotDairyZh);
  status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster,
                      MakeToken("op", "departments/industry_it", {"government"}, 3600,
                                "another-secret-that-is-long-enough-0123456789"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// ---------------------------------------------------------------------------------------------
// 5. Redis down at startup and while serving.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, StartsAndServesFromTheStoreWhenRedisIsDown) {
  redis_.Stop();
  auto server = StartServing(Defaults());
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  EXPECT_TRUE(absl::StrContains(server->Log(), "redis not reachable")) << server->Log();
  // The startup check already set the gauge: 0 from the first scrape.
  auto scraped = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_EQ(SampleValue(*scraped, "clustergov_redis_up", {}), 0) << *scraped;
  auto stub = server->Stub();
  for (int i = 0; i < 3; ++i) {
    v1::Cluster cluster;
    grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &cluster);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << server->Describe();
    EXPECT_EQ(cluster.display_name_zh(), kHohhotDairyZh);
  }
  grpc::ClientContext ctx;
  Authorize(&ctx, LeadToken());
  v1::ListClustersRequest req;
  v1::ListClustersResponse resp;
  grpc::Status status = stub->ListClusters(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.total_size(), kSeedClusters);
}

// clustergov_redis_up follows Redis: the probe PINGs every 5 s, so each change shows within 10 s.
TEST_F(ProcessTest, RedisUpGaugeFollowsRedisDownHungAndBack) {
  ServerOptions options = Defaults();
  options.extra = {"--drain_seconds=2", "--pre_stop_seconds=0"};
  auto server = StartServing(options);
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  const int port = server->metrics_port();
  EXPECT_EQ(WaitForSample(port, "clustergov_redis_up", {}, 1, 0), 1) << "set at startup\n" << server->Describe();

  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
  };
  auto t = std::chrono::steady_clock::now();
  redis_.Stop();
  EXPECT_EQ(WaitForSample(port, "clustergov_redis_up", {}, 0, 10000), 0) << server->Describe();
  std::printf("redis stopped: clustergov_redis_up 0 after %lld ms\n", static_cast<long long>(since(t)));

  t = std::chrono::steady_clock::now();
  redis_.Start();  // same port, empty
  EXPECT_EQ(WaitForSample(port, "clustergov_redis_up", {}, 1, 10000), 1) << server->Describe();
  std::printf("redis restarted: clustergov_redis_up 1 after %lld ms\n", static_cast<long long>(since(t)));

  // A hung Redis (SIGSTOP: connections are accepted, never answered) is down too: the PING times out.
  t = std::chrono::steady_clock::now();
  redis_.Pause();
  EXPECT_EQ(WaitForSample(port, "clustergov_redis_up", {}, 0, 10000), 0) << server->Describe();
  std::printf("redis hung: clustergov_redis_up 0 after %lld ms\n", static_cast<long long>(since(t)));
  std::string log = server->Log();
  EXPECT_TRUE(absl::StrContains(log, "\"msg\":\"redis reachable again\"")) << log;

  // The probe does not hold up SIGTERM, Redis still hung.
  t = std::chrono::steady_clock::now();
  server->process().Signal(SIGTERM);
  int code = server->process().Wait(10000);
  const long long exit_ms = static_cast<long long>(since(t));
  redis_.Resume();
  EXPECT_EQ(code, 0) << server->Describe();
  std::printf("SIGTERM with redis hung: exited after %lld ms\n", exit_ms);
  EXPECT_LT(exit_ms, 5000) << server->Describe();
}

// Without the cache, Redis still carries the service's domain events: it is probed and reported.
TEST_F(ProcessTest, RedisUpGaugeWithTheCacheOff) {
  ServerOptions options = Defaults();
  options.extra = {"--cache=false"};
  auto server = StartServing(options);
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  auto scraped = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_EQ(SampleValue(*scraped, "clustergov_build_info", {"service=\"clusters\""}), 1) << *scraped;
  EXPECT_EQ(SampleValue(*scraped, "clustergov_redis_up", {}), 1) << *scraped;
}

// ---------------------------------------------------------------------------------------------
// 6. Durability across SIGKILL and idempotent seeding.
// ---------------------------------------------------------------------------------------------

TEST_F(ProcessTest, AcknowledgedUpdateSurvivesSigkillAndSeedIsIdempotent) {
  const std::string kNewName = "Hohhot Dairy Cluster (durability check)";
  std::string new_etag;
  {
    auto server = StartServing(Defaults());
    auto stub = server->Stub();
    v1::Cluster current;
    grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &current);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_NE(current.display_name_en(), kNewName);

    grpc::ClientContext ctx;
    Authorize(&ctx, LeadToken());
    v1::UpdateClusterRequest req;
    req.mutable_cluster()->set_name("clusters/hohhot-dairy");
    req.mutable_cluster()->set_etag(current.etag());
    req.mutable_cluster()->set_display_name_en(kNewName);
    req.mutable_update_mask()->add_paths("display_name_en");
    v1::Cluster updated;
    status = stub->UpdateCluster(&ctx, req, &updated);
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    EXPECT_EQ(updated.display_name_en(), kNewName);
    EXPECT_NE(updated.etag(), current.etag());
    new_etag = updated.etag();

    server->process().Signal(SIGKILL);
    EXPECT_EQ(server->process().Wait(60000), 128 + SIGKILL);
  }
  // Nothing may come from the cache: the restarted process must read the store.
  EXPECT_EQ(redis_.Cli({"FLUSHALL"}), "OK");

  auto server = StartServing(Defaults());
  ASSERT_TRUE(server->process().Running()) << server->Describe();
  EXPECT_TRUE(absl::StrContains(server->Log(), "\"created\":\"0\"")) << server->Log();
  auto stub = server->Stub();
  v1::Cluster after;
  grpc::Status status = GetCluster(stub.get(), "clusters/hohhot-dairy", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(after.display_name_en(), kNewName);
  EXPECT_EQ(after.etag(), new_etag);
  EXPECT_EQ(after.display_name_zh(), kHohhotDairyZh);  // the seed did not overwrite it

  {
    grpc::ClientContext ctx;
    Authorize(&ctx, LeadToken());
    v1::ListClustersRequest req;
    req.set_page_size(100);
    v1::ListClustersResponse resp;
    status = stub->ListClusters(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.total_size(), kSeedClusters);
    EXPECT_EQ(resp.clusters_size(), kSeedClusters);
  }
  {
    grpc::ClientContext ctx;
    Authorize(&ctx, AuditorToken());
    common::v1::ListAuditEventsRequest req;
    req.set_filter("method = \"Seed\"");
    req.set_page_size(100);
    common::v1::ListAuditEventsResponse resp;
    status = stub->ListAuditEvents(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    EXPECT_EQ(resp.events_size(), kSeedClusters);
    EXPECT_EQ(resp.next_page_token(), "");
    std::set<std::string> resources;
    for (const auto& e : resp.events()) resources.insert(e.resource());
    EXPECT_EQ(resources.size(), static_cast<size_t>(kSeedClusters));
    EXPECT_TRUE(resources.count("clusters/hohhot-dairy"));
  }
  {
    // The acknowledged update is in the audit trail too (same transaction as the change).
    grpc::ClientContext ctx;
    Authorize(&ctx, AuditorToken());
    common::v1::ListAuditEventsRequest req;
    req.set_filter(
        "method = \"/clustergov.clusters.v1.ClustersService/UpdateCluster\" AND resource = \"clusters/hohhot-dairy\"");
    common::v1::ListAuditEventsResponse resp;
    status = stub->ListAuditEvents(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    ASSERT_EQ(resp.events_size(), 1);
    EXPECT_EQ(resp.events(0).etag_after(), new_etag);
  }
}

// The documented backup and restore: clustergov-backup copies the store of the running service
// (while it keeps taking writes), and a service started on the copy serves the same answers,
// including the audit trail, as the original did when the copy was taken.
TEST_F(ProcessTest, ABackupTakenWhileServingRestoresToTheSameAnswers) {
  auto server = StartServing(Defaults());
  auto stub = server->Stub();
  auto rename = [&](const std::string& name, v1::Cluster* out) {
    v1::Cluster current;
    grpc::Status s = GetCluster(stub.get(), "clusters/hohhot-dairy", &current);
    if (!s.ok()) return s;
    grpc::ClientContext ctx;
    Authorize(&ctx, LeadToken());
    v1::UpdateClusterRequest req;
    req.mutable_cluster()->set_name("clusters/hohhot-dairy");
    req.mutable_cluster()->set_etag(current.etag());
    req.mutable_cluster()->set_display_name_en(name);
    req.mutable_update_mask()->add_paths("display_name_en");
    return stub->UpdateCluster(&ctx, req, out);
  };
  v1::Cluster backed_up;
  grpc::Status status = rename("Hohhot Dairy Cluster (backed up)", &backed_up);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::string out;
  const std::string tool = BinaryPath("common/clustergov-backup");
  ASSERT_EQ(RunCommand(absl::StrCat(tool, " --db=", dir_.File("clusters.db"), " --to=", dir_.File("backup.db")), &out), 0)
      << out;
  EXPECT_TRUE(absl::StrContains(out, "backed up")) << out;
  // A second run never overwrites the first backup.
  EXPECT_EQ(RunCommand(absl::StrCat(tool, " --db=", dir_.File("clusters.db"), " --to=", dir_.File("backup.db")), &out), 1)
      << out;
  EXPECT_EQ(RunCommand(tool, &out), 2) << out;
  // The service keeps writing after the backup.
  v1::Cluster later;
  status = rename("Hohhot Dairy Cluster (after the backup)", &later);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // Restore: a service on the copy (the Redis cache flushed, as after a real restore).
  ASSERT_EQ(redis_.Cli({"FLUSHALL"}), "OK");
  ServerOptions restored_options = Defaults();
  restored_options.db = dir_.File("backup.db");
  auto restored = StartServing(restored_options);
  auto rstub = restored->Stub();
  v1::Cluster got;
  status = GetCluster(rstub.get(), "clusters/hohhot-dairy", &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.display_name_en(), "Hohhot Dairy Cluster (backed up)");
  EXPECT_EQ(got.etag(), backed_up.etag());
  grpc::ClientContext ctx;
  Authorize(&ctx, AuditorToken());
  common::v1::ListAuditEventsRequest req;
  req.set_filter("method = \"/clustergov.clusters.v1.ClustersService/UpdateCluster\"");
  common::v1::ListAuditEventsResponse resp;
  status = rstub->ListAuditEvents(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).etag_after(), backed_up.etag());
}

}  // namespace
}  // namespace clustergov::testing

// The benchmark baseline: a minimal gRPC server with one empty unary method, in the callback API,
// the callback API with the handler hopped onto the services' worker pool (how every service
// handler runs: common/server/call.h), or the sync API, so they can be measured against each
// other and the services on the same machine in the same run.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "clustergov/bench/v1/bench.grpc.pb.h"
#include "common/server/worker_pool.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50099", "listen address");
ABSL_FLAG(std::string, api, "callback", "callback, callback_pool or sync");
ABSL_FLAG(int, worker_threads, 32, "callback_pool: worker threads (the services' default)");
ABSL_FLAG(int, worker_queue, 4096, "callback_pool: queued requests before RESOURCE_EXHAUSTED");

namespace {

using clustergov::bench::v1::BenchService;
using clustergov::bench::v1::PingRequest;
using clustergov::bench::v1::PingResponse;

class CallbackImpl final : public BenchService::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const PingRequest* req, PingResponse* resp) override {
    resp->set_name(req->name());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// The reaction only queues; the handler runs and finishes the call on a pool thread, as
// server::Handler::Unary does (minus request id, authentication and status mapping).
class CallbackPoolImpl final : public BenchService::CallbackService {
 public:
  explicit CallbackPoolImpl(clustergov::server::WorkerPool* pool) : pool_(pool) {}

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const PingRequest* req, PingResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    bool queued = pool_->TrySubmit([req, resp, reactor] {
      resp->set_name(req->name());
      reactor->Finish(grpc::Status::OK);
    });
    if (!queued) reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "server overloaded, retry later"));
    return reactor;
  }

 private:
  clustergov::server::WorkerPool* pool_;
};

class SyncImpl final : public BenchService::Service {
  grpc::Status Ping(grpc::ServerContext*, const PingRequest* req, PingResponse* resp) override {
    resp->set_name(req->name());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  absl::ParseCommandLine(argc, argv);
  CallbackImpl callback;
  SyncImpl sync;
  std::unique_ptr<clustergov::server::WorkerPool> pool;  // outlives the server (declared first)
  std::unique_ptr<CallbackPoolImpl> callback_pool;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (absl::GetFlag(FLAGS_api) == "sync") {
    builder.RegisterService(&sync);
  } else if (absl::GetFlag(FLAGS_api) == "callback") {
    builder.RegisterService(&callback);
  } else if (absl::GetFlag(FLAGS_api) == "callback_pool") {
    if (absl::GetFlag(FLAGS_worker_threads) <= 0 || absl::GetFlag(FLAGS_worker_queue) <= 0) {
      std::fprintf(stderr, "--worker_threads and --worker_queue must be positive\n");
      return 2;
    }
    pool = std::make_unique<clustergov::server::WorkerPool>(absl::GetFlag(FLAGS_worker_threads),
                                                            static_cast<size_t>(absl::GetFlag(FLAGS_worker_queue)));
    callback_pool = std::make_unique<CallbackPoolImpl>(pool.get());
    builder.RegisterService(callback_pool.get());
  } else {
    std::fprintf(stderr, "--api must be callback, callback_pool or sync\n");
    return 2;
  }
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  std::printf("baseline %s server on port %d\n", absl::GetFlag(FLAGS_api).c_str(), port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown();
  return 0;
}

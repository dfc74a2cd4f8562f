// The benchmark baseline: a minimal gRPC server with one empty unary method, in the callback API
// (the API the services use) or the sync API, so both can be measured against each other and the
// services on the same machine in the same run.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "clustergov/bench/v1/bench.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50099", "listen address");
ABSL_FLAG(std::string, api, "callback", "callback or sync");

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
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (absl::GetFlag(FLAGS_api) == "sync") {
    builder.RegisterService(&sync);
  } else if (absl::GetFlag(FLAGS_api) == "callback") {
    builder.RegisterService(&callback);
  } else {
    std::fprintf(stderr, "--api must be callback or sync\n");
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

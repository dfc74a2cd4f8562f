#pragma once

// The unary handler helper: every RPC handler of every service is a few lines.
//
//   grpc::ServerUnaryReactor* GetCluster(grpc::CallbackServerContext* ctx,
//                                        const GetClusterRequest* req, Cluster* resp) override {
//     return handler_.Unary(ctx, resp, [this, req](const CallContext& call) {
//       return domain_->GetCluster(call, *req);
//     });
//   }
//
// The reaction never blocks: the function runs on the bounded worker pool, after the request id
// is settled (x-request-id, or a generated one, echoed in the initial metadata) and the caller is
// authenticated (UNAUTHENTICATED otherwise). Its absl::StatusOr is mapped to grpc::Status once.

#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "common/auth/auth.h"
#include "common/auth/principal.h"
#include "common/log/log.h"
#include "common/server/grpc_status.h"
#include "common/server/worker_pool.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace clustergov::server {

// What a handler knows about the call beyond its request.
struct CallContext {
  Principal principal;
  std::string request_id;
  const grpc::CallbackServerContext* server_context = nullptr;
  // For calls a service makes on its own behalf (no incoming call): the bearer token to send.
  std::string own_token;
};

class Handler {
 public:
  Handler(WorkerPool* pool, const Authenticator* authenticator) : pool_(pool), authenticator_(authenticator) {}

  template <typename Response, typename Fn>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, Response* response, Fn&& fn) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    bool queued = pool_->TrySubmit([this, ctx, response, reactor, fn = std::forward<Fn>(fn)]() mutable {
      CallContext call;
      absl::Status early = Prepare(ctx, &call);
      log::ScopedRequestId scope(call.request_id);
      if (!early.ok()) {
        Finish(ctx, reactor, call, early);
        return;
      }
      Run(ctx, reactor, call, response, fn);
    });
    if (!queued) Overloaded(reactor);
    return reactor;
  }

  // Like Unary, but first tries `fast` inline in the reaction. `fast` must not block (memory
  // only: a near-cache hit); it returns std::nullopt to hand the call to `slow` on the pool.
  // Authentication runs inline too (a verified-token cache hit, or one signature check).
  template <typename Response, typename Fast, typename Slow>
  grpc::ServerUnaryReactor* UnaryFast(grpc::CallbackServerContext* ctx, Response* response, Fast&& fast,
                                      Slow&& slow) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    CallContext call;
    absl::Status early = Prepare(ctx, &call);
    {
      log::ScopedRequestId scope(call.request_id);
      if (!early.ok()) {
        Finish(ctx, reactor, call, early);
        return reactor;
      }
      std::optional<absl::StatusOr<Response>> quick = fast(static_cast<const CallContext&>(call));
      if (quick.has_value()) {
        if (quick->ok()) *response = std::move(**quick);
        Finish(ctx, reactor, call, quick->status());
        return reactor;
      }
    }
    bool queued = pool_->TrySubmit(
        [this, ctx, response, reactor, call = std::move(call), slow = std::forward<Slow>(slow)]() mutable {
          log::ScopedRequestId scope(call.request_id);
          Run(ctx, reactor, call, response, slow);
        });
    if (!queued) Overloaded(reactor);
    return reactor;
  }

 private:
  template <typename Response, typename Fn>
  void Run(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const CallContext& call,
           Response* response, Fn& fn) {
    absl::StatusOr<Response> result = fn(call);
    if (result.ok()) *response = std::move(*result);
    Finish(ctx, reactor, call, result.status());
  }
  static void Overloaded(grpc::ServerUnaryReactor* reactor) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "server overloaded, retry later"));
  }

  // Request id, deadline/cancellation check, authentication.
  absl::Status Prepare(grpc::CallbackServerContext* ctx, CallContext* call);
  void Finish(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const CallContext& call,
              const absl::Status& status);

  WorkerPool* pool_;
  const Authenticator* authenticator_;
};

}  // namespace clustergov::server

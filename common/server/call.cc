#include "absl/strings/string_view.h"
#include "common/server/call.h"

#include <chrono>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace clustergov::server {
namespace {

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16), absl::Hex(rng(), absl::kZeroPad16));
}

// A caller-supplied id is kept only if it is short and printable (it ends up in logs).
bool UsableRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') {
      return false;
    }
  }
  return true;
}

absl::string_view Metadata(const grpc::CallbackServerContext* ctx, absl::string_view key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

absl::Status Handler::Prepare(grpc::CallbackServerContext* ctx, CallContext* call) {
  call->server_context = ctx;
  absl::string_view supplied = Metadata(ctx, "x-request-id");
  call->request_id = UsableRequestId(supplied) ? std::string(supplied) : NewRequestId();
  ctx->AddInitialMetadata("x-request-id", call->request_id);
  if (ctx->IsCancelled()) return absl::CancelledError("call cancelled by the client");
  if (ctx->deadline() < std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError("deadline passed before the call was handled");
  }
  auto principal = authenticator_->Authenticate(Metadata(ctx, "authorization"));
  if (!principal.ok()) return principal.status();
  call->principal = std::move(*principal);
  return absl::OkStatus();
}

void Handler::Finish(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const CallContext& call,
                     const absl::Status& status) {
  if (!status.ok()) {
    // The message may quote the request: logged as bounded as it is answered.
    log::Info("rpc failed",
              {{"code", metrics::GrpcCodeName(static_cast<int>(status.code()))},
               {"subject", call.principal.subject},
               {"error", status.code() == absl::StatusCode::kInternal
                             ? std::string("internal")
                             : Abbreviate(status.message(), kMaxStatusMessageBytes)}});
  }
  reactor->Finish(ToGrpcStatus(status));
}

}  // namespace clustergov::server

#include "common/server/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "common/server/config.h"

namespace clustergov::server {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  args.SetLoadBalancingPolicyName("round_robin");
  auto ms = [](absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); };
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, ms(options.connect_timeout));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, ms(options.initial_reconnect_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, ms(options.max_reconnect_backoff));
  // A restarted pod behind a headless Service comes back on a new address: re-resolve within a
  // second of losing the old one (gRPC's default waits up to 30 s between resolutions).
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, int max_message_bytes) {
  ChannelOptions options;
  options.max_message_bytes = max_message_bytes;
  return MakeChannel(target, options);
}

std::unique_ptr<grpc::ClientContext> OutgoingContext(const CallContext& call, absl::Duration timeout) {
  std::unique_ptr<grpc::ClientContext> ctx;
  if (call.server_context != nullptr) {
    ctx = grpc::ClientContext::FromCallbackServerContext(*call.server_context);
  } else {
    ctx = std::make_unique<grpc::ClientContext>();
  }
  ctx->set_wait_for_ready(true);
  auto cap = absl::ToChronoTime(absl::Now() + timeout);
  if (call.server_context == nullptr || call.server_context->deadline() > cap) ctx->set_deadline(cap);
  if (!call.own_token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + call.own_token);
  } else if (call.server_context != nullptr) {
    const auto& md = call.server_context->client_metadata();
    auto auth = md.find("authorization");
    if (auth != md.end()) ctx->AddMetadata("authorization", std::string(auth->second.data(), auth->second.size()));
  }
  if (!call.request_id.empty()) ctx->AddMetadata("x-request-id", call.request_id);
  return ctx;
}

}  // namespace clustergov::server

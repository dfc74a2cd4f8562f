#include "services/support/client/indicator_source.h"

#include <grpcpp/grpcpp.h>

#include "clustergov/support/v1/support.grpc.pb.h"

namespace clustergov::support {

std::unique_ptr<indicators::IndicatorSource> NewSupportIndicatorSource(std::shared_ptr<grpc::Channel> channel,
                                                                       absl::Duration timeout) {
  std::shared_ptr<v1::SupportService::Stub> stub = v1::SupportService::NewStub(channel);
  return indicators::NewGrpcIndicatorSource(
      "support",
      [stub](grpc::ClientContext* ctx, const common::v1::GetClusterIndicatorsRequest& req,
             common::v1::ClusterIndicators* resp) { return stub->GetClusterIndicators(ctx, req, resp); },
      timeout);
}

}  // namespace clustergov::support

#include "services/promotion/client/indicator_source.h"

#include <grpcpp/grpcpp.h>

#include "clustergov/promotion/v1/promotion.grpc.pb.h"

namespace clustergov::promotion {

std::unique_ptr<indicators::IndicatorSource> NewPromotionIndicatorSource(std::shared_ptr<grpc::Channel> channel,
                                                                         absl::Duration timeout) {
  std::shared_ptr<v1::PromotionService::Stub> stub = v1::PromotionService::NewStub(channel);
  return indicators::NewGrpcIndicatorSource(
      "promotion",
      [stub](grpc::ClientContext* ctx, const common::v1::GetClusterIndicatorsRequest& req,
             common::v1::ClusterIndicators* resp) { return stub->GetClusterIndicators(ctx, req, resp); },
      timeout);
}

}  // namespace clustergov::promotion

#include "services/talent/client/indicator_source.h"

#include <grpcpp/grpcpp.h>

#include "clustergov/talent/v1/talent.grpc.pb.h"

namespace clustergov::talent {

std::unique_ptr<indicators::IndicatorSource> NewTalentIndicatorSource(std::shared_ptr<grpc::Channel> channel,
                                                                      absl::Duration timeout) {
  std::shared_ptr<v1::TalentService::Stub> stub = v1::TalentService::NewStub(channel);
  return indicators::NewGrpcIndicatorSource(
      "talent",
      [stub](grpc::ClientContext* ctx, const common::v1::GetClusterIndicatorsRequest& req,
             common::v1::ClusterIndicators* resp) { return stub->GetClusterIndicators(ctx, req, resp); },
      timeout);
}

}  // namespace clustergov::talent

#include "services/enterprises/client/indicator_source.h"

#include <grpcpp/grpcpp.h>

#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"

namespace clustergov::enterprises {

std::unique_ptr<indicators::IndicatorSource> NewEnterprisesIndicatorSource(std::shared_ptr<grpc::Channel> channel,
                                                                           absl::Duration timeout) {
  std::shared_ptr<v1::EnterprisesService::Stub> stub = v1::EnterprisesService::NewStub(channel);
  return indicators::NewGrpcIndicatorSource(
      "enterprises",
      [stub](grpc::ClientContext* ctx, const common::v1::GetClusterIndicatorsRequest& req,
             common::v1::ClusterIndicators* resp) { return stub->GetClusterIndicators(ctx, req, resp); },
      timeout);
}

}  // namespace clustergov::enterprises

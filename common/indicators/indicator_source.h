#pragma once

// How the clusters service gathers a cluster-year's indicators from the services that own the
// data. One interface; each source service's client/ library makes an implementation over a
// reused channel (services/<name>/client/indicator_source.h: New<Name>IndicatorSource).
//
// Every call carries the caller's token (or CallContext::own_token) and request id, with a
// deadline of min(incoming deadline, now + timeout). Errors:
//   INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, UNAUTHENTICATED: as the
//     source answered, the message prefixed with the source's name ("promotion: no accepted ...");
//   UNAVAILABLE "the <source> service is unavailable ..." for anything else (down, deadline, an
//     internal error, or an answer that is not about the cluster-year asked for).

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/server/call.h"

namespace grpc {
class ClientContext;
class Status;
}  // namespace grpc

namespace clustergov::indicators {

class IndicatorSource {
 public:
  virtual ~IndicatorSource() = default;
  // "enterprises", "promotion", "support" or "talent": the `source` of every indicator it returns.
  virtual const std::string& name() const = 0;
  // The indicators the source owns about `cluster` ("clusters/{id}") in `year`.
  virtual absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(const server::CallContext& call,
                                                                             absl::string_view cluster,
                                                                             int year) = 0;
};

// The gRPC implementation the client libraries build: `rpc` calls the source's stub.
using IndicatorsRpc = std::function<grpc::Status(grpc::ClientContext*, const common::v1::GetClusterIndicatorsRequest&,
                                                 common::v1::ClusterIndicators*)>;
std::unique_ptr<IndicatorSource> NewGrpcIndicatorSource(std::string name, IndicatorsRpc rpc, absl::Duration timeout);

}  // namespace clustergov::indicators

#include "common/indicators/indicator_source.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/server/client.h"

namespace clustergov::indicators {
namespace {

class GrpcIndicatorSource : public IndicatorSource {
 public:
  GrpcIndicatorSource(std::string name, IndicatorsRpc rpc, absl::Duration timeout)
      : name_(std::move(name)), rpc_(std::move(rpc)), timeout_(timeout) {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(const server::CallContext& call,
                                                                     absl::string_view cluster, int year) override {
    common::v1::GetClusterIndicatorsRequest req;
    req.set_cluster(std::string(cluster));
    req.set_year(year);
    common::v1::ClusterIndicators out;
    auto ctx = server::OutgoingContext(call, timeout_);
    grpc::Status s = rpc_(ctx.get(), req, &out);
    switch (s.error_code()) {
      case grpc::StatusCode::OK:
        return Checked(req, std::move(out));
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::UNAUTHENTICATED:
        return absl::Status(static_cast<absl::StatusCode>(s.error_code()), absl::StrCat(name_, ": ", s.error_message()));
      default:
        log::Warn("indicator source unavailable",
                  {{"source", name_}, {"code", std::to_string(s.error_code())}, {"error", s.error_message()}});
        return absl::UnavailableError(absl::StrCat("the ", name_, " service is unavailable (", s.error_message(),
                                                   "); retry later"));
    }
  }

 private:
  // An answer about another cluster-year, or with indicators of another source, is not used.
  absl::StatusOr<common::v1::ClusterIndicators> Checked(const common::v1::GetClusterIndicatorsRequest& req,
                                                        common::v1::ClusterIndicators out) const {
    bool consistent = out.cluster() == req.cluster() && out.year() == req.year();
    for (const auto& i : out.indicators()) {
      consistent = consistent && i.source() == name_ && absl::StartsWith(i.key(), absl::StrCat(name_, "."));
    }
    if (!consistent) {
      log::Warn("indicator source answered inconsistently", {{"source", name_}, {"cluster", req.cluster()}});
      return absl::UnavailableError(absl::StrCat("the ", name_, " service answered for another cluster-year or source"));
    }
    return out;
  }

  std::string name_;
  IndicatorsRpc rpc_;
  absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<IndicatorSource> NewGrpcIndicatorSource(std::string name, IndicatorsRpc rpc, absl::Duration timeout) {
  return std::make_unique<GrpcIndicatorSource>(std::move(name), std::move(rpc), timeout);
}

}  // namespace clustergov::indicators

#include "common/server/grpc_status.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace clustergov::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      log::Error("internal error", {{"detail", status.message()}});
      message = "internal error";
      if (!log::CurrentRequestId().empty()) {
        absl::StrAppend(&message, " (request id ", log::CurrentRequestId(), ")");
      }
      return grpc::Status(code, message);
    default:
      break;
  }
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload.has_value()) return grpc::Status(code, message);
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url(std::string(kBadRequestTypeUrl));
  any->set_value(std::string(*payload));
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace clustergov::server

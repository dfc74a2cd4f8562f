#include "common/server/grpc_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace clustergov::server {
namespace {

// The violations of `payload` (a serialized google.rpc.BadRequest), each abbreviated, as many
// as fit in kMaxViolationsBytes; false when the payload does not parse.
bool BoundedBadRequest(const absl::Cord& payload, google::rpc::BadRequest* out) {
  google::rpc::BadRequest in;
  if (!in.ParseFromString(std::string(payload))) return false;
  size_t used = 0;
  for (const auto& v : in.field_violations()) {
    std::string field = Abbreviate(v.field(), kMaxViolationFieldBytes);
    std::string description = Abbreviate(v.description(), kMaxViolationDescriptionBytes);
    used += field.size() + description.size();
    if (used > kMaxViolationsBytes) break;
    auto* bounded = out->add_field_violations();
    bounded->set_field(std::move(field));
    bounded->set_description(std::move(description));
  }
  return true;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  auto code = static_cast<grpc::StatusCode>(status.code());
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss: {
      log::Error("internal error", {{"detail", Abbreviate(status.message(), 4096)}});
      std::string message = "internal error";
      if (!log::CurrentRequestId().empty()) {
        absl::StrAppend(&message, " (request id ", log::CurrentRequestId(), ")");
      }
      return grpc::Status(code, message);
    }
    default:
      break;
  }
  std::string message = Abbreviate(status.message(), kMaxStatusMessageBytes);
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  google::rpc::BadRequest bad_request;
  if (!payload.has_value() || !BoundedBadRequest(*payload, &bad_request)) return grpc::Status(code, message);
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url(std::string(kBadRequestTypeUrl));
  any->set_value(bad_request.SerializeAsString());
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace clustergov::server

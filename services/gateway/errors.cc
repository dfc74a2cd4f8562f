#include "services/gateway/errors.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace clustergov::gateway {
namespace {

std::string ToJson(const google::rpc::Status& status) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // "details": [] even when empty
  std::string json;
  if (google::protobuf::util::MessageToJsonString(status, &json, options).ok()) return json;
  // A detail of a type this binary does not know: drop the details rather than the error.
  google::rpc::Status bare = status;
  bare.clear_details();
  json.clear();
  google::protobuf::util::MessageToJsonString(bare, &json, options);
  return json;
}

}  // namespace

int HttpStatusFromCode(int code) {
  switch (static_cast<google::rpc::Code>(code)) {
    case google::rpc::OK:
      return 200;
    case google::rpc::INVALID_ARGUMENT:
    case google::rpc::FAILED_PRECONDITION:
    case google::rpc::OUT_OF_RANGE:
      return 400;
    case google::rpc::UNAUTHENTICATED:
      return 401;
    case google::rpc::PERMISSION_DENIED:
      return 403;
    case google::rpc::NOT_FOUND:
      return 404;
    case google::rpc::ALREADY_EXISTS:
    case google::rpc::ABORTED:
      return 409;
    case google::rpc::RESOURCE_EXHAUSTED:
      return 429;
    case google::rpc::CANCELLED:
      return 499;
    case google::rpc::UNIMPLEMENTED:
      return 501;
    case google::rpc::UNAVAILABLE:
      return 503;
    case google::rpc::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorBody(int grpc_code, absl::string_view message, const std::string& status_details) {
  google::rpc::Status status;
  if (!status_details.empty() && status.ParseFromString(status_details)) {
    status.set_code(grpc_code);  // the trailer's code is the authority
    if (status.message().empty()) status.set_message(std::string(message));
  } else {
    status.Clear();
    status.set_code(grpc_code);
    status.set_message(std::string(message));
  }
  return ToJson(status);
}

std::string ErrorBody(const absl::Status& s) {
  google::rpc::Status status;
  status.set_code(static_cast<int>(s.code()));
  status.set_message(std::string(s.message()));
  std::vector<FieldViolation> violations = GetFieldViolations(s);
  if (!violations.empty()) {
    google::rpc::BadRequest bad;
    for (const auto& v : violations) {
      auto* fv = bad.add_field_violations();
      fv->set_field(v.field);
      fv->set_description(v.description);
    }
    status.add_details()->PackFrom(bad);
  }
  return ToJson(status);
}

HttpResponse ErrorResponse(int http_status, const absl::Status& status) {
  HttpResponse r;
  r.status = http_status;
  r.body = ErrorBody(status);
  return r;
}

HttpResponse GetOnlyResponse(absl::string_view method, absl::string_view path) {
  HttpResponse r =
      ErrorResponse(405, absl::UnimplementedError(absl::StrCat("method ", method, " not allowed on ", path)));
  r.headers.emplace_back("Allow", "GET");
  return r;
}

}  // namespace clustergov::gateway

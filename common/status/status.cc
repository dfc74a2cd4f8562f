#include "absl/strings/string_view.h"
#include "common/status/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace clustergov {

absl::Status InvalidField(absl::string_view field, absl::string_view description) {
  return InvalidFields({{std::string(field), std::string(description)}});
}

absl::Status InvalidFields(const std::vector<FieldViolation>& violations) {
  if (violations.empty()) {
    return absl::OkStatus();
  }
  google::rpc::BadRequest bad_request;
  std::string message = "invalid argument: ";
  for (size_t i = 0; i < violations.size(); ++i) {
    auto* v = bad_request.add_field_violations();
    v->set_field(violations[i].field);
    v->set_description(violations[i].description);
    absl::StrAppend(&message, i ? "; " : "", violations[i].field, ": ", violations[i].description);
  }
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

std::string Abbreviate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::string marker = absl::StrCat("... (", text.size(), " bytes)");
  size_t keep = max_bytes > marker.size() ? max_bytes - marker.size() : 0;
  // Never cut a multi-byte character: back up to the byte that starts one.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  return absl::StrCat(text.substr(0, keep), marker);
}

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload.has_value()) {
    return out;
  }
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) {
    return out;
  }
  for (const auto& v : bad_request.field_violations()) {
    out.push_back({v.field(), v.description()});
  }
  return out;
}

}  // namespace clustergov

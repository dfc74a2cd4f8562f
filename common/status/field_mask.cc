#include "common/status/field_mask.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "google/protobuf/util/field_mask_util.h"

namespace clustergov {

absl::StatusOr<std::vector<std::string>> ResolveUpdateMask(const google::protobuf::FieldMask& mask,
                                                            const std::set<std::string>& updatable) {
  std::set<std::string> paths;
  bool all = mask.paths_size() == 0;
  for (const auto& path : mask.paths()) {
    if (path == "*") {
      all = true;
    } else if (updatable.count(path) == 0) {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is not an updatable field"));
    } else {
      paths.insert(path);
    }
  }
  if (all) paths = updatable;
  return std::vector<std::string>(paths.begin(), paths.end());
}

void CopyFields(const std::vector<std::string>& paths, const google::protobuf::Message& from,
                google::protobuf::Message* to) {
  google::protobuf::FieldMask mask;
  for (const auto& p : paths) mask.add_paths(p);
  google::protobuf::util::FieldMaskUtil::MergeOptions options;
  options.set_replace_message_fields(true);
  options.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(from, mask, options, to);
}

}  // namespace clustergov

#include "absl/strings/string_view.h"
#include "services/clusters/seed.h"

#include <fstream>
#include <string_view>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace clustergov::clusters {

extern const std::string_view kEmbeddedSeedJson;
extern const std::string_view kEmbeddedRuleSetJson;

absl::StatusOr<v1::SeedData> LoadSeedData(const std::string& path) {
  std::string json;
  if (path.empty()) {
    json.assign(kEmbeddedSeedJson.data(), kEmbeddedSeedJson.size());
  } else {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read seed file ", path));
    std::stringstream ss;
    ss << in.rdbuf();
    json = ss.str();
  }
  v1::SeedData seed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(json, &seed, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed data ", path.empty() ? "(embedded)" : path, ": ", std::string(status.message())));
  }
  return seed;
}

absl::StatusOr<v1::RuleSet> LoadDefaultRuleSet() {
  v1::RuleSet rule_set;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      std::string(kEmbeddedRuleSetJson.data(), kEmbeddedRuleSetJson.size()), &rule_set, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("default rule set: ", std::string(status.message())));
  }
  return rule_set;
}

}  // namespace clustergov::clusters

#pragma once

// Where an evaluation's snapshot comes from: each service that owns data about clusters answers
// for a cluster-year. Implementations: the sources' gRPC clients in production; tests may pass
// in-process ones.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/server/call.h"

namespace clustergov::clusters {

class IndicatorSource {
 public:
  virtual ~IndicatorSource() = default;
  // "enterprises", "promotion", "support" or "talent".
  virtual const std::string& name() const = 0;
  // UNAVAILABLE naming the service when it cannot answer; FAILED_PRECONDITION and the like as
  // the source answered, prefixed with its name.
  virtual absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(const server::CallContext& call,
                                                                             absl::string_view cluster, int year) = 0;
};

}  // namespace clustergov::clusters

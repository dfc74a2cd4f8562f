#pragma once

// How other services check enterprises: a gRPC client of the enterprises service with positive
// answers cached in Redis (in the caller's namespace), so repeated checks do not call it.
// Negative answers are never cached (an enterprise that joins a cluster is seen at once).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/cache/cache.h"
#include "common/server/call.h"

namespace grpc {
class Channel;
}

namespace clustergov::enterprises {

class EnterpriseDirectory {
 public:
  EnterpriseDirectory(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<cache::Cache> cache,
                      absl::Duration timeout = absl::Seconds(2));
  ~EnterpriseDirectory();

  // OK when enterprises/{uscc} is registered, active and a member of clusters/{cluster_id};
  // FAILED_PRECONDITION saying which of those is not true; UNAVAILABLE when the enterprises
  // service cannot answer.
  absl::Status CheckMember(const server::CallContext& call, const std::string& uscc, const std::string& cluster_id);
  // OK when enterprises/{uscc} is registered and active; FAILED_PRECONDITION saying which is not
  // true; UNAVAILABLE when the enterprises service cannot answer.
  absl::Status CheckRegistered(const server::CallContext& call, const std::string& uscc);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustergov::enterprises

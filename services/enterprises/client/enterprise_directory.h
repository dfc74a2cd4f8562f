#pragma once

// How other services check enterprises: a gRPC client of the enterprises service with positive
// answers cached in Redis (in the caller's namespace), so repeated checks do not call it.
// Negative answers are never cached (an enterprise that joins a cluster is seen at once). The
// answers about an enterprise are dropped as soon as the enterprises service's EnterpriseChanged
// event for it is consumed (docs/events.md); the TTL is only a safety net.

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/cache/cache.h"
#include "common/server/call.h"
#include "common/server/runtime.h"

namespace grpc {
class Channel;
}

namespace clustergov::enterprises {

class EnterpriseDirectory {
 public:
  // Answers cached in `runtime`'s cache "enterpriseinfo" for `ttl` (none when caching is
  // disabled), dropped on the enterprises service's EnterpriseChanged events
  // (Runtime::DropOnEvents). Construct before runtime.Start(); the directory must outlive the
  // runtime's serving.
  EnterpriseDirectory(server::Runtime& runtime, std::shared_ptr<grpc::Channel> channel, std::chrono::seconds ttl,
                      absl::Duration timeout = absl::Seconds(2));
  ~EnterpriseDirectory();

  // OK when enterprises/{uscc} is registered, active and a member of clusters/{cluster_id};
  // FAILED_PRECONDITION saying which of those is not true; UNAVAILABLE when the enterprises
  // service cannot answer.
  absl::Status CheckMember(const server::CallContext& call, const std::string& uscc, const std::string& cluster_id);
  // OK when enterprises/{uscc} is registered and active; FAILED_PRECONDITION saying which is not
  // true; UNAVAILABLE when the enterprises service cannot answer.
  absl::Status CheckRegistered(const server::CallContext& call, const std::string& uscc);
  // Drops every cached answer about "enterprises/{uscc}" (or bare uscc).
  void Invalidate(absl::string_view enterprise);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustergov::enterprises

#pragma once

// How other services learn about clusters: a gRPC client of the clusters service with answers
// cached in Redis (in the caller's own namespace), so repeated checks do not call the service.
//
// Never a wrong answer: NOT_FOUND only when the clusters service said so; when it cannot be
// reached and nothing is cached, UNAVAILABLE naming the clusters service. A cached answer is
// dropped as soon as the clusters service's ClusterChanged event for it is consumed (its lead
// departments, its promotion organization, ...; docs/events.md); the TTL (default 60 s) is only a
// safety net for an event that cannot be delivered.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/cache/cache.h"
#include "common/server/call.h"
#include "common/server/runtime.h"

namespace grpc {
class Channel;
}

namespace clustergov::clusters {

class ClusterDirectory {
 public:
  // Answers cached in `runtime`'s cache "clusterinfo" for `ttl` (none when caching is disabled),
  // dropped on the clusters service's ClusterChanged events (Runtime::DropOnEvents). Construct
  // before runtime.Start(); the directory must outlive the runtime's serving. Calls carry the
  // caller's token and request id and a deadline of at most `timeout` (less if the incoming call
  // has less left).
  ClusterDirectory(server::Runtime& runtime, std::shared_ptr<grpc::Channel> channel, std::chrono::seconds ttl,
                   absl::Duration timeout = absl::Seconds(2));
  ~ClusterDirectory();

  // The cluster "clusters/{id}" (or bare id). NOT_FOUND, UNAVAILABLE as above; a deleted cluster
  // is returned with state DELETED (callers decide).
  absl::StatusOr<v1::Cluster> Lookup(const server::CallContext& call, absl::string_view cluster);
  // The same, skipping (and refreshing) the cached answer: for a decision that a recent change
  // elsewhere may have altered (e.g. a promotion organization designated seconds ago).
  absl::StatusOr<v1::Cluster> LookupFresh(const server::CallContext& call, absl::string_view cluster);
  // Drops the cached answer for "clusters/{id}" (or bare id).
  void Invalidate(absl::string_view cluster);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// True when `principal` acts for one of the cluster's lead departments.
bool IsLeadDepartmentOf(const Principal& principal, const v1::Cluster& cluster);
// True when `principal` is the cluster's designated promotion organization.
bool IsPromotionOrganizationOf(const Principal& principal, const v1::Cluster& cluster);

}  // namespace clustergov::clusters

#pragma once

// The clusters domain: validation, authorization and the rules of the cluster registry, tier
// designation, target progress and key-task progress. It knows nothing of gRPC wiring: every
// method takes the call's context and request and returns absl::StatusOr.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/cache/cache.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "services/clusters/cluster_repository.h"

namespace clustergov::clusters {

using server::CallContext;

class ClustersDomain {
 public:
  // `cache` may be null (no caching). `key_tasks` is the plan's 15 tasks (reference data).
  ClustersDomain(std::unique_ptr<ClusterRepository> repository, std::unique_ptr<cache::Cache> cache,
                 const PageTokenCodec* page_tokens, std::vector<v1::KeyTask> key_tasks);

  absl::StatusOr<v1::Cluster> CreateCluster(const CallContext& call, const v1::CreateClusterRequest& req);
  absl::StatusOr<v1::Cluster> GetCluster(const CallContext& call, const v1::GetClusterRequest& req);
  // GetCluster answered from the near cache alone (never blocks), or nullopt.
  std::optional<absl::StatusOr<v1::Cluster>> GetClusterFast(const CallContext& call, const v1::GetClusterRequest& req);
  absl::StatusOr<v1::ListClustersResponse> ListClusters(const CallContext& call, const v1::ListClustersRequest& req);
  absl::StatusOr<v1::Cluster> UpdateCluster(const CallContext& call, const v1::UpdateClusterRequest& req);
  absl::StatusOr<v1::Cluster> DeleteCluster(const CallContext& call, const v1::DeleteClusterRequest& req);
  absl::StatusOr<v1::Cluster> UndeleteCluster(const CallContext& call, const v1::UndeleteClusterRequest& req);
  absl::StatusOr<v1::Cluster> DesignateTier(const CallContext& call, const v1::DesignateTierRequest& req);
  absl::StatusOr<v1::ListTierDesignationsResponse> ListTierDesignations(const CallContext& call,
                                                                        const v1::ListTierDesignationsRequest& req);
  absl::StatusOr<v1::TargetProgress> GetTargetProgress(const CallContext& call,
                                                       const v1::GetTargetProgressRequest& req);
  absl::StatusOr<v1::ListKeyTasksResponse> ListKeyTasks(const CallContext& call, const v1::ListKeyTasksRequest& req);
  absl::StatusOr<v1::TaskProgress> UpdateTaskProgress(const CallContext& call,
                                                      const v1::UpdateTaskProgressRequest& req);
  absl::StatusOr<v1::ListTaskProgressResponse> ListTaskProgress(const CallContext& call,
                                                                const v1::ListTaskProgressRequest& req);
  absl::StatusOr<v1::ReferenceData> GetReferenceData(const CallContext& call, const v1::GetReferenceDataRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // Loads the seed clusters that are missing (idempotent); returns how many were created.
  absl::StatusOr<int> Seed(const v1::SeedData& seed);

  // Validation of a full cluster record as a create or update would store it (exposed for tests).
  static absl::Status ValidateCluster(const v1::Cluster& cluster, const std::string& prefix);

  // For the evaluation domain: a cluster through the cache (NOT_FOUND when missing), every
  // cluster from the store, and the cache's guard of a write to a cluster (held across the write).
  absl::StatusOr<v1::Cluster> LoadCached(const std::string& id);
  absl::StatusOr<std::vector<v1::Cluster>> AllClusters();
  cache::PendingWrite ClusterWrite(const std::string& id);

 private:
  const v1::KeyTask* FindTask(int number) const;

  std::unique_ptr<ClusterRepository> repo_;
  std::unique_ptr<cache::Cache> cache_;
  const PageTokenCodec* page_tokens_;
  std::vector<v1::KeyTask> key_tasks_;
};

// The tier designation rule, shared by DesignateTier and an evaluation's decision: the cluster
// exists and is active, `p` acts for one of its lead departments, `etag` (if set) is current, and
// the cluster is not already at `tier`. Returns the change with its designation record.
absl::StatusOr<ClusterChange> DesignationChange(const Principal& p, const std::optional<v1::Cluster>& current,
                                                const std::string& id, common::v1::Tier tier,
                                                const std::string& reason, const std::string& etag);

// Plan goal per tier for a target year (2027: 1 world-class, 3 national, 9 region); 0 otherwise.
int PlanGoal(int target_year, common::v1::Tier tier);

}  // namespace clustergov::clusters

#pragma once

// The clusters service's object graph, built the one way main() and the tests build it: the
// registry domain, the evaluation domain with its indicator sources, the gRPC service, with the
// seed data (13 clusters, when `load_seed`) and the default rule set loaded when missing, the
// consumers of the events the cluster counts follow (cluster_counts.h), its events published and
// the promotion service's designation events followed, and the notifications service with its
// event consumers (registered on the runtime; call before runtime.Start()).

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/server/runtime.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_service.h"
#include "services/clusters/evaluation_domain.h"
#include "services/clusters/notifications_service.h"
#include "common/indicators/indicator_source.h"

namespace clustergov::clusters {

struct ClustersGraph {
  std::unique_ptr<ClustersDomain> domain;
  std::unique_ptr<EvaluationDomain> evaluation;
  std::unique_ptr<ClustersServiceImpl> service;
  // The notifications inboxes, fed by the consumers the graph registers on the runtime.
  std::unique_ptr<notifications::NotificationsDomain> notifications;
  std::unique_ptr<notifications::NotificationsServiceImpl> notifications_service;
  int seeded_clusters = 0;

  // What the runtime serves.
  std::vector<grpc::Service*> services() const { return {service.get(), notifications_service.get()}; }
};

absl::StatusOr<ClustersGraph> BuildClustersGraph(server::Runtime& runtime, const v1::SeedData& seed, bool load_seed,
                                                 std::vector<std::unique_ptr<IndicatorSource>> sources);

}  // namespace clustergov::clusters

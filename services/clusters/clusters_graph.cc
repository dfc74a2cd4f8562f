#include "services/clusters/clusters_graph.h"

#include <functional>
#include <memory>
#include <string>

#include "common/status/status.h"
#include "services/clusters/cluster_counts.h"
#include "services/clusters/cluster_repository.h"
#include "services/clusters/evaluation_repository.h"
#include "services/clusters/seed.h"

namespace clustergov::clusters {

absl::StatusOr<ClustersGraph> BuildClustersGraph(server::Runtime& rt, const v1::SeedData& seed, bool load_seed,
                                                 std::vector<std::unique_ptr<IndicatorSource>> sources) {
  ClustersGraph g;
  std::vector<v1::KeyTask> tasks(seed.key_tasks().begin(), seed.key_tasks().end());
  CG_ASSIGN_OR_RETURN(auto repo, CreateClusterRepository(&rt.db(), static_cast<int>(tasks.size())));
  g.domain = std::make_unique<ClustersDomain>(std::move(repo), rt.MakeCache("clusters"), &rt.page_tokens(),
                                              tasks);
  if (load_seed) {
    CG_ASSIGN_OR_RETURN(g.seeded_clusters, g.domain->Seed(seed));
  }
  CG_RETURN_IF_ERROR(ConsumeClusterCounts(rt, *g.domain));
  CG_ASSIGN_OR_RETURN(auto evaluations, CreateEvaluationRepository(&rt.db()));
  g.evaluation = std::make_unique<EvaluationDomain>(g.domain.get(), std::move(evaluations), std::move(sources),
                                                    &rt.page_tokens());
  CG_ASSIGN_OR_RETURN(v1::RuleSet rule_set, LoadDefaultRuleSet());
  CG_RETURN_IF_ERROR(g.evaluation->SeedRuleSet(rule_set).status());
  g.service = std::make_unique<ClustersServiceImpl>(g.domain.get(), g.evaluation.get(), &rt.handler());
  CG_ASSIGN_OR_RETURN(auto inbox, notifications::NotificationRepository::Create(&rt.db()));
  g.notifications = std::make_unique<notifications::NotificationsDomain>(std::move(inbox), &rt.page_tokens());
  g.notifications_service =
      std::make_unique<notifications::NotificationsServiceImpl>(g.notifications.get(), &rt.handler());
  notifications::ConsumeNotificationEvents(rt);

  // Every change to a cluster record is published (ClusterChanged, ...); the record's promotion
  // organization follows the promotion service's designations, the domain's cache marked around
  // each batch's write as around an API write.
  rt.PublishEvents();
  rt.ConsumeEvents("promotion", "record", ApplyPromotionEvent,
                   [domain = g.domain.get()](const std::vector<const events::v1::Envelope*>& batch) {
                     auto marks = std::make_shared<std::vector<std::unique_ptr<cache::PendingWrite>>>();
                     for (const auto* e : batch) {
                       const std::string id = PromotionEventCluster(*e);
                       if (!id.empty()) marks->emplace_back(new cache::PendingWrite(domain->ClusterWrite(id)));
                     }
                     return std::function<void()>([marks] { marks->clear(); });
                   });
  return g;
}

}  // namespace clustergov::clusters

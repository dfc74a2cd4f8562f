#pragma once

// gRPC wiring of the clusters service: each handler hands its request to the domain on the
// worker pool through the shared Handler; nothing else happens here.

#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "common/server/call.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/evaluation_domain.h"

namespace clustergov::clusters {

class ClustersServiceImpl final : public v1::ClustersService::CallbackService {
 public:
  ClustersServiceImpl(ClustersDomain* domain, EvaluationDomain* evaluation, server::Handler* handler)
      : domain_(domain), evaluation_(evaluation), handler_(handler) {}

#define CG_CLUSTERS_RPC(Method, Request, Response)                                                              \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_CLUSTERS_RPC(CreateCluster, v1::CreateClusterRequest, v1::Cluster)
  CG_CLUSTERS_RPC(ListClusters, v1::ListClustersRequest, v1::ListClustersResponse)
  CG_CLUSTERS_RPC(UpdateCluster, v1::UpdateClusterRequest, v1::Cluster)
  CG_CLUSTERS_RPC(DeleteCluster, v1::DeleteClusterRequest, v1::Cluster)
  CG_CLUSTERS_RPC(UndeleteCluster, v1::UndeleteClusterRequest, v1::Cluster)
  CG_CLUSTERS_RPC(DesignateTier, v1::DesignateTierRequest, v1::Cluster)
  CG_CLUSTERS_RPC(ListTierDesignations, v1::ListTierDesignationsRequest, v1::ListTierDesignationsResponse)
  CG_CLUSTERS_RPC(ListKeyTasks, v1::ListKeyTasksRequest, v1::ListKeyTasksResponse)
  CG_CLUSTERS_RPC(UpdateTaskProgress, v1::UpdateTaskProgressRequest, v1::TaskProgress)
  CG_CLUSTERS_RPC(ListTaskProgress, v1::ListTaskProgressRequest, v1::ListTaskProgressResponse)
  CG_CLUSTERS_RPC(GetReferenceData, v1::GetReferenceDataRequest, v1::ReferenceData)
  CG_CLUSTERS_RPC(ListAuditEvents, common::v1::ListAuditEventsRequest, common::v1::ListAuditEventsResponse)
#undef CG_CLUSTERS_RPC

  // The evaluation cycle (and target progress, which carries the evaluated gaps).
#define CG_EVALUATION_RPC(Method, Request, Response)                                                            \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp,                                                                           \
                           [this, req](const CallContext& call) { return evaluation_->Method(call, *req); });   \
  }
  CG_EVALUATION_RPC(GetTargetProgress, v1::GetTargetProgressRequest, v1::TargetProgress)
  CG_EVALUATION_RPC(PublishRuleSet, v1::PublishRuleSetRequest, v1::RuleSet)
  CG_EVALUATION_RPC(GetRuleSet, v1::GetRuleSetRequest, v1::RuleSet)
  CG_EVALUATION_RPC(ListRuleSets, v1::ListRuleSetsRequest, v1::ListRuleSetsResponse)
  CG_EVALUATION_RPC(GatherSnapshot, v1::GatherSnapshotRequest, v1::IndicatorSnapshot)
  CG_EVALUATION_RPC(GetSnapshot, v1::GetSnapshotRequest, v1::IndicatorSnapshot)
  CG_EVALUATION_RPC(OpenEvaluation, v1::OpenEvaluationRequest, v1::Evaluation)
  CG_EVALUATION_RPC(GetEvaluation, v1::GetEvaluationRequest, v1::Evaluation)
  CG_EVALUATION_RPC(ListEvaluations, v1::ListEvaluationsRequest, v1::ListEvaluationsResponse)
  CG_EVALUATION_RPC(ApproveLeagueReview, v1::EvaluationStepRequest, v1::Evaluation)
  CG_EVALUATION_RPC(ApproveDepartmentReview, v1::EvaluationStepRequest, v1::Evaluation)
  CG_EVALUATION_RPC(SubmitExpertReview, v1::SubmitExpertReviewRequest, v1::Evaluation)
  CG_EVALUATION_RPC(DecideEvaluation, v1::DecideEvaluationRequest, v1::Evaluation)
  CG_EVALUATION_RPC(ReturnEvaluation, v1::EvaluationStepRequest, v1::Evaluation)
#undef CG_EVALUATION_RPC

  // The hot read: a near-cache hit is answered inline, without the hop to the worker pool.
  grpc::ServerUnaryReactor* GetCluster(grpc::CallbackServerContext* ctx, const v1::GetClusterRequest* req,
                                       v1::Cluster* resp) override {
    return handler_->UnaryFast(
        ctx, resp, [this, req](const CallContext& call) { return domain_->GetClusterFast(call, *req); },
        [this, req](const CallContext& call) { return domain_->GetCluster(call, *req); });
  }

 private:
  ClustersDomain* domain_;
  EvaluationDomain* evaluation_;
  server::Handler* handler_;
};

}  // namespace clustergov::clusters

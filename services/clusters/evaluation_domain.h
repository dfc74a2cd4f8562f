#pragma once

// The yearly governance cycle of the clusters service: evaluation rule sets (versioned data),
// indicator snapshots gathered from the services that own the data, scoring, the review workflow
// (league pre-review → lead department → third-party experts → decision) and the results. A
// decision that changes the tier goes through the cluster registry's tier designation rule in the
// same transaction. Like ClustersDomain, it knows nothing of gRPC wiring.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/lease.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/evaluation_repository.h"
#include "common/indicators/indicator_source.h"

namespace clustergov::clusters {

// Where an evaluation's snapshot comes from: the services that own the data (their client/
// libraries in production; tests may pass in-process ones).
using indicators::IndicatorSource;

class EvaluationDomain {
 public:
  // `sources` are asked in order for every snapshot.
  EvaluationDomain(ClustersDomain* clusters, std::unique_ptr<EvaluationRepository> repository,
                   std::vector<std::unique_ptr<IndicatorSource>> sources, const PageTokenCodec* page_tokens);

  // Publishes the default rule set as ruleSets/v1 when missing; returns whether it did.
  absl::StatusOr<bool> SeedRuleSet(const v1::RuleSet& default_rule_set);

  absl::StatusOr<v1::RuleSet> PublishRuleSet(const CallContext& call, const v1::PublishRuleSetRequest& req);
  absl::StatusOr<v1::RuleSet> GetRuleSet(const CallContext& call, const v1::GetRuleSetRequest& req);
  absl::StatusOr<v1::ListRuleSetsResponse> ListRuleSets(const CallContext& call, const v1::ListRuleSetsRequest& req);

  absl::StatusOr<v1::IndicatorSnapshot> GatherSnapshot(const CallContext& call, const v1::GatherSnapshotRequest& req);
  absl::StatusOr<v1::IndicatorSnapshot> GetSnapshot(const CallContext& call, const v1::GetSnapshotRequest& req);

  absl::StatusOr<v1::Evaluation> OpenEvaluation(const CallContext& call, const v1::OpenEvaluationRequest& req);
  absl::StatusOr<v1::Evaluation> GetEvaluation(const CallContext& call, const v1::GetEvaluationRequest& req);
  absl::StatusOr<v1::ListEvaluationsResponse> ListEvaluations(const CallContext& call,
                                                              const v1::ListEvaluationsRequest& req);
  absl::StatusOr<v1::Evaluation> ApproveLeagueReview(const CallContext& call, const v1::EvaluationStepRequest& req);
  absl::StatusOr<v1::Evaluation> ApproveDepartmentReview(const CallContext& call,
                                                         const v1::EvaluationStepRequest& req);
  absl::StatusOr<v1::Evaluation> SubmitExpertReview(const CallContext& call, const v1::SubmitExpertReviewRequest& req);
  absl::StatusOr<v1::Evaluation> DecideEvaluation(const CallContext& call, const v1::DecideEvaluationRequest& req);
  absl::StatusOr<v1::Evaluation> ReturnEvaluation(const CallContext& call, const v1::EvaluationStepRequest& req);

  // The deadline job (docs/events.md "Scheduled deadlines"): evaluations that have waited at one
  // level of the workflow longer than `stall_limit` as of `now` get their `stall` set, publishing
  // EvaluationStalled, once per entry into a level, in bounded batches whose writes `fence` guards.
  // Returns how many were flagged.
  absl::StatusOr<int> FlagStalledEvaluations(const store::LeaseFence& fence, absl::Time now,
                                             absl::Duration stall_limit);

  // The registry's target progress with each targeted cluster's latest decided evaluation gap.
  absl::StatusOr<v1::TargetProgress> GetTargetProgress(const CallContext& call,
                                                       const v1::GetTargetProgressRequest& req);

 private:
  absl::StatusOr<v1::RuleSet> LoadRuleSet(const std::string& name);
  absl::StatusOr<v1::IndicatorSnapshot> Gather(const CallContext& call, const std::string& cluster_id, int year);
  // Rank and percentiles among the evaluations of the same year.
  absl::Status AddStanding(v1::Evaluation* evaluation);
  // Approve the step the evaluation waits at, moving it on.
  absl::StatusOr<v1::Evaluation> Approve(const CallContext& call, const v1::EvaluationStepRequest& req,
                                         v1::Evaluation::State at, const char* method);

  ClustersDomain* clusters_;
  std::unique_ptr<EvaluationRepository> repo_;
  std::vector<std::unique_ptr<IndicatorSource>> sources_;
  const PageTokenCodec* page_tokens_;
};

}  // namespace clustergov::clusters

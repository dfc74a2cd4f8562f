#pragma once

// The promotion organizations domain: registration and eligibility, designation to a cluster
// (one active per cluster; the clusters service follows the designation events), annual reports,
// capability-building funding through the support service, and yearly evaluation. Designations
// and annual reports publish their changes as domain events in the same write (docs/events.md).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/promotion/v1/promotion.pb.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "common/auth/service_token.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/lease.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/promotion/promotion_repository.h"

namespace clustergov::clusters::v1 {
class SeedData;
}

namespace clustergov::promotion {

using server::CallContext;

struct PromotionDeps {
  clusters::ClusterDirectory* clusters = nullptr;  // lookups (cached)
  std::shared_ptr<grpc::Channel> support_channel;   // funding applications
  const ServiceTokenSource* service_token = nullptr;  // this service's own tokens (null: forward the caller's)
  enterprises::EnterpriseDirectory* enterprises = nullptr;  // founders' enterprise references (cached)
};

class PromotionDomain {
 public:
  PromotionDomain(std::unique_ptr<PromotionRepository> repository, PromotionDeps deps,
                  const PageTokenCodec* page_tokens);

  absl::StatusOr<v1::PromotionOrg> RegisterPromotionOrg(const CallContext& call,
                                                        const v1::RegisterPromotionOrgRequest& req);
  absl::StatusOr<v1::PromotionOrg> GetPromotionOrg(const CallContext& call, const v1::GetPromotionOrgRequest& req);
  absl::StatusOr<v1::ListPromotionOrgsResponse> ListPromotionOrgs(const CallContext& call,
                                                                  const v1::ListPromotionOrgsRequest& req);
  absl::StatusOr<v1::PromotionOrg> UpdatePromotionOrg(const CallContext& call,
                                                      const v1::UpdatePromotionOrgRequest& req);
  absl::StatusOr<v1::EligibilityResult> CheckEligibility(const CallContext& call,
                                                         const v1::CheckEligibilityRequest& req);
  absl::StatusOr<v1::Designation> ApplyForDesignation(const CallContext& call,
                                                      const v1::ApplyForDesignationRequest& req);
  absl::StatusOr<v1::Designation> GetDesignation(const CallContext& call, const v1::GetDesignationRequest& req);
  absl::StatusOr<v1::ListDesignationsResponse> ListDesignations(const CallContext& call,
                                                                const v1::ListDesignationsRequest& req);
  absl::StatusOr<v1::Designation> ApproveDesignation(const CallContext& call, const v1::DesignationDecisionRequest& req);
  absl::StatusOr<v1::Designation> RejectDesignation(const CallContext& call, const v1::DesignationDecisionRequest& req);
  absl::StatusOr<v1::Designation> RevokeDesignation(const CallContext& call, const v1::DesignationDecisionRequest& req);
  absl::StatusOr<v1::Designation> WithdrawDesignation(const CallContext& call,
                                                      const v1::DesignationDecisionRequest& req);
  absl::StatusOr<v1::AnnualReport> SubmitAnnualReport(const CallContext& call,
                                                      const v1::SubmitAnnualReportRequest& req);
  absl::StatusOr<v1::AnnualReport> UpdateAnnualReport(const CallContext& call,
                                                      const v1::UpdateAnnualReportRequest& req);
  absl::StatusOr<v1::AnnualReport> AcceptAnnualReport(const CallContext& call,
                                                      const v1::AnnualReportDecisionRequest& req);
  absl::StatusOr<v1::AnnualReport> ReturnAnnualReport(const CallContext& call,
                                                      const v1::AnnualReportDecisionRequest& req);
  absl::StatusOr<v1::AnnualReport> GetAnnualReport(const CallContext& call, const v1::GetAnnualReportRequest& req);
  absl::StatusOr<v1::ListAnnualReportsResponse> ListAnnualReports(const CallContext& call,
                                                                  const v1::ListAnnualReportsRequest& req);
  absl::StatusOr<v1::FundingApplication> ApplyForFunding(const CallContext& call, const v1::ApplyForFundingRequest& req);
  absl::StatusOr<v1::ListFundingApplicationsResponse> ListFundingApplications(
      const CallContext& call, const v1::ListFundingApplicationsRequest& req);
  absl::StatusOr<v1::Evaluation> EvaluatePromotionOrg(const CallContext& call,
                                                      const v1::EvaluatePromotionOrgRequest& req);
  absl::StatusOr<v1::ListEvaluationsResponse> ListEvaluations(const CallContext& call,
                                                              const v1::ListEvaluationsRequest& req);
  absl::StatusOr<v1::PromotionReferenceData> GetReferenceData(const CallContext& call,
                                                              const v1::GetPromotionReferenceDataRequest& req);
  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(
      const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // Registers the promotion bodies the plan names and designates them to their clusters.
  absl::StatusOr<int> Seed(const clusters::v1::SeedData& seed);

  // The deadline job (docs/events.md "Scheduled deadlines"): annual reports owed and not submitted
  // by 30 April of the next year, as of `now`, are stored OVERDUE, each publishing
  // AnnualReportOverdue once, in bounded batches whose writes `fence` guards. The organization of
  // each active designation owes one report a year for its cluster, from the year it was
  // designated. Returns how many were flagged.
  absl::StatusOr<int> FlagOverdueReports(const store::LeaseFence& fence, absl::Time now);

  // Each criterion, met or not, with the reason (reference data).
  static v1::EligibilityResult Evaluate(const v1::PromotionOrg& org);

 private:
  absl::StatusOr<v1::Designation> Decide(const CallContext& call, const v1::DesignationDecisionRequest& req,
                                         const char* method);
  // Each founder's enterprise reference names a registered, active enterprise (asked of the
  // enterprises service); FAILED_PRECONDITION naming the founder otherwise.
  absl::Status CheckFounderEnterprises(const CallContext& call,
                                       const google::protobuf::RepeatedPtrField<v1::Founder>& founders);
  // A seed record is incomplete while it lacks what the eligibility check needs.
  static void MarkIncomplete(v1::PromotionOrg& org);
  absl::StatusOr<v1::AnnualReport> DecideReport(const CallContext& call, const v1::AnnualReportDecisionRequest& req,
                                                bool accept);

  std::unique_ptr<PromotionRepository> repo_;
  PromotionDeps deps_;
  std::unique_ptr<support::v1::SupportService::Stub> support_stub_;
  const PageTokenCodec* page_tokens_;
};

}  // namespace clustergov::promotion

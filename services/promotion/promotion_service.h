#pragma once

// gRPC wiring of the promotion organizations service.

#include "clustergov/promotion/v1/promotion.grpc.pb.h"
#include "common/server/call.h"
#include "services/promotion/promotion_domain.h"

namespace clustergov::promotion {

class PromotionServiceImpl final : public v1::PromotionService::CallbackService {
 public:
  PromotionServiceImpl(PromotionDomain* domain, server::Handler* handler) : domain_(domain), handler_(handler) {}

#define CG_PROMOTION_RPC(Method, Request, Response)                                                              \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_PROMOTION_RPC(RegisterPromotionOrg, v1::RegisterPromotionOrgRequest, v1::PromotionOrg)
  CG_PROMOTION_RPC(GetPromotionOrg, v1::GetPromotionOrgRequest, v1::PromotionOrg)
  CG_PROMOTION_RPC(ListPromotionOrgs, v1::ListPromotionOrgsRequest, v1::ListPromotionOrgsResponse)
  CG_PROMOTION_RPC(UpdatePromotionOrg, v1::UpdatePromotionOrgRequest, v1::PromotionOrg)
  CG_PROMOTION_RPC(CheckEligibility, v1::CheckEligibilityRequest, v1::EligibilityResult)
  CG_PROMOTION_RPC(ApplyForDesignation, v1::ApplyForDesignationRequest, v1::Designation)
  CG_PROMOTION_RPC(GetDesignation, v1::GetDesignationRequest, v1::Designation)
  CG_PROMOTION_RPC(ListDesignations, v1::ListDesignationsRequest, v1::ListDesignationsResponse)
  CG_PROMOTION_RPC(ApproveDesignation, v1::DesignationDecisionRequest, v1::Designation)
  CG_PROMOTION_RPC(RejectDesignation, v1::DesignationDecisionRequest, v1::Designation)
  CG_PROMOTION_RPC(RevokeDesignation, v1::DesignationDecisionRequest, v1::Designation)
  CG_PROMOTION_RPC(WithdrawDesignation, v1::DesignationDecisionRequest, v1::Designation)
  CG_PROMOTION_RPC(SubmitAnnualReport, v1::SubmitAnnualReportRequest, v1::AnnualReport)
  CG_PROMOTION_RPC(UpdateAnnualReport, v1::UpdateAnnualReportRequest, v1::AnnualReport)
  CG_PROMOTION_RPC(AcceptAnnualReport, v1::AnnualReportDecisionRequest, v1::AnnualReport)
  CG_PROMOTION_RPC(ReturnAnnualReport, v1::AnnualReportDecisionRequest, v1::AnnualReport)
  CG_PROMOTION_RPC(GetAnnualReport, v1::GetAnnualReportRequest, v1::AnnualReport)
  CG_PROMOTION_RPC(ListAnnualReports, v1::ListAnnualReportsRequest, v1::ListAnnualReportsResponse)
  CG_PROMOTION_RPC(ApplyForFunding, v1::ApplyForFundingRequest, v1::FundingApplication)
  CG_PROMOTION_RPC(ListFundingApplications, v1::ListFundingApplicationsRequest, v1::ListFundingApplicationsResponse)
  CG_PROMOTION_RPC(EvaluatePromotionOrg, v1::EvaluatePromotionOrgRequest, v1::Evaluation)
  CG_PROMOTION_RPC(ListEvaluations, v1::ListEvaluationsRequest, v1::ListEvaluationsResponse)
  CG_PROMOTION_RPC(GetReferenceData, v1::GetPromotionReferenceDataRequest, v1::PromotionReferenceData)
  CG_PROMOTION_RPC(GetClusterIndicators, common::v1::GetClusterIndicatorsRequest, common::v1::ClusterIndicators)
  CG_PROMOTION_RPC(ListAuditEvents, common::v1::ListAuditEventsRequest, common::v1::ListAuditEventsResponse)
#undef CG_PROMOTION_RPC

 private:
  PromotionDomain* domain_;
  server::Handler* handler_;
};

}  // namespace clustergov::promotion

#pragma once

// gRPC wiring of the support service.

#include "clustergov/support/v1/support.grpc.pb.h"
#include "common/server/call.h"
#include "services/support/support_domain.h"

namespace clustergov::support {

class SupportServiceImpl final : public v1::SupportService::CallbackService {
 public:
  SupportServiceImpl(SupportDomain* domain, server::Handler* handler) : domain_(domain), handler_(handler) {}

#define CG_SUPPORT_RPC(Method, Request, Response)                                                                \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_SUPPORT_RPC(CreatePool, v1::CreatePoolRequest, v1::Pool)
  CG_SUPPORT_RPC(GetPool, v1::GetPoolRequest, v1::Pool)
  CG_SUPPORT_RPC(ListPools, v1::ListPoolsRequest, v1::ListPoolsResponse)
  CG_SUPPORT_RPC(SetPoolCapacity, v1::SetPoolCapacityRequest, v1::Pool)
  CG_SUPPORT_RPC(CreateApplication, v1::CreateApplicationRequest, v1::Application)
  CG_SUPPORT_RPC(GetApplication, v1::GetApplicationRequest, v1::Application)
  CG_SUPPORT_RPC(ListApplications, v1::ListApplicationsRequest, v1::ListApplicationsResponse)
  CG_SUPPORT_RPC(UpdateApplication, v1::UpdateApplicationRequest, v1::Application)
  CG_SUPPORT_RPC(SubmitApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(StartReview, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(ApproveApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(RejectApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(ReturnApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(AllocateApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(WithdrawApplication, v1::TransitionRequest, v1::Application)
  CG_SUPPORT_RPC(ExpireReservations, v1::ExpireReservationsRequest, v1::ExpireReservationsResponse)
  CG_SUPPORT_RPC(ListLedgerEntries, v1::ListLedgerEntriesRequest, v1::ListLedgerEntriesResponse)
  CG_SUPPORT_RPC(CheckConsistency, v1::CheckConsistencyRequest, v1::ConsistencyReport)
  CG_SUPPORT_RPC(GetUtilization, v1::GetUtilizationRequest, v1::Utilization)
  CG_SUPPORT_RPC(GetReferenceData, v1::GetReferenceDataRequest, v1::SupportReferenceData)
  CG_SUPPORT_RPC(GetClusterIndicators, common::v1::GetClusterIndicatorsRequest, common::v1::ClusterIndicators)
  CG_SUPPORT_RPC(ListAuditEvents, common::v1::ListAuditEventsRequest, common::v1::ListAuditEventsResponse)
#undef CG_SUPPORT_RPC

 private:
  SupportDomain* domain_;
  server::Handler* handler_;
};

}  // namespace clustergov::support

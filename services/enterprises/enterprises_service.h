#pragma once

// gRPC wiring of the enterprises service: each handler hands its request to the domain through
// the shared Handler.

#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "common/server/call.h"
#include "services/enterprises/enterprises_domain.h"

namespace clustergov::enterprises {

class EnterprisesServiceImpl final : public v1::EnterprisesService::CallbackService {
 public:
  EnterprisesServiceImpl(EnterprisesDomain* domain, server::Handler* handler) : domain_(domain), handler_(handler) {}

#define CG_ENTERPRISES_RPC(Method, Request, Response)                                                            \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_ENTERPRISES_RPC(RegisterEnterprise, v1::RegisterEnterpriseRequest, v1::Enterprise)
  CG_ENTERPRISES_RPC(ListEnterprises, v1::ListEnterprisesRequest, v1::ListEnterprisesResponse)
  CG_ENTERPRISES_RPC(UpdateEnterprise, v1::UpdateEnterpriseRequest, v1::Enterprise)
  CG_ENTERPRISES_RPC(DeregisterEnterprise, v1::DeregisterEnterpriseRequest, v1::Enterprise)
  CG_ENTERPRISES_RPC(JoinCluster, v1::JoinClusterRequest, v1::Membership)
  CG_ENTERPRISES_RPC(UpdateMembership, v1::UpdateMembershipRequest, v1::Membership)
  CG_ENTERPRISES_RPC(LeaveCluster, v1::LeaveClusterRequest, v1::Membership)
  CG_ENTERPRISES_RPC(ListMemberships, v1::ListMembershipsRequest, v1::ListMembershipsResponse)
  CG_ENTERPRISES_RPC(ListClusterMembers, v1::ListClusterMembersRequest, v1::ListClusterMembersResponse)
  CG_ENTERPRISES_RPC(GrantCertification, v1::GrantCertificationRequest, v1::Certification)
  CG_ENTERPRISES_RPC(RevokeCertification, v1::RevokeCertificationRequest, v1::Certification)
  CG_ENTERPRISES_RPC(ListCertifications, v1::ListCertificationsRequest, v1::ListCertificationsResponse)
  CG_ENTERPRISES_RPC(GetCertificationRules, v1::GetCertificationRulesRequest, v1::CertificationRules)
  CG_ENTERPRISES_RPC(CreateSupplyLink, v1::CreateSupplyLinkRequest, v1::SupplyLink)
  CG_ENTERPRISES_RPC(DeleteSupplyLink, v1::DeleteSupplyLinkRequest, v1::SupplyLink)
  CG_ENTERPRISES_RPC(ListSupplyLinks, v1::ListSupplyLinksRequest, v1::ListSupplyLinksResponse)
  CG_ENTERPRISES_RPC(GetCultivationPipeline, v1::GetCultivationPipelineRequest, v1::CultivationPipeline)
  CG_ENTERPRISES_RPC(GetClusterIndicators, common::v1::GetClusterIndicatorsRequest, common::v1::ClusterIndicators)
  CG_ENTERPRISES_RPC(GetClusterStrength, v1::GetClusterStrengthRequest, v1::ClusterStrength)
  CG_ENTERPRISES_RPC(ListAuditEvents, common::v1::ListAuditEventsRequest, common::v1::ListAuditEventsResponse)
#undef CG_ENTERPRISES_RPC

  // The hot read: a near-cache hit is answered inline, without the hop to the worker pool.
  grpc::ServerUnaryReactor* GetEnterprise(grpc::CallbackServerContext* ctx, const v1::GetEnterpriseRequest* req,
                                          v1::Enterprise* resp) override {
    return handler_->UnaryFast(
        ctx, resp, [this, req](const CallContext& call) { return domain_->GetEnterpriseFast(call, *req); },
        [this, req](const CallContext& call) { return domain_->GetEnterprise(call, *req); });
  }

 private:
  EnterprisesDomain* domain_;
  server::Handler* handler_;
};

}  // namespace clustergov::enterprises

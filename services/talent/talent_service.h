#pragma once

// gRPC wiring of the talent service.

#include "clustergov/talent/v1/talent.grpc.pb.h"
#include "common/server/call.h"
#include "services/talent/talent_domain.h"

namespace clustergov::talent {

class TalentServiceImpl final : public v1::TalentService::CallbackService {
 public:
  TalentServiceImpl(TalentDomain* domain, server::Handler* handler) : domain_(domain), handler_(handler) {}

#define CG_TALENT_RPC(Method, Request, Response)                                                                 \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_TALENT_RPC(RegisterTalent, v1::RegisterTalentRequest, v1::Talent)
  CG_TALENT_RPC(GetTalent, v1::GetTalentRequest, v1::Talent)
  CG_TALENT_RPC(ListTalents, v1::ListTalentsRequest, v1::ListTalentsResponse)
  CG_TALENT_RPC(UpdateTalent, v1::UpdateTalentRequest, v1::Talent)
  CG_TALENT_RPC(SetTalentLevel, v1::SetTalentLevelRequest, v1::Talent)
  CG_TALENT_RPC(GrantProgramme, v1::GrantProgrammeRequest, v1::Talent)
  CG_TALENT_RPC(RevokeProgramme, v1::RevokeProgrammeRequest, v1::Talent)
  CG_TALENT_RPC(PostDemand, v1::PostDemandRequest, v1::Demand)
  CG_TALENT_RPC(GetDemand, v1::GetDemandRequest, v1::Demand)
  CG_TALENT_RPC(ListDemands, v1::ListDemandsRequest, v1::ListDemandsResponse)
  CG_TALENT_RPC(CloseDemand, v1::CloseDemandRequest, v1::Demand)
  CG_TALENT_RPC(MatchTalents, v1::MatchTalentsRequest, v1::MatchTalentsResponse)
  CG_TALENT_RPC(CreatePlacement, v1::CreatePlacementRequest, v1::Placement)
  CG_TALENT_RPC(EndPlacement, v1::EndPlacementRequest, v1::Placement)
  CG_TALENT_RPC(ListPlacements, v1::ListPlacementsRequest, v1::ListPlacementsResponse)
  CG_TALENT_RPC(GetTalentStatistics, v1::GetTalentStatisticsRequest, v1::TalentStatistics)
  CG_TALENT_RPC(GetReferenceData, v1::GetTalentReferenceDataRequest, v1::TalentReferenceData)
  CG_TALENT_RPC(GetClusterIndicators, common::v1::GetClusterIndicatorsRequest, common::v1::ClusterIndicators)
  CG_TALENT_RPC(ListAuditEvents, common::v1::ListAuditEventsRequest, common::v1::ListAuditEventsResponse)
#undef CG_TALENT_RPC

 private:
  TalentDomain* domain_;
  server::Handler* handler_;
};

}  // namespace clustergov::talent

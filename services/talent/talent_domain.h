#pragma once

// The talent domain: profiles with a personal-data rule, enterprise demands, deterministic
// matching with reasons, placements (consent, counts, reopening), and per-cluster statistics.

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "clustergov/talent/v1/talent.pb.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/sqlite.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/talent/talent_repository.h"

namespace clustergov::talent {

using server::CallContext;

class TalentDomain {
 public:
  TalentDomain(std::unique_ptr<TalentRepository> repository, enterprises::EnterpriseDirectory* enterprises,
               const PageTokenCodec* page_tokens, store::Database* db);

  absl::StatusOr<v1::Talent> RegisterTalent(const CallContext& call, const v1::RegisterTalentRequest& req);
  absl::StatusOr<v1::Talent> GetTalent(const CallContext& call, const v1::GetTalentRequest& req);
  absl::StatusOr<v1::ListTalentsResponse> ListTalents(const CallContext& call, const v1::ListTalentsRequest& req);
  absl::StatusOr<v1::Talent> UpdateTalent(const CallContext& call, const v1::UpdateTalentRequest& req);
  absl::StatusOr<v1::Demand> PostDemand(const CallContext& call, const v1::PostDemandRequest& req);
  absl::StatusOr<v1::Demand> GetDemand(const CallContext& call, const v1::GetDemandRequest& req);
  absl::StatusOr<v1::ListDemandsResponse> ListDemands(const CallContext& call, const v1::ListDemandsRequest& req);
  absl::StatusOr<v1::Demand> CloseDemand(const CallContext& call, const v1::CloseDemandRequest& req);
  absl::StatusOr<v1::MatchTalentsResponse> MatchTalents(const CallContext& call, const v1::MatchTalentsRequest& req);
  absl::StatusOr<v1::Placement> CreatePlacement(const CallContext& call, const v1::CreatePlacementRequest& req);
  absl::StatusOr<v1::Placement> EndPlacement(const CallContext& call, const v1::EndPlacementRequest& req);
  absl::StatusOr<v1::ListPlacementsResponse> ListPlacements(const CallContext& call,
                                                            const v1::ListPlacementsRequest& req);
  absl::StatusOr<v1::TalentStatistics> GetTalentStatistics(const CallContext& call,
                                                           const v1::GetTalentStatisticsRequest& req);
  absl::StatusOr<v1::TalentReferenceData> GetReferenceData(const CallContext& call,
                                                           const v1::GetTalentReferenceDataRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // Match score of a talent for a demand (0..100) and the reasons; exposed for tests.
  static int Score(const v1::Demand& demand, const MatchRow& row, std::vector<std::string>* reasons);

 private:
  // Clears personal data unless the caller may see it.
  absl::Status Redact(const Principal& p, v1::Talent* t);

  std::unique_ptr<TalentRepository> repo_;
  enterprises::EnterpriseDirectory* enterprises_;
  const PageTokenCodec* page_tokens_;
  store::Database* db_;
};

}  // namespace clustergov::talent

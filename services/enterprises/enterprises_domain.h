#pragma once

// The enterprises domain: validation, authorization and the rules of the registry, cluster
// membership, the certification ladder and supply links. No gRPC wiring here.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "common/cache/cache.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/lease.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/enterprises/enterprise_repository.h"

namespace clustergov::clusters::v1 {
class SeedData;
}

namespace clustergov::enterprises {

using server::CallContext;

class EnterprisesDomain {
 public:
  EnterprisesDomain(std::unique_ptr<EnterpriseRepository> repository, std::unique_ptr<cache::Cache> cache,
                    clusters::ClusterDirectory* clusters, const PageTokenCodec* page_tokens);

  absl::StatusOr<v1::Enterprise> RegisterEnterprise(const CallContext& call, const v1::RegisterEnterpriseRequest& req);
  absl::StatusOr<v1::Enterprise> GetEnterprise(const CallContext& call, const v1::GetEnterpriseRequest& req);
  // GetEnterprise answered from the near cache alone (never blocks), or nullopt.
  std::optional<absl::StatusOr<v1::Enterprise>> GetEnterpriseFast(const CallContext& call,
                                                                  const v1::GetEnterpriseRequest& req);
  absl::StatusOr<v1::ListEnterprisesResponse> ListEnterprises(const CallContext& call,
                                                              const v1::ListEnterprisesRequest& req);
  absl::StatusOr<v1::Enterprise> UpdateEnterprise(const CallContext& call, const v1::UpdateEnterpriseRequest& req);
  absl::StatusOr<v1::Enterprise> DeregisterEnterprise(const CallContext& call,
                                                      const v1::DeregisterEnterpriseRequest& req);
  absl::StatusOr<v1::Membership> JoinCluster(const CallContext& call, const v1::JoinClusterRequest& req);
  absl::StatusOr<v1::Membership> UpdateMembership(const CallContext& call, const v1::UpdateMembershipRequest& req);
  absl::StatusOr<v1::Membership> LeaveCluster(const CallContext& call, const v1::LeaveClusterRequest& req);
  absl::StatusOr<v1::ListMembershipsResponse> ListMemberships(const CallContext& call,
                                                              const v1::ListMembershipsRequest& req);
  absl::StatusOr<v1::ListClusterMembersResponse> ListClusterMembers(const CallContext& call,
                                                                    const v1::ListClusterMembersRequest& req);
  absl::StatusOr<v1::Certification> GrantCertification(const CallContext& call,
                                                       const v1::GrantCertificationRequest& req);
  absl::StatusOr<v1::Certification> RevokeCertification(const CallContext& call,
                                                        const v1::RevokeCertificationRequest& req);
  absl::StatusOr<v1::ListCertificationsResponse> ListCertifications(const CallContext& call,
                                                                    const v1::ListCertificationsRequest& req);
  absl::StatusOr<v1::CertificationRules> GetCertificationRules(const CallContext& call,
                                                               const v1::GetCertificationRulesRequest& req);
  absl::StatusOr<v1::SupplyLink> CreateSupplyLink(const CallContext& call, const v1::CreateSupplyLinkRequest& req);
  absl::StatusOr<v1::SupplyLink> DeleteSupplyLink(const CallContext& call, const v1::DeleteSupplyLinkRequest& req);
  absl::StatusOr<v1::ListSupplyLinksResponse> ListSupplyLinks(const CallContext& call,
                                                              const v1::ListSupplyLinksRequest& req);
  absl::StatusOr<v1::CultivationPipeline> GetCultivationPipeline(const CallContext& call,
                                                                 const v1::GetCultivationPipelineRequest& req);
  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(
      const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req);
  absl::StatusOr<v1::ClusterStrength> GetClusterStrength(const CallContext& call,
                                                         const v1::GetClusterStrengthRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // Registers the lead enterprises the clusters seed names (with their sample credit codes) and
  // joins them to their clusters as LEAD_ENTERPRISE. Idempotent; returns enterprises created.
  absl::StatusOr<int> Seed(const clusters::v1::SeedData& seed);

  // The deadline job (docs/events.md "Scheduled deadlines"): certifications whose expiry date is
  // before the day of `now` (China Standard Time) are stored EXPIRED, each publishing
  // CertificationExpired, in bounded batches whose writes `fence` guards. Returns how many.
  absl::StatusOr<int> ExpireCertifications(const store::LeaseFence& fence, absl::Time now);

  // Today's date in China Standard Time, "YYYY-MM-DD" (certification validity is by calendar day).
  static std::string Today();

 private:
  absl::StatusOr<v1::Enterprise> LoadCached(const std::string& uscc);
  // Employment of every active enterprise per region (cached until the next registry write).
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> EmploymentByRegion();
  absl::StatusOr<v1::ClusterStrength> Strength(const std::string& cluster_id, const std::vector<MemberGroup>& members);
  // The cache's guard of a write (held across it) to `uscc` (empty: to lists only).
  cache::PendingWrite EnterpriseWrite(const std::string& uscc);

  std::unique_ptr<EnterpriseRepository> repo_;
  std::unique_ptr<cache::Cache> cache_;
  clusters::ClusterDirectory* clusters_;
  const PageTokenCodec* page_tokens_;
};

}  // namespace clustergov::enterprises

#pragma once

// The support domain: pools, the application lifecycle, review and the ledger.
//
//   DRAFT ──submit──▶ SUBMITTED ──startReview──▶ UNDER_REVIEW ──approve──▶ APPROVED ──allocate──▶ ALLOCATED
//     │                  │  ▲                        │   │                    │  │
//     │                  │  └──────submit────── RETURNED ◀─return─┘          │  └─expire──▶ EXPIRED
//     └──withdraw──▶ WITHDRAWN ◀──withdraw──┘ (from DRAFT, SUBMITTED, RETURNED)   │
//                                            UNDER_REVIEW/APPROVED ──reject──▶ REJECTED
//
// Approval reserves every item atomically (all or none, never beyond a pool's free amount);
// rejection after approval, and expiry, release; allocation turns reservations into allocations.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/support/v1/support.pb.h"
#include "common/cache/cache.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/lease.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/support/support_repository.h"

namespace clustergov::support {

using server::CallContext;

class SupportDomain {
 public:
  SupportDomain(std::unique_ptr<SupportRepository> repository, std::unique_ptr<cache::Cache> cache,
                clusters::ClusterDirectory* clusters, enterprises::EnterpriseDirectory* enterprises,
                const PageTokenCodec* page_tokens, absl::Duration reservation_lifetime);

  absl::StatusOr<v1::Pool> CreatePool(const CallContext& call, const v1::CreatePoolRequest& req);
  absl::StatusOr<v1::Pool> GetPool(const CallContext& call, const v1::GetPoolRequest& req);
  absl::StatusOr<v1::ListPoolsResponse> ListPools(const CallContext& call, const v1::ListPoolsRequest& req);
  absl::StatusOr<v1::Pool> SetPoolCapacity(const CallContext& call, const v1::SetPoolCapacityRequest& req);
  absl::StatusOr<v1::Application> CreateApplication(const CallContext& call, const v1::CreateApplicationRequest& req);
  absl::StatusOr<v1::Application> GetApplication(const CallContext& call, const v1::GetApplicationRequest& req);
  absl::StatusOr<v1::ListApplicationsResponse> ListApplications(const CallContext& call,
                                                                const v1::ListApplicationsRequest& req);
  absl::StatusOr<v1::Application> UpdateApplication(const CallContext& call, const v1::UpdateApplicationRequest& req);
  absl::StatusOr<v1::Application> SubmitApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> StartReview(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> ApproveApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> RejectApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> ReturnApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> AllocateApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::Application> WithdrawApplication(const CallContext& call, const v1::TransitionRequest& req);
  absl::StatusOr<v1::ExpireReservationsResponse> ExpireReservations(const CallContext& call,
                                                                    const v1::ExpireReservationsRequest& req);
  absl::StatusOr<v1::ListLedgerEntriesResponse> ListLedgerEntries(const CallContext& call,
                                                                  const v1::ListLedgerEntriesRequest& req);
  absl::StatusOr<v1::ConsistencyReport> CheckConsistency(const CallContext& call, const v1::CheckConsistencyRequest& req);
  absl::StatusOr<v1::Utilization> GetUtilization(const CallContext& call, const v1::GetUtilizationRequest& req);
  absl::StatusOr<v1::SupportReferenceData> GetReferenceData(const CallContext& call,
                                                            const v1::GetReferenceDataRequest& req);
  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(
      const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // The deadline job (docs/events.md "Scheduled deadlines"): what ExpireReservations does, as of
  // `now`, in bounded batches whose writes `fence` guards. Returns how many expired.
  absl::StatusOr<int> ExpireReservationsJob(const store::LeaseFence& fence, absl::Time now);

  // The store behind the domain (owned by it), for readers outside the RPCs such as SupportMetrics.
  SupportRepository* repository() { return repo_.get(); }

  // "pools/{region}-{year}-{kind}[-{pollutant}]".
  static std::string PoolName(absl::string_view region, int year, v1::ResourceKind kind, absl::string_view pollutant);

 private:
  enum class Actor { kApplicant, kReviewer };
  // Checks who may move the application, then runs `step` on it in one atomic write.
  absl::StatusOr<v1::Application> Transition(
      const CallContext& call, const v1::TransitionRequest& req, const char* method, Actor who, bool reason_required,
      const std::function<absl::Status(v1::Application& app, SupportTx& tx)>& step);
  absl::Status CheckReviewer(const CallContext& call, const v1::Application& app);
  // For a reward claim: the cluster's current eligibility names the claimed evaluation and covers
  // the amount asked (FAILED_PRECONDITION otherwise). OK for any other application.
  absl::Status CheckRewardEligibility(const CallContext& call, const v1::Application& app);
  // Expires (releases, publishes ApplicationExpired) approved applications whose reservation
  // expired before `now`, at most `limit` (0: all), in one write under `w` (quota lock added).
  absl::StatusOr<v1::ExpireReservationsResponse> ExpireDue(store::WriteContext w, absl::Time now, int limit);
  // The cache's guard of a write that changes pools (held across it).
  cache::PendingWrite PoolsWrite();

  std::unique_ptr<SupportRepository> repo_;
  std::unique_ptr<cache::Cache> cache_;
  clusters::ClusterDirectory* clusters_;
  enterprises::EnterpriseDirectory* enterprises_;
  const PageTokenCodec* page_tokens_;
  absl::Duration reservation_lifetime_;
};

}  // namespace clustergov::support

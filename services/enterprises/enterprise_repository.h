#pragma once

// Persistence of the enterprises service behind an interface (SQL only in the SQLite
// implementation). Every write method is one unit of work (common/store/unit_of_work.h): the
// change, its audit event and idempotency record.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/enterprises/v1/enterprises.pb.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/store/unit_of_work.h"

namespace clustergov::enterprises {

namespace v1 = ::clustergov::enterprises::v1;

// A read-only view of the store inside a write transaction, so a mutation can check related
// records (memberships, certifications) atomically with its write.
class WriteView {
 public:
  virtual ~WriteView() = default;
  virtual absl::StatusOr<std::optional<v1::Enterprise>> Enterprise(const std::string& uscc) = 0;
  virtual absl::StatusOr<std::optional<v1::Membership>> Membership(const std::string& uscc,
                                                                   const std::string& cluster_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Certification>> Certifications(const std::string& uscc) = 0;
  virtual absl::StatusOr<bool> SupplyLinkExists(const v1::SupplyLink& link) = 0;
};

// The record a mutation writes, or removes (`remove`), and the audit resource name.
template <typename T>
struct Change {
  T record;
  bool remove = false;
};

struct ListQuery {
  SqlFilter filter;
  std::string after;   // keyset
  int limit = 50;
  bool include_inactive = false;
  std::string scope;   // uscc or cluster id the list is scoped to (empty: all)
};

struct PipelineCounts {
  int enterprise_count = 0;
  std::vector<std::pair<int, int>> certifications;  // kind → count
  std::vector<std::pair<int, int>> sizes;           // size class → count
  std::vector<std::pair<int, int>> roles;           // role → count
};

// A cluster's active members grouped by region, size class and role (one pass over them).
struct MemberGroup {
  std::string region;
  int size_class = 0;
  int role = 0;
  int members = 0;
  int64_t employees = 0;
  int64_t annual_output_cny_10k = 0;
};

// What a cluster's year adds to its members: certifications held and supply links recorded.
struct YearFigures {
  std::vector<std::pair<int, int>> certifications;  // CertificationKind → members holding one in the year
  int supply_links = 0;     // among active members, recorded by the end of the year
  int large_sme_links = 0;  // of those, between a LARGE enterprise and a MEDIUM, SMALL or MICRO one
};

class EnterpriseRepository : public store::Repository {
 public:
  virtual const std::vector<FilterField>& EnterpriseFilterFields() const = 0;
  virtual const std::vector<FilterField>& MemberFilterFields() const = 0;
  virtual const std::vector<FilterField>& CertificationFilterFields() const = 0;
  virtual const std::vector<FilterField>& SupplyLinkFilterFields() const = 0;

  virtual absl::StatusOr<std::optional<v1::Enterprise>> GetEnterprise(const std::string& uscc) = 0;
  virtual absl::StatusOr<std::vector<v1::Enterprise>> ListEnterprises(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::vector<v1::Membership>> ListMemberships(const ListQuery& q, bool by_cluster) = 0;
  virtual absl::StatusOr<std::vector<v1::Certification>> ListCertifications(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::vector<v1::SupplyLink>> ListSupplyLinks(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::optional<v1::SupplyLink>> GetSupplyLink(int64_t id) = 0;
  // Counts for one cluster id, or all when empty. `today` is "YYYY-MM-DD".
  virtual absl::StatusOr<PipelineCounts> Pipeline(const std::string& cluster_id, const std::string& today) = 0;
  virtual absl::StatusOr<std::vector<MemberGroup>> MemberGroups(const std::string& cluster_id) = 0;
  // Employment (the sum of `employees`) of every active enterprise, per region that has one.
  virtual absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> EmploymentByRegion() = 0;
  // Certifications and supply links of the cluster's active members for the days first..last
  // ("YYYY-MM-DD", China Standard Time).
  virtual absl::StatusOr<YearFigures> Year(const std::string& cluster_id, const std::string& first,
                                           const std::string& last) = 0;

  // Each mutation gets the current record (nullopt when none) and a view of related records.
  using EnterpriseMutation = std::function<absl::StatusOr<Change<v1::Enterprise>>(
      const std::optional<v1::Enterprise>& current, WriteView& view)>;
  using MembershipMutation = std::function<absl::StatusOr<Change<v1::Membership>>(
      const std::optional<v1::Membership>& current, WriteView& view)>;
  using CertificationMutation = std::function<absl::StatusOr<Change<v1::Certification>>(
      const std::optional<v1::Certification>& current, WriteView& view)>;
  using SupplyLinkMutation = std::function<absl::StatusOr<Change<v1::SupplyLink>>(
      const std::optional<v1::SupplyLink>& current, WriteView& view)>;

  virtual absl::StatusOr<v1::Enterprise> MutateEnterprise(const store::WriteContext& w, const std::string& uscc,
                                                          const EnterpriseMutation& m) = 0;
  virtual absl::StatusOr<v1::Membership> MutateMembership(const store::WriteContext& w, const std::string& uscc,
                                                          const std::string& cluster_id,
                                                          const MembershipMutation& m) = 0;
  // `id` 0 creates a certification (its id is assigned).
  virtual absl::StatusOr<v1::Certification> MutateCertification(const store::WriteContext& w, const std::string& uscc,
                                                                int64_t id, const CertificationMutation& m) = 0;
  virtual absl::StatusOr<v1::SupplyLink> MutateSupplyLink(const store::WriteContext& w, int64_t id,
                                                          const SupplyLinkMutation& m) = 0;

  // Marks EXPIRED at most `limit` certifications, not revoked, whose expiry date is before `today`
  // ("YYYY-MM-DD") and that are not marked yet, oldest expiry first, in one write; `expired` runs
  // in it for each with the clusters its enterprise is a member of ("clusters/{id}"). Returns them.
  using ExpiredCertification = std::function<absl::Status(
      store::Transaction& tx, const v1::Certification& certification, const std::vector<std::string>& clusters)>;
  virtual absl::StatusOr<std::vector<v1::Certification>> ExpireCertifications(const store::WriteContext& w,
                                                                              const std::string& today, int limit,
                                                                              const ExpiredCertification& expired) = 0;

  // Seed: registers the enterprises and memberships that do not exist yet; returns how many
  // enterprises were created.
  virtual absl::StatusOr<int> SeedMissing(const Principal& actor, const std::vector<v1::Enterprise>& enterprises,
                                          const std::vector<v1::Membership>& memberships) = 0;
};

absl::StatusOr<std::unique_ptr<EnterpriseRepository>> CreateEnterpriseRepository(store::Store* db);

}  // namespace clustergov::enterprises

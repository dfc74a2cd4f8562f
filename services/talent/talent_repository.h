#pragma once

// Persistence of the talent service; writes run atomically through `TalentTx`.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/talent/v1/talent.pb.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/store/unit_of_work.h"

namespace clustergov::talent {

namespace v1 = ::clustergov::talent::v1;

class TalentTx : public store::RepositoryTransaction {
 public:
  using RepositoryTransaction::RepositoryTransaction;
  virtual absl::StatusOr<std::optional<v1::Talent>> GetTalent(const std::string& id) = 0;
  virtual absl::Status PutTalent(v1::Talent& t, bool create) = 0;
  virtual absl::StatusOr<std::optional<v1::Demand>> GetDemand(int64_t id) = 0;
  virtual absl::Status PutDemand(v1::Demand& d) = 0;  // inserts when the name is empty
  virtual absl::StatusOr<std::optional<v1::Placement>> GetPlacement(int64_t id) = 0;
  virtual absl::Status PutPlacement(v1::Placement& p) = 0;  // inserts when the name is empty
  virtual absl::StatusOr<std::vector<v1::Placement>> ActivePlacementsOf(const std::string& talent) = 0;
};

struct ListQuery {
  SqlFilter filter;
  std::string after;
  int limit = 50;
};

// One talent's standing against a demand, from the indexed columns.
struct MatchRow {
  std::string id;
  int level = 0;
  std::string region;
  std::vector<std::string> matched_skills;
  int64_t revision = 0;  // of the record these were read from (its etag's sequence)
};

struct ClusterCounts {
  std::vector<std::pair<std::string, int>> by_level;
  std::vector<std::pair<std::string, int>> by_programme;
  int open_demands = 0;
  int open_positions = 0;
  std::vector<std::pair<std::string, int>> by_type;
};

// One cluster's talent figures for a span of time (a year).
struct TalentYear {
  int demands = 0;          // posted in the span
  int positions = 0;        // their positions
  int matched_demands = 0;  // of those demands, how many have at least one placement
  std::vector<std::pair<int, int>> placements_by_type;  // Placement::Type → placements started in the span
  int talents_placed = 0;      // distinct talents of those placements
  int high_level_placed = 0;   // of them, HIGH_LEVEL or LEADING
};

class TalentRepository : public store::TransactionalRepository<TalentTx> {
 public:
  virtual const std::vector<FilterField>& TalentFilterFields() const = 0;
  virtual const std::vector<FilterField>& DemandFilterFields() const = 0;
  virtual const std::vector<FilterField>& PlacementFilterFields() const = 0;

  virtual absl::StatusOr<std::optional<v1::Talent>> GetTalent(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::Talent>> GetTalents(const std::vector<std::string>& ids) = 0;
  virtual absl::StatusOr<std::vector<v1::Talent>> ListTalents(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::optional<v1::Demand>> GetDemand(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<v1::Demand>> ListDemands(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::vector<v1::Placement>> ListPlacements(const ListQuery& q) = 0;
  // Talents having at least one of `skills`, with the skills they match.
  virtual absl::StatusOr<std::vector<MatchRow>> MatchRows(const std::vector<std::string>& skills) = 0;
  virtual absl::StatusOr<bool> Employs(const std::string& enterprise, const std::string& talent) = 0;
  // Follows the talents written by every process sharing the store (store::Store::Listen):
  // `changed(id)` after each committed write of a talent, `resync()` when some may have been missed.
  virtual absl::StatusOr<std::unique_ptr<store::Subscription>> FollowTalents(
      std::function<void(const std::string&)> changed, std::function<void()> resync) = 0;
  virtual absl::StatusOr<ClusterCounts> Counts(const std::string& cluster) = 0;  // "" = all
  // `cluster` "clusters/{id}"; the span [begin_micros, end_micros) since the epoch.
  virtual absl::StatusOr<TalentYear> YearFigures(const std::string& cluster, int64_t begin_micros,
                                                 int64_t end_micros) = 0;
};

// The event of a placement's start.
events::v1::PlacementStarted PlacementStartedEvent(const v1::Placement& placement);

// Applies the migrations; on a store that has placements from before the service published
// events, publishes PlacementStarted for each active one (once).
absl::StatusOr<std::unique_ptr<TalentRepository>> CreateTalentRepository(store::Store* db);

}  // namespace clustergov::talent

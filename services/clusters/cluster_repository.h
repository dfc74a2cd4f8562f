#pragma once

// Persistence of the clusters service behind an interface: the domain layer never sees SQL. Every
// write method is one unit of work (common/store/unit_of_work.h): the change, its audit event and
// idempotency record, and its domain events (ClusterChanged on every change to a cluster record,
// ClusterTierDesignated with a tier designation).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/store/unit_of_work.h"

namespace clustergov::clusters {

namespace v1 = ::clustergov::clusters::v1;

// What a mutation decided: the new state and what else to record with it.
struct ClusterChange {
  v1::Cluster cluster;                                 // the full new record
  std::optional<v1::TierDesignation> designation;      // appended to the tier history
  std::string evaluation;                              // the evaluation whose decision designates, if any
};

// Given the current record (nullopt when none), returns the change or an error (nothing written).
using ClusterMutation = std::function<absl::StatusOr<ClusterChange>(const std::optional<v1::Cluster>& current)>;
using TaskMutation = std::function<absl::StatusOr<v1::TaskProgress>(const v1::TaskProgress& current,
                                                                    const v1::Cluster& cluster)>;

struct ClusterQuery {
  SqlFilter filter;
  bool show_deleted = false;
  std::string after_id;  // keyset: ids greater than this
  int limit = 50;        // rows wanted (the repository returns up to limit + 1 to detect more)
};

struct TaskQuery {
  std::string cluster_id;  // empty: across all clusters
  SqlFilter filter;
  std::string after_key;   // keyset "<cluster_id>/<task_number padded>"
  int limit = 50;
};

class ClusterRepository : public store::Repository {
 public:
  // Filter fields the repository can compile for ListClusters / ListTaskProgress.
  virtual const std::vector<FilterField>& ClusterFilterFields() const = 0;
  virtual const std::vector<FilterField>& TaskFilterFields() const = 0;

  virtual absl::StatusOr<std::optional<v1::Cluster>> Get(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::Cluster>> List(const ClusterQuery& query) = 0;
  virtual absl::StatusOr<int> Count(const ClusterQuery& query) = 0;
  // Every cluster, active and deleted (for progress computations).
  virtual absl::StatusOr<std::vector<v1::Cluster>> All() = 0;

  // Read-modify-write of one cluster in one transaction; creates it when `current` was nullopt.
  // New clusters get the 15 key-task progress rows (NOT_STARTED).
  virtual absl::StatusOr<v1::Cluster> Mutate(const store::WriteContext& w, const std::string& id,
                                             const ClusterMutation& mutation) = 0;
  // Creates the clusters that do not exist yet (seed), in one transaction; returns how many.
  virtual absl::StatusOr<int> CreateMissing(const Principal& actor, const std::vector<v1::Cluster>& clusters,
                                            int task_count) = 0;

  virtual absl::StatusOr<std::vector<v1::TierDesignation>> ListDesignations(const std::string& id, int64_t after_seq,
                                                                            int limit) = 0;

  virtual absl::StatusOr<v1::TaskProgress> MutateTask(const store::WriteContext& w, const std::string& cluster_id,
                                                      int task_number, const TaskMutation& mutation) = 0;
  virtual absl::StatusOr<std::vector<v1::TaskProgress>> ListTasks(const TaskQuery& query) = 0;
};

// Mutate's read-modify-write of an existing cluster inside another repository's transaction of
// the same store (an evaluation's decision designates the tier in its own commit), audited under
// `tx`'s context. Returns the change as written: the designation, if any, with its name.
absl::StatusOr<ClusterChange> MutateClusterOn(store::SqlTransaction& tx, const std::string& id,
                                              const ClusterMutation& mutation);

// The cluster `id` as stored, read through `c` inside another write of the same store (an event
// consumer's); nullopt when there is none.
absl::StatusOr<std::optional<v1::Cluster>> LoadClusterOn(store::Connection& c, const std::string& id);

// The promotion service's designation events (PromotionOrgDesignated,
// PromotionOrgDesignationRevoked) applied to the cluster record's promotion organization, inside
// the consumer's store write on `c`: audited as "Event:<type>" under the event's actor, published
// as ClusterChanged. The events' revision is the cluster's designation sequence in the promotion
// service, and the record keeps the highest it applied: an event not after it changes nothing (a
// late revoke of a superseded designation does not clear its successor; a repeat is ignored).
// Other event types, and clusters that do not exist, are ignored.
absl::Status ApplyPromotionEvent(store::Connection& c, const events::v1::Envelope& envelope);

// The cluster a promotion event is about ("" for another event).
std::string PromotionEventCluster(const events::v1::Envelope& envelope);

// The SQLite implementation; applies its migrations on Create.
absl::StatusOr<std::unique_ptr<ClusterRepository>> CreateClusterRepository(store::Store* db,
                                                                                  int task_count);

}  // namespace clustergov::clusters

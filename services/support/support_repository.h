#pragma once

// Persistence of the support service. Writes run as one atomic unit through `SupportTx` (all or
// nothing: a reservation over several pools either lands completely or not at all); SQL lives
// only in the SQLite implementation. The database itself also refuses an overdrawn pool (a CHECK
// constraint) and any change to the ledger (append-only triggers).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/support/v1/support.pb.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/store/unit_of_work.h"

namespace clustergov::support {

namespace v1 = ::clustergov::support::v1;

// The operations available inside one atomic write.
class SupportTx : public store::RepositoryTransaction {
 public:
  using RepositoryTransaction::RepositoryTransaction;
  virtual absl::StatusOr<std::optional<v1::Pool>> GetPool(const std::string& name) = 0;
  // Writes the pool (its numbers and parcels); bumps its etag and times.
  virtual absl::Status PutPool(v1::Pool& pool, bool create) = 0;
  virtual absl::StatusOr<std::optional<v1::Application>> GetApplication(int64_t id) = 0;
  // Inserts (id 0: assigns the id and name) or updates; bumps etag and times.
  virtual absl::Status PutApplication(v1::Application& app) = 0;
  // Another application (not `except_id`) holding a live claim (submitted, under review, approved
  // or allocated) on `reward`: its name, or empty.
  virtual absl::StatusOr<std::string> LiveRewardClaim(const std::string& reward, int64_t except_id) = 0;
  virtual absl::Status AppendLedger(v1::LedgerEntry& entry) = 0;
  // Approved applications whose reservation expired before `now_micros`, oldest first, at most
  // `limit` (0: all).
  virtual absl::StatusOr<std::vector<v1::Application>> ExpiredReservations(int64_t now_micros, int limit) = 0;
};

struct ListQuery {
  SqlFilter filter;
  std::string after;  // keyset (opaque to the domain)
  int limit = 50;
  bool priority_order = false;  // applications: core chain first, then submission time
  std::string applicant;        // applications: restrict to one applicant (empty = all)
};

// One pool's balances as recomputed from the ledger and as stored, read in one snapshot.
struct LedgerSums {
  std::string pool;
  int64_t capacity_adjusted = 0;  // sum of ADJUST
  int64_t reserved = 0;           // RESERVE - RELEASE - ALLOCATE
  int64_t allocated = 0;          // ALLOCATE
  int64_t stored_capacity = 0;
  int64_t stored_reserved = 0;
  int64_t stored_allocated = 0;
};

struct ClusterUse {
  std::string cluster;
  int kind = 0;
  int64_t reserved = 0;
  int64_t allocated = 0;
};

// What the ledger allocated to one cluster's applications of one year.
struct ClusterAllocation {
  struct Quantity {
    int kind = 0;
    std::string pollutant;  // ENVIRONMENT only
    int64_t allocated = 0;  // base units: sum of ALLOCATE entries
  };
  std::vector<Quantity> quantities;
  int applications = 0;  // with at least one allocation
  int core_chain_applications = 0;
};

// A pool's balances as stored, for the domain gauges.
struct PoolBalance {
  std::string name;
  std::string region;
  int year = 0;
  int kind = 0;
  int64_t capacity = 0;
  int64_t reserved = 0;
  int64_t allocated = 0;
};

class SupportRepository : public store::TransactionalRepository<SupportTx> {
 public:
  virtual const std::vector<FilterField>& PoolFilterFields() const = 0;
  virtual const std::vector<FilterField>& ApplicationFilterFields() const = 0;
  virtual const std::vector<FilterField>& LedgerFilterFields() const = 0;

  virtual absl::StatusOr<std::optional<v1::Pool>> GetPool(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<v1::Pool>> ListPools(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::optional<v1::Application>> GetApplication(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<v1::Application>> ListApplications(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedger(const ListQuery& q) = 0;
  // Per pool, sums recomputed from the ledger alone next to the stored balances, all from one
  // read transaction (so concurrent approvals never make a consistent store look inconsistent).
  virtual absl::StatusOr<std::vector<LedgerSums>> SumLedger() = 0;
  virtual absl::StatusOr<std::vector<ClusterUse>> UseByCluster() = 0;
  // `cluster` is "clusters/{id}"; `year` the applications' (and so the pools') year.
  virtual absl::StatusOr<ClusterAllocation> AllocatedTo(const std::string& cluster, int year) = 0;
  // Number of applications in each state (states with none are absent).
  virtual absl::StatusOr<std::map<int, int64_t>> CountApplicationsByState() = 0;
  // When the application that has been in `state` the longest entered it (microseconds since the
  // epoch): the time of the transition into `state` in its history (its update time if the history
  // has none); 0 when no application is in `state`.
  virtual absl::StatusOr<int64_t> OldestEnteredMicros(v1::Application::State state) = 0;
  // Every pool's balances, by name.
  virtual absl::StatusOr<std::vector<PoolBalance>> PoolBalances() = 0;
};

// The event of an application's arrival in its state (ApplicationSubmitted, Approved, Allocated or
// Rejected with `reason`), or null when the state has none.
std::unique_ptr<google::protobuf::Message> ApplicationEvent(const v1::Application& app, const std::string& reason);

// Applies the migrations; on a store that has applications from before the service published
// events, publishes ApplicationAllocated for each allocated one (once).
absl::StatusOr<std::unique_ptr<SupportRepository>> CreateSupportRepository(store::Store* db);

}  // namespace clustergov::support

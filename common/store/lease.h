#pragma once

// Leases with fencing, in the store: how one replica at a time runs a job (scheduled deadlines,
// the outbox relay) while every replica is able to.
//
// A lease is a row (name, holder, token, expiry). TryAcquireLease takes a free or expired lease,
// or renews the caller's own; each change of holder increments the token. The holder's job checks
// its token inside every write it makes (CheckLeaseFence, in the same transaction): a holder that
// stalled past its expiry while another replica took over finds a newer token and its write is
// ABORTED, so two holders never both commit work under one lease.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/store/sql.h"

namespace clustergov::store {

// The leases table; applied by TryAcquireLease on first use (component "leases").
Migrations LeaseMigrations();

// What a holder proves its writes with.
struct LeaseFence {
  std::string name;
  std::string holder;
  int64_t token = 0;
};

// Takes or renews lease `name` for `holder` until now + `ttl`. The fence when `holder` holds it
// now; nullopt when another holder's lease has not expired.
absl::StatusOr<std::optional<LeaseFence>> TryAcquireLease(Store& db, absl::string_view name, absl::string_view holder,
                                                          std::chrono::milliseconds ttl);

// Gives the lease up at once (on shutdown), if `fence` still holds it.
absl::Status ReleaseLease(Store& db, const LeaseFence& fence);

// Inside a write: OK while `fence` is the lease's current holder and token; ABORTED otherwise
// (the write must roll back).
absl::Status CheckLeaseFence(Connection& c, const LeaseFence& fence);

}  // namespace clustergov::store

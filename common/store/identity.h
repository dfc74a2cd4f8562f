#pragma once

// The store's identity: a random id created once in the store (table `store_identity`, one row)
// and the same for every process that opens it, on either backend. It names what is derived from
// the store's contents outside it, such as the cache's Redis namespace: replicas on one store
// share it, another store (a fresh database, a restored backup: BackupDatabase leaves the copy
// without one) gets its own.

#include <string>

#include "absl/status/statusor.h"
#include "common/store/sql.h"

namespace clustergov::store {

// The id of `db` (32 hex digits), created on first call. Processes starting together agree: the
// first insert wins, the others read it.
absl::StatusOr<std::string> StoreIdentity(Store& db);

}  // namespace clustergov::store

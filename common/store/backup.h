#pragma once

// Online backup of a service's SQLite store: a consistent copy of the database as of one moment,
// taken while the service runs (WAL mode: the copy reads a snapshot, writers carry on). The copy
// is written beside `dest` and renamed into place only once complete, fsynced and passing
// SQLite's integrity check, so `dest` is either absent or a whole database. The copy has no store
// identity (identity.h): started, it gets one of its own, so no cache entry of the original applies. Restoring is starting
// the service with the copy as its --db (with no -wal or -shm file of another database beside it).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace clustergov::store {

struct BackupResult {
  int64_t pages = 0;
  int64_t bytes = 0;
};

// NOT_FOUND when `source` does not exist; ALREADY_EXISTS when `dest` does (never overwritten);
// UNAVAILABLE when either cannot be opened or written; DATA_LOSS when the copy fails its
// integrity check.
absl::StatusOr<BackupResult> BackupDatabase(const std::string& source, const std::string& dest);

}  // namespace clustergov::store

#include "common/store/identity.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace clustergov::store {

absl::StatusOr<std::string> StoreIdentity(Store& db) {
  const std::string table =
      "CREATE TABLE IF NOT EXISTS store_identity (singleton INTEGER PRIMARY KEY CHECK (singleton = 1),"
      " id TEXT NOT NULL)";
  CG_RETURN_IF_ERROR(db.Migrate("identity", Migrations{{{1, table}}, {{1, table}}}));
  std::random_device random;
  std::string candidate;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&candidate, absl::Hex(random(), absl::kZeroPad8));
  // Insert if absent, then read: whichever process inserted first, all read the same row.
  CG_RETURN_IF_ERROR(db.Write([&](Connection& c) -> absl::Status {
    auto insert = c.Prepare("INSERT INTO store_identity (singleton, id) VALUES (1, ?) ON CONFLICT (singleton) DO NOTHING");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, candidate);
    return insert->Run();
  }));
  return db.ReadResult<std::string>([](Connection& c) -> absl::StatusOr<std::string> {
    auto select = c.Prepare("SELECT id FROM store_identity WHERE singleton = 1");
    if (!select.ok()) return select.status();
    auto row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError("store_identity has no row");
    return select->Text(0);
  });
}

}  // namespace clustergov::store

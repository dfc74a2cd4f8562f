#include "common/store/lease.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace clustergov::store {

Migrations LeaseMigrations() {
  return SameSchema({{1,
                      "CREATE TABLE leases ("
                      " name TEXT PRIMARY KEY,"
                      " holder TEXT NOT NULL,"
                      " token INTEGER NOT NULL,"
                      " expires_micros INTEGER NOT NULL)"}});
}

absl::StatusOr<std::optional<LeaseFence>> TryAcquireLease(Store& db, absl::string_view name, absl::string_view holder,
                                                          std::chrono::milliseconds ttl) {
  CG_RETURN_IF_ERROR(db.Migrate("leases", LeaseMigrations()));
  std::optional<LeaseFence> fence;
  CG_RETURN_IF_ERROR(db.Write(
      [&](Connection& c) -> absl::Status {
        fence.reset();
        const int64_t now = NowMicros();
        const int64_t expires = now + std::chrono::duration_cast<std::chrono::microseconds>(ttl).count();
        CG_ASSIGN_OR_RETURN(auto select, c.Prepare("SELECT holder, token, expires_micros FROM leases WHERE name = ?"));
        select.Bind(1, name);
        CG_ASSIGN_OR_RETURN(bool found, select.Step());
        int64_t token = 1;
        if (found) {
          const std::string current = select.Text(0);
          token = select.Int(1);
          const int64_t current_expiry = select.Int(2);
          if (current != holder) {
            if (current_expiry > now) return absl::OkStatus();  // held by another
            ++token;                                           // taken over: fences the old holder
          }
          CG_ASSIGN_OR_RETURN(auto update,
                              c.Prepare("UPDATE leases SET holder = ?, token = ?, expires_micros = ? WHERE name = ?"));
          update.Bind(1, holder).Bind(2, token).Bind(3, expires).Bind(4, name);
          CG_RETURN_IF_ERROR(update.Run());
        } else {
          CG_ASSIGN_OR_RETURN(auto insert, c.Prepare("INSERT INTO leases (name, holder, token, expires_micros) "
                                                     "VALUES (?, ?, ?, ?)"));
          insert.Bind(1, name).Bind(2, holder).Bind(3, token).Bind(4, expires);
          CG_RETURN_IF_ERROR(insert.Run());
        }
        fence = LeaseFence{std::string(name), std::string(holder), token};
        return absl::OkStatus();
      },
      WriteOptions{absl::StrCat("lease:", name)}));
  return fence;
}

absl::Status ReleaseLease(Store& db, const LeaseFence& fence) {
  return db.Write([&](Connection& c) -> absl::Status {
    CG_ASSIGN_OR_RETURN(auto update, c.Prepare("UPDATE leases SET expires_micros = 0 "
                                               "WHERE name = ? AND holder = ? AND token = ?"));
    update.Bind(1, fence.name).Bind(2, fence.holder).Bind(3, fence.token);
    return update.Run();
  });
}

absl::Status CheckLeaseFence(Connection& c, const LeaseFence& fence) {
  CG_ASSIGN_OR_RETURN(auto select, c.Prepare("SELECT holder, token FROM leases WHERE name = ?"));
  select.Bind(1, fence.name);
  CG_ASSIGN_OR_RETURN(bool found, select.Step());
  if (!found || select.Text(0) != fence.holder || select.Int(1) != fence.token) {
    return absl::AbortedError(absl::StrCat("lease ", fence.name, " was taken over by another replica"));
  }
  return absl::OkStatus();
}

}  // namespace clustergov::store

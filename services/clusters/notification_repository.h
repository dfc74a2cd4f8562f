#pragma once

// Persistence of the notifications inboxes (hosted in the clusters store). The event consumer adds
// notifications inside its own store write (AddNotificationOn); the API reads them and marks them
// read through the unit of work (audited, as every write).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/notifications/v1/notifications.pb.h"
#include "common/list/filter.h"
#include "common/store/unit_of_work.h"

namespace clustergov::notifications {

namespace v1 = ::clustergov::notifications::v1;

// The scope and shape of a list: the inboxes, a compiled filter, a keyset position.
struct NotificationQuery {
  std::vector<std::string> recipients;
  SqlFilter filter;
  int64_t before_id = 0;  // 0: from the newest
  int limit = 50;
};

// Given the current notification, its new state (name, etag and event untouched), or an error.
using NotificationMutation = std::function<absl::StatusOr<v1::Notification>(const v1::Notification& current)>;

class NotificationRepository : public store::Repository {
 public:
  // Applies the migrations.
  static absl::StatusOr<std::unique_ptr<NotificationRepository>> Create(store::Store* db);

  // Filter fields of ListNotifications: read, kind, recipient, resource, event.
  static const std::vector<FilterField>& FilterFields();

  absl::StatusOr<std::optional<v1::Notification>> Get(int64_t id);
  // Newest first; up to query.limit.
  absl::StatusOr<std::vector<v1::Notification>> List(const NotificationQuery& query);
  // Unread notifications matching the query's recipients and filter.
  absl::StatusOr<int> CountUnread(const NotificationQuery& query);

  // Read-modify-write of one notification as one unit of work (audited); a mutation that changes
  // nothing writes nothing. NOT_FOUND when missing.
  absl::StatusOr<v1::Notification> Mutate(const store::WriteContext& w, int64_t id,
                                          const NotificationMutation& mutation);
  // Marks every unread notification of `recipients` read at `now_micros`; returns how many.
  absl::StatusOr<int> MarkAllRead(const store::WriteContext& w, const std::vector<std::string>& recipients,
                                  int64_t now_micros);

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }

 private:
  explicit NotificationRepository(store::Store* db);

  store::Store* db_;
  store::SqlUnitOfWork unit_;
};

// Inside a store write of the clusters store (the event consumer's): adds `n` (recipient, kind,
// title, body, resource, event and create_time set; unread) unless the inbox already holds a
// notification of that event. True when added.
absl::StatusOr<bool> AddNotificationOn(store::Connection& c, const v1::Notification& n);

}  // namespace clustergov::notifications

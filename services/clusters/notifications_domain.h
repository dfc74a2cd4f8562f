#pragma once

// Notifications: an inbox per organization and per person, filled from other services' domain
// events (docs/notifications.md). A caller reads and marks its organization's inbox and its own
// person inbox ("users/{subject}") only.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/notifications/v1/notifications.pb.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "common/store/sql.h"
#include "services/clusters/notification_repository.h"

namespace clustergov::server {
class Runtime;
}  // namespace clustergov::server

namespace clustergov::notifications {

using server::CallContext;

class NotificationsDomain {
 public:
  NotificationsDomain(std::unique_ptr<NotificationRepository> repo, const PageTokenCodec* page_tokens)
      : repo_(std::move(repo)), page_tokens_(page_tokens) {}

  absl::StatusOr<v1::ListNotificationsResponse> ListNotifications(const CallContext& call,
                                                                  const v1::ListNotificationsRequest& req);
  absl::StatusOr<v1::Notification> GetNotification(const CallContext& call, const v1::GetNotificationRequest& req);
  absl::StatusOr<v1::Notification> MarkNotificationRead(const CallContext& call,
                                                        const v1::MarkNotificationRequest& req);
  absl::StatusOr<v1::Notification> MarkNotificationUnread(const CallContext& call,
                                                          const v1::MarkNotificationRequest& req);
  absl::StatusOr<v1::MarkAllNotificationsReadResponse> MarkAllNotificationsRead(
      const CallContext& call, const v1::MarkAllNotificationsReadRequest& req);

 private:
  absl::StatusOr<v1::Notification> Mark(const CallContext& call, const v1::MarkNotificationRequest& req, bool read,
                                        const char* method);

  std::unique_ptr<NotificationRepository> repo_;
  const PageTokenCodec* page_tokens_;
};

// The notifications `event` makes: recipients, kind, Chinese title and body, the resource it is
// about. Reads the cluster records of the clusters store through `c` (lead departments, promotion
// organization, name). Empty for an event type it does not handle.
absl::StatusOr<std::vector<v1::Notification>> NotificationsFor(store::Connection& c, const events::v1::Envelope& event);

// The consumer handler: adds NotificationsFor(event), once per (event, recipient).
absl::Status AddNotifications(store::Connection& c, const events::v1::Envelope& event);

// The streams the inboxes are fed from, in the consumer group "<service>.notifications".
inline constexpr const char* kNotificationPublishers[] = {"support", "promotion", "clusters"};

// Registers the consumers (before runtime.Start()).
void ConsumeNotificationEvents(server::Runtime& runtime);

}  // namespace clustergov::notifications

#pragma once

// gRPC wiring of the notifications service (in the clusters process): each handler hands its
// request to the domain on the worker pool through the shared Handler.

#include "clustergov/notifications/v1/notifications.grpc.pb.h"
#include "common/server/call.h"
#include "services/clusters/notifications_domain.h"

namespace clustergov::notifications {

class NotificationsServiceImpl final : public v1::NotificationsService::CallbackService {
 public:
  NotificationsServiceImpl(NotificationsDomain* domain, server::Handler* handler) : domain_(domain), handler_(handler) {}

#define CG_NOTIFICATIONS_RPC(Method, Request, Response)                                                         \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request* req, Response* resp) override { \
    return handler_->Unary(ctx, resp, [this, req](const CallContext& call) { return domain_->Method(call, *req); }); \
  }
  CG_NOTIFICATIONS_RPC(ListNotifications, v1::ListNotificationsRequest, v1::ListNotificationsResponse)
  CG_NOTIFICATIONS_RPC(GetNotification, v1::GetNotificationRequest, v1::Notification)
  CG_NOTIFICATIONS_RPC(MarkNotificationRead, v1::MarkNotificationRequest, v1::Notification)
  CG_NOTIFICATIONS_RPC(MarkNotificationUnread, v1::MarkNotificationRequest, v1::Notification)
  CG_NOTIFICATIONS_RPC(MarkAllNotificationsRead, v1::MarkAllNotificationsReadRequest,
                       v1::MarkAllNotificationsReadResponse)
#undef CG_NOTIFICATIONS_RPC

 private:
  NotificationsDomain* domain_;
  server::Handler* handler_;
};

}  // namespace clustergov::notifications

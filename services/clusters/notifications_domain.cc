#include "services/clusters/notifications_domain.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/list/paging.h"
#include "common/server/runtime.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "google/protobuf/util/time_util.h"
#include "services/clusters/cluster_repository.h"

namespace clustergov::notifications {
namespace {

using google::protobuf::util::TimeUtil;
namespace ev = ::clustergov::events::v1;

constexpr size_t kMaxReasonBytes = 300;

// The caller's inboxes: its organization's and its own.
std::vector<std::string> InboxesOf(const Principal& p) {
  std::vector<std::string> inboxes;
  if (!p.organization.empty()) inboxes.push_back(p.organization);
  if (!p.subject.empty()) inboxes.push_back(absl::StrCat("users/", p.subject));
  return inboxes;
}

absl::Status CheckRecipient(const Principal& p, const v1::Notification& n) {
  const auto inboxes = InboxesOf(p);
  if (std::find(inboxes.begin(), inboxes.end(), n.recipient()) != inboxes.end()) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(n.name(), " is not in the caller's inboxes"));
}

// A mark's write: audited under the caller; marks are idempotent by nature (no request_id).
store::WriteContext MarkContext(const CallContext& call, const char* method) {
  store::WriteContext w;
  w.actor = &call.principal;
  w.method = method;
  w.call_id = call.request_id;
  return w;
}

// ------------------------------------------------------------------ events → notifications

// What one event says, before it is addressed.
struct Draft {
  v1::Kind kind = v1::KIND_UNSPECIFIED;
  std::string title;
  std::string body;
  std::string resource;
  std::vector<std::string> recipients;
};

template <typename M>
absl::StatusOr<M> Unpack(const ev::Envelope& e) {
  M m;
  if (!e.data().UnpackTo(&m))
    return absl::InvalidArgumentError(absl::StrCat("event ", e.id(), ": data is not ", e.type()));
  return m;
}

// The cluster's stored record, if the registry has it.
absl::StatusOr<std::optional<clusters::v1::Cluster>> Cluster(store::Connection& c, const std::string& name) {
  if (!absl::StartsWith(name, "clusters/")) return std::optional<clusters::v1::Cluster>();
  return clusters::LoadClusterOn(c, name.substr(9));
}

std::string ClusterTitle(const std::optional<clusters::v1::Cluster>& cluster, const std::string& name) {
  return cluster.has_value() && !cluster->display_name_zh().empty() ? cluster->display_name_zh() : name;
}

void AddLeadDepartments(const std::optional<clusters::v1::Cluster>& cluster, std::vector<std::string>* out) {
  if (!cluster.has_value()) return;
  for (const auto& d : cluster->lead_departments()) out->push_back(absl::StrCat("departments/", d));
}

std::string ChinaDate(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y年%m月%d日", absl::FromUnixSeconds(t.seconds()), absl::FixedTimeZone(8 * 3600));
}

// `due` is the end of the last day (midnight after it): the day is the one before.
google::protobuf::Timestamp LastSecondBefore(google::protobuf::Timestamp due) {
  due.set_seconds(due.seconds() - 1);
  return due;
}

std::string Reason(const std::string& reason) {
  return reason.empty() ? "" : absl::StrCat("理由：", Abbreviate(reason, kMaxReasonBytes));
}

std::string DecisionZh(const std::string& decision) {
  if (decision == "KEEP") return "保持现有层级";
  if (decision == "PROMOTE") return "晋级";
  if (decision == "WARN") return "警示";
  if (decision == "DEMOTE") return "降级";
  return decision;
}

std::string LevelZh(const std::string& level) {
  if (level == "LEAGUE_REVIEW") return "盟市初审";
  if (level == "DEPARTMENT_REVIEW") return "部门审核";
  if (level == "EXPERT_REVIEW") return "专家评审";
  if (level == "DECISION") return "决定";
  return level;
}

absl::StatusOr<std::optional<Draft>> DraftFor(store::Connection& c, const ev::Envelope& e) {
  Draft d;
  const std::string& type = e.type();
  if (type == ev::ApplicationSubmitted::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationSubmitted>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    // Support lets a cluster's lead departments review any of its applications.
    AddLeadDepartments(cluster, &d.recipients);
    d.kind = v1::APPLICATION_SUBMITTED;
    d.resource = m.application();
    d.title = "新的要素支持申请待审核";
    d.body = absl::StrCat(m.applicant(), " 为", ClusterTitle(cluster, m.cluster()), "提交了", m.year(),
                          "年度要素支持申请，请审核。");
  } else if (type == ev::ApplicationApproved::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationApproved>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.applicant()};
    d.kind = v1::APPLICATION_APPROVED;
    d.resource = m.application();
    d.title = "要素支持申请已批准";
    d.body = absl::StrCat("您为", ClusterTitle(cluster, m.cluster()), "提交的要素支持申请已批准，所需指标已预留。");
  } else if (type == ev::ApplicationRejected::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationRejected>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.applicant()};
    d.kind = v1::APPLICATION_REJECTED;
    d.resource = m.application();
    d.title = "要素支持申请未获批准";
    d.body =
        absl::StrCat("您为", ClusterTitle(cluster, m.cluster()), "提交的要素支持申请未获批准。", Reason(m.reason()));
  } else if (type == ev::ApplicationExpired::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationExpired>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.applicant()};
    d.kind = v1::APPLICATION_EXPIRED;
    d.resource = m.application();
    d.title = "要素支持预留已过期";
    d.body = absl::StrCat("您为", ClusterTitle(cluster, m.cluster()),
                          "提交的要素支持申请未在预留期内完成配置，预留指标已退回。");
  } else if (type == ev::AnnualReportReturned::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::AnnualReportReturned>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.promotion_org()};
    d.kind = v1::ANNUAL_REPORT_RETURNED;
    d.resource = m.annual_report();
    d.title = "年度报告被退回";
    d.body = absl::StrCat(ClusterTitle(cluster, m.cluster()), m.year(), "年度报告已退回，请修改后重新提交。",
                          Reason(m.reason()));
  } else if (type == ev::AnnualReportOverdue::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::AnnualReportOverdue>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.promotion_org()};
    d.kind = v1::ANNUAL_REPORT_OVERDUE;
    d.resource = m.annual_report();
    d.title = "年度报告逾期提醒";
    d.body = absl::StrCat(ClusterTitle(cluster, m.cluster()), m.year(), "年度报告应于", ChinaDate(LastSecondBefore(m.due())),
                          "前提交，现已逾期，请尽快提交。");
  } else if (type == ev::PromotionOrgDesignated::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::PromotionOrgDesignated>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    d.recipients = {m.promotion_org()};
    d.kind = v1::PROMOTION_ORG_DESIGNATED;
    d.resource = m.designation();
    d.title = "已被指定为集群发展促进机构";
    d.body = absl::StrCat("贵机构已被指定为", ClusterTitle(cluster, m.cluster()), "的集群发展促进机构。");
  } else if (type == ev::EvaluationDecided::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::EvaluationDecided>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    if (cluster.has_value()) d.recipients.push_back(cluster->promotion_organization());
    AddLeadDepartments(cluster, &d.recipients);
    d.kind = v1::EVALUATION_DECIDED;
    d.resource = m.evaluation();
    d.title = "集群评估结果已确定";
    d.body =
        absl::StrCat(ClusterTitle(cluster, m.cluster()), m.year(), "年度评估结果：", DecisionZh(m.decision()), "。");
  } else if (type == ev::EvaluationStalled::descriptor()->full_name()) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::EvaluationStalled>(e));
    CG_ASSIGN_OR_RETURN(auto cluster, Cluster(c, m.cluster()));
    // Organizations have inboxes; a role ("roles/expert") does not.
    for (const auto& w : m.waiting_for()) {
      if (!absl::StartsWith(w, "roles/")) d.recipients.push_back(w);
    }
    d.kind = v1::EVALUATION_STALLED;
    d.resource = m.evaluation();
    d.title = "集群评估待办提醒";
    d.body = absl::StrCat(ClusterTitle(cluster, m.cluster()), m.year(), "年度评估自", ChinaDate(m.since()), "起停留在",
                          LevelZh(m.level()), "环节，等待贵单位处理。");
  } else {
    return std::optional<Draft>();
  }
  return std::optional<Draft>(std::move(d));
}

}  // namespace

absl::StatusOr<std::vector<v1::Notification>> NotificationsFor(store::Connection& c, const ev::Envelope& event) {
  CG_ASSIGN_OR_RETURN(std::optional<Draft> draft, DraftFor(c, event));
  std::vector<v1::Notification> out;
  if (!draft.has_value()) return out;
  std::vector<std::string> seen;
  for (const auto& r : draft->recipients) {
    if (r.empty() || std::find(seen.begin(), seen.end(), r) != seen.end()) continue;
    seen.push_back(r);
    v1::Notification n;
    n.set_recipient(r);
    n.set_kind(draft->kind);
    n.set_title(draft->title);
    n.set_body(draft->body);
    n.set_resource(draft->resource);
    n.set_event(event.id());
    *n.mutable_create_time() = event.time();
    out.push_back(std::move(n));
  }
  return out;
}

absl::Status AddNotifications(store::Connection& c, const ev::Envelope& event) {
  CG_ASSIGN_OR_RETURN(auto notifications, NotificationsFor(c, event));
  for (const auto& n : notifications) CG_RETURN_IF_ERROR(AddNotificationOn(c, n).status());
  return absl::OkStatus();
}

void ConsumeNotificationEvents(server::Runtime& runtime) {
  for (const char* publisher : kNotificationPublishers)
    runtime.ConsumeEvents(publisher, "notifications", AddNotifications);
}

// ------------------------------------------------------------------ the API

absl::StatusOr<v1::ListNotificationsResponse> NotificationsDomain::ListNotifications(
    const CallContext& call, const v1::ListNotificationsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan,
                      PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(), req.filter(),
                               NotificationRepository::FilterFields(), {"ListNotifications", req.filter()}));
  NotificationQuery q;
  q.recipients = InboxesOf(call.principal);
  q.filter = plan.filter;
  q.limit = plan.page_size + 1;
  if (!plan.after_key.empty() && !absl::SimpleAtoi(plan.after_key, &q.before_id)) {
    return InvalidField("page_token", "not a page of this list");
  }
  CG_ASSIGN_OR_RETURN(auto notifications, repo_->List(q));
  v1::ListNotificationsResponse resp;
  resp.set_next_page_token(TakePage(*page_tokens_, plan, notifications, resp.mutable_notifications(),
                                    [](const v1::Notification& n) { return n.name().substr(14); }));
  CG_ASSIGN_OR_RETURN(int unread, repo_->CountUnread(q));
  resp.set_unread_count(unread);
  return resp;
}

absl::StatusOr<v1::Notification> NotificationsDomain::GetNotification(const CallContext& call,
                                                                      const v1::GetNotificationRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumberedName("name", req.name(), "notifications"));
  CG_ASSIGN_OR_RETURN(auto n, repo_->Get(id));
  if (!n.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  CG_RETURN_IF_ERROR(CheckRecipient(call.principal, *n));
  return *n;
}

absl::StatusOr<v1::Notification> NotificationsDomain::Mark(const CallContext& call,
                                                           const v1::MarkNotificationRequest& req, bool read,
                                                           const char* method) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseNumberedName("name", req.name(), "notifications"));
  return repo_->Mutate(MarkContext(call, method), id,
                       [&](const v1::Notification& current) -> absl::StatusOr<v1::Notification> {
                         CG_RETURN_IF_ERROR(CheckRecipient(call.principal, current));
                         CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current.etag()));
                         v1::Notification next = current;
                         if (current.read() == read) return next;  // already so: nothing is written
                         next.set_read(read);
                         if (read) {
                           *next.mutable_read_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
                         } else {
                           next.clear_read_time();
                         }
                         return next;
                       });
}

absl::StatusOr<v1::Notification> NotificationsDomain::MarkNotificationRead(const CallContext& call,
                                                                           const v1::MarkNotificationRequest& req) {
  return Mark(call, req, true, "MarkNotificationRead");
}

absl::StatusOr<v1::Notification> NotificationsDomain::MarkNotificationUnread(const CallContext& call,
                                                                             const v1::MarkNotificationRequest& req) {
  return Mark(call, req, false, "MarkNotificationUnread");
}

absl::StatusOr<v1::MarkAllNotificationsReadResponse> NotificationsDomain::MarkAllNotificationsRead(
    const CallContext& call, const v1::MarkAllNotificationsReadRequest& req) {
  std::vector<std::string> inboxes = InboxesOf(call.principal);
  if (!req.recipient().empty()) {
    if (std::find(inboxes.begin(), inboxes.end(), req.recipient()) == inboxes.end()) {
      return absl::PermissionDeniedError(absl::StrCat(req.recipient(), " is not one of the caller's inboxes"));
    }
    inboxes = {req.recipient()};
  }
  CG_ASSIGN_OR_RETURN(int marked,
                      repo_->MarkAllRead(MarkContext(call, "MarkAllNotificationsRead"), inboxes, store::NowMicros()));
  v1::MarkAllNotificationsReadResponse resp;
  resp.set_marked(marked);
  return resp;
}

}  // namespace clustergov::notifications

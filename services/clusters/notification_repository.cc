#include "services/clusters/notification_repository.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::notifications {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;

const google::protobuf::ServiceDescriptor& Service() {
  return *v1::Notification::descriptor()->file()->FindServiceByName("NotificationsService");
}

// The stored blob holds the notification without its name and etag (the id and revision columns).
const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema({
      {1, R"sql(
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient TEXT NOT NULL,
  event_id TEXT NOT NULL,
  kind INTEGER NOT NULL,
  resource TEXT NOT NULL,
  is_read INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE UNIQUE INDEX notifications_event_recipient ON notifications (event_id, recipient);
CREATE INDEX notifications_inbox ON notifications (recipient, id);
)sql"},
  }));
  return *migrations;
}

constexpr char kColumns[] = "SELECT n.id, n.revision, n.data FROM notifications n";

absl::StatusOr<v1::Notification> FromRow(store::Statement& stmt) {
  CG_ASSIGN_OR_RETURN(auto n, store::ParseStored<v1::Notification>(stmt.Blob(2)));
  n.set_name(absl::StrCat("notifications/", stmt.Int(0)));
  n.set_etag(store::Etag(stmt.Int(1)));
  return n;
}

// "n.recipient IN (?, ?, ...) AND <filter>" with its arguments.
std::string Scope(const NotificationQuery& q, std::vector<SqlValue>* args) {
  std::string in;
  for (const auto& r : q.recipients) {
    absl::StrAppend(&in, in.empty() ? "?" : ", ?");
    args->push_back(r);
  }
  if (in.empty()) in = "NULL";
  args->insert(args->end(), q.filter.args.begin(), q.filter.args.end());
  return absl::StrCat("n.recipient IN (", in, ") AND ", q.filter.where);
}

absl::Status Write(Connection& c, int64_t id, int64_t revision, v1::Notification n) {
  const bool read = n.read();
  n.clear_name();
  n.clear_etag();
  CG_ASSIGN_OR_RETURN(auto update,
                      c.Prepare("UPDATE notifications SET is_read = ?, revision = ?, data = ? WHERE id = ?"));
  update.Bind(1, read ? 1 : 0).Bind(2, revision).BindBlob(3, n.SerializeAsString()).Bind(4, id);
  return update.Run();
}

}  // namespace

NotificationRepository::NotificationRepository(store::Store* db) : db_(db), unit_(db, Service()) {}

absl::StatusOr<std::unique_ptr<NotificationRepository>> NotificationRepository::Create(store::Store* db) {
  std::unique_ptr<NotificationRepository> repo(new NotificationRepository(db));
  CG_RETURN_IF_ERROR(repo->unit_.Migrate());
  CG_RETURN_IF_ERROR(db->Migrate("notifications", Migrations()));
  return repo;
}

const std::vector<FilterField>& NotificationRepository::FilterFields() {
  static const auto* fields = [] {
    std::vector<std::pair<std::string, int64_t>> kinds;
    const auto* kind = v1::Kind_descriptor();
    for (int i = 1; i < kind->value_count(); ++i) kinds.emplace_back(kind->value(i)->name(), kind->value(i)->number());
    return new std::vector<FilterField>{
        {"read", FilterField::Type::kBool, "n.is_read", {}},
        {"kind", FilterField::Type::kEnum, "n.kind", kinds},
        {"recipient", FilterField::Type::kString, "n.recipient", {}},
        {"resource", FilterField::Type::kString, "n.resource", {}},
        {"event", FilterField::Type::kString, "n.event_id", {}},
    };
  }();
  return *fields;
}

absl::StatusOr<std::optional<v1::Notification>> NotificationRepository::Get(int64_t id) {
  return db_->ReadResult<std::optional<v1::Notification>>(
      [&](Connection& c) -> absl::StatusOr<std::optional<v1::Notification>> {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat(kColumns, " WHERE n.id = ?")));
        stmt.Bind(1, id);
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) return std::optional<v1::Notification>();
        CG_ASSIGN_OR_RETURN(auto n, FromRow(stmt));
        return std::optional<v1::Notification>(std::move(n));
      });
}

absl::StatusOr<std::vector<v1::Notification>> NotificationRepository::List(const NotificationQuery& q) {
  std::vector<SqlValue> args;
  std::string sql = absl::StrCat(kColumns, " WHERE ", Scope(q, &args), " AND n.id < ? ORDER BY n.id DESC LIMIT ?");
  args.push_back(q.before_id > 0 ? q.before_id : std::numeric_limits<int64_t>::max());
  args.push_back(static_cast<int64_t>(q.limit));
  return db_->ReadResult<std::vector<v1::Notification>>(
      [&](Connection& c) -> absl::StatusOr<std::vector<v1::Notification>> {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
        stmt.BindAll(1, args);
        std::vector<v1::Notification> out;
        while (true) {
          CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          CG_ASSIGN_OR_RETURN(auto n, FromRow(stmt));
          out.push_back(std::move(n));
        }
        return out;
      });
}

absl::StatusOr<int> NotificationRepository::CountUnread(const NotificationQuery& q) {
  std::vector<SqlValue> args;
  std::string sql = absl::StrCat("SELECT count(*) FROM notifications n WHERE ", Scope(q, &args), " AND n.is_read = 0");
  return db_->ReadResult<int>([&](Connection& c) -> absl::StatusOr<int> {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
    stmt.BindAll(1, args);
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? static_cast<int>(stmt.Int(0)) : 0;
  });
}

absl::StatusOr<v1::Notification> NotificationRepository::Mutate(const store::WriteContext& w, int64_t id,
                                                                const NotificationMutation& mutation) {
  return unit_.Run<v1::Notification>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<v1::Notification> {
    Connection& c = tx.connection();
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat(kColumns, " WHERE n.id = ?")));
    stmt.Bind(1, id);
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("notifications/", id, " not found"));
    CG_ASSIGN_OR_RETURN(v1::Notification current, FromRow(stmt));
    CG_RETURN_IF_ERROR(stmt.Run());
    CG_ASSIGN_OR_RETURN(v1::Notification next, mutation(current));
    if (next.SerializeAsString() == current.SerializeAsString()) return current;  // nothing to write
    const int64_t revision = store::RevisionOf(current.etag()) + 1;
    CG_RETURN_IF_ERROR(Write(c, id, revision, next));
    next.set_name(current.name());
    next.set_etag(store::Etag(revision));
    CG_RETURN_IF_ERROR(tx.Audit(next.name(), current.etag(), next.etag()));
    return next;
  });
}

absl::StatusOr<int> NotificationRepository::MarkAllRead(const store::WriteContext& w,
                                                        const std::vector<std::string>& recipients,
                                                        int64_t now_micros) {
  NotificationQuery q;
  q.recipients = recipients;
  q.filter.where = "n.is_read = 0";
  return unit_.Run<int>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<int> {
    Connection& c = tx.connection();
    std::vector<SqlValue> args;
    std::vector<v1::Notification> unread;
    {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat(kColumns, " WHERE ", Scope(q, &args), " ORDER BY n.id")));
      stmt.BindAll(1, args);
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        CG_ASSIGN_OR_RETURN(auto n, FromRow(stmt));
        unread.push_back(std::move(n));
      }
    }
    for (auto& n : unread) {
      CG_ASSIGN_OR_RETURN(int64_t id, ParseNumberedName("name", n.name(), "notifications"));
      const std::string before = n.etag();
      const int64_t revision = store::RevisionOf(before) + 1;
      n.set_read(true);
      *n.mutable_read_time() = TimeUtil::MicrosecondsToTimestamp(now_micros);
      CG_RETURN_IF_ERROR(Write(c, id, revision, n));
      CG_RETURN_IF_ERROR(tx.Audit(n.name(), before, store::Etag(revision)));
    }
    return static_cast<int>(unread.size());
  });
}

absl::StatusOr<bool> AddNotificationOn(Connection& c, const v1::Notification& n) {
  v1::Notification stored = n;
  stored.clear_name();
  stored.clear_etag();
  stored.set_read(false);
  stored.clear_read_time();
  CG_ASSIGN_OR_RETURN(auto insert, c.Prepare("INSERT INTO notifications (recipient, event_id, kind, resource, is_read,"
                                             " revision, data) VALUES (?, ?, ?, ?, 0, 1, ?)"
                                             " ON CONFLICT (event_id, recipient) DO NOTHING"));
  insert.Bind(1, n.recipient())
      .Bind(2, n.event())
      .Bind(3, static_cast<int64_t>(n.kind()))
      .Bind(4, n.resource())
      .BindBlob(5, stored.SerializeAsString());
  CG_RETURN_IF_ERROR(insert.Run());
  return c.Changes() > 0;
}

}  // namespace clustergov::notifications

#include "common/store/unit_of_work.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status.h"
#include "common/store/audit.h"
#include "common/store/outbox.h"
#include "google/protobuf/descriptor.h"

namespace clustergov::store {

absl::Status SqlTransaction::AppendAudit(absl::string_view step, const std::string& resource,
                                            const std::string& etag_before, const std::string& etag_after) {
  AuditRecord record{absl::StrCat(FullMethod(service_, w_.method), step), resource, etag_before, etag_after,
                     w_.reason, w_.call_id, w_.request_id};
  return store::AppendAudit(c_, *w_.actor, record);
}

absl::Status SqlTransaction::AppendEvent(absl::string_view subject, const google::protobuf::Message& data,
                                         int64_t revision) {
  // "clustergov.clusters.v1.Clusters" publishes as "clustergov/clusters".
  std::vector<absl::string_view> package = absl::StrSplit(service_.full_name(), '.');
  const std::string source = absl::StrCat("clustergov/", package.size() > 1 ? package[1] : package[0]);
  common::v1::Actor actor;
  if (w_.actor != nullptr) {
    actor.set_subject(w_.actor->subject);
    actor.set_organization(w_.actor->organization);
    for (const std::string& role : w_.actor->roles) actor.add_roles(role);
  }
  events::v1::Envelope envelope = MakeEnvelope(source, subject, data, actor, revision);
  envelope.set_request_id(w_.call_id);
  return store::AppendEvent(c_, std::move(envelope));
}

absl::Status SqlUnitOfWork::Migrate() {
  CG_RETURN_IF_ERROR(db_->Migrate("core", CoreMigrations(service_)));
  return db_->Migrate("outbox", OutboxMigrations());
}

absl::Status SqlUnitOfWork::PublishOnce(absl::string_view name,
                                        const std::function<absl::Status(SqlTransaction&)>& publish) {
  CG_RETURN_IF_ERROR(
      db_->Migrate("event_backfills", SameSchema({{1, "CREATE TABLE event_backfills (name TEXT PRIMARY KEY);"}})));
  static const Principal* system = new Principal{"system:events", "system", {"admin"}};
  const WriteContext w{system, "PublishOnce", "", "", absl::StrCat("events for existing records: ", name)};
  return Run<bool>(w, [&](SqlTransaction& tx) -> absl::StatusOr<bool> {
    Connection& c = tx.connection();
    CG_ASSIGN_OR_RETURN(auto done, c.Prepare("SELECT 1 FROM event_backfills WHERE name = ?"));
    done.Bind(1, name);
    CG_ASSIGN_OR_RETURN(bool ran, done.Step());
    if (ran) return false;
    CG_RETURN_IF_ERROR(publish(tx));
    CG_ASSIGN_OR_RETURN(auto record, c.Prepare("INSERT INTO event_backfills (name) VALUES (?)"));
    record.Bind(1, name);
    CG_RETURN_IF_ERROR(record.Run());
    return true;
  }).status();
}

absl::StatusOr<std::string> SqlUnitOfWork::RunBytes(
    const WriteContext& w, const std::function<absl::StatusOr<std::string>(Transaction&)>& body) {
  std::function<absl::StatusOr<std::string>(Connection&)> run = [&](Connection& c) -> absl::StatusOr<std::string> {
    if (w.fence != nullptr) CG_RETURN_IF_ERROR(CheckLeaseFence(c, *w.fence));
    SqlTransaction tx(c, w, service_);
    return body(tx);
  };
  const WriteOptions options{w.serialize_on};
  if (w.request == nullptr) return db_->WriteResult<std::string>(run, options);
  return IdempotentWriteBytes(*db_, *w.actor, FullMethod(service_, w.method), w.request_id, *w.request, run, nullptr,
                              options);
}

absl::StatusOr<common::v1::ListAuditEventsResponse> SqlUnitOfWork::ListAuditEvents(
    const Principal& caller, const PageTokenCodec& tokens, const common::v1::ListAuditEventsRequest& req) {
  return ListAuditEventsFor(caller, *db_, tokens, req);
}

}  // namespace clustergov::store

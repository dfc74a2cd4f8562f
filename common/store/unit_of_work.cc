#include "common/store/unit_of_work.h"

#include "absl/strings/str_cat.h"
#include "common/store/audit.h"

namespace clustergov::store {

absl::Status SqlTransaction::AppendAudit(absl::string_view step, const std::string& resource,
                                            const std::string& etag_before, const std::string& etag_after) {
  AuditRecord record{absl::StrCat(FullMethod(service_, w_.method), step), resource, etag_before, etag_after,
                     w_.reason, w_.call_id, w_.request_id};
  return store::AppendAudit(c_, *w_.actor, record);
}

absl::Status SqlUnitOfWork::Migrate() { return db_->Migrate("core", CoreMigrations(service_)); }

absl::StatusOr<std::string> SqlUnitOfWork::RunBytes(
    const WriteContext& w, const std::function<absl::StatusOr<std::string>(Transaction&)>& body) {
  std::function<absl::StatusOr<std::string>(Connection&)> run = [&](Connection& c) -> absl::StatusOr<std::string> {
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

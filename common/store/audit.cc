#include "absl/strings/string_view.h"
#include "common/store/audit.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/list/paging.h"
#include "common/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::store {
namespace {

constexpr int64_t kIdempotencyRetentionMicros = int64_t{24} * 3600 * 1000000;

std::string Fingerprint(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

}  // namespace

std::vector<Migration> CoreMigrations(const google::protobuf::ServiceDescriptor& service) {
  // RPC names are identifiers and a service name is dotted identifiers: safe to quote in SQL.
  std::vector<std::string> rpcs;
  for (int i = 0; i < service.method_count(); ++i) rpcs.push_back(absl::StrCat("'", service.method(i)->name(), "'"));
  const std::string qualify = absl::StrCat("SET method = '/", service.full_name(), "/' || method WHERE method IN (",
                                           absl::StrJoin(rpcs, ", "), ")");
  return {
      {1, R"sql(
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  method TEXT NOT NULL,
  resource TEXT NOT NULL,
  actor_subject TEXT NOT NULL,
  actor_organization TEXT NOT NULL,
  actor_roles TEXT NOT NULL,
  etag_before TEXT NOT NULL,
  etag_after TEXT NOT NULL,
  reason TEXT NOT NULL,
  request_id TEXT NOT NULL,
  time_micros INTEGER NOT NULL
);
CREATE INDEX audit_events_resource ON audit_events (resource, id);
CREATE TABLE idempotency_keys (
  subject TEXT NOT NULL,
  method TEXT NOT NULL,
  request_id TEXT NOT NULL,
  fingerprint BLOB NOT NULL,
  response BLOB NOT NULL,
  created_micros INTEGER NOT NULL,
  PRIMARY KEY (subject, method, request_id)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_micros);
)sql"},
      {2, absl::StrCat("ALTER TABLE audit_events ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';",
                       " UPDATE audit_events ", qualify, "; UPDATE idempotency_keys ", qualify, ";")},
  };
}

std::string FullMethod(const google::protobuf::ServiceDescriptor& service, absl::string_view rpc) {
  if (service.FindMethodByName(std::string(rpc)) == nullptr) return std::string(rpc);
  return absl::StrCat("/", service.full_name(), "/", rpc);
}

absl::Status AppendAudit(Connection& c, const Principal& actor, const AuditRecord& r) {
  auto stmt = c.Prepare(
      "INSERT INTO audit_events (method, resource, actor_subject, actor_organization, actor_roles, etag_before,"
      " etag_after, reason, request_id, idempotency_key, time_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, r.method)
      .Bind(2, r.resource)
      .Bind(3, actor.subject)
      .Bind(4, actor.organization)
      .Bind(5, absl::StrJoin(actor.roles, ","))
      .Bind(6, r.etag_before)
      .Bind(7, r.etag_after)
      .Bind(8, r.reason)
      .Bind(9, r.request_id)
      .Bind(10, r.idempotency_key)
      .Bind(11, NowMicros());
  return stmt->Run();
}

absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(Database& db, const PageTokenCodec& tokens,
                                                                     const Principal& caller,
                                                                     const common::v1::ListAuditEventsRequest& req) {
  static const auto* fields = new std::vector<FilterField>{
      {"resource", FilterField::Type::kString, "resource", {}},
      {"method", FilterField::Type::kString, "method", {}},
      {"actor.subject", FilterField::Type::kString, "actor_subject", {}},
      {"actor.organization", FilterField::Type::kString, "actor_organization", {}},
      {"request_id", FilterField::Type::kString, "request_id", {}},
      {"idempotency_key", FilterField::Type::kString, "idempotency_key", {}},
  };
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(tokens, caller, req.page_size(), req.page_token(), req.filter(), *fields,
                                              {"ListAuditEvents", req.filter()}));
  int64_t before_id = INT64_MAX;
  if (!plan.after_key.empty() && !absl::SimpleAtoi(plan.after_key, &before_id)) {
    return InvalidField("page_token", "invalid page token: not a position in the audit trail");
  }
  return db.ReadResult<common::v1::ListAuditEventsResponse>(
      [&](Connection& c) -> absl::StatusOr<common::v1::ListAuditEventsResponse> {
        auto stmt = c.Prepare(absl::StrCat(
            "SELECT id, method, resource, actor_subject, actor_organization, actor_roles, etag_before, etag_after,"
            " reason, request_id, time_micros, idempotency_key FROM audit_events WHERE id < ? AND ",
            plan.filter.where, " ORDER BY id DESC LIMIT ?"));
        if (!stmt.ok()) return stmt.status();
        stmt->Bind(1, before_id);
        stmt->BindAll(2, plan.filter.args);
        stmt->Bind(2 + static_cast<int>(plan.filter.args.size()), static_cast<int64_t>(plan.page_size + 1));
        common::v1::ListAuditEventsResponse out;
        while (true) {
          auto row = stmt->Step();
          if (!row.ok()) return row.status();
          if (!*row) break;
          if (out.events_size() == plan.page_size) {
            const int64_t last_id = out.events(out.events_size() - 1).id();
            out.set_next_page_token(NextPageToken(tokens, plan, std::to_string(last_id)));
            break;
          }
          auto* e = out.add_events();
          e->set_id(stmt->Int(0));
          e->set_method(stmt->Text(1));
          e->set_resource(stmt->Text(2));
          e->mutable_actor()->set_subject(stmt->Text(3));
          e->mutable_actor()->set_organization(stmt->Text(4));
          for (auto role : absl::StrSplit(stmt->Text(5), ',', absl::SkipEmpty())) {
            e->mutable_actor()->add_roles(std::string(role));
          }
          e->set_etag_before(stmt->Text(6));
          e->set_etag_after(stmt->Text(7));
          e->set_reason(stmt->Text(8));
          e->set_request_id(stmt->Text(9));
          *e->mutable_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(stmt->Int(10));
          e->set_idempotency_key(stmt->Text(11));
        }
        return out;
      });
}

absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEventsFor(const Principal& caller, Database& db,
                                                                        const PageTokenCodec& tokens,
                                                                        const common::v1::ListAuditEventsRequest& req) {
  if (!caller.HasAnyRole({roles::kAuditor, roles::kGovernment, roles::kAdmin})) {
    return absl::PermissionDeniedError("the audit trail is open to auditors, government and admins");
  }
  return ListAuditEvents(db, tokens, caller, req);
}

absl::Status ValidateRequestId(absl::string_view request_id) {
  if (request_id.empty()) return absl::OkStatus();
  if (request_id.size() > 128) return InvalidField("request_id", "at most 128 characters");
  for (char ch : request_id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.' && ch != ':') {
      return InvalidField("request_id", "only letters, digits and . _ : - are allowed");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IdempotentWriteBytes(Database& db, const Principal& caller, absl::string_view method,
                                                 absl::string_view request_id, const google::protobuf::Message& request,
                                                 const std::function<absl::StatusOr<std::string>(Connection&)>& body,
                                                 bool* replayed) {
  if (replayed != nullptr) *replayed = false;
  CG_RETURN_IF_ERROR(ValidateRequestId(request_id));
  if (request_id.empty()) {
    return db.WriteResult<std::string>(body);
  }
  std::string fingerprint = Fingerprint(request);
  bool was_replayed = false;
  auto result = db.WriteResult<std::string>([&](Connection& c) -> absl::StatusOr<std::string> {
    auto find = c.Prepare(
        "SELECT fingerprint, response FROM idempotency_keys WHERE subject = ? AND method = ? AND request_id = ?");
    if (!find.ok()) return find.status();
    find->Bind(1, caller.subject).Bind(2, method).Bind(3, request_id);
    auto row = find->Step();
    if (!row.ok()) return row.status();
    if (*row) {
      if (find->Blob(0) != fingerprint) {
        return InvalidField("request_id", "already used for a different request");
      }
      was_replayed = true;
      return find->Blob(1);
    }
    auto response = body(c);
    if (!response.ok()) return response.status();
    auto prune = c.Prepare("DELETE FROM idempotency_keys WHERE created_micros < ?");
    if (!prune.ok()) return prune.status();
    int64_t now = NowMicros();
    prune->Bind(1, now - kIdempotencyRetentionMicros);
    CG_RETURN_IF_ERROR(prune->Run());
    auto record = c.Prepare(
        "INSERT INTO idempotency_keys (subject, method, request_id, fingerprint, response, created_micros)"
        " VALUES (?, ?, ?, ?, ?, ?)");
    if (!record.ok()) return record.status();
    record->Bind(1, caller.subject).Bind(2, method).Bind(3, request_id).BindBlob(4, fingerprint).BindBlob(5, *response)
        .Bind(6, now);
    CG_RETURN_IF_ERROR(record->Run());
    return response;
  });
  if (replayed != nullptr) *replayed = was_replayed;
  return result;
}

}  // namespace clustergov::store

#pragma once

// The audit trail and idempotency records every service keeps in its own store, written in the
// same transaction as the change they describe. These are the primitives (on either backend)
// under the unit of work (unit_of_work.h), through which every repository writes and reads the trail.

#include "absl/strings/string_view.h"
#include <functional>
#include <string>

#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/auth/principal.h"
#include "common/list/page_token.h"
#include "common/store/sql.h"

namespace google::protobuf {
class Message;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace clustergov::store {

// Tables shared by every service (audit_events, idempotency_keys) of the store of `service` (the
// gRPC service whose calls the store records); apply with db.Migrate("core", CoreMigrations(s))
// before the service's own migrations. Version 2 adds the audit events' idempotency key and
// rewrites the RPC names recorded before it (audit and idempotency) into full gRPC methods.
Migrations CoreMigrations(const google::protobuf::ServiceDescriptor& service);

// The full gRPC method of `rpc` in `service`, e.g. "/clustergov.clusters.v1.ClustersService/CreateCluster":
// what the audit trail and the idempotency records name a call by. A name that is not a method of
// `service` (a write no RPC made, such as "Seed") is returned unchanged.
std::string FullMethod(const google::protobuf::ServiceDescriptor& service, absl::string_view rpc);

struct AuditRecord {
  std::string method;           // full gRPC method (FullMethod), or "Seed"
  std::string resource;         // "clusters/hohhot-dairy"
  std::string etag_before;
  std::string etag_after;
  std::string reason;
  std::string request_id;       // the call's x-request-id, as in the logs
  std::string idempotency_key;  // the request's `request_id` field (may be empty)
};

// Appends one event; call inside the Write() that makes the change.
absl::Status AppendAudit(Connection& c, const Principal& actor, const AuditRecord& record);

// Newest first. Filter fields: resource, method, actor.subject, actor.organization, request_id,
// idempotency_key. Page tokens are issued to `caller`.
absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(Store& db, const PageTokenCodec& tokens,
                                                                     const Principal& caller,
                                                                     const common::v1::ListAuditEventsRequest& req);

// The same, for a caller: PERMISSION_DENIED unless an auditor, government or admin. Every
// service's ListAuditEvents RPC is this call.
absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEventsFor(const Principal& caller, Store& db,
                                                                        const PageTokenCodec& tokens,
                                                                        const common::v1::ListAuditEventsRequest& req);

// Checks a client-supplied idempotency key: empty is allowed (no idempotency), otherwise 1-128
// characters of [A-Za-z0-9._:-]. INVALID_ARGUMENT on field `request_id`.
absl::Status ValidateRequestId(absl::string_view request_id);

// Runs `body` as one atomic write, at most once per (caller subject, method, request_id): a
// retry with the same request id returns the first response and writes nothing; the same id
// with a different request is INVALID_ARGUMENT. Without a request id, `body` simply runs.
// `*replayed` (optional) tells whether the response came from the record.
absl::StatusOr<std::string> IdempotentWriteBytes(Store& db, const Principal& caller, absl::string_view method,
                                                 absl::string_view request_id, const google::protobuf::Message& request,
                                                 const std::function<absl::StatusOr<std::string>(Connection&)>& body,
                                                 bool* replayed = nullptr, const WriteOptions& options = {});

template <typename Response>
absl::StatusOr<Response> IdempotentWrite(Store& db, const Principal& caller, absl::string_view method,
                                         absl::string_view request_id, const google::protobuf::Message& request,
                                         const std::function<absl::StatusOr<Response>(Connection&)>& body,
                                         bool* replayed = nullptr) {
  auto bytes = IdempotentWriteBytes(
      db, caller, method, request_id, request,
      [&](Connection& c) -> absl::StatusOr<std::string> {
        auto r = body(c);
        if (!r.ok()) return r.status();
        return r->SerializeAsString();
      },
      replayed);
  if (!bytes.ok()) return bytes.status();
  Response response;
  if (!response.ParseFromString(*bytes)) return absl::InternalError("stored response does not parse");
  return response;
}

}  // namespace clustergov::store

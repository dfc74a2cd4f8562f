#pragma once

// One unit of work: how every repository writes.
//
// A write is run as `unit_of_work.Run<T>(context, body)`: one transaction (on SQLite a SAVEPOINT
// inside a group commit) in which `body` makes its change through the repository's SQL and
// appends audit events with `Transaction::Audit` (actor, full gRPC method, reason, the call's
// request id and the client's idempotency key, all from the WriteContext) and domain events with
// `Transaction::Publish` (to the store's outbox, store/outbox.h: an event exists exactly when its
// change committed). On PostgreSQL the
// transaction is SERIALIZABLE and retried on serialization failures, so `body` may run more than
// once: it must do nothing but reads and writes through the transaction. When the context
// carries the request, the write is idempotent per (actor, method, request_id): a retry returns
// the first response and writes nothing; the same id with a different request is
// INVALID_ARGUMENT. An error from `body` rolls back everything: the change, its audit events and
// the idempotency record. Errors map as in sql.h.
//
// - UnitOfWork / Transaction: the interface domains and repositories see; SqlUnitOfWork /
//   SqlTransaction: its implementation over a Store (SQLite or PostgreSQL, sql.h), whose
//   transaction hands the repository its Connection.
// - Repository: what every repository interface derives from (the store's audit trail, read
//   through the unit of work). TransactionalRepository<Tx>: for repositories that hand the
//   domain a typed transaction `Tx` (a RepositoryTransaction): `Write<T>(context, body(Tx&))`.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clustergov/common/v1/common.pb.h"
#include "common/auth/principal.h"
#include "common/list/page_token.h"
#include "common/store/lease.h"
#include "common/store/sql.h"
#include "google/protobuf/message_lite.h"

namespace google::protobuf {
class Message;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace clustergov::store {

// Who writes, why, and the idempotency key of the call.
struct WriteContext {
  const Principal* actor = nullptr;
  std::string method;      // RPC name ("UpdateCluster"; recorded as its full gRPC method), or a
                           // write no RPC made ("Seed"; recorded as is)
  std::string request_id;  // the request's `request_id`: the client's idempotency key (may be empty)
  std::string call_id;     // the call's x-request-id, for the audit trail
  std::string reason;
  const google::protobuf::Message* request = nullptr;  // set: idempotent per request_id (fingerprinted)
  // Writes naming the same key run one at a time across replicas (sql.h WriteOptions): for
  // read-modify-writes of a hot row, which would otherwise mostly fail serialization and retry.
  std::string serialize_on;
  // A scheduled job's lease (store/lease.h): the write commits only while it still holds it, and
  // is ABORTED once another replica took the lease over.
  const LeaseFence* fence = nullptr;
};

// The handle a body gets inside one unit of work.
class Transaction {
 public:
  virtual ~Transaction() = default;

  virtual const WriteContext& context() const = 0;

  // Appends the audit event of a change to `resource` (its etags before and after) under the
  // context's actor, full method, reason and ids.
  absl::Status Audit(const std::string& resource, const std::string& etag_before, const std::string& etag_after) {
    return AppendAudit("", resource, etag_before, etag_after);
  }
  // The same for a secondary step of the call: the method recorded is the full method followed
  // by `step` (e.g. ":LockSnapshot").
  absl::Status AuditStep(absl::string_view step, const std::string& resource, const std::string& etag_before,
                         const std::string& etag_after) {
    return AppendAudit(step, resource, etag_before, etag_after);
  }

  // Appends the domain event `data` (a clustergov.events.v1 message) about aggregate `subject`
  // ("clusters/hohhot-dairy"), whose revision after the change is `revision`, to the outbox: its
  // envelope names this service as the source and carries the context's actor and call id.
  absl::Status Publish(absl::string_view subject, const google::protobuf::Message& data, int64_t revision) {
    return AppendEvent(subject, data, revision);
  }

 protected:
  virtual absl::Status AppendAudit(absl::string_view step, const std::string& resource,
                                   const std::string& etag_before, const std::string& etag_after) = 0;
  virtual absl::Status AppendEvent(absl::string_view subject, const google::protobuf::Message& data,
                                   int64_t revision) = 0;
};

class UnitOfWork {
 public:
  virtual ~UnitOfWork() = default;

  // Runs `body` as one unit of work (see the top). `body` returns the response bytes recorded
  // for idempotent retries.
  virtual absl::StatusOr<std::string> RunBytes(
      const WriteContext& w, const std::function<absl::StatusOr<std::string>(Transaction&)>& body) = 0;

  // Typed: a protobuf message (serialized only when the write is idempotent, and then answered
  // from the record, as a retry is), or any value for a write without a request (seeds).
  template <typename T>
  absl::StatusOr<T> Run(const WriteContext& w, const std::function<absl::StatusOr<T>(Transaction&)>& body);

  // The audit trail, newest first (store/audit.h: filter, paging, page tokens issued to
  // `caller`): PERMISSION_DENIED unless the caller is an auditor, government or admin.
  virtual absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(
      const Principal& caller, const PageTokenCodec& tokens, const common::v1::ListAuditEventsRequest& req) = 0;
};

template <typename T>
absl::StatusOr<T> UnitOfWork::Run(const WriteContext& w, const std::function<absl::StatusOr<T>(Transaction&)>& body) {
  constexpr bool kMessage = std::is_base_of_v<google::protobuf::MessageLite, T>;
  const bool idempotent = w.request != nullptr && !w.request_id.empty();
  std::optional<absl::StatusOr<T>> ran;  // the body's result in its last run (a backend may retry)
  auto bytes = RunBytes(w, [&](Transaction& tx) -> absl::StatusOr<std::string> {
    ran.emplace(body(tx));
    if (!ran->ok()) return ran->status();
    if (!idempotent) return std::string();  // nothing recorded
    if constexpr (kMessage) {
      return (*ran)->SerializeAsString();
    } else {
      return absl::InternalError("an idempotent write must answer with a message");
    }
  });
  if (!bytes.ok()) return bytes.status();
  if (!idempotent) {
    if (!ran.has_value()) return absl::InternalError("the write did not run");
    return std::move(*ran);
  }
  // The recorded response, whether this call recorded it or an earlier one did.
  if constexpr (kMessage) {
    T recorded;
    if (!recorded.ParseFromString(*bytes)) return absl::InternalError("stored response does not parse");
    return recorded;
  } else {
    return absl::InternalError("an idempotent write must answer with a message");
  }
}

// ------------------------------------------------------------------ repositories

// What every repository interface derives from.
class Repository {
 public:
  virtual ~Repository() = default;

  // The store's audit trail (UnitOfWork::ListAuditEvents): every service's ListAuditEvents RPC.
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const Principal& caller,
                                                                      const PageTokenCodec& tokens,
                                                                      const common::v1::ListAuditEventsRequest& req) {
    return unit_of_work().ListAuditEvents(caller, tokens, req);
  }

 protected:
  virtual UnitOfWork& unit_of_work() = 0;
};

// Base of a repository's typed transaction (the operations a domain runs inside one write):
// auditing and the context are the unit of work's.
class RepositoryTransaction {
 public:
  explicit RepositoryTransaction(Transaction& unit) : unit_(unit) {}
  virtual ~RepositoryTransaction() = default;

  const WriteContext& context() const { return unit_.context(); }
  absl::Status Audit(const std::string& resource, const std::string& etag_before, const std::string& etag_after) {
    return unit_.Audit(resource, etag_before, etag_after);
  }
  absl::Status Publish(absl::string_view subject, const google::protobuf::Message& data, int64_t revision) {
    return unit_.Publish(subject, data, revision);
  }

 private:
  Transaction& unit_;
};

// A repository whose domain writes through a typed transaction `Tx` (a RepositoryTransaction).
template <typename Tx>
class TransactionalRepository : public Repository {
 public:
  // Runs `body` on `Tx` as one unit of work (see the top).
  template <typename T>
  absl::StatusOr<T> Write(const WriteContext& w, const std::function<absl::StatusOr<T>(Tx&)>& body) {
    return unit_of_work().template Run<T>(w, [&](Transaction& unit) -> absl::StatusOr<T> {
      std::unique_ptr<Tx> tx = Bind(unit);
      return body(*tx);
    });
  }

 protected:
  // The repository's operations inside `unit`.
  virtual std::unique_ptr<Tx> Bind(Transaction& unit) = 0;
};

// ------------------------------------------------------------------ over a Store

class SqlTransaction final : public Transaction {
 public:
  // `service`: the gRPC service whose RPC names the context's method is one of.
  SqlTransaction(Connection& c, const WriteContext& w, const google::protobuf::ServiceDescriptor& service)
      : c_(c), w_(w), service_(service) {}

  // The transaction a SqlUnitOfWork handed out as a Transaction.
  static SqlTransaction& Of(Transaction& tx) { return static_cast<SqlTransaction&>(tx); }

  Connection& connection() { return c_; }
  const WriteContext& context() const override { return w_; }

  // The same transaction under another context: a second change the call makes, audited under
  // its own method and reason (never idempotent on its own).
  SqlTransaction With(const WriteContext& other) const { return SqlTransaction(c_, other, service_); }

 protected:
  absl::Status AppendAudit(absl::string_view step, const std::string& resource, const std::string& etag_before,
                           const std::string& etag_after) override;
  absl::Status AppendEvent(absl::string_view subject, const google::protobuf::Message& data,
                           int64_t revision) override;

 private:
  Connection& c_;
  const WriteContext& w_;
  const google::protobuf::ServiceDescriptor& service_;
};

class SqlUnitOfWork final : public UnitOfWork {
 public:
  // `service`: the gRPC service whose calls the store records.
  SqlUnitOfWork(Store* db, const google::protobuf::ServiceDescriptor& service) : db_(db), service_(service) {}

  // Applies the shared tables' migrations (store/audit.h CoreMigrations, the outbox); before the
  // service's own.
  absl::Status Migrate();

  absl::StatusOr<std::string> RunBytes(const WriteContext& w,
                                       const std::function<absl::StatusOr<std::string>(Transaction&)>& body) override;

  // UnitOfWork::Run with the body on the SQL transaction.
  template <typename T>
  absl::StatusOr<T> Run(const WriteContext& w, const std::function<absl::StatusOr<T>(SqlTransaction&)>& body) {
    return UnitOfWork::Run<T>(w, [&](Transaction& tx) { return body(SqlTransaction::Of(tx)); });
  }

  // Events about records that existed before their service published any: `publish` runs once
  // per store and `name`, as "system:events", in the unit of work that records it ran (table
  // event_backfills). Call it when the repository is created, before writes that publish: on a
  // new store it runs on empty tables and publishes nothing.
  absl::Status PublishOnce(absl::string_view name, const std::function<absl::Status(SqlTransaction&)>& publish);

  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(
      const Principal& caller, const PageTokenCodec& tokens, const common::v1::ListAuditEventsRequest& req) override;

 private:
  Store* db_;
  const google::protobuf::ServiceDescriptor& service_;
};

}  // namespace clustergov::store

#pragma once

// The transactional outbox's table and how a write appends to it (docs/events.md). The relay that
// publishes it is common/events/outbox.h.
//
// A change's events are appended in the same store transaction as the change, so an event exists
// exactly when its change committed (Transaction::Publish in unit_of_work.h, or AppendEvent).
//
// Order. `seq` grows with insertion. On SQLite, whose one writer commits transactions one after
// another, that is commit order. On PostgreSQL transactions commit concurrently, so each row also
// records its transaction id (`txid`), and the relay publishes only rows of transactions older
// than every transaction still running (below the snapshot's xmin), ordered by (txid, seq): no
// transaction can then commit a row that sorts before one already published. Two writes of one
// aggregate conflict under SERIALIZABLE and the one that retries gets a later txid, so each
// aggregate's events are published in the order its changes committed.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "clustergov/common/v1/common.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/store/sql.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace clustergov::store {

// The outbox table; every store has it (part of the core migrations' set, applied by
// SqlUnitOfWork::Migrate): db.Migrate("outbox", OutboxMigrations()).
Migrations OutboxMigrations();

// The channel a PostgreSQL append notifies (Store::Listen), so relays wake at commit.
inline constexpr absl::string_view kOutboxChannel = "cg_outbox";

// A fresh event id: 128 random bits, hex.
std::string NewEventId();

// An envelope for `data`: type is the message's full name, data packed into an Any, a fresh id,
// time now. `source` names the publisher ("clustergov/clusters"), `subject` the aggregate
// ("clusters/hohhot-dairy"), `revision` the aggregate's revision after the change.
events::v1::Envelope MakeEnvelope(absl::string_view source, absl::string_view subject,
                                  const google::protobuf::Message& data, const common::v1::Actor& actor,
                                  int64_t revision);

// Records `envelope` in the outbox of the store `c` belongs to. Call inside the Write() that makes
// the change. An empty id or time is filled in; an envelope without source, type, subject or data
// is INVALID_ARGUMENT (and the caller's Write rolls back).
absl::Status AppendEvent(Connection& c, events::v1::Envelope envelope);

}  // namespace clustergov::store

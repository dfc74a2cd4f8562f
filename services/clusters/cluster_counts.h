#pragma once

// The cluster record's counts (Cluster.counts), kept from the enterprises, support and talent
// services' domain events. Each stream is consumed in the group "clusters.counts"; a handler
// applies one event to the counts' own tables (who is a member in which role, which
// certifications are held, which applications were allocated, which placements are active)
// and the delta to the counts inside the cluster's stored record, in the consumer's store write
// (so once per event). An event that does not fit what was applied before (a member leaving
// twice, an allocation of an allocated application, a count going negative) is a handler error:
// retried, then dead-lettered. A counts change leaves the cluster's etag and update_time alone:
// they version what clients write. The cluster's cache entries are marked pending around the
// write and dropped after it, as every cluster write does.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/server/runtime.h"
#include "common/store/sql.h"

namespace clustergov::clusters {

class ClustersDomain;

// The counts' tables (migration component "cluster_counts").
store::Migrations CountsMigrations();

// Applies one event of the enterprises, support or talent stream; other types are ignored.
absl::Status ApplyCountsEvent(store::Connection& c, const events::v1::Envelope& envelope);

// Migrates the counts' tables, then consumes the three streams (purpose "counts") into `domain`'s
// store and cache. Before Runtime::Start.
absl::Status ConsumeClusterCounts(server::Runtime& rt, ClustersDomain& domain);

}  // namespace clustergov::clusters

#include "services/clusters/cluster_counts.h"

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/cache/cache.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "services/clusters/clusters_domain.h"

namespace clustergov::clusters {
namespace {

namespace ev = ::clustergov::events::v1;
using store::Connection;

const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE counts_members (
  cluster_id TEXT NOT NULL,
  enterprise TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (cluster_id, enterprise)
);
CREATE INDEX counts_members_enterprise ON counts_members (enterprise, cluster_id);
CREATE TABLE counts_certifications (
  certification TEXT PRIMARY KEY,
  enterprise TEXT NOT NULL,
  kind TEXT NOT NULL,
  held INTEGER NOT NULL
);
CREATE INDEX counts_certifications_enterprise ON counts_certifications (enterprise, held);
CREATE TABLE counts_applications (
  application TEXT PRIMARY KEY,
  cluster_id TEXT NOT NULL,
  state TEXT NOT NULL
);
CREATE TABLE counts_placements (
  placement TEXT PRIMARY KEY,
  cluster_id TEXT NOT NULL,
  active INTEGER NOT NULL
);
)sql"},
  };
  return *migrations;
}

template <typename Msg>
bool Is(const ev::Envelope& e) {
  return e.type() == Msg::descriptor()->full_name();
}

template <typename Msg>
absl::StatusOr<Msg> Unpack(const ev::Envelope& e) {
  Msg m;
  if (!e.data().UnpackTo(&m)) return absl::InvalidArgumentError(absl::StrCat("event ", e.id(), ": data is not ", e.type()));
  return m;
}

absl::StatusOr<std::string> ClusterId(absl::string_view cluster) {
  if (!absl::StartsWith(cluster, "clusters/") || cluster.size() == 9) {
    return absl::InvalidArgumentError(absl::StrCat("not a cluster name: \"", cluster, "\""));
  }
  return std::string(cluster.substr(9));
}

// What one event changes in one cluster's counts.
struct Delta {
  std::map<std::string, int> roles;  // MemberRole name → change
  std::map<std::string, int> certifications;
  std::map<std::string, int64_t> quota;
  int placements = 0;
};

absl::Status Inconsistent(const ev::Envelope& e, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(e.type(), " ", e.id(), " (", e.subject(), "): ", what));
}

template <typename T>
absl::Status AddTo(T* value, T delta, absl::string_view what, const std::string& cluster_id) {
  if (*value + delta < 0) {
    return absl::FailedPreconditionError(absl::StrCat("clusters/", cluster_id, ": ", what, " would go below zero"));
  }
  *value += delta;
  return absl::OkStatus();
}

template <typename V>
absl::Status AddToMap(google::protobuf::Map<std::string, V>* map, const std::string& key, V delta,
                      absl::string_view what, const std::string& cluster_id) {
  V value = map->count(key) ? map->at(key) : 0;
  CG_RETURN_IF_ERROR(AddTo<V>(&value, delta, absl::StrCat(what, " ", key), cluster_id));
  if (value == 0) {
    map->erase(key);
  } else {
    (*map)[key] = value;
  }
  return absl::OkStatus();
}

// Applies `d` to the counts in the cluster's stored record; its etag, revision and update time
// stay as they are.
absl::Status ApplyDelta(Connection& c, const std::string& cluster_id, const Delta& d) {
  CG_ASSIGN_OR_RETURN(auto cluster, store::SelectOne<v1::Cluster>(c, "SELECT data FROM clusters WHERE id = ?",
                                                                  [&](store::Statement& s) { s.Bind(1, cluster_id); }));
  if (!cluster.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", cluster_id, " not found"));
  v1::ClusterCounts* counts = cluster->mutable_counts();
  for (const auto& [role, n] : d.roles) {
    if (role == "LEAD_ENTERPRISE") {
      int32_t v = counts->lead_enterprises();
      CG_RETURN_IF_ERROR(AddTo<int32_t>(&v, n, "lead_enterprises", cluster_id));
      counts->set_lead_enterprises(v);
    } else if (role == "CHAIN_LEADER") {
      int32_t v = counts->chain_leaders();
      CG_RETURN_IF_ERROR(AddTo<int32_t>(&v, n, "chain_leaders", cluster_id));
      counts->set_chain_leaders(v);
    } else {
      int32_t v = counts->members();
      CG_RETURN_IF_ERROR(AddTo<int32_t>(&v, n, "members", cluster_id));
      counts->set_members(v);
    }
  }
  for (const auto& [kind, n] : d.certifications) {
    CG_RETURN_IF_ERROR(AddToMap<int32_t>(counts->mutable_certifications(), kind, n, "certifications", cluster_id));
  }
  for (const auto& [kind, n] : d.quota) {
    CG_RETURN_IF_ERROR(AddToMap<int64_t>(counts->mutable_allocated_quota(), kind, n, "allocated_quota", cluster_id));
  }
  int32_t placements = counts->active_placements();
  CG_RETURN_IF_ERROR(AddTo<int32_t>(&placements, d.placements, "active_placements", cluster_id));
  counts->set_active_placements(placements);
  CG_ASSIGN_OR_RETURN(auto up, c.Prepare("UPDATE clusters SET data = ? WHERE id = ?"));
  up.BindBlob(1, cluster->SerializeAsString()).Bind(2, cluster_id);
  return up.Run();
}

absl::Status Exec(Connection& c, absl::string_view sql, const std::vector<std::variant<int64_t, std::string>>& args) {
  CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
  stmt.BindAll(1, args);
  return stmt.Run();
}

// The kinds of the certifications `enterprise` holds, one entry per certification.
absl::StatusOr<std::vector<std::string>> HeldKinds(Connection& c, const std::string& enterprise) {
  CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT kind FROM counts_certifications WHERE enterprise = ? AND held = 1"));
  stmt.Bind(1, enterprise);
  std::vector<std::string> kinds;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    kinds.push_back(stmt.Text(0));
  }
  return kinds;
}

// The clusters `enterprise` is a member of, by id.
absl::StatusOr<std::vector<std::string>> MemberOf(Connection& c, const std::string& enterprise) {
  CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT cluster_id FROM counts_members WHERE enterprise = ? ORDER BY cluster_id"));
  stmt.Bind(1, enterprise);
  std::vector<std::string> ids;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.Text(0));
  }
  return ids;
}

bool KnownRole(const std::string& role) {
  return role == "LEAD_ENTERPRISE" || role == "CHAIN_LEADER" || role == "MEMBER";
}

absl::Status OnMembership(Connection& c, const ev::Envelope& e) {
  CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::MembershipChanged>(e));
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ClusterId(m.cluster()));
  for (const std::string* role : {&m.previous_role(), &m.role()}) {
    if (!role->empty() && !KnownRole(*role)) return Inconsistent(e, absl::StrCat("unknown role \"", *role, "\""));
  }
  if (m.previous_role().empty() && m.role().empty()) return Inconsistent(e, "neither a previous nor a new role");
  CG_ASSIGN_OR_RETURN(auto held, c.Prepare("SELECT role FROM counts_members WHERE cluster_id = ? AND enterprise = ?"));
  held.Bind(1, cluster_id).Bind(2, m.enterprise());
  CG_ASSIGN_OR_RETURN(bool member, held.Step());
  const std::string current = member ? held.Text(0) : "";
  if (current != m.previous_role()) {
    return Inconsistent(e, absl::StrCat(m.enterprise(), " is ", member ? current : "not a member", " in ", m.cluster(),
                                        ", the event says ", m.previous_role().empty() ? "not a member" : m.previous_role()));
  }
  Delta d;
  if (!m.previous_role().empty()) d.roles[m.previous_role()] -= 1;
  if (!m.role().empty()) d.roles[m.role()] += 1;
  if (m.previous_role().empty()) {
    CG_RETURN_IF_ERROR(Exec(c, "INSERT INTO counts_members (cluster_id, enterprise, role) VALUES (?, ?, ?)",
                            {cluster_id, m.enterprise(), m.role()}));
  } else if (m.role().empty()) {
    CG_RETURN_IF_ERROR(Exec(c, "DELETE FROM counts_members WHERE cluster_id = ? AND enterprise = ?",
                            {cluster_id, m.enterprise()}));
  } else {
    CG_RETURN_IF_ERROR(Exec(c, "UPDATE counts_members SET role = ? WHERE cluster_id = ? AND enterprise = ?",
                            {m.role(), cluster_id, m.enterprise()}));
  }
  // Joining brings the enterprise's certifications into the cluster's counts; leaving takes them out.
  if (m.previous_role().empty() || m.role().empty()) {
    const int sign = m.role().empty() ? -1 : 1;
    CG_ASSIGN_OR_RETURN(auto kinds, HeldKinds(c, m.enterprise()));
    for (const auto& kind : kinds) d.certifications[kind] += sign;
  }
  return ApplyDelta(c, cluster_id, d);
}

// A certification granted (`granted`) or no longer held (revoked or expired). One granted with a
// validity that ended by the event's time is recorded as not held.
absl::Status OnCertification(Connection& c, const ev::Envelope& e, const std::string& certification,
                             const std::string& enterprise, const std::string& kind, bool granted,
                             const google::protobuf::Timestamp& valid_until = {}) {
  if (certification.empty() || enterprise.empty() || kind.empty()) {
    return Inconsistent(e, "certification, enterprise and kind are required");
  }
  CG_ASSIGN_OR_RETURN(auto row, c.Prepare("SELECT held, kind FROM counts_certifications WHERE certification = ?"));
  row.Bind(1, certification);
  CG_ASSIGN_OR_RETURN(bool known, row.Step());
  bool held = granted;
  if (granted) {
    if (known) return Inconsistent(e, absl::StrCat(certification, " was granted before"));
    held = valid_until.seconds() == 0 || valid_until.seconds() > e.time().seconds();
    CG_RETURN_IF_ERROR(Exec(c, "INSERT INTO counts_certifications (certification, enterprise, kind, held) VALUES"
                               " (?, ?, ?, ?)", {certification, enterprise, kind, int64_t{held ? 1 : 0}}));
    if (!held) return absl::OkStatus();
  } else {
    if (!known) return Inconsistent(e, absl::StrCat(certification, " was never granted"));
    if (row.Int(0) == 0) return absl::OkStatus();  // revoked after it expired, or the other way round
    if (row.Text(1) != kind) return Inconsistent(e, absl::StrCat(certification, " is of kind ", row.Text(1)));
    CG_RETURN_IF_ERROR(Exec(c, "UPDATE counts_certifications SET held = 0 WHERE certification = ?", {certification}));
  }
  CG_ASSIGN_OR_RETURN(auto clusters, MemberOf(c, enterprise));
  for (const auto& cluster_id : clusters) {
    Delta d;
    d.certifications[kind] = held ? 1 : -1;
    CG_RETURN_IF_ERROR(ApplyDelta(c, cluster_id, d));
  }
  return absl::OkStatus();
}

// An application's new state; ALLOCATED adds its items to the cluster's allocated quota.
absl::Status OnApplication(Connection& c, const ev::Envelope& e, const std::string& application,
                           const std::string& cluster, const std::string& state,
                           const google::protobuf::RepeatedPtrField<ev::ResourceQuantity>& items) {
  if (application.empty()) return Inconsistent(e, "application is required");
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ClusterId(cluster));
  CG_ASSIGN_OR_RETURN(auto row, c.Prepare("SELECT state FROM counts_applications WHERE application = ?"));
  row.Bind(1, application);
  CG_ASSIGN_OR_RETURN(bool known, row.Step());
  if (known && row.Text(0) == "ALLOCATED") {
    return Inconsistent(e, absl::StrCat(application, " was allocated; it cannot become ", state));
  }
  CG_RETURN_IF_ERROR(Exec(c, "INSERT INTO counts_applications (application, cluster_id, state) VALUES (?, ?, ?)"
                             " ON CONFLICT (application) DO UPDATE SET cluster_id = excluded.cluster_id,"
                             " state = excluded.state", {application, cluster_id, state}));
  if (state != "ALLOCATED") return absl::OkStatus();
  Delta d;
  for (const auto& item : items) {
    if (item.kind().empty() || item.quantity() <= 0) return Inconsistent(e, "an item without a kind or quantity");
    d.quota[item.kind()] += item.quantity();
  }
  return ApplyDelta(c, cluster_id, d);
}

absl::Status OnPlacement(Connection& c, const ev::Envelope& e, const std::string& placement, const std::string& cluster,
                         bool started) {
  if (placement.empty()) return Inconsistent(e, "placement is required");
  CG_ASSIGN_OR_RETURN(std::string cluster_id, ClusterId(cluster));
  CG_ASSIGN_OR_RETURN(auto row, c.Prepare("SELECT active, cluster_id FROM counts_placements WHERE placement = ?"));
  row.Bind(1, placement);
  CG_ASSIGN_OR_RETURN(bool known, row.Step());
  if (started) {
    if (known) return Inconsistent(e, absl::StrCat(placement, " started before"));
    CG_RETURN_IF_ERROR(Exec(c, "INSERT INTO counts_placements (placement, cluster_id, active) VALUES (?, ?, 1)",
                            {placement, cluster_id}));
  } else {
    if (!known || row.Int(0) == 0) return Inconsistent(e, absl::StrCat(placement, " is not active"));
    if (row.Text(1) != cluster_id) return Inconsistent(e, absl::StrCat(placement, " is in clusters/", row.Text(1)));
    CG_RETURN_IF_ERROR(Exec(c, "UPDATE counts_placements SET active = 0 WHERE placement = ?", {placement}));
  }
  Delta d;
  d.placements = started ? 1 : -1;
  return ApplyDelta(c, cluster_id, d);
}

// The clusters whose records an event may change, by id, as far as the event tells; a
// certification's also include its enterprise's clusters in the counts' own tables.
std::set<std::string> Touched(store::Store& db, const ev::Envelope& e) {
  std::set<std::string> ids;
  auto add = [&](const std::string& cluster) {
    if (auto id = ClusterId(cluster); id.ok()) ids.insert(*id);
  };
  auto add_enterprise = [&](const std::string& enterprise, const auto& clusters) {
    for (const auto& cluster : clusters) add(cluster);
    auto member_of = db.ReadResult<std::vector<std::string>>(
        [&](Connection& c) { return MemberOf(c, enterprise); });
    if (member_of.ok()) ids.insert(member_of->begin(), member_of->end());
  };
  if (Is<ev::MembershipChanged>(e)) {
    if (auto m = Unpack<ev::MembershipChanged>(e); m.ok()) add(m->cluster());
  } else if (Is<ev::CertificationGranted>(e)) {
    if (auto m = Unpack<ev::CertificationGranted>(e); m.ok()) add_enterprise(m->enterprise(), m->clusters());
  } else if (Is<ev::CertificationRevoked>(e)) {
    if (auto m = Unpack<ev::CertificationRevoked>(e); m.ok()) add_enterprise(m->enterprise(), m->clusters());
  } else if (Is<ev::CertificationExpired>(e)) {
    if (auto m = Unpack<ev::CertificationExpired>(e); m.ok()) add_enterprise(m->enterprise(), m->clusters());
  } else if (Is<ev::ApplicationAllocated>(e)) {
    if (auto m = Unpack<ev::ApplicationAllocated>(e); m.ok()) add(m->cluster());
  } else if (Is<ev::PlacementStarted>(e)) {
    if (auto m = Unpack<ev::PlacementStarted>(e); m.ok()) add(m->cluster());
  } else if (Is<ev::PlacementEnded>(e)) {
    if (auto m = Unpack<ev::PlacementEnded>(e); m.ok()) add(m->cluster());
  }
  return ids;
}

}  // namespace

store::Migrations CountsMigrations() { return store::SameSchema(SqliteMigrations()); }

absl::Status ApplyCountsEvent(Connection& c, const ev::Envelope& e) {
  if (Is<ev::MembershipChanged>(e)) return OnMembership(c, e);
  if (Is<ev::CertificationGranted>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::CertificationGranted>(e));
    return OnCertification(c, e, m.certification(), m.enterprise(), m.kind(), true, m.valid_until());
  }
  if (Is<ev::CertificationRevoked>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::CertificationRevoked>(e));
    return OnCertification(c, e, m.certification(), m.enterprise(), m.kind(), false);
  }
  if (Is<ev::CertificationExpired>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::CertificationExpired>(e));
    return OnCertification(c, e, m.certification(), m.enterprise(), m.kind(), false);
  }
  if (Is<ev::ApplicationSubmitted>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationSubmitted>(e));
    return OnApplication(c, e, m.application(), m.cluster(), "SUBMITTED", m.items());
  }
  if (Is<ev::ApplicationApproved>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationApproved>(e));
    return OnApplication(c, e, m.application(), m.cluster(), "APPROVED", m.items());
  }
  if (Is<ev::ApplicationAllocated>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationAllocated>(e));
    return OnApplication(c, e, m.application(), m.cluster(), "ALLOCATED", m.items());
  }
  if (Is<ev::ApplicationRejected>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationRejected>(e));
    return OnApplication(c, e, m.application(), m.cluster(), "REJECTED", m.items());
  }
  if (Is<ev::ApplicationExpired>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::ApplicationExpired>(e));
    return OnApplication(c, e, m.application(), m.cluster(), "EXPIRED", m.items());
  }
  if (Is<ev::PlacementStarted>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::PlacementStarted>(e));
    return OnPlacement(c, e, m.placement(), m.cluster(), true);
  }
  if (Is<ev::PlacementEnded>(e)) {
    CG_ASSIGN_OR_RETURN(auto m, Unpack<ev::PlacementEnded>(e));
    return OnPlacement(c, e, m.placement(), m.cluster(), false);
  }
  return absl::OkStatus();
}

absl::Status ConsumeClusterCounts(server::Runtime& rt, ClustersDomain& domain) {
  CG_RETURN_IF_ERROR(rt.db().Migrate("cluster_counts", CountsMigrations()));
  store::Store* db = &rt.db();
  // The touched clusters' cache entries are pending during the write and dropped after it.
  events::BatchScope scope = [db, &domain](const std::vector<const ev::Envelope*>& batch) -> std::function<void()> {
    std::set<std::string> ids;
    for (const auto* e : batch) ids.merge(Touched(*db, *e));
    auto marks = std::make_shared<std::vector<std::unique_ptr<cache::PendingWrite>>>();
    for (const auto& id : ids) marks->emplace_back(new cache::PendingWrite(domain.ClusterWrite(id)));
    return [marks] { marks->clear(); };
  };
  for (const char* publisher : {"enterprises", "support", "talent"}) {
    rt.ConsumeEvents(publisher, "counts", ApplyCountsEvent, scope);
  }
  return absl::OkStatus();
}

}  // namespace clustergov::clusters

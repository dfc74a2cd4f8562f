#include "absl/strings/string_view.h"
#include "services/clusters/cluster_repository.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::clusters {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& Service() {
  return *v1::Cluster::descriptor()->file()->FindServiceByName("ClustersService");
}

// The schema, written for SQLite and the same on PostgreSQL (store::SameSchema).
const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE clusters (
  id TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  state INTEGER NOT NULL,
  tier INTEGER NOT NULL,
  target_tier INTEGER NOT NULL,
  target_year INTEGER NOT NULL,
  industry TEXT NOT NULL,
  display_name_zh TEXT NOT NULL,
  display_name_en TEXT NOT NULL,
  promotion_organization TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE cluster_regions (
  cluster_id TEXT NOT NULL REFERENCES clusters (id),
  region TEXT NOT NULL,
  kind TEXT NOT NULL,
  PRIMARY KEY (cluster_id, kind, region)
);
CREATE INDEX cluster_regions_region ON cluster_regions (region, kind);
CREATE TABLE cluster_departments (
  cluster_id TEXT NOT NULL REFERENCES clusters (id),
  department TEXT NOT NULL,
  PRIMARY KEY (cluster_id, department)
);
CREATE INDEX cluster_departments_department ON cluster_departments (department);
CREATE TABLE tier_designations (
  cluster_id TEXT NOT NULL REFERENCES clusters (id),
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (cluster_id, seq)
);
CREATE TABLE task_progress (
  cluster_id TEXT NOT NULL REFERENCES clusters (id),
  task_number INTEGER NOT NULL,
  status INTEGER NOT NULL,
  percent INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (cluster_id, task_number)
);
)sql"},
      // The promotion service's designation sequence of the cluster the record follows.
      {2, R"sql(
CREATE TABLE cluster_promotion (
  cluster_id TEXT PRIMARY KEY REFERENCES clusters (id),
  sequence INTEGER NOT NULL
);
)sql"},
  };
  return *migrations;
}

// The fields of a cluster record that differ (its etag and update time aside).
std::vector<std::string> ChangedFields(const v1::Cluster& before, const v1::Cluster& after) {
  std::vector<std::string> out;
  const auto* d = v1::Cluster::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->name() == "etag" || f->name() == "update_time") continue;
    google::protobuf::util::MessageDifferencer differ;
    if (!differ.CompareWithFields(before, after, {f}, {f})) out.push_back(f->name());
  }
  return out;
}

// The change's events: ClusterTierDesignated with a designation, and ClusterChanged.
absl::Status PublishChange(store::SqlTransaction& tx, const std::optional<v1::Cluster>& before,
                           const ClusterChange& change) {
  const v1::Cluster& after = change.cluster;
  const int64_t revision = store::RevisionOf(after.etag());
  if (change.designation.has_value()) {
    events::v1::ClusterTierDesignated e;
    e.set_cluster(after.name());
    e.set_previous_tier(change.designation->previous_tier());
    e.set_tier(change.designation->tier());
    e.set_designation(change.designation->name());
    e.set_evaluation(change.evaluation);
    e.set_reason(change.designation->reason());
    CG_RETURN_IF_ERROR(tx.Publish(after.name(), e, revision));
  }
  events::v1::ClusterChanged e;
  e.set_cluster(after.name());
  e.set_deleted(after.state() == v1::Cluster::DELETED);
  if (before.has_value()) {
    for (auto& f : ChangedFields(*before, after)) e.add_fields(std::move(f));
  }
  return tx.Publish(after.name(), e, revision);
}

const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema(SqliteMigrations()));
  return *migrations;
}

using store::Etag;
using store::ParseStored;

class SqliteClusterRepository : public ClusterRepository {
 public:
  SqliteClusterRepository(store::Store* db, int task_count)
      : db_(db), unit_(db, Service()), task_count_(task_count) {}

  const std::vector<FilterField>& ClusterFilterFields() const override {
    static const auto* fields = [] {
      std::vector<std::pair<std::string, int64_t>> tiers{
          {"TIER_NONE", 1}, {"TIER_REGION", 2}, {"TIER_NATIONAL", 3}, {"TIER_WORLD_CLASS", 4}};
      auto has_region = [](const char* kind) {
        return absl::StrCat("EXISTS (SELECT 1 FROM cluster_regions r WHERE r.cluster_id = c.id", kind,
                            " AND r.region = ?)");
      };
      return new std::vector<FilterField>{
          {"tier", FilterField::Type::kEnum, "c.tier", tiers},
          {"target_tier", FilterField::Type::kEnum, "c.target_tier", tiers},
          {"target_year", FilterField::Type::kInt, "c.target_year", {}},
          {"industry", FilterField::Type::kString, "c.industry", {}},
          {"state", FilterField::Type::kEnum, "c.state", {{"ACTIVE", 1}, {"DELETED", 2}}},
          {"display_name_zh", FilterField::Type::kString, "c.display_name_zh", {}},
          {"display_name_en", FilterField::Type::kString, "c.display_name_en", {}},
          {"promotion_organization", FilterField::Type::kString, "c.promotion_organization", {}},
          {"core_regions", FilterField::Type::kRepeatedString, has_region(" AND r.kind = 'core'"), {}},
          {"supporting_regions", FilterField::Type::kRepeatedString, has_region(" AND r.kind = 'supporting'"), {}},
          {"regions", FilterField::Type::kRepeatedString, has_region(""), {}},
          {"lead_departments", FilterField::Type::kRepeatedString,
           "EXISTS (SELECT 1 FROM cluster_departments d WHERE d.cluster_id = c.id AND d.department = ?)", {}},
      };
    }();
    return *fields;
  }

  const std::vector<FilterField>& TaskFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"status",
         FilterField::Type::kEnum,
         "t.status",
         {{"NOT_STARTED", 1}, {"IN_PROGRESS", 2}, {"COMPLETED", 3}, {"BLOCKED", 4}}},
        {"task_number", FilterField::Type::kInt, "t.task_number", {}},
        {"percent", FilterField::Type::kInt, "t.percent", {}},
    };
    return *fields;
  }

  absl::StatusOr<std::optional<v1::Cluster>> Get(const std::string& id) override {
    return db_->ReadResult<std::optional<v1::Cluster>>(
        [&](Connection& c) { return Load(c, id); });
  }

  absl::StatusOr<std::vector<v1::Cluster>> List(const ClusterQuery& q) override {
    return db_->ReadResult<std::vector<v1::Cluster>>([&](Connection& c) -> absl::StatusOr<std::vector<v1::Cluster>> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat("SELECT c.data FROM clusters c WHERE c.id > ? AND ",
                                                            q.show_deleted ? "1 = 1" : "c.state = 1", " AND ",
                                                            q.filter.where, " ORDER BY c.id LIMIT ?")));
      stmt.Bind(1, q.after_id);
      stmt.BindAll(2, q.filter.args);
      stmt.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
      std::vector<v1::Cluster> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        CG_ASSIGN_OR_RETURN(auto cluster, ParseStored<v1::Cluster>(stmt.Blob(0)));
        out.push_back(std::move(cluster));
      }
      return out;
    });
  }

  absl::StatusOr<int> Count(const ClusterQuery& q) override {
    return db_->ReadResult<int>([&](Connection& c) -> absl::StatusOr<int> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat("SELECT count(*) FROM clusters c WHERE ",
                                                            q.show_deleted ? "1 = 1" : "c.state = 1", " AND ",
                                                            q.filter.where)));
      stmt.BindAll(1, q.filter.args);
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      return row ? static_cast<int>(stmt.Int(0)) : 0;
    });
  }

  absl::StatusOr<std::vector<v1::Cluster>> All() override {
    ClusterQuery q;
    q.filter.where = "1 = 1";
    q.show_deleted = true;
    q.limit = 1 << 20;
    return List(q);
  }

  absl::StatusOr<v1::Cluster> Mutate(const store::WriteContext& w, const std::string& id,
                                     const ClusterMutation& mutation) override {
    return unit_.Run<v1::Cluster>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<v1::Cluster> {
      CG_ASSIGN_OR_RETURN(ClusterChange change, MutateOn(tx, id, mutation));
      return std::move(change.cluster);
    });
  }

  // The body of Mutate, inside the caller's transaction.
  absl::StatusOr<ClusterChange> MutateOn(store::SqlTransaction& tx, const std::string& id,
                                         const ClusterMutation& mutation) {
    Connection& c = tx.connection();
    CG_ASSIGN_OR_RETURN(auto current, Load(c, id));
    CG_ASSIGN_OR_RETURN(ClusterChange change, mutation(current));
    int64_t revision = current.has_value() ? store::RevisionOf(current->etag()) + 1 : 1;
    int64_t now = store::NowMicros();
    v1::Cluster& cluster = change.cluster;
    cluster.set_name(absl::StrCat("clusters/", id));
    cluster.set_etag(Etag(revision));
    *cluster.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(now);
    if (!current.has_value()) {
      *cluster.mutable_create_time() = cluster.update_time();
      CG_RETURN_IF_ERROR(Insert(c, id, revision, cluster));
      CG_RETURN_IF_ERROR(InsertTasks(c, id));
    } else {
      CG_RETURN_IF_ERROR(Update(c, id, revision, cluster));
    }
    if (change.designation.has_value()) {
      CG_RETURN_IF_ERROR(AppendDesignation(c, id, *tx.context().actor, now, &*change.designation));
    }
    CG_RETURN_IF_ERROR(tx.Audit(cluster.name(), current.has_value() ? current->etag() : "", cluster.etag()));
    CG_RETURN_IF_ERROR(PublishChange(tx, current, change));
    return change;
  }

  absl::StatusOr<int> CreateMissing(const Principal& actor, const std::vector<v1::Cluster>& clusters,
                                    int task_count) override {
    const store::WriteContext seed{&actor, "Seed", "", "", "seed data: 内蒙古自治区先进制造业集群建设行动方案",
                                   nullptr};
    return unit_.Run<int>(seed, [&](store::SqlTransaction& tx) -> absl::StatusOr<int> {
      Connection& c = tx.connection();
      int created = 0;
      for (const auto& input : clusters) {
        std::string id = input.name().substr(absl::string_view("clusters/").size());
        CG_ASSIGN_OR_RETURN(auto existing, Load(c, id));
        if (existing.has_value()) continue;  // never overwrite: an operator may have changed it
        v1::Cluster cluster = input;
        int64_t now = store::NowMicros();
        cluster.set_etag(Etag(1));
        *cluster.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(now);
        *cluster.mutable_update_time() = cluster.create_time();
        CG_RETURN_IF_ERROR(Insert(c, id, 1, cluster));
        CG_RETURN_IF_ERROR(InsertTasks(c, id));
        CG_RETURN_IF_ERROR(tx.Audit(cluster.name(), "", cluster.etag()));
        CG_RETURN_IF_ERROR(PublishChange(tx, std::nullopt, ClusterChange{cluster, std::nullopt, ""}));
        ++created;
      }
      (void)task_count;
      return created;
    });
  }

  absl::StatusOr<std::vector<v1::TierDesignation>> ListDesignations(const std::string& id, int64_t after_seq,
                                                                    int limit) override {
    return db_->ReadResult<std::vector<v1::TierDesignation>>(
        [&](Connection& c) -> absl::StatusOr<std::vector<v1::TierDesignation>> {
          CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT data FROM tier_designations WHERE cluster_id = ? AND seq > ?"
                                                   " ORDER BY seq LIMIT ?"));
          stmt.Bind(1, id).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit + 1));
          std::vector<v1::TierDesignation> out;
          while (true) {
            CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
            if (!row) break;
            CG_ASSIGN_OR_RETURN(auto d, ParseStored<v1::TierDesignation>(stmt.Blob(0)));
            out.push_back(std::move(d));
          }
          return out;
        });
  }

  absl::StatusOr<v1::TaskProgress> MutateTask(const store::WriteContext& w, const std::string& cluster_id,
                                              int task_number, const TaskMutation& mutation) override {
    return unit_.Run<v1::TaskProgress>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<v1::TaskProgress> {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto cluster, Load(c, cluster_id));
      if (!cluster.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", cluster_id, " not found"));
      CG_ASSIGN_OR_RETURN(auto select, c.Prepare("SELECT revision, data FROM task_progress"
                                                 " WHERE cluster_id = ? AND task_number = ?"));
      select.Bind(1, cluster_id).Bind(2, task_number);
      CG_ASSIGN_OR_RETURN(bool found, select.Step());
      if (!found) return absl::NotFoundError("task progress not found");
      int64_t revision = select.Int(0);
      CG_ASSIGN_OR_RETURN(auto current, ParseStored<v1::TaskProgress>(select.Blob(1)));
      CG_ASSIGN_OR_RETURN(v1::TaskProgress next, mutation(current, *cluster));
      ++revision;
      next.set_name(current.name());
      next.set_task_number(task_number);
      next.set_etag(Etag(revision));
      *next.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
      next.mutable_updated_by()->set_subject(w.actor->subject);
      next.mutable_updated_by()->set_organization(w.actor->organization);
      next.mutable_updated_by()->clear_roles();
      for (const auto& r : w.actor->roles) next.mutable_updated_by()->add_roles(r);
      CG_ASSIGN_OR_RETURN(auto update, c.Prepare("UPDATE task_progress SET status = ?, percent = ?, revision = ?,"
                                                 " data = ? WHERE cluster_id = ? AND task_number = ?"));
      update.Bind(1, static_cast<int64_t>(next.status()))
          .Bind(2, static_cast<int64_t>(next.percent()))
          .Bind(3, revision)
          .BindBlob(4, next.SerializeAsString())
          .Bind(5, cluster_id)
          .Bind(6, task_number);
      CG_RETURN_IF_ERROR(update.Run());
      CG_RETURN_IF_ERROR(tx.Audit(next.name(), current.etag(), next.etag()));
      return next;
    });
  }

  absl::StatusOr<std::vector<v1::TaskProgress>> ListTasks(const TaskQuery& q) override {
    return db_->ReadResult<std::vector<v1::TaskProgress>>(
        [&](Connection& c) -> absl::StatusOr<std::vector<v1::TaskProgress>> {
          // Tasks of deleted clusters are not listed.
          CG_ASSIGN_OR_RETURN(
              auto stmt,
              c.Prepare(absl::StrCat(
                  "SELECT t.data FROM task_progress t JOIN clusters c ON c.id = t.cluster_id"
                  " WHERE c.state = 1 AND (? = '' OR t.cluster_id = ?)"
                  " AND (t.cluster_id || '/' || printf('%03d', t.task_number)) > ? AND ",
                  q.filter.where, " ORDER BY t.cluster_id, t.task_number LIMIT ?")));
          stmt.Bind(1, q.cluster_id).Bind(2, q.cluster_id).Bind(3, q.after_key);
          stmt.BindAll(4, q.filter.args);
          stmt.Bind(4 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          std::vector<v1::TaskProgress> out;
          while (true) {
            CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
            if (!row) break;
            CG_ASSIGN_OR_RETURN(auto t, ParseStored<v1::TaskProgress>(stmt.Blob(0)));
            out.push_back(std::move(t));
          }
          return out;
        });
  }

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    return db_->Migrate("clusters", Migrations());
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }

 private:
  friend absl::StatusOr<std::optional<v1::Cluster>> clusters::LoadClusterOn(Connection& c, const std::string& id);

  static absl::StatusOr<std::optional<v1::Cluster>> Load(Connection& c, const std::string& id) {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT data FROM clusters WHERE id = ?"));
    stmt.Bind(1, id);
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<v1::Cluster>();
    CG_ASSIGN_OR_RETURN(auto cluster, ParseStored<v1::Cluster>(stmt.Blob(0)));
    return std::optional<v1::Cluster>(std::move(cluster));
  }

  absl::Status Insert(Connection& c, const std::string& id, int64_t revision, const v1::Cluster& cluster) {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("INSERT INTO clusters (id, revision, state, tier, target_tier,"
                                             " target_year, industry, display_name_zh, display_name_en,"
                                             " promotion_organization, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    BindRow(stmt, id, revision, cluster);
    CG_RETURN_IF_ERROR(stmt.Run());
    return ReplaceSideTables(c, id, cluster);
  }

  absl::Status Update(Connection& c, const std::string& id, int64_t revision, const v1::Cluster& cluster) {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("UPDATE clusters SET id = ?, revision = ?, state = ?, tier = ?,"
                                             " target_tier = ?, target_year = ?, industry = ?, display_name_zh = ?,"
                                             " display_name_en = ?, promotion_organization = ?, data = ? WHERE id = ?"));
    BindRow(stmt, id, revision, cluster);
    stmt.Bind(12, id);
    CG_RETURN_IF_ERROR(stmt.Run());
    return ReplaceSideTables(c, id, cluster);
  }

  static void BindRow(store::Statement& stmt, const std::string& id, int64_t revision, const v1::Cluster& cluster) {
    stmt.Bind(1, id)
        .Bind(2, revision)
        .Bind(3, static_cast<int64_t>(cluster.state()))
        .Bind(4, static_cast<int64_t>(cluster.tier()))
        .Bind(5, static_cast<int64_t>(cluster.target_tier()))
        .Bind(6, static_cast<int64_t>(cluster.target_year()))
        .Bind(7, cluster.industry())
        .Bind(8, cluster.display_name_zh())
        .Bind(9, cluster.display_name_en())
        .Bind(10, cluster.promotion_organization())
        .BindBlob(11, cluster.SerializeAsString());
  }

  absl::Status ReplaceSideTables(Connection& c, const std::string& id, const v1::Cluster& cluster) {
    {
      CG_ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM cluster_regions WHERE cluster_id = ?"));
      del.Bind(1, id);
      CG_RETURN_IF_ERROR(del.Run());
    }
    {
      CG_ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM cluster_departments WHERE cluster_id = ?"));
      del.Bind(1, id);
      CG_RETURN_IF_ERROR(del.Run());
    }
    auto add_regions = [&](const auto& regions, const char* kind) -> absl::Status {
      for (const auto& r : regions) {
        CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO cluster_regions (cluster_id, region, kind)"
                                                " VALUES (?, ?, ?) ON CONFLICT DO NOTHING"));
        ins.Bind(1, id).Bind(2, r).Bind(3, kind);
        CG_RETURN_IF_ERROR(ins.Run());
      }
      return absl::OkStatus();
    };
    CG_RETURN_IF_ERROR(add_regions(cluster.core_regions(), "core"));
    CG_RETURN_IF_ERROR(add_regions(cluster.supporting_regions(), "supporting"));
    for (const auto& d : cluster.lead_departments()) {
      CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO cluster_departments (cluster_id, department)"
                                              " VALUES (?, ?) ON CONFLICT DO NOTHING"));
      ins.Bind(1, id).Bind(2, d);
      CG_RETURN_IF_ERROR(ins.Run());
    }
    return absl::OkStatus();
  }

  absl::Status InsertTasks(Connection& c, const std::string& id) {
    for (int n = 1; n <= task_count_; ++n) {
      v1::TaskProgress t;
      t.set_name(absl::StrCat("clusters/", id, "/taskProgress/", n));
      t.set_task_number(n);
      t.set_status(v1::TaskProgress::NOT_STARTED);
      t.set_etag(Etag(1));
      CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO task_progress (cluster_id, task_number, status, percent,"
                                              " revision, data) VALUES (?, ?, ?, 0, 1, ?)"));
      ins.Bind(1, id).Bind(2, n).Bind(3, static_cast<int64_t>(t.status())).BindBlob(4, t.SerializeAsString());
      CG_RETURN_IF_ERROR(ins.Run());
    }
    return absl::OkStatus();
  }

  absl::Status AppendDesignation(Connection& c, const std::string& id, const Principal& actor, int64_t now,
                                 v1::TierDesignation* d) {
    CG_ASSIGN_OR_RETURN(auto next, c.Prepare("SELECT coalesce(max(seq), 0) + 1 FROM tier_designations"
                                             " WHERE cluster_id = ?"));
    next.Bind(1, id);
    CG_ASSIGN_OR_RETURN(bool row, next.Step());
    int64_t seq = row ? next.Int(0) : 1;
    d->set_name(absl::StrCat("clusters/", id, "/tierDesignations/", seq));
    d->mutable_actor()->set_subject(actor.subject);
    d->mutable_actor()->set_organization(actor.organization);
    for (const auto& r : actor.roles) d->mutable_actor()->add_roles(r);
    *d->mutable_designate_time() = TimeUtil::MicrosecondsToTimestamp(now);
    CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO tier_designations (cluster_id, seq, data) VALUES (?, ?, ?)"));
    ins.Bind(1, id).Bind(2, seq).BindBlob(3, d->SerializeAsString());
    return ins.Run();
  }

  store::Store* db_;
  store::SqlUnitOfWork unit_;
  int task_count_;
};

}  // namespace

absl::StatusOr<ClusterChange> MutateClusterOn(store::SqlTransaction& tx, const std::string& id,
                                              const ClusterMutation& mutation) {
  SqliteClusterRepository on_connection(/*db=*/nullptr, /*task_count=*/0);
  return on_connection.MutateOn(tx, id, [&](const std::optional<v1::Cluster>& current)
                                              -> absl::StatusOr<ClusterChange> {
    if (!current.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", id, " not found"));
    return mutation(current);
  });
}

absl::StatusOr<std::optional<v1::Cluster>> LoadClusterOn(store::Connection& c, const std::string& id) {
  return SqliteClusterRepository::Load(c, id);
}

namespace {

// A designation event's content: which cluster, its place in the cluster's designation sequence
// (the envelope's revision), the organization it names (empty for a revocation) and why.
struct DesignationEvent {
  std::string cluster_id;
  int64_t sequence = 0;
  std::string org;
  std::string reason;
  bool designated = false;
};

// nullopt for an event of another type; INVALID_ARGUMENT for one that does not parse.
absl::StatusOr<std::optional<DesignationEvent>> ParseDesignationEvent(const events::v1::Envelope& envelope) {
  DesignationEvent out;
  std::string cluster;
  if (envelope.type() == events::v1::PromotionOrgDesignated::descriptor()->full_name()) {
    events::v1::PromotionOrgDesignated e;
    if (!envelope.data().UnpackTo(&e)) return absl::InvalidArgumentError("PromotionOrgDesignated does not parse");
    cluster = e.cluster();
    out.org = e.promotion_org();
    out.reason = absl::StrCat("designation ", e.designation());
    out.designated = true;
  } else if (envelope.type() == events::v1::PromotionOrgDesignationRevoked::descriptor()->full_name()) {
    events::v1::PromotionOrgDesignationRevoked e;
    if (!envelope.data().UnpackTo(&e)) {
      return absl::InvalidArgumentError("PromotionOrgDesignationRevoked does not parse");
    }
    cluster = e.cluster();
    out.reason = absl::StrCat("designation ", e.designation(), " ended: ", e.reason());
  } else {
    return std::optional<DesignationEvent>();
  }
  constexpr absl::string_view kClusters = "clusters/";
  if (!absl::StartsWith(cluster, kClusters) || cluster.size() == kClusters.size() || envelope.revision() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a designation event names ", cluster, " at sequence ", envelope.revision()));
  }
  out.sequence = envelope.revision();
  out.cluster_id = cluster.substr(kClusters.size());
  return std::optional<DesignationEvent>(std::move(out));
}

}  // namespace

std::string PromotionEventCluster(const events::v1::Envelope& envelope) {
  auto parsed = ParseDesignationEvent(envelope);
  return parsed.ok() && parsed->has_value() ? (*parsed)->cluster_id : "";
}

absl::Status ApplyPromotionEvent(Connection& c, const events::v1::Envelope& envelope) {
  CG_ASSIGN_OR_RETURN(std::optional<DesignationEvent> event, ParseDesignationEvent(envelope));
  if (!event.has_value()) return absl::OkStatus();
  CG_ASSIGN_OR_RETURN(auto held, c.Prepare("SELECT sequence FROM cluster_promotion WHERE cluster_id = ?"));
  held.Bind(1, event->cluster_id);
  CG_ASSIGN_OR_RETURN(bool found, held.Step());
  // The latest change of the cluster's designations decides; one not after it is history.
  if (found && event->sequence <= held.Int(0)) return absl::OkStatus();
  CG_ASSIGN_OR_RETURN(auto exists, c.Prepare("SELECT promotion_organization FROM clusters WHERE id = ?"));
  exists.Bind(1, event->cluster_id);
  CG_ASSIGN_OR_RETURN(bool cluster_found, exists.Step());
  if (!cluster_found) {
    log::Warn("a designation event names an unknown cluster", {{"cluster", event->cluster_id}});
    return absl::OkStatus();
  }
  const bool unchanged = exists.Text(0) == event->org;
  CG_ASSIGN_OR_RETURN(auto follow, c.Prepare("INSERT INTO cluster_promotion (cluster_id, sequence) VALUES (?, ?)"
                                             " ON CONFLICT (cluster_id) DO UPDATE SET sequence = excluded.sequence"));
  follow.Bind(1, event->cluster_id).Bind(2, event->sequence);
  CG_RETURN_IF_ERROR(follow.Run());
  if (unchanged) return absl::OkStatus();
  Principal actor{envelope.actor().subject(), envelope.actor().organization(),
                  std::vector<std::string>(envelope.actor().roles().begin(), envelope.actor().roles().end())};
  const std::string type = envelope.type().substr(envelope.type().rfind('.') + 1);
  const store::WriteContext w{&actor, absl::StrCat("Event:", type), "", envelope.request_id(), event->reason, nullptr};
  store::SqlTransaction tx(c, w, Service());
  SqliteClusterRepository on_connection(/*db=*/nullptr, /*task_count=*/0);
  return on_connection
      .MutateOn(tx, event->cluster_id,
                [&](const std::optional<v1::Cluster>& current) -> absl::StatusOr<ClusterChange> {
                  ClusterChange change;
                  change.cluster = *current;
                  change.cluster.set_promotion_organization(event->org);
                  return change;
                })
      .status();
}

absl::StatusOr<std::unique_ptr<ClusterRepository>> CreateClusterRepository(store::Store* db,
                                                                                  int task_count) {
  auto repo = std::make_unique<SqliteClusterRepository>(db, task_count);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<ClusterRepository>(std::move(repo));
}

}  // namespace clustergov::clusters

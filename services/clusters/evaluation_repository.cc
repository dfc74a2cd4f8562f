#include "services/clusters/evaluation_repository.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::clusters {
namespace {

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& EvaluationService() {
  return *v1::Cluster::descriptor()->file()->FindServiceByName("ClustersService");
}

using google::protobuf::util::TimeUtil;
using store::Connection;
using store::Etag;
using store::ParseStored;

// The schema, written for SQLite and the same on PostgreSQL (store::SameSchema).
const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE rule_sets (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  data BLOB NOT NULL
);
CREATE TABLE indicator_snapshots (
  cluster_id TEXT NOT NULL,
  year INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  locked INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (cluster_id, year)
);
CREATE TABLE evaluations (
  cluster_id TEXT NOT NULL,
  year INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  state INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (cluster_id, year)
);
CREATE INDEX evaluations_year ON evaluations (year, cluster_id);
)sql"},
  };
  return *migrations;
}

const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema(SqliteMigrations()));
  return *migrations;
}

void SetActor(const Principal& p, common::v1::Actor* actor) {
  actor->set_subject(p.subject);
  actor->set_organization(p.organization);
  actor->clear_roles();
  for (const auto& r : p.roles) actor->add_roles(r);
}

std::string SnapshotName(const std::string& cluster_id, int year) {
  return absl::StrCat("clusters/", cluster_id, "/snapshots/", year);
}

class SqliteEvaluationRepository : public EvaluationRepository {
 public:
  explicit SqliteEvaluationRepository(store::Store* db) : db_(db), unit_(db, EvaluationService()) {}

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    return db_->Migrate("evaluations", Migrations());
  }

  absl::StatusOr<std::optional<v1::RuleSet>> GetRuleSet(const std::string& id) override {
    return db_->ReadResult<std::optional<v1::RuleSet>>([&](Connection& c) {
      return store::SelectOne<v1::RuleSet>(c, "SELECT data FROM rule_sets WHERE id = ?",
                                           [&](store::Statement& s) { s.Bind(1, id); });
    });
  }

  absl::StatusOr<std::vector<v1::RuleSet>> ListRuleSets(int64_t before_seq, int limit,
                                                        std::vector<int64_t>* seqs) override {
    return db_->ReadResult<std::vector<v1::RuleSet>>(
        [&](Connection& c) -> absl::StatusOr<std::vector<v1::RuleSet>> {
          CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT data, seq FROM rule_sets WHERE (? = 0 OR seq < ?)"
                                                   " ORDER BY seq DESC LIMIT ?"));
          stmt.Bind(1, before_seq).Bind(2, before_seq).Bind(3, static_cast<int64_t>(limit));
          std::vector<v1::RuleSet> out;
          seqs->clear();
          while (true) {
            CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
            if (!row) break;
            CG_ASSIGN_OR_RETURN(auto rs, ParseStored<v1::RuleSet>(stmt.Blob(0)));
            out.push_back(std::move(rs));
            seqs->push_back(stmt.Int(1));
          }
          return out;
        });
  }

  absl::StatusOr<v1::RuleSet> PublishRuleSet(const store::WriteContext& w, const std::string& id,
                                             const v1::RuleSet& rule_set) override {
    return unit_.Run<v1::RuleSet>(w, [&](store::SqlTransaction& tx) { return Insert(tx, id, rule_set); });
  }

  absl::StatusOr<bool> SeedRuleSet(const Principal& actor, const std::string& id,
                                   const v1::RuleSet& rule_set) override {
    const store::WriteContext seed{&actor, "SeedRuleSet", "", "", "default evaluation rules (reference data)", nullptr};
    return unit_.Run<bool>(seed, [&](store::SqlTransaction& tx) -> absl::StatusOr<bool> {
      CG_ASSIGN_OR_RETURN(auto existing,
                          store::SelectOne<v1::RuleSet>(tx.connection(), "SELECT data FROM rule_sets WHERE id = ?",
                                                        [&](store::Statement& s) { s.Bind(1, id); }));
      if (existing.has_value()) return false;
      CG_RETURN_IF_ERROR(Insert(tx, id, rule_set).status());
      return true;
    });
  }

  absl::StatusOr<std::optional<v1::IndicatorSnapshot>> GetSnapshot(const std::string& cluster_id,
                                                                    int year) override {
    return db_->ReadResult<std::optional<v1::IndicatorSnapshot>>(
        [&](Connection& c) { return LoadSnapshot(c, cluster_id, year); });
  }

  absl::StatusOr<v1::IndicatorSnapshot> PutSnapshot(const store::WriteContext& w, const std::string& cluster_id,
                                                    int year, const v1::IndicatorSnapshot& snapshot) override {
    return unit_.Run<v1::IndicatorSnapshot>(w, [&](store::SqlTransaction& tx)
                                                   -> absl::StatusOr<v1::IndicatorSnapshot> {
      CG_ASSIGN_OR_RETURN(auto current, LoadSnapshot(tx.connection(), cluster_id, year));
      if (current.has_value() && current->locked()) {
        return absl::FailedPreconditionError(absl::StrCat(current->name(), " is used by an evaluation and never changes"));
      }
      return StoreSnapshot(tx, cluster_id, year, current, snapshot, /*locked=*/false);
    });
  }

  absl::StatusOr<std::optional<v1::Evaluation>> GetEvaluation(const std::string& cluster_id, int year) override {
    return db_->ReadResult<std::optional<v1::Evaluation>>(
        [&](Connection& c) { return LoadEvaluation(c, cluster_id, year); });
  }

  absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(const std::string& cluster_id, int year,
                                                              const std::string& after_key, int limit) override {
    return db_->ReadResult<std::vector<v1::Evaluation>>([&](Connection& c) {
      return store::SelectAll<v1::Evaluation>(
          c,
          "SELECT data FROM evaluations WHERE (? = '' OR cluster_id = ?) AND (? = 0 OR year = ?)"
          " AND (cluster_id || ' ' || year) > ? ORDER BY cluster_id, year LIMIT ?",
          [&](store::Statement& s) {
            s.Bind(1, cluster_id).Bind(2, cluster_id).Bind(3, year).Bind(4, year).Bind(5, after_key).Bind(
                6, static_cast<int64_t>(limit));
          });
    });
  }

  absl::StatusOr<v1::Evaluation> OpenEvaluation(const store::WriteContext& w, const std::string& cluster_id, int year,
                                                const std::optional<v1::IndicatorSnapshot>& gathered,
                                                const OpenMutation& mutation) override {
    return unit_.Run<v1::Evaluation>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<v1::Evaluation> {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto existing, LoadEvaluation(c, cluster_id, year));
      if (existing.has_value()) return absl::AlreadyExistsError(absl::StrCat(existing->name(), " already exists"));
      CG_ASSIGN_OR_RETURN(auto stored, LoadSnapshot(c, cluster_id, year));
      if (!stored.has_value() && !gathered.has_value()) {
        return absl::FailedPreconditionError(
            absl::StrCat(SnapshotName(cluster_id, year), " has not been gathered"));
      }
      // The stored snapshot wins over one gathered concurrently; either way it is locked now.
      const v1::IndicatorSnapshot& input = stored.has_value() ? *stored : *gathered;
      v1::IndicatorSnapshot locked = input;
      if (!stored.has_value() || !stored->locked()) {
        CG_ASSIGN_OR_RETURN(locked, StoreSnapshot(tx, cluster_id, year, stored, input, /*locked=*/true));
      }
      CG_ASSIGN_OR_RETURN(v1::Evaluation evaluation, mutation(locked));
      const int64_t now = store::NowMicros();
      evaluation.set_name(absl::StrCat("clusters/", cluster_id, "/evaluations/", year));
      evaluation.set_cluster(absl::StrCat("clusters/", cluster_id));
      evaluation.set_year(year);
      evaluation.set_snapshot(locked.name());
      evaluation.set_etag(Etag(1));
      *evaluation.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(now);
      *evaluation.mutable_update_time() = evaluation.create_time();
      StampLastStep(*w.actor, now, &evaluation);
      CG_RETURN_IF_ERROR(WriteEvaluation(c, cluster_id, year, 1, evaluation, /*insert=*/true));
      CG_RETURN_IF_ERROR(tx.Audit(evaluation.name(), "", evaluation.etag()));
      return evaluation;
    });
  }

  absl::StatusOr<v1::Evaluation> MutateEvaluation(const store::WriteContext& w, const std::string& cluster_id,
                                                  int year, const EvaluationMutation& mutation) override {
    return unit_.Run<v1::Evaluation>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<v1::Evaluation> {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto current, LoadEvaluation(c, cluster_id, year));
      if (!current.has_value()) {
        return absl::NotFoundError(absl::StrCat("clusters/", cluster_id, "/evaluations/", year, " not found"));
      }
      CG_ASSIGN_OR_RETURN(EvaluationChange change, mutation(*current));
      v1::Evaluation& evaluation = change.evaluation;
      if (change.cluster_mutation.has_value()) {
        store::SqlTransaction cluster_tx = tx.With(change.cluster_write);
        CG_ASSIGN_OR_RETURN(ClusterChange written, MutateClusterOn(cluster_tx, cluster_id, *change.cluster_mutation));
        if (written.designation.has_value()) evaluation.set_tier_designation(written.designation->name());
      }
      const int64_t revision = store::RevisionOf(current->etag()) + 1;
      const int64_t now = store::NowMicros();
      evaluation.set_etag(Etag(revision));
      *evaluation.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(now);
      StampLastStep(*w.actor, now, &evaluation);
      CG_RETURN_IF_ERROR(WriteEvaluation(c, cluster_id, year, revision, evaluation, /*insert=*/false));
      CG_RETURN_IF_ERROR(tx.Audit(evaluation.name(), current->etag(), evaluation.etag()));
      if (current->state() != v1::Evaluation::DECIDED && evaluation.state() == v1::Evaluation::DECIDED) {
        events::v1::EvaluationDecided decided;
        decided.set_evaluation(evaluation.name());
        decided.set_cluster(absl::StrCat("clusters/", cluster_id));
        decided.set_year(year);
        decided.set_decision(v1::Recommendation_Name(evaluation.decision()));
        decided.set_decided_tier(evaluation.decided_tier());
        decided.set_total_score_bp(evaluation.result().total_score_bp());
        CG_RETURN_IF_ERROR(tx.Publish(evaluation.name(), decided, revision));
      }
      return evaluation;
    });
  }

  absl::StatusOr<std::vector<v1::Evaluation>> ListWaitingEvaluations() override {
    return db_->ReadResult<std::vector<v1::Evaluation>>([&](Connection& c) {
      return store::SelectAll<v1::Evaluation>(
          c, "SELECT data FROM evaluations WHERE state BETWEEN ? AND ? ORDER BY cluster_id, year",
          [&](store::Statement& s) {
            s.Bind(1, static_cast<int64_t>(v1::Evaluation::LEAGUE_REVIEW))
                .Bind(2, static_cast<int64_t>(v1::Evaluation::DECISION));
          });
    });
  }

  absl::StatusOr<int> MarkEvaluations(const store::WriteContext& w,
                                      const std::vector<std::pair<std::string, int>>& cluster_years,
                                      const EvaluationMark& mark) override {
    return unit_.Run<int>(w, [&](store::SqlTransaction& tx) -> absl::StatusOr<int> {
      Connection& c = tx.connection();
      int changed = 0;
      for (const auto& [cluster_id, year] : cluster_years) {
        CG_ASSIGN_OR_RETURN(auto current, LoadEvaluation(c, cluster_id, year));
        if (!current.has_value()) continue;
        v1::Evaluation evaluation = *current;
        const int64_t revision = store::RevisionOf(current->etag()) + 1;
        evaluation.set_etag(Etag(revision));
        *evaluation.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
        CG_ASSIGN_OR_RETURN(bool marked, mark(evaluation, tx));
        if (!marked) continue;
        CG_RETURN_IF_ERROR(WriteEvaluation(c, cluster_id, year, revision, evaluation, /*insert=*/false));
        CG_RETURN_IF_ERROR(tx.Audit(evaluation.name(), current->etag(), evaluation.etag()));
        ++changed;
      }
      return changed;
    });
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }

 private:
  // The step the mutation appended gets the actor and the commit's time.
  static void StampLastStep(const Principal& actor, int64_t now, v1::Evaluation* evaluation) {
    if (evaluation->steps_size() == 0) return;
    auto* step = evaluation->mutable_steps(evaluation->steps_size() - 1);
    if (step->has_time()) return;
    SetActor(actor, step->mutable_actor());
    *step->mutable_time() = TimeUtil::MicrosecondsToTimestamp(now);
  }

  absl::StatusOr<v1::RuleSet> Insert(store::SqlTransaction& tx, const std::string& id, const v1::RuleSet& input) {
    Connection& c = tx.connection();
    CG_ASSIGN_OR_RETURN(auto existing, store::SelectOne<v1::RuleSet>(c, "SELECT data FROM rule_sets WHERE id = ?",
                                                                     [&](store::Statement& s) { s.Bind(1, id); }));
    if (existing.has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("ruleSets/", id, " already exists; published rule sets are never "
                                                   "modified: publish a new version"));
    }
    v1::RuleSet rs = input;
    rs.set_name(absl::StrCat("ruleSets/", id));
    *rs.mutable_publish_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    SetActor(*tx.context().actor, rs.mutable_published_by());
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("INSERT INTO rule_sets (id, seq, data)"
                                             " VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM rule_sets), ?)"));
    stmt.Bind(1, id).BindBlob(2, rs.SerializeAsString());
    CG_RETURN_IF_ERROR(stmt.Run());
    CG_RETURN_IF_ERROR(tx.Audit(rs.name(), "", "v1"));
    return rs;
  }

  absl::StatusOr<std::optional<v1::IndicatorSnapshot>> LoadSnapshot(Connection& c, const std::string& cluster_id,
                                                                    int year) {
    return store::SelectOne<v1::IndicatorSnapshot>(
        c, "SELECT data FROM indicator_snapshots WHERE cluster_id = ? AND year = ?",
        [&](store::Statement& s) { s.Bind(1, cluster_id).Bind(2, year); });
  }

  absl::StatusOr<v1::IndicatorSnapshot> StoreSnapshot(store::SqlTransaction& tx, const std::string& cluster_id,
                                                      int year,
                                                      const std::optional<v1::IndicatorSnapshot>& current,
                                                      const v1::IndicatorSnapshot& input, bool locked) {
    v1::IndicatorSnapshot snapshot = input;
    const int64_t revision = current.has_value() ? store::RevisionOf(current->etag()) + 1 : 1;
    snapshot.set_name(SnapshotName(cluster_id, year));
    snapshot.set_cluster(absl::StrCat("clusters/", cluster_id));
    snapshot.set_year(year);
    snapshot.set_locked(locked);
    snapshot.set_etag(Etag(revision));
    CG_ASSIGN_OR_RETURN(auto stmt, tx.connection().Prepare(
                                       "INSERT INTO indicator_snapshots (cluster_id, year, revision, locked, data)"
                                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (cluster_id, year) DO UPDATE SET"
                                       " revision = excluded.revision, locked = excluded.locked,"
                                       " data = excluded.data"));
    stmt.Bind(1, cluster_id).Bind(2, year).Bind(3, revision).Bind(4, locked ? 1 : 0).BindBlob(
        5, snapshot.SerializeAsString());
    CG_RETURN_IF_ERROR(stmt.Run());
    CG_RETURN_IF_ERROR(tx.AuditStep(locked ? ":LockSnapshot" : "", snapshot.name(),
                                    current.has_value() ? current->etag() : "", snapshot.etag()));
    return snapshot;
  }

  absl::StatusOr<std::optional<v1::Evaluation>> LoadEvaluation(Connection& c, const std::string& cluster_id,
                                                               int year) {
    return store::SelectOne<v1::Evaluation>(c, "SELECT data FROM evaluations WHERE cluster_id = ? AND year = ?",
                                            [&](store::Statement& s) { s.Bind(1, cluster_id).Bind(2, year); });
  }

  absl::Status WriteEvaluation(Connection& c, const std::string& cluster_id, int year, int64_t revision,
                               const v1::Evaluation& evaluation, bool insert) {
    CG_ASSIGN_OR_RETURN(auto stmt,
                        c.Prepare(insert ? "INSERT INTO evaluations (revision, state, data, cluster_id, year)"
                                           " VALUES (?, ?, ?, ?, ?)"
                                         : "UPDATE evaluations SET revision = ?, state = ?, data = ?"
                                           " WHERE cluster_id = ? AND year = ?"));
    stmt.Bind(1, revision)
        .Bind(2, static_cast<int64_t>(evaluation.state()))
        .BindBlob(3, evaluation.SerializeAsString())
        .Bind(4, cluster_id)
        .Bind(5, year);
    return stmt.Run();
  }

  store::Store* db_;
  store::SqlUnitOfWork unit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EvaluationRepository>> CreateEvaluationRepository(store::Store* db) {
  auto repo = std::make_unique<SqliteEvaluationRepository>(db);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<EvaluationRepository>(std::move(repo));
}

}  // namespace clustergov::clusters

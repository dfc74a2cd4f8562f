#include "services/talent/talent_repository.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::talent {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;
using store::Etag;
using store::RevisionOf;
using store::SelectAll;
using store::SelectOne;

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& Service() {
  return *v1::Talent::descriptor()->file()->FindServiceByName("TalentService");
}

// The change feed's channel: a talent's id on every committed write of it.
constexpr char kTalentsChannel[] = "talents";

// The schema, written for SQLite and the same on PostgreSQL (store::SameSchema).
const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE talents (
  id TEXT PRIMARY KEY,
  level INTEGER NOT NULL,
  field TEXT NOT NULL,
  region TEXT NOT NULL,
  institution_kind INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE talent_skills (
  talent_id TEXT NOT NULL REFERENCES talents (id),
  skill TEXT NOT NULL,
  PRIMARY KEY (skill, talent_id)
);
CREATE INDEX talent_skills_talent ON talent_skills (talent_id);
CREATE TABLE talent_programmes (
  talent_id TEXT NOT NULL REFERENCES talents (id),
  programme TEXT NOT NULL,
  PRIMARY KEY (programme, talent_id)
);
CREATE INDEX talent_programmes_talent ON talent_programmes (talent_id);
CREATE TABLE demands (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  enterprise TEXT NOT NULL,
  cluster TEXT NOT NULL,
  state INTEGER NOT NULL,
  level INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE placements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  talent TEXT NOT NULL,
  demand TEXT NOT NULL,
  enterprise TEXT NOT NULL,
  cluster TEXT NOT NULL,
  type INTEGER NOT NULL,
  state INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX placements_talent ON placements (talent, state);
CREATE INDEX placements_cluster ON placements (cluster, state);
)sql"},
  };
  return *migrations;
}

const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema(SqliteMigrations()));
  return *migrations;
}

google::protobuf::Timestamp Now() { return TimeUtil::MicrosecondsToTimestamp(store::NowMicros()); }

int64_t IdOf(const std::string& name) { return std::stoll(name.substr(name.find('/') + 1)); }

class SqliteTx : public TalentTx {
 public:
  explicit SqliteTx(store::SqlTransaction& tx) : TalentTx(tx), c_(tx.connection()) {}

  absl::StatusOr<std::optional<v1::Talent>> GetTalent(const std::string& id) override {
    return SelectOne<v1::Talent>(c_, "SELECT data FROM talents WHERE id = ?", [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::Status PutTalent(v1::Talent& t, bool create) override {
    t.set_etag(Etag(create ? 1 : RevisionOf(t.etag()) + 1));
    *t.mutable_update_time() = Now();
    if (create) *t.mutable_create_time() = t.update_time();
    const std::string id = t.name().substr(8);
    CG_ASSIGN_OR_RETURN(auto up, c_.Prepare(
        "INSERT INTO talents (id, level, field, region, institution_kind, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
        " (id) DO UPDATE SET level = excluded.level, field = excluded.field, region = excluded.region,"
        " institution_kind = excluded.institution_kind, data = excluded.data"));
    up.Bind(1, id)
        .Bind(2, static_cast<int64_t>(t.level()))
        .Bind(3, t.field())
        .Bind(4, t.region())
        .Bind(5, static_cast<int64_t>(t.institution_kind()))
        .BindBlob(6, t.SerializeAsString());
    CG_RETURN_IF_ERROR(up.Run());
    for (const char* table : {"talent_skills", "talent_programmes"}) {
      CG_ASSIGN_OR_RETURN(auto del, c_.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE talent_id = ?")));
      del.Bind(1, id);
      CG_RETURN_IF_ERROR(del.Run());
    }
    for (const auto& skill : t.skills()) {
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO talent_skills (talent_id, skill) VALUES (?, ?) ON CONFLICT DO NOTHING"));
      ins.Bind(1, id).Bind(2, skill);
      CG_RETURN_IF_ERROR(ins.Run());
    }
    for (const auto& p : t.programmes()) {
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO talent_programmes (talent_id, programme)"
                                               " VALUES (?, ?) ON CONFLICT DO NOTHING"));
      ins.Bind(1, id).Bind(2, p.programme());
      CG_RETURN_IF_ERROR(ins.Run());
    }
    return c_.Notify(kTalentsChannel, id);
  }
  absl::StatusOr<std::optional<v1::Demand>> GetDemand(int64_t id) override {
    return SelectOne<v1::Demand>(c_, "SELECT data FROM demands WHERE id = ?", [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::Status PutDemand(v1::Demand& d) override {
    int64_t id = 0;
    if (d.name().empty()) {
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO demands (enterprise, cluster, state, level, data) VALUES"
                                               " ('', '', 0, 0, '') RETURNING id"));
      CG_ASSIGN_OR_RETURN(id, store::InsertedId(ins));
      d.set_name(absl::StrCat("demands/", id));
      d.set_etag(Etag(1));
      *d.mutable_create_time() = Now();
    } else {
      id = IdOf(d.name());
      d.set_etag(Etag(RevisionOf(d.etag()) + 1));
    }
    *d.mutable_update_time() = Now();
    CG_ASSIGN_OR_RETURN(auto up, c_.Prepare("UPDATE demands SET enterprise = ?, cluster = ?, state = ?, level = ?,"
                                            " data = ? WHERE id = ?"));
    up.Bind(1, d.enterprise())
        .Bind(2, d.cluster())
        .Bind(3, static_cast<int64_t>(d.state()))
        .Bind(4, static_cast<int64_t>(d.level()))
        .BindBlob(5, d.SerializeAsString())
        .Bind(6, id);
    return up.Run();
  }
  absl::StatusOr<std::optional<v1::Placement>> GetPlacement(int64_t id) override {
    return SelectOne<v1::Placement>(c_, "SELECT data FROM placements WHERE id = ?",
                                    [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::Status PutPlacement(v1::Placement& p) override {
    int64_t id = 0;
    if (p.name().empty()) {
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO placements (talent, demand, enterprise, cluster, type, state,"
                                               " data) VALUES ('', '', '', '', 0, 0, '') RETURNING id"));
      CG_ASSIGN_OR_RETURN(id, store::InsertedId(ins));
      p.set_name(absl::StrCat("placements/", id));
      p.set_etag(Etag(1));
    } else {
      id = IdOf(p.name());
      p.set_etag(Etag(RevisionOf(p.etag()) + 1));
    }
    CG_ASSIGN_OR_RETURN(auto up, c_.Prepare("UPDATE placements SET talent = ?, demand = ?, enterprise = ?, cluster = ?,"
                                            " type = ?, state = ?, data = ? WHERE id = ?"));
    up.Bind(1, p.talent())
        .Bind(2, p.demand())
        .Bind(3, p.enterprise())
        .Bind(4, p.cluster())
        .Bind(5, static_cast<int64_t>(p.type()))
        .Bind(6, static_cast<int64_t>(p.state()))
        .BindBlob(7, p.SerializeAsString())
        .Bind(8, id);
    return up.Run();
  }
  absl::StatusOr<std::vector<v1::Placement>> ActivePlacementsOf(const std::string& talent) override {
    return SelectAll<v1::Placement>(c_, "SELECT data FROM placements WHERE talent = ? AND state = 1 ORDER BY id",
                                    [&](store::Statement& s) { s.Bind(1, talent); });
  }

 private:
  Connection& c_;
};

std::vector<std::pair<std::string, int64_t>> EnumValues(const google::protobuf::EnumDescriptor* d) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (int i = 1; i < d->value_count(); ++i) out.push_back({d->value(i)->name(), d->value(i)->number()});
  return out;
}

class SqliteTalentRepository : public TalentRepository {
 public:
  explicit SqliteTalentRepository(store::Store* db) : db_(db), unit_(db, Service()) {}

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    CG_RETURN_IF_ERROR(db_->Migrate("talent", Migrations()));
    return unit_.PublishOnce("active placements", [](store::SqlTransaction& tx) -> absl::Status {
      CG_ASSIGN_OR_RETURN(auto placements, store::SelectAll<v1::Placement>(
                                               tx.connection(), "SELECT data FROM placements WHERE state = ? ORDER BY id",
                                               [](store::Statement& s) { s.Bind(1, v1::Placement::ACTIVE); }));
      for (const auto& p : placements) {
        CG_RETURN_IF_ERROR(tx.Publish(p.name(), PlacementStartedEvent(p), store::RevisionOf(p.etag())));
      }
      return absl::OkStatus();
    });
  }

  const std::vector<FilterField>& TalentFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"level", FilterField::Type::kEnum, "t.level", EnumValues(v1::Level_descriptor())},
        {"field", FilterField::Type::kString, "t.field", {}},
        {"region", FilterField::Type::kString, "t.region", {}},
        {"institution_kind", FilterField::Type::kEnum, "t.institution_kind", EnumValues(v1::InstitutionKind_descriptor())},
        {"skills", FilterField::Type::kRepeatedString,
         "EXISTS (SELECT 1 FROM talent_skills s WHERE s.talent_id = t.id AND s.skill = ?)", {}},
        {"programmes", FilterField::Type::kRepeatedString,
         "EXISTS (SELECT 1 FROM talent_programmes p WHERE p.talent_id = t.id AND p.programme = ?)", {}},
    };
    return *fields;
  }
  const std::vector<FilterField>& DemandFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"state", FilterField::Type::kEnum, "d.state", {{"OPEN", 1}, {"FILLED", 2}, {"CLOSED", 3}}},
        {"cluster", FilterField::Type::kString, "d.cluster", {}},
        {"enterprise", FilterField::Type::kString, "d.enterprise", {}},
        {"level", FilterField::Type::kEnum, "d.level", EnumValues(v1::Level_descriptor())},
    };
    return *fields;
  }
  const std::vector<FilterField>& PlacementFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"talent", FilterField::Type::kString, "p.talent", {}},
        {"demand", FilterField::Type::kString, "p.demand", {}},
        {"enterprise", FilterField::Type::kString, "p.enterprise", {}},
        {"cluster", FilterField::Type::kString, "p.cluster", {}},
        {"type", FilterField::Type::kEnum, "p.type", {{"FULL_TIME", 1}, {"DUAL_APPOINTMENT", 2}, {"PART_TIME_PAID", 3}}},
        {"state", FilterField::Type::kEnum, "p.state", {{"ACTIVE", 1}, {"ENDED", 2}}},
    };
    return *fields;
  }

  absl::StatusOr<std::optional<v1::Talent>> GetTalent(const std::string& id) override {
    return db_->ReadResult<std::optional<v1::Talent>>([&](Connection& c) {
      return SelectOne<v1::Talent>(c, "SELECT data FROM talents WHERE id = ?", [&](store::Statement& s) { s.Bind(1, id); });
    });
  }
  absl::StatusOr<std::vector<v1::Talent>> GetTalents(const std::vector<std::string>& ids) override {
    return db_->ReadResult<std::vector<v1::Talent>>([&](Connection& c) -> absl::StatusOr<std::vector<v1::Talent>> {
      std::vector<v1::Talent> out;
      for (const auto& id : ids) {
        CG_ASSIGN_OR_RETURN(auto t, SelectOne<v1::Talent>(c, "SELECT data FROM talents WHERE id = ?",
                                                          [&](store::Statement& s) { s.Bind(1, id); }));
        if (t.has_value()) out.push_back(std::move(*t));
      }
      return out;
    });
  }
  absl::StatusOr<std::vector<v1::Talent>> ListTalents(const ListQuery& q) override {
    return List<v1::Talent>("SELECT t.data FROM talents t WHERE t.id > ? AND ", q, " ORDER BY t.id LIMIT ?");
  }
  absl::StatusOr<std::optional<v1::Demand>> GetDemand(int64_t id) override {
    return db_->ReadResult<std::optional<v1::Demand>>([&](Connection& c) {
      return SelectOne<v1::Demand>(c, "SELECT data FROM demands WHERE id = ?", [&](store::Statement& s) { s.Bind(1, id); });
    });
  }
  absl::StatusOr<std::vector<v1::Demand>> ListDemands(const ListQuery& q) override {
    return List<v1::Demand>("SELECT d.data FROM demands d WHERE printf('%020d', d.id) > ? AND ", q,
                            " ORDER BY d.id LIMIT ?");
  }
  absl::StatusOr<std::vector<v1::Placement>> ListPlacements(const ListQuery& q) override {
    return List<v1::Placement>("SELECT p.data FROM placements p WHERE printf('%020d', p.id) > ? AND ", q,
                               " ORDER BY p.id LIMIT ?");
  }
  absl::StatusOr<std::vector<MatchRow>> MatchRows(const std::vector<std::string>& skills) override {
    return db_->ReadResult<std::vector<MatchRow>>([&](Connection& c) -> absl::StatusOr<std::vector<MatchRow>> {
      std::vector<std::string> marks(skills.size(), "?");
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat(
          "SELECT t.id, t.level, t.region, group_concat(s.skill, ','), t.data FROM talent_skills s JOIN talents t"
          " ON t.id = s.talent_id WHERE s.skill IN (", absl::StrJoin(marks, ", "), ") GROUP BY t.id")));
      for (size_t i = 0; i < skills.size(); ++i) stmt.Bind(static_cast<int>(i) + 1, skills[i]);
      std::vector<MatchRow> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        MatchRow m;
        m.id = stmt.Text(0);
        m.level = static_cast<int>(stmt.Int(1));
        m.region = stmt.Text(2);
        m.matched_skills = absl::StrSplit(stmt.Text(3), ',', absl::SkipEmpty());
        CG_ASSIGN_OR_RETURN(auto record, store::ParseStored<v1::Talent>(stmt.Blob(4)));
        m.revision = RevisionOf(record.etag());
        out.push_back(std::move(m));
      }
      return out;
    });
  }
  absl::StatusOr<bool> Employs(const std::string& enterprise, const std::string& talent) override {
    return db_->ReadResult<bool>([&](Connection& c) -> absl::StatusOr<bool> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT 1 FROM placements WHERE enterprise = ? AND talent = ? AND state = 1"));
      stmt.Bind(1, enterprise).Bind(2, talent);
      return stmt.Step();
    });
  }
  absl::StatusOr<std::unique_ptr<store::Subscription>> FollowTalents(std::function<void(const std::string&)> changed,
                                                                     std::function<void()> resync) override {
    return db_->Listen(kTalentsChannel, std::move(changed), std::move(resync));
  }
  absl::StatusOr<ClusterCounts> Counts(const std::string& cluster) override {
    return db_->ReadResult<ClusterCounts>([&](Connection& c) -> absl::StatusOr<ClusterCounts> {
      ClusterCounts out;
      auto pairs = [&](const std::string& sql, std::vector<std::pair<std::string, int>>* into) -> absl::Status {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
        stmt.Bind(1, cluster).Bind(2, cluster);
        while (true) {
          CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          into->push_back({stmt.Text(0), static_cast<int>(stmt.Int(1))});
        }
        return absl::OkStatus();
      };
      const std::string placed =
          "SELECT DISTINCT p.talent FROM placements p WHERE p.state = 1 AND (? = '' OR p.cluster = ?)";
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT t.level, count(*) FROM talents t WHERE 'talents/' || t.id IN (",
                                            placed, ") GROUP BY t.level ORDER BY t.level"),
                               &out.by_level));
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT g.programme, count(*) FROM talent_programmes g WHERE 'talents/' ||"
                                            " g.talent_id IN (", placed, ") GROUP BY g.programme ORDER BY g.programme"),
                               &out.by_programme));
      CG_RETURN_IF_ERROR(pairs("SELECT p.type, count(*) FROM placements p WHERE p.state = 1 AND (? = '' OR p.cluster = ?)"
                               " GROUP BY p.type ORDER BY p.type",
                               &out.by_type));
      CG_ASSIGN_OR_RETURN(auto demands, SelectAll<v1::Demand>(
                                            c, "SELECT data FROM demands WHERE state = 1 AND (? = '' OR cluster = ?)",
                                            [&](store::Statement& s) { s.Bind(1, cluster).Bind(2, cluster); }));
      out.open_demands = static_cast<int>(demands.size());
      for (const auto& d : demands) out.open_positions += d.count() - d.filled();
      return out;
    });
  }

  absl::StatusOr<TalentYear> YearFigures(const std::string& cluster, int64_t begin_micros,
                                         int64_t end_micros) override {
    return db_->ReadResult<TalentYear>([&](Connection& c) -> absl::StatusOr<TalentYear> {
      auto in_span = [&](const google::protobuf::Timestamp& t) {
        const int64_t micros = TimeUtil::TimestampToMicroseconds(t);
        return micros >= begin_micros && micros < end_micros;
      };
      TalentYear out;
      CG_ASSIGN_OR_RETURN(auto demands, SelectAll<v1::Demand>(c, "SELECT data FROM demands WHERE cluster = ?",
                                                              [&](store::Statement& s) { s.Bind(1, cluster); }));
      std::set<std::string> year_demands;
      for (const auto& d : demands) {
        if (!in_span(d.create_time())) continue;
        ++out.demands;
        out.positions += d.count();
        year_demands.insert(d.name());
      }
      CG_ASSIGN_OR_RETURN(auto placements,
                          SelectAll<v1::Placement>(c, "SELECT data FROM placements WHERE cluster = ?",
                                                   [&](store::Statement& s) { s.Bind(1, cluster); }));
      std::set<std::string> matched;
      std::map<int, int> by_type;
      std::set<std::string> talents;
      for (const auto& p : placements) {
        if (year_demands.count(p.demand()) > 0) matched.insert(p.demand());
        if (!in_span(p.start_time())) continue;
        ++by_type[p.type()];
        talents.insert(p.talent());
      }
      out.matched_demands = static_cast<int>(matched.size());
      out.placements_by_type.assign(by_type.begin(), by_type.end());
      out.talents_placed = static_cast<int>(talents.size());
      for (const auto& t : talents) {
        CG_ASSIGN_OR_RETURN(auto level, c.Prepare("SELECT level FROM talents WHERE id = ?"));
        level.Bind(1, absl::string_view(t).substr(8));  // "talents/{id}"
        CG_ASSIGN_OR_RETURN(bool row, level.Step());
        if (row && level.Int(0) >= v1::HIGH_LEVEL) ++out.high_level_placed;
      }
      return out;
    });
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }
  std::unique_ptr<TalentTx> Bind(store::Transaction& unit) override {
    return std::make_unique<SqliteTx>(store::SqlTransaction::Of(unit));
  }

 private:
  template <typename Msg>
  absl::StatusOr<std::vector<Msg>> List(const char* head, const ListQuery& q, const char* tail) {
    return db_->ReadResult<std::vector<Msg>>([&](Connection& c) {
      return SelectAll<Msg>(c, absl::StrCat(head, q.filter.where, tail), [&](store::Statement& s) {
        s.Bind(1, q.after);
        s.BindAll(2, q.filter.args);
        s.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
      });
    });
  }

  store::Store* db_;
  store::SqlUnitOfWork unit_;
};

}  // namespace

events::v1::PlacementStarted PlacementStartedEvent(const v1::Placement& placement) {
  events::v1::PlacementStarted event;
  event.set_placement(placement.name());
  event.set_talent(placement.talent());
  event.set_demand(placement.demand());
  event.set_enterprise(placement.enterprise());
  event.set_cluster(placement.cluster());
  event.set_type(v1::Placement::Type_Name(placement.type()));
  return event;
}

absl::StatusOr<std::unique_ptr<TalentRepository>> CreateTalentRepository(store::Store* db) {
  auto repo = std::make_unique<SqliteTalentRepository>(db);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<TalentRepository>(std::move(repo));
}

}  // namespace clustergov::talent

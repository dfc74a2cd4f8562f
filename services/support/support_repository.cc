#include "services/support/support_repository.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::support {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& Service() {
  return *v1::Pool::descriptor()->file()->FindServiceByName("SupportService");
}

const std::vector<store::Migration>& Migrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE pools (
  name TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  year INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  pollutant TEXT NOT NULL,
  capacity INTEGER NOT NULL,
  reserved INTEGER NOT NULL,
  allocated INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL,
  CHECK (capacity >= 0 AND reserved >= 0 AND allocated >= 0 AND reserved + allocated <= capacity)
);
CREATE TABLE applications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  applicant TEXT NOT NULL,
  cluster TEXT NOT NULL,
  region TEXT NOT NULL,
  year INTEGER NOT NULL,
  state INTEGER NOT NULL,
  core_chain INTEGER NOT NULL,
  submit_micros INTEGER NOT NULL,
  expire_micros INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX applications_state ON applications (state, core_chain, submit_micros);
CREATE INDEX applications_applicant ON applications (applicant, id);
CREATE TABLE application_kinds (
  application_id INTEGER NOT NULL REFERENCES applications (id),
  kind_name TEXT NOT NULL,
  PRIMARY KEY (application_id, kind_name)
);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pool TEXT NOT NULL,
  application TEXT NOT NULL,
  type INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX ledger_pool ON ledger (pool, id);
CREATE INDEX ledger_application ON ledger (application, id);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
)sql"},
      // Reward claims: one live claim (SUBMITTED 2, UNDER_REVIEW 3, APPROVED 4, ALLOCATED 7) per
      // evaluation, held by the database as well as by the domain's check.
      {2, R"sql(
ALTER TABLE applications ADD COLUMN reward TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX applications_live_reward ON applications (reward)
  WHERE reward != '' AND state IN (2, 3, 4, 7);
)sql"},
  };
  return *migrations;
}

using store::Etag;
using store::RevisionOf;
using store::SelectAll;

absl::StatusOr<std::optional<v1::Pool>> LoadPool(Connection& c, const std::string& name) {
  CG_ASSIGN_OR_RETURN(auto all, SelectAll<v1::Pool>(c, "SELECT data FROM pools WHERE name = ?",
                                                    [&](store::Statement& s) { s.Bind(1, name); }));
  if (all.empty()) return std::optional<v1::Pool>();
  return std::optional<v1::Pool>(std::move(all[0]));
}

absl::StatusOr<std::optional<v1::Application>> LoadApplication(Connection& c, int64_t id) {
  CG_ASSIGN_OR_RETURN(auto all, SelectAll<v1::Application>(c, "SELECT data FROM applications WHERE id = ?",
                                                           [&](store::Statement& s) { s.Bind(1, id); }));
  if (all.empty()) return std::optional<v1::Application>();
  return std::optional<v1::Application>(std::move(all[0]));
}

class SqliteTx : public SupportTx {
 public:
  explicit SqliteTx(store::SqliteTransaction& tx) : SupportTx(tx), c_(tx.connection()) {}

  absl::StatusOr<std::optional<v1::Pool>> GetPool(const std::string& name) override { return LoadPool(c_, name); }

  absl::Status PutPool(v1::Pool& pool, bool create) override {
    int64_t revision = create ? 1 : RevisionOf(pool.etag()) + 1;
    auto now = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    pool.set_etag(Etag(revision));
    pool.set_free(pool.capacity() - pool.reserved() - pool.allocated());
    *pool.mutable_update_time() = now;
    if (create) *pool.mutable_create_time() = now;
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare(
        "INSERT INTO pools (name, region, year, kind, pollutant, capacity, reserved, allocated, revision, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity,"
        " reserved = excluded.reserved, allocated = excluded.allocated, revision = excluded.revision,"
        " data = excluded.data"));
    stmt.Bind(1, pool.name())
        .Bind(2, pool.region())
        .Bind(3, static_cast<int64_t>(pool.year()))
        .Bind(4, static_cast<int64_t>(pool.kind()))
        .Bind(5, pool.pollutant())
        .Bind(6, pool.capacity())
        .Bind(7, pool.reserved())
        .Bind(8, pool.allocated())
        .Bind(9, revision)
        .BindBlob(10, pool.SerializeAsString());
    absl::Status s = stmt.Run();
    if (absl::IsFailedPrecondition(s)) {
      // The CHECK constraint: the domain never gets here, but the database refuses an overdraft too.
      return absl::FailedPreconditionError(absl::StrCat(pool.name(), " would be overdrawn"));
    }
    return s;
  }

  absl::StatusOr<std::optional<v1::Application>> GetApplication(int64_t id) override {
    return LoadApplication(c_, id);
  }

  absl::Status PutApplication(v1::Application& app) override {
    auto now = store::NowMicros();
    bool create = app.name().empty();
    int64_t revision = create ? 1 : RevisionOf(app.etag()) + 1;
    app.set_etag(Etag(revision));
    *app.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(now);
    int64_t id = 0;
    if (create) {
      *app.mutable_create_time() = app.update_time();
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO applications (applicant, cluster, region, year, state,"
                                               " core_chain, submit_micros, expire_micros, revision, data) VALUES"
                                               " ('', '', '', 0, 0, 0, 0, 0, 0, x'')"));
      CG_RETURN_IF_ERROR(ins.Run());
      id = c_.LastInsertRowId();
      app.set_name(absl::StrCat("applications/", id));
    } else {
      id = std::stoll(app.name().substr(13));
    }
    auto micros = [](const google::protobuf::Timestamp& t) {
      return t.seconds() == 0 && t.nanos() == 0 ? int64_t{0} : TimeUtil::TimestampToMicroseconds(t);
    };
    CG_ASSIGN_OR_RETURN(auto up, c_.Prepare("UPDATE applications SET applicant = ?, cluster = ?, region = ?,"
                                            " year = ?, state = ?, core_chain = ?, submit_micros = ?, expire_micros"
                                            " = ?, revision = ?, data = ?, reward = ? WHERE id = ?"));
    up.Bind(1, app.applicant())
        .Bind(2, app.cluster())
        .Bind(3, app.region())
        .Bind(4, static_cast<int64_t>(app.year()))
        .Bind(5, static_cast<int64_t>(app.state()))
        .Bind(6, static_cast<int64_t>(app.core_chain_project() ? 1 : 0))
        .Bind(7, micros(app.submit_time()))
        .Bind(8, micros(app.reservation_expire_time()))
        .Bind(9, revision)
        .BindBlob(10, app.SerializeAsString())
        .Bind(11, app.reward())
        .Bind(12, id);
    CG_RETURN_IF_ERROR(up.Run());
    CG_ASSIGN_OR_RETURN(auto del, c_.Prepare("DELETE FROM application_kinds WHERE application_id = ?"));
    del.Bind(1, id);
    CG_RETURN_IF_ERROR(del.Run());
    for (const auto& item : app.items()) {
      CG_ASSIGN_OR_RETURN(auto k, c_.Prepare("INSERT OR IGNORE INTO application_kinds (application_id, kind_name)"
                                             " VALUES (?, ?)"));
      k.Bind(1, id).Bind(2, v1::ResourceKind_Name(item.kind()));
      CG_RETURN_IF_ERROR(k.Run());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> LiveRewardClaim(const std::string& reward, int64_t except_id) override {
    CG_ASSIGN_OR_RETURN(auto q, c_.Prepare("SELECT id FROM applications WHERE reward = ? AND state IN (2, 3, 4, 7)"
                                           " AND id != ? LIMIT 1"));
    q.Bind(1, reward).Bind(2, except_id);
    CG_ASSIGN_OR_RETURN(bool row, q.Step());
    return row ? absl::StrCat("applications/", q.Int(0)) : std::string();
  }

  absl::Status AppendLedger(v1::LedgerEntry& e) override {
    *e.mutable_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    auto* actor = e.mutable_actor();
    actor->set_subject(context().actor->subject);
    actor->set_organization(context().actor->organization);
    actor->clear_roles();
    for (const auto& r : context().actor->roles) actor->add_roles(r);
    if (e.reason().empty()) e.set_reason(context().reason);
    // One INSERT: the ledger refuses updates. The id is the row id, filled in when read.
    e.clear_id();
    CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO ledger (pool, application, type, quantity, data) VALUES"
                                             " (?, ?, ?, ?, ?)"));
    ins.Bind(1, e.pool())
        .Bind(2, e.application())
        .Bind(3, static_cast<int64_t>(e.type()))
        .Bind(4, e.quantity())
        .BindBlob(5, e.SerializeAsString());
    CG_RETURN_IF_ERROR(ins.Run());
    e.set_id(c_.LastInsertRowId());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::Application>> ExpiredReservations(int64_t now_micros) override {
    return SelectAll<v1::Application>(c_, "SELECT data FROM applications WHERE state = ? AND expire_micros > 0 AND"
                                          " expire_micros < ? ORDER BY id",
                                      [&](store::Statement& s) {
                                        s.Bind(1, static_cast<int64_t>(v1::Application::APPROVED)).Bind(2, now_micros);
                                      });
  }

 private:
  Connection& c_;
};

class SqliteSupportRepository : public SupportRepository {
 public:
  explicit SqliteSupportRepository(store::Database* db) : db_(db), unit_(db, Service()) {}

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    return db_->Migrate("support", Migrations());
  }

  const std::vector<FilterField>& PoolFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"region", FilterField::Type::kString, "p.region", {}},
        {"year", FilterField::Type::kInt, "p.year", {}},
        {"kind", FilterField::Type::kEnum, "p.kind", KindValues()},
        {"pollutant", FilterField::Type::kString, "p.pollutant", {}},
    };
    return *fields;
  }

  const std::vector<FilterField>& ApplicationFilterFields() const override {
    static const auto* fields = [] {
      std::vector<std::pair<std::string, int64_t>> states;
      const auto* d = v1::Application::State_descriptor();
      for (int i = 1; i < d->value_count(); ++i) states.push_back({d->value(i)->name(), d->value(i)->number()});
      return new std::vector<FilterField>{
          {"state", FilterField::Type::kEnum, "a.state", states},
          {"applicant", FilterField::Type::kString, "a.applicant", {}},
          {"cluster", FilterField::Type::kString, "a.cluster", {}},
          {"region", FilterField::Type::kString, "a.region", {}},
          {"year", FilterField::Type::kInt, "a.year", {}},
          {"core_chain_project", FilterField::Type::kBool, "a.core_chain", {}},
          {"kind", FilterField::Type::kRepeatedString,
           "EXISTS (SELECT 1 FROM application_kinds k WHERE k.application_id = a.id AND k.kind_name = ?)", {}},
      };
    }();
    return *fields;
  }

  const std::vector<FilterField>& LedgerFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"pool", FilterField::Type::kString, "l.pool", {}},
        {"application", FilterField::Type::kString, "l.application", {}},
        {"type",
         FilterField::Type::kEnum,
         "l.type",
         {{"RESERVE", 1}, {"RELEASE", 2}, {"ALLOCATE", 3}, {"ADJUST", 4}}},
    };
    return *fields;
  }

  absl::StatusOr<std::optional<v1::Pool>> GetPool(const std::string& name) override {
    return db_->ReadResult<std::optional<v1::Pool>>([&](Connection& c) { return LoadPool(c, name); });
  }

  absl::StatusOr<std::vector<v1::Pool>> ListPools(const ListQuery& q) override {
    return db_->ReadResult<std::vector<v1::Pool>>([&](Connection& c) {
      return SelectAll<v1::Pool>(c, absl::StrCat("SELECT p.data FROM pools p WHERE p.name > ? AND ", q.filter.where,
                                                 " ORDER BY p.name LIMIT ?"),
                                 [&](store::Statement& s) {
                                   s.Bind(1, q.after);
                                   s.BindAll(2, q.filter.args);
                                   s.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
                                 });
    });
  }

  absl::StatusOr<std::optional<v1::Application>> GetApplication(int64_t id) override {
    return db_->ReadResult<std::optional<v1::Application>>([&](Connection& c) { return LoadApplication(c, id); });
  }

  absl::StatusOr<std::vector<v1::Application>> ListApplications(const ListQuery& q) override {
    // Keyset: "id" for creation order; "<1-core_chain>:<submit_micros 20 digits>:<id 20 digits>" for priority.
    const char* key = q.priority_order
                          ? "printf('%d:%020d:%020d', 1 - a.core_chain, a.submit_micros, a.id)"
                          : "printf('%020d', a.id)";
    return db_->ReadResult<std::vector<v1::Application>>([&](Connection& c) {
      return SelectAll<v1::Application>(
          c,
          absl::StrCat("SELECT a.data FROM applications a WHERE ", key, " > ? AND (? = '' OR a.applicant = ?) AND ",
                       q.filter.where, " ORDER BY ", key, " LIMIT ?"),
          [&](store::Statement& s) {
            s.Bind(1, q.after).Bind(2, q.applicant).Bind(3, q.applicant);
            s.BindAll(4, q.filter.args);
            s.Bind(4 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          });
    });
  }

  absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedger(const ListQuery& q) override {
    int64_t after = q.after.empty() ? 0 : std::stoll(q.after);
    return db_->ReadResult<std::vector<v1::LedgerEntry>>([&](Connection& c) {
      return [&]() -> absl::StatusOr<std::vector<v1::LedgerEntry>> {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(absl::StrCat("SELECT l.id, l.data FROM ledger l WHERE l.id > ? AND ",
                                                              q.filter.where, " ORDER BY l.id LIMIT ?")));
        stmt.Bind(1, after);
        stmt.BindAll(2, q.filter.args);
        stmt.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
        std::vector<v1::LedgerEntry> out;
        while (true) {
          CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          v1::LedgerEntry e;
          if (!e.ParseFromString(stmt.Blob(1))) return absl::InternalError("stored record does not parse");
          e.set_id(stmt.Int(0));
          out.push_back(std::move(e));
        }
        return out;
      }();
    });
  }

  absl::StatusOr<std::vector<LedgerSums>> SumLedger() override {
    return db_->ReadResult<std::vector<LedgerSums>>([&](Connection& c) -> absl::StatusOr<std::vector<LedgerSums>> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(
          "SELECT p.name,"
          " coalesce((SELECT sum(quantity) FROM ledger WHERE pool = p.name AND type = 4), 0),"
          " coalesce((SELECT sum(CASE type WHEN 1 THEN quantity WHEN 2 THEN -quantity WHEN 3 THEN -quantity END)"
          "   FROM ledger WHERE pool = p.name AND type IN (1, 2, 3)), 0),"
          " coalesce((SELECT sum(quantity) FROM ledger WHERE pool = p.name AND type = 3), 0),"
          " p.capacity, p.reserved, p.allocated"
          " FROM pools p ORDER BY p.name"));
      std::vector<LedgerSums> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back({stmt.Text(0), stmt.Int(1), stmt.Int(2), stmt.Int(3), stmt.Int(4), stmt.Int(5), stmt.Int(6)});
      }
      return out;
    });
  }

  absl::StatusOr<ClusterAllocation> AllocatedTo(const std::string& cluster, int year) override {
    return db_->ReadResult<ClusterAllocation>([&](Connection& c) -> absl::StatusOr<ClusterAllocation> {
      ClusterAllocation out;
      // The ledger's ALLOCATE entries of the cluster-year's applications, by the pool's kind.
      CG_ASSIGN_OR_RETURN(auto sums, c.Prepare(
                                         "SELECT p.kind, p.pollutant, sum(l.quantity) FROM applications a JOIN ledger l ON l.application = 'applications/' || a.id"
                                         " JOIN pools p ON p.name = l.pool WHERE a.cluster = ? AND a.year = ? AND"
                                         " l.type = ? GROUP BY p.kind, p.pollutant ORDER BY p.kind, p.pollutant"));
      sums.Bind(1, cluster).Bind(2, static_cast<int64_t>(year)).Bind(3, static_cast<int64_t>(v1::LedgerEntry::ALLOCATE));
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, sums.Step());
        if (!row) break;
        out.quantities.push_back({static_cast<int>(sums.Int(0)), sums.Text(1), sums.Int(2)});
      }
      CG_ASSIGN_OR_RETURN(auto apps, c.Prepare(
                                         "SELECT count(*), coalesce(sum(a.core_chain), 0) FROM applications a WHERE"
                                         " a.cluster = ? AND a.year = ? AND EXISTS (SELECT 1 FROM ledger l WHERE"
                                         " l.application = 'applications/' || a.id AND l.type = ?)"));
      apps.Bind(1, cluster).Bind(2, static_cast<int64_t>(year)).Bind(3, static_cast<int64_t>(v1::LedgerEntry::ALLOCATE));
      CG_ASSIGN_OR_RETURN(bool row, apps.Step());
      if (row) {
        out.applications = static_cast<int>(apps.Int(0));
        out.core_chain_applications = static_cast<int>(apps.Int(1));
      }
      return out;
    });
  }

  absl::StatusOr<std::vector<ClusterUse>> UseByCluster() override {
    return db_->ReadResult<std::vector<ClusterUse>>([&](Connection& c) -> absl::StatusOr<std::vector<ClusterUse>> {
      CG_ASSIGN_OR_RETURN(auto apps, SelectAll<v1::Application>(
                                         c, "SELECT data FROM applications WHERE state IN (?, ?) ORDER BY cluster",
                                         [&](store::Statement& s) {
                                           s.Bind(1, static_cast<int64_t>(v1::Application::APPROVED))
                                               .Bind(2, static_cast<int64_t>(v1::Application::ALLOCATED));
                                         }));
      std::vector<ClusterUse> out;
      for (const auto& a : apps) {
        for (const auto& item : a.items()) {
          auto it = std::find_if(out.begin(), out.end(), [&](const ClusterUse& u) {
            return u.cluster == a.cluster() && u.kind == item.kind();
          });
          if (it == out.end()) {
            out.push_back({a.cluster(), item.kind(), 0, 0});
            it = out.end() - 1;
          }
          if (a.state() == v1::Application::APPROVED) {
            it->reserved += item.quantity();
          } else {
            it->allocated += item.quantity();
          }
        }
      }
      return out;
    });
  }

  absl::StatusOr<std::map<int, int64_t>> CountApplicationsByState() override {
    return db_->ReadResult<std::map<int, int64_t>>([&](Connection& c) -> absl::StatusOr<std::map<int, int64_t>> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT state, count(*) FROM applications GROUP BY state"));
      std::map<int, int64_t> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out[static_cast<int>(stmt.Int(0))] = stmt.Int(1);
      }
      return out;
    });
  }

  absl::StatusOr<int64_t> OldestEnteredMicros(v1::Application::State state) override {
    // The history is inside the record: every application now in `state` is read (the pending
    // states hold the review queue, not the archive), through the (state, ...) index.
    return db_->ReadResult<int64_t>([&](Connection& c) -> absl::StatusOr<int64_t> {
      CG_ASSIGN_OR_RETURN(auto apps, SelectAll<v1::Application>(c, "SELECT data FROM applications WHERE state = ?",
                                                                [&](store::Statement& s) {
                                                                  s.Bind(1, static_cast<int64_t>(state));
                                                                }));
      int64_t oldest = 0;
      for (const auto& a : apps) {
        int64_t entered = 0;
        for (int i = a.history_size() - 1; i >= 0; --i) {
          if (a.history(i).to() == state && a.history(i).has_time()) {
            entered = TimeUtil::TimestampToMicroseconds(a.history(i).time());
            break;
          }
        }
        if (entered == 0 && a.has_update_time()) entered = TimeUtil::TimestampToMicroseconds(a.update_time());
        if (entered > 0 && (oldest == 0 || entered < oldest)) oldest = entered;
      }
      return oldest;
    });
  }

  absl::StatusOr<std::vector<PoolBalance>> PoolBalances() override {
    return db_->ReadResult<std::vector<PoolBalance>>([&](Connection& c) -> absl::StatusOr<std::vector<PoolBalance>> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT name, region, year, kind, capacity, reserved, allocated"
                                               " FROM pools ORDER BY name"));
      std::vector<PoolBalance> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back({stmt.Text(0), stmt.Text(1), static_cast<int>(stmt.Int(2)), static_cast<int>(stmt.Int(3)),
                       stmt.Int(4), stmt.Int(5), stmt.Int(6)});
      }
      return out;
    });
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }
  std::unique_ptr<SupportTx> Bind(store::Transaction& unit) override {
    return std::make_unique<SqliteTx>(store::SqliteTransaction::Of(unit));
  }

 private:
  static std::vector<std::pair<std::string, int64_t>> KindValues() {
    std::vector<std::pair<std::string, int64_t>> kinds;
    const auto* d = v1::ResourceKind_descriptor();
    for (int i = 1; i < d->value_count(); ++i) kinds.push_back({d->value(i)->name(), d->value(i)->number()});
    return kinds;
  }

  store::Database* db_;
  store::SqliteUnitOfWork unit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SupportRepository>> CreateSqliteSupportRepository(store::Database* db) {
  auto repo = std::make_unique<SqliteSupportRepository>(db);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<SupportRepository>(std::move(repo));
}

}  // namespace clustergov::support

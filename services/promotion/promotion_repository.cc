#include "services/promotion/promotion_repository.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::promotion {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;
using store::Etag;
using store::RevisionOf;
using store::SelectAll;
using store::SelectOne;

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& Service() {
  return *v1::PromotionOrg::descriptor()->file()->FindServiceByName("PromotionService");
}

// The schema, written for SQLite and the same on PostgreSQL (store::SameSchema).
const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE orgs (
  id TEXT PRIMARY KEY,
  uscc TEXT NOT NULL UNIQUE,
  state INTEGER NOT NULL,
  legal_form INTEGER NOT NULL,
  display_name_zh TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE designations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org TEXT NOT NULL,
  cluster TEXT NOT NULL,
  state INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX designations_cluster ON designations (cluster, state);
CREATE UNIQUE INDEX designations_one_active ON designations (cluster) WHERE state = 2;
CREATE TABLE reports (
  id TEXT PRIMARY KEY,
  cluster TEXT NOT NULL,
  year INTEGER NOT NULL,
  org TEXT NOT NULL,
  state INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE evaluations (
  org TEXT NOT NULL,
  year INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (org, year)
);
CREATE TABLE cluster_sync (
  cluster TEXT PRIMARY KEY
);
)sql"},
      // The clusters service follows the designation events (no sync to retry), in the order of
      // each cluster's designation sequence.
      {2, R"sql(
DROP TABLE cluster_sync;
CREATE TABLE cluster_sequence (
  cluster TEXT PRIMARY KEY,
  sequence INTEGER NOT NULL
);
)sql"},
  };
  return *migrations;
}

const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema(SqliteMigrations()));
  return *migrations;
}

int64_t NowMicros() { return store::NowMicros(); }

class SqliteTx : public PromotionTx {
 public:
  explicit SqliteTx(store::SqlTransaction& tx) : PromotionTx(tx), c_(tx.connection()) {}

  absl::StatusOr<std::optional<v1::PromotionOrg>> GetOrg(const std::string& id) override {
    return SelectOne<v1::PromotionOrg>(c_, "SELECT data FROM orgs WHERE id = ?", [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::StatusOr<bool> UsccTaken(const std::string& uscc, const std::string& except_id) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("SELECT 1 FROM orgs WHERE uscc = ? AND id != ?"));
    stmt.Bind(1, uscc).Bind(2, except_id);
    return stmt.Step();
  }
  absl::Status PutOrg(v1::PromotionOrg& org, bool create) override {
    auto now = TimeUtil::MicrosecondsToTimestamp(NowMicros());
    org.set_etag(Etag(create ? 1 : RevisionOf(org.etag()) + 1));
    *org.mutable_update_time() = now;
    if (create) *org.mutable_create_time() = now;
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare(
        "INSERT INTO orgs (id, uscc, state, legal_form, display_name_zh, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
        " (id) DO UPDATE SET uscc = excluded.uscc, state = excluded.state, legal_form = excluded.legal_form,"
        " display_name_zh = excluded.display_name_zh, data = excluded.data"));
    stmt.Bind(1, org.name().substr(14))
        .Bind(2, org.uscc())
        .Bind(3, static_cast<int64_t>(org.state()))
        .Bind(4, static_cast<int64_t>(org.legal_form()))
        .Bind(5, org.display_name_zh())
        .BindBlob(6, org.SerializeAsString());
    return stmt.Run();
  }
  absl::StatusOr<std::optional<v1::Designation>> GetDesignation(int64_t id) override {
    return SelectOne<v1::Designation>(c_, "SELECT data FROM designations WHERE id = ?",
                                      [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::StatusOr<std::optional<v1::Designation>> ActiveDesignation(const std::string& cluster) override {
    return SelectOne<v1::Designation>(c_, "SELECT data FROM designations WHERE cluster = ? AND state = 2",
                                      [&](store::Statement& s) { s.Bind(1, cluster); });
  }
  absl::StatusOr<bool> HasPending(const std::string& org, const std::string& cluster) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("SELECT 1 FROM designations WHERE org = ? AND cluster = ? AND state = 1"));
    stmt.Bind(1, org).Bind(2, cluster);
    return stmt.Step();
  }
  absl::Status PutDesignation(v1::Designation& d) override {
    int64_t id = 0;
    if (d.name().empty()) {
      CG_ASSIGN_OR_RETURN(auto ins, c_.Prepare("INSERT INTO designations (org, cluster, state, data) VALUES (?, ?, 0, '') RETURNING id"));
      ins.Bind(1, d.promotion_org()).Bind(2, d.cluster());
      CG_ASSIGN_OR_RETURN(id, store::InsertedId(ins));
      d.set_name(absl::StrCat("designations/", id));
      d.set_etag(Etag(1));
    } else {
      id = std::stoll(d.name().substr(13));
      d.set_etag(Etag(RevisionOf(d.etag()) + 1));
    }
    CG_ASSIGN_OR_RETURN(auto up, c_.Prepare("UPDATE designations SET state = ?, data = ? WHERE id = ?"));
    up.Bind(1, static_cast<int64_t>(d.state())).BindBlob(2, d.SerializeAsString()).Bind(3, id);
    absl::Status s = up.Run();
    if (absl::IsAlreadyExists(s)) {
      return absl::FailedPreconditionError(absl::StrCat(d.cluster(), " already has an active promotion organization"));
    }
    return s;
  }
  absl::StatusOr<std::optional<v1::AnnualReport>> GetReport(const std::string& id) override {
    return SelectOne<v1::AnnualReport>(c_, "SELECT data FROM reports WHERE id = ?",
                                       [&](store::Statement& s) { s.Bind(1, id); });
  }
  absl::Status PutReport(v1::AnnualReport& r, bool create) override {
    r.set_etag(Etag(create ? 1 : RevisionOf(r.etag()) + 1));
    *r.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(NowMicros());
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare(
        "INSERT INTO reports (id, cluster, year, org, state, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO"
        " UPDATE SET org = excluded.org, state = excluded.state, data = excluded.data"));
    stmt.Bind(1, r.name().substr(14))
        .Bind(2, r.cluster())
        .Bind(3, static_cast<int64_t>(r.year()))
        .Bind(4, r.promotion_org())
        .Bind(5, static_cast<int64_t>(r.state()))
        .BindBlob(6, r.SerializeAsString());
    return stmt.Run();
  }
  absl::StatusOr<bool> HasEvaluation(const std::string& org, int year) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("SELECT 1 FROM evaluations WHERE org = ? AND year = ?"));
    stmt.Bind(1, org).Bind(2, static_cast<int64_t>(year));
    return stmt.Step();
  }
  absl::Status PutEvaluation(const std::string& org, const v1::Evaluation& e) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("INSERT INTO evaluations (org, year, data) VALUES (?, ?, ?)"));
    stmt.Bind(1, org).Bind(2, static_cast<int64_t>(e.year())).BindBlob(3, e.SerializeAsString());
    return stmt.Run();
  }
  absl::StatusOr<int64_t> NextClusterSequence(const std::string& cluster) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("INSERT INTO cluster_sequence (cluster, sequence) VALUES (?, 1)"
                                              " ON CONFLICT (cluster) DO UPDATE SET sequence = cluster_sequence.sequence + 1"
                                              " RETURNING sequence"));
    stmt.Bind(1, cluster);
    return store::InsertedId(stmt);
  }

 private:
  Connection& c_;
};

class SqlitePromotionRepository : public PromotionRepository {
 public:
  explicit SqlitePromotionRepository(store::Store* db) : db_(db), unit_(db, Service()) {}

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    return db_->Migrate("promotion", Migrations());
  }

  const std::vector<FilterField>& OrgFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"legal_form",
         FilterField::Type::kEnum,
         "o.legal_form",
         {{"ASSOCIATION", 1}, {"ALLIANCE", 2}, {"COMPANY", 3}, {"PRIVATE_NON_ENTERPRISE", 4}, {"CONSORTIUM", 5}}},
        {"state", FilterField::Type::kEnum, "o.state", {{"ACTIVE", 1}, {"DEREGISTERED", 2}}},
        {"display_name_zh", FilterField::Type::kString, "o.display_name_zh", {}},
        {"uscc", FilterField::Type::kString, "o.uscc", {}},
    };
    return *fields;
  }
  const std::vector<FilterField>& DesignationFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"cluster", FilterField::Type::kString, "d.cluster", {}},
        {"promotion_org", FilterField::Type::kString, "d.org", {}},
        {"state",
         FilterField::Type::kEnum,
         "d.state",
         {{"PENDING", 1}, {"ACTIVE", 2}, {"REJECTED", 3}, {"ENDED", 4}, {"REVOKED", 5}, {"WITHDRAWN", 6}}},
    };
    return *fields;
  }
  const std::vector<FilterField>& ReportFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"cluster", FilterField::Type::kString, "r.cluster", {}},
        {"year", FilterField::Type::kInt, "r.year", {}},
        {"promotion_org", FilterField::Type::kString, "r.org", {}},
        {"state", FilterField::Type::kEnum, "r.state", {{"SUBMITTED", 1}, {"RETURNED", 2}, {"ACCEPTED", 3}, {"OVERDUE", 4}}},
    };
    return *fields;
  }

  absl::StatusOr<std::optional<v1::PromotionOrg>> GetOrg(const std::string& id) override {
    return Read<std::optional<v1::PromotionOrg>>([&](SqliteTx& tx) { return tx.GetOrg(id); });
  }
  absl::StatusOr<std::vector<v1::PromotionOrg>> ListOrgs(const ListQuery& q) override {
    return List<v1::PromotionOrg>("SELECT o.data FROM orgs o WHERE o.id > ? AND ", q, " ORDER BY o.id LIMIT ?");
  }
  absl::StatusOr<std::optional<v1::Designation>> GetDesignation(int64_t id) override {
    return Read<std::optional<v1::Designation>>([&](SqliteTx& tx) { return tx.GetDesignation(id); });
  }
  absl::StatusOr<std::optional<v1::Designation>> ActiveDesignation(const std::string& cluster) override {
    return Read<std::optional<v1::Designation>>([&](SqliteTx& tx) { return tx.ActiveDesignation(cluster); });
  }
  absl::StatusOr<std::vector<v1::Designation>> ListDesignations(const ListQuery& q) override {
    return List<v1::Designation>("SELECT d.data FROM designations d WHERE printf('%020d', d.id) > ? AND ", q,
                                 " ORDER BY d.id LIMIT ?");
  }
  absl::StatusOr<std::vector<v1::Designation>> ActiveDesignations() override {
    return db_->ReadResult<std::vector<v1::Designation>>([&](Connection& c) {
      return SelectAll<v1::Designation>(c, "SELECT data FROM designations WHERE state = 2 ORDER BY cluster",
                                        [](store::Statement&) {});
    });
  }
  absl::StatusOr<std::optional<v1::AnnualReport>> GetReport(const std::string& id) override {
    return Read<std::optional<v1::AnnualReport>>([&](SqliteTx& tx) { return tx.GetReport(id); });
  }
  absl::StatusOr<std::vector<v1::AnnualReport>> ListReports(const ListQuery& q) override {
    return List<v1::AnnualReport>("SELECT r.data FROM reports r WHERE r.id > ? AND ", q, " ORDER BY r.id LIMIT ?");
  }
  absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(const ListQuery& q) override {
    return db_->ReadResult<std::vector<v1::Evaluation>>([&](Connection& c) {
      return SelectAll<v1::Evaluation>(c, "SELECT data FROM evaluations WHERE org = ? AND printf('%06d', year) > ?"
                                          " ORDER BY year LIMIT ?",
                                        [&](store::Statement& s) {
                                          s.Bind(1, q.scope).Bind(2, q.after).Bind(3, static_cast<int64_t>(q.limit + 1));
                                        });
    });
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }
  std::unique_ptr<PromotionTx> Bind(store::Transaction& unit) override {
    return std::make_unique<SqliteTx>(store::SqlTransaction::Of(unit));
  }

 private:
  template <typename T>
  absl::StatusOr<T> Read(const std::function<absl::StatusOr<T>(SqliteTx&)>& fn) {
    // The typed reads on a read connection: no write context, nothing audited.
    static const store::WriteContext kNoWrite;
    return db_->ReadResult<T>([&](Connection& c) {
      store::SqlTransaction read(c, kNoWrite, Service());
      SqliteTx tx(read);
      return fn(tx);
    });
  }

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

absl::StatusOr<std::unique_ptr<PromotionRepository>> CreatePromotionRepository(store::Store* db) {
  auto repo = std::make_unique<SqlitePromotionRepository>(db);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<PromotionRepository>(std::move(repo));
}

}  // namespace clustergov::promotion

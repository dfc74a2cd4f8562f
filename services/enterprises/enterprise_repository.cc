#include "services/enterprises/enterprise_repository.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/records.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::enterprises {
namespace {

using google::protobuf::util::TimeUtil;
using store::Connection;
using store::SqlTransaction;

// The gRPC service whose calls this store records.
const google::protobuf::ServiceDescriptor& Service() {
  return *v1::Enterprise::descriptor()->file()->FindServiceByName("EnterprisesService");
}

// The schema, written for SQLite and the same on PostgreSQL (store::SameSchema).
const std::vector<store::Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<store::Migration>{
      {1, R"sql(
CREATE TABLE enterprises (
  uscc TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  state INTEGER NOT NULL,
  region TEXT NOT NULL,
  industry TEXT NOT NULL,
  size_class INTEGER NOT NULL,
  listing_status INTEGER NOT NULL,
  employees INTEGER NOT NULL,
  legal_name_zh TEXT NOT NULL,
  name_en TEXT NOT NULL,
  sample INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX enterprises_region ON enterprises (region, uscc);
CREATE TABLE memberships (
  uscc TEXT NOT NULL REFERENCES enterprises (uscc),
  cluster_id TEXT NOT NULL,
  role INTEGER NOT NULL,
  role_name TEXT NOT NULL,
  chain_segment TEXT NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (uscc, cluster_id)
);
CREATE INDEX memberships_cluster ON memberships (cluster_id, uscc);
CREATE INDEX memberships_role ON memberships (role_name, uscc);
CREATE TABLE certifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uscc TEXT NOT NULL REFERENCES enterprises (uscc),
  kind INTEGER NOT NULL,
  kind_name TEXT NOT NULL,
  issuing_department TEXT NOT NULL,
  grant_date TEXT NOT NULL,
  expiry_date TEXT NOT NULL,
  revoked INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX certifications_uscc ON certifications (uscc, kind);
CREATE INDEX certifications_kind ON certifications (kind_name, revoked, expiry_date);
CREATE TABLE supply_links (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  supplier TEXT NOT NULL,
  buyer TEXT NOT NULL,
  cluster_id TEXT NOT NULL,
  product TEXT NOT NULL,
  data BLOB NOT NULL,
  UNIQUE (supplier, buyer, cluster_id, product)
);
CREATE INDEX supply_links_buyer ON supply_links (buyer);
)sql"},
      // Filtered lists over 100k enterprises (docs/benchmarks.md): region + size class, industry.
      {2, R"sql(
CREATE INDEX enterprises_region_size ON enterprises (region, size_class, uscc);
CREATE INDEX enterprises_industry ON enterprises (industry, uscc);
)sql"},
      // Annual output (万元) for cluster indicators; region employment for cluster strength
      // (a covering index: the per-region sums read no table rows).
      {3, R"sql(
ALTER TABLE enterprises ADD COLUMN annual_output INTEGER NOT NULL DEFAULT 0;
CREATE INDEX enterprises_state_region ON enterprises (state, region, employees);
)sql"},
      // Expiry stored by the deadline job (docs/events.md "Scheduled deadlines").
      {4, R"sql(
ALTER TABLE certifications ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX certifications_due ON certifications (expired, revoked, expiry_date);
)sql"},
  };
  return *migrations;
}

const store::Migrations& Migrations() {
  static const auto* migrations = new store::Migrations(store::SameSchema(SqliteMigrations()));
  return *migrations;
}

// The calendar day ("YYYY-MM-DD", China Standard Time) of a timestamp; "" when unset.
std::string CstDate(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(t.seconds()), absl::FixedTimeZone(8 * 3600));
}

using store::Etag;
using store::ParseStored;
using store::RevisionOf;
using store::SelectAll;
using store::SelectOne;

class SqliteView : public WriteView {
 public:
  explicit SqliteView(Connection& c) : c_(c) {}

  absl::StatusOr<std::optional<v1::Enterprise>> Enterprise(const std::string& uscc) override {
    return SelectOne<v1::Enterprise>(c_, "SELECT data FROM enterprises WHERE uscc = ?",
                                     [&](store::Statement& s) { s.Bind(1, uscc); });
  }
  absl::StatusOr<std::optional<v1::Membership>> Membership(const std::string& uscc,
                                                           const std::string& cluster_id) override {
    return SelectOne<v1::Membership>(c_, "SELECT data FROM memberships WHERE uscc = ? AND cluster_id = ?",
                                     [&](store::Statement& s) { s.Bind(1, uscc).Bind(2, cluster_id); });
  }
  absl::StatusOr<std::vector<v1::Certification>> Certifications(const std::string& uscc) override {
    return SelectAll<v1::Certification>(c_, "SELECT data FROM certifications WHERE uscc = ? ORDER BY id",
                                        [&](store::Statement& s) { s.Bind(1, uscc); });
  }
  absl::StatusOr<bool> SupplyLinkExists(const v1::SupplyLink& l) override {
    CG_ASSIGN_OR_RETURN(auto stmt, c_.Prepare("SELECT 1 FROM supply_links WHERE supplier = ? AND buyer = ? AND"
                                              " cluster_id = ? AND product = ?"));
    stmt.Bind(1, l.supplier()).Bind(2, l.buyer()).Bind(3, l.cluster().substr(9)).Bind(4, l.product());
    return stmt.Step();
  }

 private:
  Connection& c_;
};

class SqliteEnterpriseRepository : public EnterpriseRepository {
 public:
  explicit SqliteEnterpriseRepository(store::Store* db) : db_(db), unit_(db, Service()) {}

  absl::Status Migrate() {
    CG_RETURN_IF_ERROR(unit_.Migrate());
    CG_RETURN_IF_ERROR(db_->Migrate("enterprises", Migrations()));
    return PublishExisting();
  }

  // The events of what was recorded before this service published events: every membership as
  // joined, every certification not revoked as granted (with its validity, which tells whether
  // it is still held).
  absl::Status PublishExisting() {
    return unit_.PublishOnce("memberships and certifications", [&](SqlTransaction& tx) -> absl::Status {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto certs, SelectAll<v1::Certification>(
                                          c, "SELECT data FROM certifications WHERE revoked = 0 ORDER BY id",
                                          [](store::Statement&) {}));
      for (const auto& cert : certs) {
        const std::string uscc = cert.name().substr(12, cert.name().find('/', 12) - 12);
        CG_RETURN_IF_ERROR(PublishCertification(tx, uscc, std::nullopt, cert, RevisionOf(cert.etag())));
      }
      CG_ASSIGN_OR_RETURN(auto memberships, SelectAll<v1::Membership>(
                                                c, "SELECT data FROM memberships ORDER BY uscc, cluster_id",
                                                [](store::Statement&) {}));
      for (const auto& ms : memberships) {
        CG_RETURN_IF_ERROR(PublishMembership(tx, ms, std::nullopt, ms.role(), RevisionOf(ms.etag())));
      }
      return absl::OkStatus();
    });
  }

  const std::vector<FilterField>& EnterpriseFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"region", FilterField::Type::kString, "e.region", {}},
        {"industry", FilterField::Type::kString, "e.industry", {}},
        {"size_class", FilterField::Type::kEnum, "e.size_class", {{"LARGE", 1}, {"MEDIUM", 2}, {"SMALL", 3}, {"MICRO", 4}}},
        {"listing_status",
         FilterField::Type::kEnum,
         "e.listing_status",
         {{"UNLISTED", 1}, {"MAIN_BOARD", 2}, {"STAR_MARKET", 3}, {"CHINEXT", 4}, {"BEIJING_EXCHANGE", 5},
          {"NEEQ", 6}, {"OVERSEAS", 7}}},
        {"state", FilterField::Type::kEnum, "e.state", {{"ACTIVE", 1}, {"DEREGISTERED", 2}}},
        {"legal_name_zh", FilterField::Type::kString, "e.legal_name_zh", {}},
        {"name_en", FilterField::Type::kString, "e.name_en", {}},
        {"sample", FilterField::Type::kBool, "e.sample", {}},
        {"employees", FilterField::Type::kInt, "e.employees", {}},
        {"cluster", FilterField::Type::kRepeatedString,
         // The prefix is stripped from the bound value, not the column, so memberships_cluster is used.
         "e.uscc IN (SELECT m.uscc FROM memberships m WHERE m.cluster_id = substr(?, 10))", {}},
        {"role", FilterField::Type::kRepeatedString,
         "EXISTS (SELECT 1 FROM memberships m WHERE m.uscc = e.uscc AND m.role_name = ?)", {}},
        {"certification", FilterField::Type::kRepeatedString,
         "EXISTS (SELECT 1 FROM certifications c WHERE c.uscc = e.uscc AND c.kind_name = ? AND c.revoked = 0"
         " AND c.grant_date <= date('now', '+8 hours') AND c.expiry_date >= date('now', '+8 hours'))",
         {}},
    };
    return *fields;
  }

  const std::vector<FilterField>& MemberFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"role", FilterField::Type::kEnum, "m.role", {{"LEAD_ENTERPRISE", 1}, {"CHAIN_LEADER", 2}, {"MEMBER", 3}}},
        {"chain_segment", FilterField::Type::kString, "m.chain_segment", {}},
    };
    return *fields;
  }

  const std::vector<FilterField>& CertificationFilterFields() const override {
    static const auto* fields = [] {
      std::vector<std::pair<std::string, int64_t>> kinds;
      const auto* d = v1::CertificationKind_descriptor();
      for (int i = 1; i < d->value_count(); ++i) kinds.push_back({d->value(i)->name(), d->value(i)->number()});
      // state is computed: REVOKED beats EXPIRED beats VALID.
      return new std::vector<FilterField>{
          {"kind", FilterField::Type::kEnum, "c.kind", kinds},
          {"state",
           FilterField::Type::kEnum,
           "(CASE WHEN c.revoked = 1 THEN 3 WHEN c.expiry_date < date('now', '+8 hours') THEN 2 ELSE 1 END)",
           {{"VALID", 1}, {"EXPIRED", 2}, {"REVOKED", 3}}},
          {"issuing_department", FilterField::Type::kString, "c.issuing_department", {}},
      };
    }();
    return *fields;
  }

  const std::vector<FilterField>& SupplyLinkFilterFields() const override {
    static const auto* fields = new std::vector<FilterField>{
        {"supplier", FilterField::Type::kString, "l.supplier", {}},
        {"buyer", FilterField::Type::kString, "l.buyer", {}},
        {"cluster", FilterField::Type::kString, "('clusters/' || l.cluster_id)", {}},
        {"product", FilterField::Type::kString, "l.product", {}},
    };
    return *fields;
  }

  absl::StatusOr<std::optional<v1::Enterprise>> GetEnterprise(const std::string& uscc) override {
    return db_->ReadResult<std::optional<v1::Enterprise>>([&](Connection& c) { return SqliteView(c).Enterprise(uscc); });
  }

  absl::StatusOr<std::vector<v1::Enterprise>> ListEnterprises(const ListQuery& q) override {
    return db_->ReadResult<std::vector<v1::Enterprise>>([&](Connection& c) {
      return SelectAll<v1::Enterprise>(
          c,
          absl::StrCat("SELECT e.data FROM enterprises e WHERE e.uscc > ? AND ",
                       q.include_inactive ? "1 = 1" : "e.state = 1", " AND ", q.filter.where, " ORDER BY e.uscc LIMIT ?"),
          [&](store::Statement& s) {
            s.Bind(1, q.after);
            s.BindAll(2, q.filter.args);
            s.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          });
    });
  }

  absl::StatusOr<std::vector<v1::Membership>> ListMemberships(const ListQuery& q, bool by_cluster) override {
    // Keyset on the other half of the key: uscc within a cluster, cluster id within an enterprise.
    const char* scope_col = by_cluster ? "m.cluster_id" : "m.uscc";
    const char* key_col = by_cluster ? "m.uscc" : "m.cluster_id";
    return db_->ReadResult<std::vector<v1::Membership>>([&](Connection& c) {
      return SelectAll<v1::Membership>(
          c,
          absl::StrCat("SELECT m.data FROM memberships m JOIN enterprises e ON e.uscc = m.uscc WHERE e.state = 1 AND ",
                       scope_col, " = ? AND ", key_col, " > ? AND ", q.filter.where, " ORDER BY ", key_col,
                       " LIMIT ?"),
          [&](store::Statement& s) {
            s.Bind(1, q.scope).Bind(2, q.after);
            s.BindAll(3, q.filter.args);
            s.Bind(3 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          });
    });
  }

  absl::StatusOr<std::vector<v1::Certification>> ListCertifications(const ListQuery& q) override {
    int64_t after = q.after.empty() ? 0 : std::stoll(q.after);
    return db_->ReadResult<std::vector<v1::Certification>>([&](Connection& c) {
      return SelectAll<v1::Certification>(
          c,
          absl::StrCat("SELECT c.data FROM certifications c WHERE (? = '' OR c.uscc = ?) AND c.id > ? AND ",
                       q.filter.where, " ORDER BY c.id LIMIT ?"),
          [&](store::Statement& s) {
            s.Bind(1, q.scope).Bind(2, q.scope).Bind(3, after);
            s.BindAll(4, q.filter.args);
            s.Bind(4 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          });
    });
  }

  absl::StatusOr<std::vector<v1::SupplyLink>> ListSupplyLinks(const ListQuery& q) override {
    int64_t after = q.after.empty() ? 0 : std::stoll(q.after);
    return db_->ReadResult<std::vector<v1::SupplyLink>>([&](Connection& c) {
      return SelectAll<v1::SupplyLink>(
          c, absl::StrCat("SELECT l.data FROM supply_links l WHERE l.id > ? AND ", q.filter.where,
                          " ORDER BY l.id LIMIT ?"),
          [&](store::Statement& s) {
            s.Bind(1, after);
            s.BindAll(2, q.filter.args);
            s.Bind(2 + static_cast<int>(q.filter.args.size()), static_cast<int64_t>(q.limit + 1));
          });
    });
  }

  absl::StatusOr<std::optional<v1::SupplyLink>> GetSupplyLink(int64_t id) override {
    return db_->ReadResult<std::optional<v1::SupplyLink>>([&](Connection& c) {
      return SelectOne<v1::SupplyLink>(c, "SELECT data FROM supply_links WHERE id = ?",
                                       [&](store::Statement& s) { s.Bind(1, id); });
    });
  }

  absl::StatusOr<PipelineCounts> Pipeline(const std::string& cluster_id, const std::string& today) override {
    return db_->ReadResult<PipelineCounts>([&](Connection& c) -> absl::StatusOr<PipelineCounts> {
      // The enterprises in scope: active, and members of the cluster when one is given.
      const std::string scope =
          "SELECT e.uscc, e.size_class FROM enterprises e WHERE e.state = 1 AND (? = '' OR EXISTS (SELECT 1 FROM"
          " memberships m WHERE m.uscc = e.uscc AND m.cluster_id = ?))";
      PipelineCounts out;
      auto pairs = [&](const std::string& sql, bool with_today,
                       std::vector<std::pair<int, int>>* into) -> absl::Status {
        CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
        // Placeholders: the two dates first (when present), every other one is the cluster id.
        int placeholders = static_cast<int>(std::count(sql.begin(), sql.end(), '?'));
        for (int i = 1; i <= placeholders; ++i) {
          if (with_today && i <= 2) {
            stmt.Bind(i, today);
          } else {
            stmt.Bind(i, cluster_id);
          }
        }
        while (true) {
          CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          into->push_back({static_cast<int>(stmt.Int(0)), static_cast<int>(stmt.Int(1))});
        }
        return absl::OkStatus();
      };
      std::vector<std::pair<int, int>> total;
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT 0, count(*) FROM (", scope, ") s"), false, &total));
      out.enterprise_count = total.empty() ? 0 : total[0].second;
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT s.size_class, count(*) FROM (", scope,
                                            ") s GROUP BY s.size_class ORDER BY s.size_class"),
                               false, &out.sizes));
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT c.kind, count(DISTINCT c.uscc) FROM certifications c WHERE"
                                            " c.revoked = 0 AND c.grant_date <= ? AND c.expiry_date >= ? AND"
                                            " c.uscc IN (SELECT uscc FROM (",
                                            scope, ") s) GROUP BY c.kind ORDER BY c.kind"),
                               true, &out.certifications));
      CG_RETURN_IF_ERROR(pairs(absl::StrCat("SELECT m.role, count(*) FROM memberships m WHERE m.uscc IN"
                                            " (SELECT uscc FROM (",
                                            scope, ") s) AND (? = '' OR m.cluster_id = ?) GROUP BY m.role ORDER BY m.role"),
                               false, &out.roles));
      return out;
    });
  }

  absl::StatusOr<std::vector<MemberGroup>> MemberGroups(const std::string& cluster_id) override {
    return db_->ReadResult<std::vector<MemberGroup>>([&](Connection& c) -> absl::StatusOr<std::vector<MemberGroup>> {
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT e.region, e.size_class, m.role, count(*), sum(e.employees),"
                                               " sum(e.annual_output) FROM memberships m JOIN enterprises e ON"
                                               " e.uscc = m.uscc WHERE m.cluster_id = ? AND e.state = 1 GROUP BY"
                                               " e.region, e.size_class, m.role"));
      stmt.Bind(1, cluster_id);
      std::vector<MemberGroup> out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back({stmt.Text(0), static_cast<int>(stmt.Int(1)), static_cast<int>(stmt.Int(2)),
                       static_cast<int>(stmt.Int(3)), stmt.Int(4), stmt.Int(5)});
      }
      return out;
    });
  }

  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> EmploymentByRegion() override {
    using Rows = std::vector<std::pair<std::string, int64_t>>;
    return db_->ReadResult<Rows>([&](Connection& c) -> absl::StatusOr<Rows> {
      // The covering index (state, region, employees): no table rows are read.
      CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT region, sum(employees) FROM enterprises WHERE state = 1"
                                               " GROUP BY region"));
      Rows out;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back({stmt.Text(0), stmt.Int(1)});
      }
      return out;
    });
  }

  absl::StatusOr<YearFigures> Year(const std::string& cluster_id, const std::string& first,
                                   const std::string& last) override {
    return db_->ReadResult<YearFigures>([&](Connection& c) -> absl::StatusOr<YearFigures> {
      YearFigures out;
      // Certifications held on at least one day of the year: granted by its end, expiring after
      // its start, and not revoked before it began.
      CG_ASSIGN_OR_RETURN(auto certs, c.Prepare(
                                          "SELECT c.uscc, c.kind, c.revoked, c.data FROM certifications c JOIN"
                                          " memberships m ON m.uscc = c.uscc JOIN enterprises e ON e.uscc = c.uscc"
                                          " WHERE m.cluster_id = ? AND e.state = 1 AND c.grant_date <= ? AND"
                                          " c.expiry_date >= ?"));
      certs.Bind(1, cluster_id).Bind(2, last).Bind(3, first);
      std::map<int, std::set<std::string>> holders;
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, certs.Step());
        if (!row) break;
        if (certs.Int(2) != 0) {
          CG_ASSIGN_OR_RETURN(auto cert, ParseStored<v1::Certification>(certs.Blob(3)));
          if (CstDate(cert.revoke_time()) < first) continue;
        }
        holders[static_cast<int>(certs.Int(1))].insert(certs.Text(0));
      }
      for (const auto& [kind, usccs] : holders) out.certifications.push_back({kind, static_cast<int>(usccs.size())});
      // Supply links between active members recorded by the end of the year.
      CG_ASSIGN_OR_RETURN(auto links, c.Prepare(
                                          "SELECT s.size_class, b.size_class, l.data FROM supply_links l JOIN"
                                          " enterprises s ON s.uscc = substr(l.supplier, 13) JOIN enterprises b ON"
                                          " b.uscc = substr(l.buyer, 13) WHERE l.cluster_id = ? AND s.state = 1 AND"
                                          " b.state = 1"));
      links.Bind(1, cluster_id);
      auto sme = [](int64_t size) { return size == v1::MEDIUM || size == v1::SMALL || size == v1::MICRO; };
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, links.Step());
        if (!row) break;
        CG_ASSIGN_OR_RETURN(auto link, ParseStored<v1::SupplyLink>(links.Blob(2)));
        if (CstDate(link.create_time()) > last) continue;
        ++out.supply_links;
        const int64_t a = links.Int(0);
        const int64_t b = links.Int(1);
        if ((a == v1::LARGE && sme(b)) || (b == v1::LARGE && sme(a))) ++out.large_sme_links;
      }
      return out;
    });
  }

  absl::StatusOr<v1::Enterprise> MutateEnterprise(const store::WriteContext& w, const std::string& uscc,
                                                  const EnterpriseMutation& m) override {
    return Run<v1::Enterprise>(w, [&](SqlTransaction& tx, SqliteView& view) -> absl::StatusOr<v1::Enterprise> {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto current, view.Enterprise(uscc));
      CG_ASSIGN_OR_RETURN(auto change, m(current, view));
      v1::Enterprise& e = change.record;
      int64_t revision = current.has_value() ? RevisionOf(current->etag()) + 1 : 1;
      Stamp(&e, revision, !current.has_value());
      e.set_name(absl::StrCat("enterprises/", uscc));
      e.set_uscc(uscc);
      CG_RETURN_IF_ERROR(UpsertEnterprise(c, e, revision));
      CG_RETURN_IF_ERROR(tx.Audit(e.name(), current.has_value() ? current->etag() : "", e.etag()));
      CG_RETURN_IF_ERROR(PublishChanged(tx, e.name(), e.state() != v1::Enterprise::ACTIVE, revision));
      return e;
    });
  }

  absl::StatusOr<v1::Membership> MutateMembership(const store::WriteContext& w, const std::string& uscc,
                                                  const std::string& cluster_id, const MembershipMutation& m) override {
    return Run<v1::Membership>(w, [&](SqlTransaction& tx, SqliteView& view) -> absl::StatusOr<v1::Membership> {
      Connection& c = tx.connection();
      CG_ASSIGN_OR_RETURN(auto current, view.Membership(uscc, cluster_id));
      CG_ASSIGN_OR_RETURN(auto change, m(current, view));
      v1::Membership& ms = change.record;
      ms.set_name(absl::StrCat("enterprises/", uscc, "/memberships/", cluster_id));
      ms.set_enterprise(absl::StrCat("enterprises/", uscc));
      ms.set_cluster(absl::StrCat("clusters/", cluster_id));
      if (change.remove) {
        CG_ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM memberships WHERE uscc = ? AND cluster_id = ?"));
        del.Bind(1, uscc).Bind(2, cluster_id);
        CG_RETURN_IF_ERROR(del.Run());
        // Supply links are within a cluster: leaving it ends the enterprise's links there.
        CG_ASSIGN_OR_RETURN(auto links, c.Prepare("DELETE FROM supply_links WHERE cluster_id = ? AND"
                                                  " (supplier = ? OR buyer = ?)"));
        links.Bind(1, cluster_id).Bind(2, ms.enterprise()).Bind(3, ms.enterprise());
        CG_RETURN_IF_ERROR(links.Run());
        CG_RETURN_IF_ERROR(tx.Audit(ms.name(), current.has_value() ? current->etag() : "", ""));
        if (current.has_value()) {
          CG_RETURN_IF_ERROR(PublishMembership(tx, ms, current->role(), std::nullopt,
                                               RevisionOf(current->etag()) + 1));
        }
        CG_RETURN_IF_ERROR(PublishChanged(tx, ms.enterprise(), false, 0));
        return ms;
      }
      int64_t revision = current.has_value() ? RevisionOf(current->etag()) + 1 : 1;
      int64_t now = store::NowMicros();
      ms.set_etag(Etag(revision));
      *ms.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(now);
      if (!current.has_value()) *ms.mutable_join_time() = ms.update_time();
      CG_ASSIGN_OR_RETURN(auto up, c.Prepare("INSERT INTO memberships (uscc, cluster_id, role, role_name, chain_segment,"
                                             " revision, data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uscc,"
                                             " cluster_id) DO UPDATE SET role = excluded.role, role_name ="
                                             " excluded.role_name, chain_segment = excluded.chain_segment, revision ="
                                             " excluded.revision, data = excluded.data"));
      up.Bind(1, uscc)
          .Bind(2, cluster_id)
          .Bind(3, static_cast<int64_t>(ms.role()))
          .Bind(4, v1::MemberRole_Name(ms.role()))
          .Bind(5, ms.chain_segment())
          .Bind(6, revision)
          .BindBlob(7, ms.SerializeAsString());
      CG_RETURN_IF_ERROR(up.Run());
      CG_RETURN_IF_ERROR(tx.Audit(ms.name(), current.has_value() ? current->etag() : "", ms.etag()));
      if (!current.has_value() || current->role() != ms.role()) {
        CG_RETURN_IF_ERROR(PublishMembership(
            tx, ms, current.has_value() ? std::optional<v1::MemberRole>(current->role()) : std::nullopt, ms.role(),
            revision));
      }
      CG_RETURN_IF_ERROR(PublishChanged(tx, ms.enterprise(), false, 0));
      return ms;
    });
  }

  absl::StatusOr<v1::Certification> MutateCertification(const store::WriteContext& w, const std::string& uscc,
                                                        int64_t id, const CertificationMutation& m) override {
    return Run<v1::Certification>(w, [&](SqlTransaction& tx, SqliteView& view) -> absl::StatusOr<v1::Certification> {
      Connection& c = tx.connection();
      std::optional<v1::Certification> current;
      if (id != 0) {
        CG_ASSIGN_OR_RETURN(current, SelectOne<v1::Certification>(
                                         c, "SELECT data FROM certifications WHERE id = ? AND uscc = ?",
                                         [&](store::Statement& s) { s.Bind(1, id).Bind(2, uscc); }));
      }
      CG_ASSIGN_OR_RETURN(auto change, m(current, view));
      v1::Certification& cert = change.record;
      int64_t revision = current.has_value() ? RevisionOf(current->etag()) + 1 : 1;
      cert.set_etag(Etag(revision));
      int64_t row_id = id;
      if (!current.has_value()) {
        *cert.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
        CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO certifications (uscc, kind, kind_name, issuing_department,"
                                                " grant_date, expiry_date, revoked, revision, data) VALUES (?, ?, ?, ?,"
                                                " ?, ?, 0, 1, '') RETURNING id"));
        ins.Bind(1, uscc)
            .Bind(2, static_cast<int64_t>(cert.kind()))
            .Bind(3, v1::CertificationKind_Name(cert.kind()))
            .Bind(4, cert.issuing_department())
            .Bind(5, DateKey(cert.grant_date()))
            .Bind(6, DateKey(cert.expiry_date()));
        CG_ASSIGN_OR_RETURN(row_id, store::InsertedId(ins));
      }
      cert.set_name(absl::StrCat("enterprises/", uscc, "/certifications/", row_id));
      CG_ASSIGN_OR_RETURN(auto up, c.Prepare("UPDATE certifications SET revoked = ?, revision = ?, data = ? WHERE id = ?"));
      up.Bind(1, static_cast<int64_t>(cert.state() == v1::Certification::REVOKED ? 1 : 0))
          .Bind(2, revision)
          .BindBlob(3, cert.SerializeAsString())
          .Bind(4, row_id);
      CG_RETURN_IF_ERROR(up.Run());
      CG_RETURN_IF_ERROR(tx.Audit(cert.name(), current.has_value() ? current->etag() : "", cert.etag()));
      CG_RETURN_IF_ERROR(PublishCertification(tx, uscc, current, cert, revision));
      return cert;
    });
  }

  absl::StatusOr<v1::SupplyLink> MutateSupplyLink(const store::WriteContext& w, int64_t id,
                                                  const SupplyLinkMutation& m) override {
    return Run<v1::SupplyLink>(w, [&](SqlTransaction& tx, SqliteView& view) -> absl::StatusOr<v1::SupplyLink> {
      Connection& c = tx.connection();
      std::optional<v1::SupplyLink> current;
      if (id != 0) {
        CG_ASSIGN_OR_RETURN(current, SelectOne<v1::SupplyLink>(c, "SELECT data FROM supply_links WHERE id = ?",
                                                               [&](store::Statement& s) { s.Bind(1, id); }));
      }
      CG_ASSIGN_OR_RETURN(auto change, m(current, view));
      v1::SupplyLink& link = change.record;
      if (change.remove) {
        CG_ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM supply_links WHERE id = ?"));
        del.Bind(1, id);
        CG_RETURN_IF_ERROR(del.Run());
        CG_RETURN_IF_ERROR(tx.Audit(link.name(), "", ""));
        return link;
      }
      *link.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
      CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO supply_links (supplier, buyer, cluster_id, product, data)"
                                              " VALUES (?, ?, ?, ?, '') RETURNING id"));
      ins.Bind(1, link.supplier()).Bind(2, link.buyer()).Bind(3, link.cluster().substr(9)).Bind(4, link.product());
      CG_ASSIGN_OR_RETURN(int64_t new_id, store::InsertedId(ins));
      link.set_name(absl::StrCat("supplyLinks/", new_id));
      CG_ASSIGN_OR_RETURN(auto up, c.Prepare("UPDATE supply_links SET data = ? WHERE id = ?"));
      up.BindBlob(1, link.SerializeAsString()).Bind(2, new_id);
      CG_RETURN_IF_ERROR(up.Run());
      CG_RETURN_IF_ERROR(tx.Audit(link.name(), "", ""));
      return link;
    });
  }

  absl::StatusOr<std::vector<v1::Certification>> ExpireCertifications(const store::WriteContext& w,
                                                                      const std::string& today, int limit,
                                                                      const ExpiredCertification& expired) override {
    return unit_.Run<std::vector<v1::Certification>>(
        w, [&](SqlTransaction& tx) -> absl::StatusOr<std::vector<v1::Certification>> {
          Connection& c = tx.connection();
          CG_ASSIGN_OR_RETURN(auto due, SelectAll<v1::Certification>(
                                            c, "SELECT data FROM certifications WHERE expired = 0 AND revoked = 0 AND"
                                               " expiry_date < ? ORDER BY expiry_date, id LIMIT ?",
                                            [&](store::Statement& s) { s.Bind(1, today).Bind(2, limit); }));
          for (auto& cert : due) {
            const std::string before = cert.etag();
            const int64_t revision = RevisionOf(before) + 1;
            cert.set_state(v1::Certification::EXPIRED);
            cert.set_etag(Etag(revision));
            const int64_t id = std::stoll(cert.name().substr(cert.name().rfind('/') + 1));
            CG_ASSIGN_OR_RETURN(auto up, c.Prepare("UPDATE certifications SET expired = 1, revision = ?, data = ?"
                                                   " WHERE id = ?"));
            up.Bind(1, revision).BindBlob(2, cert.SerializeAsString()).Bind(3, id);
            CG_RETURN_IF_ERROR(up.Run());
            CG_RETURN_IF_ERROR(tx.Audit(cert.name(), before, cert.etag()));
            const std::string uscc = cert.name().substr(12, cert.name().find('/', 12) - 12);
            CG_ASSIGN_OR_RETURN(auto clusters, c.Prepare("SELECT cluster_id FROM memberships WHERE uscc = ?"
                                                         " ORDER BY cluster_id"));
            clusters.Bind(1, uscc);
            std::vector<std::string> names;
            while (true) {
              CG_ASSIGN_OR_RETURN(bool row, clusters.Step());
              if (!row) break;
              names.push_back(absl::StrCat("clusters/", clusters.Text(0)));
            }
            CG_RETURN_IF_ERROR(expired(tx, cert, names));
          }
          return due;
        });
  }

  absl::StatusOr<int> SeedMissing(const Principal& actor, const std::vector<v1::Enterprise>& enterprises,
                                  const std::vector<v1::Membership>& memberships) override {
    const store::WriteContext seed{&actor, "Seed", "", "",
                                   "seed data: lead enterprises named by the plan (sample credit codes)", nullptr};
    return unit_.Run<int>(seed, [&](SqlTransaction& tx) -> absl::StatusOr<int> {
      Connection& c = tx.connection();
      SqliteView view(c);
      int created = 0;
      for (auto e : enterprises) {
        CG_ASSIGN_OR_RETURN(auto existing, view.Enterprise(e.uscc()));
        if (existing.has_value()) continue;
        Stamp(&e, 1, true);
        CG_RETURN_IF_ERROR(UpsertEnterprise(c, e, 1));
        CG_RETURN_IF_ERROR(tx.Audit(e.name(), "", e.etag()));
        ++created;
      }
      for (auto ms : memberships) {
        std::string uscc = ms.enterprise().substr(12);
        std::string cluster_id = ms.cluster().substr(9);
        CG_ASSIGN_OR_RETURN(auto existing, view.Membership(uscc, cluster_id));
        if (existing.has_value()) continue;
        ms.set_name(absl::StrCat(ms.enterprise(), "/memberships/", cluster_id));
        ms.set_etag(Etag(1));
        *ms.mutable_join_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
        *ms.mutable_update_time() = ms.join_time();
        CG_ASSIGN_OR_RETURN(auto ins, c.Prepare("INSERT INTO memberships (uscc, cluster_id, role, role_name,"
                                                " chain_segment, revision, data) VALUES (?, ?, ?, ?, ?, 1, ?)"));
        ins.Bind(1, uscc)
            .Bind(2, cluster_id)
            .Bind(3, static_cast<int64_t>(ms.role()))
            .Bind(4, v1::MemberRole_Name(ms.role()))
            .Bind(5, ms.chain_segment())
            .BindBlob(6, ms.SerializeAsString());
        CG_RETURN_IF_ERROR(ins.Run());
        CG_RETURN_IF_ERROR(tx.Audit(ms.name(), "", ms.etag()));
        CG_RETURN_IF_ERROR(PublishMembership(tx, ms, std::nullopt, ms.role(), 1));
      }
      return created;
    });
  }

 protected:
  store::UnitOfWork& unit_of_work() override { return unit_; }

 private:
  // What other services cache about an enterprise (registration, memberships) changed. A
  // membership is not part of the enterprise's revision: its change is published with 0.
  static absl::Status PublishChanged(SqlTransaction& tx, const std::string& enterprise, bool deregistered,
                                     int64_t revision) {
    events::v1::EnterpriseChanged e;
    e.set_enterprise(enterprise);
    e.set_deleted(deregistered);
    return tx.Publish(enterprise, e, revision);
  }

  // A unit of work whose body also gets a view of related records.
  template <typename T>
  absl::StatusOr<T> Run(const store::WriteContext& w,
                        const std::function<absl::StatusOr<T>(SqlTransaction&, SqliteView&)>& fn) {
    return unit_.Run<T>(w, [&](SqlTransaction& tx) -> absl::StatusOr<T> {
      SqliteView view(tx.connection());
      return fn(tx, view);
    });
  }

  // MembershipChanged: joined (no `before`), left (no `after`) or a new role.
  static absl::Status PublishMembership(SqlTransaction& tx, const v1::Membership& ms,
                                        std::optional<v1::MemberRole> before, std::optional<v1::MemberRole> after,
                                        int64_t revision) {
    events::v1::MembershipChanged event;
    event.set_enterprise(ms.enterprise());
    event.set_cluster(ms.cluster());
    if (before.has_value()) event.set_previous_role(v1::MemberRole_Name(*before));
    if (after.has_value()) event.set_role(v1::MemberRole_Name(*after));
    return tx.Publish(ms.name(), event, revision);
  }

  // CertificationGranted when `cert` is new, CertificationRevoked when this write revoked it.
  static absl::Status PublishCertification(SqlTransaction& tx, const std::string& uscc,
                                           const std::optional<v1::Certification>& current,
                                           const v1::Certification& cert, int64_t revision) {
    const bool revoked = cert.state() == v1::Certification::REVOKED &&
                         (!current.has_value() || current->state() != v1::Certification::REVOKED);
    if (current.has_value() && !revoked) return absl::OkStatus();
    CG_ASSIGN_OR_RETURN(auto clusters, MemberClusters(tx.connection(), uscc));
    auto publish = [&](auto& event) {
      event.set_certification(cert.name());
      event.set_enterprise(absl::StrCat("enterprises/", uscc));
      event.set_kind(v1::CertificationKind_Name(cert.kind()));
      for (const auto& c : clusters) event.add_clusters(c);
      return tx.Publish(cert.name(), event, revision);
    };
    if (!current.has_value()) {
      events::v1::CertificationGranted event;
      event.set_issuer(cert.issuing_department());
      *event.mutable_valid_until() = ValidUntil(cert.expiry_date());
      return publish(event);
    }
    events::v1::CertificationRevoked event;
    event.set_reason(cert.revoke_reason());
    return publish(event);
  }

  // The clusters an enterprise is a member of, as "clusters/{id}".
  static absl::StatusOr<std::vector<std::string>> MemberClusters(Connection& c, const std::string& uscc) {
    CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare("SELECT cluster_id FROM memberships WHERE uscc = ? ORDER BY cluster_id"));
    stmt.Bind(1, uscc);
    std::vector<std::string> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(absl::StrCat("clusters/", stmt.Text(0)));
    }
    return out;
  }

  // The end of a certification's validity: the start of the day after its expiry date (China
  // Standard Time); unset without an expiry date.
  static google::protobuf::Timestamp ValidUntil(const google::type::Date& expiry) {
    google::protobuf::Timestamp t;
    if (expiry.year() == 0) return t;
    absl::CivilDay day(expiry.year(), expiry.month(), expiry.day());
    t.set_seconds(absl::ToUnixSeconds(absl::FromCivil(day + 1, absl::FixedTimeZone(8 * 3600))));
    return t;
  }

  static void Stamp(v1::Enterprise* e, int64_t revision, bool created) {
    auto now = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    e->set_etag(Etag(revision));
    *e->mutable_update_time() = now;
    if (created) *e->mutable_create_time() = now;
  }

  static absl::Status UpsertEnterprise(Connection& c, const v1::Enterprise& e, int64_t revision) {
    CG_ASSIGN_OR_RETURN(auto up, c.Prepare(
        "INSERT INTO enterprises (uscc, revision, state, region, industry, size_class, listing_status, employees,"
        " legal_name_zh, name_en, sample, data, annual_output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON"
        " CONFLICT (uscc) DO UPDATE SET revision = excluded.revision, state = excluded.state, region ="
        " excluded.region, industry = excluded.industry, size_class = excluded.size_class, listing_status ="
        " excluded.listing_status, employees = excluded.employees, legal_name_zh = excluded.legal_name_zh, name_en"
        " = excluded.name_en, sample = excluded.sample, data = excluded.data, annual_output ="
        " excluded.annual_output"));
    up.Bind(1, e.uscc())
        .Bind(2, revision)
        .Bind(3, static_cast<int64_t>(e.state()))
        .Bind(4, e.region())
        .Bind(5, e.industry())
        .Bind(6, static_cast<int64_t>(e.size_class()))
        .Bind(7, static_cast<int64_t>(e.listing_status()))
        .Bind(8, static_cast<int64_t>(e.employees()))
        .Bind(9, e.legal_name_zh())
        .Bind(10, e.name_en())
        .Bind(11, static_cast<int64_t>(e.sample() ? 1 : 0))
        .BindBlob(12, e.SerializeAsString())
        .Bind(13, e.annual_output_cny_10k());
    return up.Run();
  }

  store::Store* db_;
  store::SqlUnitOfWork unit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EnterpriseRepository>> CreateEnterpriseRepository(store::Store* db) {
  auto repo = std::make_unique<SqliteEnterpriseRepository>(db);
  CG_RETURN_IF_ERROR(repo->Migrate());
  return std::unique_ptr<EnterpriseRepository>(std::move(repo));
}

}  // namespace clustergov::enterprises

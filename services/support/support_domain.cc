#include "services/support/support_domain.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth/principal.h"
#include "common/indicators/indicators.h"
#include "common/list/paging.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/store/audit.h"
#include "common/store/records.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::support {
namespace {

// Writes that move quota (capacity, reservations, allocations, releases) run one at a time across
// replicas: they read-modify-write the same pool rows, which under SERIALIZABLE would mostly fail
// and retry (docs/support.md).
constexpr char kQuotaLock[] = "support:quota";

using google::protobuf::util::TimeUtil;
using State = v1::Application::State;

constexpr size_t kMaxName = 200;
constexpr size_t kMaxLongText = 2000;
constexpr int kMaxItems = 20;
// The largest quantity kept (pool capacity, item, parcel area), in the kind's base unit: sums of
// such amounts, and their products with 10,000 for basis points in 128 bits, never overflow.
constexpr int64_t kMaxQuantity = int64_t{1} << 50;
// Rewards are named in ten-thousand yuan (万元), subsidies counted in fen.
constexpr int64_t kFenPerCny10k = 10000 * 100;
constexpr absl::string_view kPoolLists = "pools";

struct KindInfo {
  v1::ResourceKind kind;
  const char* slug;
  const char* title_zh;
  const char* unit;
  std::vector<std::string> departments;
};

// Reference data: units and the departments responsible for each kind (they set capacity and may
// approve). Water and environmental capacity have no department of their own among the plan's,
// so Development & Reform holds them.
const std::vector<KindInfo>& Kinds() {
  static const auto* kinds = new std::vector<KindInfo>{
      {v1::LAND, "land", "工业用地", "m2", {"industry_it"}},
      {v1::ENERGY, "energy", "用能指标", "kgce", {"energy", "development_reform"}},
      {v1::WATER, "water", "用水指标", "m3", {"development_reform"}},
      {v1::ENVIRONMENT, "environment", "环境容量", "kg", {"development_reform"}},
      {v1::GREEN_POWER, "green_power", "绿电", "kWh", {"energy", "development_reform"}},
      {v1::SUBSIDY, "subsidy", "奖补资金", "fen", {"industry_it"}},
  };
  return *kinds;
}

const std::vector<std::string>& Pollutants() {
  static const auto* p = new std::vector<std::string>{"so2", "nox", "cod", "nh3n", "pm", "voc"};
  return *p;
}

const KindInfo* FindKind(int kind) {
  for (const auto& k : Kinds()) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

bool IsPollutant(absl::string_view p) {
  return std::find(Pollutants().begin(), Pollutants().end(), p) != Pollutants().end();
}

bool ValidParcelId(absl::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

bool ActsForAny(const Principal& p, const std::vector<std::string>& departments) {
  for (const auto& d : departments) {
    if (p.ActsForDepartment(d)) return true;
  }
  return false;
}

absl::StatusOr<int64_t> ParseApplicationName(absl::string_view field, absl::string_view name) {
  return ParseNumberedName(field, name, "applications");
}

absl::Status PermissionDenied(absl::string_view what) { return absl::PermissionDeniedError(what); }

// "{min} to 1125899906842624 (2^50) {unit}": the accepted range of a quantity, for messages.
std::string QuantityRange(int64_t min, absl::string_view unit) {
  return absl::StrCat(min, " to ", kMaxQuantity, " (2^50) ", unit);
}

std::string Hex(uint64_t v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad16)); }

// What an application may ask, checked on create and update (existence of pools at submit).
void ValidateApplication(const v1::Application& a, FieldErrors& errors) {
  if (!absl::StartsWith(a.cluster(), "clusters/") || !IsResourceId(a.cluster().substr(9))) {
    errors.Add("application.cluster", "required: clusters/{cluster_id}");
  }
  CheckText(errors, "application.project_name", a.project_name(), kMaxName, true);
  CheckText(errors, "application.project_description", a.project_description(), kMaxLongText, false);
  if (!refdata::IsRegionCode(a.region())) errors.Add("application.region", "required: a league region code");
  if (a.year() < 2000 || a.year() > 2100) errors.Add("application.year", "required: a year between 2000 and 2100");
  if (a.items_size() == 0 || a.items_size() > kMaxItems) {
    errors.Add("application.items", absl::StrCat("1 to ", kMaxItems, " items"));
  }
  for (int i = 0; i < a.items_size() && i < kMaxItems; ++i) {
    const auto& item = a.items(i);
    std::string f = absl::StrCat("application.items[", i, "]");
    const KindInfo* kind = FindKind(item.kind());
    if (kind == nullptr) {
      errors.Add(f + ".kind", "required: LAND, ENERGY, WATER, ENVIRONMENT, GREEN_POWER or SUBSIDY");
      continue;
    }
    if (item.kind() == v1::ENVIRONMENT) {
      if (!IsPollutant(item.pollutant())) {
        errors.Add(f + ".pollutant", absl::StrCat("required for ENVIRONMENT: one of ", absl::StrJoin(Pollutants(), ", ")));
      }
    } else if (!item.pollutant().empty()) {
      errors.Add(f + ".pollutant", "only for ENVIRONMENT items");
    }
    if (item.parcel_ids_size() > 0) {
      if (item.kind() != v1::LAND) errors.Add(f + ".parcel_ids", "only for LAND items");
      if (item.quantity() != 0) errors.Add(f + ".quantity", "leave empty with parcel_ids: the bundle's area is used");
      std::set<std::string> seen;
      for (int j = 0; j < item.parcel_ids_size(); ++j) {
        if (!ValidParcelId(item.parcel_ids(j))) {
          errors.Add(absl::StrCat(f, ".parcel_ids[", j, "]"), "1-32 of [A-Za-z0-9-]");
        } else if (!seen.insert(item.parcel_ids(j)).second) {
          errors.Add(absl::StrCat(f, ".parcel_ids[", j, "]"), "duplicate parcel");
        }
      }
    } else if (item.quantity() <= 0 || item.quantity() > kMaxQuantity) {
      errors.Add(f + ".quantity", absl::StrCat("required: ", QuantityRange(1, kind->unit)));
    }
  }
  if (!a.reward().empty()) {
    // A reward claim names an evaluation of the application's own cluster and asks for funds only.
    std::string expected_prefix = absl::StrCat(a.cluster(), "/evaluations/");
    int year = 0;
    if (!absl::StartsWith(a.reward(), expected_prefix) ||
        !absl::SimpleAtoi(a.reward().substr(expected_prefix.size()), &year) || year < 2000 || year > 2100) {
      errors.Add("application.reward", absl::StrCat("must be ", a.cluster(), "/evaluations/{year}: an evaluation of the application's cluster"));
    }
    if (!a.applicant().empty() && !absl::StartsWith(a.applicant(), "promotionOrgs/")) {
      errors.Add("application.reward", "a cluster's reward is claimed by its promotion organization");
    }
    for (int i = 0; i < a.items_size() && i < kMaxItems; ++i) {
      if (a.items(i).kind() != v1::SUBSIDY) {
        errors.Add(absl::StrCat("application.items[", i, "].kind"), "a reward claim asks for SUBSIDY only");
      }
    }
  }
}

// A land bundle's quantity is its parcels' total area, from the pool: set on submission so the
// reviewer sees what is asked. FAILED_PRECONDITION naming a parcel the pool does not have.
absl::Status SetBundleArea(const v1::Pool& pool, int index, v1::Item& item) {
  if (item.parcel_ids_size() == 0) return absl::OkStatus();
  int64_t area = 0;
  for (const auto& id : item.parcel_ids()) {
    auto it = std::find_if(pool.parcels().begin(), pool.parcels().end(),
                           [&](const v1::Parcel& p) { return p.id() == id; });
    if (it == pool.parcels().end()) {
      return absl::FailedPreconditionError(absl::StrCat("items[", index, "]: parcel ", id, " is not in ", pool.name()));
    }
    area += it->area_m2();
  }
  item.set_quantity(area);
  return absl::OkStatus();
}

void Record(v1::Application& app, State to, const Principal& p, absl::string_view reason) {
  auto* t = app.add_history();
  t->set_from(app.state());
  t->set_to(to);
  t->mutable_actor()->set_subject(p.subject);
  t->mutable_actor()->set_organization(p.organization);
  for (const auto& r : p.roles) t->mutable_actor()->add_roles(r);
  t->set_reason(std::string(reason));
  *t->mutable_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
  app.set_state(to);
}

absl::Status Illegal(const v1::Application& app, absl::string_view action) {
  return absl::FailedPreconditionError(absl::StrCat("cannot ", action, " ", app.name(), " in state ",
                                                    v1::Application::State_Name(app.state())));
}

// Applies a ledger movement to every item of `app`: reserve, release or allocate. All checks come
// before any write, and the caller's write is atomic, so either every item moves or none does.
absl::Status Move(v1::Application& app, SupportTx& tx, v1::LedgerEntry::Type type) {
  std::map<std::string, v1::Pool> pools;
  for (int i = 0; i < app.items_size(); ++i) {
    auto* item = app.mutable_items(i);
    if (pools.count(item->pool()) == 0) {
      CG_ASSIGN_OR_RETURN(auto pool, tx.GetPool(item->pool()));
      if (!pool.has_value()) {
        return absl::FailedPreconditionError(absl::StrCat("items[", i, "]: there is no pool ", item->pool()));
      }
      pools.emplace(item->pool(), std::move(*pool));
    }
    v1::Pool& pool = pools[item->pool()];
    if (item->parcel_ids_size() > 0) {
      int64_t area = 0;
      for (const auto& id : item->parcel_ids()) {
        auto it = std::find_if(pool.mutable_parcels()->begin(), pool.mutable_parcels()->end(),
                               [&](const v1::Parcel& p) { return p.id() == id; });
        if (it == pool.mutable_parcels()->end()) {
          return absl::FailedPreconditionError(absl::StrCat("items[", i, "]: parcel ", id, " is not in ", pool.name()));
        }
        if (type == v1::LedgerEntry::RESERVE) {
          if (!it->held_by().empty()) {
            return absl::FailedPreconditionError(
                absl::StrCat("items[", i, "]: parcel ", id, " is already held by ", it->held_by()));
          }
          it->set_held_by(app.name());
        } else if (type == v1::LedgerEntry::RELEASE) {
          it->clear_held_by();
        } else {
          it->set_allocated(true);
        }
        area += it->area_m2();
      }
      if (type == v1::LedgerEntry::RESERVE) item->set_quantity(area);
    }
    const int64_t q = item->quantity();
    if (type == v1::LedgerEntry::RESERVE) {
      int64_t free = pool.capacity() - pool.reserved() - pool.allocated();
      if (q > free) {
        const KindInfo* kind = FindKind(item->kind());
        return absl::FailedPreconditionError(absl::StrCat("items[", i, "] (", v1::ResourceKind_Name(item->kind()),
                                                          " from ", pool.name(), ") asks ", q, " ", kind->unit, "; ",
                                                          free, " ", kind->unit, " free"));
      }
      pool.set_reserved(pool.reserved() + q);
    } else if (type == v1::LedgerEntry::RELEASE) {
      pool.set_reserved(pool.reserved() - q);
    } else {
      pool.set_reserved(pool.reserved() - q);
      pool.set_allocated(pool.allocated() + q);
    }
  }
  for (auto& [name, pool] : pools) CG_RETURN_IF_ERROR(tx.PutPool(pool, /*create=*/false));
  for (int i = 0; i < app.items_size(); ++i) {
    v1::LedgerEntry e;
    e.set_pool(app.items(i).pool());
    e.set_application(app.name());
    e.set_item_index(i);
    e.set_type(type);
    e.set_quantity(app.items(i).quantity());
    for (const auto& id : app.items(i).parcel_ids()) e.add_parcel_ids(id);
    CG_RETURN_IF_ERROR(tx.AppendLedger(e));
  }
  return absl::OkStatus();
}

bool IsApplicant(const Principal& p, const v1::Application& app) {
  return p.HasAnyRole({roles::kEnterprise, roles::kPromotionOrg}) && p.organization == app.applicant();
}

bool ReadsAll(const Principal& p) {
  return p.HasAnyRole({roles::kGovernment, roles::kAuditor, roles::kAdmin, roles::kService});
}

}  // namespace

std::string SupportDomain::PoolName(absl::string_view region, int year, v1::ResourceKind kind,
                                    absl::string_view pollutant) {
  const KindInfo* info = FindKind(kind);
  std::string name = absl::StrCat("pools/", region, "-", year, "-", info != nullptr ? info->slug : "unknown");
  if (kind == v1::ENVIRONMENT) absl::StrAppend(&name, "-", pollutant);
  return name;
}

SupportDomain::SupportDomain(std::unique_ptr<SupportRepository> repository, std::unique_ptr<cache::Cache> cache,
                             clusters::ClusterDirectory* clusters, enterprises::EnterpriseDirectory* enterprises,
                             const PageTokenCodec* page_tokens,
                             absl::Duration reservation_lifetime)
    : repo_(std::move(repository)),
      cache_(std::move(cache)),
      clusters_(clusters),
      enterprises_(enterprises),
      page_tokens_(page_tokens),
      reservation_lifetime_(reservation_lifetime) {}

cache::PendingWrite SupportDomain::PoolsWrite() {
  return cache::PendingWrite(cache_.get(), {cache::Cache::GenerationKey(kPoolLists)});
}

// ----------------------------------------------------------------------------- pools

absl::StatusOr<v1::Pool> SupportDomain::CreatePool(const CallContext& call, const v1::CreatePoolRequest& req) {
  const auto& in = req.pool();
  FieldErrors errors;
  const KindInfo* kind = FindKind(in.kind());
  if (kind == nullptr) errors.Add("pool.kind", "required: LAND, ENERGY, WATER, ENVIRONMENT, GREEN_POWER or SUBSIDY");
  if (!refdata::IsRegionCode(in.region())) errors.Add("pool.region", "required: a league region code");
  if (in.year() < 2000 || in.year() > 2100) errors.Add("pool.year", "required: a year between 2000 and 2100");
  if (in.kind() == v1::ENVIRONMENT && !IsPollutant(in.pollutant())) {
    errors.Add("pool.pollutant", absl::StrCat("required for ENVIRONMENT: one of ", absl::StrJoin(Pollutants(), ", ")));
  } else if (in.kind() != v1::ENVIRONMENT && !in.pollutant().empty()) {
    errors.Add("pool.pollutant", "only for ENVIRONMENT pools");
  }
  if (in.capacity() < 0 || in.capacity() > kMaxQuantity) {
    errors.Add("pool.capacity",
               absl::StrCat("must be ", QuantityRange(0, kind != nullptr ? kind->unit : "base units")));
  }
  int64_t parcel_area = 0;
  std::set<std::string> ids;
  if (in.parcels_size() > 0 && in.kind() != v1::LAND) errors.Add("pool.parcels", "only for LAND pools");
  for (int i = 0; i < in.parcels_size(); ++i) {
    const auto& p = in.parcels(i);
    std::string f = absl::StrCat("pool.parcels[", i, "]");
    if (!ValidParcelId(p.id())) errors.Add(f + ".id", "required: 1-32 of [A-Za-z0-9-]");
    if (!ids.insert(p.id()).second) errors.Add(f + ".id", "duplicate parcel id");
    if (p.area_m2() <= 0 || p.area_m2() > kMaxQuantity) {
      errors.Add(f + ".area_m2", absl::StrCat("must be ", QuantityRange(1, "m2")));
    }
    CheckText(errors, f + ".location", p.location(), kMaxName, false);
    parcel_area += std::max<int64_t>(0, std::min(p.area_m2(), kMaxQuantity));
  }
  if (errors.empty() && parcel_area > in.capacity()) {
    errors.Add("pool.capacity", absl::StrCat("smaller than its parcels' total area (", parcel_area, " m2)"));
  }
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!ActsForAny(p, kind->departments)) {
    return PermissionDenied(absl::StrCat("only ", absl::StrJoin(kind->departments, " or "), " set ",
                                         v1::ResourceKind_Name(in.kind()), " pools"));
  }
  const std::string name = PoolName(in.region(), in.year(), in.kind(), in.pollutant());
  store::WriteContext w{&p, "CreatePool", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = PoolsWrite();
  auto created = repo_->Write<v1::Pool>(w, [&](SupportTx& tx) -> absl::StatusOr<v1::Pool> {
    CG_ASSIGN_OR_RETURN(auto existing, tx.GetPool(name));
    if (existing.has_value()) return absl::AlreadyExistsError(absl::StrCat(name, " already exists"));
    v1::Pool pool;
    pool.set_name(name);
    pool.set_region(in.region());
    pool.set_year(in.year());
    pool.set_kind(in.kind());
    pool.set_pollutant(in.pollutant());
    pool.set_unit(kind->unit);
    pool.set_capacity(in.capacity());
    for (const auto& parcel : in.parcels()) {
      auto* out = pool.add_parcels();
      out->set_id(parcel.id());
      out->set_area_m2(parcel.area_m2());
      out->set_location(parcel.location());
    }
    CG_RETURN_IF_ERROR(tx.PutPool(pool, /*create=*/true));
    v1::LedgerEntry e;
    e.set_pool(name);
    e.set_type(v1::LedgerEntry::ADJUST);
    e.set_quantity(in.capacity());
    e.set_reason("initial capacity");
    CG_RETURN_IF_ERROR(tx.AppendLedger(e));
    CG_RETURN_IF_ERROR(tx.Audit(name, "", pool.etag()));
    return pool;
  });
  return created;
}

absl::StatusOr<v1::Pool> SupportDomain::GetPool(const CallContext& call, const v1::GetPoolRequest& req) {
  if (!absl::StartsWith(req.name(), "pools/")) return InvalidField("name", "must be pools/{region}-{year}-{kind}");
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto pool, repo_->GetPool(req.name()));
    if (!pool.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    return pool->SerializeAsString();
  };
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kPoolLists, absl::StrCat("pool:", req.name()), load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::Pool pool;
  if (!pool.ParseFromString(*bytes)) return absl::InternalError("cached pool does not parse");
  return pool;
}

absl::StatusOr<v1::ListPoolsResponse> SupportDomain::ListPools(const CallContext& call,
                                                               const v1::ListPoolsRequest& req) {
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->PoolFilterFields(), {"ListPools", req.filter()}));
  ListQuery q;
  q.filter = plan.filter;
  q.limit = plan.page_size;
  q.after = plan.after_key;
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto pools, repo_->ListPools(q));
    v1::ListPoolsResponse resp;
    resp.set_next_page_token(
        TakePage(*page_tokens_, plan, pools, resp.mutable_pools(), [](const v1::Pool& p) { return p.name(); }));
    return resp.SerializeAsString();
  };
  std::string key = absl::StrCat("list:", Hex(QueryHash({req.filter(), q.after, std::to_string(plan.page_size)})));
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kPoolLists, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ListPoolsResponse resp;
  if (!resp.ParseFromString(*bytes)) return absl::InternalError("cached list does not parse");
  CG_ASSIGN_OR_RETURN(*resp.mutable_next_page_token(),
                      NextPageTokenForCaller(*page_tokens_, plan, resp.next_page_token()));
  return resp;
}

absl::StatusOr<v1::Pool> SupportDomain::SetPoolCapacity(const CallContext& call,
                                                        const v1::SetPoolCapacityRequest& req) {
  if (!absl::StartsWith(req.name(), "pools/")) return InvalidField("name", "must be pools/{region}-{year}-{kind}");
  FieldErrors errors;
  if (req.capacity() < 0 || req.capacity() > kMaxQuantity) {
    errors.Add("capacity", absl::StrCat("must be ", QuantityRange(0, "in the pool's base unit")));
  }
  CheckText(errors, "reason", req.reason(), kMaxLongText, true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return PermissionDenied("only the responsible department sets capacity");
  store::WriteContext w{&p, "SetPoolCapacity", req.request_id(), call.request_id, req.reason(), &req};
  w.serialize_on = kQuotaLock;
  cache::PendingWrite pending = PoolsWrite();
  auto updated = repo_->Write<v1::Pool>(w, [&](SupportTx& tx) -> absl::StatusOr<v1::Pool> {
    CG_ASSIGN_OR_RETURN(auto pool, tx.GetPool(req.name()));
    if (!pool.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    const KindInfo* kind = FindKind(pool->kind());
    if (!ActsForAny(p, kind->departments)) {
      return PermissionDenied(absl::StrCat("only ", absl::StrJoin(kind->departments, " or "), " set this capacity"));
    }
    CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), pool->etag()));
    int64_t used = pool->reserved() + pool->allocated();
    int64_t parcels = 0;
    for (const auto& parcel : pool->parcels()) parcels += parcel.area_m2();
    if (req.capacity() < used || req.capacity() < parcels) {
      return absl::FailedPreconditionError(absl::StrCat("capacity ", req.capacity(), " is below what is reserved and ",
                                                        "allocated (", used, ") or the parcels' area (", parcels, ")"));
    }
    std::string before = pool->etag();
    int64_t delta = req.capacity() - pool->capacity();
    pool->set_capacity(req.capacity());
    CG_RETURN_IF_ERROR(tx.PutPool(*pool, /*create=*/false));
    v1::LedgerEntry e;
    e.set_pool(pool->name());
    e.set_type(v1::LedgerEntry::ADJUST);
    e.set_quantity(delta);
    CG_RETURN_IF_ERROR(tx.AppendLedger(e));
    CG_RETURN_IF_ERROR(tx.Audit(pool->name(), before, pool->etag()));
    return *pool;
  });
  return updated;
}

// ----------------------------------------------------------------------------- applications

absl::StatusOr<v1::Application> SupportDomain::CreateApplication(const CallContext& call,
                                                                 const v1::CreateApplicationRequest& req) {
  const Principal& p = call.principal;
  v1::Application app = req.application();
  // An applicant applies only for itself: an enterprise, or a promotion organization for funds.
  if (!p.HasAnyRole({roles::kEnterprise, roles::kPromotionOrg})) {
    return PermissionDenied("applications are made by enterprises (or promotion organizations, for funds)");
  }
  if (!app.applicant().empty() && app.applicant() != p.organization) {
    return PermissionDenied("an applicant applies only for itself");
  }
  app.set_applicant(p.organization);
  FieldErrors errors;
  ValidateApplication(app, errors);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  if (p.HasRole(roles::kEnterprise) && absl::StartsWith(p.organization, "enterprises/")) {
    CG_RETURN_IF_ERROR(refdata::ValidateUscc(p.organization.substr(12), "applicant"));
  } else if (absl::StartsWith(p.organization, "promotionOrgs/")) {
    for (int i = 0; i < app.items_size(); ++i) {
      if (app.items(i).kind() != v1::SUBSIDY) {
        return InvalidField(absl::StrCat("application.items[", i, "].kind"),
                            "a promotion organization applies only for SUBSIDY (capability-building funds)");
      }
    }
  } else {
    return PermissionDenied("the caller's organization is not an enterprise or promotion organization");
  }
  // Output-only fields are ignored.
  app.clear_name();
  app.clear_history();
  app.clear_submit_time();
  app.clear_reservation_expire_time();
  app.set_state(v1::Application::STATE_UNSPECIFIED);
  for (auto& item : *app.mutable_items()) {
    item.set_pool(PoolName(app.region(), app.year(), item.kind(), item.pollutant()));
  }
  store::WriteContext w{&p, "CreateApplication", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::Application>(w, [&](SupportTx& tx) -> absl::StatusOr<v1::Application> {
    v1::Application out = app;
    Record(out, v1::Application::DRAFT, p, "");
    CG_RETURN_IF_ERROR(tx.PutApplication(out));
    CG_RETURN_IF_ERROR(tx.Audit(out.name(), "", out.etag()));
    return out;
  });
}

absl::StatusOr<v1::Application> SupportDomain::GetApplication(const CallContext& call,
                                                              const v1::GetApplicationRequest& req) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseApplicationName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto app, repo_->GetApplication(id));
  if (!app.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!ReadsAll(call.principal) && !IsApplicant(call.principal, *app)) {
    return PermissionDenied("an application is visible to its applicant, government, auditors and admins");
  }
  return *app;
}

absl::StatusOr<v1::ListApplicationsResponse> SupportDomain::ListApplications(const CallContext& call,
                                                                             const v1::ListApplicationsRequest& req) {
  CG_ASSIGN_OR_RETURN(int page_size, NormalizePageSize(req.page_size()));
  if (!req.order_by().empty() && req.order_by() != "create_time" && req.order_by() != "priority") {
    return InvalidField("order_by", "\"create_time\" or \"priority\"");
  }
  CG_ASSIGN_OR_RETURN(SqlFilter filter, CompileFilter(req.filter(), repo_->ApplicationFilterFields()));
  const Principal& p = call.principal;
  ListQuery q;
  q.filter = std::move(filter);
  q.limit = page_size;
  q.priority_order = req.order_by() == "priority";
  if (!ReadsAll(p)) {
    if (!p.HasAnyRole({roles::kEnterprise, roles::kPromotionOrg})) return PermissionDenied("no applications to list");
    q.applicant = p.organization;  // an applicant sees only its own
  }
  uint64_t query_hash = QueryHash({"ListApplications", req.filter(), req.order_by(), q.applicant});
  if (!req.page_token().empty()) {
    CG_ASSIGN_OR_RETURN(auto payload, page_tokens_->Decode(req.page_token(), query_hash, call.principal));
    q.after = payload.last_key();
  }
  CG_ASSIGN_OR_RETURN(auto apps, repo_->ListApplications(q));
  v1::ListApplicationsResponse resp;
  for (size_t i = 0; i < apps.size() && static_cast<int>(i) < page_size; ++i) *resp.add_applications() = apps[i];
  if (static_cast<int>(apps.size()) > page_size) {
    const auto& last = resp.applications(page_size - 1);
    int64_t id = std::stoll(last.name().substr(13));
    common::v1::PageTokenPayload next;
    next.set_query_hash(query_hash);
    if (q.priority_order) {
      int64_t submit = last.has_submit_time() ? TimeUtil::TimestampToMicroseconds(last.submit_time()) : 0;
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%d:%020lld:%020lld", last.core_chain_project() ? 0 : 1,
                    static_cast<long long>(submit), static_cast<long long>(id));
      next.set_last_key(buf);
    } else {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(id));
      next.set_last_key(buf);
    }
    resp.set_next_page_token(page_tokens_->Encode(next, call.principal));
  }
  return resp;
}

absl::StatusOr<v1::Application> SupportDomain::UpdateApplication(const CallContext& call,
                                                                 const v1::UpdateApplicationRequest& req) {
  const auto& in = req.application();
  CG_ASSIGN_OR_RETURN(int64_t id, ParseApplicationName("application.name", in.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  static const std::set<std::string> kPaths{"project_name", "project_description", "core_chain_project", "cluster",
                                            "region",       "year",                "items",              "reward"};
  std::set<std::string> paths;
  for (const auto& path : req.update_mask().paths()) {
    if (path == "*") {
      paths = kPaths;
    } else if (kPaths.count(path) == 0) {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is not updatable"));
    } else {
      paths.insert(path);
    }
  }
  if (paths.empty()) paths = kPaths;
  const Principal& p = call.principal;
  store::WriteContext w{&p, "UpdateApplication", req.request_id(), call.request_id, "", &req};
  return repo_->Write<v1::Application>(w, [&](SupportTx& tx) -> absl::StatusOr<v1::Application> {
    CG_ASSIGN_OR_RETURN(auto app, tx.GetApplication(id));
    if (!app.has_value()) return absl::NotFoundError(absl::StrCat(in.name(), " not found"));
    if (!IsApplicant(p, *app)) return PermissionDenied("only the applicant changes an application");
    CG_RETURN_IF_ERROR(CheckEtag("application.etag", in.etag(), app->etag()));
    if (app->state() != v1::Application::DRAFT && app->state() != v1::Application::RETURNED) {
      return Illegal(*app, "change");
    }
    std::string before = app->etag();
    if (paths.count("project_name")) app->set_project_name(in.project_name());
    if (paths.count("project_description")) app->set_project_description(in.project_description());
    if (paths.count("core_chain_project")) app->set_core_chain_project(in.core_chain_project());
    if (paths.count("cluster")) app->set_cluster(in.cluster());
    if (paths.count("region")) app->set_region(in.region());
    if (paths.count("year")) app->set_year(in.year());
    if (paths.count("reward")) app->set_reward(in.reward());
    if (paths.count("items")) {
      *app->mutable_items() = in.items();
    } else {
      // A bundle's area is output only: worked out again on the next submission.
      for (auto& item : *app->mutable_items()) {
        if (item.parcel_ids_size() > 0) item.clear_quantity();
      }
    }
    FieldErrors errors;
    ValidateApplication(*app, errors);
    CG_RETURN_IF_ERROR(errors.ToStatus());
    for (auto& item : *app->mutable_items()) {
      item.set_pool(PoolName(app->region(), app->year(), item.kind(), item.pollutant()));
    }
    CG_RETURN_IF_ERROR(tx.PutApplication(*app));
    CG_RETURN_IF_ERROR(tx.Audit(app->name(), before, app->etag()));
    return *app;
  });
}

absl::Status SupportDomain::CheckRewardEligibility(const CallContext& call, const v1::Application& app) {
  if (app.reward().empty()) return absl::OkStatus();
  // Eligibility changes with every decision: asked of the clusters service itself, not the cache.
  CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->LookupFresh(call, app.cluster()));
  const auto& eligibility = cluster.reward_eligibility();
  if (eligibility.evaluation() != app.reward()) {
    return absl::FailedPreconditionError(
        eligibility.evaluation().empty()
            ? absl::StrCat(app.cluster(), " is not eligible for a reward")
            : absl::StrCat(app.cluster(), " is eligible for the reward of ", eligibility.evaluation(), ", not ",
                           app.reward()));
  }
  absl::int128 asked = 0;
  for (const auto& item : app.items()) asked += item.quantity();
  const absl::int128 eligible = absl::int128(eligibility.amount_cny_10k()) * kFenPerCny10k;
  if (asked > eligible) {
    return absl::FailedPreconditionError(absl::StrCat(app.name(), " asks ", static_cast<int64_t>(asked), " fen; ",
                                                      app.cluster(), " is eligible for ", eligibility.amount_cny_10k(),
                                                      " ten-thousand yuan (", static_cast<int64_t>(eligible), " fen)"));
  }
  return absl::OkStatus();
}

absl::Status SupportDomain::CheckReviewer(const CallContext& call, const v1::Application& app) {
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) return PermissionDenied("only government reviews applications");
  // The department responsible for every item's kind may review...
  bool responsible = app.items_size() > 0;
  for (const auto& item : app.items()) {
    const KindInfo* kind = FindKind(item.kind());
    if (kind == nullptr || !ActsForAny(p, kind->departments)) responsible = false;
  }
  if (responsible) return absl::OkStatus();
  // ... and so may the cluster's lead department.
  CG_ASSIGN_OR_RETURN(clusters::v1::Cluster cluster, clusters_->Lookup(call, app.cluster()));
  if (clusters::IsLeadDepartmentOf(p, cluster)) return absl::OkStatus();
  return PermissionDenied(absl::StrCat("only a lead department of ", app.cluster(),
                                       " or the department responsible for every item may review ", app.name()));
}

absl::StatusOr<v1::Application> SupportDomain::Transition(
    const CallContext& call, const v1::TransitionRequest& req, const char* method, Actor who, bool reason_required,
    const std::function<absl::Status(v1::Application& app, SupportTx& tx)>& step) {
  CG_ASSIGN_OR_RETURN(int64_t id, ParseApplicationName("name", req.name()));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, reason_required);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  // Authorization needs the application (and maybe the cluster, over gRPC): decided before the
  // write, re-checked against the state inside it.
  CG_ASSIGN_OR_RETURN(auto current, repo_->GetApplication(id));
  if (!current.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (who == Actor::kApplicant) {
    if (!IsApplicant(p, *current)) return PermissionDenied(absl::StrCat("only the applicant may ", method));
  } else {
    CG_RETURN_IF_ERROR(CheckReviewer(call, *current));
  }
  store::WriteContext w{&p, method, req.request_id(), call.request_id, req.reason(), &req};
  w.serialize_on = kQuotaLock;
  cache::PendingWrite pending = PoolsWrite();
  auto result = repo_->Write<v1::Application>(w, [&](SupportTx& tx) -> absl::StatusOr<v1::Application> {
    CG_ASSIGN_OR_RETURN(auto app, tx.GetApplication(id));
    if (!app.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
    CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), app->etag()));
    // Authorization was decided on the copy read before the write; if what it depends on (the
    // applicant, the cluster, the item kinds) changed since, refuse rather than act on it.
    auto kinds = [](const v1::Application& a) {
      std::vector<int> k;
      for (const auto& item : a.items()) k.push_back(item.kind());
      return k;
    };
    if (app->applicant() != current->applicant() || app->cluster() != current->cluster() ||
        kinds(*app) != kinds(*current)) {
      return absl::AbortedError(absl::StrCat(req.name(), " changed while this request was checked; retry"));
    }
    std::string before = app->etag();
    CG_RETURN_IF_ERROR(step(*app, tx));
    CG_RETURN_IF_ERROR(tx.PutApplication(*app));
    CG_RETURN_IF_ERROR(tx.Audit(app->name(), before, app->etag()));
    if (auto event = ApplicationEvent(*app, req.reason())) {
      CG_RETURN_IF_ERROR(tx.Publish(app->name(), *event, store::RevisionOf(app->etag())));
    }
    return *app;
  });
  return result;
}

absl::StatusOr<v1::Application> SupportDomain::SubmitApplication(const CallContext& call,
                                                                 const v1::TransitionRequest& req) {
  // The applicant must be registered and a member of the cluster: asked of the enterprises
  // service (cached) before the write.
  CG_ASSIGN_OR_RETURN(int64_t id, ParseApplicationName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto current, repo_->GetApplication(id));
  if (current.has_value() && IsApplicant(call.principal, *current) &&
      absl::StartsWith(current->applicant(), "enterprises/")) {
    CG_RETURN_IF_ERROR(
        enterprises_->CheckMember(call, current->applicant().substr(12), current->cluster().substr(9)));
  } else if (current.has_value() && IsApplicant(call.principal, *current)) {
    // A promotion organization applies for its own cluster's funds: the cluster must exist.
    CG_ASSIGN_OR_RETURN(auto cluster, clusters_->Lookup(call, current->cluster()));
    if (cluster.promotion_organization() != current->applicant()) {
      // The designation may be seconds old: ask the clusters service itself before refusing.
      CG_ASSIGN_OR_RETURN(cluster, clusters_->LookupFresh(call, current->cluster()));
    }
    if (cluster.promotion_organization() != current->applicant()) {
      return absl::FailedPreconditionError(
          absl::StrCat(current->applicant(), " is not the promotion organization of ", current->cluster()));
    }
    CG_RETURN_IF_ERROR(CheckRewardEligibility(call, *current));
  }
  return Transition(call, req, "SubmitApplication", Actor::kApplicant, false,
                    [&](v1::Application& app, SupportTx& tx) -> absl::Status {
                      if (app.state() != v1::Application::DRAFT && app.state() != v1::Application::RETURNED) {
                        return Illegal(app, "submit");
                      }
                      for (int i = 0; i < app.items_size(); ++i) {
                        CG_ASSIGN_OR_RETURN(auto pool, tx.GetPool(app.items(i).pool()));
                        if (!pool.has_value()) {
                          return absl::FailedPreconditionError(
                              absl::StrCat("items[", i, "]: there is no pool ", app.items(i).pool()));
                        }
                        CG_RETURN_IF_ERROR(SetBundleArea(*pool, i, *app.mutable_items(i)));
                      }
                      if (!app.reward().empty()) {
                        // Checked again under the write, against what the eligibility check read.
                        if (app.etag() != current->etag()) {
                          return absl::AbortedError(absl::StrCat(req.name(), " changed while this request was checked; retry"));
                        }
                        CG_ASSIGN_OR_RETURN(std::string other, tx.LiveRewardClaim(app.reward(), id));
                        if (!other.empty()) {
                          return absl::FailedPreconditionError(
                              absl::StrCat("the reward of ", app.reward(), " is already claimed by ", other));
                        }
                      }
                      Record(app, v1::Application::SUBMITTED, call.principal, req.reason());
                      *app.mutable_submit_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::StartReview(const CallContext& call, const v1::TransitionRequest& req) {
  return Transition(call, req, "StartReview", Actor::kReviewer, false,
                    [&](v1::Application& app, SupportTx&) -> absl::Status {
                      if (app.state() != v1::Application::SUBMITTED) return Illegal(app, "start reviewing");
                      Record(app, v1::Application::UNDER_REVIEW, call.principal, req.reason());
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::ApproveApplication(const CallContext& call,
                                                                  const v1::TransitionRequest& req) {
  // A reward claim is approved only while the cluster is still eligible (a later decision may
  // have demoted it).
  CG_ASSIGN_OR_RETURN(int64_t id, ParseApplicationName("name", req.name()));
  CG_ASSIGN_OR_RETURN(auto current, repo_->GetApplication(id));
  if (current.has_value() && !current->reward().empty()) {
    CG_RETURN_IF_ERROR(CheckRewardEligibility(call, *current));
  }
  return Transition(call, req, "ApproveApplication", Actor::kReviewer, false,
                    [&](v1::Application& app, SupportTx& tx) -> absl::Status {
                      if (app.state() != v1::Application::UNDER_REVIEW) return Illegal(app, "approve");
                      CG_RETURN_IF_ERROR(Move(app, tx, v1::LedgerEntry::RESERVE));
                      Record(app, v1::Application::APPROVED, call.principal, req.reason());
                      *app.mutable_reservation_expire_time() =
                          TimeUtil::MicrosecondsToTimestamp(store::NowMicros() +
                                                            absl::ToInt64Microseconds(reservation_lifetime_));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::RejectApplication(const CallContext& call,
                                                                 const v1::TransitionRequest& req) {
  return Transition(call, req, "RejectApplication", Actor::kReviewer, true,
                    [&](v1::Application& app, SupportTx& tx) -> absl::Status {
                      if (app.state() == v1::Application::APPROVED) {
                        CG_RETURN_IF_ERROR(Move(app, tx, v1::LedgerEntry::RELEASE));
                      } else if (app.state() != v1::Application::UNDER_REVIEW) {
                        return Illegal(app, "reject");
                      }
                      Record(app, v1::Application::REJECTED, call.principal, req.reason());
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::ReturnApplication(const CallContext& call,
                                                                 const v1::TransitionRequest& req) {
  return Transition(call, req, "ReturnApplication", Actor::kReviewer, true,
                    [&](v1::Application& app, SupportTx&) -> absl::Status {
                      if (app.state() != v1::Application::UNDER_REVIEW) return Illegal(app, "return");
                      Record(app, v1::Application::RETURNED, call.principal, req.reason());
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::AllocateApplication(const CallContext& call,
                                                                   const v1::TransitionRequest& req) {
  return Transition(call, req, "AllocateApplication", Actor::kReviewer, false,
                    [&](v1::Application& app, SupportTx& tx) -> absl::Status {
                      if (app.state() != v1::Application::APPROVED) return Illegal(app, "allocate");
                      CG_RETURN_IF_ERROR(Move(app, tx, v1::LedgerEntry::ALLOCATE));
                      Record(app, v1::Application::ALLOCATED, call.principal, req.reason());
                      app.clear_reservation_expire_time();
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::Application> SupportDomain::WithdrawApplication(const CallContext& call,
                                                                   const v1::TransitionRequest& req) {
  return Transition(call, req, "WithdrawApplication", Actor::kApplicant, false,
                    [&](v1::Application& app, SupportTx&) -> absl::Status {
                      if (app.state() != v1::Application::DRAFT && app.state() != v1::Application::SUBMITTED &&
                          app.state() != v1::Application::RETURNED) {
                        return Illegal(app, "withdraw");
                      }
                      Record(app, v1::Application::WITHDRAWN, call.principal, req.reason());
                      return absl::OkStatus();
                    });
}

absl::StatusOr<v1::ExpireReservationsResponse> SupportDomain::ExpireReservations(
    const CallContext& call, const v1::ExpireReservationsRequest& req) {
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kGovernment, roles::kAdmin, roles::kService})) {
    return PermissionDenied("expiring reservations needs government, admin or service");
  }
  store::WriteContext w{&p, "ExpireReservations", req.request_id(), call.request_id, "reservation expired", &req};
  return ExpireDue(w, absl::Now(), 0);
}

absl::StatusOr<v1::ExpireReservationsResponse> SupportDomain::ExpireDue(store::WriteContext w, absl::Time now,
                                                                        int limit) {
  w.serialize_on = kQuotaLock;
  cache::PendingWrite pending = PoolsWrite();
  return repo_->Write<v1::ExpireReservationsResponse>(
      w, [&](SupportTx& tx) -> absl::StatusOr<v1::ExpireReservationsResponse> {
        v1::ExpireReservationsResponse out;
        CG_ASSIGN_OR_RETURN(auto apps, tx.ExpiredReservations(absl::ToUnixMicros(now), limit));
        for (auto& app : apps) {
          std::string before = app.etag();
          CG_RETURN_IF_ERROR(Move(app, tx, v1::LedgerEntry::RELEASE));
          Record(app, v1::Application::EXPIRED, *w.actor, "reservation expired");
          CG_RETURN_IF_ERROR(tx.PutApplication(app));
          CG_RETURN_IF_ERROR(tx.Audit(app.name(), before, app.etag()));
          events::v1::ApplicationExpired event;
          event.set_application(app.name());
          event.set_applicant(app.applicant());
          event.set_cluster(app.cluster());
          for (const auto& item : app.items()) {
            auto* q = event.add_items();
            q->set_kind(v1::ResourceKind_Name(item.kind()));
            q->set_quantity(item.quantity());
            q->set_pool(item.pool());
          }
          CG_RETURN_IF_ERROR(tx.Publish(app.name(), event, store::RevisionOf(app.etag())));
          out.add_expired(app.name());
        }
        return out;
      });
}

absl::StatusOr<int> SupportDomain::ExpireReservationsJob(const store::LeaseFence& fence, absl::Time now) {
  constexpr int kBatch = 100;
  const Principal self = ServicePrincipal("support");
  store::WriteContext w{&self, "Job:ExpireReservations", "", "", "reservation expired", nullptr};
  w.fence = &fence;
  int total = 0;
  while (true) {
    CG_ASSIGN_OR_RETURN(auto expired, ExpireDue(w, now, kBatch));
    total += expired.expired_size();
    if (expired.expired_size() < kBatch) return total;
  }
}

// ----------------------------------------------------------------------------- ledger

absl::StatusOr<v1::ListLedgerEntriesResponse> SupportDomain::ListLedgerEntries(
    const CallContext& call, const v1::ListLedgerEntriesRequest& req) {
  if (!call.principal.HasAnyRole({roles::kGovernment, roles::kAuditor, roles::kAdmin})) {
    return PermissionDenied("the ledger is open to government, auditors and admins");
  }
  CG_ASSIGN_OR_RETURN(int page_size, NormalizePageSize(req.page_size()));
  CG_ASSIGN_OR_RETURN(SqlFilter filter, CompileFilter(req.filter(), repo_->LedgerFilterFields()));
  uint64_t query_hash = QueryHash({"ListLedgerEntries", req.filter()});
  ListQuery q;
  q.filter = std::move(filter);
  q.limit = page_size;
  if (!req.page_token().empty()) {
    CG_ASSIGN_OR_RETURN(auto payload, page_tokens_->Decode(req.page_token(), query_hash, call.principal));
    q.after = payload.last_key();
  }
  CG_ASSIGN_OR_RETURN(auto entries, repo_->ListLedger(q));
  v1::ListLedgerEntriesResponse resp;
  for (size_t i = 0; i < entries.size() && static_cast<int>(i) < page_size; ++i) *resp.add_entries() = entries[i];
  if (static_cast<int>(entries.size()) > page_size) {
    common::v1::PageTokenPayload next;
    next.set_query_hash(query_hash);
    next.set_last_key(std::to_string(resp.entries(page_size - 1).id()));
    resp.set_next_page_token(page_tokens_->Encode(next, call.principal));
  }
  return resp;
}

absl::StatusOr<v1::ConsistencyReport> SupportDomain::CheckConsistency(const CallContext& call,
                                                                      const v1::CheckConsistencyRequest& req) {
  if (!call.principal.HasAnyRole({roles::kGovernment, roles::kAuditor, roles::kAdmin})) {
    return PermissionDenied("the ledger is open to government, auditors and admins");
  }
  // One snapshot: the ledger's sums and the stored balances are read in the same transaction.
  CG_ASSIGN_OR_RETURN(auto sums, repo_->SumLedger());
  v1::ConsistencyReport report;
  report.set_consistent(true);
  for (const auto& s : sums) {
    auto* check = report.add_pools();
    check->set_pool(s.pool);
    check->set_capacity(s.stored_capacity);
    check->set_stored_reserved(s.stored_reserved);
    check->set_stored_allocated(s.stored_allocated);
    check->set_ledger_capacity(s.capacity_adjusted);
    check->set_ledger_reserved(s.reserved);
    check->set_ledger_allocated(s.allocated);
    bool ok = s.capacity_adjusted == s.stored_capacity && s.reserved == s.stored_reserved &&
              s.allocated == s.stored_allocated && s.stored_reserved + s.stored_allocated <= s.stored_capacity;
    check->set_consistent(ok);
    if (!ok) report.set_consistent(false);
  }
  return report;
}

absl::StatusOr<v1::Utilization> SupportDomain::GetUtilization(const CallContext& call,
                                                              const v1::GetUtilizationRequest& req) {
  CG_ASSIGN_OR_RETURN(SqlFilter filter, CompileFilter(req.filter(), repo_->PoolFilterFields()));
  v1::Utilization out;
  ListQuery q;
  q.filter = filter;
  q.limit = 100000;
  CG_ASSIGN_OR_RETURN(auto pools, repo_->ListPools(q));
  for (const auto& pool : pools) {
    auto* use = out.add_pools();
    use->set_pool(pool.name());
    use->set_capacity(pool.capacity());
    use->set_reserved(pool.reserved());
    use->set_allocated(pool.allocated());
    int64_t used = pool.reserved() + pool.allocated();
    // In 128 bits: quantities reach 2^50, and 2^50 * 10000 does not fit in 64.
    use->set_used_bp(pool.capacity() > 0
                         ? static_cast<int32_t>(static_cast<__int128>(used) * 10000 / pool.capacity())
                         : 0);
  }
  CG_ASSIGN_OR_RETURN(auto by_cluster, repo_->UseByCluster());
  for (const auto& u : by_cluster) {
    auto* c = out.add_clusters();
    c->set_cluster(u.cluster);
    c->set_kind(static_cast<v1::ResourceKind>(u.kind));
    c->set_reserved(u.reserved);
    c->set_allocated(u.allocated);
  }
  return out;
}

absl::StatusOr<common::v1::ClusterIndicators> SupportDomain::GetClusterIndicators(
    const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req) {
  CG_RETURN_IF_ERROR(indicators::ParseRequest(req).status());
  CG_RETURN_IF_ERROR(indicators::CheckReader(call.principal));
  CG_RETURN_IF_ERROR(clusters_->Lookup(call, req.cluster()).status());
  CG_ASSIGN_OR_RETURN(ClusterAllocation allocation, repo_->AllocatedTo(req.cluster(), req.year()));
  auto allocated = [&](int kind, absl::string_view pollutant) {
    int64_t sum = 0;
    for (const auto& q : allocation.quantities) {
      if (q.kind == kind && q.pollutant == pollutant) sum += q.allocated;
    }
    return sum;
  };
  indicators::IndicatorSet set("support", req);
  for (const auto& k : Kinds()) {
    // Green power feeds green (advanced) manufacturing; the other resources the ecosystem.
    const auto dimension =
        k.kind == v1::GREEN_POWER ? common::v1::DIMENSION_MANUFACTURING : common::v1::DIMENSION_ECOSYSTEM;
    const std::string unit = absl::AsciiStrToLower(k.unit);
    if (k.kind == v1::ENVIRONMENT) {
      for (const auto& pollutant : Pollutants()) {
        set.Add(absl::StrCat("allocated.environment.", pollutant), allocated(k.kind, pollutant), unit, dimension,
                absl::StrCat(k.title_zh, "（", pollutant, "）已配置量 (allocated to the cluster's applications)"));
      }
      continue;
    }
    set.Add(absl::StrCat("allocated.", k.slug), allocated(k.kind, ""), unit, dimension,
            absl::StrCat(k.title_zh, "已配置量 (allocated to the cluster's applications)"));
  }
  set.Add("applications.allocated", allocation.applications, indicators::units::kCount,
          common::v1::DIMENSION_ECOSYSTEM, "获配置的申请数 (applications with allocations)");
  set.Add("applications.core_chain_allocated", allocation.core_chain_applications, indicators::units::kCount,
          common::v1::DIMENSION_ECOSYSTEM, "获配置的核心链项目数 (core chain projects with allocations)");
  return set.Take();
}

absl::StatusOr<v1::SupportReferenceData> SupportDomain::GetReferenceData(const CallContext& call,
                                                                         const v1::GetReferenceDataRequest& req) {
  v1::SupportReferenceData out;
  for (const auto& k : Kinds()) {
    auto* info = out.add_kinds();
    info->set_kind(k.kind);
    info->set_title_zh(k.title_zh);
    info->set_unit(k.unit);
    for (const auto& d : k.departments) info->add_responsible_departments(d);
  }
  for (const auto& p : Pollutants()) out.add_pollutants(p);
  return out;
}

absl::StatusOr<common::v1::ListAuditEventsResponse> SupportDomain::ListAuditEvents(
    const CallContext& call, const common::v1::ListAuditEventsRequest& req) {
  return repo_->ListAuditEvents(call.principal, *page_tokens_, req);
}

}  // namespace clustergov::support

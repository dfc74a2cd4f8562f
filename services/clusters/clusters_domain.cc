#include "absl/strings/string_view.h"
#include "services/clusters/clusters_domain.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/list/paging.h"
#include "common/refdata/refdata.h"
#include "common/status/field_mask.h"
#include "common/status/status.h"
#include "common/status/validation.h"
#include "common/store/audit.h"
#include "google/protobuf/util/time_util.h"

namespace clustergov::clusters {
namespace {

using common::v1::Tier;
using google::protobuf::util::TimeUtil;

constexpr size_t kMaxName = 200;
constexpr size_t kMaxLongText = 2000;
constexpr int kMaxListItems = 100;
constexpr absl::string_view kClustersCollection = "clusters";
constexpr absl::string_view kTasksCollection = "taskprogress";

bool ValidEnterpriseName(absl::string_view s) {
  constexpr absl::string_view kPrefix = "enterprises/";
  if (!absl::StartsWith(s, kPrefix)) return false;
  absl::string_view code = s.substr(kPrefix.size());
  return code.size() == 18 && std::all_of(code.begin(), code.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) || absl::ascii_isupper(static_cast<unsigned char>(c));
         });
}

// "clusters/{id}" → id; INVALID_ARGUMENT on `field` otherwise.
absl::StatusOr<std::string> ParseClusterName(absl::string_view field, absl::string_view name) {
  return ParseResourceName(field, name, "clusters");
}

bool ValidTier(int value) { return common::v1::Tier_IsValid(value) && value != Tier::TIER_UNSPECIFIED; }

template <typename List>
void CheckTextList(FieldErrors& errors, const std::string& field, const List& list) {
  if (list.size() > kMaxListItems) {
    errors.Add(field, absl::StrCat("at most ", kMaxListItems, " items"));
    return;
  }
  for (int i = 0; i < list.size(); ++i) {
    CheckText(errors, absl::StrCat(field, "[", i, "]"), list.Get(i), kMaxName, /*required=*/true);
  }
}

template <typename List>
void CheckCodes(FieldErrors& errors, const std::string& field, const List& list, bool (*valid)(absl::string_view),
                const char* what, bool required) {
  if (required && list.empty()) errors.Add(field, "at least one required");
  std::set<std::string> seen;
  for (int i = 0; i < list.size(); ++i) {
    if (!valid(list.Get(i))) {
      errors.Add(absl::StrCat(field, "[", i, "]"), absl::StrCat("unknown ", what, " \"", list.Get(i), "\""));
    } else if (!seen.insert(list.Get(i)).second) {
      errors.Add(absl::StrCat(field, "[", i, "]"), absl::StrCat("duplicate ", what, " ", list.Get(i)));
    }
  }
}

bool IsRegion(absl::string_view code) { return refdata::IsRegionCode(code); }
bool IsDepartment(absl::string_view code) { return refdata::IsDepartmentCode(code); }

bool ActsForAnyDepartment(const Principal& p, const google::protobuf::RepeatedPtrField<std::string>& departments) {
  for (const auto& d : departments) {
    if (p.ActsForDepartment(d)) return true;
  }
  return false;
}

absl::Status PermissionDenied(absl::string_view what) { return absl::PermissionDeniedError(what); }

// Updatable fields of a cluster, by field-mask path.
const std::set<std::string>& UpdatablePaths() {
  static const auto* paths = new std::set<std::string>{
      "display_name_zh",      "display_name_en", "industry",       "target_tier",     "target_year",
      "core_regions",         "supporting_regions", "lead_departments", "lead_enterprises", "innovation_platforms",
      "focus_products",       "chain_segments",  "regional_brands", "landmark_projects", "named_promotion_body",
      "development_focus"};
  return *paths;
}

std::string Hex(uint64_t v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad16)); }

// The common precondition of writes to an existing cluster: it exists, and the caller is an
// admin or acts for one of its lead departments.
absl::Status CheckWritable(const Principal& p, const std::optional<v1::Cluster>& current, const std::string& id,
                           absl::string_view action) {
  if (!current.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", id, " not found"));
  bool allowed = p.HasRole(roles::kAdmin) || ActsForAnyDepartment(p, current->lead_departments());
  if (!allowed) {
    return PermissionDenied(absl::StrCat("only a lead department of clusters/", id, " (or an admin) may ", action));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClusterChange> DesignationChange(const Principal& p, const std::optional<v1::Cluster>& current,
                                                const std::string& id, Tier tier, const std::string& reason,
                                                const std::string& etag) {
  if (!current.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", id, " not found"));
  if (!ActsForAnyDepartment(p, current->lead_departments())) {
    return PermissionDenied(absl::StrCat("only a lead department of clusters/", id, " may designate its tier"));
  }
  CG_RETURN_IF_ERROR(CheckEtag("etag", etag, current->etag()));
  if (current->state() == v1::Cluster::DELETED) {
    return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is deleted"));
  }
  if (current->tier() == tier) {
    return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is already at ", common::v1::Tier_Name(tier)));
  }
  ClusterChange change;
  change.cluster = *current;
  change.cluster.set_tier(tier);
  v1::TierDesignation d;
  d.set_previous_tier(current->tier());
  d.set_tier(tier);
  d.set_reason(reason);
  change.designation = std::move(d);
  return change;
}

int PlanGoal(int target_year, Tier tier) {
  if (target_year != 2027) return 0;
  switch (tier) {
    case Tier::TIER_WORLD_CLASS: return 1;
    case Tier::TIER_NATIONAL: return 3;
    case Tier::TIER_REGION: return 9;
    default: return 0;
  }
}

ClustersDomain::ClustersDomain(std::unique_ptr<ClusterRepository> repository, std::unique_ptr<cache::Cache> cache,
                               const PageTokenCodec* page_tokens,
                               std::vector<v1::KeyTask> key_tasks)
    : repo_(std::move(repository)),
      cache_(std::move(cache)),
      page_tokens_(page_tokens),
      key_tasks_(std::move(key_tasks)) {}

absl::Status ClustersDomain::ValidateCluster(const v1::Cluster& c, const std::string& p) {
  FieldErrors errors;
  CheckText(errors, p + "display_name_zh", c.display_name_zh(), kMaxName, true);
  CheckText(errors, p + "display_name_en", c.display_name_en(), kMaxName, false);
  if (!IsLowerCode(c.industry())) {
    errors.Add(p + "industry", "required: 1-64 of [a-z0-9_] starting with a letter, e.g. \"dairy\"");
  }
  if (c.target_tier() == Tier::TIER_NONE || !ValidTier(c.target_tier())) {
    errors.Add(p + "target_tier", "required: TIER_REGION, TIER_NATIONAL or TIER_WORLD_CLASS");
  }
  if (c.target_year() < 2000 || c.target_year() > 2100) {
    errors.Add(p + "target_year", "required: a year between 2000 and 2100");
  }
  CheckCodes(errors, p + "core_regions", c.core_regions(), &IsRegion, "region code", true);
  CheckCodes(errors, p + "supporting_regions", c.supporting_regions(), &IsRegion, "region code", false);
  for (int i = 0; i < c.supporting_regions_size(); ++i) {
    const auto& r = c.supporting_regions(i);
    if (std::find(c.core_regions().begin(), c.core_regions().end(), r) != c.core_regions().end()) {
      errors.Add(absl::StrCat(p, "supporting_regions[", i, "]"), absl::StrCat(r, " is already a core region"));
    }
  }
  CheckCodes(errors, p + "lead_departments", c.lead_departments(), &IsDepartment, "department code", true);
  if (c.lead_enterprises_size() > kMaxListItems) {
    errors.Add(p + "lead_enterprises", absl::StrCat("at most ", kMaxListItems, " items"));
  } else {
    for (int i = 0; i < c.lead_enterprises_size(); ++i) {
      const auto& e = c.lead_enterprises(i);
      std::string f = absl::StrCat(p, "lead_enterprises[", i, "].");
      CheckText(errors, f + "name_zh", e.name_zh(), kMaxName, true);
      CheckText(errors, f + "name_en", e.name_en(), kMaxName, false);
      if (!e.enterprise().empty() && !ValidEnterpriseName(e.enterprise())) {
        errors.Add(f + "enterprise", "must be enterprises/{18-character unified social credit code}");
      }
    }
  }
  CheckTextList(errors, p + "innovation_platforms", c.innovation_platforms());
  CheckTextList(errors, p + "focus_products", c.focus_products());
  CheckTextList(errors, p + "chain_segments", c.chain_segments());
  CheckTextList(errors, p + "regional_brands", c.regional_brands());
  CheckTextList(errors, p + "landmark_projects", c.landmark_projects());
  CheckText(errors, p + "named_promotion_body", c.named_promotion_body(), kMaxName, false);
  CheckText(errors, p + "development_focus", c.development_focus(), kMaxLongText, false);
  return errors.ToStatus();
}

const v1::KeyTask* ClustersDomain::FindTask(int number) const {
  for (const auto& t : key_tasks_) {
    if (t.number() == number) return &t;
  }
  return nullptr;
}

cache::PendingWrite ClustersDomain::ClusterWrite(const std::string& id) {
  return cache::PendingWrite(cache_.get(), {absl::StrCat("cluster:", id), cache::Cache::GenerationKey(kClustersCollection),
                                            cache::Cache::GenerationKey(kTasksCollection)});
}

absl::StatusOr<std::vector<v1::Cluster>> ClustersDomain::AllClusters() { return repo_->All(); }

absl::StatusOr<v1::Cluster> ClustersDomain::LoadCached(const std::string& id) {
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto cluster, repo_->Get(id));
    if (!cluster.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", id, " not found"));
    return cluster->SerializeAsString();
  };
  absl::StatusOr<std::string> bytes = cache_ != nullptr ? cache_->GetOrLoad(absl::StrCat("cluster:", id), load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::Cluster cluster;
  if (!cluster.ParseFromString(*bytes)) return absl::InternalError("cached cluster does not parse");
  return cluster;
}

absl::StatusOr<v1::Cluster> ClustersDomain::CreateCluster(const CallContext& call, const v1::CreateClusterRequest& req) {
  FieldErrors errors;
  if (!IsResourceId(req.cluster_id())) {
    errors.Add("cluster_id", "required: 2-63 of [a-z0-9-], starting with a letter, not ending with '-'");
  }
  if (!req.has_cluster()) errors.Add("cluster", "required");
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  CG_RETURN_IF_ERROR(ValidateCluster(req.cluster(), "cluster."));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kAdmin) && !ActsForAnyDepartment(p, req.cluster().lead_departments())) {
    return PermissionDenied("creating a cluster needs the admin role or a government caller acting for one of its "
                            "lead departments");
  }
  store::WriteContext w{&p, "CreateCluster", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = ClusterWrite(req.cluster_id());
  auto created = repo_->Mutate(w, req.cluster_id(), [&](const std::optional<v1::Cluster>& current)
                                                        -> absl::StatusOr<ClusterChange> {
    if (current.has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("clusters/", req.cluster_id(), " already exists"));
    }
    ClusterChange change;
    change.cluster = req.cluster();
    // Output-only fields are ignored on input (AIP-203).
    change.cluster.set_tier(Tier::TIER_NONE);
    change.cluster.clear_promotion_organization();
    change.cluster.clear_counts();
    change.cluster.set_state(v1::Cluster::ACTIVE);
    change.cluster.clear_create_time();
    change.cluster.clear_update_time();
    change.cluster.clear_delete_time();
    return change;
  });
  return created;
}

absl::StatusOr<v1::Cluster> ClustersDomain::GetCluster(const CallContext& call, const v1::GetClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("name", req.name()));
  return LoadCached(id);
}

std::optional<absl::StatusOr<v1::Cluster>> ClustersDomain::GetClusterFast(const CallContext& call,
                                                                          const v1::GetClusterRequest& req) {
  auto id = ParseClusterName("name", req.name());
  if (!id.ok()) return absl::StatusOr<v1::Cluster>(id.status());
  std::string bytes;
  if (cache_ == nullptr || !cache_->PeekNear(absl::StrCat("cluster:", *id), &bytes)) return std::nullopt;
  v1::Cluster cluster;
  if (!cluster.ParseFromString(bytes)) return std::nullopt;
  return absl::StatusOr<v1::Cluster>(std::move(cluster));
}

absl::StatusOr<v1::ListClustersResponse> ClustersDomain::ListClusters(const CallContext& call,
                                                                      const v1::ListClustersRequest& req) {
  const std::string deleted = req.show_deleted() ? "1" : "0";
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->ClusterFilterFields(),
                                              {"ListClusters", req.filter(), deleted}));
  ClusterQuery query;
  query.filter = plan.filter;
  query.show_deleted = req.show_deleted();
  query.limit = plan.page_size;
  query.after_id = plan.after_key;
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto clusters, repo_->List(query));
    CG_ASSIGN_OR_RETURN(int total, repo_->Count(query));
    v1::ListClustersResponse resp;
    resp.set_total_size(total);
    resp.set_next_page_token(TakePage(*page_tokens_, plan, clusters, resp.mutable_clusters(),
                                      [](const v1::Cluster& c) { return c.name().substr(9); }));
    return resp.SerializeAsString();
  };
  std::string key = Hex(QueryHash({req.filter(), deleted, query.after_id, std::to_string(plan.page_size)}));
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kClustersCollection, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ListClustersResponse resp;
  if (!resp.ParseFromString(*bytes)) return absl::InternalError("cached list does not parse");
  CG_ASSIGN_OR_RETURN(*resp.mutable_next_page_token(),
                      NextPageTokenForCaller(*page_tokens_, plan, resp.next_page_token()));
  return resp;
}

absl::StatusOr<v1::Cluster> ClustersDomain::UpdateCluster(const CallContext& call, const v1::UpdateClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("cluster.name", req.cluster().name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  CG_ASSIGN_OR_RETURN(std::vector<std::string> paths, ResolveUpdateMask(req.update_mask(), UpdatablePaths()));
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kAdmin, roles::kGovernment})) {
    return PermissionDenied("updating a cluster needs the government or admin role");
  }
  store::WriteContext w{&p, "UpdateCluster", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending = ClusterWrite(id);
  auto updated = repo_->Mutate(w, id, [&](const std::optional<v1::Cluster>& current) -> absl::StatusOr<ClusterChange> {
    CG_RETURN_IF_ERROR(CheckWritable(p, current, id, "update"));
    CG_RETURN_IF_ERROR(CheckEtag("cluster.etag", req.cluster().etag(), current->etag()));
    if (current->state() == v1::Cluster::DELETED) {
      return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is deleted; undelete it first"));
    }
    ClusterChange change;
    change.cluster = *current;
    CopyFields(paths, req.cluster(), &change.cluster);
    CG_RETURN_IF_ERROR(ValidateCluster(change.cluster, "cluster."));
    return change;
  });
  return updated;
}

absl::StatusOr<v1::Cluster> ClustersDomain::DeleteCluster(const CallContext& call, const v1::DeleteClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("name", req.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kAdmin, roles::kGovernment})) {
    return PermissionDenied("deleting a cluster needs the government or admin role");
  }
  store::WriteContext w{&p, "DeleteCluster", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = ClusterWrite(id);
  auto deleted = repo_->Mutate(w, id, [&](const std::optional<v1::Cluster>& current) -> absl::StatusOr<ClusterChange> {
    CG_RETURN_IF_ERROR(CheckWritable(p, current, id, "delete"));
    CG_RETURN_IF_ERROR(CheckEtag("etag", req.etag(), current->etag()));
    if (current->state() == v1::Cluster::DELETED) {
      return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is already deleted"));
    }
    ClusterChange change;
    change.cluster = *current;
    change.cluster.set_state(v1::Cluster::DELETED);
    *change.cluster.mutable_delete_time() = TimeUtil::MicrosecondsToTimestamp(store::NowMicros());
    return change;
  });
  return deleted;
}

absl::StatusOr<v1::Cluster> ClustersDomain::UndeleteCluster(const CallContext& call,
                                                            const v1::UndeleteClusterRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("name", req.name()));
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  FieldErrors errors;
  CheckText(errors, "reason", req.reason(), kMaxLongText, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  if (!p.HasAnyRole({roles::kAdmin, roles::kGovernment})) {
    return PermissionDenied("undeleting a cluster needs the government or admin role");
  }
  store::WriteContext w{&p, "UndeleteCluster", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = ClusterWrite(id);
  auto restored = repo_->Mutate(w, id, [&](const std::optional<v1::Cluster>& current) -> absl::StatusOr<ClusterChange> {
    CG_RETURN_IF_ERROR(CheckWritable(p, current, id, "undelete"));
    if (current->state() != v1::Cluster::DELETED) {
      return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is not deleted"));
    }
    ClusterChange change;
    change.cluster = *current;
    change.cluster.set_state(v1::Cluster::ACTIVE);
    change.cluster.clear_delete_time();
    return change;
  });
  return restored;
}

absl::StatusOr<v1::Cluster> ClustersDomain::DesignateTier(const CallContext& call, const v1::DesignateTierRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("name", req.name()));
  FieldErrors errors;
  if (!ValidTier(req.tier())) errors.Add("tier", "required: TIER_NONE, TIER_REGION, TIER_NATIONAL or TIER_WORLD_CLASS");
  CheckText(errors, "reason", req.reason(), kMaxLongText, /*required=*/true);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  const Principal& p = call.principal;
  if (!p.HasRole(roles::kGovernment)) {
    return PermissionDenied("only a lead department of the cluster may designate its tier");
  }
  store::WriteContext w{&p, "DesignateTier", req.request_id(), call.request_id, req.reason(), &req};
  cache::PendingWrite pending = ClusterWrite(id);
  auto designated = repo_->Mutate(w, id, [&](const std::optional<v1::Cluster>& current) {
    return DesignationChange(p, current, id, req.tier(), req.reason(), req.etag());
  });
  return designated;
}

absl::StatusOr<v1::ListTierDesignationsResponse> ClustersDomain::ListTierDesignations(
    const CallContext& call, const v1::ListTierDesignationsRequest& req) {
  CG_ASSIGN_OR_RETURN(std::string id, ParseClusterName("parent", req.parent()));
  CG_ASSIGN_OR_RETURN(int page_size, NormalizePageSize(req.page_size()));
  uint64_t query_hash = QueryHash({"ListTierDesignations", id});
  int64_t after = 0;
  if (!req.page_token().empty()) {
    CG_ASSIGN_OR_RETURN(auto payload, page_tokens_->Decode(req.page_token(), query_hash, call.principal));
    after = payload.offset();
  }
  CG_ASSIGN_OR_RETURN(auto cluster, repo_->Get(id));
  if (!cluster.has_value()) return absl::NotFoundError(absl::StrCat("clusters/", id, " not found"));
  CG_ASSIGN_OR_RETURN(auto designations, repo_->ListDesignations(id, after, page_size));
  v1::ListTierDesignationsResponse resp;
  for (size_t i = 0; i < designations.size() && static_cast<int>(i) < page_size; ++i) {
    *resp.add_designations() = std::move(designations[i]);
  }
  if (static_cast<int>(designations.size()) > page_size) {
    common::v1::PageTokenPayload next;
    next.set_query_hash(query_hash);
    next.set_offset(after + page_size);
    resp.set_next_page_token(page_tokens_->Encode(next, call.principal));
  }
  return resp;
}

absl::StatusOr<v1::TargetProgress> ClustersDomain::GetTargetProgress(const CallContext& call,
                                                                     const v1::GetTargetProgressRequest& req) {
  if (req.target_year() < 2000 || req.target_year() > 2100) {
    return InvalidField("target_year", "required: a year between 2000 and 2100");
  }
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto clusters, repo_->All());
    v1::TargetProgress progress;
    progress.set_target_year(req.target_year());
    for (Tier tier : {Tier::TIER_WORLD_CLASS, Tier::TIER_NATIONAL, Tier::TIER_REGION}) {
      auto* t = progress.add_tiers();
      t->set_tier(tier);
      t->set_goal_count(PlanGoal(req.target_year(), tier));
      for (const auto& c : clusters) {
        if (c.state() != v1::Cluster::ACTIVE) continue;
        if (c.tier() == tier) t->set_designated_count(t->designated_count() + 1);
        if (c.target_tier() != tier || c.target_year() > req.target_year()) continue;
        t->set_targeted_count(t->targeted_count() + 1);
        if (c.tier() >= tier) {
          t->set_achieved_count(t->achieved_count() + 1);
        } else {
          t->add_behind(c.name());
        }
      }
      progress.set_goal_total(progress.goal_total() + t->goal_count());
      progress.set_achieved_total(progress.achieved_total() + t->achieved_count());
    }
    return progress.SerializeAsString();
  };
  auto bytes = cache_ != nullptr
                   ? cache_->GetOrLoadList(kClustersCollection, absl::StrCat("progress:", req.target_year()), load)
                   : load();
  if (!bytes.ok()) return bytes.status();
  v1::TargetProgress progress;
  if (!progress.ParseFromString(*bytes)) return absl::InternalError("cached progress does not parse");
  return progress;
}

absl::StatusOr<v1::ListKeyTasksResponse> ClustersDomain::ListKeyTasks(const CallContext& call,
                                                                      const v1::ListKeyTasksRequest& req) {
  v1::ListKeyTasksResponse resp;
  for (const auto& t : key_tasks_) *resp.add_tasks() = t;
  return resp;
}

absl::StatusOr<v1::TaskProgress> ClustersDomain::UpdateTaskProgress(const CallContext& call,
                                                                    const v1::UpdateTaskProgressRequest& req) {
  const auto& input = req.task_progress();
  std::vector<std::string> parts = absl::StrSplit(input.name(), '/');
  int number = 0;
  if (parts.size() != 4 || parts[0] != "clusters" || !IsResourceId(parts[1]) || parts[2] != "taskProgress" ||
      !absl::SimpleAtoi(parts[3], &number) || FindTask(number) == nullptr || parts[3] != std::to_string(number)) {
    return InvalidField("task_progress.name",
                        absl::StrCat("must be clusters/{cluster_id}/taskProgress/{1..", key_tasks_.size(), "}"));
  }
  const std::string id = parts[1];
  CG_RETURN_IF_ERROR(store::ValidateRequestId(req.request_id()));
  bool set_status = req.update_mask().paths_size() == 0, set_percent = set_status, set_note = set_status;
  for (const auto& path : req.update_mask().paths()) {
    if (path == "status") {
      set_status = true;
    } else if (path == "percent") {
      set_percent = true;
    } else if (path == "note") {
      set_note = true;
    } else if (path == "*") {
      set_status = set_percent = set_note = true;
    } else {
      return InvalidField("update_mask", absl::StrCat("\"", path, "\" is not updatable; use status, percent, note"));
    }
  }
  FieldErrors errors;
  if (set_status && (!v1::TaskProgress::Status_IsValid(input.status()) ||
                     input.status() == v1::TaskProgress::STATUS_UNSPECIFIED)) {
    errors.Add("task_progress.status", "required: NOT_STARTED, IN_PROGRESS, COMPLETED or BLOCKED");
  }
  if (set_percent && (input.percent() < 0 || input.percent() > 100)) {
    errors.Add("task_progress.percent", "must be between 0 and 100");
  }
  if (set_note) CheckText(errors, "task_progress.note", input.note(), kMaxLongText, false);
  CG_RETURN_IF_ERROR(errors.ToStatus());
  const Principal& p = call.principal;
  const v1::KeyTask* task = FindTask(number);
  if (!p.HasRole(roles::kGovernment)) {
    return PermissionDenied("only the task's or the cluster's lead department may update task progress");
  }
  store::WriteContext w{&p, "UpdateTaskProgress", req.request_id(), call.request_id, "", &req};
  cache::PendingWrite pending(cache_.get(), {cache::Cache::GenerationKey(kTasksCollection)});
  auto updated = repo_->MutateTask(
      w, id, number,
      [&](const v1::TaskProgress& current, const v1::Cluster& cluster) -> absl::StatusOr<v1::TaskProgress> {
        if (!ActsForAnyDepartment(p, task->lead_departments()) && !ActsForAnyDepartment(p, cluster.lead_departments())) {
          return PermissionDenied(
              absl::StrCat("only a lead department of task ", number, " or of clusters/", id, " may update it"));
        }
        if (cluster.state() == v1::Cluster::DELETED) {
          return absl::FailedPreconditionError(absl::StrCat("clusters/", id, " is deleted"));
        }
        CG_RETURN_IF_ERROR(CheckEtag("task_progress.etag", input.etag(), current.etag()));
        v1::TaskProgress next = current;
        if (set_status) next.set_status(input.status());
        if (set_percent) next.set_percent(input.percent());
        if (set_note) next.set_note(input.note());
        if (next.status() == v1::TaskProgress::COMPLETED && next.percent() != 100) {
          return InvalidField("task_progress.percent", "must be 100 when the status is COMPLETED");
        }
        if (next.status() == v1::TaskProgress::NOT_STARTED && next.percent() != 0) {
          return InvalidField("task_progress.percent", "must be 0 when the status is NOT_STARTED");
        }
        return next;
      });
  return updated;
}

absl::StatusOr<v1::ListTaskProgressResponse> ClustersDomain::ListTaskProgress(const CallContext& call,
                                                                              const v1::ListTaskProgressRequest& req) {
  std::string id;
  if (req.parent() != "clusters/-") {
    CG_ASSIGN_OR_RETURN(id, ParseClusterName("parent", req.parent()));
  }
  CG_ASSIGN_OR_RETURN(ListPlan plan, PlanList(*page_tokens_, call.principal, req.page_size(), req.page_token(),
                                              req.filter(), repo_->TaskFilterFields(),
                                              {"ListTaskProgress", req.parent(), req.filter()}));
  TaskQuery query;
  query.cluster_id = id;
  query.filter = plan.filter;
  query.limit = plan.page_size;
  query.after_key = plan.after_key;
  if (!id.empty()) {
    CG_ASSIGN_OR_RETURN(auto cluster, LoadCached(id));
    (void)cluster;
  }
  auto load = [&]() -> absl::StatusOr<std::string> {
    CG_ASSIGN_OR_RETURN(auto tasks, repo_->ListTasks(query));
    v1::ListTaskProgressResponse resp;
    resp.set_next_page_token(
        TakePage(*page_tokens_, plan, tasks, resp.mutable_task_progress(), [](const v1::TaskProgress& t) {
          // Keyset "<cluster_id>/<task number, 3 digits>", as the repository orders them.
          std::vector<std::string> parts = absl::StrSplit(t.name(), '/');
          return absl::StrCat(parts[1], "/", absl::Dec(t.task_number(), absl::kZeroPad3));
        }));
    return resp.SerializeAsString();
  };
  std::string key = Hex(QueryHash({req.parent(), req.filter(), query.after_key, std::to_string(plan.page_size)}));
  auto bytes = cache_ != nullptr ? cache_->GetOrLoadList(kTasksCollection, key, load) : load();
  if (!bytes.ok()) return bytes.status();
  v1::ListTaskProgressResponse resp;
  if (!resp.ParseFromString(*bytes)) return absl::InternalError("cached list does not parse");
  CG_ASSIGN_OR_RETURN(*resp.mutable_next_page_token(),
                      NextPageTokenForCaller(*page_tokens_, plan, resp.next_page_token()));
  return resp;
}

absl::StatusOr<v1::ReferenceData> ClustersDomain::GetReferenceData(const CallContext& call,
                                                                   const v1::GetReferenceDataRequest& req) {
  v1::ReferenceData data;
  for (const auto& r : refdata::Regions()) {
    auto* out = data.add_regions();
    out->set_code(std::string(r.code));
    out->set_name_zh(std::string(r.name_zh));
    out->set_name_en(std::string(r.name_en));
  }
  for (const auto& d : refdata::Departments()) {
    auto* out = data.add_departments();
    out->set_code(std::string(d.code));
    out->set_name_zh(std::string(d.name_zh));
    out->set_name_en(std::string(d.name_en));
    out->set_kind(std::string(d.kind));
  }
  for (const auto& t : key_tasks_) *data.add_key_tasks() = t;
  return data;
}

absl::StatusOr<common::v1::ListAuditEventsResponse> ClustersDomain::ListAuditEvents(
    const CallContext& call, const common::v1::ListAuditEventsRequest& req) {
  return repo_->ListAuditEvents(call.principal, *page_tokens_, req);
}

absl::StatusOr<int> ClustersDomain::Seed(const v1::SeedData& seed) {
  std::vector<v1::Cluster> clusters;
  for (int i = 0; i < seed.clusters_size(); ++i) {
    const auto& s = seed.clusters(i);
    if (!IsResourceId(s.cluster_id())) {
      return InvalidField(absl::StrCat("clusters[", i, "].cluster_id"), "invalid cluster id");
    }
    CG_RETURN_IF_ERROR(ValidateCluster(s.cluster(), absl::StrCat("clusters[", i, "].cluster.")));
    v1::Cluster c = s.cluster();
    c.set_name(absl::StrCat("clusters/", s.cluster_id()));
    if (c.tier() == Tier::TIER_UNSPECIFIED) c.set_tier(Tier::TIER_NONE);
    c.set_state(v1::Cluster::ACTIVE);
    clusters.push_back(std::move(c));
  }
  Principal seeder{"system:seed", "system", {std::string(roles::kAdmin)}};
  cache::PendingWrite pending(cache_.get(), {cache::Cache::GenerationKey(kClustersCollection),
                                             cache::Cache::GenerationKey(kTasksCollection)});
  return repo_->CreateMissing(seeder, clusters, static_cast<int>(key_tasks_.size()));
}

}  // namespace clustergov::clusters

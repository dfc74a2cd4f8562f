#pragma once

// The talent domain: profiles with a personal-data rule, enterprise demands, deterministic
// matching with reasons, placements (consent, counts, reopening), and per-cluster statistics.

#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "clustergov/talent/v1/talent.pb.h"
#include "common/list/page_token.h"
#include "common/server/call.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/talent/talent_repository.h"

namespace clustergov::talent {

using server::CallContext;

class TalentDomain {
 public:
  TalentDomain(std::unique_ptr<TalentRepository> repository, enterprises::EnterpriseDirectory* enterprises,
               const PageTokenCodec* page_tokens);

  absl::StatusOr<v1::Talent> RegisterTalent(const CallContext& call, const v1::RegisterTalentRequest& req);
  absl::StatusOr<v1::Talent> GetTalent(const CallContext& call, const v1::GetTalentRequest& req);
  absl::StatusOr<v1::ListTalentsResponse> ListTalents(const CallContext& call, const v1::ListTalentsRequest& req);
  absl::StatusOr<v1::Talent> UpdateTalent(const CallContext& call, const v1::UpdateTalentRequest& req);
  // Level and programme memberships: granted by HR & Social Security alone.
  absl::StatusOr<v1::Talent> SetTalentLevel(const CallContext& call, const v1::SetTalentLevelRequest& req);
  absl::StatusOr<v1::Talent> GrantProgramme(const CallContext& call, const v1::GrantProgrammeRequest& req);
  absl::StatusOr<v1::Talent> RevokeProgramme(const CallContext& call, const v1::RevokeProgrammeRequest& req);
  absl::StatusOr<v1::Demand> PostDemand(const CallContext& call, const v1::PostDemandRequest& req);
  absl::StatusOr<v1::Demand> GetDemand(const CallContext& call, const v1::GetDemandRequest& req);
  absl::StatusOr<v1::ListDemandsResponse> ListDemands(const CallContext& call, const v1::ListDemandsRequest& req);
  absl::StatusOr<v1::Demand> CloseDemand(const CallContext& call, const v1::CloseDemandRequest& req);
  absl::StatusOr<v1::MatchTalentsResponse> MatchTalents(const CallContext& call, const v1::MatchTalentsRequest& req);
  absl::StatusOr<v1::Placement> CreatePlacement(const CallContext& call, const v1::CreatePlacementRequest& req);
  absl::StatusOr<v1::Placement> EndPlacement(const CallContext& call, const v1::EndPlacementRequest& req);
  absl::StatusOr<v1::ListPlacementsResponse> ListPlacements(const CallContext& call,
                                                            const v1::ListPlacementsRequest& req);
  absl::StatusOr<v1::TalentStatistics> GetTalentStatistics(const CallContext& call,
                                                           const v1::GetTalentStatisticsRequest& req);
  absl::StatusOr<v1::TalentReferenceData> GetReferenceData(const CallContext& call,
                                                           const v1::GetTalentReferenceDataRequest& req);
  absl::StatusOr<common::v1::ClusterIndicators> GetClusterIndicators(
      const CallContext& call, const common::v1::GetClusterIndicatorsRequest& req);
  absl::StatusOr<common::v1::ListAuditEventsResponse> ListAuditEvents(const CallContext& call,
                                                                      const common::v1::ListAuditEventsRequest& req);

  // Match score of a talent for a demand (0..100) and the reasons; exposed for tests.
  static int Score(const v1::Demand& demand, const MatchRow& row, std::vector<std::string>* reasons);
  // Loads the matching index now (at startup, once) and from then on keeps it current with the
  // talents written by every replica sharing the store.
  absl::Status LoadIndex();

  // The score alone, from the number of matched skills, the level and whether the region matches.
  static int ScoreValue(const v1::Demand& demand, int matched, int level, bool same_region);

 private:
  // An in-process index of every talent's (id, level, region, skills as a bitmask): matching
  // ranks from it in memory instead of a grouped SQL join. Loaded from the store (at startup or
  // on first use), kept current by this process's writes as they return and by the store's change
  // feed (LoadIndex: other replicas' writes; SQLite has none). Each entry carries the revision of
  // the record it was taken from and is only ever replaced by a newer one: writes finishing out
  // of order, an idempotent replay answering with an earlier response, or a notification read
  // after a later write never move it back.
  struct IndexEntry {
    std::string id;
    int level = 0;
    std::string region;
    uint32_t skills = 0;
    int64_t revision = 0;
  };
  absl::Status EnsureIndex();
  // Loads index_ from the store, index_mu_ held throughout: a write committed after the read's
  // snapshot is indexed after the load.
  absl::Status LoadIndexLocked();
  void IndexPut(const v1::Talent& t);
  // The change feed: a talent written is read again from the store; a resync reloads them all.
  // Either failing, the next match reloads the index.
  void RefreshIndex(const std::string& id);
  void ReloadIndex();
  // Passes a write's result through, indexing the talent it wrote.
  absl::StatusOr<v1::Talent> Indexed(absl::StatusOr<v1::Talent> t) {
    if (t.ok()) IndexPut(*t);
    return t;
  }

  // One grant by HR & Social Security on talents/{id}: checks the caller, the reason and the etag,
  // then applies `change` to the stored talent in one write, validated, audited and indexed.
  absl::StatusOr<v1::Talent> Grant(const CallContext& call, const google::protobuf::Message& req, const char* method,
                                   const std::string& name, const std::string& reason, const std::string& etag,
                                   const std::string& request_id,
                                   const std::function<absl::Status(v1::Talent&)>& change);

  // Clears personal data unless the caller may see it.
  absl::Status Redact(const Principal& p, v1::Talent* t);

  std::mutex index_mu_;
  bool index_loaded_ = false;
  std::vector<IndexEntry> index_;
  std::unordered_map<std::string, size_t> index_pos_;

  std::unique_ptr<TalentRepository> repo_;
  enterprises::EnterpriseDirectory* enterprises_;
  const PageTokenCodec* page_tokens_;
  std::unique_ptr<store::Subscription> follow_;  // last: stops calling back before the rest goes
};

}  // namespace clustergov::talent

#pragma once

// Persistence of evaluation rule sets, indicator snapshots and evaluations (the clusters
// service's store), behind an interface. Every write is one transaction with its audit event;
// a decision that changes the tier also writes the cluster and its tier designation in the
// same transaction.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "services/clusters/cluster_repository.h"

namespace clustergov::clusters {

// What a workflow step decided: the new evaluation and, for a tier change, the change to the
// cluster (applied in the same transaction; the designation's name is then recorded on the
// evaluation).
struct EvaluationChange {
  v1::Evaluation evaluation;
  std::optional<ClusterMutation> cluster_mutation;
  store::WriteContext cluster_write;  // method and reason of the cluster's audit event
};

using EvaluationMutation = std::function<absl::StatusOr<EvaluationChange>(const v1::Evaluation& current)>;
// A scheduled job's change to an evaluation that is no workflow step: gets the evaluation with its
// next etag and update time set, and the transaction (to publish); false leaves it unchanged.
using EvaluationMark = std::function<absl::StatusOr<bool>(v1::Evaluation& evaluation, store::Transaction& tx)>;
// Builds a new evaluation from the snapshot the transaction locks.
using OpenMutation = std::function<absl::StatusOr<v1::Evaluation>(const v1::IndicatorSnapshot& snapshot)>;

class EvaluationRepository : public store::Repository {
 public:
  virtual absl::StatusOr<std::optional<v1::RuleSet>> GetRuleSet(const std::string& id) = 0;
  // Newest first; `before_seq` 0 = from the newest. Each item's publication sequence in `seqs`.
  virtual absl::StatusOr<std::vector<v1::RuleSet>> ListRuleSets(int64_t before_seq, int limit,
                                                                std::vector<int64_t>* seqs) = 0;
  // ALREADY_EXISTS when the id is taken (published rule sets are never modified).
  virtual absl::StatusOr<v1::RuleSet> PublishRuleSet(const store::WriteContext& w, const std::string& id,
                                                     const v1::RuleSet& rule_set) = 0;
  // Publishes `rule_set` as `id` unless it exists; true when it was created.
  virtual absl::StatusOr<bool> SeedRuleSet(const Principal& actor, const std::string& id,
                                           const v1::RuleSet& rule_set) = 0;

  virtual absl::StatusOr<std::optional<v1::IndicatorSnapshot>> GetSnapshot(const std::string& cluster_id,
                                                                            int year) = 0;
  // Stores (or replaces) the snapshot of a cluster-year; FAILED_PRECONDITION when the stored one
  // is locked by an evaluation.
  virtual absl::StatusOr<v1::IndicatorSnapshot> PutSnapshot(const store::WriteContext& w, const std::string& cluster_id,
                                                            int year, const v1::IndicatorSnapshot& snapshot) = 0;

  virtual absl::StatusOr<std::optional<v1::Evaluation>> GetEvaluation(const std::string& cluster_id, int year) = 0;
  // Ordered by cluster id then year; `cluster_id` empty = every cluster, `year` 0 = every year.
  // Keyset `after_key` "<cluster_id> <year>" (a space sorts below every id character).
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(const std::string& cluster_id, int year,
                                                                      const std::string& after_key, int limit) = 0;
  // Opens the evaluation of a cluster-year: ALREADY_EXISTS when there is one. Uses the stored
  // snapshot, or stores `gathered` when there is none, and locks it, in one transaction.
  virtual absl::StatusOr<v1::Evaluation> OpenEvaluation(const store::WriteContext& w, const std::string& cluster_id,
                                                        int year, const std::optional<v1::IndicatorSnapshot>& gathered,
                                                        const OpenMutation& mutation) = 0;
  // Evaluations waiting at a level of the workflow (not decided), by cluster id and year.
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListWaitingEvaluations() = 0;
  // Applies `mark` to each of the cluster-years that exists, in one write; returns how many it changed.
  virtual absl::StatusOr<int> MarkEvaluations(const store::WriteContext& w,
                                              const std::vector<std::pair<std::string, int>>& cluster_years,
                                              const EvaluationMark& mark) = 0;
  // Read-modify-write of one evaluation (NOT_FOUND when missing).
  virtual absl::StatusOr<v1::Evaluation> MutateEvaluation(const store::WriteContext& w, const std::string& cluster_id,
                                                          int year, const EvaluationMutation& mutation) = 0;
};

absl::StatusOr<std::unique_ptr<EvaluationRepository>> CreateEvaluationRepository(store::Store* db);

}  // namespace clustergov::clusters

#pragma once

// Evaluation rule sets (versioned data) and the scoring of a cluster-year against one: pure
// functions of their inputs, no I/O, so an evaluation can be recomputed years later from its
// stored snapshot and rule set. See docs/evaluation.md for the method and a worked example.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clustergov/clusters/v1/clusters.pb.h"

namespace clustergov::clusters {

// The services an indicator may come from (the first part of its key).
bool IsIndicatorSource(absl::string_view source);

// Checks a rule set as published: INVALID_ARGUMENT naming every bad field under `prefix`
// (e.g. "rule_set."): weights not summing to 10,000, negative values, unknown or duplicate
// indicators, thresholds out of order, tiers or dimensions missing or repeated.
absl::Status ValidateRuleSet(const v1::RuleSet& rule_set, const std::string& prefix);

// Checks expert adjustments against the rule set: INVALID_ARGUMENT naming
// "<prefix>[i].indicator", "<prefix>[i].adjustment_bp" or "<prefix>[i].reason".
absl::Status ValidateAdjustments(const v1::RuleSet& rule_set,
                                 const google::protobuf::RepeatedPtrField<v1::ExpertAdjustment>& adjustments,
                                 const std::string& prefix);

struct ScoringInput {
  const v1::RuleSet* rule_set = nullptr;       // valid (ValidateRuleSet)
  const v1::IndicatorSnapshot* snapshot = nullptr;
  common::v1::Tier current_tier = common::v1::TIER_NONE;
  // Consecutive earlier evaluations of the cluster decided WARN, most recent first.
  int previous_warnings = 0;
  std::vector<v1::ExpertAdjustment> adjustments;  // valid (ValidateAdjustments)
};

// Scores a snapshot against a rule set: per indicator, dimension and gate, the qualified tier,
// the recommendation and the gaps. Rank and percentiles are left for ApplyStanding.
v1::EvaluationResult Score(const ScoringInput& input);

// The normalized value (0..10,000) of `raw` under `rule` with the tiers' min scores.
int32_t Normalize(const v1::IndicatorRule& rule, int64_t raw, int32_t region_score, int32_t national_score,
                  int32_t world_score);

// Fills rank, evaluated_count and every indicator's percentile of `target` among `year_results`
// (the results of every evaluation of the same year, `target` included).
void ApplyStanding(const std::vector<const v1::EvaluationResult*>& year_results, v1::EvaluationResult* target);

}  // namespace clustergov::clusters

#include "services/clusters/evaluation_rules.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status.h"
#include "common/status/validation.h"

namespace clustergov::clusters {
namespace {

using common::v1::Dimension;
using common::v1::Tier;

constexpr int32_t kFullScore = 10000;
constexpr size_t kMaxIndicators = 200;
constexpr size_t kMaxText = 2000;
constexpr Tier kTiers[] = {Tier::TIER_REGION, Tier::TIER_NATIONAL, Tier::TIER_WORLD_CLASS};
constexpr Dimension kDimensions[] = {Dimension::DIMENSION_SCALE, Dimension::DIMENSION_INNOVATION,
                                     Dimension::DIMENSION_MANUFACTURING, Dimension::DIMENSION_ECOSYSTEM};

// "<source>.<name>": a known source, then 1+ dot-separated lowercase codes.
bool ValidIndicatorKey(absl::string_view key) {
  if (key.size() > 128) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(key, '.');
  if (parts.size() < 2 || !IsIndicatorSource(parts[0])) return false;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (!IsLowerCode(parts[i])) return false;
  }
  return true;
}

// Half-up rounding of num / den for num >= 0, den > 0.
int64_t DivRound(__int128 num, __int128 den) { return static_cast<int64_t>((2 * num + den) / (2 * den)); }

const v1::TierRule* FindTier(const v1::RuleSet& rs, Tier tier) {
  for (const auto& t : rs.tiers()) {
    if (t.tier() == tier) return &t;
  }
  return nullptr;
}

int64_t TargetFor(const v1::IndicatorRule& rule, Tier tier) {
  switch (tier) {
    case Tier::TIER_REGION: return rule.region_target();
    case Tier::TIER_NATIONAL: return rule.national_target();
    case Tier::TIER_WORLD_CLASS: return rule.world_class_target();
    default: return rule.floor();
  }
}

Tier NextTier(Tier tier) {
  switch (tier) {
    case Tier::TIER_NONE:
    case Tier::TIER_UNSPECIFIED: return Tier::TIER_REGION;
    case Tier::TIER_REGION: return Tier::TIER_NATIONAL;
    case Tier::TIER_NATIONAL: return Tier::TIER_WORLD_CLASS;
    default: return Tier::TIER_UNSPECIFIED;
  }
}

std::string ShortTier(Tier tier) {
  switch (tier) {
    case Tier::TIER_REGION: return "region";
    case Tier::TIER_NATIONAL: return "national";
    case Tier::TIER_WORLD_CLASS: return "world-class";
    default: return "none";
  }
}

}  // namespace

bool IsIndicatorSource(absl::string_view source) {
  return source == "enterprises" || source == "promotion" || source == "support" || source == "talent";
}

absl::Status ValidateRuleSet(const v1::RuleSet& rs, const std::string& p) {
  FieldErrors errors;
  CheckText(errors, p + "title", rs.title(), 200, true);
  CheckText(errors, p + "description", rs.description(), kMaxText, false);
  if (rs.warnings_before_demotion() < 1 || rs.warnings_before_demotion() > 10) {
    errors.Add(p + "warnings_before_demotion", "must be 1 to 10");
  }

  // Tiers: exactly region, national, world-class; min scores strictly increasing within (0, 10,000).
  std::map<Tier, int32_t> tier_scores;
  for (int i = 0; i < rs.tiers_size(); ++i) {
    const auto& t = rs.tiers(i);
    const std::string f = absl::StrCat(p, "tiers[", i, "]");
    if (std::find(std::begin(kTiers), std::end(kTiers), t.tier()) == std::end(kTiers)) {
      errors.Add(f + ".tier", "must be TIER_REGION, TIER_NATIONAL or TIER_WORLD_CLASS");
      continue;
    }
    if (!tier_scores.emplace(t.tier(), t.min_score_bp()).second) {
      errors.Add(f + ".tier", absl::StrCat("duplicate tier ", common::v1::Tier_Name(t.tier())));
    }
    if (t.min_score_bp() <= 0 || t.min_score_bp() >= kFullScore) {
      errors.Add(f + ".min_score_bp", "must be between 1 and 9,999");
    }
    if (t.reward_cny_10k() < 0) errors.Add(f + ".reward_cny_10k", "must not be negative");
    CheckText(errors, f + ".reward_description", t.reward_description(), kMaxText, false);
  }
  if (tier_scores.size() != 3) {
    errors.Add(p + "tiers", "exactly one rule each for TIER_REGION, TIER_NATIONAL and TIER_WORLD_CLASS");
  } else {
    for (int i = 0; i < rs.tiers_size(); ++i) {
      Tier next = NextTier(rs.tiers(i).tier());
      if (next != Tier::TIER_UNSPECIFIED && tier_scores[next] <= rs.tiers(i).min_score_bp()) {
        errors.Add(absl::StrCat(p, "tiers[", i, "].min_score_bp"), "must be below the next tier's min score");
      }
    }
  }

  // Dimensions: each of the four exactly once, sub-minimum within 0..10,000.
  std::set<Dimension> dims;
  for (int i = 0; i < rs.dimensions_size(); ++i) {
    const auto& d = rs.dimensions(i);
    const std::string f = absl::StrCat(p, "dimensions[", i, "]");
    if (d.dimension() == Dimension::DIMENSION_UNSPECIFIED || !common::v1::Dimension_IsValid(d.dimension())) {
      errors.Add(f + ".dimension", "required: one of the four dimensions");
    } else if (!dims.insert(d.dimension()).second) {
      errors.Add(f + ".dimension", "duplicate dimension");
    }
    if (d.min_score_bp() < 0 || d.min_score_bp() > kFullScore) errors.Add(f + ".min_score_bp", "must be 0 to 10,000");
  }
  if (dims.size() != 4) errors.Add(p + "dimensions", "exactly one rule for each of the four dimensions");

  // Indicators.
  if (rs.indicators_size() == 0 || rs.indicators_size() > static_cast<int>(kMaxIndicators)) {
    errors.Add(p + "indicators", absl::StrCat("1 to ", kMaxIndicators, " indicators"));
  }
  std::set<std::string> keys;
  std::set<Dimension> weighted_dims;
  int64_t weight_sum = 0;
  for (int i = 0; i < rs.indicators_size(); ++i) {
    const auto& r = rs.indicators(i);
    const std::string f = absl::StrCat(p, "indicators[", i, "]");
    if (!ValidIndicatorKey(r.key())) {
      errors.Add(f + ".key", absl::StrCat("unknown indicator \"", r.key(),
                                          "\": must be <source>.<name> with source enterprises, promotion, "
                                          "support or talent and lowercase [a-z0-9_] names"));
    } else if (!keys.insert(r.key()).second) {
      errors.Add(f + ".key", absl::StrCat("duplicate indicator ", r.key()));
    }
    if (r.dimension() == Dimension::DIMENSION_UNSPECIFIED || !common::v1::Dimension_IsValid(r.dimension())) {
      errors.Add(f + ".dimension", "required: one of the four dimensions");
    }
    if (!IsLowerCode(r.unit())) errors.Add(f + ".unit", "required: a unit code such as count, cny_10k, bp");
    CheckText(errors, f + ".description", r.description(), 200, false);
    if (r.weight_bp() < 0 || r.weight_bp() > kFullScore) {
      errors.Add(f + ".weight_bp", "must be 0 to 10,000");
    } else {
      weight_sum += r.weight_bp();
      if (r.weight_bp() > 0) weighted_dims.insert(r.dimension());
    }
    if (r.max_expert_adjustment_bp() < 0 || r.max_expert_adjustment_bp() > kFullScore) {
      errors.Add(f + ".max_expert_adjustment_bp", "must be 0 to 10,000");
    }
    const int64_t points[] = {r.floor(), r.region_target(), r.national_target(), r.world_class_target(), r.ceiling()};
    const char* names[] = {"floor", "region_target", "national_target", "world_class_target", "ceiling"};
    for (int k = 0; k < 5; ++k) {
      if (points[k] < 0) errors.Add(absl::StrCat(f, ".", names[k]), "must not be negative");
    }
    for (int k = 1; k < 5; ++k) {
      bool ordered = r.lower_is_better() ? points[k] < points[k - 1] : points[k] > points[k - 1];
      if (!ordered) {
        errors.Add(absl::StrCat(f, ".", names[k]),
                   absl::StrCat("thresholds out of order: must be ", r.lower_is_better() ? "below" : "above", " ",
                                names[k - 1], " (", points[k - 1], ")"));
      }
    }
  }
  if (rs.indicators_size() > 0 && weight_sum != kFullScore) {
    errors.Add(p + "indicators", absl::StrCat("weights sum to ", weight_sum, " basis points; they must sum to 10,000"));
  }
  for (Dimension d : kDimensions) {
    if (dims.count(d) > 0 && weighted_dims.count(d) == 0 && weight_sum == kFullScore) {
      errors.Add(p + "indicators", absl::StrCat("dimension ", common::v1::Dimension_Name(d),
                                                " has no indicator with a weight"));
    }
  }

  // Gates: the six basic conditions (at least one), criteria on the rule set's indicators.
  if (rs.gates_size() == 0) errors.Add(p + "gates", "at least one gate (the basic conditions)");
  std::set<std::string> gate_codes;
  for (int i = 0; i < rs.gates_size(); ++i) {
    const auto& g = rs.gates(i);
    const std::string f = absl::StrCat(p, "gates[", i, "]");
    if (!IsLowerCode(g.code())) {
      errors.Add(f + ".code", "required: lowercase [a-z0-9_]");
    } else if (!gate_codes.insert(g.code()).second) {
      errors.Add(f + ".code", "duplicate gate");
    }
    CheckText(errors, f + ".title_zh", g.title_zh(), 200, true);
    CheckText(errors, f + ".title_en", g.title_en(), 200, false);
    if (g.criteria_size() == 0) errors.Add(f + ".criteria", "at least one criterion");
    for (int k = 0; k < g.criteria_size(); ++k) {
      const auto& c = g.criteria(k);
      const std::string cf = absl::StrCat(f, ".criteria[", k, "]");
      if (keys.count(c.indicator()) == 0) {
        errors.Add(cf + ".indicator", absl::StrCat("unknown indicator \"", c.indicator(), "\": not in the rule set"));
      }
      if (c.min_value() < 0) errors.Add(cf + ".min_value", "must not be negative");
    }
  }
  return errors.ToStatus();
}

absl::Status ValidateAdjustments(const v1::RuleSet& rs,
                                 const google::protobuf::RepeatedPtrField<v1::ExpertAdjustment>& adjustments,
                                 const std::string& p) {
  FieldErrors errors;
  std::set<std::string> seen;
  for (int i = 0; i < adjustments.size(); ++i) {
    const auto& a = adjustments.Get(i);
    const std::string f = absl::StrCat(p, "[", i, "]");
    const v1::IndicatorRule* rule = nullptr;
    for (const auto& r : rs.indicators()) {
      if (r.key() == a.indicator()) rule = &r;
    }
    if (rule == nullptr) {
      errors.Add(f + ".indicator", absl::StrCat("unknown indicator \"", a.indicator(), "\" in ", rs.name()));
    } else if (!seen.insert(a.indicator()).second) {
      errors.Add(f + ".indicator", "duplicate: one adjustment per indicator");
    } else if (a.adjustment_bp() < -rule->max_expert_adjustment_bp() ||
               a.adjustment_bp() > rule->max_expert_adjustment_bp()) {
      errors.Add(f + ".adjustment_bp", absl::StrCat("outside the allowed adjustment of ±",
                                                    rule->max_expert_adjustment_bp(), " for ", a.indicator()));
    }
    CheckText(errors, f + ".reason", a.reason(), kMaxText, true);
  }
  return errors.ToStatus();
}

int32_t Normalize(const v1::IndicatorRule& r, int64_t raw, int32_t region_score, int32_t national_score,
                  int32_t world_score) {
  const int64_t xs[] = {r.floor(), r.region_target(), r.national_target(), r.world_class_target(), r.ceiling()};
  const int32_t ys[] = {0, region_score, national_score, world_score, kFullScore};
  // Distance along the direction of "better": the same code serves both directions.
  auto better = [&](int64_t a, int64_t b) { return r.lower_is_better() ? a < b : a > b; };
  if (!better(raw, xs[0])) return 0;
  if (!better(xs[4], raw)) return kFullScore;
  for (int k = 0; k < 4; ++k) {
    if (!better(raw, xs[k + 1])) {
      __int128 dx = raw > xs[k] ? raw - xs[k] : xs[k] - raw;
      __int128 span = xs[k + 1] > xs[k] ? xs[k + 1] - xs[k] : xs[k] - xs[k + 1];
      return static_cast<int32_t>(ys[k] + DivRound(dx * (ys[k + 1] - ys[k]), span));
    }
  }
  return kFullScore;
}

v1::EvaluationResult Score(const ScoringInput& in) {
  const v1::RuleSet& rs = *in.rule_set;
  v1::EvaluationResult out;
  out.set_rule_set(rs.name());
  out.set_current_tier(in.current_tier == Tier::TIER_UNSPECIFIED ? Tier::TIER_NONE : in.current_tier);
  const Tier current = out.current_tier();
  const int32_t s_region = FindTier(rs, Tier::TIER_REGION)->min_score_bp();
  const int32_t s_national = FindTier(rs, Tier::TIER_NATIONAL)->min_score_bp();
  const int32_t s_world = FindTier(rs, Tier::TIER_WORLD_CLASS)->min_score_bp();
  const Tier next = NextTier(current);

  std::map<std::string, const common::v1::Indicator*> values;
  for (const auto& i : in.snapshot->indicators()) values[i.key()] = &i;
  std::map<std::string, int32_t> adjustments;
  for (const auto& a : in.adjustments) adjustments[a.indicator()] = a.adjustment_bp();

  struct DimAcc {
    __int128 weighted = 0;
    int64_t weights = 0;
    int32_t contribution = 0;
  };
  std::map<Dimension, DimAcc> dims;
  std::map<std::string, int64_t> raw_by_key;
  int32_t total = 0;
  for (const auto& r : rs.indicators()) {
    auto* res = out.add_indicators();
    res->set_key(r.key());
    res->set_dimension(r.dimension());
    res->set_unit(r.unit());
    auto it = values.find(r.key());
    const int64_t raw = it == values.end() ? 0 : it->second->value();
    res->set_missing(it == values.end());
    res->set_raw(raw);
    raw_by_key[r.key()] = raw;
    const int32_t normalized = Normalize(r, raw, s_region, s_national, s_world);
    const int32_t adjustment = adjustments.count(r.key()) > 0 ? adjustments[r.key()] : 0;
    const int32_t adjusted = std::clamp(normalized + adjustment, 0, kFullScore);
    res->set_normalized_bp(normalized);
    res->set_adjustment_bp(adjusted - normalized);
    res->set_adjusted_bp(adjusted);
    res->set_weight_bp(r.weight_bp());
    const int32_t contribution = static_cast<int32_t>(DivRound(static_cast<__int128>(adjusted) * r.weight_bp(), kFullScore));
    res->set_contribution_bp(contribution);
    total += contribution;
    if (next != Tier::TIER_UNSPECIFIED) {
      const int64_t target = TargetFor(r, next);
      res->set_next_tier_target(target);
      res->set_gap_to_next_tier(r.lower_is_better() ? std::max<int64_t>(0, raw - target)
                                                    : std::max<int64_t>(0, target - raw));
    }
    DimAcc& d = dims[r.dimension()];
    d.weighted += static_cast<__int128>(adjusted) * r.weight_bp();
    d.weights += r.weight_bp();
    d.contribution += contribution;
  }
  out.set_total_score_bp(total);

  bool sub_minima_met = true;
  for (const auto& rule : rs.dimensions()) {
    auto* d = out.add_dimensions();
    const DimAcc& acc = dims[rule.dimension()];
    d->set_dimension(rule.dimension());
    d->set_score_bp(acc.weights > 0 ? static_cast<int32_t>(DivRound(acc.weighted, acc.weights)) : 0);
    d->set_min_score_bp(rule.min_score_bp());
    d->set_sub_minimum_met(d->score_bp() >= rule.min_score_bp());
    d->set_contribution_bp(acc.contribution);
    sub_minima_met = sub_minima_met && d->sub_minimum_met();
  }
  out.set_sub_minima_met(sub_minima_met);

  bool gates_passed = true;
  for (const auto& g : rs.gates()) {
    auto* res = out.add_gates();
    res->set_code(g.code());
    res->set_title_zh(g.title_zh());
    bool passed = true;
    for (const auto& c : g.criteria()) {
      const int64_t v = raw_by_key[c.indicator()];
      const bool ok = v >= c.min_value();
      passed = passed && ok;
      res->add_reasons(absl::StrCat(c.indicator(), " = ", v, ok ? " >= " : " < ", c.min_value()));
    }
    res->set_passed(passed);
    gates_passed = gates_passed && passed;
  }
  out.set_gates_passed(gates_passed);

  Tier qualified = Tier::TIER_NONE;
  for (Tier tier : kTiers) {
    const int32_t need = FindTier(rs, tier)->min_score_bp();
    auto* gap = out.add_tier_gaps();
    gap->set_tier(tier);
    gap->set_min_score_bp(need);
    gap->set_score_gap_bp(std::max(0, need - total));
    gap->set_qualifies(total >= need && gates_passed && sub_minima_met);
    if (gap->qualifies()) qualified = tier;
    if (tier == next) *out.mutable_next_tier_gap() = *gap;
  }
  out.set_qualified_tier(qualified);

  std::string why = absl::StrCat("total ", total, " bp; qualifies for ", ShortTier(qualified));
  if (!gates_passed) absl::StrAppend(&why, " (a basic condition is not met)");
  if (!sub_minima_met) absl::StrAppend(&why, " (a dimension is below its sub-minimum)");
  if (qualified > current) {
    out.set_recommendation(v1::PROMOTE);
    out.set_recommended_tier(qualified);
    absl::StrAppend(&why, "; above the current tier ", ShortTier(current));
  } else if (qualified == current) {
    out.set_recommendation(v1::KEEP);
    out.set_recommended_tier(current);
    absl::StrAppend(&why, "; the current tier ", ShortTier(current), " holds");
  } else if (in.previous_warnings >= rs.warnings_before_demotion()) {
    out.set_recommendation(v1::DEMOTE);
    out.set_recommended_tier(qualified);
    absl::StrAppend(&why, "; below the current tier ", ShortTier(current), " after ", in.previous_warnings,
                    " warning(s)");
  } else {
    out.set_recommendation(v1::WARN);
    out.set_recommended_tier(current);
    absl::StrAppend(&why, "; below the current tier ", ShortTier(current), ": warning ", in.previous_warnings + 1,
                    " of ", rs.warnings_before_demotion());
  }
  out.set_recommendation_reason(why);
  return out;
}

void ApplyStanding(const std::vector<const v1::EvaluationResult*>& year, v1::EvaluationResult* target) {
  int higher = 0;
  for (const auto* r : year) {
    if (r->total_score_bp() > target->total_score_bp()) ++higher;
  }
  target->set_rank(higher + 1);
  target->set_evaluated_count(static_cast<int32_t>(year.size()));
  for (int i = 0; i < target->indicators_size(); ++i) {
    auto* ind = target->mutable_indicators(i);
    int64_t at_or_below = 0, n = 0;
    for (const auto* r : year) {
      for (const auto& other : r->indicators()) {
        if (other.key() != ind->key()) continue;
        ++n;
        if (other.raw() <= ind->raw()) ++at_or_below;
      }
    }
    ind->set_percentile_bp(n > 0 ? static_cast<int32_t>(DivRound(at_or_below * kFullScore, n)) : 0);
  }
}

}  // namespace clustergov::clusters

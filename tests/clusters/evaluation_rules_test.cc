// The evaluation rules as data and the scoring function, against the worked example of
// docs/evaluation.md (the Hohhot dairy cluster), computed there by hand.

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/status/status.h"
#include "services/clusters/evaluation_rules.h"
#include "services/clusters/seed.h"

namespace clustergov::clusters {
namespace {

using common::v1::Dimension;
using common::v1::Tier;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

v1::RuleSet DefaultRules() {
  auto rs = LoadDefaultRuleSet();
  EXPECT_TRUE(rs.ok()) << rs.status();
  rs->set_name("ruleSets/v1");
  return *rs;
}

std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> out;
  for (const auto& v : GetFieldViolations(status)) out.push_back(v.field);
  return out;
}

// The dairy cluster's 2026 figures of the worked example.
v1::IndicatorSnapshot DairySnapshot() {
  const std::map<std::string, int64_t> values = {
      {"enterprises.annual_output", 12000000},
      {"enterprises.members.total", 120},
      {"enterprises.strength.max_location_quotient", 25000},
      {"promotion.rd_intensity", 200},
      {"promotion.patents", 650},
      {"enterprises.certifications.little_giant", 6},
      {"enterprises.certifications.smart_factory", 10},
      {"enterprises.certifications.single_champion", 4},
      {"enterprises.certifications.green_factory", 12},
      {"enterprises.supply_links.large_sme", 60},
      {"talent.placements.total", 45},
      {"talent.placements.dual_appointment", 8},
  };
  v1::IndicatorSnapshot s;
  s.set_name("clusters/hohhot-dairy/snapshots/2026");
  for (const auto& [key, value] : values) {
    auto* i = s.add_indicators();
    i->set_key(key);
    i->set_value(value);
    i->set_source(key.substr(0, key.find('.')));
  }
  return s;
}

const v1::IndicatorResult& Indicator(const v1::EvaluationResult& r, const std::string& key) {
  for (const auto& i : r.indicators()) {
    if (i.key() == key) return i;
  }
  ADD_FAILURE() << "no indicator " << key;
  static v1::IndicatorResult none;
  return none;
}

const v1::DimensionResult& DimensionOf(const v1::EvaluationResult& r, Dimension d) {
  for (const auto& x : r.dimensions()) {
    if (x.dimension() == d) return x;
  }
  ADD_FAILURE() << "no dimension " << d;
  static v1::DimensionResult none;
  return none;
}

TEST(EvaluationRulesTest, DefaultRuleSetIsValid) {
  v1::RuleSet rs = DefaultRules();
  EXPECT_TRUE(ValidateRuleSet(rs, "rule_set.").ok()) << ValidateRuleSet(rs, "rule_set.");
  EXPECT_EQ(rs.indicators_size(), 12);
  EXPECT_EQ(rs.gates_size(), 6);
}

TEST(EvaluationRulesTest, DairyWorkedExample) {
  v1::RuleSet rs = DefaultRules();
  v1::IndicatorSnapshot snapshot = DairySnapshot();
  ScoringInput in;
  in.rule_set = &rs;
  in.snapshot = &snapshot;
  in.current_tier = Tier::TIER_NONE;
  v1::EvaluationResult r = Score(in);

  // Per indicator: normalized value and contribution, as in docs/evaluation.md.
  const std::vector<std::tuple<std::string, int, int>> expected = {
      {"enterprises.annual_output", 8200, 1230},
      {"enterprises.members.total", 8200, 656},
      {"enterprises.strength.max_location_quotient", 9500, 665},
      {"promotion.rd_intensity", 7000, 700},
      {"promotion.patents", 8300, 581},
      {"enterprises.certifications.little_giant", 7200, 576},
      {"enterprises.certifications.smart_factory", 8286, 746},
      {"enterprises.certifications.single_champion", 8333, 667},
      {"enterprises.certifications.green_factory", 8571, 686},
      {"enterprises.supply_links.large_sme", 8200, 574},
      {"talent.placements.total", 7667, 537},
      {"talent.placements.dual_appointment", 6600, 396},
  };
  for (const auto& [key, normalized, contribution] : expected) {
    const auto& i = Indicator(r, key);
    EXPECT_EQ(i.normalized_bp(), normalized) << key;
    EXPECT_EQ(i.adjusted_bp(), normalized) << key;
    EXPECT_EQ(i.contribution_bp(), contribution) << key;
    EXPECT_FALSE(i.missing()) << key;
  }
  // The next tier of an undesignated cluster is region-level: every target is met.
  EXPECT_EQ(Indicator(r, "talent.placements.total").next_tier_target(), 20);
  EXPECT_EQ(Indicator(r, "talent.placements.total").gap_to_next_tier(), 0);

  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_SCALE).score_bp(), 8503);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_SCALE).contribution_bp(), 2551);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_INNOVATION).score_bp(), 7428);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_INNOVATION).contribution_bp(), 1857);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_MANUFACTURING).score_bp(), 8392);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_MANUFACTURING).contribution_bp(), 2099);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_ECOSYSTEM).score_bp(), 7533);
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_ECOSYSTEM).contribution_bp(), 1507);
  for (const auto& d : r.dimensions()) EXPECT_TRUE(d.sub_minimum_met()) << d.dimension();

  EXPECT_EQ(r.total_score_bp(), 8014);
  EXPECT_TRUE(r.gates_passed());
  for (const auto& g : r.gates()) EXPECT_TRUE(g.passed()) << g.code();
  EXPECT_EQ(r.gates(0).reasons(0), "enterprises.strength.max_location_quotient = 25000 >= 10000");
  EXPECT_EQ(r.qualified_tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(r.recommendation(), v1::PROMOTE);
  EXPECT_EQ(r.recommended_tier(), Tier::TIER_NATIONAL);
  EXPECT_EQ(r.next_tier_gap().tier(), Tier::TIER_REGION);
  EXPECT_EQ(r.next_tier_gap().score_gap_bp(), 0);
  ASSERT_EQ(r.tier_gaps_size(), 3);
  EXPECT_EQ(r.tier_gaps(2).tier(), Tier::TIER_WORLD_CLASS);
  EXPECT_EQ(r.tier_gaps(2).score_gap_bp(), 986);
  EXPECT_FALSE(r.tier_gaps(2).qualifies());

  // Experts raise patents by 500 (the limit is 1,000): 8,800 × 700 / 10,000 = 616, total 8,049.
  v1::ExpertAdjustment a;
  a.set_indicator("promotion.patents");
  a.set_adjustment_bp(500);
  a.set_reason("PCT filings not yet granted");
  in.adjustments = {a};
  v1::EvaluationResult adjusted = Score(in);
  EXPECT_EQ(Indicator(adjusted, "promotion.patents").normalized_bp(), 8300);
  EXPECT_EQ(Indicator(adjusted, "promotion.patents").adjusted_bp(), 8800);
  EXPECT_EQ(Indicator(adjusted, "promotion.patents").contribution_bp(), 616);
  EXPECT_EQ(adjusted.total_score_bp(), 8049);

  // As a national-level cluster, the next tier is world-class.
  in.adjustments.clear();
  in.current_tier = Tier::TIER_NATIONAL;
  v1::EvaluationResult national = Score(in);
  EXPECT_EQ(national.recommendation(), v1::KEEP);
  EXPECT_EQ(national.next_tier_gap().tier(), Tier::TIER_WORLD_CLASS);
  EXPECT_EQ(national.next_tier_gap().score_gap_bp(), 986);
  EXPECT_EQ(Indicator(national, "enterprises.annual_output").next_tier_target(), 20000000);
  EXPECT_EQ(Indicator(national, "enterprises.annual_output").gap_to_next_tier(), 8000000);
}

TEST(EvaluationRulesTest, WarnThenDemote) {
  v1::RuleSet rs = DefaultRules();
  v1::IndicatorSnapshot snapshot = DairySnapshot();
  ScoringInput in;
  in.rule_set = &rs;
  in.snapshot = &snapshot;
  in.current_tier = Tier::TIER_WORLD_CLASS;
  EXPECT_EQ(Score(in).recommendation(), v1::WARN);
  EXPECT_EQ(Score(in).recommended_tier(), Tier::TIER_WORLD_CLASS);
  in.previous_warnings = 1;
  EXPECT_EQ(Score(in).recommendation(), v1::DEMOTE);
  EXPECT_EQ(Score(in).recommended_tier(), Tier::TIER_NATIONAL);
}

TEST(EvaluationRulesTest, FailedGateAndSubMinimumDisqualify) {
  v1::RuleSet rs = DefaultRules();
  v1::IndicatorSnapshot snapshot = DairySnapshot();
  for (auto& i : *snapshot.mutable_indicators()) {
    if (i.key() == "enterprises.certifications.green_factory") i.set_value(0);
  }
  ScoringInput in;
  in.rule_set = &rs;
  in.snapshot = &snapshot;
  v1::EvaluationResult r = Score(in);
  EXPECT_FALSE(r.gates_passed());
  for (const auto& g : r.gates()) {
    if (g.code() == "green_development") {
      EXPECT_FALSE(g.passed());
      EXPECT_THAT(g.reasons(), ElementsAre("enterprises.certifications.green_factory = 0 < 1"));
    }
  }
  EXPECT_EQ(r.qualified_tier(), Tier::TIER_NONE);
  EXPECT_EQ(r.recommendation(), v1::KEEP);

  // Innovation far below its sub-minimum of 4,000; an indicator missing from the snapshot is 0.
  snapshot = DairySnapshot();
  google::protobuf::RepeatedPtrField<common::v1::Indicator> kept;
  for (const auto& i : snapshot.indicators()) {
    if (i.key() != "promotion.rd_intensity" && i.key() != "promotion.patents") *kept.Add() = i;
  }
  *snapshot.mutable_indicators() = kept;
  r = Score(in);
  EXPECT_TRUE(Indicator(r, "promotion.patents").missing());
  EXPECT_EQ(DimensionOf(r, Dimension::DIMENSION_INNOVATION).score_bp(), 2304);  // 7,200 × 800 / 2,500
  EXPECT_FALSE(DimensionOf(r, Dimension::DIMENSION_INNOVATION).sub_minimum_met());
  EXPECT_FALSE(r.sub_minima_met());
  EXPECT_EQ(r.qualified_tier(), Tier::TIER_NONE);
}

TEST(EvaluationRulesTest, NormalizeBothDirections) {
  v1::IndicatorRule up;
  up.set_floor(0);
  up.set_region_target(10);
  up.set_national_target(20);
  up.set_world_class_target(40);
  up.set_ceiling(80);
  EXPECT_EQ(Normalize(up, 0, 6000, 8000, 9000), 0);
  EXPECT_EQ(Normalize(up, 5, 6000, 8000, 9000), 3000);
  EXPECT_EQ(Normalize(up, 10, 6000, 8000, 9000), 6000);
  EXPECT_EQ(Normalize(up, 30, 6000, 8000, 9000), 8500);
  EXPECT_EQ(Normalize(up, 60, 6000, 8000, 9000), 9500);
  EXPECT_EQ(Normalize(up, 1000, 6000, 8000, 9000), 10000);
  v1::IndicatorRule down;  // e.g. energy per unit of output: lower is better
  down.set_lower_is_better(true);
  down.set_floor(100);
  down.set_region_target(80);
  down.set_national_target(60);
  down.set_world_class_target(50);
  down.set_ceiling(30);
  EXPECT_EQ(Normalize(down, 120, 6000, 8000, 9000), 0);
  EXPECT_EQ(Normalize(down, 90, 6000, 8000, 9000), 3000);
  EXPECT_EQ(Normalize(down, 70, 6000, 8000, 9000), 7000);
  EXPECT_EQ(Normalize(down, 40, 6000, 8000, 9000), 9500);
  EXPECT_EQ(Normalize(down, 10, 6000, 8000, 9000), 10000);
}

TEST(EvaluationRulesTest, InvalidRuleSetsNameTheField) {
  v1::RuleSet rs = DefaultRules();
  rs.mutable_indicators(0)->set_weight_bp(1000);  // sum 9,500
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.indicators"));

  rs = DefaultRules();
  rs.mutable_indicators(1)->set_national_target(40);  // below region_target 50
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.indicators[1].national_target"));

  rs = DefaultRules();
  rs.mutable_indicators(2)->set_floor(-1);
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.indicators[2].floor"));

  rs = DefaultRules();
  rs.mutable_indicators(3)->set_weight_bp(-1000);
  rs.mutable_indicators(4)->set_weight_bp(1700);
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), UnorderedElementsAre("rule_set.indicators[3].weight_bp"));

  rs = DefaultRules();
  rs.mutable_indicators(5)->set_key("weather.sunshine_hours");
  auto fields = Fields(ValidateRuleSet(rs, "rule_set."));
  EXPECT_THAT(fields, ::testing::Contains("rule_set.indicators[5].key"));

  rs = DefaultRules();
  rs.mutable_gates(0)->mutable_criteria(0)->set_indicator("enterprises.unknown");
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.gates[0].criteria[0].indicator"));

  rs = DefaultRules();
  rs.mutable_tiers(1)->set_min_score_bp(5000);  // national below region
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.tiers[0].min_score_bp"));

  rs = DefaultRules();
  rs.mutable_dimensions()->RemoveLast();
  EXPECT_THAT(Fields(ValidateRuleSet(rs, "rule_set.")), ElementsAre("rule_set.dimensions"));
}

TEST(EvaluationRulesTest, AdjustmentsWithinTheRuleSetsLimits) {
  v1::RuleSet rs = DefaultRules();
  google::protobuf::RepeatedPtrField<v1::ExpertAdjustment> adj;
  auto* a = adj.Add();
  a->set_indicator("promotion.patents");
  a->set_adjustment_bp(1001);
  a->set_reason("too generous");
  auto* b = adj.Add();
  b->set_indicator("promotion.unknown");
  b->set_adjustment_bp(10);
  b->set_reason("x");
  auto* c = adj.Add();
  c->set_indicator("talent.placements.total");
  c->set_adjustment_bp(-1000);
  EXPECT_THAT(Fields(ValidateAdjustments(rs, adj, "adjustments")),
              ElementsAre("adjustments[0].adjustment_bp", "adjustments[1].indicator", "adjustments[2].reason"));
  a->set_adjustment_bp(-1000);
  adj.RemoveLast();
  adj.RemoveLast();
  EXPECT_TRUE(ValidateAdjustments(rs, adj, "adjustments").ok());
}

TEST(EvaluationRulesTest, RankAndPercentiles) {
  v1::RuleSet rs = DefaultRules();
  v1::IndicatorSnapshot dairy = DairySnapshot();
  v1::IndicatorSnapshot smaller = DairySnapshot();
  for (auto& i : *smaller.mutable_indicators()) i.set_value(i.value() / 2);
  ScoringInput in;
  in.rule_set = &rs;
  in.snapshot = &dairy;
  v1::EvaluationResult a = Score(in);
  in.snapshot = &smaller;
  v1::EvaluationResult b = Score(in);
  ApplyStanding({&a, &b}, &a);
  ApplyStanding({&a, &b}, &b);
  EXPECT_EQ(a.rank(), 1);
  EXPECT_EQ(b.rank(), 2);
  EXPECT_EQ(a.evaluated_count(), 2);
  EXPECT_EQ(Indicator(a, "promotion.patents").percentile_bp(), 10000);
  EXPECT_EQ(Indicator(b, "promotion.patents").percentile_bp(), 5000);
}

}  // namespace
}  // namespace clustergov::clusters

// Matching over a large talent pool, in-process: the talent service's SQLite repository and
// domain (no gRPC, no Redis) on a temporary database file.
//
//   clustergov-bench-talent-match --talents=50000 --runs=50
//
// Fill: --talents talents with seeded pseudo-random field, 1-5 skills, level, region, home
// institution kind and 0-2 programmes, written through the repository in batches of --batch per
// transaction (the same PutTalent the service uses, so the skill and programme index tables are
// filled as in production). Demands are written through the repository too (PostDemand would ask
// the enterprises service about membership): 1, 3, 5 and 10 skills.
//
// Measured, each --runs times after --warmup runs:
//   - MatchTalents, first page of --page_size, for each demand, as the posting enterprise (its
//     contact check runs per candidate) and as HR & Social Security; the second page once more;
//   - the repository's MatchRows alone (the SQL part of matching), per demand;
//   - ListTalents with a filter, first page of --page_size.
// Every MatchTalents run must return the same page as the first (determinism), or the run fails.
//
// Prints one line per figure: median and p99 (nearest rank) in milliseconds.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"
#include "common/store/sqlite.h"
#include "services/talent/talent_domain.h"
#include "services/talent/talent_repository.h"

ABSL_FLAG(int, talents, 50000, "talents in the pool");
ABSL_FLAG(int, runs, 50, "measured runs per figure");
ABSL_FLAG(int, warmup, 3, "unmeasured runs before each figure");
ABSL_FLAG(int, page_size, 20, "page size of MatchTalents and ListTalents");
ABSL_FLAG(int, batch, 1000, "talents per write transaction while filling");
ABSL_FLAG(uint32_t, seed, 20250601, "seed of the synthetic pool");
ABSL_FLAG(std::string, db, "", "database file (default: a fresh temporary file, removed afterwards)");

namespace {

namespace cg = ::clustergov;
namespace v1 = ::clustergov::talent::v1;
using clustergov::bench::Clock;

int Fail(const std::string& what) {
  std::fprintf(stderr, "talent_match: %s\n", what.c_str());
  return 1;
}

using clustergov::bench::Ms;
using clustergov::bench::Percentile;

// Runs `fn` --warmup times, then --runs times timed; prints the figure. False when `fn` fails.
bool Measure(const std::string& label, const std::function<bool()>& fn) {
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) {
    if (!fn()) return false;
  }
  std::vector<double> samples;
  for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
    const auto start = Clock::now();
    if (!fn()) return false;
    samples.push_back(Ms(Clock::now() - start));
  }
  const double median = Percentile(samples, 0.5);
  const double p99 = Percentile(samples, 0.99);
  std::printf("talent_match: %-58s median_ms=%8.2f p99_ms=%8.2f (runs=%zu)\n", label.c_str(), median, p99,
              samples.size());
  return true;
}

cg::Principal Government(const std::string& department) {
  return cg::Principal{"bench." + department, "departments/" + department, {"government"}};
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int talents = absl::GetFlag(FLAGS_talents);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int page_size = absl::GetFlag(FLAGS_page_size);
  if (talents <= 0 || batch <= 0 || page_size <= 0 || absl::GetFlag(FLAGS_runs) <= 0 ||
      absl::GetFlag(FLAGS_warmup) < 0) {
    return Fail("--talents, --batch, --page_size and --runs must be positive, --warmup not negative");
  }

  // The database: a fresh temporary file unless --db names one.
  std::string db_path = absl::GetFlag(FLAGS_db);
  std::string temp_dir;
  if (db_path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/talent-match-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return Fail("cannot create a temporary directory");
    temp_dir = pattern;
    db_path = temp_dir + "/talent.db";
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (!dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
      }
    }
  } cleanup{temp_dir};

  {
    cg::store::DatabaseOptions options;
    options.path = db_path;
    options.synchronous_full = false;
    auto db = cg::store::Database::Open(options);
    if (!db.ok()) return Fail(std::string(db.status().message()));
    auto created = cg::talent::CreateTalentRepository(db->get());
    if (!created.ok()) return Fail(std::string(created.status().message()));
    cg::talent::TalentRepository* repo = created->get();
    const cg::PageTokenCodec page_tokens("talent-match-bench-page-token-secret");
    // No EnterpriseDirectory: PostDemand is not called (demands are written through the repository).
    cg::talent::TalentDomain domain(std::move(*created), nullptr, &page_tokens);

    const cg::Principal hr = Government("hr_social_security");
    cg::server::CallContext hr_call;
    hr_call.principal = hr;

    auto ref = domain.GetReferenceData(hr_call, v1::GetTalentReferenceDataRequest());
    if (!ref.ok()) return Fail(std::string(ref.status().message()));
    std::vector<std::string> fields, skills, programmes;
    for (const auto& t : ref->fields()) fields.push_back(t.code());
    for (const auto& t : ref->skills()) skills.push_back(t.code());
    for (const auto& t : ref->programmes()) programmes.push_back(t.code());
    const auto& regions = cg::refdata::Regions();

    // ------------------------------------------------------------------ fill
    std::mt19937 rng(absl::GetFlag(FLAGS_seed));
    auto pick = [&](size_t n) { return static_cast<size_t>(std::uniform_int_distribution<size_t>(0, n - 1)(rng)); };
    // Levels weighted towards the bottom of the ladder, as in a real pool.
    std::discrete_distribution<int> level_dist({35, 30, 20, 10, 5});
    const auto fill_start = Clock::now();
    int level_counts[6] = {0};
    for (int first = 0; first < talents; first += batch) {
      const int last = std::min(talents, first + batch);
      std::vector<v1::Talent> rows;
      rows.reserve(last - first);
      for (int i = first; i < last; ++i) {
        v1::Talent t;
        t.set_name(absl::StrFormat("talents/t-%06d", i));
        t.set_display_name(absl::StrCat("人才", i));
        t.set_field(fields[pick(fields.size())]);
        std::vector<std::string> own = skills;
        std::shuffle(own.begin(), own.end(), rng);
        const size_t n = 1 + pick(5);
        for (size_t k = 0; k < n; ++k) t.add_skills(own[k]);
        t.set_level(static_cast<v1::Level>(1 + level_dist(rng)));
        ++level_counts[t.level()];
        t.set_home_institution(absl::StrCat("单位", pick(500)));
        t.set_institution_kind(static_cast<v1::InstitutionKind>(1 + pick(4)));
        t.set_region(std::string(regions[pick(regions.size())].code));
        for (size_t k = pick(3); k > 0; --k) {
          auto* p = t.add_programmes();
          p->set_programme(programmes[pick(programmes.size())]);
          p->set_year(2020 + static_cast<int>(pick(6)));
        }
        t.mutable_contact()->set_phone(absl::StrFormat("139%08d", i));
        t.mutable_contact()->set_email(absl::StrFormat("t%06d@example.cn", i));
        rows.push_back(std::move(t));
      }
      cg::store::WriteContext w{&hr, "BenchFill", "", "bench", "", nullptr};
      auto written = repo->Write<v1::Talent>(w, [&](cg::talent::TalentTx& tx) -> absl::StatusOr<v1::Talent> {
        for (auto& t : rows) {
          absl::Status s = tx.PutTalent(t, /*create=*/true);
          if (!s.ok()) return s;
        }
        return rows.back();
      });
      if (!written.ok()) return Fail(absl::StrCat("fill: ", written.status().message()));
    }
    const double fill_s = Ms(Clock::now() - fill_start) / 1000.0;
    std::printf("talent_match: filled %d talents in %.1f s (%.0f per second, %d per transaction); levels"
                " 1..5: %d %d %d %d %d\n",
                talents, fill_s, talents / fill_s, batch, level_counts[1], level_counts[2], level_counts[3],
                level_counts[4], level_counts[5]);

    // ------------------------------------------------------------------ demands
    const std::string first17 = "91150100MA0000001";
    const std::string enterprise =
        absl::StrCat("enterprises/", first17, std::string(1, cg::refdata::UsccCheckCharacter(first17)));
    struct DemandSpec {
      std::vector<std::string> skills;
      v1::Level level;
    };
    const std::vector<DemandSpec> specs = {
        {{"dairy_processing"}, v1::ENGINEER},
        {{"dairy_processing", "quality_control", "automation"}, v1::SENIOR_ENGINEER},
        {{"dairy_processing", "quality_control", "automation", "process_engineering", "data_analysis"},
         v1::SENIOR_ENGINEER},
        {{skills.begin(), skills.begin() + 10}, v1::HIGH_LEVEL},
    };
    std::vector<v1::Demand> demands;
    for (const auto& spec : specs) {
      v1::Demand d;
      d.set_enterprise(enterprise);
      d.set_cluster("clusters/hohhot-dairy");
      d.set_title("工艺工程师");
      for (const auto& s : spec.skills) d.add_skills(s);
      d.set_level(spec.level);
      d.set_count(5);
      d.set_dual_appointment_ok(true);
      d.set_region("150100");
      d.set_state(v1::Demand::OPEN);
      d.mutable_deadline()->set_year(2030);
      d.mutable_deadline()->set_month(12);
      d.mutable_deadline()->set_day(31);
      cg::store::WriteContext w{&hr, "BenchDemand", "", "bench", "", nullptr};
      auto written = repo->Write<v1::Demand>(w, [&](cg::talent::TalentTx& tx) -> absl::StatusOr<v1::Demand> {
        absl::Status s = tx.PutDemand(d);
        if (!s.ok()) return s;
        return d;
      });
      if (!written.ok()) return Fail(absl::StrCat("demand: ", written.status().message()));
      demands.push_back(*written);
    }

    // ------------------------------------------------------------------ matching
    cg::server::CallContext enterprise_call;
    enterprise_call.principal = cg::Principal{"bench.enterprise", enterprise, {"enterprise"}};
    for (const auto& d : demands) {
      v1::MatchTalentsRequest req;
      req.set_demand(d.name());
      req.set_page_size(page_size);
      auto reference = domain.MatchTalents(enterprise_call, req);
      if (!reference.ok()) return Fail(absl::StrCat("match ", d.name(), ": ", reference.status().message()));
      std::printf("talent_match: %s (%d skills, level %s): %d candidates; best score %d, page's last %d\n",
                  d.name().c_str(), d.skills_size(), v1::Level_Name(d.level()).c_str(), reference->total_candidates(),
                  reference->candidates_size() > 0 ? reference->candidates(0).score() : -1,
                  reference->candidates_size() > 0
                      ? reference->candidates(reference->candidates_size() - 1).score()
                      : -1);
      // The SQL part alone: the candidates' indexed columns (what the ranking is computed from).
      const std::vector<std::string> wanted(d.skills().begin(), d.skills().end());
      if (!Measure(absl::StrFormat("  of which MatchRows (SQL) %s", d.name()),
                   [&]() { return repo->MatchRows(wanted).ok(); })) {
        return Fail("a MatchRows run failed");
      }
      const std::string expected = reference->SerializeAsString();
      for (const auto* call : {&enterprise_call, &hr_call}) {
        const bool as_enterprise = call == &enterprise_call;
        const std::string label =
            absl::StrFormat("MatchTalents %s page 1 (%d cand.) as %s", d.name(), reference->total_candidates(),
                            as_enterprise ? "enterprise" : "hr_social_security");
        bool ok = Measure(label, [&]() {
          auto r = domain.MatchTalents(*call, req);
          if (!r.ok()) {
            std::fprintf(stderr, "talent_match: %s\n", std::string(r.status().message()).c_str());
            return false;
          }
          // HR & SS sees contact data, the enterprise does not: compare the enterprise's answer only.
          if (as_enterprise && r->SerializeAsString() != expected) {
            std::fprintf(stderr, "talent_match: %s: the page changed between runs\n", d.name().c_str());
            return false;
          }
          return true;
        });
        if (!ok) return Fail("a MatchTalents run failed");
      }
    }
    {
      // The second page of the largest pool.
      v1::MatchTalentsRequest req;
      req.set_demand(demands.back().name());
      req.set_page_size(page_size);
      auto first = domain.MatchTalents(enterprise_call, req);
      if (!first.ok() || first->next_page_token().empty()) return Fail("no second page");
      req.set_page_token(first->next_page_token());
      if (!Measure(absl::StrFormat("MatchTalents %s page 2 as enterprise", demands.back().name()),
                   [&]() { return domain.MatchTalents(enterprise_call, req).ok(); })) {
        return Fail("a MatchTalents page 2 run failed");
      }
    }

    // ------------------------------------------------------------------ listing
    for (const std::string filter :
         {"", "level = SENIOR_ENGINEER AND region = \"150100\"", "skills: dairy_processing AND level = LEADING",
          "programmes: caoyuan_yingcai AND institution_kind = UNIVERSITY AND region = \"152900\""}) {
      v1::ListTalentsRequest req;
      req.set_filter(filter);
      req.set_page_size(page_size);
      auto once = domain.ListTalents(hr_call, req);
      if (!once.ok()) return Fail(absl::StrCat("list: ", once.status().message()));
      const std::string label = absl::StrFormat("ListTalents page 1 [%s] (%d rows)",
                                                filter.empty() ? "no filter" : filter, once->talents_size());
      if (!Measure(label, [&]() { return domain.ListTalents(hr_call, req).ok(); })) {
        return Fail("a ListTalents run failed");
      }
    }
    std::error_code ec1, ec2;
    const auto db_bytes = std::filesystem::file_size(db_path, ec1);
    const auto wal_bytes = std::filesystem::file_size(db_path + "-wal", ec2);
    std::printf("talent_match: database %.1f MB (+ WAL %.1f MB)\n", ec1 ? 0.0 : db_bytes / (1024.0 * 1024.0),
                ec2 ? 0.0 : wal_bytes / (1024.0 * 1024.0));
  }
  return 0;
}

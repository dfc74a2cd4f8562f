// Write load on the support service: full application cycles (create, submit, startReview,
// approve) against one ENERGY pool, from T threads, then a consistency check.
//
//   clustergov-bench-support-load --target=127.0.0.1:50053 --enterprises_target=127.0.0.1:50052
//       --threads=16 --applications=2000
//
// Setup (idempotent, so it can run again against the same services):
//   - registers --applicants enterprises "91{region}BL{7-digit index}{check}" through the
//     enterprises service and joins them to --cluster as MEMBER (government token of
//     departments/industry_it, the lead department of clusters/hohhot-dairy);
//   - creates the pool pools/{region}-{year}-energy with --capacity kgce (government token of
//     departments/energy, the department responsible for ENERGY).
// Then --warmup cycles one after another (the first submit of each applicant fills the support
// service's membership cache over gRPC), then --applications cycles from --threads threads, each
// cycle: CreateApplication and SubmitApplication with the applicant enterprise's own token
// (org enterprises/{uscc}, role enterprise), StartReview and ApproveApplication with the energy
// department's. Any failed call fails the run.
//
// Verification: CheckConsistency must report the whole ledger consistent, and the pool's stored
// and ledger reserved amounts must both have grown by exactly the quantities this run had approved
// (GetPool's reserved too).
//
// Tokens are minted here (HS256) with --secret or $CLUSTERGOV_AUTH_HS256_SECRET, the services'
// secret. The last line is machine-readable for bench/run.sh:
//   support_load: result approved=N seconds=S per_second=R cycle_p50_ms=A cycle_p99_ms=B ...

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "bench/bench_util.h"
#include "common/refdata/uscc.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50053", "support service");
ABSL_FLAG(std::string, enterprises_target, "127.0.0.1:50052", "enterprises service (to register the applicants)");
ABSL_FLAG(std::string, secret, "", "HS256 secret of the services; default $CLUSTERGOV_AUTH_HS256_SECRET");
ABSL_FLAG(int, threads, 16, "concurrent application cycles");
ABSL_FLAG(int, applications, 2000, "application cycles measured");
ABSL_FLAG(int, warmup, -1, "cycles run one after another before measuring (default: 2 per applicant)");
ABSL_FLAG(int, applicants, 8, "applicant enterprises (cycles go round-robin over them)");
ABSL_FLAG(std::string, region, "150100", "pool and applicants' region (league code)");
ABSL_FLAG(int, year, 2025, "pool year");
ABSL_FLAG(std::string, cluster, "clusters/hohhot-dairy", "cluster the applicants join and apply in");
ABSL_FLAG(int64_t, capacity, int64_t{1} << 40, "pool capacity in kgce (large: approvals must never run out)");
ABSL_FLAG(int64_t, quantity, 1000, "kgce asked by each application (plus its index modulo 7)");

namespace ev1 = clustergov::enterprises::v1;
namespace sv1 = clustergov::support::v1;
using clustergov::bench::Clock;

namespace {

std::string Mint(const std::string& secret, const std::string& sub, const std::string& org, const std::string& role) {
  return clustergov::bench::MintBearer("support_load", secret, sub, org, role);
}

void Prepare(grpc::ClientContext& ctx, const std::string& auth) {
  ctx.AddMetadata("authorization", auth);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "support_load: %s: %s (code %d)\n", what.c_str(), s.error_message().c_str(),
               static_cast<int>(s.error_code()));
  std::exit(1);
}

using clustergov::bench::Ms;
using clustergov::bench::Percentile;

constexpr int kSteps = 4;
constexpr const char* kStepNames[kSteps] = {"CreateApplication", "SubmitApplication", "StartReview",
                                            "ApproveApplication"};

struct Applicant {
  std::string uscc;
  std::string auth;
};

struct Cycle {
  bool ok = false;
  std::string error;
  int64_t approved = 0;     // quantity reserved by the approval
  double step_ms[kSteps] = {};
  double total_ms = 0;
};

class Driver {
 public:
  Driver(std::shared_ptr<grpc::Channel> channel, std::string reviewer_auth)
      : stub_(sv1::SupportService::NewStub(channel)), reviewer_(std::move(reviewer_auth)) {}

  // One full cycle for application index i, each step timed.
  Cycle Run(const Applicant& a, int i) const {
    Cycle c;
    const auto start = Clock::now();
    auto mark = start;
    auto step = [&](int s, const grpc::Status& st) {
      auto now = Clock::now();
      c.step_ms[s] = Ms(now - mark);
      mark = now;
      if (!st.ok()) {
        c.error = absl::StrCat(kStepNames[s], ": ", st.error_message(), " (code ", static_cast<int>(st.error_code()), ")");
      }
      return st.ok();
    };
    sv1::Application app;
    {
      sv1::CreateApplicationRequest req;
      auto* in = req.mutable_application();
      in->set_cluster(absl::GetFlag(FLAGS_cluster));
      in->set_project_name(absl::StrCat("基准测试项目 ", i));
      in->set_core_chain_project(i % 2 == 0);
      in->set_region(absl::GetFlag(FLAGS_region));
      in->set_year(absl::GetFlag(FLAGS_year));
      auto* item = in->add_items();
      item->set_kind(sv1::ENERGY);
      item->set_quantity(absl::GetFlag(FLAGS_quantity) + i % 7);
      grpc::ClientContext ctx;
      Prepare(ctx, a.auth);
      if (!step(0, stub_->CreateApplication(&ctx, req, &app))) return c;
    }
    sv1::TransitionRequest t;
    t.set_name(app.name());
    for (int s = 1; s < kSteps; ++s) {
      grpc::ClientContext ctx;
      Prepare(ctx, s == 1 ? a.auth : reviewer_);
      sv1::Application out;
      grpc::Status st = s == 1   ? stub_->SubmitApplication(&ctx, t, &out)
                        : s == 2 ? stub_->StartReview(&ctx, t, &out)
                                 : stub_->ApproveApplication(&ctx, t, &out);
      if (!step(s, st)) return c;
      app = std::move(out);
    }
    if (app.state() != sv1::Application::APPROVED || app.items_size() != 1) {
      c.error = absl::StrCat(app.name(), " ended in state ", sv1::Application::State_Name(app.state()));
      return c;
    }
    c.approved = app.items(0).quantity();
    c.total_ms = Ms(Clock::now() - start);
    c.ok = true;
    return c;
  }

 private:
  std::unique_ptr<sv1::SupportService::Stub> stub_;
  std::string reviewer_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string secret = clustergov::bench::SecretOr(absl::GetFlag(FLAGS_secret));
  if (secret.size() < 32) {
    std::fprintf(stderr, "support_load: --secret or $CLUSTERGOV_AUTH_HS256_SECRET (at least 32 bytes) is required\n");
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  const int n = absl::GetFlag(FLAGS_applications);
  const int napplicants = absl::GetFlag(FLAGS_applicants);
  const int warmup = absl::GetFlag(FLAGS_warmup) >= 0 ? absl::GetFlag(FLAGS_warmup) : 2 * napplicants;
  const std::string region = absl::GetFlag(FLAGS_region);
  const std::string cluster = absl::GetFlag(FLAGS_cluster);
  if (threads < 1 || n < 1 || napplicants < 1 || napplicants > 9999999) {
    std::fprintf(stderr, "support_load: --threads, --applications and --applicants must be positive\n");
    return 2;
  }

  const std::string industry_it = Mint(secret, "bench-support-load", "departments/industry_it", "government");
  const std::string energy = Mint(secret, "bench-support-load", "departments/energy", "government");

  // --- applicants: registered and members of the cluster ---------------------------------------
  auto echannel = grpc::CreateChannel(absl::GetFlag(FLAGS_enterprises_target), grpc::InsecureChannelCredentials());
  auto estub = ev1::EnterprisesService::NewStub(echannel);
  std::vector<Applicant> applicants;
  for (int k = 0; k < napplicants; ++k) {
    std::string first17 = absl::StrFormat("91%sBL%07d", region, k);
    char check = clustergov::refdata::UsccCheckCharacter(first17);
    if (check == '\0') {
      std::fprintf(stderr, "support_load: --region %s makes no valid credit code\n", region.c_str());
      return 2;
    }
    std::string uscc = first17 + check;
    ev1::RegisterEnterpriseRequest reg;
    auto* e = reg.mutable_enterprise();
    e->set_uscc(uscc);
    e->set_legal_name_zh(absl::StrCat("基准测试申报企业", k));
    e->set_name_en(absl::StrCat("Benchmark Applicant ", k));
    e->set_region(region);
    e->set_industry("dairy");
    e->set_size_class(ev1::MEDIUM);
    e->set_employees(500);
    ev1::Enterprise out;
    grpc::ClientContext rctx;
    Prepare(rctx, industry_it);
    grpc::Status rs = estub->RegisterEnterprise(&rctx, reg, &out);
    if (!rs.ok() && rs.error_code() != grpc::StatusCode::ALREADY_EXISTS) Die("register " + uscc, rs);
    ev1::JoinClusterRequest join;
    join.set_parent(absl::StrCat("enterprises/", uscc));
    join.mutable_membership()->set_cluster(cluster);
    join.mutable_membership()->set_role(ev1::MEMBER);
    ev1::Membership m;
    grpc::ClientContext jctx;
    Prepare(jctx, industry_it);
    grpc::Status js = estub->JoinCluster(&jctx, join, &m);
    if (!js.ok() && js.error_code() != grpc::StatusCode::ALREADY_EXISTS) Die("join " + uscc, js);
    applicants.push_back({uscc, Mint(secret, absl::StrCat("bench-", uscc), absl::StrCat("enterprises/", uscc),
                                     "enterprise")});
  }

  // --- the pool --------------------------------------------------------------------------------
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials());
  auto stub = sv1::SupportService::NewStub(channel);
  const std::string pool_name = absl::StrCat("pools/", region, "-", absl::GetFlag(FLAGS_year), "-energy");
  {
    sv1::CreatePoolRequest req;
    auto* p = req.mutable_pool();
    p->set_region(region);
    p->set_year(absl::GetFlag(FLAGS_year));
    p->set_kind(sv1::ENERGY);
    p->set_capacity(absl::GetFlag(FLAGS_capacity));
    sv1::Pool out;
    grpc::ClientContext ctx;
    Prepare(ctx, energy);
    grpc::Status s = stub->CreatePool(&ctx, req, &out);
    if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) Die("create " + pool_name, s);
    if (s.ok() && out.name() != pool_name) {
      std::fprintf(stderr, "support_load: created %s, expected %s\n", out.name().c_str(), pool_name.c_str());
      return 1;
    }
  }
  auto get_pool = [&]() {
    sv1::GetPoolRequest req;
    req.set_name(pool_name);
    sv1::Pool pool;
    grpc::ClientContext ctx;
    Prepare(ctx, energy);
    grpc::Status s = stub->GetPool(&ctx, req, &pool);
    if (!s.ok()) Die("get " + pool_name, s);
    return pool;
  };
  auto check_consistency = [&]() {
    sv1::ConsistencyReport report;
    grpc::ClientContext ctx;
    Prepare(ctx, energy);
    grpc::Status s = stub->CheckConsistency(&ctx, sv1::CheckConsistencyRequest(), &report);
    if (!s.ok()) Die("CheckConsistency", s);
    return report;
  };
  const sv1::Pool before = get_pool();
  if (before.free() < (absl::GetFlag(FLAGS_quantity) + 6) * int64_t{warmup + n}) {
    std::fprintf(stderr, "support_load: %s has %lld kgce free, too little for %d applications\n", pool_name.c_str(),
                 static_cast<long long>(before.free()), warmup + n);
    return 1;
  }

  // --- cycles ----------------------------------------------------------------------------------
  Driver driver(channel, energy);
  int64_t approved_total = 0;
  for (int i = 0; i < warmup; ++i) {
    Cycle c = driver.Run(applicants[i % applicants.size()], i);
    if (!c.ok) {
      std::fprintf(stderr, "support_load: warm-up cycle %d: %s\n", i, c.error.c_str());
      return 1;
    }
    approved_total += c.approved;
  }

  std::vector<Cycle> cycles(n);
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
            cycles[i] = driver.Run(applicants[(warmup + i) % applicants.size()], warmup + i);
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  int failed = 0;
  std::vector<double> total_ms;
  std::vector<double> step_ms[kSteps];
  for (const auto& c : cycles) {
    if (!c.ok) {
      if (failed++ < 5) std::fprintf(stderr, "support_load: cycle failed: %s\n", c.error.c_str());
      continue;
    }
    approved_total += c.approved;
    total_ms.push_back(c.total_ms);
    for (int s = 0; s < kSteps; ++s) step_ms[s].push_back(c.step_ms[s]);
  }
  const int approved = static_cast<int>(total_ms.size());
  for (int s = 0; s < kSteps; ++s) {
    std::printf("support_load: step %-19s p50 %7.2f ms  p99 %7.2f ms\n", kStepNames[s], Percentile(step_ms[s], 0.5),
                Percentile(step_ms[s], 0.99));
  }

  // --- verification ----------------------------------------------------------------------------
  bool ok = failed == 0;
  const sv1::Pool after = get_pool();
  const sv1::ConsistencyReport report = check_consistency();
  const sv1::PoolCheck* check = nullptr;
  for (const auto& pc : report.pools()) {
    if (pc.pool() == pool_name) check = &pc;
  }
  const int64_t want = before.reserved() + approved_total;
  if (!report.consistent()) {
    ok = false;
    std::fprintf(stderr, "support_load: CheckConsistency reports the ledger inconsistent\n");
  }
  if (check == nullptr || !check->consistent() || check->stored_reserved() != want || check->ledger_reserved() != want) {
    ok = false;
    std::fprintf(stderr, "support_load: %s: stored reserved %lld, ledger reserved %lld, expected %lld\n",
                 pool_name.c_str(), check ? static_cast<long long>(check->stored_reserved()) : -1LL,
                 check ? static_cast<long long>(check->ledger_reserved()) : -1LL, static_cast<long long>(want));
  }
  if (after.reserved() != want) {
    ok = false;
    std::fprintf(stderr, "support_load: GetPool %s: reserved %lld, expected %lld\n", pool_name.c_str(),
                 static_cast<long long>(after.reserved()), static_cast<long long>(want));
  }
  std::printf("support_load: verified=%s consistent=%s pool=%s reserved=%lld (before %lld + approved %lld) free=%lld\n",
              ok ? "yes" : "NO", report.consistent() ? "yes" : "NO", pool_name.c_str(),
              static_cast<long long>(after.reserved()), static_cast<long long>(before.reserved()),
              static_cast<long long>(approved_total), static_cast<long long>(after.free()));
  std::printf("support_load: result approved=%d failed=%d warmup=%d threads=%d seconds=%.3f per_second=%.1f "
              "cycle_p50_ms=%.2f cycle_p99_ms=%.2f cycle_mean_ms=%.2f\n",
              approved, failed, warmup, threads, seconds, approved / seconds, Percentile(total_ms, 0.5),
              Percentile(total_ms, 0.99),
              total_ms.empty() ? 0.0 : [&] { double s = 0; for (double v : total_ms) s += v; return s / total_ms.size(); }());
  return ok ? 0 : 1;
}

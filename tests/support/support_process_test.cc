// The real clustergov-support binary as a child process, against in-process clusters and
// enterprises services (real gRPC, one real redis-server): many reviewers approving at once never
// overdraw a pool and never half-apply an application; a SIGKILL in the middle of it loses no
// acknowledged approval and leaves nothing half-applied, and retries with the same request id
// return the first result.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/support/in_process.h"
#include "tests/support/support_process.h"
#include "tests/support/test_support.h"

namespace clustergov::support {
namespace {

using App = v1::Application;
using Entry = v1::LedgerEntry;
using Stub = v1::SupportService::Stub;
using Code = grpc::StatusCode;
using ::clustergov::testing::SampleValue;

using testing::Connect;
using testing::Describe;
using testing::Invoke;
using testing::kDairy;
using testing::kHohhot;
using testing::Qty;
using testing::SupportProcess;

constexpr int kYear = testing::kSupportYear;
constexpr int kEnterprises = testing::SupportBackendsTest::kMembers;
constexpr int kApplications = 60;
constexpr int kThreads = 8;

std::string PoolOf(v1::ResourceKind kind) { return testing::HohhotPool(kind); }

// What a test knows of one application.
struct Case {
  std::string name;
  std::string applicant_token;
  std::vector<int64_t> quantities;  // per item
};

// The final answer to one application's approval, as the reviewer saw it.
struct Outcome {
  bool approved = false;      // acknowledged OK
  bool refused = false;       // FAILED_PRECONDITION
  bool before_kill = false;   // answered before the SIGKILL was sent
  int attempts = 0;
  std::string etag;           // of the acknowledged response
  std::string error;          // anything unexpected
};

class SupportProcessTest : public testing::SupportBackendsTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SupportBackendsTest::SetUp());
    port_ = testing::FreePort();
    ASSERT_NO_FATAL_FAILURE(StartSupport());
  }

  void TearDown() override {
    support_.reset();  // SIGKILL if still running
    SupportBackendsTest::TearDown();
  }

  void StartSupport(const std::vector<std::string>& extra = {}) {
    support_ = NewSupport(port_, extra);
    ASSERT_TRUE(support_->WaitServing(auditor_)) << support_->Describe();
    stub_ = v1::SupportService::NewStub(Connect(port_));
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    return Invoke(stub_.get(), method, token, req, resp);
  }

  void MakePool(v1::ResourceKind kind, int64_t capacity, const std::string& token) {
    v1::CreatePoolRequest req;
    req.mutable_pool()->set_kind(kind);
    req.mutable_pool()->set_region(kHohhot);
    req.mutable_pool()->set_year(kYear);
    req.mutable_pool()->set_capacity(capacity);
    v1::Pool out;
    grpc::Status s = Call(&Stub::CreatePool, token, req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  v1::Pool GetPool(const std::string& name) {
    v1::GetPoolRequest req;
    req.set_name(name);
    v1::Pool out;
    grpc::Status s = Call(&Stub::GetPool, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  App Get(const std::string& name) {
    v1::GetApplicationRequest req;
    req.set_name(name);
    App out;
    grpc::Status s = Call(&Stub::GetApplication, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << Describe(s);
    return out;
  }

  std::vector<Entry> Ledger(const std::string& filter) {
    std::vector<Entry> all;
    v1::ListLedgerEntriesRequest req;
    req.set_filter(filter);
    req.set_page_size(500);
    for (int guard = 0; guard < 100; ++guard) {
      v1::ListLedgerEntriesResponse resp;
      grpc::Status s = Call(&Stub::ListLedgerEntries, auditor_, req, &resp);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) break;
      all.insert(all.end(), resp.entries().begin(), resp.entries().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  v1::ConsistencyReport Check() {
    v1::ConsistencyReport report;
    grpc::Status s = Call(&Stub::CheckConsistency, auditor_, v1::CheckConsistencyRequest(), &report);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return report;
  }

  // `n` applications of the member enterprises (round robin), each with items of `kinds`, sized
  // by `size(i, k)`, submitted and put under review.
  std::vector<Case> UnderReview(const std::vector<v1::ResourceKind>& kinds,
                                const std::function<int64_t(int, int)>& size) {
    std::vector<Case> cases;
    for (int i = 0; i < kApplications; ++i) {
      Case c;
      c.applicant_token = enterprise_tokens_[i % kEnterprises];
      v1::CreateApplicationRequest req;
      App* a = req.mutable_application();
      a->set_cluster(kDairy);
      a->set_project_name(absl::StrCat("并发项目", i));
      a->set_region(kHohhot);
      a->set_year(kYear);
      a->set_core_chain_project(i % 3 == 0);
      for (size_t k = 0; k < kinds.size(); ++k) {
        c.quantities.push_back(size(i, static_cast<int>(k)));
        *a->add_items() = Qty(kinds[k], c.quantities.back());
      }
      App out;
      grpc::Status s = Call(&Stub::CreateApplication, c.applicant_token, req, &out);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) return cases;
      c.name = out.name();
      v1::TransitionRequest t;
      t.set_name(c.name);
      s = Call(&Stub::SubmitApplication, c.applicant_token, t, &out);
      EXPECT_TRUE(s.ok()) << Describe(s);
      s = Call(&Stub::StartReview, industry_it_, t, &out);
      EXPECT_TRUE(s.ok()) << Describe(s);
      EXPECT_EQ(out.state(), App::UNDER_REVIEW);
      cases.push_back(std::move(c));
    }
    return cases;
  }

  // Approves every case from kThreads threads, each on its own connection, each application once
  // with its own request id, retried (same id) while the service cannot answer. `pause` is slept
  // between applications; `on_ack` runs after each acknowledged approval.
  std::vector<Outcome> ApproveAll(const std::vector<Case>& cases, absl::Duration pause,
                                  const std::atomic<bool>* killed = nullptr,
                                  std::atomic<int>* acknowledged = nullptr) {
    std::vector<Outcome> outcomes(cases.size());
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto stub = v1::SupportService::NewStub(Connect(port_));
        for (size_t i = next.fetch_add(1); i < cases.size(); i = next.fetch_add(1)) {
          Outcome& o = outcomes[i];
          v1::TransitionRequest req;
          req.set_name(cases[i].name);
          req.set_reason("并发审批");
          req.set_request_id(absl::StrCat("approve-", cases[i].name.substr(13)));
          while (true) {
            ++o.attempts;
            App out;
            grpc::Status s = Invoke(stub.get(), &Stub::ApproveApplication, industry_it_, req, &out, 5000);
            if (s.ok()) {
              o.approved = true;
              o.etag = out.etag();
              o.before_kill = killed == nullptr || !killed->load();
              if (out.state() != App::APPROVED) o.error = absl::StrCat("acknowledged in state ", out.state());
              if (acknowledged != nullptr) acknowledged->fetch_add(1);
              break;
            }
            if (s.error_code() == Code::FAILED_PRECONDITION) {
              o.refused = true;
              o.before_kill = killed == nullptr || !killed->load();
              if (!absl::StrContains(s.error_message(), " free")) o.error = Describe(s);
              break;
            }
            const bool transient = s.error_code() == Code::UNAVAILABLE || s.error_code() == Code::DEADLINE_EXCEEDED ||
                                   s.error_code() == Code::CANCELLED || s.error_code() == Code::UNKNOWN;
            if (!transient || absl::Now() > deadline) {
              o.error = absl::StrCat("attempt ", o.attempts, ": ", Describe(s));
              break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          absl::SleepFor(pause + absl::Milliseconds(t));  // threads drift apart
        }
      });
    }
    for (auto& th : threads) th.join();
    return outcomes;
  }

  // The all-or-nothing invariants over every case: each application is APPROVED with exactly one
  // RESERVE entry per item (its quantity, from its pool), or still UNDER_REVIEW with no entry at
  // all; every pool's reserved is the sum of its approved items, within capacity; nothing refused
  // would have fit in the end; CheckConsistency agrees.
  void ExpectAllOrNothing(const std::vector<Case>& cases, const std::vector<Outcome>& outcomes,
                          const std::vector<v1::ResourceKind>& kinds) {
    std::vector<int64_t> sums(kinds.size(), 0);
    std::vector<v1::Pool> pools;
    for (auto kind : kinds) pools.push_back(GetPool(PoolOf(kind)));
    int approved = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const Outcome& o = outcomes[i];
      SCOPED_TRACE(c.name);
      EXPECT_EQ(o.error, "");
      EXPECT_NE(o.approved, o.refused);
      const App app = Get(c.name);
      const auto entries = Ledger(absl::StrCat("application = \"", c.name, "\""));
      if (app.state() == App::APPROVED) {
        ++approved;
        EXPECT_FALSE(o.refused) << "refused, yet approved";
        ASSERT_EQ(entries.size(), kinds.size());
        for (size_t k = 0; k < kinds.size(); ++k) {
          EXPECT_EQ(entries[k].type(), Entry::RESERVE);
          EXPECT_EQ(entries[k].item_index(), static_cast<int>(k));
          EXPECT_EQ(entries[k].pool(), PoolOf(kinds[k]));
          EXPECT_EQ(entries[k].quantity(), c.quantities[k]);
          sums[k] += c.quantities[k];
        }
      } else {
        EXPECT_EQ(app.state(), App::UNDER_REVIEW);
        EXPECT_FALSE(o.approved) << "acknowledged, yet not approved";
        EXPECT_TRUE(entries.empty()) << entries.size() << " ledger entries";
        // Free amounts only shrink: what did not fit then does not fit now.
        bool too_big = false;
        for (size_t k = 0; k < kinds.size(); ++k) too_big = too_big || c.quantities[k] > pools[k].free();
        EXPECT_TRUE(too_big);
      }
    }
    for (size_t k = 0; k < kinds.size(); ++k) {
      EXPECT_EQ(pools[k].reserved(), sums[k]) << pools[k].name();
      EXPECT_LE(pools[k].reserved(), pools[k].capacity()) << pools[k].name();
      EXPECT_EQ(pools[k].free(), pools[k].capacity() - sums[k]) << pools[k].name();
    }
    EXPECT_EQ(Ledger("type = RESERVE").size(), static_cast<size_t>(approved) * kinds.size());
    EXPECT_GT(approved, 0);
    EXPECT_LT(approved, static_cast<int>(cases.size()));  // there was competition
    v1::ConsistencyReport report = Check();
    EXPECT_TRUE(report.consistent()) << report.DebugString();
  }

  int port_ = 0;
  std::unique_ptr<SupportProcess> support_;
  std::unique_ptr<Stub> stub_;
};

// ---------------------------------------------------------------------------------------------
// 1. Concurrency.
// ---------------------------------------------------------------------------------------------

TEST_F(SupportProcessTest, ConcurrentApprovalsNeverOverdrawAPool) {
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::ENERGY, 1000, energy_));
  auto cases = UnderReview({v1::ENERGY}, [](int i, int) { return 10 + (i * 13) % 31; });  // 10..40
  ASSERT_EQ(cases.size(), static_cast<size_t>(kApplications));
  int64_t asked = 0;
  for (const auto& c : cases) asked += c.quantities[0];
  ASSERT_GT(asked, 1000);

  auto outcomes = ApproveAll(cases, absl::ZeroDuration());
  int approved = 0;
  for (const auto& o : outcomes) approved += o.approved ? 1 : 0;
  std::printf("approved %d of %d (asked %lld kgce of 1000)\n", approved, kApplications,
              static_cast<long long>(asked));
  ExpectAllOrNothing(cases, outcomes, {v1::ENERGY});
  EXPECT_TRUE(support_->process().Running()) << support_->Describe();
}

TEST_F(SupportProcessTest, ConcurrentTwoPoolApprovalsAreAllOrNothing) {
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::ENERGY, 600, energy_));
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::WATER, 600, development_reform_));
  // Sizes chosen so that each pool alone refuses some applications the other could take.
  auto cases = UnderReview({v1::ENERGY, v1::WATER},
                           [](int i, int k) { return k == 0 ? 5 + (i * 7) % 21 : 5 + (i * 11 + 3) % 23; });
  ASSERT_EQ(cases.size(), static_cast<size_t>(kApplications));

  auto outcomes = ApproveAll(cases, absl::ZeroDuration());
  ExpectAllOrNothing(cases, outcomes, {v1::ENERGY, v1::WATER});
  EXPECT_TRUE(support_->process().Running()) << support_->Describe();
}

TEST_F(SupportProcessTest, ConsistencyChecksDuringConcurrentApprovalsSeeOneSnapshot) {
  // The ledger sums and the stored balances must come from one read: a check racing approvals
  // must never report a consistent store as inconsistent.
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::ENERGY, 100000, energy_));
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::WATER, 100000, development_reform_));
  auto cases = UnderReview({v1::ENERGY, v1::WATER}, [](int i, int k) { return 1 + (i + k) % 7; });
  ASSERT_EQ(cases.size(), static_cast<size_t>(kApplications));

  std::atomic<bool> done{false};
  std::atomic<int> checks{0};
  std::mutex mu;
  int inconsistent = 0;
  std::string example;  // the first inconsistent answer
  std::vector<std::thread> checkers;
  for (int t = 0; t < 3; ++t) {
    checkers.emplace_back([&] {
      auto stub = v1::SupportService::NewStub(Connect(port_));
      while (!done.load()) {
        v1::ConsistencyReport report;
        grpc::Status s = Invoke(stub.get(), &Stub::CheckConsistency, auditor_, v1::CheckConsistencyRequest(), &report);
        if (s.error_code() == Code::UNAVAILABLE) {  // no answer (the connection, under load): ask again
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        checks.fetch_add(1);
        if (s.ok() && report.consistent()) continue;
        std::lock_guard<std::mutex> lock(mu);
        if (inconsistent++ == 0) example = s.ok() ? report.DebugString() : Describe(s);
      }
    });
  }
  auto outcomes = ApproveAll(cases, absl::ZeroDuration());
  done = true;
  for (auto& th : checkers) th.join();
  std::printf("%d consistency checks during %d approvals\n", checks.load(), kApplications);
  EXPECT_GT(checks.load(), 10);
  EXPECT_EQ(inconsistent, 0) << "of " << checks.load() << "; the first:\n" << example;
  for (const auto& o : outcomes) EXPECT_TRUE(o.approved) << o.error;
  EXPECT_TRUE(Check().consistent());
}

// ---------------------------------------------------------------------------------------------
// 2. Crash safety.
// ---------------------------------------------------------------------------------------------

TEST_F(SupportProcessTest, SigkillDuringApprovalsLosesNothingAcknowledgedAndHalfAppliesNothing) {
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::ENERGY, 1000, energy_));
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::WATER, 1000, development_reform_));
  auto cases = UnderReview({v1::ENERGY, v1::WATER},
                           [](int i, int k) { return k == 0 ? 10 + (i * 13) % 31 : 10 + (i * 17 + 5) % 31; });
  ASSERT_EQ(cases.size(), static_cast<size_t>(kApplications));

  std::atomic<bool> killed{false};
  std::atomic<int> acknowledged{0};
  std::vector<Outcome> outcomes;
  std::thread approvers([&] { outcomes = ApproveAll(cases, absl::Milliseconds(15), &killed, &acknowledged); });

  // Kill mid-run, once some approvals were acknowledged.
  const absl::Time wait_until = absl::Now() + absl::Seconds(60);
  while (acknowledged.load() < 16 && absl::Now() < wait_until) absl::SleepFor(absl::Milliseconds(2));
  const int acknowledged_at_kill = acknowledged.load();
  killed.store(true);
  const int64_t kill_micros = absl::ToUnixMicros(absl::Now());
  support_->process().Signal(SIGKILL);
  EXPECT_EQ(support_->process().Wait(60000), 128 + SIGKILL);
  const std::string first_log = support_->Describe();
  std::printf("killed after %d acknowledged approvals\n", acknowledged_at_kill);
  EXPECT_GE(acknowledged_at_kill, 16);

  // Down for a moment (the reviewers keep retrying), then back on the same database and port.
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_NO_FATAL_FAILURE(StartSupport()) << first_log;
  approvers.join();

  int before_kill = 0, retried = 0, done_at_kill = 0;
  for (const auto& o : outcomes) {
    before_kill += o.approved && o.before_kill ? 1 : 0;
    done_at_kill += o.before_kill ? 1 : 0;
    retried += o.attempts > 1 ? 1 : 0;
  }
  std::printf("%d approvals acknowledged before the kill; %d applications needed a retry\n", before_kill, retried);
  EXPECT_GE(before_kill, 16);
  EXPECT_LT(done_at_kill, kApplications) << "the kill came after the run";
  EXPECT_GT(retried, 0) << "no call saw the crash";

  // Every approval acknowledged (before the kill or after) is there; nothing is half-applied.
  int replayed = 0;  // committed before the kill, acknowledged only to the retry
  for (size_t i = 0; i < cases.size(); ++i) {
    if (!outcomes[i].approved) continue;
    const App app = Get(cases[i].name);
    EXPECT_EQ(app.state(), App::APPROVED) << cases[i].name;
    if (!outcomes[i].before_kill && app.history_size() > 0 &&
        google::protobuf::util::TimeUtil::TimestampToMicroseconds(app.history().rbegin()->time()) < kill_micros) {
      ++replayed;
    }
  }
  std::printf("%d approvals committed before the kill were acknowledged only to their retry\n", replayed);
  ExpectAllOrNothing(cases, outcomes, {v1::ENERGY, v1::WATER});

  // A retry with the same request id returns the first result (not "cannot approve in state
  // APPROVED"), and reserves nothing more.
  const v1::Pool energy_before = GetPool(PoolOf(v1::ENERGY));
  for (size_t i = 0; i < cases.size(); ++i) {
    if (!outcomes[i].approved) continue;
    v1::TransitionRequest req;
    req.set_name(cases[i].name);
    req.set_reason("并发审批");
    req.set_request_id(absl::StrCat("approve-", cases[i].name.substr(13)));
    App out;
    grpc::Status s = Call(&Stub::ApproveApplication, industry_it_, req, &out);
    ASSERT_TRUE(s.ok()) << cases[i].name << ": " << Describe(s);
    EXPECT_EQ(out.etag(), outcomes[i].etag) << cases[i].name;
    EXPECT_EQ(out.state(), App::APPROVED);
  }
  EXPECT_EQ(GetPool(PoolOf(v1::ENERGY)).reserved(), energy_before.reserved());
  EXPECT_TRUE(Check().consistent());
  EXPECT_TRUE(support_->process().Running()) << support_->Describe();
}

// ---------------------------------------------------------------------------------------------
// 3. Metrics of the binary.
// ---------------------------------------------------------------------------------------------

// main.cc wires the domain gauges (refreshed at startup and every --domain_metrics_seconds) and
// the runtime's clustergov_redis_up into /metrics.
TEST_F(SupportProcessTest, MetricsExposeDomainGaugesRefreshedOnTheirPeriod) {
  support_.reset();  // SIGKILL; restarted on the same (empty) database with /metrics and a 1 s period
  const int metrics_port = testing::FreePort();
  ASSERT_NO_FATAL_FAILURE(
      StartSupport({absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port), "--domain_metrics_seconds=1"}));
  auto scrape = [&]() -> std::string {
    auto body = testing::HttpGet(metrics_port, "/metrics");
    return body.ok() ? *body : std::string();
  };
  std::string text = scrape();
  EXPECT_EQ(SampleValue(text, "clustergov_redis_up", {}), 1) << text;
  EXPECT_EQ(SampleValue(text, "clustergov_support_applications", {"state=\"SUBMITTED\""}), 0) << text;
  EXPECT_EQ(SampleValue(text, "clustergov_support_oldest_pending_application_seconds", {"state=\"UNDER_REVIEW\""}), 0)
      << text;

  // One application approved for 250 of a 1000 kgce pool, another left submitted.
  ASSERT_NO_FATAL_FAILURE(MakePool(v1::ENERGY, 1000, energy_));
  std::vector<std::string> names;
  for (int i = 0; i < 2; ++i) {
    v1::CreateApplicationRequest req;
    App* a = req.mutable_application();
    a->set_cluster(kDairy);
    a->set_project_name(absl::StrCat("指标项目", i));
    a->set_region(kHohhot);
    a->set_year(kYear);
    *a->add_items() = Qty(v1::ENERGY, 250);
    App out;
    grpc::Status s = Call(&Stub::CreateApplication, enterprise_tokens_[0], req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    v1::TransitionRequest t;
    t.set_name(out.name());
    s = Call(&Stub::SubmitApplication, enterprise_tokens_[0], t, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    names.push_back(out.name());
  }
  v1::TransitionRequest t;
  t.set_name(names[0]);
  App out;
  grpc::Status s = Call(&Stub::StartReview, industry_it_, t, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Call(&Stub::ApproveApplication, industry_it_, t, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // The refresher picks it up within its period (polled, up to 10 s).
  const std::vector<std::string> pool_labels = {"pool=\"pools/150100-2025-energy\"", "region=\"150100\"",
                                                "year=\"2025\"", "kind=\"ENERGY\""};
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    text = scrape();
    if (SampleValue(text, "clustergov_support_pool_utilization_ratio", pool_labels) == 0.25 &&
        SampleValue(text, "clustergov_support_applications", {"state=\"APPROVED\""}) == 1) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(SampleValue(text, "clustergov_support_pool_utilization_ratio", pool_labels), 0.25) << text;
  EXPECT_EQ(SampleValue(text, "clustergov_support_applications", {"state=\"APPROVED\""}), 1) << text;
  EXPECT_EQ(SampleValue(text, "clustergov_support_applications", {"state=\"SUBMITTED\""}), 1) << text;
  EXPECT_EQ(SampleValue(text, "clustergov_support_applications", {"state=\"DRAFT\""}), 0) << text;
  EXPECT_GT(SampleValue(text, "clustergov_support_oldest_pending_application_seconds", {"state=\"SUBMITTED\""}), 0)
      << text;
  EXPECT_EQ(SampleValue(text, "clustergov_redis_up", {}), 1) << text;
  std::printf("/metrics (clustergov_redis_up, clustergov_support_*):\n");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, "clustergov_redis_up") || absl::StrContains(line, "clustergov_support_")) {
      std::printf("  %s\n", std::string(line).c_str());
    }
  }

  std::string file = dir_.File("metrics.txt");
  {
    std::ofstream f(file);
    f << text;
  }
  std::string output;
  int rc = testing::RunCommand(absl::StrCat("promtool check metrics < '", file, "'"), &output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "") << "promtool reported problems:\n" << output;
}

TEST_F(SupportProcessTest, NonPositiveDomainMetricsPeriodFailsNamingTheFlag) {
  auto bad = NewSupport(testing::FreePort(), {"--metrics_listen=off", "--domain_metrics_seconds=0"});
  EXPECT_EQ(bad->process().Wait(60000), 1) << bad->Describe();
  EXPECT_TRUE(absl::StrContains(bad->Describe(), "--domain_metrics_seconds must be positive")) << bad->Describe();
}

}  // namespace
}  // namespace clustergov::support

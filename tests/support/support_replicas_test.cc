// Three clustergov-support processes on one PostgreSQL database (its own server) and one Redis,
// called through one gRPC channel balanced round-robin over the three: concurrent approvals never
// overdraw a pool, a retried request id answers its first response from any replica, a write on
// one replica is read on the others, and a SIGKILLed replica loses nothing acknowledged while the
// others keep serving. A pg_dump of the database restored into another serves the same answers and
// takes new writes.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clustergov/support/v1/support.grpc.pb.h"
#include "common/server/client.h"
#include "gtest/gtest.h"
#include "tests/support/in_process.h"
#include "tests/support/postgres.h"
#include "tests/support/support_process.h"
#include "tests/support/test_support.h"

namespace clustergov::support {
namespace {

using App = v1::Application;
using Stub = v1::SupportService::Stub;
using Code = grpc::StatusCode;
using testing::Describe;
using testing::Invoke;
using testing::Qty;

constexpr int kReplicas = 3;

bool Transient(const grpc::Status& s) {
  return s.error_code() == Code::UNAVAILABLE || s.error_code() == Code::DEADLINE_EXCEEDED;
}

class SupportReplicasTest : public testing::SupportBackendsTest {
 protected:
  static void SetUpTestSuite() { postgres_ = new testing::PostgresServer(); }
  static void TearDownTestSuite() {
    delete postgres_;
    postgres_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SupportBackendsTest::SetUp());
    static int databases = 0;
    database_ = absl::StrCat("support_", ++databases);
    postgres_->Psql(absl::StrCat("CREATE DATABASE ", database_));
    // Started together: the schema is migrated once, under the store's advisory lock.
    std::vector<std::string> addresses;
    for (int r = 0; r < kReplicas; ++r) {
      ports_.push_back(testing::FreePort());
      metrics_ports_.push_back(testing::FreePort());
      replicas_.push_back(NewSupport(ports_[r], {absl::StrCat("--db=", postgres_->ConnectionString(database_)),
                                                 absl::StrCat("--metrics_listen=127.0.0.1:", metrics_ports_[r])}));
      addresses.push_back(absl::StrCat("127.0.0.1:", ports_[r]));
    }
    for (auto& replica : replicas_) ASSERT_TRUE(replica->WaitServing(auditor_)) << replica->Describe();
    for (int port : ports_) direct_.push_back(v1::SupportService::NewStub(testing::Connect(port)));
    server::ChannelOptions options;
    options.connect_timeout = absl::Milliseconds(500);
    options.initial_reconnect_backoff = absl::Milliseconds(100);
    options.max_reconnect_backoff = absl::Milliseconds(250);
    rr_ = v1::SupportService::NewStub(server::MakeChannel(absl::StrCat("ipv4:", absl::StrJoin(addresses, ",")), options));
  }

  void TearDown() override {
    replicas_.clear();  // SIGKILL
    SupportBackendsTest::TearDown();
  }

  // The value of `family`{`labels`} on replica `r`'s /metrics; -1 when absent.
  double Sample(int r, const std::string& family, const std::vector<std::string>& labels = {}) {
    auto text = testing::HttpGet(metrics_ports_[r], "/metrics");
    return text.ok() ? testing::SampleValue(*text, family, labels) : -1;
  }
  // Calls of `method` replica `r` has started.
  double Started(int r, const std::string& method) {
    return Sample(r, "grpc_server_started_total", {absl::StrCat("grpc_method=\"", method, "\"")});
  }

  void MakePool(Stub* stub, v1::ResourceKind kind, int64_t capacity, const std::string& token) {
    v1::CreatePoolRequest req;
    req.mutable_pool()->set_kind(kind);
    req.mutable_pool()->set_region(testing::kHohhot);
    req.mutable_pool()->set_year(testing::kSupportYear);
    req.mutable_pool()->set_capacity(capacity);
    v1::Pool out;
    grpc::Status s = Invoke(stub, &Stub::CreatePool, token, req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // A new energy application of member `i % kMembers` asking `quantity` kgce, with `request_id`.
  v1::CreateApplicationRequest NewApplication(int i, int64_t quantity, const std::string& request_id) {
    v1::CreateApplicationRequest req;
    App* a = req.mutable_application();
    a->set_cluster(testing::kDairy);
    a->set_project_name(absl::StrCat("多副本项目", i));
    a->set_region(testing::kHohhot);
    a->set_year(testing::kSupportYear);
    *a->add_items() = Qty(v1::ENERGY, quantity);
    req.set_request_id(request_id);
    return req;
  }

  // Applications asking `quantities` kgce each, created, submitted and put under review through
  // the round-robin channel; their names.
  std::vector<std::string> UnderReview(const std::vector<int64_t>& quantities) {
    std::vector<std::string> names;
    for (size_t i = 0; i < quantities.size(); ++i) {
      const std::string& applicant = enterprise_tokens_[i % kMembers];
      App out;
      grpc::Status s = Invoke(rr_.get(), &Stub::CreateApplication, applicant, NewApplication(i, quantities[i], ""), &out);
      EXPECT_TRUE(s.ok()) << Describe(s);
      v1::TransitionRequest t;
      t.set_name(out.name());
      if (s.ok()) s = Invoke(rr_.get(), &Stub::SubmitApplication, applicant, t, &out);
      if (s.ok()) s = Invoke(rr_.get(), &Stub::StartReview, industry_it_, t, &out);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) break;
      names.push_back(out.name());
    }
    return names;
  }

  std::vector<v1::LedgerEntry> Reservations(Stub* stub, const std::string& application) {
    v1::ListLedgerEntriesRequest req;
    req.set_filter(absl::StrCat("type = RESERVE AND application = \"", application, "\""));
    req.set_page_size(100);
    v1::ListLedgerEntriesResponse resp;
    grpc::Status s = Invoke(stub, &Stub::ListLedgerEntries, auditor_, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return {resp.entries().begin(), resp.entries().end()};
  }

  std::vector<App> AllApplications(Stub* stub) {
    std::vector<App> all;
    v1::ListApplicationsRequest req;
    req.set_page_size(100);
    for (int guard = 0; guard < 100; ++guard) {
      v1::ListApplicationsResponse resp;
      grpc::Status s = Invoke(stub, &Stub::ListApplications, auditor_, req, &resp);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) break;
      all.insert(all.end(), resp.applications().begin(), resp.applications().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  v1::Pool GetPool(Stub* stub, const std::string& name) {
    v1::GetPoolRequest req;
    req.set_name(name);
    v1::Pool out;
    grpc::Status s = Invoke(stub, &Stub::GetPool, auditor_, req, &out);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  bool Consistent(Stub* stub) {
    v1::ConsistencyReport report;
    grpc::Status s = Invoke(stub, &Stub::CheckConsistency, auditor_, v1::CheckConsistencyRequest(), &report);
    EXPECT_TRUE(s.ok()) << Describe(s);
    EXPECT_TRUE(report.consistent()) << report.DebugString();
    return s.ok() && report.consistent();
  }

  inline static testing::PostgresServer* postgres_ = nullptr;
  std::string database_;
  std::vector<int> ports_;
  std::vector<int> metrics_ports_;
  std::vector<std::unique_ptr<testing::SupportProcess>> replicas_;
  std::vector<std::unique_ptr<Stub>> direct_;  // one per replica
  std::unique_ptr<Stub> rr_;                   // round-robin over all of them
};

TEST_F(SupportReplicasTest, ConcurrentApprovalsAcrossReplicasNeverOverdrawAPool) {
  constexpr int kApplications = 60;
  constexpr int kThreads = 8;
  constexpr int64_t kCapacity = 1000;
  ASSERT_NO_FATAL_FAILURE(MakePool(rr_.get(), v1::ENERGY, kCapacity, energy_));
  std::vector<int64_t> quantities;
  int64_t asked = 0;
  for (int i = 0; i < kApplications; ++i) {
    quantities.push_back(10 + (i * 13) % 31);  // 10..40 kgce
    asked += quantities.back();
  }
  ASSERT_GT(asked, kCapacity);
  const auto names = UnderReview(quantities);
  ASSERT_EQ(names.size(), quantities.size());

  // Each application approved once (retried with its request id only when no answer came).
  std::vector<grpc::Status> answers(names.size());
  std::atomic<int> aborted{0}, retries{0};
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < names.size(); i = next.fetch_add(1)) {
        v1::TransitionRequest req;
        req.set_name(names[i]);
        req.set_request_id(absl::StrCat("approve-", i));
        for (int attempt = 0; attempt < 20; ++attempt) {
          App out;
          answers[i] = Invoke(rr_.get(), &Stub::ApproveApplication, industry_it_, req, &out);
          if (answers[i].error_code() == Code::ABORTED) aborted.fetch_add(1);
          if (!Transient(answers[i])) break;
          retries.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  const v1::Pool pool = GetPool(direct_[0].get(), testing::HohhotPool(v1::ENERGY));
  int approved = 0;
  int64_t reserved = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    const auto entries = Reservations(rr_.get(), names[i]);
    if (answers[i].ok()) {
      ++approved;
      reserved += quantities[i];
      ASSERT_EQ(entries.size(), 1u);
      EXPECT_EQ(entries[0].quantity(), quantities[i]);
    } else {
      // Refused because it did not fit, then and (free amounts only shrink) now.
      EXPECT_EQ(answers[i].error_code(), Code::FAILED_PRECONDITION) << Describe(answers[i]);
      EXPECT_TRUE(absl::StrContains(answers[i].error_message(), " free")) << Describe(answers[i]);
      EXPECT_GT(quantities[i], pool.free());
      EXPECT_TRUE(entries.empty());
    }
  }
  std::printf("%d of %d approvals fit (asked %lld kgce of %lld); %d ABORTED answers, %d retries\n", approved,
              kApplications, static_cast<long long>(asked), static_cast<long long>(kCapacity), aborted.load(),
              retries.load());
  EXPECT_EQ(aborted.load(), 0) << "serialization failures reached the caller";
  EXPECT_GT(approved, 0);
  EXPECT_LT(approved, kApplications);
  EXPECT_EQ(pool.reserved(), reserved);
  EXPECT_LE(pool.reserved(), pool.capacity());
  EXPECT_EQ(pool.free(), kCapacity - reserved);
  EXPECT_TRUE(Consistent(rr_.get()));
  // The approvals really raced on all three replicas.
  for (int r = 0; r < kReplicas; ++r) {
    const double started = Started(r, "ApproveApplication");
    std::printf("replica %d started %.0f approvals; its store retried %.0f serialization failures\n", r, started,
                Sample(r, "clustergov_store_serialization_retries_total"));
    EXPECT_GT(started, 0) << "replica " << r;
  }
}

TEST_F(SupportReplicasTest, RetriesOnOtherReplicasAnswerTheFirstResponseAndWriteOnce) {
  constexpr int kRounds = 10;
  ASSERT_NO_FATAL_FAILURE(MakePool(rr_.get(), v1::ENERGY, 100000, energy_));
  // The same request sent to the three replicas at once (each thread waits for the others to be
  // ready), then once more to each in turn.
  auto race = [&](auto method, const std::string& token, const auto& req, std::vector<App>* out) {
    std::vector<grpc::Status> statuses(kReplicas);
    out->assign(kReplicas, App());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int r = 0; r < kReplicas; ++r) {
      threads.emplace_back([&, r] {
        ready.fetch_add(1);
        while (ready.load() < kReplicas) std::this_thread::yield();
        statuses[r] = Invoke(direct_[r].get(), method, token, req, &(*out)[r]);
      });
    }
    for (auto& th : threads) th.join();
    for (int r = 0; r < kReplicas; ++r) {
      App again;
      grpc::Status s = Invoke(direct_[r].get(), method, token, req, &again);
      EXPECT_TRUE(s.ok()) << "replica " << r << ": " << Describe(s);
      EXPECT_EQ(again.etag(), (*out)[0].etag()) << "replica " << r;
      EXPECT_EQ(again.name(), (*out)[0].name()) << "replica " << r;
    }
    for (int r = 0; r < kReplicas; ++r) {
      EXPECT_TRUE(statuses[r].ok()) << "replica " << r << ": " << Describe(statuses[r]);
      EXPECT_EQ((*out)[r].name(), (*out)[0].name()) << "replica " << r;
      EXPECT_EQ((*out)[r].etag(), (*out)[0].etag()) << "replica " << r;
    }
  };

  std::vector<std::string> created;
  for (int i = 0; i < kRounds; ++i) {
    const std::string& applicant = enterprise_tokens_[i % kMembers];
    std::vector<App> answers;
    race(&Stub::CreateApplication, applicant, NewApplication(i, 100, absl::StrCat("create-", i)), &answers);
    ASSERT_FALSE(answers[0].name().empty());
    created.push_back(answers[0].name());
    v1::TransitionRequest t;
    t.set_name(answers[0].name());
    App out;
    grpc::Status s = Invoke(rr_.get(), &Stub::SubmitApplication, applicant, t, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    s = Invoke(rr_.get(), &Stub::StartReview, industry_it_, t, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  // One application per request id.
  EXPECT_EQ(AllApplications(rr_.get()).size(), static_cast<size_t>(kRounds));
  EXPECT_EQ(std::set<std::string>(created.begin(), created.end()).size(), static_cast<size_t>(kRounds));

  for (int i = 0; i < kRounds; ++i) {
    v1::TransitionRequest t;
    t.set_name(created[i]);
    t.set_request_id(absl::StrCat("approve-", i));
    std::vector<App> answers;
    race(&Stub::ApproveApplication, industry_it_, t, &answers);
    EXPECT_EQ(answers[0].state(), App::APPROVED);
    // Written once: one reservation, one audit event of the approval.
    EXPECT_EQ(Reservations(rr_.get(), created[i]).size(), 1u) << created[i];
    common::v1::ListAuditEventsRequest req;
    req.set_filter(absl::StrCat("idempotency_key = \"approve-", i, "\""));
    common::v1::ListAuditEventsResponse events;
    grpc::Status s = Invoke(rr_.get(), &Stub::ListAuditEvents, auditor_, req, &events);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(events.events_size(), 1) << events.DebugString();
  }
  EXPECT_EQ(GetPool(direct_[0].get(), testing::HohhotPool(v1::ENERGY)).reserved(), 100 * kRounds);
  EXPECT_TRUE(Consistent(rr_.get()));
  std::printf("%d creates and %d approvals, each sent to %d replicas at once and to each once more\n", kRounds,
              kRounds, kReplicas);
}

// Applications are read from the store on every call: a write acknowledged by one replica is read
// by the others at once.
TEST_F(SupportReplicasTest, AWriteOnOneReplicaIsReadOnTheOthers) {
  ASSERT_NO_FATAL_FAILURE(MakePool(direct_[2].get(), v1::ENERGY, 1000, energy_));  // submission checks it
  App created;
  grpc::Status s = Invoke(direct_[0].get(), &Stub::CreateApplication, enterprise_tokens_[0],
                          NewApplication(0, 100, ""), &created);
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::GetApplicationRequest get;
  get.set_name(created.name());
  for (int r = 1; r < kReplicas; ++r) {
    App read;
    s = Invoke(direct_[r].get(), &Stub::GetApplication, auditor_, get, &read);
    ASSERT_TRUE(s.ok()) << "replica " << r << ": " << Describe(s);
    EXPECT_EQ(read.etag(), created.etag()) << "replica " << r;
  }
  v1::TransitionRequest submit;
  submit.set_name(created.name());
  App submitted;
  s = Invoke(direct_[1].get(), &Stub::SubmitApplication, enterprise_tokens_[0], submit, &submitted);
  ASSERT_TRUE(s.ok()) << Describe(s);
  for (int r : {0, 2}) {
    App read;
    s = Invoke(direct_[r].get(), &Stub::GetApplication, auditor_, get, &read);
    ASSERT_TRUE(s.ok()) << "replica " << r << ": " << Describe(s);
    EXPECT_EQ(read.state(), App::SUBMITTED) << "replica " << r;
    EXPECT_EQ(read.etag(), submitted.etag()) << "replica " << r;
  }
}

// Pools are cached (Redis and each process's near cache, --near_cache_ms 1000): replicas 1 and 2
// hold the pool, then replica 0 changes it; every replica must read the change within the near
// cache's bound (invalidations published to every process sharing the cache), asserted as "within
// 5 s", polled (the replicas share the cache's namespace, named by the store's identity).
TEST_F(SupportReplicasTest, ACachedPoolChangedOnOneReplicaIsReadOnTheOthers) {
  ASSERT_NO_FATAL_FAILURE(MakePool(direct_[0].get(), v1::ENERGY, 1000, energy_));
  const std::string pool = testing::HohhotPool(v1::ENERGY);
  for (int r = 1; r < kReplicas; ++r) {
    for (int i = 0; i < 2; ++i) EXPECT_EQ(GetPool(direct_[r].get(), pool).capacity(), 1000);
  }
  v1::SetPoolCapacityRequest change;
  change.set_name(pool);
  change.set_capacity(2000);
  change.set_reason("多副本扩容");
  v1::Pool changed;
  grpc::Status s = Invoke(direct_[0].get(), &Stub::SetPoolCapacity, energy_, change, &changed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  for (int r = 1; r < kReplicas; ++r) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    v1::Pool read = GetPool(direct_[r].get(), pool);
    while (read.capacity() != 2000 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      read = GetPool(direct_[r].get(), pool);
    }
    EXPECT_EQ(read.capacity(), 2000) << "replica " << r << " still reads the pool before the change";
    EXPECT_EQ(read.etag(), changed.etag()) << "replica " << r;
  }
}

TEST_F(SupportReplicasTest, SigkillOfOneReplicaLosesNothingAcknowledgedAndTheOthersServe) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 25;
  constexpr int kKillAfter = 30;
  constexpr int kVictim = 1;
  // Creates through the round-robin channel, each retried with its request id until answered.
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<int> acked{0}, acked_after_kill{0}, failed_after_kill{0}, retries{0};
  std::atomic<bool> killed{false};
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      for (int i = 0; i < kPerThread; ++i) {
        const auto req = NewApplication(i, 10, absl::StrCat("load-", t, "-", i));
        while (true) {
          const bool after_kill = killed.load();  // sent after the kill
          App out;
          grpc::Status s = Invoke(rr_.get(), &Stub::CreateApplication, enterprise_tokens_[t % kMembers], req, &out, 5000);
          if (!s.ok() && killed.load()) failed_after_kill.fetch_add(1);  // in flight at the kill, or after it
          if (s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            acknowledged.insert(out.name());
            acked.fetch_add(1);
            if (after_kill) acked_after_kill.fetch_add(1);
            break;
          }
          if (!Transient(s) || absl::Now() > deadline) {
            std::lock_guard<std::mutex> lock(mu);
            errors.push_back(absl::StrCat(req.request_id(), ": ", Describe(s)));
            break;
          }
          retries.fetch_add(1);
        }
      }
    });
  }
  const absl::Time wait_until = absl::Now() + absl::Seconds(30);
  while (acked.load() < kKillAfter && absl::Now() < wait_until) absl::SleepFor(absl::Milliseconds(2));
  const int acked_at_kill = acked.load();
  const double victim_share = Started(kVictim, "CreateApplication");
  killed.store(true);
  replicas_[kVictim]->process().Signal(SIGKILL);
  EXPECT_EQ(replicas_[kVictim]->process().Wait(60000), 128 + SIGKILL);
  for (auto& th : threads) th.join();

  std::printf("killed replica %d after %d acknowledged creates (%.0f of them started on it); %d sent after the kill "
              "and acknowledged; %d calls failed at or after the kill and were retried; %d retries in all\n",
              kVictim, acked_at_kill, victim_share, acked_after_kill.load(), failed_after_kill.load(), retries.load());
  EXPECT_TRUE(errors.empty()) << absl::StrJoin(errors, "\n");
  EXPECT_GE(acked_at_kill, kKillAfter);
  EXPECT_GT(victim_share, 0) << "the killed replica took no part in the load";
  EXPECT_LT(acked_at_kill, kThreads * kPerThread) << "the kill came after the load";
  EXPECT_GT(acked_after_kill.load(), 0) << "nothing was served after the kill";
  EXPECT_EQ(acked.load(), kThreads * kPerThread);

  // What the store lists is exactly what was acknowledged: nothing lost, nothing written twice.
  std::set<std::string> listed;
  for (const App& a : AllApplications(direct_[0].get())) listed.insert(a.name());
  EXPECT_EQ(acknowledged.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(listed, acknowledged);
  EXPECT_TRUE(Consistent(rr_.get()));
  for (int r = 0; r < kReplicas; ++r) {
    if (r != kVictim) EXPECT_TRUE(replicas_[r]->process().Running()) << replicas_[r]->Describe();
  }
}

// Backup and restore as docs/operations.md says: pg_dump -Fc of the service's database, the service
// stopped, pg_restore into a fresh database, the Redis cache flushed, the service started on it.
TEST_F(SupportReplicasTest, PgDumpRestoredIntoAFreshDatabaseServesTheSameAnswersAndTakesNewWrites) {
  ASSERT_NO_FATAL_FAILURE(MakePool(rr_.get(), v1::ENERGY, 1000, energy_));
  ASSERT_NO_FATAL_FAILURE(MakePool(rr_.get(), v1::WATER, 500, development_reform_));
  const auto names = UnderReview({300, 200, 400, 100, 250, 50});
  ASSERT_EQ(names.size(), 6u);
  for (size_t i = 0; i < names.size(); i += 2) {
    v1::TransitionRequest t;
    t.set_name(names[i]);
    App out;
    grpc::Status s = Invoke(rr_.get(), &Stub::ApproveApplication, industry_it_, t, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  // The answers to compare: every list in one page, and each pool.
  auto answers = [&](Stub* stub) {
    std::string all;
    v1::ListApplicationsRequest apps;
    apps.set_page_size(100);
    v1::ListApplicationsResponse apps_out;
    EXPECT_TRUE(Invoke(stub, &Stub::ListApplications, auditor_, apps, &apps_out).ok());
    v1::ListPoolsRequest pools;
    pools.set_page_size(100);
    v1::ListPoolsResponse pools_out;
    EXPECT_TRUE(Invoke(stub, &Stub::ListPools, auditor_, pools, &pools_out).ok());
    v1::ListLedgerEntriesRequest ledger;
    ledger.set_page_size(100);
    v1::ListLedgerEntriesResponse ledger_out;
    EXPECT_TRUE(Invoke(stub, &Stub::ListLedgerEntries, auditor_, ledger, &ledger_out).ok());
    EXPECT_EQ(apps_out.applications_size(), 6);
    EXPECT_EQ(pools_out.pools_size(), 2);
    EXPECT_EQ(ledger_out.entries_size(), 2 + 3);  // two capacities, three reservations
    absl::StrAppend(&all, apps_out.DebugString(), pools_out.DebugString(), ledger_out.DebugString());
    for (auto kind : {v1::ENERGY, v1::WATER}) absl::StrAppend(&all, GetPool(stub, testing::HohhotPool(kind)).DebugString());
    return all;
  };
  const std::string before = answers(direct_[0].get());

  testing::TempDir backup;
  const std::string dump = backup.File("support.dump");
  std::string output;
  ASSERT_EQ(postgres_->RunTool("pg_dump", absl::StrCat("-Fc -f ", dump, " -d ", postgres_->ConnectionString(database_)),
                               &output),
            0)
      << output;
  replicas_.clear();  // the service stopped (SIGKILL)
  const std::string restored = database_ + "_restored";
  postgres_->Psql(absl::StrCat("CREATE DATABASE ", restored));
  ASSERT_EQ(postgres_->RunTool("pg_restore",
                               absl::StrCat("--no-owner --exit-on-error -d ", postgres_->ConnectionString(restored), " ",
                                            dump),
                               &output),
            0)
      << output;
  EXPECT_EQ(redis_.Cli({"FLUSHDB"}), "OK");
  auto service = NewSupport(testing::FreePort(), {absl::StrCat("--db=", postgres_->ConnectionString(restored))});
  ASSERT_TRUE(service->WaitServing(auditor_)) << service->Describe();
  auto stub = v1::SupportService::NewStub(testing::Connect(service->port()));
  EXPECT_EQ(answers(stub.get()), before);

  // New writes: a fresh application id (the identity sequences came with the data), a reservation
  // appended to the restored ledger.
  App created;
  grpc::Status s =
      Invoke(stub.get(), &Stub::CreateApplication, enterprise_tokens_[0], NewApplication(7, 100, ""), &created);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(std::count(names.begin(), names.end(), created.name()), 0) << created.name();
  v1::TransitionRequest t;
  t.set_name(names[5]);
  App approved;
  s = Invoke(stub.get(), &Stub::ApproveApplication, industry_it_, t, &approved);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(Reservations(stub.get(), names[5]).size(), 1u);
  EXPECT_EQ(GetPool(stub.get(), testing::HohhotPool(v1::ENERGY)).reserved(), 300 + 400 + 250 + 50);
  EXPECT_TRUE(Consistent(stub.get()));
  std::printf("restored %s into %s; new application %s\n", database_.c_str(), restored.c_str(),
              created.name().c_str());
}

}  // namespace
}  // namespace clustergov::support

#include "services/support/support_metrics.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "common/store/sqlite.h"

namespace clustergov::support {
namespace {

using State = v1::Application::State;

// The states whose age is watched: the review queue.
constexpr State kPendingStates[] = {v1::Application::SUBMITTED, v1::Application::UNDER_REVIEW};

// Every state but STATE_UNSPECIFIED, by number.
std::vector<State> States() {
  std::vector<State> states;
  const auto* d = v1::Application::State_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    if (d->value(i)->number() != v1::Application::STATE_UNSPECIFIED) {
      states.push_back(static_cast<State>(d->value(i)->number()));
    }
  }
  return states;
}

}  // namespace

SupportMetrics::SupportMetrics(SupportRepository* repository, prometheus::Registry& registry)
    : repo_(repository),
      applications_(prometheus::BuildGauge()
                        .Name("clustergov_support_applications")
                        .Help("Support applications per state.")
                        .Register(registry)),
      oldest_pending_(prometheus::BuildGauge()
                          .Name("clustergov_support_oldest_pending_application_seconds")
                          .Help("Seconds since the oldest application in the state entered it (0 when none).")
                          .Register(registry)),
      pool_utilization_(prometheus::BuildGauge()
                            .Name("clustergov_support_pool_utilization_ratio")
                            .Help("(reserved + allocated) / capacity of a support pool (0 when capacity is 0).")
                            .Register(registry)) {
  // Every series exists from the start, before the first refresh.
  for (State s : States()) applications_.Add({{"state", v1::Application::State_Name(s)}}).Set(0);
  for (State s : kPendingStates) oldest_pending_.Add({{"state", v1::Application::State_Name(s)}}).Set(0);
}

SupportMetrics::~SupportMetrics() { Stop(); }

void SupportMetrics::Start(absl::Duration period) {
  if (absl::Status s = RefreshNow(); !s.ok()) {
    log::Error("support metrics refresh failed; will retry", {{"error", s.ToString()}});
  }
  thread_ = std::thread([this, period] {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, absl::ToChronoNanoseconds(period), [this] { return stopping_; })) return;
      }
      if (absl::Status s = RefreshNow(); !s.ok()) {
        log::Error("support metrics refresh failed; will retry", {{"error", s.ToString()}});
      }
    }
  });
}

void SupportMetrics::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status SupportMetrics::RefreshNow() {
  std::lock_guard<std::mutex> refresh(refresh_mu_);
  // Everything is read first, so a failure leaves every gauge as it was.
  CG_ASSIGN_OR_RETURN(auto counts, repo_->CountApplicationsByState());
  std::vector<int64_t> entered;
  for (State s : kPendingStates) {
    CG_ASSIGN_OR_RETURN(int64_t micros, repo_->OldestEnteredMicros(s));
    entered.push_back(micros);
  }
  CG_ASSIGN_OR_RETURN(auto pools, repo_->PoolBalances());

  for (State s : States()) {
    auto it = counts.find(s);
    applications_.Add({{"state", v1::Application::State_Name(s)}})
        .Set(it != counts.end() ? static_cast<double>(it->second) : 0);
  }
  const int64_t now = store::NowMicros();
  for (size_t i = 0; i < entered.size(); ++i) {
    double age = entered[i] > 0 ? static_cast<double>(std::max<int64_t>(0, now - entered[i])) / 1e6 : 0;
    oldest_pending_.Add({{"state", v1::Application::State_Name(kPendingStates[i])}}).Set(age);
  }
  for (const auto& p : pools) {
    double ratio = 0;
    if (p.capacity > 0) {
      ratio = std::clamp(static_cast<double>(p.reserved + p.allocated) / static_cast<double>(p.capacity), 0.0, 1.0);
    }
    // Add() returns the existing series for the same labels: a pool created since the last
    // refresh gets its own here.
    pool_utilization_
        .Add({{"pool", p.name},
              {"region", p.region},
              {"year", std::to_string(p.year)},
              {"kind", v1::ResourceKind_Name(static_cast<v1::ResourceKind>(p.kind))}})
        .Set(ratio);
  }
  return absl::OkStatus();
}

}  // namespace clustergov::support

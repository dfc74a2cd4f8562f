#include "common/events/schedule.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clustergov::events {

ScheduledJob::ScheduledJob(store::Store* db, ScheduleOptions options, Job job, prometheus::Registry* registry)
    : db_(db), options_(std::move(options)), job_(std::move(job)) {
  if (options_.interval.count() < 1) options_.interval = std::chrono::milliseconds(1);
  options_.lease_ttl = std::max(options_.lease_ttl, 2 * options_.interval);
  if (registry != nullptr) {
    const std::map<std::string, std::string> labels = {{"schedule", options_.name}};
    leader_ = &prometheus::BuildGauge()
                   .Name("clustergov_scheduled_job_leader")
                   .Help("1 on the replica that holds the job's lease and runs it.")
                   .Register(*registry)
                   .Add(labels);
    last_success_ = &prometheus::BuildGauge()
                         .Name("clustergov_scheduled_job_last_success_timestamp_seconds")
                         .Help("When this replica last ran the job to completion (0: never).")
                         .Register(*registry)
                         .Add(labels);
    runs_ = &prometheus::BuildCounter()
                 .Name("clustergov_scheduled_job_runs_total")
                 .Help("Runs of the job on this replica.")
                 .Register(*registry)
                 .Add(labels);
    failures_ = &prometheus::BuildCounter()
                     .Name("clustergov_scheduled_job_failures_total")
                     .Help("Runs of the job that failed (retried at the next interval).")
                     .Register(*registry)
                     .Add(labels);
  }
}

ScheduledJob::~ScheduledJob() { Stop(); }

void ScheduledJob::Start() {
  loop_.Start([this] { return Pass(); });
}

void ScheduledJob::Stop() {
  loop_.Stop();
  if (leading_) {
    (void)store::ReleaseLease(*db_, fence_);
    leading_ = false;
    if (leader_ != nullptr) leader_->Set(0);
  }
}

absl::StatusOr<bool> ScheduledJob::RunOnce() {
  auto fence = store::TryAcquireLease(*db_, absl::StrCat("job:", options_.name), options_.holder, options_.lease_ttl);
  const bool was = leading_;
  leading_ = fence.ok() && fence->has_value();
  if (leader_ != nullptr) leader_->Set(leading_ ? 1 : 0);
  if (!fence.ok()) return fence.status();
  if (leading_ != was) {
    log::Info(leading_ ? "scheduled job leads" : "scheduled job stands by", {{"schedule", options_.name}});
  }
  if (!leading_) return false;
  fence_ = **fence;
  if (runs_ != nullptr) runs_->Increment();
  absl::Status ran = job_(fence_);
  if (!ran.ok()) {
    if (failures_ != nullptr) failures_->Increment();
    return ran;
  }
  if (last_success_ != nullptr) last_success_->Set(static_cast<double>(store::NowMicros()) / 1e6);
  return true;
}

std::chrono::milliseconds ScheduledJob::Pass() {
  auto ran = RunOnce();
  if (!ran.ok()) log::Warn("scheduled job failed", {{"job", options_.name}, {"error", ran.status().message()}});
  return options_.interval;
}

}  // namespace clustergov::events

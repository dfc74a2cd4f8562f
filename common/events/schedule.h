#pragma once

// Scheduled jobs run by one replica at a time (docs/events.md "Scheduled deadlines").
//
// Every replica runs a ScheduledJob for each of its jobs. Each pass, every `interval`, takes or
// renews the store lease "job:<name>" (store/lease.h); only its holder runs the job, with the
// lease's fence. The job passes the fence in the WriteContext of every write it makes
// (WriteContext::fence), so a replica that stalled while another took the lease over cannot
// commit: its write is ABORTED and rolled back. Jobs are idempotent passes over the store ("expire
// what is past its date"), so a pass cut short is finished by the next holder.

#include <chrono>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/events/background_loop.h"
#include "common/store/lease.h"
#include "common/store/sql.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace clustergov::events {

struct ScheduleOptions {
  std::string name;    // the job, e.g. "expire-certifications"; required
  std::string holder;  // this process, unique among the store's replicas; required
  std::chrono::milliseconds interval{60000};
  // How long a silent holder keeps the lease; at least twice the interval.
  std::chrono::milliseconds lease_ttl{0};
};

using Job = std::function<absl::Status(const store::LeaseFence&)>;

class ScheduledJob {
 public:
  // `db` must outlive the job. `registry` may be null.
  ScheduledJob(store::Store* db, ScheduleOptions options, Job job, prometheus::Registry* registry);
  ~ScheduledJob();  // Stop()
  ScheduledJob(const ScheduledJob&) = delete;
  ScheduledJob& operator=(const ScheduledJob&) = delete;

  void Start();
  // Lets a run in progress finish, then gives the lease up.
  void Stop();

  // One pass without the thread: runs the job if this process holds (or takes) the lease.
  // Returns whether it ran; the job's error otherwise.
  absl::StatusOr<bool> RunOnce();

 private:
  std::chrono::milliseconds Pass();

  store::Store* db_;
  ScheduleOptions options_;
  Job job_;
  bool leading_ = false;
  store::LeaseFence fence_;

  prometheus::Gauge* leader_ = nullptr;
  prometheus::Gauge* last_success_ = nullptr;
  prometheus::Counter* runs_ = nullptr;
  prometheus::Counter* failures_ = nullptr;

  BackgroundLoop loop_;  // last: stopped first
};

}  // namespace clustergov::events

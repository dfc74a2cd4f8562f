#pragma once

// The support service's domain gauges, read from the store through the repository and refreshed
// in the background (for alerting: a review queue that stops moving, a pool running out):
//
//   clustergov_support_applications{state}                        applications per state (every state but
//                                                                  STATE_UNSPECIFIED, 0 when none)
//   clustergov_support_oldest_pending_application_seconds{state}   SUBMITTED, UNDER_REVIEW: how long the
//                                                                  oldest one has been in that state (0: none)
//   clustergov_support_pool_utilization_ratio{pool,region,year,kind}  (reserved + allocated) / capacity
//
// A failed refresh is logged and leaves the previous values.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/support/support_repository.h"

namespace clustergov::support {

class SupportMetrics {
 public:
  // Registers the families in `registry` (which must outlive this) with every state's series at 0.
  SupportMetrics(SupportRepository* repository, prometheus::Registry& registry);
  ~SupportMetrics();  // Stop()
  SupportMetrics(const SupportMetrics&) = delete;
  SupportMetrics& operator=(const SupportMetrics&) = delete;

  // Refreshes once now, then every `period` on a thread of its own until Stop().
  void Start(absl::Duration period);
  // Wakes the thread and joins it (a refresh in progress finishes first: one store read). Call
  // before the store closes. Idempotent.
  void Stop();
  // Reads the store and sets every gauge; pools created since the last refresh get their series.
  absl::Status RefreshNow();

 private:
  SupportRepository* repo_;
  prometheus::Family<prometheus::Gauge>& applications_;
  prometheus::Family<prometheus::Gauge>& oldest_pending_;
  prometheus::Family<prometheus::Gauge>& pool_utilization_;

  std::mutex refresh_mu_;  // one refresh at a time (the thread's and RefreshNow() callers')
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace clustergov::support

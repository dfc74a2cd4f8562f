#pragma once

// A bounded pool of worker threads for blocking work (SQLite, Redis, outgoing RPCs), so that
// callback-API reactions never block gRPC's own threads.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace clustergov::server {

class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when the queue is full or the pool is stopping (the caller rejects).
  bool TrySubmit(std::function<void()> task);
  // Runs what is queued, then joins the threads. Idempotent.
  void Stop();
  size_t queued() const;

 private:
  void Loop();

  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace clustergov::server

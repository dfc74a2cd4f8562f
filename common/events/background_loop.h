#pragma once

// One background thread running a pass over and over, as the relay and the consumer do: between
// passes it sleeps for the delay the pass returned, until woken or stopped. Stop() lets the pass
// in progress finish.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace clustergov::events {

class BackgroundLoop {
 public:
  // Returns how long to wait before the next pass (zero: at once).
  using Pass = std::function<std::chrono::milliseconds()>;

  BackgroundLoop() = default;
  ~BackgroundLoop() { Stop(); }
  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;

  // Starts the thread (once; a second call while running does nothing).
  void Start(Pass pass) {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this, pass = std::move(pass)] { Run(pass); });
  }

  // Waits for the pass in progress, then ends the thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Ends the current wait: the next pass starts now.
  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

 private:
  void Run(const Pass& pass) {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        woken_ = false;
      }
      const std::chrono::milliseconds delay = pass();
      if (delay.count() <= 0) continue;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, delay, [this] { return stopping_ || woken_; });
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace clustergov::events

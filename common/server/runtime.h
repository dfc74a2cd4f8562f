#pragma once

// The server bootstrap every service uses: from a CommonConfig it builds the process-wide parts
// (metrics, store, Redis client, authenticator, page-token codec, worker pool, handler helper),
// then serves gRPC services with the callback API, the standard health service (NOT_SERVING while
// starting and draining), reflection, the metrics interceptor, message-size and keepalive limits,
// and shuts down gracefully within a bounded drain.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/auth.h"
#include "common/auth/service_token.h"
#include "common/cache/cache.h"
#include "common/cache/redis.h"
#include "common/list/page_token.h"
#include "common/metrics/metrics.h"
#include "common/server/call.h"
#include "common/server/config.h"
#include "common/server/worker_pool.h"
#include "common/events/consumer.h"
#include "common/events/outbox.h"
#include "common/events/schedule.h"
#include "common/store/sqlite.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace prometheus {
class Gauge;
}  // namespace prometheus

namespace clustergov::server {

// Call first in main(), before any thread starts, so SIGTERM/SIGINT reach ServeUntilSignal().
void BlockTerminationSignals();

class Runtime {
 public:
  // Opens the store (a clear UNAVAILABLE when it cannot), checks Redis (a warning only: the cache
  // fails open), builds the authenticator (INVALID_ARGUMENT on a bad key). With a Redis client,
  // exports `clustergov_redis_up` (1 when the last PING succeeded, 0 otherwise): set from the
  // startup check, then re-probed every kRedisProbeInterval on a thread of its own until Shutdown().
  static absl::StatusOr<std::unique_ptr<Runtime>> Create(const CommonConfig& config, std::string version = "0.1.0");
  ~Runtime();

  const CommonConfig& config() const { return config_; }
  store::Store& db() { return *db_; }
  cache::RedisClient* redis() { return redis_.get(); }
  const Authenticator& authenticator() const { return *authenticator_; }
  const PageTokenCodec& page_tokens() const { return *page_tokens_; }
  metrics::Metrics& metrics() { return *metrics_; }
  Handler& handler() { return *handler_; }
  // A cache with this service's versioned key prefix ("cg:v3:<service>:<name>:<store id>:", the
  // same for every replica on the store: store/identity.h); `ttl` zero means --cache_ttl_seconds.
  // Null when caching is disabled (--cache=false).
  std::unique_ptr<cache::Cache> MakeCache(const std::string& name, std::chrono::seconds ttl = std::chrono::seconds(0));

  // The bearer tokens for this service's own calls (role "service", subject "service:<name>"):
  // --service_token_file (re-read when it changes), else minted from the HS256 secret (re-minted
  // before expiry). Ask it for the token at each call. FAILED_PRECONDITION when neither.
  absl::StatusOr<const ServiceTokenSource*> ServiceToken() const;

  // Domain events (docs/events.md). The relay, consumers and jobs run from Start() until
  // Shutdown() (after the drain), on threads of their own.
  //
  // The stream a service publishes to: "cg:events:<service>".
  static std::string EventStream(const std::string& service) { return "cg:events:" + service; }
  // Publishes this store's outbox (what Transaction::Publish appended) to this service's stream.
  void PublishEvents();
  // Applies `publisher`'s events in the consumer group "<service>.<purpose>" (e.g. "clusters.counts"),
  // with `handler` inside a store write per batch (consumer.h; `scope` optional). Each purpose is
  // a group of its own: it sees every event of the stream.
  void ConsumeEvents(const std::string& publisher, const std::string& purpose, events::Handler handler,
                     events::BatchScope scope = nullptr);
  // For a cache of another service's answers: consumes `publisher`'s events in the group
  // "<service>.directory" and, after each batch's store write (which records the events and
  // changes nothing else), calls `drop` with the subject of every event of type `type` (a full
  // message name, e.g. "clustergov.events.v1.ClusterChanged").
  void DropOnEvents(const std::string& publisher, const std::string& type,
                    std::function<void(const std::string& subject)> drop);
  // Runs `job` every `interval` on one replica at a time (schedule.h).
  void Schedule(const std::string& name, std::chrono::milliseconds interval, events::Job job);
  // This process among the store's replicas: "<service>-<host>-<pid>-<random>".
  const std::string& instance() const { return instance_; }

  // Starts /metrics and the gRPC server; the services must outlive the runtime's serving.
  absl::Status Start(const std::vector<grpc::Service*>& services);
  int port() const { return port_; }
  int metrics_port() const { return metrics_->exposer_port(); }
  void SetServing(bool serving);

  // NOT_SERVING, waits the pre-stop delay, stops accepting, lets in-flight calls finish within
  // the drain timeout (then cancels them), stops the workers and the Redis probe. Idempotent.
  void Shutdown();
  // Blocks until SIGTERM or SIGINT, then Shutdown(). Returns the signal.
  int ServeUntilSignal();

  static constexpr std::chrono::seconds kRedisProbeInterval{5};

 private:
  explicit Runtime(CommonConfig config);
  // The probe thread's loop: PING every kRedisProbeInterval, set clustergov_redis_up.
  void ProbeRedis();
  void SetRedisUp(bool up);

  CommonConfig config_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<store::Store> db_;
  std::unique_ptr<cache::RedisClient> redis_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<PageTokenCodec> page_tokens_;
  std::unique_ptr<ServiceTokenSource> service_token_;  // null without a file or an HS256 secret
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string store_id_;  // the store's identity: names the cache namespace
  std::string instance_;
  // The events' own Redis connections: a consumer's blocking read holds one, which must not be
  // taken from the cache's pool (nor its circuit breaker tripped by the cache's errors).
  cache::RedisClient& EventsRedis();
  std::unique_ptr<cache::RedisClient> events_redis_;
  std::unique_ptr<events::Relay> relay_;
  std::vector<std::unique_ptr<events::Consumer>> consumers_;
  std::vector<std::unique_ptr<events::ScheduledJob>> jobs_;
  bool shut_down_ = false;

  prometheus::Gauge* redis_up_ = nullptr;  // in metrics_'s registry; null without a Redis client
  bool redis_was_up_ = false;              // the last probe's result (probe thread only, after Create)
  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  bool probe_stopping_ = false;
  std::thread redis_probe_;
};

}  // namespace clustergov::server

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "common/server/interceptors.h"
#include "common/server/runtime.h"
#include "common/store/identity.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clustergov::server {

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Runtime::Runtime(CommonConfig config) : config_(std::move(config)) {}

Runtime::~Runtime() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Create(const CommonConfig& config, std::string version) {
  log::Level level = log::Level::kInfo;
  log::ParseLevel(config.log_level, &level);
  log::Init(config.server.service_name, level);
  // Abseil's mutex deadlock detection (on in Debian's build) costs a graph lookup on every lock of
  // every absl::Mutex, gRPC's own included; lock ordering is covered by tests instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  std::unique_ptr<Runtime> rt(new Runtime(config));
  rt->metrics_ = std::make_unique<metrics::Metrics>(config.server.service_name, version);

  auto auth = Authenticator::Create(config.auth);
  if (!auth.ok()) return absl::InvalidArgumentError(absl::StrCat("auth configuration: ", auth.status().message()));
  rt->authenticator_ = std::move(*auth);
  rt->page_tokens_ = std::make_unique<PageTokenCodec>(config.page_token_secret);
  if (!config.service_token_file.empty()) {
    auto source = ServiceTokenSource::FromFile(config.service_token_file);
    if (!source.ok()) return absl::InvalidArgumentError(absl::StrCat("--service_token_file=", source.status().message()));
    rt->service_token_ = std::move(*source);
  } else if (!config.auth.hs256_secret.empty()) {
    const Principal self = ServicePrincipal(config.server.service_name);
    TokenSpec spec;
    spec.subject = self.subject;
    spec.organization = self.organization;
    spec.roles = self.roles;
    spec.issuer = config.auth.issuer;
    spec.audience = config.auth.audience;
    auto source = ServiceTokenSource::Minted(std::move(spec), config.auth.hs256_secret, config.service_token_lifetime);
    if (!source.ok()) return source.status();
    rt->service_token_ = std::move(*source);
  }

  if (store::IsPostgresUrl(config.db.path)) {
    store::PgOptions pg = config.pg;
    pg.url = config.db.path;
    pg.metrics = &rt->metrics_->registry();
    auto db = store::PgDatabase::Open(pg);
    if (!db.ok()) return db.status();
    rt->db_ = std::move(*db);
  } else {
    store::DatabaseOptions db_options = config.db;
    db_options.metrics = &rt->metrics_->registry();
    auto db = store::Database::Open(db_options);
    if (!db.ok()) return db.status();
    rt->db_ = std::move(*db);
  }

  // Redis carries the events whether or not it caches.
  auto id = store::StoreIdentity(*rt->db_);
  if (!id.ok()) return id.status();
  rt->store_id_ = std::move(*id);
  rt->redis_ = std::make_unique<cache::RedisClient>(config.redis);
  {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    rt->instance_ = absl::StrCat(config.server.service_name, "-", host, "-", getpid(), "-", store::NewEventId().substr(0, 8));
  }
  if (rt->redis_ != nullptr) {
    absl::Status ping = rt->redis_->Ping();
    if (!ping.ok()) {
      log::Warn("redis not reachable at startup; serving from the store until it is",
                {{"redis", absl::StrCat(config.redis.host, ":", config.redis.port)}});
    }
    rt->redis_up_ = &prometheus::BuildGauge()
                         .Name("clustergov_redis_up")
                         .Help("1 when the last Redis PING (at startup, then every 5 s) succeeded, 0 otherwise.")
                         .Register(rt->metrics_->registry())
                         .Add({});
    rt->redis_up_->Set(ping.ok() ? 1 : 0);
    rt->redis_was_up_ = ping.ok();
    rt->redis_probe_ = std::thread([r = rt.get()] { r->ProbeRedis(); });
  }
  rt->pool_ = std::make_unique<WorkerPool>(config.server.worker_threads, config.server.worker_queue);
  rt->handler_ = std::make_unique<Handler>(rt->pool_.get(), rt->authenticator_.get());
  return rt;
}

void Runtime::ProbeRedis() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(probe_mu_);
      if (probe_cv_.wait_for(lock, kRedisProbeInterval, [this] { return probe_stopping_; })) return;
    }
    // Through the client's pool and circuit breaker like every other command: while the breaker
    // is open after a failure (a dead Redis) this costs no connection attempt and reports 0; at
    // most one connect + PING otherwise, each bounded by the Redis timeouts.
    SetRedisUp(redis_->Ping().ok());
  }
}

void Runtime::SetRedisUp(bool up) {
  redis_up_->Set(up ? 1 : 0);
  if (up == redis_was_up_) return;
  redis_was_up_ = up;
  const std::string address = absl::StrCat(config_.redis.host, ":", config_.redis.port);
  if (up) {
    log::Info("redis reachable again", {{"redis", address}});
  } else {
    log::Warn("redis not reachable; serving from the store until it is", {{"redis", address}});
  }
}

std::unique_ptr<cache::Cache> Runtime::MakeCache(const std::string& name, std::chrono::seconds ttl) {
  if (redis_ == nullptr || !config_.cache_enabled) return nullptr;
  cache::CacheOptions options;
  // One namespace for every replica on this store, and across runs: a write's pending marks
  // (cache.h) cover a crash between its commit and its invalidation. Another store, another one.
  options.prefix = absl::StrCat("cg:v3:", config_.server.service_name, ":", name, ":", store_id_, ":");
  options.ttl = ttl.count() > 0 ? ttl : config_.cache_ttl;
  options.near_ttl = std::min<std::chrono::milliseconds>(config_.near_cache_ttl, options.ttl);
  return std::make_unique<cache::Cache>(redis_.get(), options, &metrics_->registry(), name);
}

absl::StatusOr<const ServiceTokenSource*> Runtime::ServiceToken() const {
  if (service_token_ == nullptr) {
    return absl::FailedPreconditionError("no service token: set --service_token_file (RS256/ES256 deployments)");
  }
  return service_token_.get();
}

absl::Status Runtime::Start(const std::vector<grpc::Service*>& services) {
  if (!config_.server.metrics_listen.empty()) {
    if (absl::Status s = metrics_->StartExposer(config_.server.metrics_listen); !s.ok()) return s;
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.server.listen, grpc::InsecureServerCredentials(), &port_);
  // Without this, Linux lets a second server bind the same port silently (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(config_.server.max_message_bytes);
  builder.SetMaxSendMessageSize(config_.server.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config_.server.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config_.server.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  for (auto* s : services) builder.RegisterService(s);
  auto served = std::make_shared<ServedMethods>();
  builder.SetOption(served->BuilderOption());
  // In this order: a status the first rewrites is the one the metrics record.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(CreateMalformedRequestInterceptorFactory());
  interceptors.push_back(metrics_->CreateInterceptorFactory(
      [served](std::string_view full_method) { return served->Contains(full_method); }));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.server.listen, " (port in use or address invalid)"));
  }
  // Events flow from here on: consumers first, so what the relay publishes finds them reading.
  for (auto& consumer : consumers_) {
    if (absl::Status s = consumer->Start(); !s.ok()) {
      server_->Shutdown();
      server_.reset();
      return s;
    }
  }
  if (relay_ != nullptr) relay_->Start();
  for (auto& job : jobs_) job->Start();
  SetServing(true);
  log::Info("serving", {{"grpc_port", std::to_string(port_)},
                        {"metrics_port", std::to_string(metrics_->exposer_port())},
                        {"store", db_->location()}});
  return absl::OkStatus();
}

void Runtime::SetServing(bool serving) {
  if (server_ == nullptr) return;
  auto* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
}

void Runtime::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // The Redis probe is told to stop first and joined last, so a PING in progress (bounded by the
  // Redis timeouts) overlaps the drain instead of adding to it.
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    probe_stopping_ = true;
  }
  probe_cv_.notify_all();
  if (server_ != nullptr) {
    SetServing(false);
    log::Info("draining", {{"pre_stop", absl::FormatDuration(config_.server.pre_stop_delay)},
                           {"drain", absl::FormatDuration(config_.server.drain_timeout)}});
    absl::SleepFor(config_.server.pre_stop_delay);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + config_.server.drain_timeout));
    server_->Wait();
  }
  if (pool_ != nullptr) pool_->Stop();
  // After the drain: what the last calls committed is published; each finishes its batch.
  for (auto& job : jobs_) job->Stop();
  for (auto& consumer : consumers_) consumer->Stop();
  if (relay_ != nullptr) relay_->Stop();
  if (redis_probe_.joinable()) redis_probe_.join();
  if (server_ != nullptr) log::Info("stopped");
}

cache::RedisClient& Runtime::EventsRedis() {
  if (events_redis_ == nullptr) {
    // Patient where the cache is quick to give up: a reply lost to a timeout leaves a read batch
    // pending until it is claimed again.
    cache::RedisOptions options = config_.redis;
    options.io_timeout = std::max(options.io_timeout, std::chrono::milliseconds(1000));
    options.pool_size = 8;
    events_redis_ = std::make_unique<cache::RedisClient>(options);
  }
  return *events_redis_;
}

void Runtime::PublishEvents() {
  events::RelayOptions options;
  options.stream = EventStream(config_.server.service_name);
  options.max_len = config_.event_stream_max_len;
  options.holder = instance_;
  relay_ = std::make_unique<events::Relay>(db_.get(), &EventsRedis(), options, &metrics_->registry());
}

void Runtime::ConsumeEvents(const std::string& publisher, const std::string& purpose, events::Handler handler,
                            events::BatchScope scope) {
  events::ConsumerOptions options;
  options.stream = EventStream(publisher);
  options.group = absl::StrCat(config_.server.service_name, ".", purpose);
  options.consumer = instance_;
  consumers_.push_back(std::make_unique<events::Consumer>(db_.get(), &EventsRedis(), options, std::move(handler),
                                                          &metrics_->registry(), std::move(scope)));
}

void Runtime::DropOnEvents(const std::string& publisher, const std::string& type,
                           std::function<void(const std::string& subject)> drop) {
  auto recorded = [](store::Connection&, const events::v1::Envelope&) { return absl::OkStatus(); };
  auto scope = [type, drop = std::move(drop)](const std::vector<const events::v1::Envelope*>& batch) {
    std::vector<std::string> subjects;
    for (const auto* e : batch) {
      if (e->type() == type) subjects.push_back(e->subject());
    }
    return std::function<void()>([drop, subjects = std::move(subjects)] {
      for (const auto& subject : subjects) drop(subject);
    });
  };
  ConsumeEvents(publisher, "directory", std::move(recorded), std::move(scope));
}

void Runtime::Schedule(const std::string& name, std::chrono::milliseconds interval, events::Job job) {
  events::ScheduleOptions options;
  options.name = name;
  options.holder = instance_;
  options.interval = interval;
  jobs_.push_back(std::make_unique<events::ScheduledJob>(db_.get(), options, std::move(job), &metrics_->registry()));
}

int Runtime::ServeUntilSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int signal = 0;
  sigwait(&set, &signal);
  log::Info("signal received", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  Shutdown();
  return signal;
}

}  // namespace clustergov::server

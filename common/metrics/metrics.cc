#include "common/metrics/metrics.h"

#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace clustergov::metrics {

const char* GrpcCodeName(int code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",          "Unknown",          "InvalidArgument", "DeadlineExceeded", "NotFound",
      "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
      "OutOfRange", "Unimplemented",   "Internal",         "Unavailable",     "DataLoss",         "Unauthenticated"};
  if (code < 0 || code > 16) return "Unknown";
  return kNames[code];
}

// The families and the per-method children (Add() is slow: look children up once, keep them).
class GrpcServerMetrics {
 public:
  explicit GrpcServerMetrics(prometheus::Registry& registry)
      : started_(prometheus::BuildCounter()
                     .Name("grpc_server_started_total")
                     .Help("Total number of RPCs started on the server.")
                     .Register(registry)),
        handled_(prometheus::BuildCounter()
                     .Name("grpc_server_handled_total")
                     .Help("Total number of RPCs completed on the server, regardless of success or failure.")
                     .Register(registry)),
        seconds_(prometheus::BuildHistogram()
                     .Name("grpc_server_handling_seconds")
                     .Help("Histogram of response latency (seconds) of gRPC that had been application-level "
                           "handled by the server.")
                     .Register(registry)) {}

  struct Method {
    std::string name;  // "/package.Service/Method": the map's key views it
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* seconds = nullptr;
    prometheus::Counter* handled[17] = {};
  };

  // Called for every RPC: the lookup views the method name (no allocation); children are made
  // once. A name `served` refuses gets the one "unknown" set of its type and is not remembered.
  Method* Get(std::string_view full_method, const char* type, const Metrics::ServedFilter& served) {
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = methods_.find(full_method);
      if (it != methods_.end()) return it->second.get();
    }
    if (!served(full_method)) {
      // At most one per grpc_type (four), whatever names clients send.
      {
        std::shared_lock<std::shared_mutex> lock(mu_);
        auto it = unknown_.find(type);
        if (it != unknown_.end()) return it->second.get();
      }
      std::unique_lock<std::shared_mutex> lock(mu_);
      std::unique_ptr<Method>& slot = unknown_[type];
      if (slot == nullptr) slot = Make("/unknown/unknown", type);
      return slot.get();
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto it = methods_.find(full_method);
    if (it == methods_.end()) {
      auto method_metrics = Make(full_method, type);
      it = methods_.emplace(std::string_view(method_metrics->name), std::move(method_metrics)).first;
    }
    return it->second.get();
  }

 private:
  std::unique_ptr<Method> Make(std::string_view full_method, const char* type) {
    auto slot = std::make_unique<Method>();
    slot->name = std::string(full_method);
    std::string service = "unknown", method = slot->name;
    auto slash = slot->name.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      service = slot->name.substr(1, slash - 1);
      method = slot->name.substr(slash + 1);
    }
    prometheus::Labels labels{{"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}};
    slot->started = &started_.Add(labels);
    slot->seconds = &seconds_.Add(labels, prometheus::Histogram::BucketBoundaries{
                                              0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                              2.5, 5, 10});
    for (int code = 0; code <= 16; ++code) {
      auto with_code = labels;
      with_code["grpc_code"] = GrpcCodeName(code);
      slot->handled[code] = &handled_.Add(with_code);
    }
    return slot;
  }

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  std::shared_mutex mu_;
  std::unordered_map<std::string_view, std::unique_ptr<Method>> methods_;  // served methods only
  std::map<std::string_view, std::unique_ptr<Method>> unknown_;            // by grpc_type (TypeName's literals)
};

namespace {

const char* TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY: return "unary";
    case Type::CLIENT_STREAMING: return "client_stream";
    case Type::SERVER_STREAMING: return "server_stream";
    case Type::BIDI_STREAMING: return "bidi_stream";
  }
  return "unary";
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(GrpcServerMetrics::Method* method)
      : method_(method), start_(std::chrono::steady_clock::now()) {
    method_->started->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (code < 0 || code > 16) code = 2;
      method_->handled[code]->Increment();
      method_->seconds->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  GrpcServerMetrics::Method* method_;
  std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(std::shared_ptr<GrpcServerMetrics> metrics, Metrics::ServedFilter served)
      : metrics_(std::move(metrics)), served_(std::move(served)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    auto* method = metrics_->Get(info->method(), TypeName(info->type()), served_);
    return new MetricsInterceptor(method);
  }

 private:
  std::shared_ptr<GrpcServerMetrics> metrics_;
  Metrics::ServedFilter served_;
};

}  // namespace

Metrics::Metrics(std::string service, std::string version)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("clustergov_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"service", service}, {"version", version}})
      .Set(1);
  grpc_ = std::make_shared<GrpcServerMetrics>(*registry_);
}

Metrics::~Metrics() = default;

absl::Status Metrics::StartExposer(const std::string& address) {
  try {
    // The one place clustergov meets exceptions: prometheus-cpp's exposer throws when it cannot bind.
    exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  auto ports = exposer_->GetListeningPorts();
  exposer_port_ = ports.empty() ? 0 : ports.front();
  return absl::OkStatus();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::CreateInterceptorFactory(
    ServedFilter served) {
  return std::make_unique<MetricsInterceptorFactory>(grpc_, std::move(served));
}

}  // namespace clustergov::metrics

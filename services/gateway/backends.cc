#include "services/gateway/backends.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/server/client.h"

namespace clustergov::gateway {
namespace {

constexpr char kHealthMethod[] = "/grpc.health.v1.Health/Check";

bool SplitHostPort(const std::string& address, std::string* host, int* port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit)) return false;
  *port = std::stoi(p);
  return *port > 0 && *port <= 65535 && !host->empty();
}

bool IsIpv4(const std::string& host) {
  in_addr a;
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}
bool IsIpv6(const std::string& host) {
  in6_addr a;
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

std::string SliceConcat(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<BackendSpec>> ParseBackendSpecs(const std::vector<std::string>& values) {
  std::vector<BackendSpec> specs;
  std::map<std::string, size_t> index;
  BackendSpec* current = nullptr;
  for (const auto& value : values) {
    for (absl::string_view token : absl::StrSplit(value, absl::ByAnyChar(",; \t\n"), absl::SkipEmpty())) {
      std::string address;
      auto eq = token.find('=');
      if (eq != absl::string_view::npos) {
        std::string service(token.substr(0, eq));
        if (service.empty() || service.find('.') == std::string::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat("--backend: \"", token, "\": expected <package.Service>=host:port[,host:port]"));
        }
        auto it = index.find(service);
        if (it == index.end()) {
          index[service] = specs.size();
          specs.push_back({service, {}});
          current = &specs.back();
        } else {
          current = &specs[it->second];
        }
        address = std::string(token.substr(eq + 1));
      } else {
        if (current == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat("--backend: \"", token,
                                                         "\": which service? expected "
                                                         "<package.Service>=host:port[,host:port]"));
        }
        address = std::string(token);
      }
      std::string host;
      int port;
      if (!SplitHostPort(address, &host, &port)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--backend: \"", address, "\" for ", current->service, ": expected host:port"));
      }
      current->addresses.push_back(address);
    }
  }
  for (const auto& s : specs) {
    if (s.addresses.empty())
      return absl::InvalidArgumentError(absl::StrCat("--backend: ", s.service, " has no address"));
  }
  return specs;
}

struct Backends::Impl {
  struct Service {
    std::string name;
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
    std::atomic<uint64_t> next{0};

    // Round-robin over the channels, skipping ones known to be down while another might not be.
    grpc::GenericStub* Pick() {
      size_t n = stubs.size();
      uint64_t start = next.fetch_add(1, std::memory_order_relaxed);
      for (size_t i = 0; i < n; ++i) {
        size_t k = (start + i) % n;
        if (n == 1 || channels[k]->GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE) return stubs[k].get();
      }
      return stubs[start % n].get();
    }
  };

  struct CallState {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    std::function<void(CallResult)> done;
  };

  std::map<std::string, std::unique_ptr<Service>, std::less<>> services;

  std::mutex mu;
  std::condition_variable idle;
  // Calls in flight, kept alive here too so CancelAll can reach them without holding `mu` (a
  // cancellation may run the completion callback inline).
  std::unordered_map<CallState*, std::shared_ptr<CallState>> in_flight;

  void Untrack(CallState* c) {
    std::shared_ptr<CallState> last;  // released outside the lock
    std::lock_guard<std::mutex> lock(mu);
    auto it = in_flight.find(c);
    if (it != in_flight.end()) {
      last = std::move(it->second);
      in_flight.erase(it);
    }
    if (in_flight.empty()) idle.notify_all();
  }

  void Start(grpc::GenericStub* stub, const std::string& method, std::unique_ptr<CallState> owned) {
    std::shared_ptr<CallState> call(std::move(owned));
    {
      std::lock_guard<std::mutex> lock(mu);
      in_flight.emplace(call.get(), call);
    }
    stub->UnaryCall(&call->context, method, grpc::StubOptions(), &call->request, &call->response,
                    [this, call](grpc::Status status) {
                      CallResult result;
                      result.code = static_cast<int>(status.error_code());
                      if (status.ok()) {
                        result.response = SliceConcat(call->response);
                      } else {
                        result.message = status.error_message();
                        result.details = status.error_details();
                      }
                      auto done = std::move(call->done);
                      Untrack(call.get());
                      done(std::move(result));
                    });
  }
};

Backends::Backends(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Backends::~Backends() {
  CancelAll();
  WaitIdle(absl::Seconds(5));
}

absl::StatusOr<std::unique_ptr<Backends>> Backends::Create(const std::vector<BackendSpec>& specs,
                                                           const BackendOptions& options) {
  auto impl = std::make_unique<Impl>();
  server::ChannelOptions channel_options;
  channel_options.max_message_bytes = options.max_message_bytes;
  channel_options.connect_timeout = options.connect_timeout;
  channel_options.initial_reconnect_backoff = options.initial_reconnect_backoff;
  channel_options.max_reconnect_backoff = options.max_reconnect_backoff;

  for (const auto& spec : specs) {
    auto service = std::make_unique<Impl::Service>();
    service->name = spec.service;
    std::vector<std::string> hosts;
    bool all_v4 = true, all_v6 = true;
    for (const auto& a : spec.addresses) {
      std::string host;
      int port;
      if (!SplitHostPort(a, &host, &port)) return absl::InvalidArgumentError(absl::StrCat("bad address ", a));
      all_v4 = all_v4 && IsIpv4(host);
      all_v6 = all_v6 && IsIpv6(host);
    }
    std::vector<std::string> targets;
    if (all_v4 || all_v6) {
      // One channel, gRPC's round_robin over a static address list.
      targets.push_back(absl::StrCat(all_v4 ? "ipv4:" : "ipv6:", absl::StrJoin(spec.addresses, ",")));
    } else {
      // Names: a channel per address (each balancing over what DNS returns), rotated here.
      for (const auto& a : spec.addresses) targets.push_back(absl::StrCat("dns:///", a));
    }
    for (const auto& target : targets) {
      auto channel = server::MakeChannel(target, channel_options);
      if (channel == nullptr) return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to ", target));
      service->stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
      service->channels.push_back(std::move(channel));
    }
    impl->services[spec.service] = std::move(service);
  }
  return std::unique_ptr<Backends>(new Backends(std::move(impl)));
}

bool Backends::Has(absl::string_view service) const { return impl_->services.find(service) != impl_->services.end(); }

std::vector<std::string> Backends::services() const {
  std::vector<std::string> out;
  for (const auto& [name, s] : impl_->services) out.push_back(name);
  return out;
}

void Backends::Call(absl::string_view service, const std::string& method, std::string request,
                    const CallMetadata& metadata, std::function<void(CallResult)> done) {
  auto it = impl_->services.find(service);
  if (it == impl_->services.end()) {
    CallResult r;
    r.code = static_cast<int>(grpc::StatusCode::UNAVAILABLE);
    r.message = absl::StrCat("no backend configured for ", service);
    done(std::move(r));
    return;
  }
  auto call = std::make_unique<Impl::CallState>();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + metadata.timeout));
  if (!metadata.authorization.empty()) call->context.AddMetadata("authorization", metadata.authorization);
  if (!metadata.request_id.empty()) call->context.AddMetadata("x-request-id", metadata.request_id);
  if (!metadata.forwarded_for.empty()) call->context.AddMetadata("x-forwarded-for", metadata.forwarded_for);
  grpc::Slice slice(std::move(request));
  call->request = grpc::ByteBuffer(&slice, 1);
  call->done = std::move(done);
  impl_->Start(it->second->Pick(), method, std::move(call));
}

void Backends::CheckHealth(absl::Duration timeout, std::function<void(std::vector<BackendHealth>)> done) {
  struct Gather {
    std::mutex mu;
    std::vector<BackendHealth> results;
    size_t pending = 0;
    std::function<void(std::vector<BackendHealth>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->done = std::move(done);
  std::vector<std::pair<std::string, grpc::GenericStub*>> checks;
  for (const auto& [name, service] : impl_->services) {
    for (const auto& stub : service->stubs) checks.emplace_back(name, stub.get());
  }
  gather->pending = checks.size();
  if (checks.empty()) {
    gather->done({});
    return;
  }
  for (const auto& [name, stub] : checks) {
    auto call = std::make_unique<Impl::CallState>();
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    grpc::Slice empty(std::string{});  // HealthCheckRequest{service: ""}
    call->request = grpc::ByteBuffer(&empty, 1);
    std::string service_name = name;
    call->done = [gather, service_name](CallResult r) {
      BackendHealth h;
      h.service = service_name;
      if (r.code != 0) {
        h.state = absl::StrCat(r.code == static_cast<int>(grpc::StatusCode::UNAVAILABLE) ? "UNAVAILABLE" : "ERROR",
                               ": ", r.message);
      } else {
        // HealthCheckResponse{status = 1}: field 1, varint. 1 SERVING, 2 NOT_SERVING.
        int status = r.response.size() >= 2 && r.response[0] == 0x08 ? r.response[1] : 0;
        h.serving = status == 1;
        h.state = status == 1 ? "SERVING" : status == 2 ? "NOT_SERVING" : status == 3 ? "SERVICE_UNKNOWN" : "UNKNOWN";
      }
      std::vector<BackendHealth> all;
      {
        std::lock_guard<std::mutex> lock(gather->mu);
        gather->results.push_back(std::move(h));
        if (--gather->pending != 0) return;
        all = std::move(gather->results);
      }
      // Several addresses of one service: it is ready when one of them serves.
      std::map<std::string, BackendHealth> by_service;
      for (auto& x : all) {
        auto it = by_service.find(x.service);
        if (it == by_service.end() || (!it->second.serving && x.serving)) by_service[x.service] = x;
      }
      std::vector<BackendHealth> out;
      for (auto& [k, v] : by_service) out.push_back(std::move(v));
      gather->done(std::move(out));
    };
    impl_->Start(stub, kHealthMethod, std::move(call));
  }
}

void Backends::CancelAll() {
  std::vector<std::shared_ptr<Impl::CallState>> calls;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [ptr, call] : impl_->in_flight) calls.push_back(call);
  }
  for (const auto& c : calls) c->context.TryCancel();
}

bool Backends::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->idle.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return impl_->in_flight.empty(); });
}

}  // namespace clustergov::gateway

#include "services/gateway/gateway.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <shared_mutex>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/auth/auth.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"
#include "google/protobuf/descriptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/gateway/conditional.h"
#include "services/gateway/errors.h"
#include "services/gateway/json.h"
#include "services/gateway/openapi.h"
#include "services/gateway/path_template.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/routes.h"
#include "services/gateway/static_files.h"

namespace clustergov::gateway {

// http_requests_total{method,route,code} and http_request_duration_seconds{method,route}; the
// children are looked up once and kept (Family::Add is slow).
class HttpMetrics {
 public:
  explicit HttpMetrics(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("http_requests_total")
                      .Help("HTTP requests answered, by method, route template and status code.")
                      .Register(registry)),
        duration_(prometheus::BuildHistogram()
                      .Name("http_request_duration_seconds")
                      .Help("HTTP request latency in seconds, by method and route template.")
                      .Register(registry)) {}

  void Record(const std::string& method, const std::string& route, int code, double seconds) {
    std::string key = absl::StrCat(method, " ", route, " ", code);
    std::string hkey = absl::StrCat(method, " ", route);
    prometheus::Counter* counter = nullptr;
    prometheus::Histogram* histogram = nullptr;
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto c = counters_.find(key);
      auto h = histograms_.find(hkey);
      if (c != counters_.end()) counter = c->second;
      if (h != histograms_.end()) histogram = h->second;
    }
    if (counter == nullptr || histogram == nullptr) {
      std::unique_lock<std::shared_mutex> lock(mu_);
      auto& c = counters_[key];
      if (c == nullptr) c = &requests_.Add({{"method", method}, {"route", route}, {"code", std::to_string(code)}});
      auto& h = histograms_[hkey];
      if (h == nullptr) {
        h = &duration_.Add({{"method", method}, {"route", route}},
                           prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                   0.5, 1, 2.5, 5, 10});
      }
      counter = c;
      histogram = h;
    }
    counter->Increment();
    histogram->Observe(seconds);
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  std::unordered_map<std::string, prometheus::Histogram*> histograms_;
};

namespace {

constexpr char kAllowedRequestHeaders[] = "authorization, content-type, x-request-id, if-match, if-none-match";
constexpr char kExposedHeaders[] = "x-request-id, etag, retry-after";
constexpr char kJson[] = "application/json";
constexpr char kUnmatchedRoute[] = "unmatched";
constexpr char kConsoleRoute[] = "console";
// "Bearer " and the longest token the services accept.
constexpr size_t kMaxAuthorizationBytes = 7 + kMaxBearerTokenBytes;

// Bounded label values: the methods HTTP defines, anything else is OTHER.
std::string MethodLabel(absl::string_view method) {
  static const char* const kKnown[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"};
  for (const char* m : kKnown) {
    if (method == m) return m;
  }
  return "OTHER";
}

bool ValidRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') {
      return false;
    }
  }
  return true;
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16), absl::Hex(rng(), absl::kZeroPad16));
}

// "application/json", "application/json; charset=utf-8", "application/merge-patch+json" are JSON.
bool IsJsonContentType(absl::string_view type) {
  absl::string_view media = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
  std::string lower = absl::AsciiStrToLower(media);
  return lower == kJson || absl::EndsWith(lower, "+json");
}

bool HasHeader(const std::vector<std::pair<std::string, std::string>>& headers, absl::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [name](const auto& kv) { return absl::EqualsIgnoreCase(kv.first, name); });
}

// The API's paths: what the console never answers.
bool IsApiPath(absl::string_view path) { return path == "/v1" || absl::StartsWith(path, "/v1/"); }

}  // namespace

// One request in flight: what its answer needs once the backend replies (on another thread).
struct Gateway::Exchange {
  Gateway* gateway;
  std::chrono::steady_clock::time_point start;
  std::string method;
  std::string target;
  std::string request_id;
  std::string origin;
  std::string client_ip;
  std::string route = kUnmatchedRoute;
  Responder respond;

  void Finish(HttpResponse response) {
    log::ScopedRequestId scope(request_id);
    auto& h = response.headers;
    h.emplace_back("x-request-id", request_id);
    if (!response.body.empty() && !HasHeader(h, "content-type")) h.emplace_back("Content-Type", kJson);
    h.emplace_back("X-Content-Type-Options", "nosniff");
    h.emplace_back("X-Frame-Options", "DENY");
    // The console's pages set their own policy and caching; API answers load nothing, cache nothing.
    if (!HasHeader(h, "content-security-policy")) {
      h.emplace_back("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    }
    h.emplace_back("Referrer-Policy", "no-referrer");
    if (!HasHeader(h, "cache-control")) h.emplace_back("Cache-Control", "no-store");
    if (!origin.empty() && gateway->OriginAllowed(origin)) {
      h.emplace_back("Access-Control-Allow-Origin", origin);
      h.emplace_back("Access-Control-Expose-Headers", kExposedHeaders);
      h.emplace_back("Vary", "Origin");
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string method_label = MethodLabel(method);
    gateway->http_metrics_->Record(method_label, route, response.status, seconds);
    if (gateway->config_.access_log || response.status >= 500) {
      log::Level level = response.status >= 500 ? log::Level::kWarn : log::Level::kInfo;
      log::Write(
          level, "http request",
          {{"method", method_label},
           {"target", target.size() > 512 ? absl::string_view(target).substr(0, 512) : absl::string_view(target)},
           {"route", route},
           {"status", std::to_string(response.status)},
           {"duration_ms", absl::StrCat(static_cast<int64_t>(seconds * 1e6) / 1000.0)},
           {"client", client_ip}});
    }
    respond(std::move(response));
  }
};

Gateway::Gateway(GatewayConfig config) : config_(std::move(config)) {}

Gateway::~Gateway() {
  Shutdown();
  backends_.reset();  // waits for callbacks still holding responders
  http_.reset();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayConfig config) {
  // As in server::Runtime: Abseil's mutex deadlock detection (on in Debian's build) costs a graph
  // lookup on every absl::Mutex lock, gRPC's included.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::unique_ptr<Gateway> g(new Gateway(std::move(config)));
  auto routes = RouteTable::LoadFile(g->config_.descriptor_set);
  if (!routes.ok()) return routes.status();
  g->routes_ = std::move(*routes);
  g->transcoder_ = std::make_unique<Transcoder>(g->routes_.get(), g->config_.json);
  auto backends = Backends::Create(g->config_.backends, g->config_.backend_options);
  if (!backends.ok()) return backends.status();
  g->backends_ = std::move(*backends);
  for (const auto* service : g->routes_->services()) {
    if (!g->backends_->Has(service->full_name())) {
      log::Warn("no --backend for an annotated service: its routes answer 503",
                {{"grpc_service", service->full_name()}});
    }
  }
  for (const auto& name : g->backends_->services()) {
    bool known = false;
    for (const auto* service : g->routes_->services()) known = known || service->full_name() == name;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend names ", name, ", which has no annotated RPC in the descriptor set"));
    }
  }
  if (!g->config_.console_dir.empty()) {
    auto console = StaticFiles::Load(g->config_.console_dir, g->config_.console_max_bytes);
    if (!console.ok()) return console.status();
    g->console_ = std::move(*console);
  }
  g->limiter_ = std::make_unique<RateLimiter>(g->config_.rate_limit_rps, g->config_.rate_limit_burst);
  for (const auto& o : g->config_.cors_origins) g->allow_any_origin_ = g->allow_any_origin_ || o == "*";
  g->metrics_ = std::make_unique<metrics::Metrics>("gateway", g->config_.version);
  g->http_metrics_ = std::make_unique<HttpMetrics>(g->metrics_->registry());
  g->openapi_ = BuildOpenApi(*g->routes_, OpenApiInfo{});
  return g;
}

absl::Status Gateway::Start() {
  if (!config_.metrics_listen.empty()) {
    if (auto s = metrics_->StartExposer(config_.metrics_listen); !s.ok()) return s;
  }
  auto http = HttpServer::Start(
      config_.http, [this](HttpRequest request, Responder respond) { Handle(std::move(request), std::move(respond)); });
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  log::Info("serving", {{"http_port", std::to_string(http_->port())},
                        {"metrics_port", std::to_string(metrics_->exposer_port())},
                        {"routes", std::to_string(routes_->routes().size())},
                        {"console_files", std::to_string(console_ == nullptr ? 0 : console_->file_count())},
                        {"backends", absl::StrJoin(backends_->services(), ",")}});
  return absl::OkStatus();
}

int Gateway::port() const { return http_ == nullptr ? 0 : http_->port(); }
int Gateway::metrics_port() const { return metrics_->exposer_port(); }

void Gateway::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  draining_.store(true);
  if (http_ == nullptr) return;
  log::Info("draining", {{"pre_stop", absl::FormatDuration(config_.pre_stop_delay)},
                         {"drain", absl::FormatDuration(config_.drain_timeout)}});
  absl::SleepFor(config_.pre_stop_delay);
  http_->Shutdown(config_.drain_timeout);
  backends_->CancelAll();
  backends_->WaitIdle(absl::Seconds(5));
  log::Info("stopped");
}

int Gateway::ServeUntilSignal() {
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

bool Gateway::OriginAllowed(absl::string_view origin) const {
  if (allow_any_origin_) return true;
  for (const auto& o : config_.cors_origins) {
    if (o == origin) return true;
  }
  return false;
}

void Gateway::Handle(HttpRequest request, Responder respond) {
  auto ex = std::make_shared<Exchange>();
  ex->gateway = this;
  ex->start = std::chrono::steady_clock::now();
  ex->method = request.method;
  ex->target = request.target;
  absl::string_view given_id = request.Header("x-request-id");
  ex->request_id = ValidRequestId(given_id) ? std::string(given_id) : NewRequestId();
  ex->origin = std::string(request.Header("origin"));
  ex->client_ip = request.client_ip;
  ex->respond = std::move(respond);
  log::ScopedRequestId scope(ex->request_id);

  if (request.read_error != 0) {
    absl::Status status = request.read_error == 413
                              ? absl::ResourceExhaustedError(
                                    absl::StrCat("request body larger than ", config_.http.max_body_bytes, " bytes"))
                          : request.read_error == 431 ? absl::ResourceExhaustedError("request headers too large")
                                                      : absl::InvalidArgumentError("malformed HTTP request");
    ex->Finish(ErrorResponse(request.read_error, status));
    return;
  }

  absl::string_view target = request.target;
  auto qmark = target.find('?');
  absl::string_view path = target.substr(0, qmark);
  absl::string_view query = qmark == absl::string_view::npos ? absl::string_view() : target.substr(qmark + 1);
  if (path.empty() || path[0] != '/') {
    ex->Finish(ErrorResponse(400, absl::InvalidArgumentError("request target must be an absolute path")));
    return;
  }
  if (auto s = CheckRequestTarget(path, query); !s.ok()) {
    ex->Finish(ErrorResponse(400, s));
    return;
  }

  bool probe = path == "/healthz" || path == "/readyz";
  if (!probe && limiter_->enabled()) {
    if (int wait = limiter_->Acquire(request.client_ip); wait > 0) {
      HttpResponse r = ErrorResponse(429, absl::ResourceExhaustedError("rate limit exceeded; retry later"));
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      ex->Finish(std::move(r));
      return;
    }
  }
  if (path == "/healthz" || path == "/readyz" || path == "/openapi.json") {
    ex->route = std::string(path);
    if (request.method != "GET") {
      ex->Finish(GetOnlyResponse(request.method, path));
      return;
    }
    HandleBuiltin(ex, path);
    return;
  }
  if (console_ != nullptr && !IsApiPath(path)) {
    HandleConsole(ex, request, path);
    return;
  }
  if (request.method == "OPTIONS") {
    HandlePreflight(ex, request, path);
    return;
  }
  HandleRoute(ex, request, path, query);
}

void Gateway::HandleConsole(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path) {
  ex->route = kConsoleRoute;
  if (request.method != "GET") {
    ex->Finish(GetOnlyResponse(request.method, path));
    return;
  }
  ex->Finish(console_->Serve(path, request.Header("if-none-match")));
}

void Gateway::HandleBuiltin(const std::shared_ptr<Exchange>& ex, absl::string_view path) {
  if (path == "/healthz") {
    HttpResponse r;
    r.body = R"({"status":"ok"})";
    ex->Finish(std::move(r));
    return;
  }
  if (path == "/openapi.json") {
    HttpResponse r;
    r.body = openapi_;
    ex->Finish(std::move(r));
    return;
  }
  // /readyz: every configured backend's health SERVING, and not draining.
  if (draining_.load()) {
    HttpResponse r;
    r.status = 503;
    r.body = R"({"status":"draining"})";
    ex->Finish(std::move(r));
    return;
  }
  backends_->CheckHealth(config_.readiness_timeout, [ex](std::vector<BackendHealth> health) {
    bool ready = true;
    Json body = Json::Object();
    Json list = Json::Array();
    for (const auto& h : health) {
      ready = ready && h.serving;
      Json b = Json::Object();
      b["service"] = h.service;
      b["state"] = h.state;
      list.Push(std::move(b));
    }
    body["status"] = ready ? "ready" : "not ready";
    body["backends"] = std::move(list);
    HttpResponse r;
    r.status = ready ? 200 : 503;
    r.body = body.Dump();
    ex->Finish(std::move(r));
  });
}

void Gateway::HandlePreflight(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path) {
  RouteMatch match = routes_->Match("", path);
  if (match.allowed_methods.empty()) {
    ex->Finish(ErrorResponse(404, absl::NotFoundError(absl::StrCat("no route for ", path))));
    return;
  }
  ex->route = "preflight";
  for (const auto& r : routes_->routes()) {
    if (r->path.Match(path, nullptr)) {
      ex->route = r->path.text();
      break;
    }
  }
  std::vector<std::string> methods = match.allowed_methods;
  methods.push_back("OPTIONS");
  HttpResponse r;
  r.status = 204;
  absl::string_view requested = request.Header("access-control-request-method");
  if (!ex->origin.empty() && !requested.empty()) {
    // A CORS preflight.
    if (!OriginAllowed(ex->origin)) {
      ex->Finish(ErrorResponse(403, absl::PermissionDeniedError(absl::StrCat("origin ", ex->origin, " is not allowed"))));
      return;
    }
    r.headers.emplace_back("Access-Control-Allow-Methods", absl::StrJoin(methods, ", "));
    r.headers.emplace_back("Access-Control-Allow-Headers", kAllowedRequestHeaders);
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    r.headers.emplace_back("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers");
  }
  r.headers.emplace_back("Allow", absl::StrJoin(methods, ", "));
  ex->Finish(std::move(r));
}

void Gateway::HandleRoute(const std::shared_ptr<Exchange>& ex, const HttpRequest& request, absl::string_view path,
                          absl::string_view query) {
  RouteMatch match = routes_->Match(request.method, path);
  if (match.route == nullptr) {
    if (match.allowed_methods.empty()) {
      ex->Finish(ErrorResponse(404, absl::NotFoundError(absl::StrCat("no route for ", request.method, " ", path))));
      return;
    }
    // The path exists with other methods: name the template of one of them as the route.
    for (const auto& r : routes_->routes()) {
      if (r->path.Match(path, nullptr)) {
        ex->route = r->path.text();
        break;
      }
    }
    HttpResponse r =
        ErrorResponse(405, absl::UnimplementedError(absl::StrCat("method ", request.method, " not allowed on ", path,
                                                         "; allowed: ", absl::StrJoin(match.allowed_methods, ", "))));
    r.headers.emplace_back("Allow", absl::StrJoin(match.allowed_methods, ", "));
    ex->Finish(std::move(r));
    return;
  }
  const Route& route = *match.route;
  ex->route = route.path.text();

  // A token the services would refuse is refused here, before any backend call: sent on, it
  // would exceed the backend connection's metadata limit and the transport, not the service,
  // would answer (on a connection other callers share).
  absl::string_view authorization = request.Header("authorization");
  if (authorization.size() > kMaxAuthorizationBytes) {
    ex->Finish(ErrorResponse(401, absl::UnauthenticatedError(absl::StrCat("Authorization header longer than ",
                                                                  kMaxAuthorizationBytes, " bytes (a bearer token ",
                                                                  "may have at most ", kMaxBearerTokenBytes, ")"))));
    return;
  }

  absl::string_view content_type = request.Header("content-type");
  if (!absl::StripAsciiWhitespace(request.body).empty() && !content_type.empty() && !IsJsonContentType(content_type)) {
    ex->Finish(ErrorResponse(415, absl::InvalidArgumentError(
                              absl::StrCat("unsupported Content-Type \"", content_type, "\": send application/json"))));
    return;
  }
  auto bytes = transcoder_->BuildRequest(route, match.values, query, request.body, request.Header("if-match"));
  if (!bytes.ok()) {
    ex->Finish(ErrorResponse(HttpStatusFromCode(static_cast<int>(bytes.status().code())), bytes.status()));
    return;
  }
  // If-None-Match on a GET whose response carries an etag: parsed now, compared with the answer.
  std::optional<EntityTagList> if_none_match;
  absl::string_view none_match_header = request.Header("if-none-match");
  if (request.method == "GET" && route.response_etag_number != 0 && !none_match_header.empty()) {
    auto list = ParseEntityTags("If-None-Match", none_match_header);
    if (!list.ok()) {
      ex->Finish(ErrorResponse(400, list.status()));
      return;
    }
    if_none_match = *std::move(list);
  }
  CallMetadata md;
  md.authorization = std::string(authorization);
  md.request_id = ex->request_id;
  absl::string_view forwarded = request.Header("x-forwarded-for");
  md.forwarded_for = forwarded.empty() ? request.client_ip : absl::StrCat(forwarded, ", ", request.client_ip);
  md.timeout = config_.backend_timeout;
  backends_->Call(
      route.service, route.grpc_method, std::move(*bytes), md,
      [this, ex, &route, if_none_match = std::move(if_none_match)](CallResult result) {
        HttpResponse r;
        if (result.code != 0) {
          r.status = HttpStatusFromCode(result.code);
          r.body = ErrorBody(result.code, result.message, result.details);
          ex->Finish(std::move(r));
          return;
        }
        std::string etag = Transcoder::ResponseEtag(route, result.response);
        if (!etag.empty()) r.headers.emplace_back("ETag", absl::StrCat("\"", etag, "\""));
        if (if_none_match.has_value() && NoneMatchHolds(*if_none_match, etag)) {
          r.status = 304;
          ex->Finish(std::move(r));
          return;
        }
        auto json = transcoder_->ResponseToJson(route, result.response);
        if (!json.ok()) {
          log::Error("response transcoding failed", {{"route", route.path.text()}, {"error", json.status().message()}});
          r = ErrorResponse(500, absl::InternalError("the service's response could not be converted"));
        } else {
          r.body = std::move(*json);
        }
        ex->Finish(std::move(r));
      });
}

}  // namespace clustergov::gateway

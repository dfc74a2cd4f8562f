#include "services/gateway/http_server.h"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/gateway/http_parser.h"

namespace clustergov::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

class Session;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};
  int port = 0;

  std::mutex mu;  // guards sessions
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  // Destroyed before the members above: pending handlers (holding sessions) go first.
  net::io_context ioc;
  // Keeps the I/O threads running while no socket operation is pending (every request waiting on
  // a backend, the acceptor closed during a drain): responses are posted to them later.
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  bool shut_down = false;

  void Accept();
  void CloseSessions(bool idle_only);
};

namespace {

const char* ReasonFor(int status) {
  switch (status) {
    case 499:
      return "Client Closed Request";
    default:
      return nullptr;
  }
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server) : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      try {  // Boost throws here on a failed conversion
        client_ip_ = endpoint.address().to_string();
      } catch (const std::exception&) {
        client_ip_ = "unknown";
      }
    }
  }

  ~Session() {
    std::lock_guard<std::mutex> lock(server_->mu);
    server_->sessions.erase(this);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(server_->mu);
      server_->sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Runs on the session's strand.
  void CloseIfIdle(bool idle_only) {
    if (closed_ || (idle_only && !idle_)) return;
    Close();
  }

  beast::tcp_stream::executor_type executor() { return stream_.get_executor(); }

 private:
  void Read() {
    if (server_->stopping.load()) {
      Close();
      return;
    }
    parser_.emplace();
    http_internal::StartRequest(*parser_, server_->options.max_header_bytes);
    idle_ = buffer_.size() == 0;
    stream_.expires_after(std::chrono::milliseconds(absl::ToInt64Milliseconds(server_->options.idle_timeout)));
    // The header first, so a refused body (413) is answered knowing the request's headers.
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (!ec) {
      ec = http_internal::HeaderRead(*parser_, server_->options.max_body_bytes);
      if (ec || parser_->is_done()) {
        OnRead(ec);
        return;
      }
      stream_.expires_after(std::chrono::milliseconds(absl::ToInt64Milliseconds(server_->options.io_timeout)));
      http::async_read(stream_, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
      return;
    }
    OnRead(ec);
  }

  void OnRead(beast::error_code ec) {
    std::optional<ParsedHttpRequest> parsed;
    if (!closed_) parsed = http_internal::FinishRequest(*parser_, ec);
    if (!parsed.has_value()) {
      Close();  // the client went away, or a transport error: nobody to answer
      return;
    }
    parsed->request.client_ip = client_ip_;
    Dispatch(std::move(parsed->request), parsed->version, parsed->keep_alive);
  }

  void Dispatch(HttpRequest request, unsigned version, bool keep_alive) {
    server_->in_flight.fetch_add(1);
    auto self = shared_from_this();
    server_->handler(std::move(request), [self, version, keep_alive](HttpResponse response) {
      net::post(self->executor(), [self, version, keep_alive, response = std::move(response)]() mutable {
        self->Write(std::move(response), version, keep_alive);
      });
    });
  }

  void Write(HttpResponse response, unsigned version, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version);
    res->result(static_cast<unsigned>(response.status));
    if (const char* reason = ReasonFor(response.status)) res->reason(reason);
    for (auto& [name, value] : response.headers) res->insert(name, value);
    res->body() = std::move(response.body);
    res->keep_alive(keep_alive && !server_->stopping.load());
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(absl::ToInt64Milliseconds(server_->options.io_timeout)));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->server_->in_flight.fetch_sub(1);
      if (ec) {
        self->Close();
      } else if (!res->keep_alive()) {
        self->LingeringClose();
      } else {
        self->Read();
      }
    });
  }

  // Half-closes, then reads and discards what the client still sends (a body we refused) for a
  // moment, so the client sees our response rather than a reset.
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    drained_ = 0;
    stream_.expires_after(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    drain_buffer_.resize(16 * 1024);
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > 8 * 1024 * 1024 || self->closed_) {
                                self->Close();
                              } else {
                                self->Drain();
                              }
                            });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http_internal::RequestParser> parser_;
  std::string client_ip_;
  std::string drain_buffer_;
  size_t drained_ = 0;
  bool idle_ = false;
  bool closed_ = false;
};

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || stopping.load()) return;
      log::Warn("accept failed", {{"error", ec.message()}});
    } else {
      beast::error_code opt;
      socket.set_option(tcp::no_delay(true), opt);
      std::make_shared<Session>(std::move(socket), this)->Start();
    }
    if (!stopping.load()) Accept();
  });
}

void HttpServer::Impl::CloseSessions(bool idle_only) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [ptr, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) {
    net::post(s->executor(), [s, idle_only] { s->CloseIfIdle(idle_only); });
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(absl::ZeroDuration()); }

int HttpServer::port() const { return impl_->port; }
int HttpServer::in_flight() const { return impl_->in_flight.load(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);

  auto colon = options.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen address ", options.listen, ": expected host:port"));
  }
  std::string host = options.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("listen address ", options.listen, ": ", ec.message()));
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto fail = [&](const char* what) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (", what, ": ", ec.message(), ")"));
  };
  impl->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  impl->acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  impl->port = impl->acceptor.local_endpoint(ec).port();

  impl->Accept();
  int threads = std::max(1, options.io_threads);
  Impl* raw = impl.get();
  for (int i = 0; i < threads; ++i) {
    impl->threads.emplace_back([raw] {
      while (true) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {  // Boost throws; nothing of ours does
          log::Error("http io thread: exception", {{"what", e.what()}});
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Shutdown(absl::Duration drain) {
  if (impl_ == nullptr || impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->stopping.store(true);
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  impl_->CloseSessions(/*idle_only=*/true);
  absl::Time deadline = absl::Now() + drain;
  while (impl_->in_flight.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  impl_->CloseSessions(/*idle_only=*/false);
  // Give the closes a moment to run, then stop.
  absl::Time close_deadline = absl::Now() + absl::Milliseconds(200);
  while (absl::Now() < close_deadline) {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->sessions.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace clustergov::gateway

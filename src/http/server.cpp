// The Beast-heavy translation unit: the only one that includes Boost.Beast.
#include "http/server.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <atomic>
#include <ctime>
#include <mutex>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/ids.hpp"
#include "core/io_pool.hpp"
#include "http/errors.hpp"
#include "http/router.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kUnmatched = "unmatched";

// One client connection. Owned by its session coroutine; the server's registry holds another
// reference so that drain and cancel can reach it (always through its own executor, i.e. on
// the one thread that runs its context).
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  std::string remote;
  // True while waiting for the first byte of the next request: the only time a drain may
  // close the connection without cutting a request short.
  bool idle = true;
};

std::string endpoint_string(const tcp::endpoint& ep) {
  auto addr = ep.address();
  std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return host + ":" + std::to_string(ep.port());
}

// The Date header (RFC 9110: an origin server with a clock sends it), formatted once a second
// per thread.
const std::string& http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local std::string cached;
  std::time_t now = std::time(nullptr);
  if (now != cached_at) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

void log_exception(const std::exception_ptr& e, std::string_view where) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("unexpected exception", {{"where", where}, {"error", ex.what()}});
  } catch (...) {
    log::error("unexpected exception", {{"where", where}});
  }
}

}  // namespace

struct Server::Impl {
  Impl(IoPool& io, const ServerOptions& opts, const Router& r, obs::Metrics& m)
      : io(io), options(opts), router(r), metrics(m), acceptor(io.main()) {}

  IoPool& io;
  ServerOptions options;
  const Router& router;
  obs::Metrics& metrics;
  tcp::acceptor acceptor;

  std::atomic<bool> draining{false};
  std::atomic<int64_t> open{0};
  std::mutex mutex;  // guards connections and on_drained
  std::unordered_set<std::shared_ptr<Connection>> connections;
  std::function<void()> on_drained;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> reject_overloaded(std::shared_ptr<Connection> conn);
  asio::awaitable<void> session(std::shared_ptr<Connection> conn);
  asio::awaitable<bool> serve_one(Connection& conn, beast::flat_buffer& buffer);
  asio::awaitable<void> write_and_linger(Connection& conn, bhttp::response<bhttp::string_body> res);
  bhttp::response<bhttp::string_body> to_beast(Response&& res, unsigned version, bool head,
                                               const std::string& request_id);
  void unregister(const std::shared_ptr<Connection>& conn);
  // Runs the drain callback once, when draining and no connection is left.
  void finish_drain_if_done();
  void close_on_executor(const std::shared_ptr<Connection>& conn, bool only_if_idle);
};

Server::Server(IoPool& io, const ServerOptions& options, const Router& router,
               obs::Metrics& metrics)
    : impl_(std::make_shared<Impl>(io, options, router, metrics)) {}

Server::~Server() = default;

Result<uint16_t> Server::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    // A name rather than an address: resolve it once, synchronously (this is startup).
    tcp::resolver resolver(impl_->io.main());
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return Error::invalid("cannot resolve listen host '" + host + "': " + ec.message());
    }
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, port);
  auto& acceptor = impl_->acceptor;
  std::string where = endpoint_string(endpoint);
  if (acceptor.open(endpoint.protocol(), ec); ec)
    return Error::unavailable("cannot open socket for " + where + ": " + ec.message());
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec)
    return Error::unavailable("cannot set SO_REUSEADDR on " + where + ": " + ec.message());
  if (acceptor.bind(endpoint, ec); ec)
    return Error::unavailable("cannot listen on " + where + ": " + ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec)
    return Error::unavailable("cannot listen on " + where + ": " + ec.message());
  return acceptor.local_endpoint().port();
}

void Server::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(),
                 [](const std::exception_ptr& e) { log_exception(e, "accept loop"); });
}

bool Server::draining() const { return impl_->draining.load(); }

int64_t Server::open_connections() const { return impl_->open.load(); }

void Server::begin_drain(std::function<void()> on_drained) {
  auto impl = impl_;
  impl->draining.store(true);
  // Closing the acceptor must happen on its executor; its pending accept fails with
  // operation_aborted and the accept loop ends.
  asio::post(impl->acceptor.get_executor(), [impl] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    std::lock_guard lock(impl->mutex);
    impl->on_drained = std::move(on_drained);
    snapshot.assign(impl->connections.begin(), impl->connections.end());
  }
  for (const auto& conn : snapshot) impl->close_on_executor(conn, /*only_if_idle=*/true);
  impl->finish_drain_if_done();
}

void Server::cancel_all() {
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    std::lock_guard lock(impl_->mutex);
    snapshot.assign(impl_->connections.begin(), impl_->connections.end());
  }
  for (const auto& conn : snapshot) impl_->close_on_executor(conn, /*only_if_idle=*/false);
}

void Server::Impl::close_on_executor(const std::shared_ptr<Connection>& conn, bool only_if_idle) {
  asio::post(conn->stream.get_executor(), [conn, only_if_idle] {
    // Re-checked on the connection's thread: it may have started a request meanwhile.
    if (only_if_idle && !conn->idle) return;
    beast::error_code ec;
    conn->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    conn->stream.socket().close(ec);
  });
}

void Server::Impl::unregister(const std::shared_ptr<Connection>& conn) {
  {
    std::lock_guard lock(mutex);
    connections.erase(conn);
  }
  open.fetch_sub(1);
  metrics.connections_open().Decrement();
  finish_drain_if_done();
}

void Server::Impl::finish_drain_if_done() {
  std::function<void()> done;
  {
    std::lock_guard lock(mutex);
    if (!draining.load() || !connections.empty() || !on_drained) return;
    done = std::move(on_drained);
    on_drained = nullptr;
  }
  done();
}

asio::awaitable<void> Server::Impl::accept_loop() {
  while (!draining.load()) {
    beast::error_code ec;
    // Each connection goes to the next context, round robin, and stays there.
    tcp::socket socket = co_await acceptor.async_accept(
        io.next().get_executor(), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      // Out of file descriptors and the like: back off briefly instead of spinning.
      log::warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer timer(io.main(), std::chrono::milliseconds(50));
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(std::move(socket));
    auto remote = conn->stream.socket().remote_endpoint(ec);
    if (!ec) conn->remote = endpoint_string(remote);
    auto executor = conn->stream.get_executor();
    if (open.load() >= options.max_connections) {
      asio::co_spawn(executor, reject_overloaded(std::move(conn)),
                     [](const std::exception_ptr& e) { log_exception(e, "overload reply"); });
      continue;
    }
    {
      std::lock_guard lock(mutex);
      connections.insert(conn);
    }
    open.fetch_add(1);
    metrics.connections_open().Increment();
    asio::co_spawn(executor, session(std::move(conn)),
                   [](const std::exception_ptr& e) { log_exception(e, "connection"); });
  }
}

asio::awaitable<void> Server::Impl::reject_overloaded(std::shared_ptr<Connection> conn) {
  const std::string request_id = random_hex128();
  auto res = to_beast(
      error_response(503, "overloaded", "too many open connections; retry shortly", request_id), 11,
      false, request_id);
  res.set(bhttp::field::retry_after, "1");
  res.keep_alive(false);
  res.prepare_payload();
  co_await write_and_linger(*conn, std::move(res));
}

bhttp::response<bhttp::string_body> Server::Impl::to_beast(Response&& res, unsigned version,
                                                           bool head,
                                                           const std::string& request_id) {
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), version};
  out.set(bhttp::field::date, http_date());
  if (!res.content_type.empty()) out.set(bhttp::field::content_type, res.content_type);
  if (!request_id.empty()) out.set("X-Request-Id", request_id);
  for (auto& [name, value] : res.headers) out.insert(name, value);
  size_t size = res.body.size();
  out.body() = std::move(res.body);
  out.prepare_payload();
  if (head) {
    // HEAD: the headers a GET would have sent, no body.
    out.body().clear();
    out.content_length(size);
  }
  return out;
}

asio::awaitable<void> Server::Impl::write_and_linger(Connection& conn,
                                                     bhttp::response<bhttp::string_body> res) {
  beast::error_code ec;
  conn.stream.expires_after(options.write_timeout);
  co_await bhttp::async_write(conn.stream, res, asio::redirect_error(asio::use_awaitable, ec));
  // Closing with unread input makes the kernel send RST, which can destroy the response in
  // flight. Shut down our side and read (and drop) what the client still sends, briefly.
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn.stream.expires_after(std::chrono::seconds(2));
  std::array<char, 8192> scratch{};
  size_t drained = 0;
  while (!ec && drained < size_t{4} * 1024 * 1024) {
    drained += co_await conn.stream.async_read_some(asio::buffer(scratch),
                                                    asio::redirect_error(asio::use_awaitable, ec));
  }
  conn.stream.socket().close(ec);
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> conn) {
  struct Unregister {
    Impl* impl;
    std::shared_ptr<Connection> conn;
    ~Unregister() { impl->unregister(conn); }
  } unregister_on_exit{this, conn};

  beast::flat_buffer buffer;
  while (true) {
    conn->idle = true;
    if (draining.load()) break;
    if (buffer.size() == 0) {
      beast::error_code ec;
      conn->stream.expires_after(options.idle_timeout);
      size_t n = co_await conn->stream.async_read_some(
          buffer.prepare(4096), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;  // idle timeout, client closed, or drain closed us
      buffer.commit(n);
    }
    conn->idle = false;
    bool keep_alive = co_await serve_one(*conn, buffer);
    if (!keep_alive) break;
  }
  beast::error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->stream.socket().close(ec);
}

// Reads one request, answers it. Returns whether the connection may serve another.
asio::awaitable<bool> Server::Impl::serve_one(Connection& conn, beast::flat_buffer& buffer) {
  const auto started = std::chrono::steady_clock::now();
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_size));
  parser.body_limit(options.max_body_size);

  beast::error_code ec;
  conn.stream.expires_after(options.read_timeout);
  co_await bhttp::async_read_header(conn.stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (!ec && !parser.is_done()) {
    auto expect = parser.get()[bhttp::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(conn.stream, asio::buffer(kContinue.data(), kContinue.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec)
      co_await bhttp::async_read(conn.stream, buffer, parser,
                                 asio::redirect_error(asio::use_awaitable, ec));
  }

  if (ec) {
    // Protocol failures. Timeouts and closed connections get no answer (nobody to read it);
    // everything else gets the envelope, then the connection ends, since the stream position
    // can no longer be trusted.
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
      co_return false;
    }
    int status = 400;
    std::string code = "malformed_http";
    std::string message = "malformed HTTP request: " + ec.message();
    if (ec == bhttp::error::body_limit) {
      status = 413;
      code = "body_too_large";
      message =
          "request body exceeds the limit of " + std::to_string(options.max_body_size) + " bytes";
    } else if (ec == bhttp::error::header_limit) {
      status = 431;
      code = "headers_too_large";
      message = "request headers exceed the limit of " + std::to_string(options.max_header_size) +
                " bytes";
    }
    std::string request_id = random_hex128();
    auto res = to_beast(error_response(status, code, message, request_id), 11, false, request_id);
    res.keep_alive(false);
    res.prepare_payload();
    auto elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics.observe_request(-1, kUnmatched, "other", status, elapsed);
    if (options.access_log) {
      log::info("request", {{"request_id", request_id},
                            {"route", kUnmatched},
                            {"status", status},
                            {"error", code},
                            {"remote", conn.remote}});
    }
    co_await write_and_linger(conn, std::move(res));
    co_return false;
  }

  auto& breq = parser.get();
  Request req;
  req.method_text = std::string_view(breq.method_string().data(), breq.method_string().size());
  req.method = parse_method(req.method_text);
  req.target = std::string_view(breq.target().data(), breq.target().size());
  auto qmark = req.target.find('?');
  req.path = req.target.substr(0, qmark);
  if (qmark != std::string_view::npos) req.query = req.target.substr(qmark + 1);
  req.headers.reserve(16);
  for (const auto& field : breq) {
    req.headers.emplace_back(
        std::string_view(field.name_string().data(), field.name_string().size()),
        std::string_view(field.value().data(), field.value().size()));
  }
  req.body = std::move(breq.body());
  req.remote = conn.remote;
  auto client_id = req.header("x-request-id");
  req.request_id =
      client_id && is_valid_request_id(*client_id) ? std::string(*client_id) : random_hex128();

  Match match = router.match(req.method, req.path);
  int route_id = -1;
  std::string_view route_label = kUnmatched;
  Response res;
  switch (match.kind) {
    case Match::Kind::kNotFound:
      res = error_response(
          404, "route_not_found",
          "no route for " + std::string(req.method_text) + " " + std::string(req.path),
          req.request_id);
      break;
    case Match::Kind::kMethodNotAllowed:
      res = error_response(405, "method_not_allowed",
                           "method " + std::string(req.method_text) +
                               " is not allowed here; allowed: " + match.allow,
                           req.request_id);
      res.header("Allow", match.allow);
      break;
    case Match::Kind::kFound:
      route_id = match.route->id;
      route_label = match.route->pattern;
      if (match.bad_escape) {
        res = error_response(400, "malformed_path", "a path segment has a malformed %-escape",
                             req.request_id);
        break;
      }
      req.params = std::move(match.params);
      metrics.requests_in_flight().Increment();
      try {
        res = co_await match.route->handler(req);
      } catch (const std::exception& e) {
        log::error("handler failed",
                   {{"request_id", req.request_id}, {"route", route_label}, {"error", e.what()}});
        res = error_response(Error::internal("unexpected exception"), req.request_id);
      } catch (...) {
        log::error("handler failed", {{"request_id", req.request_id}, {"route", route_label}});
        res = error_response(Error::internal("unexpected exception"), req.request_id);
      }
      metrics.requests_in_flight().Decrement();
      break;
  }

  const int status = res.status;
  const bool keep_alive = breq.keep_alive() && !draining.load();
  auto bres = to_beast(std::move(res), breq.version(), req.method == Method::kHead, req.request_id);
  bres.keep_alive(keep_alive);
  const size_t bytes_out = bres.body().size();

  conn.stream.expires_after(options.write_timeout);
  co_await bhttp::async_write(conn.stream, bres, asio::redirect_error(asio::use_awaitable, ec));

  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics.observe_request(route_id, route_label, req.method_text, status, elapsed);
  if (options.access_log && log::enabled(log::Level::kInfo)) {
    std::vector<log::Field> fields{{"request_id", req.request_id},
                                   {"method", obs::Metrics::normalize_method(req.method_text)},
                                   {"route", route_label},
                                   {"path", req.path},
                                   {"status", status},
                                   {"duration_ms", elapsed * 1000.0},
                                   {"bytes_out", bytes_out},
                                   {"remote", conn.remote}};
    // Path parameters are the ids of what the request touched ("id": "sess_...").
    for (const auto& [name, value] : req.params) fields.emplace_back(name, value);
    log::write(log::Level::kInfo, "request", fields);
  }
  co_return !ec && keep_alive;
}

}  // namespace parley::http

// The Beast-heavy translation unit: the only one that includes Boost.Beast.
#include "http/server.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <mutex>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/ids.hpp"
#include "core/io_pool.hpp"
#include "core/task.hpp"
#include "http/errors.hpp"
#include "http/router.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
// Sockets, acceptor and timers bound to the concrete io_context executor, like Task.
using Socket = tcp::socket::rebind_executor<IoExecutor>::other;
using Acceptor = tcp::acceptor::rebind_executor<IoExecutor>::other;
using Timer = asio::steady_timer::rebind_executor<IoExecutor>::other;

namespace {

constexpr std::string_view kUnmatched = "unmatched";
// What a browser script may send and read across origins.
constexpr const char* kCorsAllowed =
    "Authorization, Content-Type, Idempotency-Key, X-API-Key, X-Request-Id";
constexpr const char* kCorsExposed =
    "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, Idempotent-Replayed";
using SteadyClock = std::chrono::steady_clock;

// The clock for connection deadlines: CLOCK_MONOTONIC_COARSE, read from the vDSO without a
// counter read. Its few milliseconds of resolution are nothing next to timeouts of seconds,
// and a deadline is set several times per request.
struct DeadlineClock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<DeadlineClock, duration>;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

struct Sweeper;

// One client connection. Owned by its session coroutine; the server's registry holds another
// reference so that drain and cancel can reach it (always through its own executor, i.e. on
// the one thread that runs its context).
struct Connection {
  Connection(Socket s, Sweeper& sw) : socket(std::move(s)), sweeper(sw) {}
  Socket socket;
  Sweeper& sweeper;
  std::string remote;
  // True while waiting for the first byte of the next request: the only time a drain may
  // close the connection without cutting a request short.
  bool idle = true;
  // When the operation in progress must have finished; max() while none is timed (a handler's
  // own time is its own business). The context's Sweeper enforces it.
  DeadlineClock::time_point deadline = DeadlineClock::time_point::max();
  bool timed_out = false;
  size_t sweeper_slot = 0;
  // The response head, serialized here; reused from one request to the next.
  std::string head;

  void expires_after(std::chrono::milliseconds timeout) {
    deadline = DeadlineClock::now() + timeout;
  }
  void expires_never() { deadline = DeadlineClock::time_point::max(); }
  void close() {
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }
};

// Enforces the deadlines of one context's connections: while the context has connections, a
// timer wakes every `period` and closes those whose deadline has passed. Setting a deadline is
// then a store, where Beast's tcp_stream arms and cancels a timer around every read and write
// (measured: a visible share of the CPU per request at tens of thousands of requests a second).
// The price is precision: a timeout fires up to one period late, and the period is an eighth
// of the shortest configured timeout.
//
// Only touched on its context's thread.
struct Sweeper {
  Sweeper(asio::io_context& context, std::chrono::milliseconds every)
      : timer(context), period(every) {}
  Timer timer;
  std::chrono::milliseconds period;
  std::vector<Connection*> connections;
  bool armed = false;

  void add(Connection& conn) {
    conn.sweeper_slot = connections.size();
    connections.push_back(&conn);
    arm();
  }
  void remove(Connection& conn) {
    Connection* last = connections.back();
    connections[conn.sweeper_slot] = last;
    last->sweeper_slot = conn.sweeper_slot;
    connections.pop_back();
  }
  void arm() {
    if (armed || connections.empty()) return;
    armed = true;
    timer.expires_after(period);
    timer.async_wait([this](const beast::error_code& ec) {
      // Aborted: the timer (and this sweeper) is being destroyed with the server.
      if (ec == asio::error::operation_aborted) return;
      armed = false;
      sweep();
      arm();
    });
  }
  void sweep() {
    const auto now = DeadlineClock::now();
    // Closing a socket only queues its handlers, so the list does not change during the loop.
    for (Connection* conn : connections) {
      if (conn->deadline > now) continue;
      conn->timed_out = true;
      conn->expires_never();
      conn->close();
    }
  }
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

bool body_forbidden(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  // A line break in a value would start a new header (response splitting): flatten it.
  const size_t start = out.size();
  out += value;
  for (size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  }
  out += "\r\n";
}

// How the body's end is marked.
enum class Framing {
  kLength,      // Content-Length: the body is complete in the response
  kChunked,     // Transfer-Encoding: chunked, for a streamed body to an HTTP/1.1 client
  kUntilClose,  // a streamed body to an HTTP/1.0 client: it ends when the connection does
};

// Serializes a response's status line and header fields into `out`. Written here rather than
// by Beast's serializer, whose buffer sequences cost more CPU per response than the write
// system call itself; Beast still parses every request.
void serialize_head(std::string& out, unsigned version, const Response& res,
                    std::string_view request_id, bool keep_alive, const HeaderList& defaults,
                    Framing framing = Framing::kLength) {
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, res.status);
  out.append(digits, end);
  out.push_back(' ');
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(res.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  append_field(out, "Date", http_date());
  if (!res.content_type.empty()) append_field(out, "Content-Type", res.content_type);
  if (framing == Framing::kChunked) {
    append_field(out, "Transfer-Encoding", "chunked");
  } else if (framing == Framing::kLength && !body_forbidden(res.status)) {
    // For HEAD too: the length a GET would have sent.
    std::array<char, 24> length{};
    auto len_end = std::to_chars(length.data(), length.data() + length.size(), res.body.size()).ptr;
    append_field(out, "Content-Length", std::string_view(length.data(), len_end));
  }
  if (!request_id.empty()) append_field(out, "X-Request-Id", request_id);
  for (const auto& [name, value] : res.headers) append_field(out, name, value);
  // The server's defaults (security headers), unless the response set its own.
  for (const auto& field : defaults) {
    const bool overridden = std::any_of(res.headers.begin(), res.headers.end(), [&](const auto& h) {
      return iequals(h.first, field.first);
    });
    if (!overridden) append_field(out, field.first, field.second);
  }
  if (version >= 11 && !keep_alive) append_field(out, "Connection", "close");
  if (version == 10 && keep_alive) append_field(out, "Connection", "keep-alive");
  out += "\r\n";
}

// The ClientChannel of one request (see message.hpp): the streamed body and the watch for a
// client that leaves. Lives in serve_one's frame, on the connection's thread.
class Channel final : public ClientChannel {
 public:
  // `extra` (the request's response headers) and `defaults` must outlive the channel.
  Channel(Connection& conn, unsigned version, std::string_view request_id, bool keep_alive,
          std::chrono::milliseconds write_timeout, const HeaderList& extra,
          const HeaderList& defaults)
      : conn_(conn),
        version_(version),
        request_id_(request_id),
        keep_alive_(keep_alive),
        write_timeout_(write_timeout),
        extra_(extra),
        defaults_(defaults) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  Task<bool> begin_stream(int status, std::string_view content_type,
                          const HeaderList& headers) override {
    if (started_ || gone_) co_return false;
    started_ = true;
    status_ = status;
    framing_ = version_ >= 11 ? Framing::kChunked : Framing::kUntilClose;
    if (framing_ == Framing::kUntilClose) keep_alive_ = false;
    Response head;
    head.status = status;
    head.content_type = std::string(content_type);
    head.headers = headers;
    head.headers.insert(head.headers.end(), extra_.begin(), extra_.end());
    if (recording_) {
      recording_->status = status;
      recording_->content_type = head.content_type;
    }
    serialize_head(conn_.head, version_, head, request_id_, keep_alive_, defaults_, framing_);
    co_return co_await send(std::array<asio::const_buffer, 1>{asio::buffer(conn_.head)});
  }

  Task<bool> write(std::string_view data) override {
    if (started_ && recording_ && !recording_->truncated) {
      if (recording_->body.size() + data.size() > recording_->limit) {
        recording_->truncated = true;
      } else {
        recording_->body.append(data);
      }
    }
    if (!started_ || gone_) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end a chunked body
    bytes_ += data.size();
    if (framing_ == Framing::kUntilClose) {
      co_return co_await send(std::array<asio::const_buffer, 1>{asio::buffer(data)});
    }
    std::array<char, 20> size_line{};
    auto* end = std::to_chars(size_line.data(), size_line.data() + 16, data.size(), 16).ptr;
    *end++ = '\r';
    *end++ = '\n';
    const std::array<asio::const_buffer, 3> chunk{
        asio::buffer(size_line.data(), static_cast<size_t>(end - size_line.data())),
        asio::buffer(data), asio::buffer("\r\n", 2)};
    co_return co_await send(chunk);
  }

  void watch(std::function<void()> on_gone) override {
    on_gone_ = std::move(on_gone);
    if (gone_) {
      notify_gone();
      return;
    }
    if (watch_) return;
    watch_ = std::make_shared<WatchState>(WatchState{true, this});
    keep_watching(watch_);
  }

  bool gone() const override { return gone_; }
  void record(Recording* into) override { recording_ = into; }

  bool started() const { return started_; }
  int status() const { return status_; }
  uint64_t bytes() const { return bytes_; }

  // After the handler: stops the watch and, for a streamed body, marks its end. Returns
  // whether the connection can serve another request.
  Task<bool> finish() {
    on_gone_ = nullptr;  // the handler has returned: what its callback captured is gone
    if (watch_) {
      // The cancelled wait completes later, harmlessly: its state says the watch is over.
      watch_->active = false;
      watch_.reset();
      beast::error_code ec;
      conn_.socket.cancel(ec);  // no read or write is pending now but the watch's wait
    }
    if (!started_) co_return !gone_;
    if (framing_ == Framing::kChunked && !gone_) {
      static constexpr std::string_view kLastChunk = "0\r\n\r\n";
      co_await send(
          std::array<asio::const_buffer, 1>{asio::buffer(kLastChunk.data(), kLastChunk.size())});
    }
    co_return keep_alive_ && !gone_;
  }

 private:
  template <typename Buffers>
  Task<bool> send(const Buffers& buffers) {
    beast::error_code ec;
    conn_.expires_after(write_timeout_);
    co_await asio::async_write(conn_.socket, buffers, asio::redirect_error(use_task, ec));
    conn_.expires_never();
    if (ec) mark_gone();
    co_return !ec;
  }

  // The watch: a wait for readability (no read: the bytes stay in the socket for the parser),
  // then a peek to tell the end of the stream (the client left) from the client's next,
  // pipelined request (it is there; the watch ends). A wait costs no coroutine and no read
  // system call, which matters because every model call is watched.
  struct WatchState {
    bool active;
    Channel* channel;  // valid while active
  };

  static void keep_watching(const std::shared_ptr<WatchState>& state) {
    Channel& ch = *state->channel;
    // Asio's reactor is edge-triggered: an end of stream that arrived before this wait raises
    // no new event. Look before waiting.
    switch (ch.peek()) {
      case PeekResult::kGone:
        state->active = false;
        ch.mark_gone();
        return;
      case PeekResult::kData:
        state->active = false;
        return;
      case PeekResult::kNothing:
        break;
    }
    ch.conn_.socket.async_wait(Socket::wait_read, [state](const beast::error_code& ec) {
      if (!state->active) return;  // the request is over (finish() cancelled this wait)
      if (ec) {
        state->active = false;
        state->channel->mark_gone();
        return;
      }
      keep_watching(state);
    });
  }

  enum class PeekResult { kNothing, kData, kGone };
  PeekResult peek() {
    char byte = 0;
    const ssize_t n = ::recv(conn_.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return PeekResult::kData;
    if (n == 0) return PeekResult::kGone;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PeekResult::kNothing
                                                                     : PeekResult::kGone;
  }

  void mark_gone() {
    if (gone_) return;
    gone_ = true;
    notify_gone();
  }
  void notify_gone() {
    if (auto callback = std::exchange(on_gone_, nullptr)) callback();
  }

  Connection& conn_;
  unsigned version_;
  std::string_view request_id_;
  bool keep_alive_;
  std::chrono::milliseconds write_timeout_;
  Framing framing_ = Framing::kLength;
  bool started_ = false;
  bool gone_ = false;
  int status_ = 0;
  uint64_t bytes_ = 0;
  std::function<void()> on_gone_;
  std::shared_ptr<WatchState> watch_;
  const HeaderList& extra_;
  const HeaderList& defaults_;
  Recording* recording_ = nullptr;
};

}  // namespace

struct Server::Impl {
  Impl(IoPool& io, const ServerOptions& opts, const Router& r, obs::Metrics& m)
      : io(io), options(opts), router(r), metrics(m), acceptor(io.main()) {
    const auto shortest = std::min({opts.read_timeout, opts.idle_timeout, opts.write_timeout});
    const auto period =
        std::clamp(shortest / 8, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    for (int i = 0; i < io.size(); ++i) {
      sweepers.push_back(std::make_unique<Sweeper>(io.context(i), period));
    }
  }

  IoPool& io;
  ServerOptions options;
  const Router& router;
  obs::Metrics& metrics;
  Acceptor acceptor;
  // One per context, same index; each used only on its context's thread.
  std::vector<std::unique_ptr<Sweeper>> sweepers;
  size_t next_context = 0;  // round robin, used by the accept loop only

  std::atomic<bool> draining{false};
  std::atomic<int64_t> open{0};
  std::mutex mutex;  // guards connections and on_drained
  std::unordered_set<std::shared_ptr<Connection>> connections;
  std::function<void()> on_drained;

  Task<void> accept_loop();
  Task<void> reject_overloaded(std::shared_ptr<Connection> conn);
  Task<void> session(std::shared_ptr<Connection> conn);
  Task<bool> serve_one(Connection& conn, beast::flat_buffer& buffer);
  bool cors_allows(std::string_view origin) const {
    for (const auto& allowed : options.cors_origins) {
      if (allowed == "*" || allowed == origin) return true;
    }
    return false;
  }
  // Writes the response: head from serialize_head, then the body (none for HEAD).
  Task<void> write_response(Connection& conn, const Response& res, unsigned version, bool head_only,
                            std::string_view request_id, bool keep_alive, beast::error_code& ec);
  // For errors after which the stream cannot be trusted: answer, then close gracefully.
  Task<void> write_and_linger(Connection& conn, const Response& res, std::string_view request_id);
  void unregister(const std::shared_ptr<Connection>& conn);
  // Runs the drain callback once, when draining and no connection is left.
  void finish_drain_if_done();
  void close_on_executor(const std::shared_ptr<Connection>& conn, bool only_if_idle);
};

std::vector<std::pair<std::string, std::string>> security_headers(int hsts_max_age) {
  // An API answers JSON and event streams, which no browser should sniff, frame, cache or
  // follow with a referrer.
  std::vector<std::pair<std::string, std::string>> h = {
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
      {"Cross-Origin-Resource-Policy", "same-site"},
      {"Cache-Control", "no-store"}};
  if (hsts_max_age > 0) {
    h.emplace_back("Strict-Transport-Security",
                   "max-age=" + std::to_string(hsts_max_age) + "; includeSubDomains");
  }
  return h;
}

namespace {
ServerOptions with_default_headers(ServerOptions options) {
  if (options.default_headers.empty()) {
    options.default_headers = security_headers(options.hsts_max_age);
  }
  return options;
}
}  // namespace

Server::Server(IoPool& io, const ServerOptions& options, const Router& router,
               obs::Metrics& metrics)
    : impl_(std::make_shared<Impl>(io, with_default_headers(options), router, metrics)) {}

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
  asio::post(conn->socket.get_executor(), [conn, only_if_idle] {
    // Re-checked on the connection's thread: it may have started a request meanwhile.
    if (only_if_idle && !conn->idle) return;
    conn->close();
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

Task<void> Server::Impl::accept_loop() {
  while (!draining.load()) {
    beast::error_code ec;
    // Each connection goes to the next context, round robin, and stays there.
    const int index = static_cast<int>(next_context++ % sweepers.size());
    Socket socket =
        co_await acceptor.async_accept(io.context(index), asio::redirect_error(use_task, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      // Out of file descriptors and the like: back off briefly instead of spinning.
      log::warn("accept failed", {{"error", ec.message()}});
      Timer timer(io.main(), std::chrono::milliseconds(50));
      co_await timer.async_wait(asio::redirect_error(use_task, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn =
        std::make_shared<Connection>(std::move(socket), *sweepers[static_cast<size_t>(index)]);
    auto remote = conn->socket.remote_endpoint(ec);
    if (!ec) conn->remote = endpoint_string(remote);
    auto executor = conn->socket.get_executor();
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

Task<void> Server::Impl::reject_overloaded(std::shared_ptr<Connection> conn) {
  struct Swept {
    Connection& conn;
    explicit Swept(Connection& c) : conn(c) { conn.sweeper.add(conn); }
    ~Swept() { conn.sweeper.remove(conn); }
    Swept(const Swept&) = delete;
    Swept& operator=(const Swept&) = delete;
  } swept{*conn};
  const std::string request_id = random_hex128();
  auto res =
      error_response(503, "overloaded", "too many open connections; retry shortly", request_id);
  res.header("Retry-After", "1");
  co_await write_and_linger(*conn, res, request_id);
}

Task<void> Server::Impl::write_response(Connection& conn, const Response& res, unsigned version,
                                        bool head_only, std::string_view request_id,
                                        bool keep_alive, beast::error_code& ec) {
  serialize_head(conn.head, version, res, request_id, keep_alive, options.default_headers);
  const bool with_body = !head_only && !body_forbidden(res.status) && !res.body.empty();
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(conn.head), with_body ? asio::buffer(res.body) : asio::const_buffer()};
  conn.expires_after(options.write_timeout);
  co_await asio::async_write(conn.socket, buffers, asio::redirect_error(use_task, ec));
}

Task<void> Server::Impl::write_and_linger(Connection& conn, const Response& res,
                                          std::string_view request_id) {
  beast::error_code ec;
  co_await write_response(conn, res, 11, false, request_id, /*keep_alive=*/false, ec);
  // Closing with unread input makes the kernel send RST, which can destroy the response in
  // flight. Shut down our side and read (and drop) what the client still sends, briefly.
  conn.socket.shutdown(tcp::socket::shutdown_send, ec);
  conn.expires_after(std::chrono::seconds(2));
  std::array<char, 8192> scratch{};
  size_t drained = 0;
  while (!ec && drained < size_t{4} * 1024 * 1024) {
    drained += co_await conn.socket.async_read_some(asio::buffer(scratch),
                                                    asio::redirect_error(use_task, ec));
  }
  conn.close();
}

Task<void> Server::Impl::session(std::shared_ptr<Connection> conn) {
  conn->sweeper.add(*conn);
  struct Unregister {
    Impl* impl;
    std::shared_ptr<Connection> conn;
    ~Unregister() {
      conn->sweeper.remove(*conn);
      impl->unregister(conn);
    }
  } unregister_on_exit{this, conn};

  beast::flat_buffer buffer;
  while (true) {
    conn->idle = true;
    if (draining.load()) break;
    if (buffer.size() == 0) {
      beast::error_code ec;
      conn->expires_after(options.idle_timeout);
      size_t n = co_await conn->socket.async_read_some(buffer.prepare(4096),
                                                       asio::redirect_error(use_task, ec));
      if (ec) break;  // idle timeout, client closed, or drain closed us
      buffer.commit(n);
    }
    conn->idle = false;
    bool keep_alive = co_await serve_one(*conn, buffer);
    if (!keep_alive) break;
  }
  beast::error_code ec;
  conn->socket.shutdown(tcp::socket::shutdown_send, ec);
  conn->socket.close(ec);
}

// Reads one request, answers it. Returns whether the connection may serve another.
Task<bool> Server::Impl::serve_one(Connection& conn, beast::flat_buffer& buffer) {
  const auto started = SteadyClock::now();
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_size));
  // The largest limit any route has, until the route is known: Beast checks Content-Length
  // against the limit while it reads the head.
  parser.body_limit(std::max<uint64_t>(options.max_body_size, router.largest_body_limit()));

  beast::error_code ec;
  conn.expires_after(options.read_timeout);
  co_await bhttp::async_read_header(conn.socket, buffer, parser,
                                    asio::redirect_error(use_task, ec));
  uint64_t body_limit = options.max_body_size;
  if (!ec && !parser.is_done()) {
    // A body past the server's default may be for a route that takes more (an upload): only
    // then is the route looked up here.
    const auto length = parser.content_length();
    if (!length || *length > body_limit) {
      const auto& head = parser.get();
      const std::string_view target(head.target().data(), head.target().size());
      const std::string_view method(head.method_string().data(), head.method_string().size());
      const uint64_t limit =
          router.body_limit(parse_method(method), target.substr(0, target.find('?')));
      if (limit > 0) body_limit = limit;
      parser.body_limit(body_limit);
      if (length && *length > body_limit) ec = bhttp::error::body_limit;
    }
  }
  if (!ec && !parser.is_done()) {
    auto expect = parser.get()[bhttp::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(conn.socket, asio::buffer(kContinue.data(), kContinue.size()),
                                 asio::redirect_error(use_task, ec));
    }
    if (!ec)
      co_await bhttp::async_read(conn.socket, buffer, parser, asio::redirect_error(use_task, ec));
  }
  // The handler's time is its own; the write below sets its own deadline.
  conn.expires_never();

  if (ec) {
    // Protocol failures. Timeouts and closed connections get no answer (nobody to read it);
    // everything else gets the envelope, then the connection ends, since the stream position
    // can no longer be trusted.
    if (conn.timed_out || ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor) {
      co_return false;
    }
    int status = 400;
    std::string code = "malformed_http";
    std::string message = "malformed HTTP request: " + ec.message();
    if (ec == bhttp::error::body_limit) {
      status = 413;
      code = "body_too_large";
      message = "request body exceeds the limit of " + std::to_string(body_limit) + " bytes";
    } else if (ec == bhttp::error::header_limit) {
      status = 431;
      code = "headers_too_large";
      message = "request headers exceed the limit of " + std::to_string(options.max_header_size) +
                " bytes";
    }
    std::string request_id = random_hex128();
    const Response res = error_response(status, code, message, request_id);
    auto elapsed = std::chrono::duration<double>(SteadyClock::now() - started).count();
    metrics.observe_request(-1, kUnmatched, "other", status, elapsed);
    if (options.access_log) {
      log::info("request", {{"request_id", request_id},
                            {"route", kUnmatched},
                            {"status", status},
                            {"error", code},
                            {"remote", conn.remote}});
    }
    co_await write_and_linger(conn, res, request_id);
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

  // CORS: an allowed Origin is echoed (with Vary) on the response, streamed or not.
  const auto origin = req.header("origin");
  const bool origin_allowed = origin && cors_allows(*origin);
  if (origin_allowed) {
    req.response_headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
    req.response_headers.emplace_back("Vary", "Origin");
    req.response_headers.emplace_back("Access-Control-Expose-Headers", kCorsExposed);
  }
  Channel channel(conn, breq.version(), req.request_id, breq.keep_alive() && !draining.load(),
                  options.write_timeout, req.response_headers, options.default_headers);
  Match match = router.match(req.method, req.path);
  int route_id = -1;
  std::string_view route_label = kUnmatched;
  Response res;
  const bool preflight = req.method == Method::kOptions && origin &&
                         req.header("access-control-request-method").has_value();
  if (preflight) {
    // Answered here for every path: a browser asks before its real request.
    if (origin_allowed) {
      res = Response::empty(204);
      res.header("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE");
      res.header("Access-Control-Allow-Headers", kCorsAllowed);
      res.header("Access-Control-Max-Age", "600");
    } else {
      res = error_response(403, "cors_origin_denied",
                           "origin '" + std::string(*origin) +
                               "' is not in server.cors_origins; requests from it are refused",
                           req.request_id);
    }
    match.kind = Match::Kind::kFound;
    route_label = "preflight";
  }
  switch (preflight ? Match::Kind::kFound : match.kind) {
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
      if (preflight) break;
      route_id = match.route->id;
      route_label = match.route->pattern;
      if (match.bad_escape) {
        res = error_response(400, "malformed_path", "a path segment has a malformed %-escape",
                             req.request_id);
        break;
      }
      req.params = std::move(match.params);
      req.channel = &channel;
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

  // The handler may have watched the connection or streamed its body: settle that first.
  const bool reusable = co_await channel.finish();
  bool keep_alive = false;
  uint64_t bytes_out = 0;
  if (channel.started()) {
    res.status = channel.status();
    bytes_out = channel.bytes();
    keep_alive = reusable && !draining.load();
  } else {
    keep_alive = reusable && breq.keep_alive() && !draining.load();
    res.headers.insert(res.headers.end(), req.response_headers.begin(), req.response_headers.end());
    co_await write_response(conn, res, breq.version(), req.method == Method::kHead, req.request_id,
                            keep_alive, ec);
    bytes_out = res.body.size();
  }

  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - started).count();
  metrics.observe_request(route_id, route_label, req.method_text, res.status, elapsed);
  if (options.access_log && log::enabled(log::Level::kInfo)) {
    std::vector<log::Field> fields{
        {"request_id", req.request_id}, {"method", obs::Metrics::normalize_method(req.method_text)},
        {"route", route_label},         {"path", req.path},
        {"status", res.status},         {"duration_ms", elapsed * 1000.0},
        {"bytes_out", bytes_out},       {"remote", conn.remote}};
    // Path parameters are the ids of what the request touched ("id": "sess_...").
    for (const auto& [name, value] : req.params) fields.emplace_back(name, value);
    log::write(log::Level::kInfo, "request", fields);
  }
  co_return !ec && keep_alive;
}

}  // namespace parley::http

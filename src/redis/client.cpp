// The Redis client (see client.hpp): hiredis's async API on Asio.
//
// hiredis asks for read and write readiness through five hooks (addRead, delRead, addWrite,
// delWrite, cleanup); here they arm async_wait on a posix::stream_descriptor that wraps the
// connection's socket without owning it (hiredis closes it). Every wait carries the
// connection's generation, so a wait that completes after its connection was replaced does
// nothing.
#include "redis/client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <deque>
#include <optional>

#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::redis {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  return out;
}

Error down(const std::string& why) {
  return Error::unavailable("Redis is unavailable: " + why, "redis_down");
}

// A command's completion, type-erased so hiredis can carry it as privdata.
struct Pending {
  virtual ~Pending() = default;
  virtual void finish(Result<Reply> result) = 0;
};

template <typename Handler>
struct PendingFor final : Pending {
  PendingFor(Handler h, std::optional<Result<Reply>>* out) : handler(std::move(h)), out(out) {}
  void finish(Result<Reply> result) override {
    *out = std::move(result);
    Handler h = std::move(handler);
    delete this;
    // Resumed after hiredis's callback returns, never inside it.
    asio::post(std::move(h));
  }
  Handler handler;
  std::optional<Result<Reply>>* out;
};

}  // namespace

Script::Script(std::string source) : source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  static const char* hex = "0123456789abcdef";
  for (unsigned char b : digest) {
    sha1_ += hex[b >> 4];
    sha1_ += hex[b & 15];
  }
}

// One connection, living on one io_context; every member is touched only on its thread
// (except `up_`).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Client& client, asio::io_context& context, bool subscriber)
      : client_(client),
        context_(context),
        subscriber_(subscriber),
        resolver_(context),
        retry_timer_(context),
        watchdog_(context) {}

  asio::io_context& context() { return context_; }
  bool up() const { return up_.load(std::memory_order_acquire); }

  void start() {
    asio::post(context_, [self = shared_from_this()] { self->connect(); });
  }

  // After the event loops stopped (nothing runs concurrently): close for good.
  void stop() {
    stopped_ = true;
    retry_timer_.cancel();
    watchdog_.cancel();
    close("stopping");
  }

  Task<Result<Reply>> send(std::vector<std::string> args) {
    if (!ac_ || !up()) co_return down(last_error_.empty() ? "not connected" : last_error_);
    std::optional<Result<Reply>> result;
    co_await asio::async_initiate<decltype(use_task), void()>(
        [this, &args, &result](auto handler) {
          using H = decltype(handler);
          auto* pending = new PendingFor<H>(std::move(handler), &result);
          if (!issue(args, pending)) pending->finish(down("the command could not be sent"));
        },
        use_task);
    co_return std::move(*result);
  }

  void subscribe_all() {
    for (size_t i = 0; i < client_.subscriptions_.size(); ++i) {
      const char* argv[] = {"SUBSCRIBE", client_.subscriptions_[i].channel.c_str()};
      const size_t lens[] = {9, client_.subscriptions_[i].channel.size()};
      // The subscription itself rides along: subscribe() is called only before start().
      if (redisAsyncCommandArgv(ac_, &Connection::on_message, &client_.subscriptions_[i], 2, argv,
                                lens) == REDIS_OK) {
        sent_.push_back(Clock::now());  // until the subscription is confirmed
      }
    }
  }

 private:
  bool issue(const std::vector<std::string>& args, Pending* pending) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAsyncCommandArgv(ac_, &Connection::on_reply, pending, static_cast<int>(args.size()),
                              argv.data(), lens.data()) != REDIS_OK) {
      return false;
    }
    sent_.push_back(Clock::now());
    if (client_.metrics_) client_.metrics_->count_redis_command();
    return true;
  }

  // --- connecting ------------------------------------------------------------------------

  void connect() {
    if (stopped_ || ac_) return;
    const auto& endpoint = client_.endpoint();
    // Names are resolved by Asio's resolver (its own thread), never by hiredis on ours.
    resolver_.async_resolve(
        endpoint.host, std::to_string(endpoint.port),
        [self = shared_from_this()](const boost::system::error_code& ec,
                                    const asio::ip::tcp::resolver::results_type& results) {
          if (self->stopped_) return;
          if (ec || results.empty()) {
            self->failed("cannot resolve " + self->client_.endpoint().host + ": " + ec.message());
            return;
          }
          self->open(results.begin()->endpoint().address().to_string());
        });
  }

  void open(const std::string& address) {
    redisAsyncContext* ac = redisAsyncConnect(address.c_str(), client_.endpoint().port);
    if (!ac || ac->err) {
      failed(std::string("cannot connect: ") + (ac ? ac->errstr : "out of memory"));
      if (ac) redisAsyncFree(ac);
      return;
    }
    ++generation_;
    handshake_refused_ = false;
    ac_ = ac;
    ac->data = this;
    ac->ev.data = this;
    ac->ev.addRead = [](void* p) { static_cast<Connection*>(p)->want(true, true); };
    ac->ev.delRead = [](void* p) { static_cast<Connection*>(p)->want(true, false); };
    ac->ev.addWrite = [](void* p) { static_cast<Connection*>(p)->want(false, true); };
    ac->ev.delWrite = [](void* p) { static_cast<Connection*>(p)->want(false, false); };
    ac->ev.cleanup = [](void* p) { static_cast<Connection*>(p)->detach(); };
    redisAsyncSetConnectCallback(ac, &Connection::on_connect);
    redisAsyncSetDisconnectCallback(ac, &Connection::on_disconnect);
    // Keep-alive probes find a peer that vanished without a word (no command may be in flight
    // to notice it, on the subscriber).
    redisEnableKeepAlive(&ac->c);
    socket_ = std::make_unique<asio::posix::stream_descriptor>(context_, ac->c.fd);
    connecting_since_ = Clock::now();
    // hiredis learns that the non-blocking connect finished from the first write readiness.
    want(false, true);
    arm_watchdog();
  }

  // Authenticates and selects the database (pipelined), then PINGs: up when PONG arrives.
  void handshake() {
    const auto& e = client_.endpoint();
    if (!e.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!e.username.empty()) auth.push_back(e.username);
      auth.push_back(e.password);
      internal(auth, "AUTH");
    }
    if (e.db != 0) internal({"SELECT", std::to_string(e.db)}, "SELECT");
    if (subscriber_) {
      subscribe_all();
    } else {
      internal({"PING"}, "PING");
    }
  }

  struct Internal {
    Connection* self;
    std::string what;
  };

  void internal(const std::vector<std::string>& args, const char* what) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* data = new Internal{this, what};
    if (redisAsyncCommandArgv(ac_, &Connection::on_internal, data, static_cast<int>(args.size()),
                              argv.data(), lens.data()) != REDIS_OK) {
      delete data;
      return;
    }
    sent_.push_back(Clock::now());
  }

  void became_up() {
    up_.store(true, std::memory_order_release);
    backoff_ = std::chrono::milliseconds(50);
    if (!last_error_.empty()) {
      log::info("redis connection restored", {{"redis", client_.endpoint().describe()}});
    }
    last_error_.clear();
  }

  void failed(const std::string& why) {
    const bool was_up = up();
    up_.store(false, std::memory_order_release);
    if (stopped_) return;  // closed on purpose
    if (was_up || last_error_ != why) {
      log::warn("redis connection lost",
                {{"redis", client_.endpoint().describe()}, {"error", why}});
    }
    last_error_ = why;
    client_.note_error(why);
    retry_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2'000));
    retry_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->connect();
    });
  }

  // Frees the hiredis context (every command in flight fails), then reconnects.
  void close(const std::string& why) {
    if (!ac_) return;
    close_reason_ = why;
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // calls on_disconnect (if it was connected) and cleanup
    if (ac_ == ac) {     // never connected: hiredis did not call on_disconnect
      ac_ = nullptr;
      sent_.clear();
      close_reason_.clear();
      failed(why);
    }
  }

  // --- readiness -------------------------------------------------------------------------

  void want(bool read, bool on) {
    (read ? want_read_ : want_write_) = on;
    if (!on) return;
    if (!read && ac_ && (ac_->c.flags & REDIS_CONNECTED)) {
      write_soon();
    } else {
      arm(read);
    }
  }

  // Commands are written once the current turn of the event loop is over, all of them in one
  // write: the socket of a connected client is nearly always writable, so waiting for the
  // reactor to say so would only cost an epoll_ctl and a loop round per command. Only when the
  // kernel's buffer is full (the write stopped short) does the connection wait for readiness.
  void write_soon() {
    if (write_posted_ || write_armed_) return;
    write_posted_ = true;
    asio::post(context_, [self = shared_from_this(), generation = generation_] {
      if (generation != self->generation_) return;
      // Still marked posted during the write: a short write asks for more from inside it, and
      // that is answered by the readiness wait below, not by another post.
      if (self->ac_ && self->want_write_) redisAsyncHandleWrite(self->ac_);
      if (generation != self->generation_) return;
      self->write_posted_ = false;
      if (self->ac_ && self->want_write_) self->arm(false);
    });
  }

  void arm(bool read) {
    bool& armed = read ? read_armed_ : write_armed_;
    if (armed || !socket_) return;
    armed = true;
    socket_->async_wait(
        read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
        [self = shared_from_this(), read,
         generation = generation_](const boost::system::error_code& ec) {
          if (generation != self->generation_) return;
          (read ? self->read_armed_ : self->write_armed_) = false;
          if (ec || !self->ac_) return;
          if (read ? self->want_read_ : self->want_write_) {
            if (read) {
              redisAsyncHandleRead(self->ac_);
            } else {
              redisAsyncHandleWrite(self->ac_);
            }
          }
          if (generation == self->generation_ && self->ac_ &&
              (read ? self->want_read_ : self->want_write_)) {
            self->arm(read);
          }
        });
  }

  void detach() {
    want_read_ = want_write_ = false;
    read_armed_ = write_armed_ = write_posted_ = false;
    ++generation_;
    if (socket_) {
      boost::system::error_code ignored;
      socket_->cancel(ignored);
      (void)socket_->release();  // hiredis owns the descriptor and closes it
      socket_.reset();
    }
  }

  // Fails the connection when a command (or the connect) has waited past its timeout.
  void arm_watchdog() {
    const auto timeout = client_.settings().timeout;
    watchdog_.expires_after(std::max(timeout / 4, std::chrono::milliseconds(5)));
    watchdog_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped_ || !self->ac_) return;
      const auto now = Clock::now();
      if (!self->up() && now - self->connecting_since_ > self->client_.settings().connect_timeout) {
        self->close("connect timed out after " +
                    std::to_string(self->client_.settings().connect_timeout.count()) + " ms");
        return;
      }
      if (!self->sent_.empty() && now - self->sent_.front() > self->client_.settings().timeout) {
        self->close("no answer within redis.timeout (" +
                    std::to_string(self->client_.settings().timeout.count()) + " ms)");
        return;
      }
      self->arm_watchdog();
    });
  }

  // --- hiredis callbacks -----------------------------------------------------------------

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Connection*>(ac->data);
    if (status != REDIS_OK) {
      // hiredis frees the context after this returns.
      self->ac_ = nullptr;
      self->sent_.clear();
      self->failed(std::string("cannot connect to ") + self->client_.endpoint().describe() + ": " +
                   (ac->errstr ? ac->errstr : "error"));
      return;
    }
    self->handshake();
  }

  static void on_disconnect(const redisAsyncContext* ac, int) {
    auto* self = static_cast<Connection*>(ac->data);
    std::string why = self->close_reason_.empty()
                          ? std::string("connection lost: ") + (ac->errstr ? ac->errstr : "")
                          : self->close_reason_;
    self->close_reason_.clear();
    self->ac_ = nullptr;
    self->sent_.clear();
    self->failed(why);
  }

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    auto* self = static_cast<Connection*>(ac->data);
    if (!self->sent_.empty()) self->sent_.pop_front();
    auto* pending = static_cast<Pending*>(privdata);
    if (!reply) {
      std::string why = self->close_reason_.empty() ? "connection lost" : self->close_reason_;
      if (why.rfind("no answer", 0) == 0) {
        pending->finish(
            Error::unavailable("Redis did not answer in time: " + why, "redis_timeout"));
      } else {
        pending->finish(down(why));
      }
      return;
    }
    pending->finish(convert(static_cast<redisReply*>(reply)));
  }

  static void on_internal(redisAsyncContext* ac, void* reply, void* privdata) {
    std::unique_ptr<Internal> data(static_cast<Internal*>(privdata));
    Connection* self = data->self;
    if (!self->sent_.empty()) self->sent_.pop_front();
    if (!reply) return;
    auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_ERROR) {
      // The PING pipelined behind a refused AUTH is still answered (as Redis's default user):
      // this connection must never count as up.
      self->handshake_refused_ = true;
      const std::string why = data->what + " failed: " + std::string(r->str, r->len);
      // Not from inside hiredis's callback: close on the next turn of the loop.
      asio::post(self->context_, [s = self->shared_from_this(), why] { s->close(why); });
      return;
    }
    if (data->what == "PING" && !self->handshake_refused_) self->became_up();
    (void)ac;
  }

  static void on_message(redisAsyncContext* ac, void* reply, void* privdata) {
    auto* self = static_cast<Connection*>(ac->data);
    if (!reply) return;
    auto* r = static_cast<redisReply*>(reply);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string kind(r->element[0]->str ? r->element[0]->str : "",
                           r->element[0]->str ? r->element[0]->len : 0);
    auto& subscription = *static_cast<Client::Subscription*>(privdata);
    if (kind == "subscribe") {
      if (!self->sent_.empty()) self->sent_.pop_front();
      if (self->handshake_refused_) return;  // closing (see on_internal): never up, never heard
      self->became_up();
      // Anything published while this connection was away is lost: the owner re-reads.
      if (subscription.on_resync) subscription.on_resync();
    } else if (kind == "message" && r->element[2]->type == REDIS_REPLY_STRING &&
               !self->handshake_refused_) {
      subscription.on_message(std::string_view(r->element[2]->str, r->element[2]->len));
    }
  }

  Client& client_;
  asio::io_context& context_;
  const bool subscriber_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer retry_timer_;
  asio::steady_timer watchdog_;
  redisAsyncContext* ac_ = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> socket_;
  uint64_t generation_ = 0;
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool write_posted_ = false;  // a write_soon() is queued
  bool stopped_ = false;
  bool handshake_refused_ = false;      // AUTH or SELECT failed on this connection
  std::deque<Clock::time_point> sent_;  // when each command in flight was sent, oldest first
  Clock::time_point connecting_since_;
  std::chrono::milliseconds backoff_{50};
  std::string close_reason_;
  std::string last_error_;
  std::atomic<bool> up_{false};
};

Client::Client(IoPool& io, RedisSettings settings, Endpoint endpoint, obs::Metrics* metrics)
    : io_(io), settings_(std::move(settings)), endpoint_(std::move(endpoint)), metrics_(metrics) {}

Client::~Client() { stop(); }

Result<std::unique_ptr<Client>> connect_configured(IoPool& io, const RedisSettings& settings,
                                                   obs::Metrics* metrics) {
  if (settings.url.empty()) return std::unique_ptr<Client>();
  auto endpoint = parse_url(settings.url);
  if (!endpoint) return std::move(endpoint).error();
  auto client = std::make_unique<Client>(io, settings, *endpoint, metrics);
  if (auto r = client->check(); !r) return std::move(r).error();
  log::info("redis reachable", {{"redis", endpoint->describe()}});
  return client;
}

Result<void> Client::check() const {
  timeval tv{};
  tv.tv_sec = settings_.connect_timeout.count() / 1000;
  tv.tv_usec = static_cast<suseconds_t>((settings_.connect_timeout.count() % 1000) * 1000);
  redisContext* c = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv);
  std::unique_ptr<redisContext, void (*)(redisContext*)> owned(c, redisFree);
  if (!c) return down("out of memory");
  if (c->err) return down("cannot connect to " + endpoint_.describe() + ": " + c->errstr);
  redisSetTimeout(c, tv);
  auto run = [&](const std::vector<std::string>& args, const char* what) -> Result<void> {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!r) return down(endpoint_.describe() + ": " + (c->err ? c->errstr : "no answer"));
    std::unique_ptr<redisReply, void (*)(void*)> reply(r, freeReplyObject);
    if (r->type == REDIS_REPLY_ERROR) {
      return down(endpoint_.describe() + ": " + what + " failed: " + std::string(r->str, r->len));
    }
    return success();
  };
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    if (auto r = run(auth, "AUTH"); !r) return r;
  }
  if (endpoint_.db != 0) {
    if (auto r = run({"SELECT", std::to_string(endpoint_.db)}, "SELECT"); !r) return r;
  }
  return run({"PING"}, "PING");
}

void Client::start() {
  if (!connections_.empty()) return;
  for (int i = 0; i < io_.size(); ++i) {
    connections_.push_back(std::make_shared<Connection>(*this, io_.context(i), false));
    connections_.back()->start();
  }
  if (!subscriptions_.empty()) {
    subscriber_ = std::make_shared<Connection>(*this, io_.context(0), true);
    subscriber_->start();
  }
}

void Client::stop() {
  for (auto& c : connections_) c->stop();
  if (subscriber_) subscriber_->stop();
}

Task<Result<Reply>> Client::command(std::vector<std::string> args) {
  auto executor = co_await asio::this_coro::executor;
  for (auto& c : connections_) {
    if (&c->context() == &executor.context()) co_return co_await c->send(std::move(args));
  }
  co_return Error::internal("a Redis command was sent from outside the I/O threads");
}

Task<Result<Reply>> Client::eval(const Script& script, std::vector<std::string> keys,
                                 std::vector<std::string> args) {
  std::vector<std::string> command{"EVALSHA", script.sha1(), std::to_string(keys.size())};
  for (auto& k : keys) command.push_back(k);
  for (auto& a : args) command.push_back(a);
  auto reply = co_await this->command(command);
  if (reply.ok() && reply->is_error() && reply->text.rfind("NOSCRIPT", 0) == 0) {
    command[0] = "EVAL";
    command[1] = script.source();
    reply = co_await this->command(std::move(command));
  }
  co_return reply;
}

namespace {

// The I/O thread a detached command goes out on: the caller's own, or the first.
asio::io_context& detached_context(const std::vector<std::shared_ptr<Connection>>& connections) {
  for (const auto& c : connections) {
    if (c->context().get_executor().running_in_this_thread()) return c->context();
  }
  return connections.front()->context();
}

}  // namespace

void Client::detached(std::function<Task<void>()> work) {
  if (connections_.empty()) return;
  asio::co_spawn(detached_context(connections_).get_executor(), std::move(work), asio::detached);
}

void Client::eval_detached(const Script& script, std::vector<std::string> keys,
                           std::vector<std::string> args) {
  detached([this, &script, keys = std::move(keys), args = std::move(args)]() -> Task<void> {
    auto reply = co_await eval(script, keys, args);
    if (!reply) note_error(reply.error().message);
    if (reply.ok() && reply->is_error()) note_error(reply->text);
  });
}

void Client::command_detached(std::vector<std::string> args) {
  detached([this, args = std::move(args)]() -> Task<void> {
    auto reply = co_await command(args);
    if (!reply) note_error(reply.error().message);
    if (reply.ok() && reply->is_error()) note_error(reply->text);
  });
}

void Client::subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                       std::function<void()> on_resync) {
  subscriptions_.push_back({std::move(channel), std::move(on_message), std::move(on_resync)});
}

bool Client::connected() const {
  if (connections_.empty()) return false;
  for (const auto& c : connections_) {
    if (!c->up()) return false;
  }
  return !subscriber_ || subscriber_->up();
}

std::string Client::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

void Client::note_error(const std::string& message) const {
  std::lock_guard lock(error_mutex_);
  last_error_ = message;
}

}  // namespace parley::redis

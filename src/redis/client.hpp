// A Redis client on the server's own event loops: hiredis's asynchronous API driven by Asio,
// one connection per I/O thread, so a command never leaves the thread of the coroutine that
// awaits it and never blocks it. Commands are pipelined on that connection.
//
//   auto reply = co_await redis.command({"INCR", "parley:n"});
//
// Failures are values, never exceptions: a connection that is down (or not yet up) answers at
// once with kUnavailable "redis_down", so a caller decides to fail closed or open without
// waiting; a command unanswered after `redis.timeout` fails its connection (every command in
// flight on it gets "redis_timeout") and the connection is replaced. Lost connections are
// re-established in the background with back-off, so service resumes by itself when Redis
// returns.
//
// Publish/subscribe runs on one more connection, on the first I/O thread; after every
// (re)subscription its `on_resync` runs, because messages sent while it was away are lost.
//
// Thread-safety: command() from any coroutine running on one of the pool's I/O threads;
// connected() and last_error() from any thread; start(), check() and stop() from the thread
// that owns the server.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/io_pool.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "redis/settings.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::redis {

struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string text;  // strings, statuses and errors
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
};

// A Lua script, sent by its SHA-1 (EVALSHA) and by its text only when the server does not
// have it yet (after a restart or a SCRIPT FLUSH).
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

class Connection;

class Client {
 public:
  // `metrics` (may be null) counts the commands sent (redis_commands_total).
  Client(IoPool& io, RedisSettings settings, Endpoint endpoint, obs::Metrics* metrics = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocking, before the event loops run: connects once (with AUTH and SELECT), PINGs and
  // disconnects, so a start-up phase can fail with one clear line.
  Result<void> check() const;
  // Opens one connection per I/O thread (they connect once their loops run) and the
  // subscriber, if anything subscribed.
  void start();
  // Closes every connection on its own thread; commands in flight fail with "redis_down".
  void stop();

  Task<Result<Reply>> command(std::vector<std::string> args);
  Task<Result<Reply>> eval(const Script& script, std::vector<std::string> keys,
                           std::vector<std::string> args);
  // Without waiting for the answer (giving back a lease, charging tokens after a call): sent
  // on the calling I/O thread's connection, or the first one's from any other thread. A
  // failure is only recorded in last_error(). `script` must outlive the call (a static).
  void eval_detached(const Script& script, std::vector<std::string> keys,
                     std::vector<std::string> args);
  void command_detached(std::vector<std::string> args);
  // Runs `work` (which awaits commands) on the calling I/O thread, or the first one from any
  // other thread, without waiting for it.
  void detached(std::function<Task<void>()> work);

  // Call before start(). `on_message` and `on_resync` run on the first I/O thread.
  void subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                 std::function<void()> on_resync);

  // Every command connection and the subscriber are up.
  bool connected() const;
  // The most recent failure, for readiness ("" when none since the last connect).
  std::string last_error() const;
  const Endpoint& endpoint() const { return endpoint_; }
  // The event loops the command connections run on, one per I/O thread.
  IoPool& io() const { return io_; }
  const RedisSettings& settings() const { return settings_; }
  // The configured key prefix in front of `name`.
  std::string key(std::string_view name) const { return settings_.key_prefix + std::string(name); }

 private:
  friend class Connection;
  void note_error(const std::string& message) const;

  IoPool& io_;
  RedisSettings settings_;
  Endpoint endpoint_;
  obs::Metrics* metrics_;
  std::vector<std::shared_ptr<Connection>> connections_;  // one per I/O context
  std::shared_ptr<Connection> subscriber_;  // in subscribe mode, on the first I/O thread
  struct Subscription {
    std::string channel;
    std::function<void(std::string_view)> on_message;
    std::function<void()> on_resync;
  };
  std::vector<Subscription> subscriptions_;
  mutable std::mutex error_mutex_;
  mutable std::string last_error_;
};

// The client redis.url names, checked once (reachable, credentials accepted), so that start-up
// fails in its phase with one line; null when redis.url is empty. Its connections open once
// the event loops run and start() is called.
Result<std::unique_ptr<Client>> connect_configured(IoPool& io, const RedisSettings& settings,
                                                   obs::Metrics* metrics);

}  // namespace parley::redis

// A Redis client on an IoPool of its own threads, for tests: start it, run a coroutine on one
// of its I/O threads and wait for the answer.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "core/io_pool.hpp"
#include "redis/client.hpp"
#include "support/test_redis.hpp"

namespace parley::testing {

using namespace std::chrono_literals;

// An IoPool running on threads of its own, with a client on it.
class RedisHarness {
 public:
  // `prefix`: the keys' prefix; two harnesses with the same one act as two replicas.
  // `metrics` (may be null) counts the commands sent.
  explicit RedisHarness(const std::string& url, std::chrono::milliseconds timeout = 1000ms,
                        int threads = 2, std::string prefix = unique_redis_prefix(),
                        parley::obs::Metrics* metrics = nullptr)
      : io_(threads) {
    auto endpoint = parley::redis::parse_url(url);
    EXPECT_TRUE(endpoint.ok()) << url;
    parley::redis::RedisSettings settings;
    settings.url = url;
    settings.timeout = timeout;
    settings.connect_timeout = 1000ms;
    settings.key_prefix = std::move(prefix);
    client_ = std::make_unique<parley::redis::Client>(
        io_, settings, endpoint.ok() ? *endpoint : parley::redis::Endpoint{}, metrics);
  }
  ~RedisHarness() { shutdown(); }

  parley::redis::Client& client() { return *client_; }
  void run() {
    client_->start();
    runner_ = std::thread([this] { io_.run(); });
  }
  void shutdown() {
    if (!runner_.joinable()) return;
    io_.stop();
    runner_.join();
    client_->stop();
  }
  bool wait_connected(std::chrono::milliseconds within = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (client_->connected()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  // Runs one command on I/O thread `thread` and waits for its answer.
  parley::Result<parley::redis::Reply> command(std::vector<std::string> args, int thread = 0) {
    return on(thread, [this, args]() -> parley::Task<parley::Result<parley::redis::Reply>> {
      co_return co_await client_->command(args);
    });
  }
  // Runs the coroutine `f()` on I/O thread `thread` and waits for what it returns.
  template <typename F, typename T = typename std::invoke_result_t<F&>::value_type>
  T on(int thread, F f) {
    std::promise<T> done;
    auto future = done.get_future();
    boost::asio::co_spawn(
        io_.context(thread),
        [&f, &done]() -> parley::Task<void> {
          auto r = co_await f();
          done.set_value(std::move(r));
        },
        boost::asio::detached);
    return future.get();
  }
  std::string key(const std::string& name) { return client_->key(name); }

 private:
  parley::IoPool io_;
  std::unique_ptr<parley::redis::Client> client_;
  std::thread runner_;
};

}  // namespace parley::testing

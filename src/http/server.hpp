// The HTTP/1.1 server: accepts connections, reads requests under size limits and deadlines,
// hands them to the router, writes the responses, and shuts down in two steps (drain, then
// cancel), after Boost.Beast's awaitable server example. One coroutine per connection, on one
// of the IoPool's single-threaded contexts (so no strand is needed).
//
// Around every request it owns what no handler should have to: the request id, the error
// envelope for protocol errors (400/405/404/413/431), exception containment (500 without
// internals), access logging and the http_* metrics.
//
// Thread-safety: listen() and start() are called once, from the thread that set things up.
// begin_drain() and cancel_all() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace parley {
class IoPool;
}

namespace parley::obs {
class Metrics;
}

namespace parley::config {
class Schema;
}

namespace parley::http {

class Router;

struct ServerOptions {
  uint64_t max_body_size = 1024ULL * 1024;
  uint64_t max_header_size = 16ULL * 1024;
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
  int max_connections = 10'000;
  bool access_log = true;
  // Sent on every response that does not set the same header itself. Empty: the security
  // headers an API wants (nosniff, no framing, no referrer, a CSP that allows nothing,
  // no-store), and Strict-Transport-Security when hsts_max_age > 0.
  std::vector<std::pair<std::string, std::string>> default_headers;
  // Seconds for Strict-Transport-Security; 0 sends none (set it behind a TLS terminator).
  int hsts_max_age = 0;
  // Origins whose browser scripts may call the API (exact "https://app.example.com", or "*");
  // empty: no cross-origin access. Preflight requests are answered for every path.
  std::vector<std::string> cors_origins;
};

// The default headers described at ServerOptions::default_headers.
std::vector<std::pair<std::string, std::string>> security_headers(int hsts_max_age);

void declare_settings(config::Schema& schema);

class Server {
 public:
  Server(IoPool& io, const ServerOptions& options, const Router& router, obs::Metrics& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port (useful with port 0). Errors name the address
  // and the OS reason ("address already in use").
  Result<uint16_t> listen(const std::string& host, uint16_t port);
  // Starts accepting on the io_context.
  void start();

  // Graceful shutdown, step one: stop accepting, close idle keep-alive connections, and let
  // requests in progress finish (their responses carry Connection: close). `on_drained` runs
  // once no connection is left.
  void begin_drain(std::function<void()> on_drained);
  // Step two: close every remaining connection now.
  void cancel_all();

  bool draining() const;
  int64_t open_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::http

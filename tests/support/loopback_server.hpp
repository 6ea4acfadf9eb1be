// A fake's HTTP server: Parley's own server on 127.0.0.1, over a router the fake fills before
// start(), on a thread of its own. What the fakes in this folder share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "core/io_pool.hpp"
#include "http/router.hpp"
#include "obs/metrics.hpp"

namespace parley::http {
class Server;
}

namespace parley::testing {

class LoopbackServer {
 public:
  explicit LoopbackServer(const std::string& name);
  ~LoopbackServer();  // stop()
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  http::Router& router() { return router_; }
  // Listens on `port` (0: any free one) and serves; the port, or 0 when it cannot listen.
  uint16_t start(uint16_t port);
  // Drains, cuts what is still open (streams left stalled), and joins the thread. Idempotent.
  void stop();

 private:
  IoPool io_;
  obs::Metrics metrics_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

}  // namespace parley::testing

// A fake's HTTP server (see loopback_server.hpp).
#include "loopback_server.hpp"

#include "http/server.hpp"

namespace parley::testing {

LoopbackServer::LoopbackServer(const std::string& name)
    : io_(1), metrics_({name, "none", "g++", "test"}) {}

LoopbackServer::~LoopbackServer() { stop(); }

uint16_t LoopbackServer::start(uint16_t port) {
  http::ServerOptions options;
  options.access_log = false;
  server_ = std::make_unique<http::Server>(io_, options, router_, metrics_);
  auto bound = server_->listen("127.0.0.1", port);
  server_->start();
  thread_ = std::thread([this] { io_.run(); });
  return bound ? *bound : 0;
}

void LoopbackServer::stop() {
  if (!thread_.joinable()) return;
  server_->begin_drain([this] { io_.stop(); });
  server_->cancel_all();
  thread_.join();
}

}  // namespace parley::testing

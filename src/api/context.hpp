// What route handlers may use: the long-lived components, built once at startup by the app
// (app/server_app.cpp) and alive until every request has finished. Handlers hold a reference
// to this; none of it is owned here.
#pragma once

#include <chrono>
#include <functional>

#include "config/config.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "obs/metrics.hpp"
#include "store/store.hpp"

namespace parley::chat {
class ChatService;
class Assistants;
}  // namespace parley::chat

namespace parley::llm {
class Gateway;
class Accountant;
}  // namespace parley::llm

namespace parley::moderation {
class Moderator;
}

namespace parley::api {

class Access;

struct Context {
  const config::Config& config;
  store::Storage& storage;
  BlockingPool& blocking;
  obs::Metrics& metrics;
  const Clock& clock;
  obs::BuildInfo build;
  std::chrono::steady_clock::time_point started_at;
  int io_threads = 1;
  // Live server state, read by health and diagnostics.
  std::function<bool()> draining;
  std::function<int64_t()> open_connections;
  // The chat and model layers (null where a test serves only storage-backed routes).
  chat::ChatService* chat = nullptr;
  const chat::Assistants* assistants = nullptr;
  llm::Gateway* gateway = nullptr;
  llm::Accountant* accountant = nullptr;
  // Who may do what (null where a test serves handlers without the guard: everything is then
  // the local operator's).
  Access* access = nullptr;
  moderation::Moderator* moderator = nullptr;  // null: nothing is moderated
};

}  // namespace parley::api

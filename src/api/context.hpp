// What route handlers may use: the long-lived components, built once at startup by the app
// (app/server_app.cpp) and alive until every request has finished. Every member is a
// reference: a handler never checks whether a component exists, and a test that serves
// handlers passes real or fake components, never nulls. None of it is owned here.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "obs/metrics.hpp"
#include "store/store.hpp"

namespace parley::chat {
class Pipeline;
struct ChatDeps;
class Assistants;
}  // namespace parley::chat

namespace parley::llm {
class Gateway;
class Accountant;
}  // namespace parley::llm

namespace parley::moderation {
class Moderator;
}

namespace parley::limits {
class Admission;
}

namespace parley::jobs {
class JobPool;
}

namespace parley::redis {
class Client;
}

namespace parley::queue {
class Worker;
}

namespace parley::api {

class Access;

struct Context {
  const config::Settings& settings;  // every module's options: settings.get<T>()
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
  // The chat pipeline (every way in to a model runs it) and what its stages use.
  chat::Pipeline& chat;
  chat::ChatDeps& chat_deps;
  const chat::Assistants& assistants;
  llm::Gateway& gateway;
  llm::Accountant& accountant;
  moderation::Moderator& moderator;  // disabled when nothing is configured
  limits::Admission& admission;
  jobs::JobPool& jobs;  // long background work, apart from request storage calls
  // Who may do what: credentials, ownership, the caller's request limits, idempotency.
  Access& access;
  // Where replicas share state; null when this process keeps it (no redis.url). Readiness.
  const redis::Client* redis = nullptr;
  // The job runner of this process; null when only `parley worker` processes run jobs.
  queue::Worker* worker = nullptr;
  // What modules add to the readiness probe, by name. Each answers {"status": "ok",
  // "degraded" or "fail", ...}; "fail" takes the replica out of its load balancer.
  std::vector<std::pair<std::string, std::function<nlohmann::json()>>> readiness_checks{};
};

}  // namespace parley::api

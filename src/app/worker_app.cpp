// `parley worker` (see worker_app.hpp).
#include "app/worker_app.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include <nlohmann/json.hpp>

#include "app/build_info.hpp"
#include "app/server_app.hpp"
#include "app/settings.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/io_pool.hpp"
#include "http/client.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/ingest.hpp"
#include "knowledge/settings.hpp"
#include "llm/accounting.hpp"
#include "llm/gateway.hpp"
#include "llm/pricing.hpp"
#include "llm/settings.hpp"
#include "memory/follow_ups.hpp"
#include "memory/jobs.hpp"
#include "memory/settings.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "queue/builtin_jobs.hpp"
#include "queue/settings.hpp"
#include "queue/worker.hpp"
#include "redis/client.hpp"
#include "redis/settings.hpp"
#include "store/settings.hpp"
#include "summary/settings.hpp"
#include "summary/summarize.hpp"

namespace parley::app {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Members in the order they are built; destroyed in reverse.
struct WorkerProcess {
  const config::Settings& settings;
  const Clock& clock = Clock::system();
  const queue::WorkerSettings& options = settings.get<queue::WorkerSettings>();
  obs::Metrics metrics{build_info()};
  std::string id = new_resource_id("wrk");
  std::unique_ptr<store::Storage> storage;
  BlockingPool blocking{1};  // readiness's database ping
  IoPool io{1};
  std::unique_ptr<redis::Client> redis;
  // Models, for jobs that call them (a remote embedder); their usage is booked here too.
  std::unique_ptr<llm::ModelTable> model_table;
  std::unique_ptr<llm::Accountant> accountant;
  std::unique_ptr<http::HttpClient> http_client;
  std::unique_ptr<llm::Gateway> gateway;
  std::unique_ptr<knowledge::Embedders> embedders;
  // The model that extracts memories; empty: the built-in rules (memory/jobs.hpp).
  llm::CompleteFn memory_model;
  // The model that writes session summaries; empty: extractive (summary/summarize.hpp).
  llm::CompleteFn summary_model;
  http::Router router;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<queue::Worker> worker;
  std::string bound_host;
  uint16_t bound_port = 0;  // of the probes and /metrics (worker.listen)

  explicit WorkerProcess(const config::Settings& s) : settings(s) {}

  std::optional<std::string> open_storage() {
    store::OpenOptions open_options;
    open_options.metrics = &metrics;
    auto opened = store::open(settings.get<store::StorageSettings>(), open_options);
    if (!opened) return opened.error().message;
    storage = std::move(*opened);
    return std::nullopt;
  }

  // Redis carries one thing for a worker: the news that a job revoked keys.
  std::optional<std::string> connect_redis() {
    auto connected = redis::connect_configured(io, settings.get<redis::RedisSettings>(), &metrics);
    if (!connected) return connected.error().message;
    redis = std::move(*connected);
    return std::nullopt;
  }

  std::optional<std::string> build_models() {
    const auto& llm_settings = settings.get<llm::LlmSettings>();
    model_table = std::make_unique<llm::ModelTable>(llm_settings.models);
    accountant = std::make_unique<llm::Accountant>(*model_table, &metrics, storage.get(),
                                                   llm_settings.usage_flush_interval);
    http_client = std::make_unique<http::HttpClient>(io);
    gateway = llm::make_gateway(llm_settings, *http_client, accountant->observer());
    const auto& k = settings.get<knowledge::KnowledgeSettings>();
    embedders = std::make_unique<knowledge::Embedders>(k, gateway.get(), &io, clock);
    if (auto known = embedders->canonical(k.embedder, "knowledge.embedder"); !known) {
      return "knowledge.embedder: " + known.error().message;
    }
    if (const auto& m = settings.get<memory::MemorySettings>(); !m.embedder.empty()) {
      if (auto known = embedders->canonical(m.embedder, "memory.embedder"); !known) {
        return "memory.embedder: " + known.error().message;
      }
    }
    auto extraction_model = memory::extraction_model(settings.get<memory::MemorySettings>(),
                                                     *gateway, io, accountant.get(), clock);
    if (!extraction_model) return "memory.model: " + extraction_model.error().message;
    memory_model = std::move(*extraction_model);
    auto summarizer = summary::summary_model(settings.get<summary::SummarySettings>(), *gateway, io,
                                             accountant.get(), clock);
    if (!summarizer) return "summary.model: " + summarizer.error().message;
    summary_model = std::move(*summarizer);
    return std::nullopt;
  }

  void build_worker() {
    worker = std::make_unique<queue::Worker>(storage->jobs(), options, clock, &metrics, id);
    queue::add_builtin_jobs(*worker, *storage, clock, options, [this] {
      // Every replica re-reads its keys (without Redis, within auth.key_refresh_interval).
      if (redis) redis->command_detached({"PUBLISH", redis->key("keys"), "*"});
    });
    // No search index here: the serving replicas catch up from the change log.
    knowledge::add_knowledge_jobs(*worker, *storage, clock,
                                  settings.get<knowledge::KnowledgeSettings>(), *embedders, {},
                                  knowledge::book_embedding_usage(*accountant, clock));
    // The embedders were checked when they were built.
    (void)memory::add_memory_jobs(*worker, *storage, clock, settings.get<memory::MemorySettings>(),
                                  *embedders, settings.get<knowledge::KnowledgeSettings>().embedder,
                                  knowledge::book_embedding_usage(*accountant, clock),
                                  memory_model);
    summary::add_summary_jobs(*worker, *storage, clock, settings.get<summary::SummarySettings>(),
                              summary_model);
  }

  void add_routes() {
    auto alive = [](http::Request&) -> Task<http::Response> {
      co_return http::Response::json(200, {{"status", "alive"}, {"role", "worker"}});
    };
    router.add(http::Method::kGet, "/health", http::kPublic, alive);
    router.add(http::Method::kGet, "/api/v1/health/liveness", http::kPublic, alive);
    router.add(
        http::Method::kGet, "/api/v1/health/readiness", http::kPublic,
        [this](http::Request&) -> Task<http::Response> {
          json checks = json::object();
          auto ping = co_await blocking.run([this] { return storage->ping(); });
          checks["database"] = ping ? json{{"status", "ok"}}
                                    : json{{"status", "fail"}, {"error", ping.error().message}};
          if (redis) {
            checks["redis"] = redis->connected()
                                  ? json{{"status", "ok"}}
                                  : json{{"status", "fail"}, {"error", redis->last_error()}};
          }
          bool ready = true;
          for (const auto& [name, check] : checks.items()) {
            if (check["status"] == "fail") ready = false;
          }
          co_return http::Response::json(
              ready ? 200 : 503, {{"status", ready ? "ready" : "not_ready"}, {"checks", checks}});
        });
    router.add(http::Method::kGet, "/metrics", http::kPublic,
               [this](http::Request&) -> Task<http::Response> {
                 http::Response res;
                 res.content_type = "text/plain; version=0.0.4; charset=utf-8";
                 res.body = metrics.serialize();
                 co_return res;
               });
  }

  std::optional<std::string> listen() {
    server =
        std::make_unique<http::Server>(io, settings.get<http::ServerOptions>(), router, metrics);
    if (options.listen.empty()) return std::nullopt;
    auto address = parse_host_port(options.listen);
    if (!address) return "worker.listen is not HOST:PORT";
    auto port = server->listen(address->host, address->port);
    if (!port) return port.error().message;
    server->start();
    bound_host = address->host;
    bound_port = *port;
    return std::nullopt;
  }
};

}  // namespace

int run_worker(const config::Settings& settings,
               std::chrono::steady_clock::time_point process_started) {
  const auto& build = build_info();
  log::info("starting worker", {{"version", build.version},
                                {"commit", build.commit},
                                {"pid", static_cast<int64_t>(::getpid())}});
  WorkerProcess p(settings);
  auto failed = run_phases({
      {"storage", [&] { return p.open_storage(); }},
      {"redis", [&] { return p.connect_redis(); }},
      {"models", [&] { return p.build_models(); }},
      {"workers",
       [&] {
         p.build_worker();
         p.add_routes();
         return std::optional<std::string>();
       }},
      {"listen", [&] { return p.listen(); }},
  });
  if (failed) {
    if (p.storage) p.storage->close();
    return startup_failure(failed->phase, failed->cause);
  }
  if (p.redis) p.redis->start();
  p.worker->start();

  asio::signal_set signals(p.io.main(), SIGINT, SIGTERM);
  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::info("shutting down: running jobs finish, no new ones are taken", {{"signal", signo}});
    // A second signal exits at once; what a job had not finished is taken up again later.
    signals.async_wait([](const boost::system::error_code& again, int) {
      if (again) return;
      log::warn("second signal: exiting now");
      log::shutdown();
      std::_Exit(1);
    });
    // Off the event loop: waiting for running jobs must not stop the probes answering.
    stopper = std::thread([&] {
      p.worker->stop();
      asio::post(p.io.main(), [&] {
        signals.cancel();
        p.io.stop();
      });
    });
  });
  log::info("worker ready", {{"worker", p.id},
                             {"address", p.bound_host},
                             {"port", static_cast<int>(p.bound_port)},
                             {"concurrency", p.options.concurrency},
                             {"startup_ms", ms_since(process_started)}});
  log::flush();
  p.io.run();

  if (stopper.joinable()) stopper.join();
  p.worker->stop();
  p.accountant->stop();
  p.blocking.join();
  if (p.redis) p.redis->stop();
  p.storage->close();
  log::info("stopped", {{"uptime_seconds", ms_since(process_started) / 1000.0}});
  log::shutdown();
  return 0;
}

}  // namespace parley::app

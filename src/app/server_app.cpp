// `parley serve`: wiring and lifecycle. This is the only place that knows every component;
// everything else receives what it needs through api::Context or its constructor.
#include "app/server_app.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include "api/context.hpp"
#include "api/health.hpp"
#include "api/sessions.hpp"
#include "app/build_info.hpp"
#include "core/blocking_pool.hpp"
#include "core/io_pool.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace parley::app {
namespace {

namespace asio = boost::asio;

int default_threads(int configured, int minimum) {
  if (configured > 0) return configured;
  return std::max(minimum, static_cast<int>(std::thread::hardware_concurrency()));
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

Result<std::unique_ptr<store::Storage>> open_storage(const config::Config& config,
                                                     obs::Metrics* metrics) {
  auto path = config::sqlite_path(config);
  if (!path) {
    return Error::unavailable(
        "storage.url names a PostgreSQL database, and this build of Parley stores data in SQLite "
        "only; leave storage.url empty or use sqlite:PATH",
        "storage_unsupported");
  }
  store::sqlite::Options options;
  options.path = *path;
  options.read_connections = config.storage.read_connections;
  options.busy_timeout_ms = static_cast<int>(config.storage.busy_timeout.count());
  options.metrics = metrics;
  return store::sqlite::open(options);
}

}  // namespace

int startup_failure(std::string_view phase, std::string_view cause) {
  log::error("startup failed", {{"phase", phase}, {"error", cause}});
  log::shutdown();
  std::fprintf(stderr, "parley: startup failed in phase '%.*s': %.*s\n",
               static_cast<int>(phase.size()), phase.data(), static_cast<int>(cause.size()),
               cause.data());
  return 1;
}

int serve(const config::Config& config, std::chrono::steady_clock::time_point process_started) {
  const auto& build = build_info();
  log::info("starting", {{"version", build.version},
                         {"commit", build.commit},
                         {"pid", static_cast<int64_t>(::getpid())}});
  log::debug("configuration",
             {{"effective", config::to_json(config).dump(
                                -1, ' ', false, nlohmann::json::error_handler_t::replace)}});

  // Phase: storage.
  auto phase_started = std::chrono::steady_clock::now();
  obs::Metrics metrics(build);
  auto storage = open_storage(config, &metrics);
  if (!storage) return startup_failure("storage", storage.error().message);
  log::info("storage ready", {{"backend", "sqlite"}, {"duration_ms", ms_since(phase_started)}});

  // Phase: components.
  const int io_threads = default_threads(config.server.threads, 1);
  BlockingPool blocking(default_threads(config.server.blocking_threads, 2));
  http::Router router;
  IoPool io(io_threads);
  http::ServerOptions server_options;
  server_options.max_body_size = config.server.max_body_size;
  server_options.max_header_size = config.server.max_header_size;
  server_options.read_timeout = config.server.read_timeout;
  server_options.idle_timeout = config.server.idle_timeout;
  server_options.write_timeout = config.server.write_timeout;
  server_options.max_connections = config.server.max_connections;
  server_options.access_log = config.log.access_log;
  http::Server server(io, server_options, router, metrics);

  api::Context context{config,
                       **storage,
                       blocking,
                       metrics,
                       Clock::system(),
                       build,
                       process_started,
                       io_threads,
                       [&server] { return server.draining(); },
                       [&server] { return server.open_connections(); }};
  api::add_health_routes(router, context);
  api::add_session_routes(router, context);

  // Phase: listen.
  auto listen = config::parse_host_port(config.server.listen);
  if (!listen) return startup_failure("listen", "server.listen is not HOST:PORT");
  auto port = server.listen(listen->host, listen->port);
  if (!port) return startup_failure("listen", port.error().message);
  server.start();

  // Lifecycle: signals drain, the grace timer cancels, the last connection ends it.
  asio::signal_set signals(io.main(), SIGINT, SIGTERM);
  asio::steady_timer grace_timer(io.main());
  std::atomic<bool> finished{false};
  auto finish = [&] {
    if (finished.exchange(true)) return;
    asio::post(io.main(), [&] {
      grace_timer.cancel();
      signals.cancel();
      io.stop();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal;
  int signals_seen = 0;
  on_signal = [&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (++signals_seen > 1) {
      log::warn("second signal: exiting now", {{"signal", signo}});
      log::shutdown();
      std::_Exit(1);
    }
    log::info("shutting down",
              {{"signal", signo},
               {"grace_ms", static_cast<int64_t>(config.server.shutdown_grace.count())},
               {"connections_open", server.open_connections()}});
    signals.async_wait(on_signal);
    server.begin_drain(finish);
    grace_timer.expires_after(config.server.shutdown_grace);
    grace_timer.async_wait([&](const boost::system::error_code& timer_ec) {
      if (timer_ec || finished.load()) return;
      log::warn("grace period over: cancelling requests in progress",
                {{"connections_open", server.open_connections()}});
      server.cancel_all();
      // Cancelled connections finish within moments; if one is stuck in a storage call
      // past any reasonable bound, leave without waiting for it (acknowledged data is
      // already durable).
      grace_timer.expires_after(std::chrono::seconds(5));
      grace_timer.async_wait([&](const boost::system::error_code& again) {
        if (again || finished.load()) return;
        log::error("connections did not finish after cancellation; exiting",
                   {{"connections_open", server.open_connections()}});
        log::shutdown();
        std::_Exit(1);
      });
    });
  };
  signals.async_wait(on_signal);

  log::info("ready", {{"address", listen->host},
                      {"port", static_cast<int>(*port)},
                      {"startup_ms", ms_since(process_started)},
                      {"io_threads", io_threads},
                      {"blocking_threads", blocking.threads()},
                      {"data_dir", config.data_dir}});
  log::flush();

  io.run();

  blocking.join();
  (*storage)->close();
  log::info("stopped", {{"uptime_seconds", ms_since(process_started) / 1000.0}});
  log::shutdown();
  return 0;
}

}  // namespace parley::app

// Health and observability handlers.
#include "api/health.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "http/errors.hpp"
#include "http/server.hpp"
#include "llm/gateway.hpp"
#include "redis/client.hpp"
#include "store/settings.hpp"

namespace parley::api {
namespace {

using nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double round3(double v) { return static_cast<double>(std::llround(v * 1000.0)) / 1000.0; }

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

const HealthSettings& health(const Context& ctx) { return ctx.settings.get<HealthSettings>(); }

json disk_check(const Context& ctx) {
  struct statvfs st {};
  const auto& storage = ctx.settings.get<store::StorageSettings>();
  // The disk that matters is the one under the SQLite file; with PostgreSQL the database's
  // disk is the server's, and the data directory is only checked when there is one.
  auto sqlite_file = store::sqlite_path(storage);
  std::string dir = storage.data_dir;
  if (sqlite_file) {
    auto slash = sqlite_file->rfind('/');
    dir = slash == std::string::npos ? "." : sqlite_file->substr(0, std::max<size_t>(slash, 1));
  }
  if (::statvfs(dir.c_str(), &st) != 0) {
    if (!sqlite_file && errno == ENOENT) {
      return {{"status", "ok"}, {"detail", "no local data directory; the database is remote"}};
    }
    return {{"status", "fail"}, {"error", "cannot stat the data directory"}};
  }
  uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  bool ok = free_bytes >= health(ctx).min_free_disk;
  return {{"status", ok ? "ok" : "fail"},
          {"free_bytes", free_bytes},
          {"min_free_bytes", health(ctx).min_free_disk}};
}

json memory_check(const Context& ctx) {
  uint64_t rss = resident_bytes();
  uint64_t max = health(ctx).max_memory;
  bool ok = max == 0 || rss <= max;
  return {{"status", ok ? "ok" : "fail"}, {"resident_bytes", rss}, {"max_bytes", max}};
}

json build_json(const obs::BuildInfo& b) {
  return {{"version", b.version},
          {"commit", b.commit},
          {"compiler", b.compiler},
          {"build_type", b.build_type}};
}

// Circuit breakers of the providers: an open circuit is reported ("degraded") but does not
// fail readiness. The gateway falls back to other targets, and a replica taken out of the load
// balancer would not make the provider answer sooner.
json providers_check(const Context& ctx) {
  json circuits = json::array();
  bool any_open = false;
  for (const auto& b : ctx.gateway.breakers()) {
    const auto state = llm::to_string(b.state);
    any_open = any_open || b.state != llm::CircuitBreaker::State::kClosed;
    circuits.push_back({{"provider", b.provider}, {"model", b.model}, {"state", state}});
  }
  json names = json::array();
  for (const auto& p : ctx.gateway.providers()) names.push_back(p->name());
  return {{"status", any_open ? "degraded" : "ok"},
          {"configured", std::move(names)},
          {"default_route", ctx.gateway.default_route()},
          {"circuits", std::move(circuits)}};
}

}  // namespace

void add_health_routes(http::Router& router, Context& ctx) {
  // Probed constantly by load balancers: built without a JSON tree (the version string is
  // ours and needs no escaping).
  auto liveness = [&ctx](http::Request&) -> Task<http::Response> {
    char uptime[32];
    auto [end, ec] = std::to_chars(uptime, uptime + sizeof uptime, seconds_since(ctx.started_at),
                                   std::chars_format::fixed, 3);
    http::Response res;
    res.body.reserve(64 + ctx.build.version.size());
    res.body += R"({"status":"alive","version":")";
    res.body += ctx.build.version;
    res.body += R"(","uptime_seconds":)";
    res.body.append(uptime, ec == std::errc() ? end : uptime);
    res.body += '}';
    co_return res;
  };
  // Probes and metrics are public: they carry no user data, and probes have no credentials.
  router.add(http::Method::kGet, "/health", http::kPublic, liveness);
  router.add(http::Method::kGet, "/api/v1/health/liveness", http::kPublic, liveness);

  router.add(http::Method::kGet, "/api/v1/health/readiness", http::kPublic,
             [&ctx](http::Request&) -> Task<http::Response> {
               json checks = json::object();
               // The database check goes through the blocking pool like every query, so a
               // saturated pool shows up here as latency, as it would for real requests.
               auto t0 = std::chrono::steady_clock::now();
               auto ping = co_await ctx.blocking.run([&ctx] { return ctx.storage.ping(); });
               double latency_ms = seconds_since(t0) * 1000.0;
               if (ping) {
                 checks["database"] = {{"status", "ok"}, {"latency_ms", round3(latency_ms)}};
               } else {
                 checks["database"] = {{"status", "fail"},
                                       {"latency_ms", round3(latency_ms)},
                                       {"error", ping.error().message}};
               }
               if (ctx.redis) {
                 // Shared limits, leases and claims live there: without it requests get 503
                 // (or pass unlimited, with limits.on_backend_error: allow).
                 if (ctx.redis->connected()) {
                   checks["redis"] = {{"status", "ok"}};
                 } else {
                   checks["redis"] = {{"status", "fail"}, {"error", ctx.redis->last_error()}};
                 }
               }
               checks["disk"] = disk_check(ctx);
               checks["memory"] = memory_check(ctx);
               bool draining = ctx.draining();
               checks["draining"] = {{"status", draining ? "draining" : "ok"}};
               checks["providers"] = providers_check(ctx);
               for (const auto& [name, check] : ctx.readiness_checks) checks[name] = check();
               bool ready = !draining;
               for (const auto& [name, check] : checks.items()) {
                 if (check["status"] == "fail") ready = false;
               }
               co_return http::Response::json(
                   ready ? 200 : 503,
                   {{"status", ready ? "ready" : "not_ready"}, {"checks", checks}});
             });

  router.add(
      http::Method::kGet, "/api/v1/health/diagnostics", http::kAdminOnly,
      [&ctx](http::Request& req) -> Task<http::Response> {
        if (!health(ctx).diagnostics) {
          co_return http::error_response(404, "diagnostics_disabled",
                                         "diagnostics are disabled; set diagnostics.enabled: true",
                                         req.request_id);
        }
        auto stats = co_await ctx.blocking.run([&ctx] { return ctx.storage.stats(true); });
        json storage;
        if (stats) {
          storage = {{"backend", stats->backend},
                     {"location", stats->location},
                     {"size_bytes", stats->size_bytes},
                     {"wal_size_bytes", stats->wal_size_bytes},
                     {"schema_version", stats->schema_version},
                     {"integrity_check", stats->integrity_check.value_or("")},
                     {"read_connections", stats->read_connections}};
        } else {
          storage = {{"error", stats.error().message}};
        }
        json body = {
            {"build", build_json(ctx.build)},
            {"uptime_seconds", round3(seconds_since(ctx.started_at))},
            {"config", ctx.settings.to_json()},
            {"storage", storage},
            {"pools",
             {{"io_threads", ctx.io_threads},
              {"blocking_threads", ctx.blocking.threads()},
              {"blocking_queued", ctx.blocking.queued()},
              {"connections_open", ctx.open_connections()},
              {"connections_max", ctx.settings.get<http::ServerOptions>().max_connections}}},
            {"process",
             {{"pid", static_cast<int64_t>(::getpid())}, {"resident_bytes", resident_bytes()}}},
        };
        co_return http::Response::json(200, body);
      });

  router.add(http::Method::kGet, "/metrics", http::kPublic,
             [&ctx](http::Request&) -> Task<http::Response> {
               http::Response res;
               res.content_type = "text/plain; version=0.0.4; charset=utf-8";
               res.body = ctx.metrics.serialize();
               co_return res;
             });
}

}  // namespace parley::api

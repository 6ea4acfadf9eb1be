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

#include "api/access.hpp"
#include "api/admin.hpp"
#include "api/chat.hpp"
#include "api/context.hpp"
#include "api/health.hpp"
#include "api/openai_compat.hpp"
#include "api/sessions.hpp"
#include "app/build_info.hpp"
#include "auth/authenticator.hpp"
#include "chat/assistants.hpp"
#include "chat/pipeline.hpp"
#include "chat/stages.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/io_pool.hpp"
#include "http/client.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "idempotency/idempotency.hpp"
#include "limits/admission.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "llm/accounting.hpp"
#include "llm/anthropic/anthropic_provider.hpp"
#include "llm/builtin/builtin_provider.hpp"
#include "llm/gateway.hpp"
#include "llm/openai/openai_provider.hpp"
#include "llm/pricing.hpp"
#include "moderation/moderator.hpp"
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

llm::ProviderSettings provider_settings(const config::ProviderConfig& p) {
  llm::ProviderSettings s;
  s.name = p.name;
  s.type = p.type;
  s.base_url = p.base_url;
  s.api_key = p.api_key;
  s.models = p.models;
  s.default_model = p.default_model;
  s.embedding_model = p.embedding_model;
  s.headers = p.headers;
  s.proxy = p.proxy;
  s.ca_file = p.ca_file;
  s.stream_usage = p.stream_usage;
  s.default_max_tokens = p.max_tokens;
  return s;
}

// Providers from the configuration, plus the built-in one (always there: the default when
// nothing else is configured, and "builtin/" for anyone who asks).
std::vector<std::unique_ptr<llm::Provider>> make_providers(const config::Config& config,
                                                           http::HttpClient& client) {
  std::vector<std::unique_ptr<llm::Provider>> out;
  for (const auto& p : config.llm.providers) {
    if (p.type == "anthropic") {
      out.push_back(llm::make_anthropic_provider(provider_settings(p), client));
    } else if (p.type == "builtin") {
      out.push_back(llm::make_builtin_provider(p.name));
    } else {
      out.push_back(llm::make_openai_provider(provider_settings(p), client));
    }
  }
  const bool has_builtin =
      std::any_of(out.begin(), out.end(), [](const auto& p) { return p->name() == "builtin"; });
  if (!has_builtin) out.push_back(llm::make_builtin_provider("builtin"));
  return out;
}

llm::Provider* find_provider(const std::vector<std::unique_ptr<llm::Provider>>& providers,
                             std::string_view name) {
  for (const auto& p : providers) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

// "provider/model" or "provider" as a target; nullopt when the provider does not exist.
std::optional<llm::Target> parse_target(
    const std::vector<std::unique_ptr<llm::Provider>>& providers, const std::string& text) {
  const auto slash = text.find('/');
  llm::Provider* p = find_provider(providers, text.substr(0, slash));
  if (!p) return std::nullopt;
  std::string model = slash == std::string::npos ? std::string() : text.substr(slash + 1);
  if (model.empty()) model = p->default_model();
  return llm::Target{p, model};
}

// The configured routes, and the name of the default one ("default" unless
// llm.default_model names a route).
std::pair<std::map<std::string, llm::Route>, std::string> make_routes(
    const config::Config& config, const std::vector<std::unique_ptr<llm::Provider>>& providers) {
  std::map<std::string, llm::Route> routes;
  for (const auto& r : config.llm.routes) {
    llm::Route route;
    route.name = r.name;
    route.strategy = r.strategy;
    route.complexity_threshold = r.complexity_threshold;
    route.daily_budget_usd = r.daily_budget_usd;
    for (const auto& t : r.targets) {
      if (auto target = parse_target(providers, t)) route.targets.push_back(*target);
    }
    routes[r.name] = std::move(route);
  }
  const std::string& wanted = config.llm.default_model;
  if (!wanted.empty() && routes.count(wanted)) return {std::move(routes), wanted};
  llm::Route def;
  def.name = "default";
  if (!wanted.empty()) {
    if (auto target = parse_target(providers, wanted);
        target && wanted.find('/') != std::string::npos) {
      def.targets.push_back(*target);
    } else {
      // A bare model: the first configured provider that lists it, else the first provider.
      llm::Provider* chosen = providers.front().get();
      for (const auto& p : providers) {
        const auto& listed = p->models();
        if (std::find(listed.begin(), listed.end(), wanted) != listed.end()) {
          chosen = p.get();
          break;
        }
      }
      def.targets.push_back({chosen, wanted});
    }
  } else {
    // The first configured provider; the built-in one (last) when there is none.
    def.targets.push_back({providers.front().get(), providers.front()->default_model()});
  }
  routes["default"] = std::move(def);
  return {std::move(routes), "default"};
}

// Sent on every response unless it sets its own: an API answers JSON and event streams, which
// no browser should sniff, frame, cache or follow with a referrer.
http::HeaderList security_headers(const config::Config& config) {
  http::HeaderList h = {{"X-Content-Type-Options", "nosniff"},
                        {"X-Frame-Options", "DENY"},
                        {"Referrer-Policy", "no-referrer"},
                        {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
                        {"Cross-Origin-Resource-Policy", "same-site"},
                        {"Cache-Control", "no-store"}};
  if (config.server.hsts_max_age > 0) {
    h.emplace_back("Strict-Transport-Security",
                   "max-age=" + std::to_string(config.server.hsts_max_age) + "; includeSubDomains");
  }
  return h;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
}

limits::Limits to_limits(const config::LimitConfig& c) {
  limits::Limits l;
  l.requests_per_minute = c.requests_per_minute;
  l.requests_per_hour = c.requests_per_hour;
  l.burst = c.burst;
  l.tokens_per_minute = c.tokens_per_minute;
  l.concurrent_streams = c.concurrent_streams;
  l.usd_per_day = c.usd_per_day;
  l.usd_per_month = c.usd_per_month;
  return l;
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

int serve(const config::Config& config, std::chrono::steady_clock::time_point process_started,
          const ServeFlags& flags) {
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
  server_options.default_headers = security_headers(config);
  server_options.cors_origins = split_list(config.server.cors_origins);
  http::Server server(io, server_options, router, metrics);

  // The model layer. Declared after the I/O pool: transfers and the client end before it.
  const llm::ModelTable model_table(config.llm.models);
  llm::Accountant accountant(model_table, &metrics, storage->get(),
                             config.llm.usage_flush_interval);
  http::HttpClient http_client(io);
  auto providers = make_providers(config, http_client);
  auto [routes, default_route] = make_routes(config, providers);
  llm::GatewayOptions gateway_options;
  gateway_options.max_retries = config.llm.max_retries;
  gateway_options.backoff_base = config.llm.retry_backoff;
  gateway_options.backoff_max = config.llm.retry_backoff_max;
  gateway_options.max_retry_after = config.llm.max_retry_after;
  gateway_options.breaker_failures = config.llm.breaker_failures;
  gateway_options.breaker_cooldown = config.llm.breaker_cooldown;
  gateway_options.limits.connect_timeout = config.llm.connect_timeout;
  gateway_options.limits.first_token_timeout = config.llm.first_token_timeout;
  gateway_options.limits.stall_timeout = config.llm.stall_timeout;
  gateway_options.limits.total_timeout = config.llm.total_timeout;
  llm::Gateway gateway(std::move(providers), std::move(routes), default_route, gateway_options,
                       accountant.observer());
  const chat::Assistants assistants(config.chat);
  // Content moderation; the rules compiled when the configuration was checked.
  auto rules = moderation::RuleSet::compile(config::moderation_policy(config.moderation));
  if (!rules) return startup_failure("components", rules.error().message);
  moderation::ProviderCheck moderation_provider;
  if (const auto& mp = config.moderation.provider; !mp.name.empty()) {
    llm::Provider* provider = gateway.provider(mp.name);
    if (!provider || !provider->supports_moderation()) {
      return startup_failure("components", "moderation.provider.name: provider '" + mp.name +
                                               "' has no moderation endpoint");
    }
    moderation_provider.provider = provider;
    moderation_provider.model = mp.model;
    moderation_provider.input = mp.input;
    moderation_provider.output = mp.output;
    moderation_provider.block = mp.action == "block";
    moderation_provider.fail_closed = mp.on_error == "block";
    moderation_provider.limits.connect_timeout = std::min(config.llm.connect_timeout, mp.timeout);
    moderation_provider.limits.first_token_timeout = mp.timeout;
    moderation_provider.limits.total_timeout = mp.timeout;
  }
  moderation::Moderator moderator(*rules, config.moderation.configured(),
                                  &(*storage)->moderation_log(), &metrics,
                                  std::move(moderation_provider));
  auto recovered = (*storage)->messages().mark_interrupted();
  if (!recovered) return startup_failure("storage", recovered.error().message);
  if (*recovered > 0) {
    log::warn("replies left unfinished by the last run were marked interrupted",
              {{"messages", *recovered}});
  }
  {
    std::vector<std::string> names;
    for (const auto& p : gateway.providers()) names.push_back(p->name() + " (" + p->type() + ")");
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    const auto& def = gateway.routes().at(gateway.default_route());
    log::info("providers ready",
              {{"providers", list},
               {"default_route", gateway.default_route()},
               {"default_target", def.targets.empty() ? std::string()
                                                      : def.targets.front().provider->name() + "/" +
                                                            def.targets.front().model}});
  }

  // Phase: access. Keys, limits and idempotency around every route.
  const Clock& clock = Clock::system();
  auth::AuthOptions auth_options;
  auth_options.bootstrap_admin_key = config.admin_key;
  auth_options.jwt_secret = config.auth.jwt_secret;
  auth_options.jwt_issuer = config.auth.jwt_issuer;
  auth_options.jwt_audience = config.auth.jwt_audience;
  auth_options.key_refresh_interval_ms = config.auth.key_refresh_interval.count();
  auth::Authenticator authenticator((*storage)->api_keys(), auth_options);
  const int64_t now_ms = to_unix_ms(clock.now());
  if (auto r = authenticator.load(now_ms); !r) return startup_failure("access", r.error().message);
  auto limiter = limits::make_local_limiter();
  limits::BudgetBook budgets((*storage)->usage());
  limits::Admission admission(*limiter, budgets, blocking, clock, &metrics);
  idempotency::LocalOptions idempotency_options;
  idempotency_options.ttl_ms = config.idempotency.ttl.count();
  idempotency_options.metrics = &metrics;
  idempotency::LocalIdempotency idempotency((*storage)->idempotency(), idempotency_options);
  if (auto r = idempotency.start(now_ms); !r) return startup_failure("access", r.error().message);
  api::AccessOptions access_options;
  access_options.key_limits = to_limits(config.limits.key);
  access_options.user_limits = to_limits(config.limits.user);
  access_options.insecure_no_auth = flags.insecure_no_auth;
  access_options.idempotency_max_response_bytes = config.idempotency.max_response_size;
  api::Access access(authenticator, *limiter, idempotency, blocking, clock, access_options,
                     &metrics);

  // The chat pipeline: every way in to a model runs these stages.
  chat::ChatDeps chat_deps{**storage,
                           blocking,
                           gateway,
                           accountant,
                           assistants,
                           admission,
                           moderator,
                           clock,
                           &metrics,
                           config.chat.default_context_window,
                           [&server] { return server.draining(); }};
  chat::Pipeline pipeline(chat_deps);
  chat::stages::add_builtin_stages(pipeline, chat_deps);

  api::Context context{config,
                       **storage,
                       blocking,
                       metrics,
                       clock,
                       build,
                       process_started,
                       io_threads,
                       [&server] { return server.draining(); },
                       [&server] { return server.open_connections(); },
                       pipeline,
                       chat_deps,
                       assistants,
                       gateway,
                       accountant,
                       moderator,
                       admission,
                       access};
  api::add_health_routes(router, context);
  api::add_session_routes(router, context);
  api::add_chat_routes(router, context);
  api::add_openai_routes(router, context);
  api::add_admin_routes(router, context);
  api::add_user_data_routes(router, context);
  access.protect(router);

  // Phase: listen.
  auto listen = config::parse_host_port(config.server.listen);
  if (!listen) return startup_failure("listen", "server.listen is not HOST:PORT");
  // Protected mode, as Redis does it: without credentials, only this machine may connect.
  if (!authenticator.enforcing() && !is_loopback_host(listen->host)) {
    if (!flags.insecure_no_auth) {
      return startup_failure(
          "listen",
          "no API key is configured, so Parley serves only loopback addresses, and "
          "server.listen is " +
              config.server.listen +
              ". Create a key (`parley keys create --scope admin`), or set PARLEY_ADMIN_KEY, "
              "or listen on 127.0.0.1, or pass --insecure-no-auth if every client on this "
              "network may act as an admin");
    }
    log::warn(
        "serving without authentication on a non-loopback address (--insecure-no-auth): "
        "anyone who can connect is an admin",
        {{"listen", config.server.listen}});
  } else if (!authenticator.enforcing()) {
    log::info("no API key configured: serving this machine only (protected mode)",
              {{"listen", config.server.listen}});
  }
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
  accountant.stop();   // writes the usage still queued
  idempotency.stop();  // and the stored answers
  moderator.stop();    // and the moderation log
  (*storage)->close();
  log::info("stopped", {{"uptime_seconds", ms_since(process_started) / 1000.0}});
  log::shutdown();
  return 0;
}

}  // namespace parley::app

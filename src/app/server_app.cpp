// `parley serve`: composition and lifecycle (see server_app.hpp). Each module builds its
// components from its own settings (settings.get<T>()); nothing here copies a setting into
// another struct.
#include "app/server_app.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <unistd.h>
#include <atomic>
#include <csignal>

#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/admin.hpp"
#include "api/anthropic_messages.hpp"
#include "api/chat.hpp"
#include "api/context.hpp"
#include "api/health.hpp"
#include "api/identity.hpp"
#include "api/knowledge.hpp"
#include "api/mem0.hpp"
#include "api/memories.hpp"
#include "api/openai_compat.hpp"
#include "api/openai_knowledge.hpp"
#include "api/sessions.hpp"
#include "app/build_info.hpp"
#include "app/settings.hpp"
#include "auth/authenticator.hpp"
#include "cache/response_cache.hpp"
#include "cache/settings.hpp"
#include "cache/store.hpp"
#include "channels/telegram/channel.hpp"
#include "channels/web/routes.hpp"
#include "chat/assistants.hpp"
#include "chat/pipeline.hpp"
#include "chat/stages.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/io_pool.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "idempotency/idempotency.hpp"
#include "idempotency/shared_idempotency.hpp"
#include "intent/classify_stage.hpp"
#include "intent/settings.hpp"
#include "jobs/job_pool.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/ingest.hpp"
#include "knowledge/retrieve.hpp"
#include "knowledge/settings.hpp"
#include "limits/admission.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "limits/redis_limiter.hpp"
#include "limits/settings.hpp"
#include "llm/accounting.hpp"
#include "llm/settings.hpp"
#include "memory/follow_ups.hpp"
#include "memory/jobs.hpp"
#include "memory/recall.hpp"
#include "memory/recall_index.hpp"
#include "memory/settings.hpp"
#include "moderation/settings.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "queue/builtin_jobs.hpp"
#include "queue/settings.hpp"
#include "queue/worker.hpp"
#include "redis/client.hpp"
#include "store/settings.hpp"
#include "summary/plan.hpp"
#include "summary/settings.hpp"
#include "summary/summarize.hpp"

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

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
}

}  // namespace

// Every component, declared in the order it is built: members are destroyed in reverse, so a
// component never outlives what it uses.
struct ServerApp::Parts {
  const config::Settings& settings;
  const ServeFlags flags;
  const std::chrono::steady_clock::time_point process_started;
  const ProcessSettings& process = settings.get<ProcessSettings>();
  const Clock& clock = Clock::system();
  obs::Metrics metrics{build_info()};
  // What must be stopped at shutdown, in the order it was started; stopped in reverse.
  std::vector<std::pair<const char*, std::function<void()>>> started;

  // storage
  std::unique_ptr<store::Storage> storage;
  store::ReplicaInfo replica;  // this process, as the other replicas see it
  // the server core
  int io_threads = default_threads(process.threads, 1);
  BlockingPool blocking{default_threads(process.blocking_threads, 2)};
  http::Router router;
  IoPool io{io_threads};
  // shared state between replicas (redis.url); null: kept in this process
  std::unique_ptr<redis::Client> redis;
  std::unique_ptr<http::Server> server;
  std::string bound_host;
  uint16_t bound_port = 0;
  // models (after the I/O pool: transfers and the client end before it)
  std::unique_ptr<llm::ModelTable> model_table;
  std::unique_ptr<llm::Accountant> accountant;
  std::unique_ptr<http::HttpClient> http_client;
  std::unique_ptr<llm::Gateway> gateway;
  std::unique_ptr<chat::Assistants> assistants;
  std::unique_ptr<moderation::Moderator> moderator;
  // access
  std::unique_ptr<auth::Authenticator> authenticator;
  std::unique_ptr<limits::RateLimiter> limiter;
  std::unique_ptr<limits::Budgets> budgets;
  std::unique_ptr<limits::Admission> admission;
  std::unique_ptr<idempotency::IdempotencyStore> idempotency;
  std::unique_ptr<api::Access> access;
  // background jobs (ingestion, embeddings, extraction: the next modules' long work)
  std::unique_ptr<jobs::JobPool> jobs;
  // durable jobs from the database's queue, when this process runs them (worker.in_serve)
  std::unique_ptr<queue::Worker> worker;
  // knowledge bases: the search indexes derived from the database, and the embedders
  std::unique_ptr<knowledge::IndexManager> knowledge_index;
  std::unique_ptr<knowledge::Embedders> embedders;
  // long-term memory: the recall index derived from the database
  std::unique_ptr<memory::RecallIndex> recall_index;
  // The model that extracts memories; empty: the built-in rules (memory/jobs.hpp).
  llm::CompleteFn memory_model;
  // The model that writes session summaries; empty: extractive (summary/summarize.hpp).
  llm::CompleteFn summary_model;
  // response caches (in Redis when configured)
  std::unique_ptr<cache::CacheStore> cache_store;
  // pipeline
  std::unique_ptr<chat::ChatDeps> chat_deps;
  std::unique_ptr<chat::Pipeline> pipeline;
  // routes
  std::unique_ptr<api::Context> context;
  // channels for people (the web chat needs no state of its own)
  std::unique_ptr<channels::telegram::TelegramChannel> telegram;

  Parts(const config::Settings& s, ServeFlags f, std::chrono::steady_clock::time_point t)
      : settings(s), flags(f), process_started(t) {}

  void on_stop(const char* name, std::function<void()> stop) {
    started.emplace_back(name, std::move(stop));
  }

  std::optional<std::string> open_storage() {
    const auto& storage_settings = settings.get<store::StorageSettings>();
    store::OpenOptions options;
    options.metrics = &metrics;
    auto opened = store::open(storage_settings, options);
    if (!opened) return opened.error().message;
    storage = std::move(*opened);
    on_stop("storage", [this] { storage->close(); });
    // This process among the replicas; then what dead ones left pending is finished. On SQLite
    // (one process) every other owner is a previous run; on a shared database only those
    // silent for storage.replica_timeout.
    const int64_t now = to_unix_ms(clock.now());
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    replica = store::ReplicaInfo{new_resource_id("rep"), host, static_cast<int64_t>(::getpid()),
                                 now, now};
    if (auto r = storage->replicas().heartbeat(replica); !r) return r.error().message;
    on_stop("replica record", [this] { (void)storage->replicas().remove(replica.id); });
    const bool shared = store::backend_of(storage_settings) != store::Backend::kSqlite;
    const int64_t stale_before =
        shared ? now - storage_settings.replica_timeout.count() : INT64_MAX;
    auto recovered = storage->replicas().interrupt_orphans(replica.id, stale_before, now);
    if (!recovered) return recovered.error().message;
    if (*recovered > 0) {
      log::warn("replies left unfinished by a stopped process were marked interrupted",
                {{"messages", *recovered}});
    }
    return std::nullopt;
  }

  // Fails the phase with one line when Redis is configured but cannot be reached (or refuses
  // the credentials); the connections themselves open once the event loops run.
  std::optional<std::string> connect_redis() {
    auto connected = redis::connect_configured(io, settings.get<redis::RedisSettings>(), &metrics);
    if (!connected) return connected.error().message;
    redis = std::move(*connected);
    if (redis) on_stop("redis", [this] { redis->stop(); });
    return std::nullopt;
  }

  std::optional<std::string> build_models() {
    server =
        std::make_unique<http::Server>(io, settings.get<http::ServerOptions>(), router, metrics);
    const auto& llm_settings = settings.get<llm::LlmSettings>();
    model_table = std::make_unique<llm::ModelTable>(llm_settings.models);
    accountant = std::make_unique<llm::Accountant>(*model_table, &metrics, storage.get(),
                                                   llm_settings.usage_flush_interval);
    on_stop("usage accounting", [this] { accountant->stop(); });
    http_client = std::make_unique<http::HttpClient>(io);
    gateway = llm::make_gateway(llm_settings, *http_client, accountant->observer());
    assistants = std::make_unique<chat::Assistants>(settings.get<chat::ChatSettings>());
    auto made =
        moderation::make_moderator(settings, *gateway, &storage->moderation_log(), &metrics);
    if (!made) return made.error().message;
    moderator = std::move(*made);
    on_stop("moderation log", [this] { moderator->stop(); });
    const auto& knowledge_settings = settings.get<knowledge::KnowledgeSettings>();
    embedders =
        std::make_unique<knowledge::Embedders>(knowledge_settings, gateway.get(), &io, clock);
    if (auto known = embedders->canonical(knowledge_settings.embedder, "knowledge.embedder");
        !known) {
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

    std::string list;
    for (const auto& p : gateway->providers()) {
      list += (list.empty() ? "" : ", ") + p->name() + " (" + p->type() + ")";
    }
    const auto& def = gateway->routes().at(gateway->default_route());
    log::info("providers ready",
              {{"providers", list},
               {"default_route", gateway->default_route()},
               {"default_target", def.targets.empty() ? std::string()
                                                      : def.targets.front().provider->name() + "/" +
                                                            def.targets.front().model}});
    return std::nullopt;
  }

  std::optional<std::string> build_access() {
    authenticator = std::make_unique<auth::Authenticator>(storage->api_keys(),
                                                          settings.get<auth::AuthOptions>());
    const int64_t now_ms = to_unix_ms(clock.now());
    if (auto r = authenticator->load(now_ms); !r) return r.error().message;
    limiter = redis ? limits::make_redis_limiter(
                          *redis, settings.get<limits::LimitSettings>().stream_lease.count())
                    : limits::make_local_limiter();
    budgets = redis ? limits::make_redis_budgets(*redis, storage->usage(), blocking)
                    : limits::make_local_budgets(storage->usage(), blocking);
    admission = std::make_unique<limits::Admission>(
        *limiter, *budgets, clock, &metrics,
        settings.get<limits::LimitSettings>().allow_on_backend_error());
    auto idempotency_options = settings.get<idempotency::LocalOptions>();
    idempotency_options.metrics = &metrics;
    idempotency_options.clock = &clock;
    if (redis) {
      auto shared = std::make_unique<idempotency::SharedIdempotency>(*redis, storage->idempotency(),
                                                                     blocking, idempotency_options);
      shared->start();
      on_stop("idempotency answers", [store = shared.get()] { store->stop(); });
      idempotency = std::move(shared);
    } else {
      auto local = std::make_unique<idempotency::LocalIdempotency>(storage->idempotency(),
                                                                   idempotency_options);
      if (auto r = local->start(now_ms); !r) return r.error().message;
      on_stop("idempotency answers", [store = local.get()] { store->stop(); });
      idempotency = std::move(local);
    }
    access = std::make_unique<api::Access>(*authenticator, *limiter, *idempotency, blocking, clock,
                                           settings.get<limits::LimitSettings>(),
                                           flags.insecure_no_auth, &metrics);
    if (redis) share_key_changes();
    return std::nullopt;
  }

  // A key revoked or changed on one replica is re-read by every other within a second: the
  // admin API publishes its id, each replica re-reads that key (or, after a reconnect, when
  // messages may have been missed, every key).
  void share_key_changes() {
    const std::string channel = redis->key("keys");
    access->on_key_change([this, channel](const std::string& key_id) {
      redis->command_detached({"PUBLISH", channel, key_id});
    });
    redis->subscribe(
        channel, [this](std::string_view key_id) { reread_key(std::string(key_id)); },
        [this] { reread_key("*"); });
  }

  void reread_key(std::string key_id) {
    asio::co_spawn(
        io.main(),
        [this, key_id = std::move(key_id)]() -> Task<void> {
          auto r = co_await blocking.run([&] {
            return key_id == "*" ? authenticator->load(to_unix_ms(clock.now()))
                                 : authenticator->fetch(key_id);
          });
          if (!r)
            log::warn("a changed API key could not be re-read", {{"error", r.error().message}});
        },
        asio::detached);
  }

  // Every quarter of storage.replica_timeout: this replica is alive, and the replies of any
  // that is not are marked interrupted.
  void start_heartbeat() {
    const auto timeout = settings.get<store::StorageSettings>().replica_timeout;
    asio::co_spawn(
        io.main(),
        [this, timeout]() -> Task<void> {
          asio::steady_timer timer(io.main());
          for (;;) {
            timer.expires_after(timeout / 4);
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(use_task, ec));
            if (ec) co_return;
            const int64_t now = to_unix_ms(clock.now());
            auto beat = co_await blocking.run([this, now, timeout]() -> Result<int64_t> {
              replica.seen_at_ms = now;
              if (auto r = storage->replicas().heartbeat(replica); !r) return std::move(r).error();
              return storage->replicas().interrupt_orphans(replica.id, now - timeout.count(), now);
            });
            if (!beat) {
              log::warn("replica heartbeat failed", {{"error", beat.error().message}});
            } else if (*beat > 0) {
              log::warn("replies left unfinished by a replica that stopped were marked interrupted",
                        {{"messages", *beat}});
            }
          }
        },
        asio::detached);
  }

  void start_jobs() {
    auto options = settings.get<jobs::JobPoolOptions>();
    options.on_outcome = [this](std::string_view outcome) { metrics.count_job(outcome); };
    jobs = std::make_unique<jobs::JobPool>(std::move(options));
    on_stop("background jobs", [this] { jobs->stop(); });
  }

  // On SQLite one process is the whole installation, so it runs the jobs; on PostgreSQL
  // `parley worker` processes do, unless worker.in_serve says otherwise. Built here, started
  // at listen(), once Redis runs (a job's key news goes through it).
  // The search indexes: loaded from <data_dir>/knowledge-index and caught up before serving;
  // or, when they must be rebuilt from the database, rebuilt while the server serves.
  std::optional<std::string> open_knowledge() {
    knowledge::IndexOptions options;
    options.directory = settings.get<store::StorageSettings>().data_dir + "/knowledge-index";
    options.rebuild_in_background = true;
    knowledge_index = std::make_unique<knowledge::IndexManager>(storage->knowledge(), options);
    if (auto r = knowledge_index->start(); !r) return r.error().message;
    on_stop("knowledge indexes", [this] { knowledge_index->stop(); });
    return std::nullopt;
  }

  void build_workers() {
    const auto& options = settings.get<queue::WorkerSettings>();
    const bool sqlite =
        store::backend_of(settings.get<store::StorageSettings>()) == store::Backend::kSqlite;
    if (!queue::runs_in_serve(options, sqlite)) {
      log::info("background jobs are left to `parley worker` processes",
                {{"worker.in_serve", options.in_serve}});
      return;
    }
    worker = std::make_unique<queue::Worker>(storage->jobs(), options, clock, &metrics, replica.id);
    queue::add_builtin_jobs(*worker, *storage, clock, options, [this] {
      // An erased user's keys are revoked: this replica's cache drops them now, the others
      // through the broadcast.
      (void)authenticator->load(to_unix_ms(clock.now()));
      access->key_changed("*");
    });
    knowledge::add_knowledge_jobs(
        *worker, *storage, clock, settings.get<knowledge::KnowledgeSettings>(), *embedders,
        [this] { knowledge_index->nudge(); }, knowledge::book_embedding_usage(*accountant, clock));
    // The embedders were checked when they were built.
    (void)memory::add_memory_jobs(*worker, *storage, clock, settings.get<memory::MemorySettings>(),
                                  *embedders, settings.get<knowledge::KnowledgeSettings>().embedder,
                                  knowledge::book_embedding_usage(*accountant, clock),
                                  memory_model);
    summary::add_summary_jobs(*worker, *storage, clock, settings.get<summary::SummarySettings>(),
                              summary_model);
    on_stop("workers", [this] { worker->stop(); });
  }

  // The canonical name of what embeds memories (memory.embedder, else knowledge.embedder;
  // both checked when the embedders were built).
  std::string memory_embedder() const {
    const auto& named = settings.get<memory::MemorySettings>().embedder;
    auto canonical = embedders->canonical(
        named.empty() ? settings.get<knowledge::KnowledgeSettings>().embedder : named);
    return canonical ? *canonical : std::string();
  }

  std::optional<std::string> build_pipeline() {
    chat_deps.reset(new chat::ChatDeps{*storage, blocking, *gateway, *accountant, *assistants,
                                       *admission, *moderator, clock, &metrics,
                                       settings.get<chat::ChatSettings>().default_context_window,
                                       [this] { return server->draining(); }, replica.id});
    pipeline = std::make_unique<chat::Pipeline>(*chat_deps);
    // The stages, in order: the built-in ones, then each feature's at its place.
    chat::stages::add_builtin_stages(*pipeline, *chat_deps);
    const knowledge::RetrieveDeps retrieve{
        *storage, blocking, *knowledge_index, *embedders,
        settings.get<knowledge::KnowledgeSettings>().search_beam};
    pipeline->insert_before("open_session", knowledge::check_knowledge_stage(retrieve));
    pipeline->insert_before("build_prompt", knowledge::retrieve_stage(retrieve));
    const auto& memory_settings = settings.get<memory::MemorySettings>();
    // Built from the database in the background; recall reads the database until it is.
    recall_index = std::make_unique<memory::RecallIndex>(
        storage->memories(), memory::RecallIndexOptions{.embedder = memory_embedder()});
    if (auto r = recall_index->start(); !r) return r.error().message;
    on_stop("memory recall index", [this] { recall_index->stop(); });
    pipeline->insert_before("build_prompt",
                            memory::recall_stage({*storage, blocking, embedders.get(),
                                                  memory_embedder(), clock, recall_index.get()}));
    pipeline->insert_before(
        "persist", memory::plan_follow_ups_stage(memory_settings, static_cast<bool>(memory_model)));
    pipeline->insert_before("persist",
                            summary::plan_summary_stage(settings.get<summary::SummarySettings>()));
    // The intents name assistants and models that must exist.
    auto classify = intent::classify_stage(settings.get<intent::IntentSettings>(), *chat_deps);
    if (!classify) return classify.error().message;
    pipeline->insert_before("retrieve", std::move(*classify));
    add_cache_stages();
    return std::nullopt;
  }

  // The exact and semantic response caches around generation (cache/response_cache.hpp).
  void add_cache_stages() {
    const auto& cache_settings = settings.get<cache::CacheSettings>();
    if (!cache_settings.exact.enabled && !cache_settings.semantic.enabled) return;
    cache_store = redis ? cache::make_redis_store(*redis, clock)
                        : cache::make_local_store(cache_settings.exact.max_entries,
                                                  cache_settings.semantic.max_entries, clock);
    const std::string& named = cache_settings.semantic.embedder.empty()
                                   ? settings.get<knowledge::KnowledgeSettings>().embedder
                                   : cache_settings.semantic.embedder;
    auto embedder = embedders->canonical(named, "cache.semantic.embedder");
    auto stages = cache::make_cache_stages(
        {cache_settings, *cache_store, embedder ? embedders.get() : nullptr,
         embedder ? *embedder : std::string(), clock, &metrics,
         [this](const std::string& model, int64_t input_tokens, int64_t output_tokens) {
           return accountant->models().cost(model, input_tokens, output_tokens);
         }});
    pipeline->insert_before("generate", std::move(stages.lookup));
    pipeline->insert_before("account", std::move(stages.store));
  }

  void add_routes() {
    context.reset(new api::Context{
        settings, *storage, blocking, metrics, clock, build_info(), process_started, io_threads,
        [this] { return server->draining(); }, [this] { return server->open_connections(); },
        *pipeline, *chat_deps, *assistants, *gateway, *accountant, *moderator, *admission, *jobs,
        *access});
    context->redis = redis.get();
    context->worker = worker.get();
    // The guard first: every route, registered now or later, is behind it from the moment it
    // exists. Each module registers its routes with their access policies.
    access->protect(router);
    api::add_health_routes(router, *context);
    api::add_session_routes(router, *context);
    api::add_chat_routes(router, *context);
    api::add_openai_routes(router, *context);
    api::add_anthropic_routes(router, *context);
    api::add_admin_routes(router, *context);
    api::add_user_data_routes(router, *context);
    api::add_knowledge_routes(router, *context, settings.get<knowledge::KnowledgeSettings>(),
                              *knowledge_index, *embedders);
    api::add_openai_knowledge_routes(router, *context, settings.get<knowledge::KnowledgeSettings>(),
                                     *knowledge_index, *embedders);
    api::add_memory_routes(router, *context, settings.get<memory::MemorySettings>(), *embedders,
                           memory_embedder());
    api::add_mem0_routes(router, *context, settings.get<memory::MemorySettings>(), *embedders,
                         memory_embedder());
    api::add_identity_routes(router, *context);
    channels::web::add_web_routes(router, settings.get<channels::web::WebSettings>());
    if (telegram) telegram->add_routes(router);
  }

  // The Telegram bot, when a token is set: its updates are jobs, so this process must run them.
  std::optional<std::string> build_channels() {
    const auto& tg = settings.get<channels::telegram::TelegramSettings>();
    if (!tg.enabled()) return std::nullopt;
    if (!worker) {
      return std::string(
          "the Telegram channel runs its updates as jobs in the serving process, and this one "
          "runs none; set worker.in_serve: on");
    }
    if (!tg.assistant.empty() && assistants->find(tg.assistant) == nullptr) {
      return "telegram.assistant names no assistant: '" + tg.assistant + "'";
    }
    telegram =
        std::make_unique<channels::telegram::TelegramChannel>(channels::telegram::ChannelDeps{
            tg, *storage, blocking, *pipeline, *assistants, io, *http_client, clock,
            settings.get<limits::LimitSettings>().user, [this] { worker->wake(); }});
    telegram->add_jobs(*worker);
    on_stop("telegram", [this] { telegram->stop(); });
    // Each turn holds a worker while it streams into Telegram; a handful answer a handful of
    // chats at once, and every other job waits behind them.
    if (const int workers = settings.get<queue::WorkerSettings>().concurrency; workers < 8) {
      log::warn(
          "the Telegram bot answers as many chats at once as there are job workers; "
          "raise worker.concurrency for a busy bot",
          {{"worker.concurrency", workers}});
    }
    return std::nullopt;
  }

  void stop_all() {
    while (!started.empty()) {
      log::debug("stopping", {{"component", started.back().first}});
      started.back().second();
      started.pop_back();
    }
  }
};

ServerApp::ServerApp(const config::Settings& settings, ServeFlags flags,
                     std::chrono::steady_clock::time_point process_started)
    : parts_(std::make_unique<Parts>(settings, flags, process_started)) {}

ServerApp::~ServerApp() {
  parts_->blocking.join();
  parts_->stop_all();
}

const http::Router& ServerApp::router() const { return parts_->router; }

std::optional<StartupError> ServerApp::compose() {
  Parts& p = *parts_;
  return run_phases({
      {"storage", [&] { return p.open_storage(); }},
      {"redis", [&] { return p.connect_redis(); }},
      {"knowledge", [&] { return p.open_knowledge(); }},
      {"models", [&] { return p.build_models(); }},
      {"access", [&] { return p.build_access(); }},
      {"pipeline",
       [&] {
         p.start_jobs();
         p.build_workers();
         return p.build_pipeline();
       }},
      {"channels", [&] { return p.build_channels(); }},
      {"routes",
       [&] {
         p.add_routes();
         return std::optional<std::string>();
       }},
  });
}

std::optional<StartupError> run_phases(const std::vector<StartupPhase>& phases) {
  for (const auto& phase : phases) {
    const auto began = std::chrono::steady_clock::now();
    if (auto failed = phase.run()) return StartupError{phase.name, *failed};
    log::info("phase done", {{"phase", phase.name}, {"duration_ms", ms_since(began)}});
  }
  return std::nullopt;
}

Result<uint16_t> ServerApp::listen() {
  Parts& p = *parts_;
  auto address = parse_host_port(p.process.listen);
  if (!address) return Error::invalid("server.listen is not HOST:PORT");
  // Protected mode, as Redis does it: without credentials, only this machine may connect.
  if (!p.authenticator->enforcing() && !is_loopback_host(address->host)) {
    if (!p.flags.insecure_no_auth) {
      return Error::invalid(
          "no API key is configured, so Parley serves only loopback addresses, and "
          "server.listen is " +
          p.process.listen +
          ". Create a key (`parley keys create --scope admin`), or set PARLEY_ADMIN_KEY, "
          "or listen on 127.0.0.1, or pass --insecure-no-auth if every client on this "
          "network may act as an admin");
    }
    log::warn(
        "serving without authentication on a non-loopback address (--insecure-no-auth): "
        "anyone who can connect is an admin",
        {{"listen", p.process.listen}});
  } else if (!p.authenticator->enforcing()) {
    log::info("no API key configured: serving this machine only (protected mode)",
              {{"listen", p.process.listen}});
  }
  auto port = p.server->listen(address->host, address->port);
  if (!port) return port;
  // Everything that subscribes has by now; the connections open as the loops start.
  if (p.redis) p.redis->start();
  p.start_heartbeat();
  if (p.worker) p.worker->start();
  p.server->start();
  // Once updates can be received: the webhook is registered, or polling begins.
  if (p.telegram) p.telegram->start();
  p.bound_host = address->host;
  p.bound_port = *port;
  return port;
}

int ServerApp::run() {
  Parts& p = *parts_;
  auto& io = p.io;
  auto& server = *p.server;
  const auto grace = p.process.shutdown_grace;
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
    log::info("shutting down", {{"signal", signo},
                                {"grace_ms", static_cast<int64_t>(grace.count())},
                                {"connections_open", server.open_connections()}});
    signals.async_wait(on_signal);
    // Jobs in progress finish while requests drain; no new one is taken.
    if (p.worker) p.worker->request_stop();
    server.begin_drain(finish);
    grace_timer.expires_after(grace);
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

  // Ready only now: a signal from here on drains instead of killing the process.
  log::info("ready", {{"address", p.bound_host},
                      {"port", static_cast<int>(p.bound_port)},
                      {"startup_ms", ms_since(p.process_started)},
                      {"io_threads", p.io_threads},
                      {"blocking_threads", p.blocking.threads()},
                      {"data_dir", p.settings.get<store::StorageSettings>().data_dir}});
  log::flush();

  io.run();

  // What the background writers hold is written before storage closes (stopped in reverse
  // order of starting: storage was first, so it is last).
  p.blocking.join();
  p.stop_all();
  log::info("stopped", {{"uptime_seconds", ms_since(p.process_started) / 1000.0}});
  return 0;
}

int startup_failure(std::string_view phase, std::string_view cause) {
  log::error("startup failed", {{"phase", phase}, {"error", cause}});
  log::shutdown();
  std::fprintf(stderr, "parley: startup failed in phase '%.*s': %.*s\n",
               static_cast<int>(phase.size()), phase.data(), static_cast<int>(cause.size()),
               cause.data());
  return 1;
}

int serve(const config::Settings& settings, std::chrono::steady_clock::time_point process_started,
          const ServeFlags& flags) {
  const auto& build = build_info();
  log::info("starting", {{"version", build.version},
                         {"commit", build.commit},
                         {"pid", static_cast<int64_t>(::getpid())}});
  log::debug("configuration",
             {{"effective",
               settings.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}});
  ServerApp app(settings, flags, process_started);
  if (auto failed = app.compose()) return startup_failure(failed->phase, failed->cause);
  if (auto port = app.listen(); !port) return startup_failure("listen", port.error().message);
  const int code = app.run();
  log::shutdown();
  return code;
}

}  // namespace parley::app

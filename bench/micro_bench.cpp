// Micro-benchmarks of the per-request work that is ours: routing, JSON body parsing, log line
// formatting, metrics observation, a durable session insert on a real SQLite file, and the
// access guard (auth + rate limits + Idempotency-Key) against the same route without it.
#include <benchmark/benchmark.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <vector>

#include "api/access.hpp"
#include "auth/key_admin.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "idempotency/idempotency.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "measure.hpp"

#include "app/settings.hpp"
#include "config/settings.hpp"
#include "http/json_body.hpp"
#include "http/router.hpp"
#include "intent/classifier.hpp"
#include "intent/settings.hpp"
#include "knowledge/embed/hashed_embedder.hpp"
#include "memory/extract.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace {

parley::Task<parley::http::Response> noop(parley::http::Request&) {
  co_return parley::http::Response{};
}

void BM_RouterMatch(benchmark::State& state) {
  parley::http::Router router;
  for (const char* p : {"/health", "/metrics", "/api/v1/health/readiness", "/api/v1/sessions",
                        "/api/v1/sessions/{id}", "/api/v1/sessions/{id}/messages"}) {
    router.add(parley::http::Method::kGet, p, parley::http::kPublic, noop);
  }
  for (auto _ : state) {
    auto m = router.match(parley::http::Method::kGet,
                          "/api/v1/sessions/sess_0123456789abcdefghjkmnpqrs");
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_RouterMatch);

void BM_ParseJsonBody(benchmark::State& state) {
  parley::http::Request req;
  req.headers.emplace_back("Content-Type", "application/json");
  req.body =
      R"({"user_id":"user-123","assistant":"default","title":"Order status","metadata":{"channel":"web","tags":["a","b"]}})";
  for (auto _ : state) {
    auto v = parley::http::parse_json_object_body(req);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_ParseJsonBody);

void BM_FormatLogLine(benchmark::State& state) {
  parley::log::set_secrets({"sk-secret-value-123456"});
  for (auto _ : state) {
    auto line = parley::log::format_line(parley::log::Level::kInfo, "request",
                                         {{"request_id", "0123456789abcdef0123456789abcdef"},
                                          {"method", "GET"},
                                          {"route", "/api/v1/sessions/{id}"},
                                          {"status", 200},
                                          {"duration_ms", 0.123}});
    benchmark::DoNotOptimize(line);
  }
}
BENCHMARK(BM_FormatLogLine);

void BM_MetricsObserve(benchmark::State& state) {
  parley::obs::Metrics metrics({"bench", "none", "g++", "Release"});
  for (auto _ : state) metrics.observe_request(3, "/api/v1/sessions/{id}", "GET", 200, 0.0002);
}
BENCHMARK(BM_MetricsObserve);

// A real SQLite store in a directory of its own, closed and removed when the benchmark ends.
class BenchStore {
 public:
  explicit BenchStore(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    parley::store::sqlite::Options options;
    options.path = (dir_ / "bench.db").string();
    auto opened = parley::store::sqlite::open(options);
    if (opened) {
      storage_ = std::move(*opened);
    } else {
      error_ = opened.error().message;
    }
  }
  ~BenchStore() {
    if (storage_) storage_->close();
    std::filesystem::remove_all(dir_);
  }
  BenchStore(const BenchStore&) = delete;
  BenchStore& operator=(const BenchStore&) = delete;

  // Skips the benchmark, saying why, when the store did not open.
  bool open(benchmark::State& state) const {
    if (!storage_) state.SkipWithError(error_.c_str());
    return storage_ != nullptr;
  }
  parley::store::Storage& operator*() const { return *storage_; }
  parley::store::Storage* operator->() const { return storage_.get(); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<parley::store::Storage> storage_;
  std::string error_;
};

void BM_SqliteSessionCreate(benchmark::State& state) {
  BenchStore storage("parley-bench");
  if (!storage.open(state)) return;
  parley::store::NewSession s{"user-1", "default", std::string("title"), "{}"};
  for (auto _ : state) {
    auto created = storage->sessions().create(s);
    benchmark::DoNotOptimize(created);
  }
}
BENCHMARK(BM_SqliteSessionCreate)->Unit(benchmark::kMicrosecond);

// The p50_us / p99_us / p999_us counters of per-iteration samples.
void report_percentiles(benchmark::State& state, std::vector<double>& samples_us) {
  state.counters["p50_us"] = parley::bench::percentile(samples_us, 0.50);
  state.counters["p99_us"] = parley::bench::percentile(samples_us, 0.99);
  state.counters["p999_us"] = parley::bench::percentile(samples_us, 0.999);
}

// A worker's memory extraction (memory/extract.hpp) with the built-in rules and embedder, on
// a real SQLite file: the `memory.extract` job of each of 5,000 stored turns (what the
// plan_follow_ups stage queues: turns the rules find something in), spread over 500 users who
// state names, places, allergies and preferences, some of them again and some changed. Each
// job reads the turn, the user's memories, proposes, decides, embeds and applies in one
// transaction (SQLite commits it durably). items_per_second is jobs a second of wall time on
// one worker thread.
void BM_MemoryExtract(benchmark::State& state) {
  namespace store = parley::store;
  BenchStore storage("parley-bench-memory");
  if (!storage.open(state)) return;
  const std::vector<std::string> said = {"Hi, my name is {u} and I live in Lisbon.",
                                         "I'm allergic to peanuts.",
                                         "I prefer window seats on long flights.",
                                         "Remember that I have two cats.",
                                         "Actually I live in Porto now.",
                                         "My favourite colour is green.",
                                         "I work at a bakery.",
                                         "Please always answer in French."};
  constexpr int kUsers = 500;
  constexpr int kTurns = 5000;
  std::vector<std::string> sessions;
  for (int u = 0; u < kUsers; ++u) {
    auto s = storage->sessions().create(
        {"default", "user" + std::to_string(u), "default", std::nullopt, "{}"});
    if (!s) {
      state.SkipWithError(s.error().message.c_str());
      return;
    }
    sessions.push_back(s->id);
  }
  std::vector<store::Job> jobs;
  for (int t = 0; t < kTurns; ++t) {
    const int u = t % kUsers;
    std::string text = said[static_cast<size_t>(t / kUsers) % said.size()];
    if (auto at = text.find("{u}"); at != std::string::npos) {
      text.replace(at, 3, "User" + std::to_string(u));
    }
    auto started =
        storage->messages().begin_turn({sessions[static_cast<size_t>(u)], text, "r", "m", "", ""});
    store::FinishedTurn done;
    done.assistant_message_id = started->assistant.id;
    done.content = "Noted.";
    done.status = "complete";
    done.finish_reason = "stop";
    (void)storage->messages().finish_turn(done);
    parley::memory::ExtractRequest r{"default",        "user" + std::to_string(u),
                                     "default",        sessions[static_cast<size_t>(u)],
                                     started->user.id, started->assistant.id};
    auto job = storage->jobs().enqueue(parley::memory::extract_job(r, 5), 0);
    jobs.push_back(*job);
  }
  const parley::knowledge::HashedEmbedder embedder;
  parley::memory::EmbedFn embed = [&embedder](const std::string&,
                                              const std::vector<std::string>& texts)
      -> parley::Result<std::vector<std::vector<float>>> {
    const auto vectors = embedder.embed_now(texts);
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < vectors.size(); ++i) {
      const auto row = vectors.row(i);
      out.emplace_back(row.begin(), row.end());
    }
    return out;
  };
  const auto handler = parley::memory::extract_handler(
      {*storage, parley::Clock::system(), {}, embedder.name(), embed, {}});
  size_t next = 0;
  int64_t changes = 0;
  for (auto _ : state) {
    auto answer = handler(jobs[next++ % jobs.size()]);
    if (!answer) {
      state.SkipWithError(answer.error().message.c_str());
      break;
    }
    changes += static_cast<int64_t>((*answer)["results"].size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["memory_changes"] = static_cast<double>(changes);
}
BENCHMARK(BM_MemoryExtract)->Iterations(5000)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Intent classification without a model (intent/classifier.hpp): the order-taking agent of
// docs/examples/order-agent.yaml (five intents, 28 examples) over ten customer messages, each
// classification timed on its own; p50_us / p99_us / p999_us counters.
void BM_IntentClassify(benchmark::State& state) {
  parley::config::Sources sources;
  sources.config_file = std::string(PARLEY_SOURCE_DIR) + "/docs/examples/order-agent.yaml";
  auto loaded = parley::config::load(parley::app::settings_schema(), sources);
  const auto* shop =
      loaded.ok() ? loaded.settings.get<parley::intent::IntentSettings>().find("shop") : nullptr;
  if (shop == nullptr) {
    state.SkipWithError("docs/examples/order-agent.yaml did not load");
    return;
  }
  const parley::intent::Classifier classifier(*shop);
  const std::vector<std::string> messages = {
      "Hi there!",
      "I'd like to order 2 large pepperoni pizzas for delivery",
      "Where is my order? It has not arrived yet and I ordered an hour ago",
      "Do you have vegan cheese on the veggie pizza?",
      "This is terrible, my pizza arrived cold, I want a refund",
      "thanks a lot, have a nice evening",
      "Can you tell me how long the delivery to Baker Street usually takes",
      "what sizes and prices do the four cheese pizzas come in",
      "I want to complain: the driver was rude and the order was wrong",
      "Could I get three margheritas and a tiramisu please"};
  std::vector<double> samples_us;
  samples_us.reserve(static_cast<size_t>(state.max_iterations));
  size_t n = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto c = classifier.classify(messages[n++ % messages.size()]);
    benchmark::DoNotOptimize(c);
    samples_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  report_percentiles(state, samples_us);
}
BENCHMARK(BM_IntentClassify)->Iterations(200'000)->Unit(benchmark::kMicrosecond);

// The access guard's cost on the hot path: the same route and handler dispatched with the
// guard around it and without. The handler does nothing, so the difference is the guard's
// whole work: the key looked up and its secret hashed and compared, the key's and the user's
// per-minute and per-hour GCRA buckets, and (POST) the Idempotency-Key fingerprinted, claimed
// and its answer stored (written to SQLite by the store's background thread, as in the server).
// Every iteration is timed on its own so the percentiles are real; they are reported as
// counters (p50_us, p99_us, p999_us). Arg 0: no guard; 1: GET with a user key (auth + limits);
// 2: POST with a user key and a fresh Idempotency-Key each time (auth + limits + idempotency).
void BM_AccessGuard(benchmark::State& state) {
  namespace api = parley::api;
  namespace http = parley::http;
  const int variant = static_cast<int>(state.range(0));
  BenchStore storage("parley-bench-guard");
  if (!storage.open(state)) return;
  const int64_t now = parley::to_unix_ms(std::chrono::system_clock::now());
  parley::auth::NewKey new_key;
  new_key.name = "bench";
  new_key.scope = "user";
  new_key.user_id = "bench-user";
  auto key = parley::auth::create_key(storage->api_keys(), new_key, now);
  if (!key) {
    state.SkipWithError(key.error().message.c_str());
    return;
  }
  parley::auth::Authenticator authenticator(storage->api_keys(), {});
  (void)authenticator.load(now);
  auto limiter = parley::limits::make_local_limiter();
  parley::idempotency::LocalIdempotency idempotency(storage->idempotency(), {});
  (void)idempotency.start(now);
  parley::BlockingPool blocking(1);
  // Quotas high enough never to refuse: the buckets are still taken on every request.
  parley::limits::LimitSettings limit_settings;
  for (auto* l : {&limit_settings.key, &limit_settings.user}) {
    l->requests_per_minute = 1'000'000'000;
    l->requests_per_hour = 60'000'000'000;
  }
  api::Access access(authenticator, *limiter, idempotency, blocking, parley::Clock::system(),
                     limit_settings, false, nullptr);

  const http::Method method = variant == 2 ? http::Method::kPost : http::Method::kGet;
  http::Router router;
  // The policies the real routes have: listing needs a key; creating honours Idempotency-Key.
  const http::RoutePolicy policy =
      variant == 2 ? http::kAuthenticatedIdempotent : http::kAuthenticated;
  router.add(
      method, "/api/v1/sessions", policy, [](http::Request&) -> parley::Task<http::Response> {
        http::Response res;
        res.status = 201;
        res.body = R"({"id":"sess_0123456789abcdefghjkmnpqrs","user_id":"bench-user","title":"t"})";
        co_return res;
      });
  if (variant != 0) access.protect(router);

  const std::string bearer = "Bearer " + key->token;
  const std::string body = R"({"title":"benchmark session","metadata":{"source":"bench"}})";
  boost::asio::io_context io;
  std::vector<double> samples_us;
  samples_us.reserve(static_cast<size_t>(state.max_iterations));
  uint64_t n = 0;
  for (auto _ : state) {
    const std::string idempotency_key = "bench-" + std::to_string(++n);
    http::Request req;
    req.method = method;
    req.method_text = variant == 2 ? "POST" : "GET";
    req.target = req.path = "/api/v1/sessions";
    req.remote = "127.0.0.1:40000";
    req.request_id = "0123456789abcdef0123456789abcdef";
    req.headers.emplace_back("Authorization", bearer);
    req.headers.emplace_back("Content-Type", "application/json");
    if (variant == 2) {
      req.headers.emplace_back("Idempotency-Key", idempotency_key);
      req.body = body;
    }
    const auto start = std::chrono::steady_clock::now();
    auto match = router.match(method, req.path);
    int status = 0;
    boost::asio::co_spawn(
        io, match.route->handler(req),
        [&status](std::exception_ptr, http::Response res) { status = res.status; });
    io.run();
    io.restart();
    samples_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    if (status != 201) {
      state.SkipWithError(("the route answered " + std::to_string(status)).c_str());
      break;
    }
  }
  report_percentiles(state, samples_us);
  idempotency.stop();
}
BENCHMARK(BM_AccessGuard)
    ->ArgName("guard")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(200'000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

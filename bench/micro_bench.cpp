// Micro-benchmarks of the per-request work that is ours: routing, JSON body parsing, log line
// formatting, metrics observation, and a durable session insert on a real SQLite file.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "http/json_body.hpp"
#include "http/router.hpp"
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
    router.add(parley::http::Method::kGet, p, noop);
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

void BM_SqliteSessionCreate(benchmark::State& state) {
  auto dir =
      std::filesystem::temp_directory_path() / ("parley-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  parley::store::sqlite::Options options;
  options.path = (dir / "bench.db").string();
  auto storage = parley::store::sqlite::open(options);
  if (!storage) {
    state.SkipWithError(storage.error().message.c_str());
    return;
  }
  parley::store::NewSession s{"user-1", "default", std::string("title"), "{}"};
  for (auto _ : state) {
    auto created = (*storage)->sessions().create(s);
    benchmark::DoNotOptimize(created);
  }
  (*storage)->close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteSessionCreate)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

// Metric families, the per-thread lookup caches, and the process collector (resident memory,
// CPU time, open file descriptors, start time), read from /proc like the official Go client.
#include "obs/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace parley::obs {
namespace {

const prometheus::Histogram::BucketBoundaries& http_buckets() {
  // Sub-millisecond for plain routes up to a minute for long model calls and streams.
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& storage_buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1};
  return kBuckets;
}

prometheus::ClientMetric gauge_value(double v) {
  prometheus::ClientMetric m;
  m.gauge.value = v;
  return m;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                prometheus::ClientMetric metric) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  f.metric.push_back(std::move(metric));
  return f;
}

// Process metrics, gathered on each scrape.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the command name, which is in parentheses and may contain spaces.
    auto close = stat.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(stat.substr(close + 2));
      std::vector<std::string> f;
      std::string tok;
      while (rest >> tok) f.push_back(tok);
      // f[0] is field 3 (state): utime=14, stime=15, starttime=22, vsize=23, rss=24.
      if (f.size() > 21) {
        double utime = std::stod(f[11]);
        double stime = std::stod(f[12]);
        double start_ticks = std::stod(f[19]);
        double vsize = std::stod(f[20]);
        double rss_pages = std::stod(f[21]);
        prometheus::ClientMetric cpu;
        cpu.counter.value = (utime + stime) / ticks;
        out.push_back(family("process_cpu_seconds_total",
                             "Total user and system CPU time spent in seconds.",
                             prometheus::MetricType::Counter, cpu));
        out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                             prometheus::MetricType::Gauge, gauge_value(rss_pages * page)));
        out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                             prometheus::MetricType::Gauge, gauge_value(vsize)));
        out.push_back(family(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            prometheus::MetricType::Gauge, gauge_value(boot_time() + start_ticks / ticks)));
      }
    }
    out.push_back(family("process_open_fds", "Number of open file descriptors.",
                         prometheus::MetricType::Gauge, gauge_value(open_fds())));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                           prometheus::MetricType::Gauge,
                           gauge_value(static_cast<double>(lim.rlim_cur))));
    }
    return out;
  }

 private:
  static double boot_time() {
    std::ifstream in("/proc/stat");
    std::string key;
    while (in >> key) {
      if (key == "btime") {
        double v = 0;
        in >> v;
        return v;
      }
      in.ignore(1 << 16, '\n');
    }
    return 0;
  }
  static double open_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return 0;
    double n = 0;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') n += 1;
    }
    closedir(dir);
    return n - 1;  // the descriptor opendir itself holds
  }
};

struct RequestKey {
  int route_id;
  int status;
  std::string_view method;
  bool operator==(const RequestKey&) const = default;
};
struct RequestKeyHash {
  size_t operator()(const RequestKey& k) const {
    return std::hash<int>()(k.route_id) * 31 + std::hash<int>()(k.status) * 17 +
           std::hash<const void*>()(k.method.data());
  }
};

uint64_t next_instance_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

}  // namespace

Metrics::Metrics(const BuildInfo& build)
    : registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>()),
      instance_id_(next_instance_id()) {
  requests_total_ = &prometheus::BuildCounter()
                         .Name("http_requests_total")
                         .Help("HTTP requests by method, route template and status.")
                         .Register(*registry_);
  request_duration_ =
      &prometheus::BuildHistogram()
           .Name("http_request_duration_seconds")
           .Help("Time from a request's arrival to its response, by route template.")
           .Register(*registry_);
  storage_duration_ = &prometheus::BuildHistogram()
                           .Name("parley_storage_query_duration_seconds")
                           .Help("Time spent in storage calls, by operation.")
                           .Register(*registry_);
  requests_in_flight_ = &prometheus::BuildGauge()
                             .Name("http_requests_in_flight")
                             .Help("HTTP requests being handled now.")
                             .Register(*registry_)
                             .Add({});
  connections_open_ = &prometheus::BuildGauge()
                           .Name("http_connections_open")
                           .Help("Open client connections.")
                           .Register(*registry_)
                           .Add({});
  llm_requests_ =
      &prometheus::BuildCounter()
           .Name("llm_requests_total")
           .Help("Calls to model providers (each retry and fallback counts), by outcome.")
           .Register(*registry_);
  llm_tokens_ = &prometheus::BuildCounter()
                     .Name("llm_tokens_total")
                     .Help("Tokens sent to (kind=input) and generated by (kind=output) providers.")
                     .Register(*registry_);
  api_costs_ = &prometheus::BuildCounter()
                    .Name("api_costs_total")
                    .Help("Spend on model providers in USD, from the model price table.")
                    .Register(*registry_);
  inference_duration_ = &prometheus::BuildHistogram()
                             .Name("model_inference_duration_seconds")
                             .Help("Time of one provider call, start to last token, by model.")
                             .Register(*registry_);
  time_to_first_token_ = &prometheus::BuildHistogram()
                              .Name("llm_time_to_first_token_seconds")
                              .Help("Time from a provider call to its first streamed token.")
                              .Register(*registry_);
  circuit_state_ =
      &prometheus::BuildGauge()
           .Name("llm_circuit_state")
           .Help("Circuit breaker per provider and model: 0 closed, 1 open, 2 half-open.")
           .Register(*registry_);
  auth_failures_ = &prometheus::BuildCounter()
                        .Name("auth_failures_total")
                        .Help("Requests refused for their credentials, by reason.")
                        .Register(*registry_);
  rate_limited_ = &prometheus::BuildCounter()
                       .Name("rate_limited_total")
                       .Help("Requests refused by a rate, token, concurrency or budget limit.")
                       .Register(*registry_);
  idempotent_replays_ = &prometheus::BuildCounter()
                             .Name("idempotent_replays_total")
                             .Help("Stored answers served again for a retried Idempotency-Key.")
                             .Register(*registry_)
                             .Add({});
  limiter_errors_ = &prometheus::BuildCounter()
                         .Name("limiter_backend_errors_total")
                         .Help("Limit checks the shared limiter (Redis) could not answer.")
                         .Register(*registry_)
                         .Add({});
  redis_commands_ = &prometheus::BuildCounter()
                         .Name("redis_commands_total")
                         .Help(
                             "Commands sent to Redis, a script call counting as one: each has its "
                             "own reply, so this is the round trips (pipelined on a connection).")
                         .Register(*registry_)
                         .Add({});
  moderation_decisions_ =
      &prometheus::BuildCounter()
           .Name("moderation_decisions_total")
           .Help("Moderation decisions by stage (input, output), category and action.")
           .Register(*registry_);
  items_dropped_ =
      &prometheus::BuildCounter()
           .Name("background_items_dropped_total")
           .Help("Items a background writer dropped, the oldest first, because its queue was full.")
           .Register(*registry_);
  jobs_ = &prometheus::BuildCounter()
               .Name("jobs_total")
               .Help(
                   "Background jobs by outcome: done, failed, rejected (queue full), dropped (at "
                   "stop).")
               .Register(*registry_);
  active_sessions_ = &prometheus::BuildGauge()
                          .Name("active_sessions")
                          .Help("Chat sessions with a turn in the last 15 minutes.")
                          .Register(*registry_)
                          .Add({});
  sessions_ = std::make_shared<SessionActivity>();
  prometheus::BuildGauge()
      .Name("parley_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"version", build.version},
            {"commit", build.commit},
            {"compiler", build.compiler},
            {"build_type", build.build_type}})
      .Set(1);
}

std::string_view Metrics::normalize_method(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET",   "HEAD",   "POST",   "PUT",
                                                "PATCH", "DELETE", "OPTIONS"};
  for (auto known : kKnown) {
    if (method == known) return known;  // the static literal: stable address for the cache key
  }
  return "other";
}

void Metrics::observe_request(int route_id, std::string_view route, std::string_view method,
                              int status, double seconds) {
  struct Entry {
    prometheus::Counter* counter;
    prometheus::Histogram* histogram;
  };
  // Per thread and per Metrics instance (tests create several; ids are never reused).
  thread_local std::unordered_map<uint64_t, std::unordered_map<RequestKey, Entry, RequestKeyHash>>
      cache;
  std::string_view m = normalize_method(method);
  auto& mine = cache[instance_id_];
  RequestKey key{route_id, status, m};
  auto it = mine.find(key);
  if (it == mine.end()) {
    std::string route_label(route);
    auto& counter = requests_total_->Add(
        {{"method", std::string(m)}, {"route", route_label}, {"status", std::to_string(status)}});
    auto& histogram = request_duration_->Add({{"route", route_label}}, http_buckets());
    it = mine.emplace(key, Entry{&counter, &histogram}).first;
  }
  it->second.counter->Increment();
  it->second.histogram->Observe(seconds);
}

void Metrics::observe_storage_query(const char* operation, double seconds) {
  thread_local std::unordered_map<uint64_t, std::unordered_map<const char*, prometheus::Histogram*>>
      cache;
  auto& mine = cache[instance_id_];
  auto it = mine.find(operation);
  if (it == mine.end()) {
    auto& h = storage_duration_->Add({{"operation", operation}}, storage_buckets());
    it = mine.emplace(operation, &h).first;
  }
  it->second->Observe(seconds);
}

struct Metrics::SessionActivity {
  std::mutex mutex;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_turn;
  std::chrono::steady_clock::time_point pruned_at{};
  // Drops sessions idle for longer than the window (a full scan, so at most once a second);
  // returns how many are left.
  size_t prune(std::chrono::steady_clock::time_point now) {
    if (now - pruned_at < std::chrono::seconds(1)) return last_turn.size();
    pruned_at = now;
    for (auto it = last_turn.begin(); it != last_turn.end();) {
      it = now - it->second > kWindow ? last_turn.erase(it) : std::next(it);
    }
    return last_turn.size();
  }
  static constexpr std::chrono::minutes kWindow{15};
};

namespace {

const prometheus::Histogram::BucketBoundaries& llm_buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets{0.05, 0.1, 0.25, 0.5, 1,   2,  4,
                                                                8,    15,  30,   60,  120, 300};
  return kBuckets;
}

}  // namespace

void Metrics::observe_llm_call(std::string_view provider, std::string_view model,
                               std::string_view status, int64_t input_tokens, int64_t output_tokens,
                               double cost_usd, double seconds, double ttft_seconds) {
  // The series of one (provider, model, status), looked up once per thread: Family::Add
  // builds and hashes a label map under a lock, which on the proxy path cost more than the
  // counting itself.
  struct Series {
    prometheus::Counter* requests;
    prometheus::Counter* input;
    prometheus::Counter* output;
    prometheus::Counter* cost;
    prometheus::Histogram* duration;
    prometheus::Histogram* ttft;
  };
  thread_local std::unordered_map<std::string, Series> cache;
  std::string key = std::to_string(instance_id_);
  key.append("\n").append(provider).append("\n").append(model).append("\n").append(status);
  auto it = cache.find(key);
  if (it == cache.end()) {
    const std::string p(provider);
    const std::string m(model);
    Series series{
        &llm_requests_->Add({{"provider", p}, {"model", m}, {"status", std::string(status)}}),
        &llm_tokens_->Add({{"provider", p}, {"model", m}, {"kind", "input"}}),
        &llm_tokens_->Add({{"provider", p}, {"model", m}, {"kind", "output"}}),
        &api_costs_->Add({{"provider", p}}),
        &inference_duration_->Add({{"model", m}}, llm_buckets()),
        &time_to_first_token_->Add({{"model", m}}, llm_buckets())};
    it = cache.emplace(std::move(key), series).first;
  }
  const Series& series = it->second;
  series.requests->Increment();
  if (input_tokens > 0) series.input->Increment(static_cast<double>(input_tokens));
  if (output_tokens > 0) series.output->Increment(static_cast<double>(output_tokens));
  if (cost_usd > 0) series.cost->Increment(cost_usd);
  series.duration->Observe(seconds);
  if (ttft_seconds >= 0) series.ttft->Observe(ttft_seconds);
}

void Metrics::set_circuit_state(std::string_view provider, std::string_view model, int state) {
  thread_local std::unordered_map<std::string, prometheus::Gauge*> cache;
  std::string key = std::to_string(instance_id_);
  key.append("\n").append(provider).append("\n").append(model);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto& gauge =
        circuit_state_->Add({{"provider", std::string(provider)}, {"model", std::string(model)}});
    it = cache.emplace(std::move(key), &gauge).first;
  }
  it->second->Set(state);
}

void Metrics::count_auth_failure(std::string_view reason) {
  auth_failures_->Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::count_rate_limited(std::string_view limit) {
  rate_limited_->Add({{"limit", std::string(limit)}}).Increment();
}

void Metrics::count_idempotent_replay() { idempotent_replays_->Increment(); }
void Metrics::count_limiter_error() { limiter_errors_->Increment(); }

void Metrics::count_redis_command() { redis_commands_->Increment(); }

void Metrics::count_moderation(std::string_view stage, std::string_view category,
                               std::string_view action) {
  moderation_decisions_
      ->Add({{"stage", std::string(stage)},
             {"category", std::string(category)},
             {"action", std::string(action)}})
      .Increment();
}

void Metrics::count_dropped(std::string_view writer, int64_t n) {
  if (n <= 0) return;
  items_dropped_->Add({{"writer", std::string(writer)}}).Increment(static_cast<double>(n));
}

void Metrics::count_job(std::string_view outcome) {
  jobs_->Add({{"outcome", std::string(outcome)}}).Increment();
}

void Metrics::note_session_activity(std::string_view session_id) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(sessions_->mutex);
  sessions_->last_turn[std::string(session_id)] = now;
  active_sessions_->Set(static_cast<double>(sessions_->prune(now)));
}

std::string Metrics::serialize() const {
  {
    std::lock_guard lock(sessions_->mutex);
    active_sessions_->Set(static_cast<double>(sessions_->prune(std::chrono::steady_clock::now())));
  }
  auto families = registry_->Collect();
  auto process = process_->Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace parley::obs

// Observability from outside: the Prometheus endpoint (content type, the required metric families,
// route labels that are templates or "unmatched" and never a raw path, counters that count, sane
// histograms, and `promtool check metrics` with no findings), and the JSON log on stdout
// (every line a JSON object with time/level/message, one access-log line per request with its
// fields, and no access log when it is switched off).
#include <algorithm>
#include <cmath>
#include <csignal>
#include <ctime>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

std::vector<MetricSample> scrape(int port, std::string* body_out = nullptr) {
  auto r = http("GET", port, "/metrics");
  EXPECT_EQ(r.status, 200) << r.describe();
  std::string error;
  auto samples = parse_prometheus(r.body, &error);
  EXPECT_TRUE(samples.has_value()) << "unparsable metrics: " << error;
  if (body_out) *body_out = r.body;
  return samples.value_or(std::vector<MetricSample>{});
}

// Sum of `name` samples whose labels include all of `want`.
double sum_of(const std::vector<MetricSample>& samples, const std::string& name,
              const std::map<std::string, std::string>& want) {
  double total = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      if (s.label(k) != v) match = false;
    }
    if (match) total += s.value;
  }
  return total;
}

bool has_name(const std::vector<MetricSample>& samples, const std::string& name) {
  for (const auto& s : samples) {
    if (s.name == name) return true;
  }
  return false;
}

TEST(Metrics, ContentTypeAndRequiredFamilies) {
  ParleyProcess p;
  ASSERT_EQ(http("GET", p.port(), "/health").status, 200);
  ASSERT_EQ(http("POST", p.port(), "/api/v1/sessions", "{}").status, 201);
  auto r = http("GET", p.port(), "/metrics");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto ct = r.header("Content-Type").value_or("");
  EXPECT_TRUE(icontains(ct, "text/plain")) << ct;
  EXPECT_TRUE(icontains(ct, "version=0.0.4")) << ct;

  std::string error;
  auto parsed = parse_prometheus(r.body, &error);
  ASSERT_TRUE(parsed.has_value()) << error;
  const auto& samples = *parsed;
  for (const char* name :
       {"http_requests_total", "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum", "http_request_duration_seconds_count",
        "http_requests_in_flight", "http_connections_open", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds",
        "parley_build_info"}) {
    EXPECT_TRUE(has_name(samples, name)) << "missing metric " << name;
  }
  // The storage histogram (or summary) exists in some form, and has observed the INSERT above.
  bool storage = false;
  for (const auto& s : samples) {
    if (s.name.starts_with("parley_storage_query_duration_seconds")) storage = true;
  }
  EXPECT_TRUE(storage) << "missing parley_storage_query_duration_seconds";
  EXPECT_GT(sum_of(samples, "parley_storage_query_duration_seconds_count", {}), 0)
      << "no storage query observed after creating a session";

  for (const char* type_line :
       {"# TYPE http_requests_total counter", "# TYPE http_request_duration_seconds histogram",
        "# TYPE http_requests_in_flight gauge", "# TYPE http_connections_open gauge"}) {
    EXPECT_NE(r.body.find(type_line), std::string::npos) << "missing '" << type_line << "'";
  }

  // Values that can be checked from outside.
  EXPECT_GT(sum_of(samples, "process_resident_memory_bytes", {}), 1024 * 1024);
  EXPECT_GT(sum_of(samples, "process_open_fds", {}), 2);
  const double start = sum_of(samples, "process_start_time_seconds", {});
  EXPECT_LT(std::fabs(start - static_cast<double>(std::time(nullptr))), 120)
      << "process_start_time_seconds is not a recent unix time: " << start;
  // The /metrics request itself is in flight and its connection open.
  EXPECT_GE(sum_of(samples, "http_requests_in_flight", {}), 1);
  EXPECT_GE(sum_of(samples, "http_connections_open", {}), 1);
  EXPECT_EQ(sum_of(samples, "parley_build_info", {}), 1);
}

TEST(Metrics, RoutesAreTemplatesNeverRawPaths) {
  ParleyProcess p;
  ASSERT_EQ(http("GET", p.port(), "/health").status, 200);
  ASSERT_EQ(http("GET", p.port(), "/api/v1/sessions/sess_abc").status, 404);
  for (int i = 0; i < 10; ++i) {
    http("GET", p.port(), "/no/such/path-xyz" + std::to_string(i));
  }
  std::string body;
  std::vector<MetricSample> samples;
  // Counters may be bumped just after the response is written: poll briefly.
  bool found = eventually(
      [&] {
        samples = scrape(p.port(), &body);
        return sum_of(samples, "http_requests_total",
                      {{"method", "GET"}, {"route", "/api/v1/sessions/{id}"}, {"status", "404"}}) >=
                   1 &&
               sum_of(samples, "http_requests_total",
                      {{"method", "GET"}, {"route", "unmatched"}, {"status", "404"}}) >= 10 &&
               sum_of(samples, "http_requests_total",
                      {{"method", "GET"}, {"route", "/health"}, {"status", "200"}}) >= 1;
      },
      Millis{3000}, Millis{100});
  EXPECT_TRUE(found) << "expected http_requests_total series missing\n" << body;
  EXPECT_EQ(body.find("sess_abc"), std::string::npos) << "raw path id leaked into metrics";
  EXPECT_EQ(body.find("path-xyz"), std::string::npos) << "unmatched raw path leaked into metrics";
  // The duration histogram uses the same templates.
  EXPECT_GT(
      sum_of(samples, "http_request_duration_seconds_count", {{"route", "/api/v1/sessions/{id}"}}),
      0);
  std::set<std::string> routes;
  for (const auto& s : samples) {
    if (s.name == "http_requests_total") routes.insert(s.label("route").value_or("<none>"));
  }
  for (const auto& route : routes) {
    EXPECT_TRUE(route == "unmatched" || route.starts_with("/")) << "odd route label " << route;
    EXPECT_EQ(route.find("sess_"), std::string::npos) << route;
  }
}

TEST(Metrics, CountersCountExactly) {
  ParleyProcess p;
  ASSERT_EQ(http("GET", p.port(), "/health").status, 200);
  const std::map<std::string, std::string> health_ok = {
      {"method", "GET"}, {"route", "/health"}, {"status", "200"}};
  double before = 0;
  ASSERT_TRUE(eventually(
      [&] { return (before = sum_of(scrape(p.port()), "http_requests_total", health_ok)) >= 1; },
      Millis{3000}, Millis{100}));
  for (int i = 0; i < 7; ++i) ASSERT_EQ(http("GET", p.port(), "/health").status, 200);
  double after = 0;
  eventually(
      [&] {
        return (after = sum_of(scrape(p.port()), "http_requests_total", health_ok)) >= before + 7;
      },
      Millis{3000}, Millis{100});
  EXPECT_EQ(after - before, 7) << "7 requests counted as " << after - before;
}

TEST(Metrics, HistogramsAreConsistent) {
  ParleyProcess p;
  for (int i = 0; i < 5; ++i) http("GET", p.port(), "/health");
  auto samples = scrape(p.port());
  // For each histogram series: buckets never decrease and le="+Inf" equals _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series -> (le, value)
  std::map<std::string, double> counts;
  auto series_key = [](const MetricSample& s, const std::string& base) {
    std::string key = base + "{";
    for (const auto& [k, v] : s.labels) {
      if (k != "le") key += k + "=" + v + ",";
    }
    return key + "}";
  };
  for (const auto& s : samples) {
    if (s.name.ends_with("_bucket")) {
      auto le = s.label("le");
      ASSERT_TRUE(le.has_value()) << s.name << " without le";
      double bound = *le == "+Inf" ? INFINITY : std::stod(*le);
      buckets[series_key(s, s.name.substr(0, s.name.size() - 7))].emplace_back(bound, s.value);
    } else if (s.name.ends_with("_count")) {
      counts[series_key(s, s.name.substr(0, s.name.size() - 6))] = s.value;
    }
  }
  ASSERT_FALSE(buckets.empty());
  for (auto& [key, bs] : buckets) {
    std::sort(bs.begin(), bs.end());
    for (size_t i = 1; i < bs.size(); ++i) {
      EXPECT_LE(bs[i - 1].second, bs[i].second) << "decreasing buckets in " << key;
    }
    ASSERT_TRUE(std::isinf(bs.back().first)) << "no +Inf bucket in " << key;
    ASSERT_TRUE(counts.count(key)) << "no _count for " << key;
    EXPECT_EQ(bs.back().second, counts[key]) << "+Inf bucket != _count in " << key;
  }
}

TEST(Metrics, PromtoolFindsNothing) {
  // promtool comes with Debian's prometheus package, which scripts/bootstrap.sh installs: a
  // missing promtool is a broken test machine, not a reason to skip.
  const std::string promtool = "/usr/bin/promtool";
  ASSERT_TRUE(file_exists(promtool)) << "promtool is not installed (run scripts/bootstrap.sh)";
  ParleyProcess p;
  // Traffic that touches every family: requests of several routes, a chat turn (model call,
  // tokens, cost, inference time, sessions), a refused credential, a moderation decision.
  http("GET", p.port(), "/health");
  http("GET", p.port(), "/api/v1/sessions/sess_abc");
  http("GET", p.port(), "/unmatched/thing");
  http("POST", p.port(), "/api/v1/sessions", "{}");
  http("POST", p.port(), "/api/v1/chat", R"({"message":"hello"})");
  auto m = http("GET", p.port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  auto r = run_program({promtool, "check", "metrics"}, {.stdin_data = m.body});
  ASSERT_TRUE(r.status.has_value()) << r.describe();
  // promtool exits 0 when clean, 3 when it has lint findings (naming, units, missing HELP), and
  // 1 when the exposition cannot be parsed. Both of the latter fail here.
  EXPECT_EQ(r.exit_code(), 0) << r.describe();
  EXPECT_EQ(r.out + r.err, "") << r.describe();
}

// ---------------------------------------------------------------------------------------------

const std::regex kLogTime(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");

TEST(Logs, EveryStdoutLineIsAJsonObject) {
  ParleyProcess p;
  http("GET", p.port(), "/health");
  http("GET", p.port(), "/nope");
  http("POST", p.port(), "/api/v1/sessions", "{bad");
  ASSERT_TRUE(p.send_signal(SIGTERM));
  ASSERT_TRUE(p.wait_exit(Millis{10000}).has_value());
  p.drain_output();
  const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  auto lines = p.logs();
  ASSERT_GE(lines.size(), 4u) << p.output_dump();
  for (const auto& line : lines) {
    auto j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    ASSERT_TRUE(j.contains("time") && j["time"].is_string()) << line;
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), kLogTime)) << line;
    ASSERT_TRUE(j.contains("level") && j["level"].is_string()) << line;
    EXPECT_TRUE(levels.count(j["level"].get<std::string>())) << line;
    ASSERT_TRUE(j.contains("message") && j["message"].is_string()) << line;
  }
}

TEST(Logs, AccessLogLinePerRequest) {
  ParleyProcess p;
  auto r = http("GET", p.port(), "/api/v1/sessions/sess_logcheck", "",
                {{"X-Request-Id", "trace-log-1"}});
  ASSERT_EQ(r.status, 404);
  auto line = p.wait_for_log(
      [](const json& j) {
        return j.value("message", "") == "request" && j.value("request_id", "") == "trace-log-1";
      },
      Millis{3000});
  ASSERT_TRUE(line.has_value()) << "no access log line for request trace-log-1\n"
                                << p.output_dump();
  const auto& j = *line;
  EXPECT_EQ(j.value("level", ""), "info") << j.dump();
  EXPECT_EQ(j.value("method", ""), "GET") << j.dump();
  EXPECT_EQ(j.value("route", ""), "/api/v1/sessions/{id}") << j.dump();
  EXPECT_EQ(j.value("path", ""), "/api/v1/sessions/sess_logcheck") << j.dump();
  EXPECT_EQ(j.value("status", 0), 404) << j.dump();
  ASSERT_TRUE(j.contains("duration_ms") && j["duration_ms"].is_number()) << j.dump();
  EXPECT_GE(j["duration_ms"].get<double>(), 0.0);
  ASSERT_TRUE(j.contains("bytes_out") && j["bytes_out"].is_number_integer()) << j.dump();
  // bytes_out counts at least the body that was sent.
  EXPECT_GE(j["bytes_out"].get<long long>(), static_cast<long long>(r.body.size())) << j.dump();
  ASSERT_TRUE(j.contains("remote") && j["remote"].is_string()) << j.dump();
  EXPECT_NE(j["remote"].get<std::string>().find("127.0.0.1"), std::string::npos) << j.dump();

  // Unmatched routes log route "unmatched"; the request id is the generated one when none sent.
  auto u = http("POST", p.port(), "/zzz/unknown", "{}");
  auto rid = u.header("X-Request-Id").value_or("?");
  auto line2 = p.wait_for_log(
      [&](const json& l) {
        return l.value("message", "") == "request" && l.value("request_id", "") == rid;
      },
      Millis{3000});
  ASSERT_TRUE(line2.has_value()) << "no access log line for generated id " << rid;
  EXPECT_EQ(line2->value("route", ""), "unmatched") << line2->dump();
  EXPECT_EQ(line2->value("method", ""), "POST") << line2->dump();
  EXPECT_EQ(line2->value("status", 0), 404) << line2->dump();
}

TEST(Logs, OneAccessLineForEachRequest) {
  ParleyProcess p;
  for (int i = 0; i < 5; ++i) {
    http("GET", p.port(), "/health", "", {{"X-Request-Id", "count-" + std::to_string(i)}});
  }
  ASSERT_TRUE(p.wait_for_log([](const json& j) { return j.value("request_id", "") == "count-4"; },
                             Millis{3000}));
  std::map<std::string, int> seen;
  for (const auto& j : p.json_logs()) {
    if (j.value("message", "") == "request") seen[j.value("request_id", "")]++;
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(seen["count-" + std::to_string(i)], 1) << "request count-" << i;
  }
}

TEST(Logs, AccessLogCanBeDisabled) {
  ParleyProcess p({.args = {"--set", "log.access_log=false"}});
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(http("GET", p.port(), "/health", "", {{"X-Request-Id", "quiet"}}).status, 200);
  }
  // Let any (wrong) asynchronous log line arrive before concluding there is none.
  std::this_thread::sleep_for(Millis{300});
  for (const auto& j : p.json_logs()) {
    EXPECT_NE(j.value("message", ""), "request")
        << "access log line although disabled: " << j.dump();
  }
}

}  // namespace
}  // namespace parley_it

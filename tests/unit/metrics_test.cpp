// Prometheus metrics (obs/metrics.hpp). Covers: http_requests_total labelled by method, route
// template and status (counts add up, distinct statuses are distinct series), the duration
// histogram by route, unknown or lower-case methods folded into "other", the storage-query
// histogram, in-flight and connection gauges, parley_build_info with its labels and value 1,
// the process_* metrics read from /proc, that two Metrics instances never share counters (the
// per-thread cache is keyed per instance, also across destruction), and concurrent observation
// from several threads losing no increments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "obs/metrics.hpp"
#include "support/metrics_text.hpp"

namespace {

using parley::obs::BuildInfo;
using parley::obs::Metrics;
using parley::testing::metric_sample;
using ::testing::HasSubstr;
using ::testing::Not;

BuildInfo test_build() { return BuildInfo{"1.2.3", "abc123def456", "g++ 12.2", "Release"}; }

TEST(Metrics, RequestsAreCountedByMethodRouteTemplateAndStatus) {
  Metrics m(test_build());
  m.observe_request(3, "/api/v1/sessions/{id}", "GET", 200, 0.002);
  m.observe_request(3, "/api/v1/sessions/{id}", "GET", 200, 0.004);
  m.observe_request(3, "/api/v1/sessions/{id}", "GET", 404, 0.001);
  m.observe_request(2, "/api/v1/sessions", "POST", 201, 0.010);
  auto text = m.serialize();

  EXPECT_THAT(text, HasSubstr("# TYPE http_requests_total counter"));
  EXPECT_EQ(
      metric_sample(
          text, R"(http_requests_total{method="GET",route="/api/v1/sessions/{id}",status="200"})"),
      2.0)
      << text;
  EXPECT_EQ(
      metric_sample(
          text, R"(http_requests_total{method="GET",route="/api/v1/sessions/{id}",status="404"})"),
      1.0);
  EXPECT_EQ(
      metric_sample(text,
                    R"(http_requests_total{method="POST",route="/api/v1/sessions",status="201"})"),
      1.0);
  // The raw path never becomes a label.
  EXPECT_THAT(text, Not(HasSubstr("sess_")));
}

TEST(Metrics, DurationHistogramIsPerRoute) {
  Metrics m(test_build());
  m.observe_request(0, "/health", "GET", 200, 0.0002);
  m.observe_request(0, "/health", "GET", 503, 0.2);
  auto text = m.serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE http_request_duration_seconds histogram"));
  EXPECT_EQ(metric_sample(text, R"(http_request_duration_seconds_count{route="/health"})"), 2.0)
      << text;
  EXPECT_NEAR(
      metric_sample(text, R"(http_request_duration_seconds_sum{route="/health"})").value_or(-1),
      0.2002, 1e-9);
  EXPECT_EQ(
      metric_sample(text, R"(http_request_duration_seconds_bucket{route="/health",le="0.0005"})"),
      1.0);
  EXPECT_EQ(
      metric_sample(text, R"(http_request_duration_seconds_bucket{route="/health",le="0.25"})"),
      2.0);
  EXPECT_EQ(
      metric_sample(text, R"(http_request_duration_seconds_bucket{route="/health",le="+Inf"})"),
      2.0);
}

TEST(Metrics, UnknownMethodsBecomeOther) {
  EXPECT_EQ(Metrics::normalize_method("GET"), "GET");
  EXPECT_EQ(Metrics::normalize_method("DELETE"), "DELETE");
  EXPECT_EQ(Metrics::normalize_method("OPTIONS"), "OPTIONS");
  EXPECT_EQ(Metrics::normalize_method("BREW"), "other");
  EXPECT_EQ(Metrics::normalize_method("get"), "other");
  EXPECT_EQ(Metrics::normalize_method(""), "other");
  EXPECT_EQ(Metrics::normalize_method("GETX"), "other");

  Metrics m(test_build());
  m.observe_request(-1, "unmatched", "BREW", 405, 0.001);
  m.observe_request(-1, "unmatched", "PROPFIND", 405, 0.001);
  auto text = m.serialize();
  EXPECT_EQ(
      metric_sample(text, R"(http_requests_total{method="other",route="unmatched",status="405"})"),
      2.0)
      << text;
  EXPECT_THAT(text, Not(HasSubstr("BREW")));
  EXPECT_THAT(text, Not(HasSubstr("PROPFIND")));
}

TEST(Metrics, MethodLabelDoesNotDependOnTheCallersBuffer) {
  Metrics m(test_build());
  std::string method = "GET";
  m.observe_request(1, "/x", method, 200, 0.001);
  method = "PUT";  // same buffer, different text
  m.observe_request(1, "/x", method, 200, 0.001);
  auto text = m.serialize();
  EXPECT_EQ(metric_sample(text, R"(http_requests_total{method="GET",route="/x",status="200"})"),
            1.0)
      << text;
  EXPECT_EQ(metric_sample(text, R"(http_requests_total{method="PUT",route="/x",status="200"})"),
            1.0)
      << text;
}

TEST(Metrics, BuildInfoCarriesTheBuildLabels) {
  Metrics m(test_build());
  auto text = m.serialize();
  EXPECT_EQ(
      metric_sample(
          text,
          R"(parley_build_info{build_type="Release",commit="abc123def456",compiler="g++ 12.2",version="1.2.3"})"),
      1.0)
      << text;
}

TEST(Metrics, ProcessMetricsArePresentAndPlausible) {
  Metrics m(test_build());
  auto text = m.serialize();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name)) << name;
  }
  auto rss = metric_sample(text, "process_resident_memory_bytes");
  ASSERT_TRUE(rss);
  EXPECT_GT(*rss, 1024.0 * 1024.0);  // a test binary with gtest and prometheus is > 1 MiB
  auto fds = metric_sample(text, "process_open_fds");
  ASSERT_TRUE(fds);
  EXPECT_GE(*fds, 3.0);  // stdin, stdout, stderr at least
  auto start = metric_sample(text, "process_start_time_seconds");
  ASSERT_TRUE(start);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(*start, now + 2);
  EXPECT_GT(*start, now - 24 * 3600);  // this test process started recently
  auto cpu = metric_sample(text, "process_cpu_seconds_total");
  ASSERT_TRUE(cpu);
  EXPECT_GE(*cpu, 0.0);
}

TEST(Metrics, StorageQueriesAreTimedByOperation) {
  Metrics m(test_build());
  m.observe_storage_query("session_get", 0.00004);
  m.observe_storage_query("session_get", 0.003);
  m.observe_storage_query("session_create", 0.02);
  auto text = m.serialize();
  EXPECT_EQ(metric_sample(
                text, R"(parley_storage_query_duration_seconds_count{operation="session_get"})"),
            2.0)
      << text;
  EXPECT_EQ(metric_sample(
                text, R"(parley_storage_query_duration_seconds_count{operation="session_create"})"),
            1.0);
  EXPECT_EQ(
      metric_sample(
          text,
          R"(parley_storage_query_duration_seconds_bucket{operation="session_get",le="5e-05"})"),
      1.0)
      << text;
}

TEST(Metrics, GaugesForInFlightAndConnections) {
  Metrics m(test_build());
  m.requests_in_flight().Increment();
  m.requests_in_flight().Increment();
  m.requests_in_flight().Decrement();
  m.connections_open().Set(7);
  auto text = m.serialize();
  EXPECT_EQ(metric_sample(text, "http_requests_in_flight"), 1.0) << text;
  EXPECT_EQ(metric_sample(text, "http_connections_open"), 7.0);
}

TEST(Metrics, InstancesDoNotShareCounters) {
  Metrics a(test_build());
  Metrics b(test_build());
  a.observe_request(0, "/a", "GET", 200, 0.001);
  a.observe_request(0, "/a", "GET", 200, 0.001);
  b.observe_request(0, "/a", "GET", 200, 0.001);
  const std::string series = R"(http_requests_total{method="GET",route="/a",status="200"})";
  EXPECT_EQ(metric_sample(a.serialize(), series), 2.0);
  EXPECT_EQ(metric_sample(b.serialize(), series), 1.0);
}

TEST(Metrics, ANewInstanceAfterADestroyedOneStartsFresh) {
  const std::string series = R"(http_requests_total{method="GET",route="/r",status="200"})";
  {
    auto first = std::make_unique<Metrics>(test_build());
    first->observe_request(5, "/r", "GET", 200, 0.001);
    EXPECT_EQ(metric_sample(first->serialize(), series), 1.0);
  }
  // Same thread, same route id: a cache keyed by address could hand back the dead counter.
  auto second = std::make_unique<Metrics>(test_build());
  second->observe_request(5, "/r", "GET", 200, 0.001);
  second->observe_request(5, "/r", "GET", 200, 0.001);
  EXPECT_EQ(metric_sample(second->serialize(), series), 2.0);
}

TEST(Metrics, ConcurrentObservationsAreAllCounted) {
  Metrics m(test_build());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.observe_request(1, "/api/v1/sessions", (i % 2) ? "GET" : "POST", 200, 0.001);
        m.observe_storage_query("session_list", 0.0001);
        if (t == 0 && i % 500 == 0) (void)m.serialize();  // scrapes run alongside
      }
    });
  }
  for (auto& th : threads) th.join();
  auto text = m.serialize();
  auto get = metric_sample(
      text, R"(http_requests_total{method="GET",route="/api/v1/sessions",status="200"})");
  auto post = metric_sample(
      text, R"(http_requests_total{method="POST",route="/api/v1/sessions",status="200"})");
  ASSERT_TRUE(get && post) << text;
  EXPECT_EQ(*get + *post, kThreads * kPerThread);
  EXPECT_EQ(*get, kThreads * kPerThread / 2);
  EXPECT_EQ(metric_sample(text, R"(http_request_duration_seconds_count{route="/api/v1/sessions"})"),
            kThreads * kPerThread);
  EXPECT_EQ(metric_sample(
                text, R"(parley_storage_query_duration_seconds_count{operation="session_list"})"),
            kThreads * kPerThread);
}

}  // namespace

// Health endpoints: liveness (`/health`, `/api/v1/health/liveness`), readiness with its four
// checks (database, disk, memory, draining) both passing and failing on a disk threshold nobody can
// meet, and the diagnostics endpoint, which is off by default, and when on may require a bearer
// token and must never show secrets.
#include <regex>
#include <string>

#include "harness.hpp"

namespace parley_it {
namespace {

TEST(Health, LivenessOnBothPaths) {
  ParleyProcess p;
  for (const char* path : {"/health", "/api/v1/health/liveness"}) {
    SCOPED_TRACE(path);
    auto r = http("GET", p.port(), path);
    ASSERT_EQ(r.status, 200) << r.describe();
    auto ct = r.header("Content-Type");
    ASSERT_TRUE(ct.has_value()) << r.describe();
    EXPECT_TRUE(icontains(*ct, "application/json")) << *ct;
    EXPECT_TRUE(r.header("X-Request-Id").has_value()) << r.describe();
    // RFC 9110 IMF-fixdate, e.g. "Sun, 22 Nov 2026 10:00:00 GMT".
    auto date = r.header("Date");
    ASSERT_TRUE(date.has_value()) << r.describe();
    EXPECT_EQ(date->size(), 29u) << *date;
    EXPECT_TRUE(date->size() > 4 && date->substr(date->size() - 4) == " GMT") << *date;
    auto j = r.json_or_discarded();
    ASSERT_TRUE(j.is_object()) << r.describe();
    EXPECT_EQ(j.value("status", ""), "alive") << r.body;
    ASSERT_TRUE(j.contains("version") && j["version"].is_string()) << r.body;
    EXPECT_FALSE(j["version"].get<std::string>().empty()) << r.body;
    ASSERT_TRUE(j.contains("uptime_seconds") && j["uptime_seconds"].is_number()) << r.body;
    EXPECT_GE(j["uptime_seconds"].get<double>(), 0.0) << r.body;
    // A server that just started cannot have been up for an hour.
    EXPECT_LT(j["uptime_seconds"].get<double>(), 3600.0) << r.body;
  }
}

TEST(Health, ReadyLineCarriesAddressPortAndStartupTime) {
  ParleyProcess p;
  const auto& ready = p.ready_line();
  EXPECT_EQ(ready.value("address", ""), "127.0.0.1") << ready.dump();
  EXPECT_TRUE(ready.contains("startup_ms") && ready["startup_ms"].is_number()) << ready.dump();
  EXPECT_EQ(ready.value("level", ""), "info") << ready.dump();
  // The advertised port is the one actually serving.
  EXPECT_EQ(http("GET", p.port(), "/health").status, 200);
}

TEST(Health, ReadinessAllChecksOk) {
  ParleyProcess p;
  auto r = http("GET", p.port(), "/api/v1/health/readiness");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto j = r.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << r.describe();
  EXPECT_EQ(j.value("status", ""), "ready") << r.body;
  ASSERT_TRUE(j.contains("checks") && j["checks"].is_object()) << r.body;
  const auto& c = j["checks"];

  ASSERT_TRUE(c.contains("database")) << r.body;
  EXPECT_EQ(c["database"].value("status", ""), "ok") << r.body;
  ASSERT_TRUE(c["database"].contains("latency_ms") && c["database"]["latency_ms"].is_number())
      << r.body;
  EXPECT_GE(c["database"]["latency_ms"].get<double>(), 0.0);

  ASSERT_TRUE(c.contains("disk")) << r.body;
  EXPECT_EQ(c["disk"].value("status", ""), "ok") << r.body;
  ASSERT_TRUE(c["disk"].contains("free_bytes") && c["disk"]["free_bytes"].is_number_integer())
      << r.body;
  ASSERT_TRUE(c["disk"].contains("min_free_bytes") &&
              c["disk"]["min_free_bytes"].is_number_integer())
      << r.body;
  // Default health.min_free_disk is 100MiB.
  EXPECT_EQ(c["disk"]["min_free_bytes"].get<long long>(), 100LL * 1024 * 1024) << r.body;
  EXPECT_GE(c["disk"]["free_bytes"].get<long long>(), c["disk"]["min_free_bytes"].get<long long>());

  ASSERT_TRUE(c.contains("memory")) << r.body;
  EXPECT_EQ(c["memory"].value("status", ""), "ok") << r.body;
  ASSERT_TRUE(c["memory"].contains("resident_bytes") && c["memory"]["resident_bytes"].is_number())
      << r.body;
  EXPECT_GT(c["memory"]["resident_bytes"].get<double>(), 0.0) << r.body;
  ASSERT_TRUE(c["memory"].contains("max_bytes")) << r.body;
  EXPECT_EQ(c["memory"]["max_bytes"], 0) << "default health.max_memory is 0: " << r.body;

  ASSERT_TRUE(c.contains("draining")) << r.body;
  EXPECT_EQ(c["draining"].value("status", ""), "ok") << r.body;
}

TEST(Health, ReadinessFailsWhenDiskThresholdUnreachable) {
  ParleyProcess p({.args = {"--set", "health.min_free_disk=1000000GiB"}});
  auto r = http("GET", p.port(), "/api/v1/health/readiness");
  ASSERT_EQ(r.status, 503) << r.describe();
  auto j = r.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << r.describe();
  EXPECT_EQ(j.value("status", ""), "not_ready") << r.body;
  ASSERT_TRUE(j.contains("checks") && j["checks"].is_object()) << r.body;
  EXPECT_EQ(j["checks"]["disk"].value("status", ""), "fail") << r.body;
  EXPECT_EQ(j["checks"]["disk"].value("min_free_bytes", 0LL), 1000000LL * 1024 * 1024 * 1024)
      << r.body;
  // Only the disk fails: the other checks still say ok.
  EXPECT_EQ(j["checks"]["database"].value("status", ""), "ok") << r.body;
  EXPECT_EQ(j["checks"]["memory"].value("status", ""), "ok") << r.body;
  EXPECT_EQ(j["checks"]["draining"].value("status", ""), "ok") << r.body;
  // Liveness is unaffected: the process is alive, only not ready.
  EXPECT_EQ(http("GET", p.port(), "/health").status, 200);
}

TEST(Health, ReadinessFailsWhenMemoryThresholdTooLow) {
  // 1 KiB of resident memory cannot be met by any process.
  ParleyProcess p({.args = {"--set", "health.max_memory=1KiB"}});
  auto r = http("GET", p.port(), "/api/v1/health/readiness");
  ASSERT_EQ(r.status, 503) << r.describe();
  auto j = r.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << r.describe();
  EXPECT_EQ(j.value("status", ""), "not_ready") << r.body;
  EXPECT_EQ(j["checks"]["memory"].value("status", ""), "fail") << r.body;
  EXPECT_EQ(j["checks"]["memory"].value("max_bytes", 0LL), 1024) << r.body;
}

TEST(Diagnostics, DisabledByDefault) {
  ParleyProcess p;
  auto r = http("GET", p.port(), "/api/v1/health/diagnostics");
  EXPECT_TRUE(is_error(r, 404, "diagnostics_disabled"));
}

TEST(Diagnostics, EnabledWithoutTokenReportsBuildConfigStorage) {
  ParleyProcess p({.args = {"--set", "diagnostics.enabled=true"}});
  // Create something so the database is not empty.
  ASSERT_EQ(http("POST", p.port(), "/api/v1/sessions", R"({"user_id":"diag"})").status, 201);

  auto r = http("GET", p.port(), "/api/v1/health/diagnostics");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto j = r.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << r.describe();

  ASSERT_TRUE(j.contains("build") && j["build"].is_object()) << r.body;
  ASSERT_TRUE(j["build"].contains("version") && j["build"]["version"].is_string()) << r.body;
  // The build version is the one liveness reports.
  auto live = http("GET", p.port(), "/health").json_or_discarded();
  EXPECT_EQ(j["build"]["version"], live["version"]) << r.body;

  ASSERT_TRUE(j.contains("config") && j["config"].is_object()) << r.body;
  EXPECT_TRUE(j["config"].contains("server") && j["config"]["server"].is_object()) << r.body;
  EXPECT_EQ(j["config"]["diagnostics"]["enabled"], true) << r.body;

  ASSERT_TRUE(j.contains("storage") && j["storage"].is_object()) << r.body;
  const auto& s = j["storage"];
  ASSERT_TRUE(s.contains("size_bytes") && s["size_bytes"].is_number_integer()) << r.body;
  EXPECT_GT(s["size_bytes"].get<long long>(), 0) << r.body;
  ASSERT_TRUE(s.contains("wal_size_bytes") && s["wal_size_bytes"].is_number_integer()) << r.body;
  EXPECT_GE(s["wal_size_bytes"].get<long long>(), 0) << r.body;
  EXPECT_EQ(s.value("integrity_check", ""), "ok") << r.body;
  EXPECT_TRUE(s.contains("schema_version") && !s["schema_version"].is_null()) << r.body;

  EXPECT_TRUE(j.contains("pools")) << r.body;
  ASSERT_TRUE(j.contains("uptime_seconds") && j["uptime_seconds"].is_number()) << r.body;
}

TEST(Diagnostics, TokenRequiredAndRedacted) {
  const std::string token = "diag-token-7f3a9c-0123456789abcdef0123";
  ParleyProcess p({.args = {"--set", "diagnostics.enabled=true", "--set", "admin_key=" + token}});
  const std::string path = "/api/v1/health/diagnostics";

  auto none = http("GET", p.port(), path);
  ASSERT_EQ(none.status, 401) << none.describe();
  EXPECT_EQ(none.json_or_discarded()["error"].value("type", ""), "authentication_error")
      << none.body;
  EXPECT_TRUE(none.header("X-Request-Id").has_value());

  auto wrong = http("GET", p.port(), path, "", {{"Authorization", "Bearer not-the-token"}});
  ASSERT_EQ(wrong.status, 401) << wrong.describe();
  EXPECT_EQ(wrong.json_or_discarded()["error"].value("type", ""), "authentication_error");

  // The token with the wrong scheme is not accepted either.
  auto basic = http("GET", p.port(), path, "", {{"Authorization", "Basic " + token}});
  EXPECT_EQ(basic.status, 401) << basic.describe();

  // A prefix of the token must not be enough (no prefix comparison).
  auto prefix = http("GET", p.port(), path, "",
                     {{"Authorization", "Bearer " + token.substr(0, token.size() - 1)}});
  EXPECT_EQ(prefix.status, 401) << prefix.describe();

  auto ok = http("GET", p.port(), path, "", {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(ok.status, 200) << ok.describe();
  auto j = ok.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << ok.describe();
  EXPECT_EQ(j["config"]["admin_key"], "[REDACTED]") << ok.body;
  EXPECT_EQ(ok.body.find(token), std::string::npos) << "diagnostics body shows the token";
}

}  // namespace
}  // namespace parley_it

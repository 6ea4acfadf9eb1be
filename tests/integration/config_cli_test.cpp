// The command line and configuration: `version`, `--help`, `check-config` (defaults, precedence
// defaults < YAML < PARLEY_* environment < flags, every problem reported at once with its key
// path, secrets from *_FILE redacted), `migrate` (creates the database; a second run changes
// nothing), startup failures naming their phase ('configuration', 'storage', 'listen'), and that a
// secret never reaches any log line of a running server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

// Sizes may be printed as a byte count or as a string with a binary unit ("4KiB", "4 KiB").
std::optional<long long> as_bytes(const json& v) {
  if (v.is_number_integer()) return v.get<long long>();
  if (!v.is_string()) return std::nullopt;
  std::smatch m;
  std::string s = v.get<std::string>();
  if (!std::regex_match(s, m, std::regex(R"(\s*([0-9]+)\s*([A-Za-z]*)\s*)"))) return std::nullopt;
  long long n = std::stoll(m[1].str());
  std::string unit = m[2].str();
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (unit.empty() || unit == "b") return n;
  if (unit == "kib" || unit == "k" || unit == "kb") return n * 1024;
  if (unit == "mib" || unit == "m" || unit == "mb") return n * 1024 * 1024;
  if (unit == "gib" || unit == "g" || unit == "gb") return n * 1024 * 1024 * 1024;
  return std::nullopt;
}

// Durations may be printed as "7s", "7000ms", or a bare number of seconds or milliseconds.
bool is_duration_ms(const json& v, long long expected_ms) {
  if (v.is_number()) {
    double d = v.get<double>();
    return d == static_cast<double>(expected_ms) || d * 1000 == static_cast<double>(expected_ms);
  }
  if (!v.is_string()) return false;
  std::smatch m;
  std::string s = v.get<std::string>();
  if (!std::regex_match(s, m, std::regex(R"(\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)\s*)"))) {
    return false;
  }
  double n = std::stod(m[1].str());
  std::string u = m[2].str();
  double factor = u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : 3600000;
  return n * factor == static_cast<double>(expected_ms);
}

json parse_stdout_json(const CommandResult& r) {
  auto j = json::parse(r.out, nullptr, false);
  return j;
}

// Lines of `text` that mention `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

// A listening socket on an ephemeral loopback port, held for the test's lifetime.
class PortHolder {
 public:
  PortHolder() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0) {
      return;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~PortHolder() {
    if (fd_ >= 0) ::close(fd_);
  }
  PortHolder(const PortHolder&) = delete;
  PortHolder& operator=(const PortHolder&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// ---------------------------------------------------------------------------------------------

TEST(Cli, VersionExitsZero) {
  auto r = run_parley({"version"});
  ASSERT_TRUE(r.status.has_value()) << r.describe();
  EXPECT_EQ(r.exit_code(), 0) << r.describe();
  EXPECT_TRUE(std::regex_search(r.out, std::regex("[0-9]+\\.[0-9]+"))) << r.describe();
}

TEST(Cli, VersionMatchesLiveness) {
  auto v = run_parley({"version"});
  ASSERT_EQ(v.exit_code(), 0) << v.describe();
  ParleyProcess p;
  auto live = http("GET", p.port(), "/health").json_or_discarded();
  ASSERT_TRUE(live.contains("version") && live["version"].is_string());
  EXPECT_NE(v.out.find(live["version"].get<std::string>()), std::string::npos)
      << "`parley version` printed '" << v.out << "' but /health reports " << live["version"];
}

TEST(Cli, HelpExitsZeroAndListsCommands) {
  auto r = run_parley({"--help"});
  EXPECT_EQ(r.exit_code(), 0) << r.describe();
  const std::string all = r.out + r.err;
  for (const char* cmd : {"serve", "check-config", "migrate", "version"}) {
    EXPECT_NE(all.find(cmd), std::string::npos) << "--help does not mention " << cmd << "\n"
                                                << r.describe();
  }
}

TEST(Cli, UnknownCommandFails) {
  auto r = run_parley({"frobnicate"});
  ASSERT_TRUE(r.status.has_value()) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
}

// ---------------------------------------------------------------------------------------------

TEST(CheckConfig, DefaultsAsJson) {
  auto r = run_parley({"check-config", "--json"});
  ASSERT_EQ(r.exit_code(), 0) << r.describe();
  auto j = parse_stdout_json(r);
  ASSERT_TRUE(j.is_object()) << "stdout is not one JSON object\n" << r.describe();
  EXPECT_EQ(j["server"]["listen"], "127.0.0.1:8080") << r.out;
  EXPECT_EQ(as_bytes(j["server"]["max_body_size"]), 1024 * 1024) << r.out;
  EXPECT_EQ(as_bytes(j["server"]["max_header_size"]), 16 * 1024) << r.out;
  EXPECT_TRUE(is_duration_ms(j["server"]["read_timeout"], 30000)) << r.out;
  EXPECT_TRUE(is_duration_ms(j["server"]["idle_timeout"], 60000)) << r.out;
  EXPECT_TRUE(is_duration_ms(j["server"]["shutdown_grace"], 25000)) << r.out;
  EXPECT_EQ(j["server"]["max_connections"], 10000) << r.out;
  EXPECT_EQ(j["server"]["threads"], 0) << r.out;
  EXPECT_EQ(j["storage"]["url"], "") << r.out;
  EXPECT_EQ(j["storage"]["read_connections"], 4) << r.out;
  EXPECT_EQ(j["log"]["level"], "info") << r.out;
  EXPECT_EQ(j["log"]["access_log"], true) << r.out;
  EXPECT_EQ(as_bytes(j["health"]["min_free_disk"]), 100LL * 1024 * 1024) << r.out;
  EXPECT_EQ(j["diagnostics"]["enabled"], false) << r.out;
  // An unset secret is not "[REDACTED]" (there is nothing to hide).
  EXPECT_TRUE(j["admin_key"] == "" || j["admin_key"].is_null()) << r.out;
}

TEST(CheckConfig, YamlOutputByDefault) {
  auto r = run_parley({"check-config"});
  ASSERT_EQ(r.exit_code(), 0) << r.describe();
  // YAML, not JSON: nested keys appear as "key:" lines.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\\n)server:"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n\\s+max_body_size:"))) << r.out;
}

TEST(CheckConfig, ReportsAllProblemsAtOnce) {
  TempDir dir;
  auto cfg = dir.write_file("bad.yaml",
                            "server:\n"
                            "  max_body_size: lots\n"
                            "  no_such_key: 1\n"
                            "log:\n"
                            "  level: loud\n");
  auto r = run_parley({"check-config", "--config", cfg});
  ASSERT_TRUE(r.status.has_value()) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  // One line per problem, each naming its key path: three different lines.
  auto a = lines_with(r.err, "server.max_body_size");
  auto b = lines_with(r.err, "server.no_such_key");
  auto c = lines_with(r.err, "log.level");
  EXPECT_FALSE(a.empty()) << "server.max_body_size not reported\n" << r.describe();
  EXPECT_FALSE(b.empty()) << "server.no_such_key not reported\n" << r.describe();
  EXPECT_FALSE(c.empty()) << "log.level not reported\n" << r.describe();
  if (!a.empty() && !b.empty() && !c.empty()) {
    EXPECT_TRUE(a[0] != b[0] && b[0] != c[0] && a[0] != c[0])
        << "problems are not on separate lines\n"
        << r.err;
  }
}

TEST(CheckConfig, ReportsProblemsFromEverySourceAtOnce) {
  TempDir dir;
  auto cfg = dir.write_file("bad.yaml", "log:\n  level: shouting\n");
  auto r = run_parley({"check-config", "--config", cfg, "--set", "server.idle_timeout=forever"},
                      {.env = {{"PARLEY_SERVER_MAX_CONNECTIONS", "many"}}});
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_FALSE(lines_with(r.err, "log.level").empty()) << r.describe();
  EXPECT_FALSE(lines_with(r.err, "server.idle_timeout").empty()) << r.describe();
  EXPECT_FALSE(lines_with(r.err, "server.max_connections").empty()) << r.describe();
}

TEST(CheckConfig, UnknownKeysAreErrors) {
  {
    auto r = run_parley({"check-config", "--set", "server.bogus=1"});
    EXPECT_NE(r.exit_code(), 0) << r.describe();
    EXPECT_NE(r.err.find("server.bogus"), std::string::npos) << r.describe();
  }
  {
    auto r = run_parley({"check-config"}, {.env = {{"PARLEY_SERVER_BOGUS", "1"}}});
    EXPECT_NE(r.exit_code(), 0) << "unknown PARLEY_* variable accepted\n" << r.describe();
    EXPECT_TRUE(r.err.find("PARLEY_SERVER_BOGUS") != std::string::npos ||
                r.err.find("server.bogus") != std::string::npos)
        << r.describe();
  }
  {
    TempDir dir;
    auto cfg = dir.write_file("c.yaml", "nonsense_top_level: 3\n");
    auto r = run_parley({"check-config", "--config", cfg});
    EXPECT_NE(r.exit_code(), 0) << r.describe();
    EXPECT_NE(r.err.find("nonsense_top_level"), std::string::npos) << r.describe();
  }
}

TEST(CheckConfig, PrecedenceYamlEnvFlag) {
  TempDir dir;
  auto cfg = dir.write_file("p.yaml", "data_dir: " + dir.file("from-yaml") +
                                          "\n"
                                          "server:\n"
                                          "  listen: 127.0.0.1:1111\n"
                                          "  max_body_size: 2KiB\n"
                                          "  max_connections: 77\n"
                                          "  threads: 3\n"
                                          "  idle_timeout: 7s\n"
                                          "log:\n"
                                          "  level: warn\n");
  auto r = run_parley({"check-config", "--json", "--config", cfg, "--set",
                       "server.listen=127.0.0.1:3333", "--set", "server.max_body_size=4KiB"},
                      {.env = {{"PARLEY_SERVER_LISTEN", "127.0.0.1:2222"},
                               {"PARLEY_SERVER_MAX_BODY_SIZE", "3KiB"},
                               {"PARLEY_SERVER_MAX_CONNECTIONS", "88"},
                               {"PARLEY_LOG_LEVEL", "error"},
                               {"PARLEY_LOG_ACCESS_LOG", "false"}}});
  ASSERT_EQ(r.exit_code(), 0) << r.describe();
  auto j = parse_stdout_json(r);
  ASSERT_TRUE(j.is_object()) << r.describe();
  // flag > env > YAML
  EXPECT_EQ(j["server"]["listen"], "127.0.0.1:3333") << r.out;
  EXPECT_EQ(as_bytes(j["server"]["max_body_size"]), 4096) << r.out;
  // env > YAML
  EXPECT_EQ(j["server"]["max_connections"], 88) << r.out;
  EXPECT_EQ(j["log"]["level"], "error") << r.out;
  // env > default
  EXPECT_EQ(j["log"]["access_log"], false) << r.out;
  // YAML > default
  EXPECT_EQ(j["server"]["threads"], 3) << r.out;
  EXPECT_TRUE(is_duration_ms(j["server"]["idle_timeout"], 7000)) << r.out;
  EXPECT_EQ(j["data_dir"], dir.file("from-yaml")) << r.out;
  // untouched default
  EXPECT_TRUE(is_duration_ms(j["server"]["write_timeout"], 30000)) << r.out;
}

TEST(CheckConfig, DataDirFromEnvironment) {
  TempDir dir;
  auto r = run_parley({"check-config", "--json"}, {.env = {{"PARLEY_DATA_DIR", dir.path()}}});
  ASSERT_EQ(r.exit_code(), 0) << r.describe();
  EXPECT_EQ(parse_stdout_json(r)["data_dir"], dir.path()) << r.out;
}

TEST(CheckConfig, SecretFromFileIsRedacted) {
  TempDir dir;
  const std::string secret = "tok-FILE-8c1e55d2b7-0123456789abcdef012";
  auto token_file = dir.write_file("token", secret);
  for (const auto& [args, env] : std::vector<std::pair<std::vector<std::string>, EnvVars>>{
           {{"check-config", "--json"}, {{"PARLEY_ADMIN_KEY_FILE", token_file}}},
           {{"check-config", "--json", "--set", "admin_key_file=" + token_file}, {}},
           {{"check-config", "--json"}, {{"PARLEY_ADMIN_KEY", secret}}},
           {{"check-config"}, {{"PARLEY_ADMIN_KEY_FILE", token_file}}}}) {
    SCOPED_TRACE(::testing::PrintToString(args) + " env " + ::testing::PrintToString(env));
    auto r = run_parley(args, {.env = env});
    ASSERT_EQ(r.exit_code(), 0) << r.describe();
    EXPECT_EQ(r.out.find(secret), std::string::npos) << "secret printed\n" << r.describe();
    EXPECT_EQ(r.err.find(secret), std::string::npos) << "secret printed\n" << r.describe();
    EXPECT_NE(r.out.find("[REDACTED]"), std::string::npos) << r.describe();
    if (args.size() > 1 && args[1] == "--json") {
      EXPECT_EQ(parse_stdout_json(r)["admin_key"], "[REDACTED]") << r.out;
    }
  }
}

TEST(CheckConfig, MissingTokenFileIsAnError) {
  TempDir dir;
  auto r = run_parley({"check-config"},
                      {.env = {{"PARLEY_ADMIN_KEY_FILE", dir.file("does-not-exist")}}});
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("admin_key"), std::string::npos) << r.describe();
}

// ---------------------------------------------------------------------------------------------

TEST(Startup, InvalidConfigFailsInConfigurationPhase) {
  TempDir data;
  auto r = run_parley({"serve", "--listen", "127.0.0.1:0", "--data-dir", data.path(), "--set",
                       "server.max_body_size=huge"},
                      {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << "serve with an invalid config did not exit\n" << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("startup failed"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("'configuration'"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("server.max_body_size"), std::string::npos) << r.describe();
}

TEST(Startup, PortInUseFailsInListenPhase) {
  PortHolder holder;
  ASSERT_GT(holder.port(), 0);
  TempDir data;
  auto r = run_parley({"serve", "--listen", "127.0.0.1:" + std::to_string(holder.port()),
                       "--data-dir", data.path()},
                      {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << "serve on a busy port did not exit\n" << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("startup failed"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("'listen'"), std::string::npos) << r.describe();
  EXPECT_LT(r.elapsed_ms, 5000) << "startup failure was not quick";
}

TEST(Startup, DataDirUnderRegularFileFailsInStoragePhase) {
  TempDir dir;
  auto file = dir.write_file("plain-file", "not a directory");
  auto r = run_parley({"serve", "--listen", "127.0.0.1:0", "--data-dir", file + "/sub"},
                      {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("startup failed"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("'storage'"), std::string::npos) << r.describe();
}

TEST(Startup, MalformedStorageUrlFails) {
  TempDir data;
  auto r = run_parley({"serve", "--listen", "127.0.0.1:0", "--data-dir", data.path(), "--set",
                       "storage.url=foo://bar"},
                      {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("storage.url"), std::string::npos) << r.describe();
}

TEST(Startup, SqliteStorageUrlIsUsed) {
  TempDir elsewhere;
  const std::string db = elsewhere.file("custom.db");
  ParleyProcess p({.args = {"--set", "storage.url=sqlite://" + db}});
  auto r = http("POST", p.port(), "/api/v1/sessions", R"({"title":"custom db"})");
  ASSERT_EQ(r.status, 201) << r.describe();
  EXPECT_TRUE(file_exists(db)) << "storage.url=sqlite://" << db << " did not create that file";
  EXPECT_FALSE(file_exists(p.data_dir() + "/parley.db"))
      << "database created in the data dir although storage.url points elsewhere";
}

TEST(Startup, ServeAppliesYamlAndEnvironment) {
  TempDir dir;
  auto cfg = dir.write_file("serve.yaml", "server:\n  max_body_size: 1KiB\n");
  // YAML shrinks the body limit; the environment sets a disk threshold nobody can meet.
  ParleyProcess p(
      {.args = {"--config", cfg}, .env = {{"PARLEY_HEALTH_MIN_FREE_DISK", "1000000GiB"}}});
  auto big = http("POST", p.port(), "/api/v1/sessions",
                  R"({"metadata":{"pad":")" + std::string(2000, 'x') + R"("}})");
  EXPECT_TRUE(is_error(big, 413, "body_too_large")) << "YAML server.max_body_size not applied";
  EXPECT_EQ(http("GET", p.port(), "/api/v1/health/readiness").status, 503)
      << "PARLEY_HEALTH_MIN_FREE_DISK not applied";
}

TEST(Startup, ServeFlagsBeatEnvironment) {
  // The environment points at a busy port and another data dir; the harness's --listen
  // 127.0.0.1:0 and --data-dir flags must win.
  PortHolder busy;
  ASSERT_GT(busy.port(), 0);
  TempDir other;
  ParleyProcess p({.env = {{"PARLEY_SERVER_LISTEN", "127.0.0.1:" + std::to_string(busy.port())},
                           {"PARLEY_DATA_DIR", other.path()}}});
  EXPECT_NE(p.port(), busy.port());
  ASSERT_EQ(http("POST", p.port(), "/api/v1/sessions", "{}").status, 201);
  EXPECT_TRUE(file_exists(p.data_dir() + "/parley.db"));
  EXPECT_FALSE(file_exists(other.file("parley.db"))) << "PARLEY_DATA_DIR beat --data-dir";
}

// ---------------------------------------------------------------------------------------------

// Everything `migrate` leaves in the database: schema, user_version, and row counts per table.
std::string database_fingerprint(const std::string& db, std::string* error) {
  auto schema = sqlite_query(db, "SELECT type, name, sql FROM sqlite_master ORDER BY name", error);
  if (!schema) return "";
  std::string fp;
  for (const auto& row : *schema) {
    fp += row[0] + " " + row[1] + ": " + row[2] + "\n";
    if (row[0] == "table" && !row[1].starts_with("sqlite_")) {
      auto count = sqlite_query(db, "SELECT count(*) FROM \"" + row[1] + "\"", error);
      if (!count) return "";
      fp += "  rows=" + count->at(0).at(0) + "\n";
    }
  }
  auto uv = sqlite_query(db, "PRAGMA user_version", error);
  if (!uv) return "";
  fp += "user_version=" + uv->at(0).at(0) + "\n";
  return fp;
}

TEST(Migrate, CreatesDatabaseAndSecondRunIsNoop) {
  TempDir data;
  auto first = run_parley({"migrate", "--data-dir", data.path()});
  ASSERT_EQ(first.exit_code(), 0) << first.describe();
  const std::string db = data.file("parley.db");
  ASSERT_TRUE(file_exists(db)) << "migrate did not create " << db;

  std::string error;
  auto tables = sqlite_query(
      db, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'", &error);
  ASSERT_TRUE(tables.has_value()) << error;
  EXPECT_FALSE(tables->empty()) << "migrate created no tables";
  auto fp1 = database_fingerprint(db, &error);
  ASSERT_FALSE(fp1.empty()) << error;

  auto second = run_parley({"migrate", "--data-dir", data.path()});
  ASSERT_EQ(second.exit_code(), 0) << second.describe();
  auto fp2 = database_fingerprint(db, &error);
  ASSERT_FALSE(fp2.empty()) << error;
  EXPECT_EQ(fp1, fp2) << "the second migrate changed the database";

  // The migrated directory serves.
  ParleyProcess p({.existing_data_dir = data.path()});
  EXPECT_EQ(http("POST", p.port(), "/api/v1/sessions", "{}").status, 201);
}

// ---------------------------------------------------------------------------------------------

TEST(Secrets, NeverInAnyLogLine) {
  TempDir dir;
  const std::string secret = "S3cr3tTokenValue9f2e71-0123456789abcdef";
  auto token_file = dir.write_file("token", secret);
  const EnvVars env = {{"PARLEY_ADMIN_KEY_FILE", token_file}};
  ParleyProcess p(
      {.args = {"--set", "log.level=debug", "--set", "diagnostics.enabled=true"}, .env = env});

  // Requests that carry the secret in the path, the query, and headers.
  http("GET", p.port(), "/" + secret);
  http("GET", p.port(), "/api/v1/sessions/" + secret);
  http("GET", p.port(), "/health?token=" + secret);
  http("PATCH", p.port(), "/api/v1/sessions/" + secret, R"({"title":"x"})");
  http("GET", p.port(), "/api/v1/health/diagnostics", "",
       {{"Authorization", "Bearer " + secret + "x"}});
  auto diag = http("GET", p.port(), "/api/v1/health/diagnostics", "",
                   {{"Authorization", "Bearer " + secret}});
  EXPECT_EQ(diag.status, 200) << "token from PARLEY_ADMIN_KEY_FILE not accepted\n"
                              << diag.describe();
  EXPECT_EQ(diag.body.find(secret), std::string::npos) << "diagnostics body shows the secret";

  auto cc = run_parley({"check-config", "--json"}, {.env = env});
  EXPECT_EQ(cc.exit_code(), 0) << cc.describe();
  EXPECT_EQ(cc.out.find(secret), std::string::npos) << cc.describe();
  EXPECT_EQ(cc.err.find(secret), std::string::npos) << cc.describe();

  // The requests above were logged (access log on): make sure we look at a complete log.
  EXPECT_TRUE(p.wait_for_log(
      [](const json& j) {
        return j.value("message", "") == "request" &&
               j.value("route", "") == "/api/v1/health/diagnostics" && j.value("status", 0) == 200;
      },
      Millis{3000}))
      << p.output_dump();
  ASSERT_TRUE(p.send_signal(SIGTERM));
  auto st = p.wait_exit(Millis{10000});
  EXPECT_TRUE(st.has_value());
  p.drain_output();

  int checked = 0;
  for (const auto& line : p.logs()) {
    ++checked;
    EXPECT_EQ(line.find(secret), std::string::npos) << "stdout line leaks the secret: " << line;
  }
  for (const auto& line : p.stderr_lines()) {
    EXPECT_EQ(line.find(secret), std::string::npos) << "stderr line leaks the secret: " << line;
  }
  EXPECT_GT(checked, 5) << "suspiciously few log lines";
}

}  // namespace
}  // namespace parley_it

namespace parley_it {
namespace {

// The README's settings table is generated from the modules' declarations; this fails when
// a setting is added, removed or re-described without regenerating it
// (`parley config reference --markdown`).
TEST(SettingsReference, ReadmeTableIsTheGeneratedOne) {
  auto r = run_parley({"config", "reference", "--markdown"});
  ASSERT_EQ(r.exit_code(), 0) << r.describe();
  ASSERT_NE(r.out.find("| `server.max_body_size` | `1MiB` |"), std::string::npos) << r.out;
  std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "README.md not found";
  std::stringstream readme;
  readme << in.rdbuf();
  const std::string text = readme.str();
  const std::string begin = "<!-- settings:begin";
  const std::string end = "<!-- settings:end -->";
  const auto b = text.find(begin);
  const auto e = text.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  const auto table_start = text.find('\n', b) + 1;
  EXPECT_EQ(text.substr(table_start, e - table_start), r.out)
      << "README.md's settings table is out of date: regenerate it with "
         "`parley config reference --markdown`";
}

// A distinct canary in every field that holds a secret; none may appear in any output: the
// configuration check (YAML and JSON), a configuration problem, diagnostics, answers to
// clients, and every log line, at debug level.
TEST(Secrets, NoSecretBearingFieldEverShows) {
  FakeProvider upstream;
  TempDir dir;
  const std::string admin = "canary-admin-key-0123456789abcdef0123";
  const std::string jwt = "canary-jwt-secret-0123456789abcdef0123";
  const std::string api_key = "canary-provider-api-key-5f1e";
  const std::string header = "canary-corp-token-77d0";
  const std::string proxy_password = "canary-proxy-password-1c9a";
  const std::string base_password = "canary-base-url-password-93b2";
  const std::string db_password = "canary-database-password-4e07";
  const std::vector<std::string> canaries = {admin,          jwt,           api_key,    header,
                                             proxy_password, base_password, db_password};
  // The provider is reached through a proxy that refuses connections: calls fail, and their
  // errors must not carry the proxy's credentials either.
  const std::string base = upstream.base_url();
  const std::string authority = base.substr(base.find("://") + 3);
  const std::string yaml =
      "auth:\n"
      "  jwt_secret: " +
      jwt +
      "\n"
      "providers:\n"
      "  corp:\n"
      "    type: openai\n"
      "    base_url: http://parley:" +
      base_password + "@" + authority +
      "/v1\n"
      "    api_key: " +
      api_key +
      "\n"
      "    default_model: gpt-fake\n"
      "    headers: {X-Corp-Token: " +
      header +
      "}\n"
      "    proxy: http://proxyuser:" +
      proxy_password +
      "@127.0.0.1:1\n"
      "llm:\n"
      "  default_model: corp/gpt-fake\n"
      "  max_retries: 0\n";
  const std::string config = dir.write_file("parley.yaml", yaml);
  const EnvVars env = {{"PARLEY_ADMIN_KEY", admin}};
  auto expect_clean = [&](const std::string& where, const std::string& text) {
    for (const auto& c : canaries) {
      EXPECT_EQ(text.find(c), std::string::npos) << where << " shows " << c << ":\n" << text;
    }
  };

  for (const char* format : {"--json", ""}) {
    std::vector<std::string> args = {
        "check-config", "--config", config, "--set",
        "storage.url=postgresql://parley:" + db_password + "@db.internal/parley"};
    if (*format) args.emplace_back(format);
    auto cc = run_parley(args, {.env = env});
    EXPECT_EQ(cc.exit_code(), 0) << cc.describe();
    EXPECT_NE(cc.out.find("[REDACTED]"), std::string::npos) << cc.out;
    expect_clean("check-config", cc.out + cc.err);
  }
  // A refused value of a secret setting is not echoed either.
  auto bad = run_parley({"check-config", "--set", "auth.jwt_secret=" + api_key}, {.env = env});
  EXPECT_NE(bad.exit_code(), 0);
  expect_clean("a configuration problem", bad.out + bad.err);

  ParleyProcess p({.args = {"--config", config, "--set", "log.level=debug", "--set",
                            "diagnostics.enabled=true"},
                   .env = env});
  const HeaderList as_admin = {{"Authorization", "Bearer " + admin}};
  auto diag = http("GET", p.port(), "/api/v1/health/diagnostics", "", as_admin);
  EXPECT_EQ(diag.status, 200) << diag.describe();
  expect_clean("diagnostics", diag.body);
  auto chat =
      http("POST", p.port(), "/v1/chat/completions",
           R"({"model":"corp/gpt-fake","messages":[{"role":"user","content":"hi"}]})", as_admin);
  EXPECT_GE(chat.status, 500) << chat.describe();  // the proxy refuses
  expect_clean("an upstream failure's answer", chat.body);
  auto turn = http("POST", p.port(), "/api/v1/chat", R"({"message":"hi"})", as_admin);
  expect_clean("a chat turn's answer", turn.body);
  EXPECT_EQ(upstream.calls(), 0) << "the proxy should have refused every call";

  ASSERT_TRUE(p.send_signal(SIGTERM));
  EXPECT_TRUE(p.wait_exit(Millis{10000}).has_value());
  p.drain_output();
  int lines = 0;
  for (const auto& line : p.logs()) {
    ++lines;
    expect_clean("a log line", line);
  }
  for (const auto& line : p.stderr_lines()) expect_clean("stderr", line);
  EXPECT_GT(lines, 5);
}

}  // namespace
}  // namespace parley_it

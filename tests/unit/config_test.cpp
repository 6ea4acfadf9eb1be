// Configuration loading (config/settings.hpp, with every module's declarations from
// app/settings.cpp). Covers the four layers and their precedence
// (defaults < YAML file < PARLEY_* environment < --set flags) through config::load with a real
// temporary YAML file; unknown keys from each source with their "did you mean" suggestion;
// collecting every problem at once with its path and source (file:line, env NAME, flag);
// secrets read from "<path>_file" files and redacted by to_json/to_yaml; passwords inside
// storage.url redacted and reported by secret_values; rejection of bad values of each kind;
// YAML nested too deeply to be a setting reported once; parse_host_port, sqlite_path, the
// schema and its reference table, and load_environment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/health.hpp"
#include "app/settings.hpp"
#include "auth/authenticator.hpp"
#include "chat/settings.hpp"
#include "config/settings.hpp"
#include "http/server.hpp"
#include "idempotency/idempotency.hpp"
#include "limits/settings.hpp"
#include "llm/settings.hpp"
#include "obs/log.hpp"
#include "store/settings.hpp"
#include "temp_dir.hpp"

namespace {

namespace cfg = parley::config;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

using parley::testing::TempDir;

const cfg::Schema& schema() { return parley::app::settings_schema(); }

// Each module's options, as the module reads them.
const auto& process(const cfg::Settings& s) { return s.get<parley::app::ProcessSettings>(); }
const auto& http_server(const cfg::Settings& s) { return s.get<parley::http::ServerOptions>(); }
const auto& logging(const cfg::Settings& s) { return s.get<parley::log::LogSettings>(); }
const auto& storage(const cfg::Settings& s) { return s.get<parley::store::StorageSettings>(); }
const auto& auth(const cfg::Settings& s) { return s.get<parley::auth::AuthOptions>(); }
const auto& health(const cfg::Settings& s) { return s.get<parley::api::HealthSettings>(); }
auto& mut_process(cfg::Settings& s) { return s.mutable_get<parley::app::ProcessSettings>(); }
auto& mut_http_server(cfg::Settings& s) { return s.mutable_get<parley::http::ServerOptions>(); }
auto& mut_logging(cfg::Settings& s) { return s.mutable_get<parley::log::LogSettings>(); }
auto& mut_storage(cfg::Settings& s) { return s.mutable_get<parley::store::StorageSettings>(); }
auto& mut_auth(cfg::Settings& s) { return s.mutable_get<parley::auth::AuthOptions>(); }
auto& mut_health(cfg::Settings& s) { return s.mutable_get<parley::api::HealthSettings>(); }

// The problems about one path (there should usually be exactly one).
std::vector<cfg::Problem> problems_for(const cfg::Loaded& loaded, const std::string& path) {
  std::vector<cfg::Problem> out;
  for (const auto& p : loaded.problems) {
    if (p.path == path) out.push_back(p);
  }
  return out;
}

std::string all_problems(const cfg::Loaded& loaded) {
  std::string out;
  for (const auto& p : loaded.problems) out += cfg::to_string(p) + "\n";
  return out;
}

cfg::Loaded load_flag(const std::string& path, const std::string& value) {
  cfg::Sources sources;
  sources.overrides.emplace_back(path, value);
  return cfg::load(schema(), sources);
}

// --- Layering --------------------------------------------------------------------------

TEST(ConfigLoad, NoSourcesGivesDefaults) {
  auto loaded = cfg::load(schema(), cfg::Sources{});
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  const auto defaults = schema().defaults();
  EXPECT_EQ(process(loaded.settings).listen, "127.0.0.1:8080");
  EXPECT_EQ(http_server(loaded.settings).max_body_size, 1024u * 1024u);
  EXPECT_EQ(http_server(loaded.settings).idle_timeout, milliseconds(60'000));
  EXPECT_EQ(logging(loaded.settings).level, "info");
  EXPECT_EQ(storage(loaded.settings).data_dir, storage(defaults).data_dir);
  EXPECT_EQ(loaded.settings.to_json(), defaults.to_json());
}

TEST(ConfigLoad, PrecedenceIsDefaultsThenYamlThenEnvThenFlags) {
  TempDir dir;
  auto file = dir.write("parley.yaml",
                        "server:\n"
                        "  listen: \"0.0.0.0:9000\"\n"
                        "  threads: 3\n"
                        "  max_body_size: 2MiB\n"
                        "  read_timeout: 10s\n"
                        "log:\n"
                        "  level: debug\n");
  cfg::Sources sources;
  sources.config_file = file;
  sources.environment = {{"PARLEY_SERVER_THREADS", "5"},
                         {"PARLEY_LOG_LEVEL", "warn"},
                         {"PARLEY_SERVER_READ_TIMEOUT", "20s"}};
  sources.overrides = {{"log.level", "error"}};

  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  const auto& c = loaded.settings;
  EXPECT_EQ(process(c).listen, "0.0.0.0:9000");                  // YAML only
  EXPECT_EQ(http_server(c).max_body_size, 2u * 1024 * 1024);     // YAML only
  EXPECT_EQ(process(c).threads, 5);                              // env beats YAML
  EXPECT_EQ(http_server(c).read_timeout, milliseconds(20'000));  // env beats YAML
  EXPECT_EQ(logging(c).level, "error");                          // flag beats env and YAML
  EXPECT_EQ(http_server(c).idle_timeout, milliseconds(60'000));  // untouched default
  EXPECT_EQ(http_server(c).max_connections, 10'000);             // untouched default
}

TEST(ConfigLoad, LaterFlagOverridesEarlierFlag) {
  cfg::Sources sources;
  sources.overrides = {{"server.threads", "2"}, {"server.threads", "7"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(process(loaded.settings).threads, 7);
}

TEST(ConfigLoad, EnvironmentNamesMapToSettingPaths) {
  cfg::Sources sources;
  sources.environment = {{"PARLEY_DATA_DIR", "/srv/parley"},
                         {"PARLEY_SERVER_MAX_BODY_SIZE", "4MiB"},
                         {"PARLEY_STORAGE_READ_CONNECTIONS", "8"},
                         {"PARLEY_LOG_ACCESS_LOG", "false"},
                         {"PARLEY_HEALTH_MIN_FREE_DISK", "1GiB"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(storage(loaded.settings).data_dir, "/srv/parley");
  EXPECT_EQ(http_server(loaded.settings).max_body_size, 4u * 1024 * 1024);
  EXPECT_EQ(storage(loaded.settings).read_connections, 8);
  EXPECT_FALSE(http_server(loaded.settings).access_log);
  EXPECT_EQ(health(loaded.settings).min_free_disk, 1ULL << 30);
}

TEST(ConfigLoad, EmptyYamlFileIsAnEmptyConfiguration) {
  TempDir dir;
  cfg::Sources sources;
  sources.config_file = dir.write("empty.yaml", "");
  auto loaded = cfg::load(schema(), sources);
  EXPECT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(loaded.settings.to_json(), schema().defaults().to_json());
}

TEST(ConfigLoad, MissingConfigFileIsAProblem) {
  TempDir dir;
  cfg::Sources sources;
  sources.config_file = dir.path() + "/does-not-exist.yaml";
  auto loaded = cfg::load(schema(), sources);
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  EXPECT_EQ(loaded.problems[0].path, "--config");
  EXPECT_EQ(loaded.problems[0].value, *sources.config_file);
  EXPECT_THAT(loaded.problems[0].message, HasSubstr("cannot read"));
}

TEST(ConfigLoad, InvalidYamlIsReportedWithALine) {
  TempDir dir;
  cfg::Sources sources;
  // An unclosed flow mapping starting on line 2.
  sources.config_file = dir.write("bad.yaml", "log:\n  level: debug\nserver: {threads: 2\n");
  auto loaded = cfg::load(schema(), sources);
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  EXPECT_THAT(loaded.problems[0].message, HasSubstr("not valid YAML"));
  EXPECT_THAT(loaded.problems[0].source, ::testing::StartsWith(*sources.config_file + ":"));
}

TEST(ConfigLoad, TopLevelMustBeAMapping) {
  std::vector<cfg::Problem> problems;
  auto config = schema().defaults();
  cfg::apply_yaml("- a\n- b\n", "list.yaml", config, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("mapping"));
  EXPECT_EQ(problems[0].source, "list.yaml");
}

TEST(ConfigLoad, ListValuesAndMissingValuesAreProblems) {
  std::vector<cfg::Problem> problems;
  auto config = schema().defaults();
  cfg::apply_yaml("server:\n  threads:\n  listen: [a, b]\nstorage:\n  url:\n", "c.yaml", config,
                  problems);
  // An empty string setting (storage.url) is fine; an empty int and a list are not.
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].path, "server.threads");
  EXPECT_THAT(problems[0].message, HasSubstr("no value"));
  EXPECT_EQ(problems[0].source, "c.yaml:2");
  EXPECT_EQ(problems[1].path, "server.listen");
  EXPECT_THAT(problems[1].message, HasSubstr("list"));
  EXPECT_EQ(problems[1].source, "c.yaml:3");
  EXPECT_EQ(mut_storage(config).url, "");
  EXPECT_EQ(mut_process(config).listen, "127.0.0.1:8080");
}

TEST(ConfigLoad, DeeplyNestedYamlIsOneProblemNotARecursion) {
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += std::string(static_cast<size_t>(2 * i), ' ') + "k" + std::to_string(i) + ":\n";
  text += std::string(80, ' ') + "leaf: 1\n";
  std::vector<cfg::Problem> problems;
  auto config = schema().defaults();
  cfg::apply_yaml(text, "deep.yaml", config, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("nested too deeply"));
  EXPECT_THAT(problems[0].path, ::testing::StartsWith("k0.k1.k2"));
}

TEST(ConfigLoad, EffectiveYamlRoundTrips) {
  auto config = schema().defaults();
  mut_storage(config).data_dir = "/var/lib/parley";
  mut_process(config).listen = "[::1]:9090";
  mut_process(config).threads = 6;
  mut_http_server(config).max_body_size = 8ULL << 20;
  mut_http_server(config).read_timeout = milliseconds(1500);
  mut_process(config).shutdown_grace = milliseconds(0);
  mut_storage(config).url = "sqlite:///tmp/x.db";
  mut_logging(config).level = "trace";
  mut_http_server(config).access_log = false;
  mut_health(config).max_memory = 3ULL << 30;
  mut_health(config).diagnostics = true;

  std::vector<cfg::Problem> problems;
  auto reloaded = schema().defaults();
  cfg::apply_yaml(config.to_yaml(), "effective.yaml", reloaded, problems);
  EXPECT_TRUE(problems.empty()) << cfg::to_string(problems.front());
  EXPECT_EQ(reloaded.to_json(), config.to_json());
  EXPECT_EQ(mut_http_server(reloaded).read_timeout, milliseconds(1500));
  EXPECT_EQ(mut_process(reloaded).listen, "[::1]:9090");
}

// --- Unknown keys ----------------------------------------------------------------------

TEST(ConfigUnknownKeys, YamlTypoGetsSuggestionAndLine) {
  TempDir dir;
  cfg::Sources sources;
  sources.config_file = dir.write("typo.yaml",
                                  "log:\n"
                                  "  level: info\n"
                                  "server:\n"
                                  "  max_bodysize: 1MiB\n");
  auto loaded = cfg::load(schema(), sources);
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  const auto& p = loaded.problems[0];
  EXPECT_EQ(p.path, "server.max_bodysize");
  EXPECT_THAT(p.message, HasSubstr("unknown setting"));
  EXPECT_THAT(p.message, HasSubstr("did you mean server.max_body_size?"));
  EXPECT_EQ(p.source, *sources.config_file + ":4");
}

TEST(ConfigUnknownKeys, EnvironmentTypoSuggestsTheVariableName) {
  cfg::Sources sources;
  sources.environment = {{"PARLEY_LOG_LEVLE", "debug"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  const auto& p = loaded.problems[0];
  EXPECT_EQ(p.path, "PARLEY_LOG_LEVLE");
  EXPECT_EQ(p.source, "env PARLEY_LOG_LEVLE");
  EXPECT_THAT(p.message, HasSubstr("unknown environment variable"));
  EXPECT_THAT(p.message, HasSubstr("did you mean PARLEY_LOG_LEVEL?"));
  EXPECT_EQ(logging(loaded.settings).level, "info");
}

TEST(ConfigUnknownKeys, FlagTypoGetsSuggestion) {
  auto loaded = load_flag("server.thread", "4");
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  EXPECT_EQ(loaded.problems[0].path, "server.thread");
  EXPECT_EQ(loaded.problems[0].source, "flag");
  EXPECT_THAT(loaded.problems[0].message, HasSubstr("did you mean server.threads?"));
}

TEST(ConfigUnknownKeys, FarOffKeyGetsNoSuggestion) {
  auto loaded = load_flag("completely.unrelated_thing", "1");
  ASSERT_EQ(loaded.problems.size(), 1u);
  EXPECT_THAT(loaded.problems[0].message, HasSubstr("unknown setting"));
  EXPECT_THAT(loaded.problems[0].message, Not(HasSubstr("did you mean")));
}

TEST(ConfigUnknownKeys, FileSuffixOnlyWorksForSecrets) {
  TempDir dir;
  auto file = dir.write("level.txt", "debug\n");
  auto loaded = load_flag("log.level_file", file);
  ASSERT_EQ(loaded.problems.size(), 1u) << all_problems(loaded);
  EXPECT_THAT(loaded.problems[0].message, HasSubstr("unknown setting"));
  EXPECT_EQ(logging(loaded.settings).level, "info");
}

// --- Many problems at once ------------------------------------------------------------

TEST(ConfigProblems, AllProblemsAreCollectedWithSources) {
  TempDir dir;
  auto file = dir.write("many.yaml",
                        "server:\n"
                        "  max_body_size: lots\n"  // line 2: bad size
                        "  threads: 2\n"           // line 3: fine, still applied
                        "log:\n"
                        "  access_log: maybe\n"  // line 5: bad bool
                        "  colour: red\n");      // line 6: unknown key
  cfg::Sources sources;
  sources.config_file = file;
  sources.environment = {{"PARLEY_SERVER_MAX_CONNECTIONS", "0"}};  // out of range
  sources.overrides = {{"log.level", "verbose"}};                  // bad level

  auto loaded = cfg::load(schema(), sources);
  EXPECT_FALSE(loaded.ok());
  ASSERT_EQ(loaded.problems.size(), 5u) << all_problems(loaded);

  auto size = problems_for(loaded, "server.max_body_size");
  ASSERT_EQ(size.size(), 1u);
  EXPECT_EQ(size[0].value, "lots");
  EXPECT_EQ(size[0].source, file + ":2");
  EXPECT_THAT(size[0].message, HasSubstr("not a size"));

  auto access = problems_for(loaded, "log.access_log");
  ASSERT_EQ(access.size(), 1u);
  EXPECT_EQ(access[0].source, file + ":5");
  EXPECT_THAT(access[0].message, HasSubstr("not a boolean"));

  auto colour = problems_for(loaded, "log.colour");
  ASSERT_EQ(colour.size(), 1u);
  EXPECT_EQ(colour[0].source, file + ":6");

  auto conns = problems_for(loaded, "server.max_connections");
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].source, "env PARLEY_SERVER_MAX_CONNECTIONS");
  EXPECT_THAT(conns[0].message, HasSubstr("out of range"));

  auto level = problems_for(loaded, "log.level");
  ASSERT_EQ(level.size(), 1u);
  EXPECT_EQ(level[0].source, "flag");
  EXPECT_EQ(level[0].value, "verbose");

  // Good values next to bad ones still apply; bad ones leave the default.
  EXPECT_EQ(process(loaded.settings).threads, 2);
  EXPECT_EQ(http_server(loaded.settings).max_body_size, 1024u * 1024u);
  EXPECT_EQ(http_server(loaded.settings).max_connections, 10'000);
  EXPECT_EQ(logging(loaded.settings).level, "info");
}

TEST(ConfigProblems, ToStringNamesPathValueMessageAndSource) {
  cfg::Problem p{"server.threads", "x", "config.yaml:3", "not an integer"};
  EXPECT_EQ(cfg::to_string(p), "server.threads = \"x\": not an integer [config.yaml:3]");
  cfg::Problem bare{"log.level", "", "", "has no value"};
  EXPECT_EQ(cfg::to_string(bare), "log.level: has no value");
}

// --- Bad values of each kind ----------------------------------------------------------

struct BadValue {
  std::string path;
  std::string value;
  std::string message_part;
};

// Readable test names in ctest output: "server.max_body_size = lots".
void PrintTo(const BadValue& bad, std::ostream* os) { *os << bad.path << " = " << bad.value; }

class ConfigBadValue : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigBadValue, IsRejectedWithAnExplanation) {
  const auto& bad = GetParam();
  auto loaded = load_flag(bad.path, bad.value);
  ASSERT_EQ(loaded.problems.size(), 1u) << bad.path << " = " << bad.value;
  EXPECT_EQ(loaded.problems[0].path, bad.path);
  EXPECT_THAT(loaded.problems[0].message, HasSubstr(bad.message_part));
  // The setting keeps its default.
  EXPECT_EQ(loaded.settings.to_json(), schema().defaults().to_json());
}

INSTANTIATE_TEST_SUITE_P(
    Values, ConfigBadValue,
    ::testing::Values(BadValue{"server.max_body_size", "lots", "not a size"},
                      BadValue{"server.max_body_size", "-1MiB", "not a size"},
                      BadValue{"server.max_body_size", "2GiB", "out of range"},
                      BadValue{"server.max_body_size", "512", "out of range"},
                      BadValue{"server.max_header_size", "2MiB", "out of range"},
                      BadValue{"server.read_timeout", "30", "not a duration"},
                      BadValue{"server.read_timeout", "50ms", "out of range"},
                      BadValue{"server.idle_timeout", "2d", "out of range"},
                      BadValue{"storage.busy_timeout", "1h", "out of range"},
                      BadValue{"server.threads", "300", "out of range (expected 0..256)"},
                      BadValue{"server.threads", "-1", "out of range"},
                      BadValue{"server.threads", "abc", "not an integer"},
                      BadValue{"server.threads", "4 ", "not an integer"},
                      BadValue{"server.threads", "", "not an integer"},
                      BadValue{"server.threads", "99999999999", "out of range"},
                      BadValue{"storage.read_connections", "0", "out of range"},
                      BadValue{"log.access_log", "maybe", "not a boolean"},
                      BadValue{"diagnostics.enabled", "2", "not a boolean"},
                      BadValue{"log.level", "verbose", "unknown level"},
                      BadValue{"log.level", "INFO", "unknown level"},
                      BadValue{"server.listen", "localhost", "not HOST:PORT"},
                      BadValue{"server.listen", "::1:8080", "not HOST:PORT"},
                      BadValue{"server.listen", "127.0.0.1:70000", "not HOST:PORT"},
                      BadValue{"data_dir", "", "must not be empty"},
                      BadValue{"storage.url", "mysql://u:p@h/db", "unsupported scheme 'mysql'"},
                      BadValue{"storage.url", "parley.db", "not a database URL"},
                      BadValue{"storage.url", "sqlite:", "names no file"},
                      BadValue{"storage.url", "postgresql:host", "malformed postgresql URL"}));

TEST(ConfigValues, BooleanSpellings) {
  for (const char* yes : {"true", "TRUE", "yes", "on", "1"}) {
    auto loaded = load_flag("diagnostics.enabled", yes);
    ASSERT_TRUE(loaded.ok()) << yes;
    EXPECT_TRUE(health(loaded.settings).diagnostics) << yes;
  }
  for (const char* no : {"false", "No", "off", "0"}) {
    auto loaded = load_flag("log.access_log", no);
    ASSERT_TRUE(loaded.ok()) << no;
    EXPECT_FALSE(http_server(loaded.settings).access_log) << no;
  }
}

TEST(ConfigValues, RangeBoundariesAreInclusive) {
  cfg::Sources sources;
  sources.overrides = {{"server.threads", "256"},
                       {"server.max_body_size", "1GiB"},
                       {"server.read_timeout", "100ms"},
                       {"server.shutdown_grace", "0"},
                       {"storage.read_connections", "64"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(process(loaded.settings).threads, 256);
  EXPECT_EQ(http_server(loaded.settings).max_body_size, 1ULL << 30);
  EXPECT_EQ(http_server(loaded.settings).read_timeout, milliseconds(100));
  EXPECT_EQ(process(loaded.settings).shutdown_grace, milliseconds(0));
  EXPECT_EQ(storage(loaded.settings).read_connections, 64);
}

// --- Secrets --------------------------------------------------------------------------

TEST(ConfigSecrets, TokenFileFromYamlIsReadAndNewlineStripped) {
  TempDir dir;
  auto token = dir.write("token", "s3cret-token-value-0123456789abcdef\n");
  cfg::Sources sources;
  sources.config_file =
      dir.write("c.yaml", "diagnostics:\n  enabled: true\nadmin_key_file: " + token + "\n");
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(auth(loaded.settings).bootstrap_admin_key, "s3cret-token-value-0123456789abcdef");
  EXPECT_TRUE(health(loaded.settings).diagnostics);
}

TEST(ConfigSecrets, TokenFileFromEnvironmentStripsCrLf) {
  TempDir dir;
  auto token = dir.write("token", "windows-token-0123456789abcdef0123456\r\n");
  cfg::Sources sources;
  sources.environment = {{"PARLEY_ADMIN_KEY_FILE", token}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(auth(loaded.settings).bootstrap_admin_key, "windows-token-0123456789abcdef0123456");
}

TEST(ConfigSecrets, TokenDirectlyFromEnvironment) {
  cfg::Sources sources;
  sources.environment = {{"PARLEY_ADMIN_KEY", "direct-token-0123456789abcdef01234567"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(auth(loaded.settings).bootstrap_admin_key, "direct-token-0123456789abcdef01234567");
}

TEST(ConfigSecrets, MissingOrEmptySecretFileIsAProblem) {
  TempDir dir;
  auto missing = load_flag("admin_key_file", dir.path() + "/nope");
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_EQ(missing.problems[0].path, "admin_key_file");
  EXPECT_THAT(missing.problems[0].message, HasSubstr("cannot read secret file"));

  auto empty = load_flag("admin_key_file", dir.write("empty", "\n"));
  ASSERT_EQ(empty.problems.size(), 1u);
  EXPECT_THAT(empty.problems[0].message, HasSubstr("empty"));
  EXPECT_EQ(auth(empty.settings).bootstrap_admin_key, "");
}

TEST(ConfigSecrets, ToJsonAndToYamlRedactTheToken) {
  auto config = schema().defaults();
  mut_auth(config).bootstrap_admin_key = "top-secret-token-123";
  auto json = config.to_json();
  EXPECT_EQ(json["admin_key"], "[REDACTED]");
  EXPECT_THAT(json.dump(), Not(HasSubstr("top-secret-token-123")));

  auto yaml = config.to_yaml();
  EXPECT_THAT(yaml, HasSubstr("[REDACTED]"));
  EXPECT_THAT(yaml, Not(HasSubstr("top-secret-token-123")));

  EXPECT_THAT(config.secret_values(), Contains(std::string("top-secret-token-123")));
}

TEST(ConfigSecrets, UnsetTokenIsShownEmptyNotRedacted) {
  auto config = schema().defaults();
  EXPECT_EQ(config.to_json()["admin_key"], "");
  EXPECT_TRUE(config.secret_values().empty());
}

TEST(ConfigSecrets, StorageUrlPasswordIsRedactedAndReported) {
  auto loaded = load_flag("storage.url", "postgresql://parley:hunter2pw@db.internal:5432/parley");
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  auto json = loaded.settings.to_json();
  EXPECT_EQ(json["storage"]["url"], "postgresql://[REDACTED]@db.internal:5432/parley");
  EXPECT_THAT(loaded.settings.to_yaml(), Not(HasSubstr("hunter2pw")));
  EXPECT_THAT(loaded.settings.secret_values(), Contains(std::string("hunter2pw")));
  // The real value stays usable by the program.
  EXPECT_EQ(storage(loaded.settings).url, "postgresql://parley:hunter2pw@db.internal:5432/parley");
  EXPECT_FALSE(parley::store::sqlite_path(storage(loaded.settings)).has_value());
}

TEST(ConfigSecrets, StorageUrlUserinfoIsHiddenEvenWithoutAPassword) {
  auto config = schema().defaults();
  mut_storage(config).url = "postgresql://parley@db:5432/parley";
  EXPECT_EQ(config.to_json()["storage"]["url"], "postgresql://[REDACTED]@db:5432/parley");
  // A user name alone is not given to the log redactor: it would blank every occurrence of
  // an ordinary word ("parley") in every log line.
  EXPECT_TRUE(config.secret_values().empty());
}

TEST(ConfigSecrets, PasswordsWithUrlDelimitersAreStillRedacted) {
  for (const std::string password : {"p#ss-d3lim", "p?ss-d3lim", "p/ss-d3lim", "p@ss-d3lim"}) {
    auto loaded = load_flag("storage.url", "postgresql://app:" + password + "@db.internal/parley");
    ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
    const std::string shown = loaded.settings.to_json()["storage"]["url"];
    EXPECT_EQ(shown.find("d3lim"), std::string::npos) << shown;
    EXPECT_THAT(shown, HasSubstr("db.internal/parley")) << shown;
    EXPECT_THAT(loaded.settings.secret_values(), Contains(password));
  }
}

TEST(ConfigSecrets, AUrlWithoutASchemeDoesNotEchoItsCredentials) {
  auto loaded = load_flag("storage.url", "app:hunter2-n0scheme@db/parley");
  ASSERT_EQ(loaded.problems.size(), 1u);
  EXPECT_THAT(cfg::to_string(loaded.problems[0]), Not(HasSubstr("hunter2-n0scheme")));
}

TEST(ConfigSecrets, RejectedStorageUrlDoesNotEchoItsPassword) {
  // A Problem's value is "the offending value as given (secrets redacted)"; problems are
  // printed by check-config and logged, so a password in a bad URL must not appear.
  auto loaded = load_flag("storage.url", "mysql://app:pw-d0nt-leak@db/app");
  ASSERT_EQ(loaded.problems.size(), 1u);
  EXPECT_THAT(loaded.problems[0].value, Not(HasSubstr("pw-d0nt-leak")));
  EXPECT_THAT(cfg::to_string(loaded.problems[0]), Not(HasSubstr("pw-d0nt-leak")));
}

// --- Helpers ----------------------------------------------------------------------------

TEST(ParseHostPort, AcceptsHostnamesIpv4AndBracketedIpv6) {
  auto a = parley::app::parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);

  auto b = parley::app::parse_host_port("[::1]:443");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 443);

  auto c = parley::app::parse_host_port("localhost:0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "localhost");
  EXPECT_EQ(c->port, 0);

  auto d = parley::app::parse_host_port("0.0.0.0:65535");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 65535);
}

TEST(ParseHostPort, RejectsMalformedAddresses) {
  for (const char* bad : {"", "localhost", ":8080", "host:", "host:65536", "host:80x", "host:-1",
                          "::1:8080", "[::1]", "[::1]8080", "[::1]:", "[]:80", "[::1:80"}) {
    EXPECT_FALSE(parley::app::parse_host_port(bad)) << bad;
  }
}

TEST(SqlitePath, FollowsDataDirAndUrl) {
  auto config = schema().defaults();
  EXPECT_EQ(parley::store::sqlite_path(storage(config)),
            std::optional<std::string>("./data/parley.db"));
  mut_storage(config).data_dir = "/var/lib/parley/";
  EXPECT_EQ(parley::store::sqlite_path(storage(config)),
            std::optional<std::string>("/var/lib/parley/parley.db"));
  mut_storage(config).url = "sqlite:relative/dir/x.db";
  EXPECT_EQ(parley::store::sqlite_path(storage(config)),
            std::optional<std::string>("relative/dir/x.db"));
  mut_storage(config).url = "sqlite:///abs/dir/x.db";
  EXPECT_EQ(parley::store::sqlite_path(storage(config)),
            std::optional<std::string>("/abs/dir/x.db"));
  mut_storage(config).url = "postgres://u@h/db";
  EXPECT_FALSE(parley::store::sqlite_path(storage(config)));
}

// The default of a setting as check-config shows it.
std::string shown_default(const std::string& path) {
  nlohmann::json node = schema().defaults().to_json();
  size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    node = node.at(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node.is_string() ? node.get<std::string>() : node.dump();
}

TEST(SettingsSchema, EverySettingHasADocAndADefaultThatLoadsBack) {
  const auto& settings = schema().settings();
  ASSERT_GE(settings.size(), 20u);
  const auto* token = schema().find("admin_key");
  ASSERT_NE(token, nullptr);
  EXPECT_TRUE(token->secret());
  const auto* body = schema().find("server.max_body_size");
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(shown_default("server.max_body_size"), "1MiB");
  EXPECT_FALSE(body->secret());

  // Every default, fed back as a flag, is accepted and changes nothing.
  cfg::Sources sources;
  for (const auto& s : settings) {
    EXPECT_FALSE(s.description.empty()) << s.path;
    sources.overrides.emplace_back(s.path, shown_default(s.path));
  }
  auto loaded = cfg::load(schema(), sources);
  EXPECT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(loaded.settings.to_json(), schema().defaults().to_json());
}

TEST(SettingsSchema, ReferenceTableListsEverySetting) {
  const std::string table = cfg::reference_markdown(schema());
  EXPECT_THAT(table, HasSubstr("| setting | default | meaning |"));
  for (const auto& s : schema().settings()) {
    EXPECT_THAT(table, HasSubstr("| `" + s.path + "` |")) << s.path;
  }
  EXPECT_THAT(table, HasSubstr("| `server.max_body_size` | `1MiB` |"));
}

TEST(SettingsSchema, EachModuleReadsItsOwnOptions) {
  cfg::Sources sources;
  sources.overrides = {{"limits.user.requests_per_minute", "7"},
                       {"llm.max_retries", "4"},
                       {"chat.default_assistant", "helper"},
                       {"idempotency.ttl", "2h"}};
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  EXPECT_EQ(loaded.settings.get<parley::limits::LimitSettings>().user.requests_per_minute, 7);
  EXPECT_EQ(loaded.settings.get<parley::llm::LlmSettings>().gateway.max_retries, 4);
  EXPECT_EQ(loaded.settings.get<parley::chat::ChatSettings>().default_assistant, "helper");
  EXPECT_EQ(loaded.settings.get<parley::idempotency::LocalOptions>().ttl, std::chrono::hours(2));
}

TEST(SettingsSchema, AnAssistantsMemoryKindsAreKindsOfMemory) {
  TempDir dir;
  cfg::Sources sources;
  sources.config_file = dir.write("kinds.yaml",
                                  "assistants:\n"
                                  "  concierge:\n"
                                  "    memory_kinds: [preference, profile]\n");
  auto loaded = cfg::load(schema(), sources);
  ASSERT_TRUE(loaded.ok()) << all_problems(loaded);
  const auto& assistants = loaded.settings.get<parley::chat::ChatSettings>().assistants;
  ASSERT_EQ(assistants.size(), 1u);
  EXPECT_EQ(assistants[0].memory_kinds, (std::vector<std::string>{"preference", "profile"}));

  sources.config_file = dir.write("bad-kinds.yaml",
                                  "assistants:\n"
                                  "  concierge:\n"
                                  "    memory_kinds: [preference, gossip]\n");
  loaded = cfg::load(schema(), sources);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(all_problems(loaded), HasSubstr("'gossip' is not a kind of memory"));
}

TEST(LoadEnvironment, ReadsOnlyParleyVariables) {
  ASSERT_EQ(::setenv("PARLEY_UNIT_TEST_MARKER", "value=with=equals", 1), 0);
  ASSERT_EQ(::setenv("NOT_PARLEY_UNIT_TEST_MARKER", "x", 1), 0);
  auto env = cfg::load_environment();
  ::unsetenv("PARLEY_UNIT_TEST_MARKER");
  ::unsetenv("NOT_PARLEY_UNIT_TEST_MARKER");
  ASSERT_EQ(env.count("PARLEY_UNIT_TEST_MARKER"), 1u);
  EXPECT_EQ(env["PARLEY_UNIT_TEST_MARKER"], "value=with=equals");
  EXPECT_EQ(env.count("NOT_PARLEY_UNIT_TEST_MARKER"), 0u);
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("PARLEY_", 0), 0u) << name;
}

}  // namespace

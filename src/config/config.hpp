// Parley's configuration: one typed struct, filled from four layers in order of precedence
// (defaults < YAML file < PARLEY_* environment < command-line flags).
//
// Every setting has a dotted path ("server.max_body_size"). The same path is the YAML key
// (nested), the environment variable (PARLEY_SERVER_MAX_BODY_SIZE) and the --set key.
// Secret settings may instead name a file holding the value: "<path>_file" in YAML,
// PARLEY_<PATH>_FILE in the environment (how Docker and Kubernetes mount secrets).
//
// Loading never stops at the first problem: every unknown key, unparsable value and failed
// check is collected, so `parley check-config` can list them all at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace parley::moderation {
struct Policy;
}

namespace parley::config {

using std::chrono::milliseconds;

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port
  int threads = 0;                        // I/O threads; 0 = one per core
  int blocking_threads = 0;               // storage and CPU-heavy work; 0 = max(2, cores)
  uint64_t max_body_size = 1024ULL * 1024;
  uint64_t max_header_size = 16ULL * 1024;
  milliseconds read_timeout{30'000};
  milliseconds idle_timeout{60'000};
  milliseconds write_timeout{30'000};
  int max_connections = 10'000;
  milliseconds shutdown_grace{25'000};
  // Origins whose browser scripts may call the API, comma-separated ("*" for any); empty: none.
  std::string cors_origins;
  // Seconds for Strict-Transport-Security; 0 sends none (set it behind a TLS terminator).
  int hsts_max_age = 0;
};

struct StorageConfig {
  std::string url;  // empty = SQLite file <data_dir>/parley.db
  milliseconds busy_timeout{5'000};
  int read_connections = 4;
};

struct LogConfig {
  std::string level = "info";
  bool access_log = true;
};

struct HealthConfig {
  uint64_t min_free_disk = 100ULL * 1024 * 1024;
  uint64_t max_memory = 0;  // 0 = no threshold
};

struct DiagnosticsConfig {
  bool enabled = false;  // served to admin keys only
};

struct AuthConfig {
  std::string jwt_secret;  // secret: HS256 key for end-user JWTs; empty = no JWTs
  std::string jwt_issuer;
  std::string jwt_audience;
  milliseconds key_refresh_interval{10'000};
};

// Limits of one kind of caller; 0 is "no limit" (limits/policy.hpp).
struct LimitConfig {
  int requests_per_minute = 0;
  int requests_per_hour = 0;
  int burst = 0;
  int tokens_per_minute = 0;
  int concurrent_streams = 0;
  double usd_per_day = 0;
  double usd_per_month = 0;
};

struct LimitsConfig {
  LimitConfig key;
  LimitConfig user{60, 0, 0, 0, 0, 0, 0};  // the seeds' 60 requests a minute per user
};

// Content moderation (moderation/rules.hpp): YAML only, under `moderation:`.
//   moderation:
//     max_input_chars: 20000
//     pii: {email: redact, phone: redact, card: block}      # or {action: .., stages: [input]}
//     categories:
//       violence: {words: [...], patterns: [...], action: block, stages: [input, output]}
struct ModerationCategoryConfig {
  std::string name;
  std::vector<std::string> words;
  std::vector<std::string> patterns;
  std::string action = "block";
  bool input = true;
  bool output = true;
};

struct ModerationPiiConfig {
  std::string kind;  // email, phone, card
  std::string action = "redact";
  bool input = true;
  bool output = true;
};

// An OpenAI-compatible /v1/moderations endpoint asked after the rules:
//   moderation:
//     provider: {name: openai, model: omni-moderation-latest, stages: [input],
//                action: block, on_error: allow, timeout: 5s}
struct ModerationProviderConfig {
  std::string name;  // a provider from `providers:`; empty = none
  std::string model = "omni-moderation-latest";
  bool input = true;
  bool output = false;
  std::string action = "block";    // what a flagged message gets: block, or allow (logged)
  std::string on_error = "allow";  // when the provider fails: allow (logged), or block
  milliseconds timeout{5000};
};

struct ModerationConfig {
  std::vector<ModerationCategoryConfig> categories;
  std::vector<ModerationPiiConfig> pii;
  int64_t max_input_chars = 0;
  int64_t max_output_chars = 0;
  ModerationProviderConfig provider;
  bool configured() const {
    return !categories.empty() || !pii.empty() || max_input_chars > 0 || max_output_chars > 0 ||
           !provider.name.empty();
  }
};

struct IdempotencyConfig {
  milliseconds ttl{24LL * 3600 * 1000};
  uint64_t max_response_size = 4ULL * 1024 * 1024;
};

// An upstream that generates replies (see llm/provider.hpp). From the `providers:` map of the
// YAML file, or from the ecosystem's variables (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...).
struct ProviderConfig {
  std::string name;
  std::string type;  // "openai" (any compatible server), "anthropic", "builtin"
  std::string base_url;
  std::string api_key;  // secret
  std::vector<std::string> models;
  std::string default_model;
  std::string embedding_model;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string proxy;
  std::string ca_file;
  bool stream_usage = true;
  int64_t max_tokens = 4096;  // sent when the API requires one and the request has none
  std::string source;         // where it was defined, for messages
};

// A named model route: targets tried in order ("provider/model" or "provider"), or with
// strategy "cost", chosen by the request's complexity and the remaining budget.
struct RouteConfig {
  std::string name;
  std::vector<std::string> targets;
  std::string strategy = "fallback";  // "fallback" or "cost"
  double complexity_threshold = 0.5;  // cost: at or above, start with the strongest target
  double daily_budget_usd = 0;        // cost: per user and day; 0 = no budget
  std::string source;
};

// Price (USD per million tokens) and context window of a model; defaults for common models
// are built in (llm/pricing.cpp), entries here override or add.
struct ModelInfoConfig {
  std::string model;
  std::optional<double> input_per_million;
  std::optional<double> output_per_million;
  std::optional<int64_t> context_window;
};

struct LlmConfig {
  std::string default_model;  // route, provider/model or model; empty = first provider
  milliseconds connect_timeout{10'000};
  milliseconds first_token_timeout{60'000};
  milliseconds stall_timeout{30'000};
  milliseconds total_timeout{600'000};
  int max_retries = 2;
  milliseconds retry_backoff{250};
  milliseconds retry_backoff_max{8'000};
  milliseconds max_retry_after{20'000};
  int breaker_failures = 5;
  milliseconds breaker_cooldown{30'000};
  milliseconds usage_flush_interval{1'000};
  std::vector<ProviderConfig> providers;
  std::vector<RouteConfig> routes;
  std::vector<ModelInfoConfig> models;
};

// An assistant: who answers in a session (its system prompt, model and generation settings).
struct AssistantConfig {
  std::string name;
  std::string description;
  std::string system_prompt;
  std::string model;  // as in a request: route, provider/model or model; empty = default
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  int max_history = 100;  // past messages considered before fitting the context window
  std::string source;
};

struct ChatConfig {
  std::string default_assistant = "default";
  int64_t default_context_window = 8192;  // for models the table does not know
  std::vector<AssistantConfig> assistants;
};

struct Config {
  std::string data_dir = "./data";
  // Secret: a bootstrap admin key (PARLEY_ADMIN_KEY / PARLEY_ADMIN_KEY_FILE), at least 32
  // characters, for the first `POST /api/v1/admin/keys` on a fresh install.
  std::string admin_key;
  ServerConfig server;
  StorageConfig storage;
  LogConfig log;
  HealthConfig health;
  DiagnosticsConfig diagnostics;
  AuthConfig auth;
  LimitsConfig limits;
  IdempotencyConfig idempotency;
  ModerationConfig moderation;
  LlmConfig llm;
  ChatConfig chat;
};

// One thing wrong with the configuration.
struct Problem {
  std::string path;     // "server.max_body_size", or the unknown key as written
  std::string value;    // the offending value as given (secrets redacted)
  std::string source;   // "config.yaml:12", "env PARLEY_LOG_LEVEL", "flag --set"
  std::string message;  // what is wrong, and what would be right
};

std::string to_string(const Problem& problem);

struct Sources {
  std::optional<std::string> config_file;
  // PARLEY_* variables (name -> value); load_environment() reads them from the process.
  std::map<std::string, std::string> environment;
  // The ecosystem's provider variables (OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
  // ANTHROPIC_BASE_URL, GROQ_API_KEY, OLLAMA_BASE_URL, OLLAMA_MODEL); each key or URL adds a
  // provider unless the YAML file defines one by that name. load_provider_environment().
  std::map<std::string, std::string> provider_environment;
  // From flags, in the order given: (path, value).
  std::vector<std::pair<std::string, std::string>> overrides;
};

std::map<std::string, std::string> load_environment();
std::map<std::string, std::string> load_provider_environment();

struct Loaded {
  Config config;
  std::vector<Problem> problems;
  bool ok() const { return problems.empty(); }
};

Loaded load(const Sources& sources);

// Applies a YAML document (already read) on top of `config`; used by load() and the fuzzer.
void apply_yaml(const std::string& text, const std::string& source_name, Config& config,
                std::vector<Problem>& problems);

// The effective configuration as nested JSON; secrets become "[REDACTED]" when set.
nlohmann::json to_json(const Config& config);
// The same, as YAML text.
std::string to_yaml(const Config& config);

// Values that must never appear in logs or error messages (non-empty secrets, passwords
// inside URLs).
std::vector<std::string> secret_values(const Config& config);

// "host:port" split; nullopt when malformed. IPv6 hosts are written in brackets: [::1]:8080.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
std::optional<HostPort> parse_host_port(std::string_view text);

// The SQLite file a configuration points at, or nullopt when storage.url names another
// backend. The url forms are "sqlite:relative/path.db", "sqlite:///absolute/path.db".
std::optional<std::string> sqlite_path(const Config& config);

// Every setting with its path and a one-line description, for --help and the README.
struct SettingInfo {
  std::string path;
  std::string default_value;
  std::string description;
  bool secret = false;
};
std::vector<SettingInfo> describe_settings();

// The moderation rules as the rule engine takes them (moderation/rules.hpp).
moderation::Policy moderation_policy(const ModerationConfig& config);

}  // namespace parley::config

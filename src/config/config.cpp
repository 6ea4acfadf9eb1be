// Configuration loading. A table of settings (kSettings) drives everything: YAML keys,
// environment names, --set keys, parsing, validation, display and redaction, so a new
// setting is one row here and a field in config.hpp.
#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "config/llm_sections.hpp"
#include "config/units.hpp"

extern char** environ;

namespace parley::config {
namespace {

constexpr const char* kRedacted = "[REDACTED]";
constexpr std::string_view kEnvPrefix = "PARLEY_";
constexpr std::string_view kFileSuffix = "_file";

enum class Kind { kString, kBool, kInt, kSize, kDuration, kNumber };

struct Setting {
  std::string path;
  Kind kind;
  std::string description;
  bool secret = false;
  // Parses `text` into the config; returns an error message when it is not acceptable.
  std::function<std::optional<std::string>(Config&, const std::string&)> set;
  // Current value as JSON (typed) for display.
  std::function<nlohmann::json(const Config&)> get;
};

// `member` is a generic lambda `[](auto& c) -> auto& { return c.x.y; }` so that one accessor
// serves both the const (display) and the mutable (parse) side.
template <typename F>
Setting string_setting(
    std::string path, std::string description, F member,
    const std::function<std::optional<std::string>(const std::string&)>& check = {},
    bool secret = false) {
  Setting s{std::move(path), Kind::kString, std::move(description), secret, {}, {}};
  s.set = [member, check](Config& c, const std::string& text) -> std::optional<std::string> {
    if (check) {
      if (auto err = check(text)) return err;
    }
    member(c) = text;
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(member(c)); };
  return s;
}

template <typename F>
Setting bool_setting(std::string path, std::string description, F member) {
  Setting s{std::move(path), Kind::kBool, std::move(description), false, {}, {}};
  s.set = [member](Config& c, const std::string& text) -> std::optional<std::string> {
    std::string t = text;
    std::transform(t.begin(), t.end(), t.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (t == "true" || t == "yes" || t == "on" || t == "1") {
      member(c) = true;
    } else if (t == "false" || t == "no" || t == "off" || t == "0") {
      member(c) = false;
    } else {
      return "not a boolean (expected true or false)";
    }
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(member(c)); };
  return s;
}

template <typename F>
Setting int_setting(std::string path, std::string description, F member, int min, int max) {
  Setting s{std::move(path), Kind::kInt, std::move(description), false, {}, {}};
  s.set = [member, min, max](Config& c, const std::string& text) -> std::optional<std::string> {
    int value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
      return "not an integer";
    if (value < min || value > max)
      return "out of range (expected " + std::to_string(min) + ".." + std::to_string(max) + ")";
    member(c) = value;
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(member(c)); };
  return s;
}

template <typename F>
Setting money_setting(std::string path, std::string description, F member) {
  Setting s{std::move(path), Kind::kNumber, std::move(description), false, {}, {}};
  s.set = [member](Config& c, const std::string& text) -> std::optional<std::string> {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return "not a number";
    if (!(value >= 0 && value <= 1e9)) return "out of range (expected 0..1000000000 USD)";
    member(c) = value;
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(member(c)); };
  return s;
}

// The seven settings of one LimitConfig, under `prefix` ("limits.user").
template <typename F>
void add_limit_settings(std::vector<Setting>& v, const std::string& prefix, const char* whom,
                        F member) {
  v.push_back(int_setting(
      prefix + ".requests_per_minute",
      std::string("Requests per minute per ") + whom + "; 0 = no limit.",
      [member](auto& c) -> auto& { return member(c).requests_per_minute; }, 0, 1'000'000'000));
  v.push_back(int_setting(
      prefix + ".requests_per_hour",
      std::string("Requests per hour per ") + whom + "; 0 = no limit.",
      [member](auto& c) -> auto& { return member(c).requests_per_hour; }, 0, 1'000'000'000));
  v.push_back(int_setting(
      prefix + ".burst",
      std::string("Requests per ") + whom + " that may arrive at once; 0 = the per-minute quota.",
      [member](auto& c) -> auto& { return member(c).burst; }, 0, 1'000'000'000));
  v.push_back(int_setting(
      prefix + ".tokens_per_minute",
      std::string("Model tokens per minute per ") + whom + "; 0 = no limit.",
      [member](auto& c) -> auto& { return member(c).tokens_per_minute; }, 0, 1'000'000'000));
  v.push_back(int_setting(
      prefix + ".concurrent_streams",
      std::string("Streamed replies open at once per ") + whom + "; 0 = no limit.",
      [member](auto& c) -> auto& { return member(c).concurrent_streams; }, 0, 1'000'000));
  v.push_back(money_setting(
      prefix + ".usd_per_day",
      std::string("USD per UTC day per ") + whom + "; 0 = no budget.", [member](auto& c) -> auto& {
        return member(c).usd_per_day;
      }));
  v.push_back(money_setting(
      prefix + ".usd_per_month", std::string("USD per UTC month per ") + whom + "; 0 = no budget.",
      [member](auto& c) -> auto& { return member(c).usd_per_month; }));
}

template <typename F>
Setting size_setting(std::string path, std::string description, F member, uint64_t min,
                     uint64_t max) {
  Setting s{std::move(path), Kind::kSize, std::move(description), false, {}, {}};
  s.set = [member, min, max](Config& c, const std::string& text) -> std::optional<std::string> {
    auto value = parse_size(text);
    if (!value) return "not a size (expected bytes or a unit: 512KiB, 1MiB, 2GiB)";
    if (*value < min || *value > max)
      return "out of range (expected " + format_size(min) + " to " + format_size(max) + ")";
    member(c) = *value;
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(format_size(member(c))); };
  return s;
}

template <typename F>
Setting duration_setting(std::string path, std::string description, F member, milliseconds min,
                         milliseconds max) {
  Setting s{std::move(path), Kind::kDuration, std::move(description), false, {}, {}};
  s.set = [member, min, max](Config& c, const std::string& text) -> std::optional<std::string> {
    auto value = parse_duration(text);
    if (!value) return "not a duration (expected a number with a unit: 250ms, 5s, 2m, 1h)";
    if (*value < min || *value > max)
      return "out of range (expected " + format_duration(min) + " to " + format_duration(max) + ")";
    member(c) = *value;
    return std::nullopt;
  };
  s.get = [member](const Config& c) { return nlohmann::json(format_duration(member(c))); };
  return s;
}

std::optional<std::string> check_listen(const std::string& text) {
  if (!parse_host_port(text))
    return "not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)";
  return std::nullopt;
}

std::optional<std::string> check_log_level(const std::string& text) {
  static const std::vector<std::string> kLevels{"trace", "debug", "info", "warn", "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), text) == kLevels.end())
    return "unknown level (expected trace, debug, info, warn, error or off)";
  return std::nullopt;
}

std::optional<std::string> check_storage_url(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0)
    return "not a database URL (expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or "
           "postgresql://USER:PASSWORD@HOST:PORT/DB)";
  std::string scheme = text.substr(0, colon);
  if (scheme == "sqlite") {
    std::string rest = text.substr(colon + 1);
    if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
    if (rest.empty()) return "sqlite URL names no file";
    return std::nullopt;
  }
  if (scheme == "postgres" || scheme == "postgresql") {
    if (text.find("://") != colon || text.size() <= colon + 3)
      return "malformed postgresql URL (expected postgresql://USER:PASSWORD@HOST:PORT/DB)";
    return std::nullopt;
  }
  return "unsupported scheme '" + scheme + "' (expected sqlite or postgresql)";
}

// The password inside a URL's userinfo (scheme://user:password@host), if any.
std::optional<std::pair<size_t, size_t>> url_password_span(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  size_t start = scheme_end + 3;
  auto at = url.find('@', start);
  if (at == std::string::npos) return std::nullopt;
  auto colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return std::nullopt;
  return std::pair{colon + 1, at - colon - 1};
}

std::string redact_url(const std::string& url) {
  auto span = url_password_span(url);
  if (!span || span->second == 0) return url;
  std::string out = url;
  out.replace(span->first, span->second, kRedacted);
  return out;
}

const std::vector<Setting>& settings() {
  using std::chrono::hours;
  static const std::vector<Setting> kSettings = [] {
    std::vector<Setting> v;
    v.push_back(string_setting(
        "data_dir", "Directory for the SQLite database and other data files.",
        [](auto& c) -> auto& { return c.data_dir; },
        [](const std::string& t) -> std::optional<std::string> {
          if (t.empty()) return "must not be empty";
          return std::nullopt;
        }));
    v.push_back(string_setting(
        "server.listen", "Address to serve HTTP on, HOST:PORT (port 0: any free port).",
        [](auto& c) -> auto& { return c.server.listen; }, check_listen));
    v.push_back(int_setting(
        "server.threads", "I/O threads; 0 means one per CPU core.",
        [](auto& c) -> auto& { return c.server.threads; }, 0, 256));
    v.push_back(int_setting(
        "server.blocking_threads", "Threads for storage and CPU-heavy work; 0 means max(2, cores).",
        [](auto& c) -> auto& { return c.server.blocking_threads; }, 0, 256));
    v.push_back(size_setting(
        "server.max_body_size", "Largest request body accepted (413 above).",
        [](auto& c) -> auto& { return c.server.max_body_size; }, 1024, 1024ULL * 1024 * 1024));
    v.push_back(size_setting(
        "server.max_header_size",
        "Largest request head (request line + headers) accepted (431 above).",
        [](auto& c) -> auto& { return c.server.max_header_size; }, 1024, 1024ULL * 1024));
    v.push_back(duration_setting(
        "server.read_timeout",
        "Time for a whole request to arrive once its first byte has (slow clients are cut off).",
        [](auto& c) -> auto& { return c.server.read_timeout; }, milliseconds(100), hours(1)));
    v.push_back(duration_setting(
        "server.idle_timeout", "How long an idle keep-alive connection is kept open.",
        [](auto& c) -> auto& { return c.server.idle_timeout; }, milliseconds(100), hours(24)));
    v.push_back(duration_setting(
        "server.write_timeout", "Time allowed for writing a response to a slow reader.",
        [](auto& c) -> auto& { return c.server.write_timeout; }, milliseconds(100), hours(1)));
    v.push_back(int_setting(
        "server.max_connections", "Open connections at most; more get 503.",
        [](auto& c) -> auto& { return c.server.max_connections; }, 1, 1'000'000));
    v.push_back(duration_setting(
        "server.shutdown_grace", "On SIGTERM, how long requests in progress may take to finish.",
        [](auto& c) -> auto& { return c.server.shutdown_grace; }, milliseconds(0), hours(1)));
    v.push_back(string_setting(
        "server.cors_origins",
        "Origins whose browser scripts may call the API, comma-separated (\"*\": any); empty: "
        "none.",
        [](auto& c) -> auto& { return c.server.cors_origins; }));
    v.push_back(int_setting(
        "server.hsts_max_age",
        "Strict-Transport-Security max-age in seconds (behind a TLS terminator); 0 sends none.",
        [](auto& c) -> auto& { return c.server.hsts_max_age; }, 0, 1'000'000'000));
    v.push_back(string_setting(
        "storage.url", "Database URL; empty means the SQLite file <data_dir>/parley.db.",
        [](auto& c) -> auto& { return c.storage.url; }, check_storage_url));
    v.push_back(duration_setting(
        "storage.busy_timeout", "How long a database call waits for a lock.",
        [](auto& c) -> auto& { return c.storage.busy_timeout; }, milliseconds(0),
        std::chrono::minutes(10)));
    v.push_back(int_setting(
        "storage.read_connections", "SQLite connections kept for concurrent reads.",
        [](auto& c) -> auto& { return c.storage.read_connections; }, 1, 64));
    v.push_back(string_setting(
        "log.level", "trace, debug, info, warn, error or off.",
        [](auto& c) -> auto& { return c.log.level; }, check_log_level));
    v.push_back(bool_setting(
        "log.access_log", "Log one line per HTTP request.",
        [](auto& c) -> auto& { return c.log.access_log; }));
    v.push_back(size_setting(
        "health.min_free_disk",
        "Readiness fails when the data directory's disk has less free space.",
        [](auto& c) -> auto& { return c.health.min_free_disk; }, 0, UINT64_MAX));
    v.push_back(size_setting(
        "health.max_memory",
        "Readiness fails when resident memory exceeds this; 0 disables the check.",
        [](auto& c) -> auto& { return c.health.max_memory; }, 0, UINT64_MAX));
    v.push_back(bool_setting(
        "diagnostics.enabled", "Serve GET /api/v1/health/diagnostics (to admin keys).",
        [](auto& c) -> auto& { return c.diagnostics.enabled; }));
    v.push_back(string_setting(
        "admin_key",
        "Bootstrap admin key (secret, at least 32 characters): PARLEY_ADMIN_KEY or "
        "PARLEY_ADMIN_KEY_FILE.",
        [](auto& c) -> auto& { return c.admin_key; },
        [](const std::string& t) -> std::optional<std::string> {
          if (!t.empty() && t.size() < 32) return "must be at least 32 characters";
          return std::nullopt;
        },
        /*secret=*/true));
    v.push_back(string_setting(
        "auth.jwt_secret",
        "HS256 key (secret, at least 32 bytes) for end-user JWT bearer tokens; empty = none.",
        [](auto& c) -> auto& { return c.auth.jwt_secret; },
        [](const std::string& t) -> std::optional<std::string> {
          if (!t.empty() && t.size() < 32) return "must be at least 32 bytes";
          return std::nullopt;
        },
        /*secret=*/true));
    v.push_back(string_setting(
        "auth.jwt_issuer", "The iss a JWT must carry; empty = not checked.",
        [](auto& c) -> auto& { return c.auth.jwt_issuer; }));
    v.push_back(string_setting(
        "auth.jwt_audience", "The aud a JWT must carry; empty = not checked.",
        [](auto& c) -> auto& { return c.auth.jwt_audience; }));
    v.push_back(duration_setting(
        "auth.key_refresh_interval",
        "How soon keys created or revoked by another process (the CLI) take effect.",
        [](auto& c) -> auto& { return c.auth.key_refresh_interval; }, milliseconds(100), hours(1)));
    add_limit_settings(
        v, "limits.key", "API key", [](auto& c) -> auto& { return c.limits.key; });
    add_limit_settings(
        v, "limits.user", "end user", [](auto& c) -> auto& { return c.limits.user; });
    v.push_back(duration_setting(
        "idempotency.ttl", "How long a stored answer to an Idempotency-Key is kept.",
        [](auto& c) -> auto& { return c.idempotency.ttl; }, milliseconds(1000), hours(24 * 30)));
    v.push_back(size_setting(
        "idempotency.max_response_size",
        "Largest answer stored for replay; a larger one is not stored (a retry runs again).",
        [](auto& c) -> auto& { return c.idempotency.max_response_size; }, 1024,
        1024ULL * 1024 * 1024));
    v.push_back(string_setting(
        "llm.default_model",
        "Model when a request names none: a route, provider/model or model; empty = the first "
        "provider's default.",
        [](auto& c) -> auto& { return c.llm.default_model; }));
    v.push_back(duration_setting(
        "llm.connect_timeout", "Time to connect to a provider (DNS, TCP, TLS).",
        [](auto& c) -> auto& { return c.llm.connect_timeout; }, milliseconds(100), hours(1)));
    v.push_back(duration_setting(
        "llm.first_token_timeout",
        "Time from sending a request to a provider until its first token (or whole reply).",
        [](auto& c) -> auto& { return c.llm.first_token_timeout; }, milliseconds(100), hours(1)));
    v.push_back(duration_setting(
        "llm.stall_timeout", "Longest silence allowed between two pieces of a streamed reply.",
        [](auto& c) -> auto& { return c.llm.stall_timeout; }, milliseconds(100), hours(1)));
    v.push_back(duration_setting(
        "llm.total_timeout", "Longest time one provider call may take.",
        [](auto& c) -> auto& { return c.llm.total_timeout; }, milliseconds(100), hours(24)));
    v.push_back(int_setting(
        "llm.max_retries", "Retries of a failed provider call before the next fallback target.",
        [](auto& c) -> auto& { return c.llm.max_retries; }, 0, 10));
    v.push_back(duration_setting(
        "llm.retry_backoff", "Base of the exponential back-off between retries (full jitter).",
        [](auto& c) -> auto& { return c.llm.retry_backoff; }, milliseconds(0), hours(1)));
    v.push_back(duration_setting(
        "llm.retry_backoff_max", "Cap of the back-off between retries.",
        [](auto& c) -> auto& { return c.llm.retry_backoff_max; }, milliseconds(0), hours(1)));
    v.push_back(duration_setting(
        "llm.max_retry_after",
        "A provider's Retry-After longer than this is not waited for; the next target is tried.",
        [](auto& c) -> auto& { return c.llm.max_retry_after; }, milliseconds(0), hours(1)));
    v.push_back(int_setting(
        "llm.breaker_failures",
        "Consecutive failures of a provider/model that open its circuit breaker.",
        [](auto& c) -> auto& { return c.llm.breaker_failures; }, 1, 1000));
    v.push_back(duration_setting(
        "llm.breaker_cooldown", "How long an open circuit refuses calls before a probe.",
        [](auto& c) -> auto& { return c.llm.breaker_cooldown; }, milliseconds(10), hours(1)));
    v.push_back(duration_setting(
        "llm.usage_flush_interval",
        "How often usage of the OpenAI-compatible API is written to the database, batched.",
        [](auto& c) -> auto& { return c.llm.usage_flush_interval; }, milliseconds(10),
        std::chrono::minutes(10)));
    v.push_back(string_setting(
        "chat.default_assistant", "Assistant of sessions that name none.",
        [](auto& c) -> auto& { return c.chat.default_assistant; },
        [](const std::string& t) -> std::optional<std::string> {
          if (t.empty()) return "must not be empty";
          return std::nullopt;
        }));
    v.push_back(int_setting(
        "chat.default_context_window",
        "Context window (tokens) assumed for models the model table does not know.",
        [](auto& c) -> auto& { return c.chat.default_context_window; }, 256, 100'000'000));
    return v;
  }();
  return kSettings;
}

const Setting* find_setting(std::string_view path) {
  for (const auto& s : settings()) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

std::string env_name(std::string_view path) {
  std::string name(kEnvPrefix);
  for (char c : path) {
    name.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string unknown_key_message(std::string_view key, bool env) {
  std::string best;
  size_t best_distance = 4;
  for (const auto& s : settings()) {
    std::string candidate = env ? env_name(s.path) : s.path;
    size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  std::string msg = env ? "unknown environment variable" : "unknown setting";
  if (!best.empty()) msg += " (did you mean " + best + "?)";
  return msg;
}

// How a value may appear in a problem report. Unknown keys never echo their value: a
// mistyped secret name ("diagnostics.tokn") would otherwise print the secret.
std::string shown_value(const Setting* s, const std::string& value) {
  if (!s) return "";
  if (s->secret) return value.empty() ? "" : kRedacted;
  if (s->path == "storage.url") return redact_url(value);
  return value;
}

std::optional<std::string> read_secret_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read secret file '" + path + "'";
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  // Files written by `echo` or editors end in a newline that is not part of the secret.
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) return "secret file '" + path + "' is empty";
  return std::nullopt;
}

// Applies one raw value to the setting named by `key`; `key` may be "<secret>_file".
void apply_value(Config& config, const std::string& key, const std::string& value,
                 const std::string& source, std::vector<Problem>& problems, bool env) {
  const Setting* setting = find_setting(key);
  std::string value_text = value;
  if (!setting && key.size() > kFileSuffix.size() &&
      key.compare(key.size() - kFileSuffix.size(), kFileSuffix.size(), kFileSuffix) == 0) {
    const Setting* target = find_setting(key.substr(0, key.size() - kFileSuffix.size()));
    if (target && target->secret) {
      std::string secret;
      if (auto err = read_secret_file(value, secret)) {
        problems.push_back({key, value, source, *err});  // the value is a path, not the secret
        return;
      }
      setting = target;
      value_text = std::move(secret);
    }
  }
  if (!setting) {
    problems.push_back({key, "", source, unknown_key_message(env ? env_name(key) : key, env)});
    return;
  }
  if (auto err = setting->set(config, value_text)) {
    problems.push_back({setting->path, shown_value(setting, value_text), source, *err});
  }
}

void walk_yaml(const YAML::Node& node, const std::string& prefix, const std::string& source_name,
               Config& config, std::vector<Problem>& problems, int depth = 0) {
  // Settings nest two levels deep; anything deeper is a mistake (or a cyclic alias, which
  // would otherwise recurse forever).
  constexpr int kMaxDepth = 4;
  if (depth > kMaxDepth) {
    problems.push_back({prefix, "", source_name, "nested too deeply to be a setting"});
    return;
  }
  for (const auto& entry : node) {
    std::string key;
    try {
      key = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      problems.push_back({prefix, "", source_name, "a key that is not a string"});
      continue;
    }
    std::string path =
        prefix.empty()
            ? key
            : prefix + "." + key;  // NOLINT(performance-inefficient-string-concatenation)
    const YAML::Node& value = entry.second;
    std::string where = source_name + ":" + std::to_string(entry.first.Mark().line + 1);
    if (depth == 0 && detail::is_section(key)) {
      detail::apply_section(key, value, source_name, config, problems);
    } else if (value.IsMap()) {
      walk_yaml(value, path, source_name, config, problems, depth + 1);
    } else if (value.IsScalar()) {
      apply_value(config, path, value.Scalar(), where, problems, false);
    } else if (value.IsNull()) {
      if (find_setting(path) && find_setting(path)->kind == Kind::kString) {
        apply_value(config, path, "", where, problems, false);
      } else {
        problems.push_back(
            {path, "", where,
             find_setting(path) ? "has no value" : unknown_key_message(path, false)});
      }
    } else {
      problems.push_back({path, "", where, "a list is not accepted here"});
    }
  }
}

nlohmann::json& nested_slot(nlohmann::json& root, const std::string& path) {
  nlohmann::json* node = &root;
  size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    node = &(*node)[part];
    if (dot == std::string::npos) return *node;
    start = dot + 1;
  }
}

void emit_yaml(const nlohmann::json& node, int indent, std::string& out) {
  for (const auto& [key, value] : node.items()) {
    out.append(static_cast<size_t>(indent), ' ');
    out += key;
    out += ":";
    if (value.is_object()) {
      out += "\n";
      emit_yaml(value, indent + 2, out);
    } else {
      // A JSON string is also a valid YAML double-quoted scalar.
      out += ' ';
      out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += '\n';
    }
  }
}

}  // namespace

std::string to_string(const Problem& p) {
  std::string out = p.path;
  if (!p.value.empty()) out += " = \"" + p.value + "\"";
  out += ": " + p.message;
  if (!p.source.empty()) out += " [" + p.source + "]";
  return out;
}

std::map<std::string, std::string> load_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.rfind(kEnvPrefix, 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

void apply_yaml(const std::string& text, const std::string& source_name, Config& config,
                std::vector<Problem>& problems) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    problems.push_back(
        {"", "", source_name + ":" + std::to_string(e.mark.line + 1), "not valid YAML: " + e.msg});
    return;
  }
  if (root.IsNull()) return;  // an empty file is a valid, empty configuration
  if (!root.IsMap()) {
    problems.push_back({"", "", source_name, "the top level must be a mapping of settings"});
    return;
  }
  try {
    walk_yaml(root, "", source_name, config, problems);
  } catch (const YAML::Exception& e) {
    problems.push_back({"", "", source_name, "not valid YAML: " + e.msg});
  }
}

Loaded load(const Sources& sources) {
  Loaded out;
  if (sources.config_file) {
    std::ifstream in(*sources.config_file, std::ios::binary);
    if (!in) {
      out.problems.push_back(
          {"--config", *sources.config_file, "flag", "cannot read the configuration file"});
    } else {
      std::ostringstream ss;
      ss << in.rdbuf();
      apply_yaml(ss.str(), *sources.config_file, out.config, out.problems);
    }
  }
  // Environment: each PARLEY_* name must map back to exactly one setting path.
  for (const auto& [name, value] : sources.environment) {
    std::string path;
    for (const auto& s : settings()) {
      if (env_name(s.path) == name) path = s.path;
      if (s.secret && env_name(s.path) + "_FILE" == name) path = s.path + std::string(kFileSuffix);
    }
    if (path.empty()) {
      out.problems.push_back({name, "", "env " + name, unknown_key_message(name, true)});
      continue;
    }
    apply_value(out.config, path, value, "env " + name, out.problems, true);
  }
  for (const auto& [path, value] : sources.overrides) {
    apply_value(out.config, path, value, "flag", out.problems, false);
  }
  detail::add_environment_providers(out.config, sources.provider_environment);
  detail::finish(out.config, out.problems);
  return out;
}

nlohmann::json to_json(const Config& config) {
  nlohmann::json root = nlohmann::json::object();
  for (const auto& s : settings()) {
    nlohmann::json value = s.get(config);
    if (s.secret && value.is_string() && !value.get<std::string>().empty()) value = kRedacted;
    if (s.path == "storage.url") value = redact_url(value.get<std::string>());
    nested_slot(root, s.path) = std::move(value);
  }
  detail::sections_to_json(config, root);
  return root;
}

std::string to_yaml(const Config& config) {
  std::string out;
  emit_yaml(to_json(config), 0, out);
  return out;
}

std::vector<std::string> secret_values(const Config& config) {
  std::vector<std::string> out;
  for (const auto& s : settings()) {
    if (!s.secret) continue;
    auto value = s.get(config).get<std::string>();
    if (!value.empty()) out.push_back(value);
  }
  if (auto span = url_password_span(config.storage.url); span && span->second > 0) {
    out.push_back(config.storage.url.substr(span->first, span->second));
  }
  detail::section_secrets(config, out);
  return out;
}

std::map<std::string, std::string> load_provider_environment() {
  std::map<std::string, std::string> env;
  for (const char* name : {"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "ANTHROPIC_API_KEY",
                           "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "GROQ_API_KEY",
                           "OLLAMA_BASE_URL", "OLLAMA_MODEL"}) {
    if (const char* value = std::getenv(name); value && *value) env.emplace(name, value);
  }
  return env;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty() || port_text.empty()) return std::nullopt;
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535)
    return std::nullopt;
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

std::optional<std::string> sqlite_path(const Config& config) {
  const std::string& url = config.storage.url;
  if (url.empty()) {
    std::string dir = config.data_dir;
    if (!dir.empty() && dir.back() == '/') dir.pop_back();
    return dir + "/parley.db";
  }
  if (url.rfind("sqlite:", 0) != 0) return std::nullopt;
  std::string rest = url.substr(7);
  if (rest.rfind("//", 0) == 0) rest = rest.substr(2);  // sqlite:///abs -> /abs
  return rest;
}

std::vector<SettingInfo> describe_settings() {
  std::vector<SettingInfo> out;
  Config defaults;
  for (const auto& s : settings()) {
    nlohmann::json value = s.get(defaults);
    out.push_back({s.path, value.is_string() ? value.get<std::string>() : value.dump(),
                   s.description, s.secret});
  }
  return out;
}

}  // namespace parley::config

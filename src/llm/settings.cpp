// The model layer's settings (see settings.hpp).
#include "llm/settings.hpp"

#include <algorithm>

#include "config/entry.hpp"
#include "config/settings.hpp"

namespace parley::llm {
namespace {

using config::Entry;
using config::Problems;
using nlohmann::json;

bool valid_url(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

template <typename T, typename Named>
void replace_named(std::vector<T>& list, T item, Named name_of) {
  std::erase_if(list, [&](const T& x) { return name_of(x) == name_of(item); });
  list.push_back(std::move(item));
}

void parse_provider(LlmSettings& s, const std::string& name, const YAML::Node& node,
                    const std::string& source, Problems& problems) {
  Entry e(node, "providers." + name, source, problems);
  ProviderSettings p;
  p.name = name;
  p.source = config::where(source, node);
  p.type = e.text("type").value_or(name == "anthropic" ? "anthropic" : "openai");
  if (p.type != "openai" && p.type != "anthropic" && p.type != "builtin") {
    e.problem("type",
              "unknown provider type '" + p.type + "' (expected openai, anthropic or builtin)");
  }
  p.base_url = trim_slash(e.text("base_url")
                              .value_or(p.type == "anthropic" ? "https://api.anthropic.com"
                                                              : "https://api.openai.com/v1"));
  if (p.type != "builtin" && !valid_url(p.base_url)) {
    e.problem("base_url", "must start with http:// or https://");
  }
  p.api_key = e.secret("api_key").value_or("");
  p.models = e.list("models");
  p.default_model = e.text("default_model").value_or(p.models.empty() ? "" : p.models.front());
  p.embedding_model = e.text("embedding_model").value_or("");
  p.headers = e.map("headers");
  for (const auto& [header, value] : p.headers) {
    // A line break would smuggle another header into every request (the client refuses it
    // too; said here, where the operator can fix it).
    if (value.find_first_of("\r\n") != std::string::npos) {
      e.problem("headers." + header, "a header value must be one line");
    }
  }
  p.proxy = e.text("proxy").value_or("");
  p.ca_file = e.text("ca_file").value_or("");
  p.stream_usage = e.boolean("stream_usage").value_or(true);
  p.default_max_tokens = static_cast<int64_t>(e.number("max_tokens", 1, 10'000'000).value_or(4096));
  e.reject_unknown();
  if (p.default_model.empty() && p.type != "builtin") {
    e.problem("default_model",
              "a provider needs default_model (or models) to know what to ask for");
  }
  replace_named(s.providers, std::move(p), [](const ProviderSettings& x) { return x.name; });
}

void parse_route(LlmSettings& s, const std::string& name, const YAML::Node& node,
                 const std::string& source, Problems& problems) {
  RouteSettings r;
  r.name = name;
  r.source = config::where(source, node);
  if (node.IsSequence() || node.IsScalar()) {
    // Short form: `smart: [openai/gpt-4o, anthropic/claude-sonnet-4-5]`.
    if (node.IsScalar()) {
      r.targets = {node.Scalar()};
    } else {
      for (const auto& t : node) {
        if (t.IsScalar()) r.targets.push_back(t.Scalar());
      }
    }
  } else if (node.IsMap()) {
    Entry e(node, "routes." + name, source, problems);
    r.targets = e.list("targets");
    r.strategy = e.text("strategy").value_or("fallback");
    if (r.strategy != "fallback" && r.strategy != "cost") {
      e.problem("strategy", "unknown strategy '" + r.strategy + "' (expected fallback or cost)");
    }
    r.complexity_threshold = e.number("complexity_threshold", 0, 1).value_or(0.5);
    r.daily_budget_usd = e.number("daily_budget_usd", 0, 1e9).value_or(0);
    e.reject_unknown();
  }
  if (r.targets.empty()) {
    problems.push_back({"routes." + name, "", r.source, "a route needs at least one target"});
  }
  replace_named(s.routes, std::move(r), [](const RouteSettings& x) { return x.name; });
}

void parse_model(LlmSettings& s, const std::string& name, const YAML::Node& node,
                 const std::string& source, Problems& problems) {
  Entry e(node, "models." + name, source, problems);
  ModelOverride m;
  m.model = name;
  m.input_per_million = e.number("input", 0, 1e6);
  m.output_per_million = e.number("output", 0, 1e6);
  if (auto w = e.number("context_window", 1, 1e9)) m.context_window = static_cast<int64_t>(*w);
  e.reject_unknown();
  replace_named(s.models, std::move(m), [](const ModelOverride& x) { return x.model; });
}

// Entries that must be mappings (providers:, models:); null is an empty mapping.
void parse_mappings(const YAML::Node& node, const std::string& key, const std::string& source,
                    Problems& problems,
                    const std::function<void(const std::string&, const YAML::Node&)>& parse) {
  config::for_each_entry(
      node, key, source, problems,
      [&](const std::string& name, const YAML::Node& value, const std::string& path) {
        if (!value.IsMap() && !value.IsNull()) {
          problems.push_back({path, "", config::where(source, value), "must be a mapping"});
          return;
        }
        parse(name, value.IsNull() ? YAML::Node(YAML::NodeType::Map) : value);
      });
}

void add_environment_providers(LlmSettings& s, const std::map<std::string, std::string>& env) {
  auto get = [&](const char* name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  auto add = [&](ProviderSettings p) {
    for (const auto& existing : s.providers) {
      if (existing.name == p.name) return;  // the YAML file's definition wins
    }
    s.providers.push_back(std::move(p));
  };
  if (auto key = get("OPENAI_API_KEY"); !key.empty() || !get("OPENAI_BASE_URL").empty()) {
    ProviderSettings p;
    p.name = "openai";
    p.type = "openai";
    p.base_url = trim_slash(get("OPENAI_BASE_URL").empty() ? "https://api.openai.com/v1"
                                                           : get("OPENAI_BASE_URL"));
    p.api_key = key;
    p.models = {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini"};
    p.default_model = get("OPENAI_MODEL").empty() ? "gpt-4o-mini" : get("OPENAI_MODEL");
    p.embedding_model = "text-embedding-3-small";
    p.source = "env OPENAI_API_KEY";
    add(std::move(p));
  }
  if (auto key = get("ANTHROPIC_API_KEY"); !key.empty()) {
    ProviderSettings p;
    p.name = "anthropic";
    p.type = "anthropic";
    p.base_url = trim_slash(get("ANTHROPIC_BASE_URL").empty() ? "https://api.anthropic.com"
                                                              : get("ANTHROPIC_BASE_URL"));
    p.api_key = key;
    p.models = {"claude-3-5-haiku-latest", "claude-sonnet-4-5", "claude-opus-4-1"};
    p.default_model =
        get("ANTHROPIC_MODEL").empty() ? "claude-3-5-haiku-latest" : get("ANTHROPIC_MODEL");
    p.source = "env ANTHROPIC_API_KEY";
    add(std::move(p));
  }
  if (auto key = get("GROQ_API_KEY"); !key.empty()) {
    ProviderSettings p;
    p.name = "groq";
    p.type = "openai";
    p.base_url = "https://api.groq.com/openai/v1";
    p.api_key = key;
    p.models = {"llama-3.3-70b-versatile", "llama-3.1-8b-instant"};
    p.default_model = "llama-3.3-70b-versatile";
    p.source = "env GROQ_API_KEY";
    add(std::move(p));
  }
  if (auto url = get("OLLAMA_BASE_URL"); !url.empty()) {
    ProviderSettings p;
    p.name = "ollama";
    p.type = "openai";
    url = trim_slash(url);
    // Ollama's OpenAI-compatible API lives under /v1 of the server's address.
    if (url.size() < 3 || url.compare(url.size() - 3, 3, "/v1") != 0) url += "/v1";
    p.base_url = url;
    p.default_model = get("OLLAMA_MODEL").empty() ? "llama3.2" : get("OLLAMA_MODEL");
    p.models = {p.default_model};
    p.source = "env OLLAMA_BASE_URL";
    add(std::move(p));
  }
}

json show_providers(const LlmSettings& s) {
  json providers = json::object();
  for (const auto& p : s.providers) {
    // Every header value is treated as a credential (X-Corp-Token, Authorization, ...).
    json headers = json::object();
    for (const auto& [k, v] : p.headers) headers[k] = v.empty() ? "" : config::kRedacted;
    providers[p.name] = {{"type", p.type},
                         {"base_url", config::redact_url(p.base_url)},
                         {"api_key", p.api_key.empty() ? "" : config::kRedacted},
                         {"models", p.models},
                         {"default_model", p.default_model},
                         {"embedding_model", p.embedding_model},
                         {"headers", headers},
                         {"proxy", config::redact_url(p.proxy)},
                         {"stream_usage", p.stream_usage},
                         {"source", p.source}};
  }
  return providers;
}

void provider_secrets(const LlmSettings& s, std::vector<std::string>& out) {
  for (const auto& p : s.providers) {
    if (!p.api_key.empty()) out.push_back(p.api_key);
    for (const auto& [k, v] : p.headers) {
      if (!v.empty()) out.push_back(v);
    }
    config::add_url_secrets(p.proxy, out);
    config::add_url_secrets(p.base_url, out);
  }
}

}  // namespace

void declare_settings(config::Schema& schema) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  schema.group<LlmSettings>("llm")
      .text("default_model", &LlmSettings::default_model,
            "Model when a request names none: route, provider/model or model; empty = the "
            "first provider's default.")
      .duration(
          "connect_timeout", [](auto& s) -> auto& { return s.gateway.limits.connect_timeout; },
          "Time to connect to a provider (DNS, TCP, TLS).", milliseconds(100), hours(1))
      .duration(
          "first_token_timeout",
          [](auto& s) -> auto& { return s.gateway.limits.first_token_timeout; },
          "From sending a request until the first token (or the whole unstreamed reply).",
          milliseconds(100), hours(1))
      .duration(
          "stall_timeout", [](auto& s) -> auto& { return s.gateway.limits.stall_timeout; },
          "Longest silence between two pieces of a streamed reply.", milliseconds(100), hours(1))
      .duration(
          "total_timeout", [](auto& s) -> auto& { return s.gateway.limits.total_timeout; },
          "Longest time one provider call may take.", milliseconds(100), hours(24))
      .integer(
          "max_retries", [](auto& s) -> auto& { return s.gateway.max_retries; },
          "Retries of a failed call (connect errors, 429, 5xx, timeouts) before the next "
          "fallback target.",
          0, 10)
      .duration(
          "retry_backoff", [](auto& s) -> auto& { return s.gateway.backoff_base; },
          "Base of the exponential back-off between retries (full jitter).", milliseconds(0),
          hours(1))
      .duration(
          "retry_backoff_max", [](auto& s) -> auto& { return s.gateway.backoff_max; },
          "Cap of the back-off between retries.", milliseconds(0), hours(1))
      .duration(
          "max_retry_after", [](auto& s) -> auto& { return s.gateway.max_retry_after; },
          "A provider's longer Retry-After is not waited for: the next target is tried.",
          milliseconds(0), hours(1))
      .integer(
          "breaker_failures", [](auto& s) -> auto& { return s.gateway.breaker_failures; },
          "Consecutive failures of a provider/model that open its circuit breaker.", 1, 1000)
      .duration(
          "breaker_cooldown", [](auto& s) -> auto& { return s.gateway.breaker_cooldown; },
          "How long an open circuit refuses calls before one probe.", milliseconds(10), hours(1))
      .duration("usage_flush_interval", &LlmSettings::usage_flush_interval,
                "How often usage of the OpenAI-compatible API is written to the database, "
                "batched.",
                milliseconds(10), std::chrono::minutes(10));

  schema.block<LlmSettings>(
      "providers", "Model providers by name: type, base_url, api_key, models, headers, proxy.",
      [](LlmSettings& s, const YAML::Node& node, const std::string& source, Problems& problems) {
        parse_mappings(node, "providers", source, problems,
                       [&](const std::string& name, const YAML::Node& value) {
                         parse_provider(s, name, value, source, problems);
                       });
      },
      show_providers, provider_secrets);
  schema.block<LlmSettings>(
      "routes", "Named routes: targets tried in order, or chosen by cost.",
      [](LlmSettings& s, const YAML::Node& node, const std::string& source, Problems& problems) {
        config::for_each_entry(
            node, "routes", source, problems,
            [&](const std::string& name, const YAML::Node& value, const std::string&) {
              parse_route(s, name, value, source, problems);
            });
      },
      [](const LlmSettings& s) {
        json routes = json::object();
        for (const auto& r : s.routes) {
          routes[r.name] = {{"targets", r.targets},
                            {"strategy", r.strategy},
                            {"complexity_threshold", r.complexity_threshold},
                            {"daily_budget_usd", r.daily_budget_usd}};
        }
        return routes;
      });
  schema.block<LlmSettings>(
      "models", "Prices (USD per million tokens) and context windows of models.",
      [](LlmSettings& s, const YAML::Node& node, const std::string& source, Problems& problems) {
        parse_mappings(node, "models", source, problems,
                       [&](const std::string& name, const YAML::Node& value) {
                         parse_model(s, name, value, source, problems);
                       });
      },
      [](const LlmSettings& s) {
        json models = json::object();
        for (const auto& m : s.models) {
          json entry = json::object();
          if (m.input_per_million) entry["input"] = *m.input_per_million;
          if (m.output_per_million) entry["output"] = *m.output_per_million;
          if (m.context_window) entry["context_window"] = *m.context_window;
          models[m.model] = std::move(entry);
        }
        return models;
      });
  schema.environment<LlmSettings>(
      {"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "ANTHROPIC_API_KEY",
       "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "GROQ_API_KEY", "OLLAMA_BASE_URL", "OLLAMA_MODEL"},
      [](LlmSettings& s, const std::map<std::string, std::string>& env, Problems&) {
        add_environment_providers(s, env);
      });
  schema.check([](const config::Settings& settings, Problems& problems) {
    const auto& s = settings.get<LlmSettings>();
    auto has_provider = [&](std::string_view name) {
      return std::any_of(s.providers.begin(), s.providers.end(),
                         [&](const auto& p) { return p.name == name; });
    };
    for (const auto& r : s.routes) {
      for (const auto& t : r.targets) {
        const std::string provider = t.substr(0, t.find('/'));
        if (!has_provider(provider) && provider != "builtin") {
          problems.push_back({"routes." + r.name, t, r.source,
                              "target names provider '" + provider + "', which is not configured"});
        }
      }
    }
  });
}

}  // namespace parley::llm

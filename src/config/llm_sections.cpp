// providers / routes / assistants / models sections, and environment providers.
#include "config/llm_sections.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/units.hpp"
#include "moderation/rules.hpp"

namespace parley::config::detail {
namespace {

constexpr const char* kRedacted = "[REDACTED]";

std::string where(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// A small reader over one entry's mapping that records problems with their location.
class Entry {
 public:
  Entry(const YAML::Node& node, std::string path, std::string source,
        std::vector<Problem>& problems)
      : node_(node), path_(std::move(path)), source_(std::move(source)), problems_(problems) {}

  void problem(const std::string& key, const std::string& message) {
    problems_.push_back(
        {path_ + (key.empty() ? "" : "." + key), "", where(source_, node_), message});
  }

  std::optional<std::string> text(const std::string& key) {
    seen_.push_back(key);
    auto v = node_[key];
    if (!v) return std::nullopt;
    if (!v.IsScalar()) {
      problem(key, "must be a string");
      return std::nullopt;
    }
    return v.Scalar();
  }
  // A secret: the value, or "<key>_file" naming a file that holds it.
  std::optional<std::string> secret(const std::string& key) {
    auto direct = text(key);
    auto file = text(key + "_file");
    if (!file) return direct;
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      problem(key + "_file", "cannot read secret file '" + *file + "'");
      return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string out = ss.str();
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }
  std::vector<std::string> list(const std::string& key) {
    seen_.push_back(key);
    std::vector<std::string> out;
    auto v = node_[key];
    if (!v) return out;
    if (v.IsScalar()) return {v.Scalar()};
    if (!v.IsSequence()) {
      problem(key, "must be a list of strings");
      return out;
    }
    for (const auto& item : v) {
      if (item.IsScalar()) {
        out.push_back(item.Scalar());
      } else {
        problem(key, "must be a list of strings");
      }
    }
    return out;
  }
  std::optional<double> number(const std::string& key, double min, double max) {
    auto t = text(key);
    if (!t) return std::nullopt;
    try {
      size_t used = 0;
      double v = std::stod(*t, &used);
      if (used != t->size()) throw std::invalid_argument(*t);
      if (v < min || v > max) {
        problem(key, "out of range (expected " + std::to_string(min) + " to " +
                         std::to_string(max) + ")");
        return std::nullopt;
      }
      return v;
    } catch (const std::exception&) {
      problem(key, "not a number");
      return std::nullopt;
    }
  }
  std::optional<bool> boolean(const std::string& key) {
    auto t = text(key);
    if (!t) return std::nullopt;
    if (*t == "true" || *t == "yes" || *t == "on") return true;
    if (*t == "false" || *t == "no" || *t == "off") return false;
    problem(key, "not a boolean (expected true or false)");
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> map(const std::string& key) {
    seen_.push_back(key);
    std::vector<std::pair<std::string, std::string>> out;
    auto v = node_[key];
    if (!v) return out;
    if (!v.IsMap()) {
      problem(key, "must be a mapping of names to values");
      return out;
    }
    for (const auto& kv : v) {
      if (!kv.second.IsScalar()) {
        problem(key, "values must be strings");
        continue;
      }
      out.emplace_back(kv.first.as<std::string>(), kv.second.Scalar());
    }
    return out;
  }
  // A key read some other way.
  void skip(const std::string& key) { seen_.push_back(key); }
  // Every key not read is a mistake worth naming (a typo would otherwise be ignored).
  void reject_unknown() {
    for (const auto& kv : node_) {
      auto key = kv.first.as<std::string>();
      if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) {
        problem(key, "unknown key");
      }
    }
  }

 private:
  const YAML::Node& node_;
  std::string path_;
  std::string source_;
  std::vector<Problem>& problems_;
  std::vector<std::string> seen_;
};

bool valid_url(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

void parse_provider(const std::string& name, const YAML::Node& node, const std::string& source,
                    Config& config, std::vector<Problem>& problems) {
  Entry e(node, "providers." + name, source, problems);
  ProviderConfig p;
  p.name = name;
  p.source = where(source, node);
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
  p.proxy = e.text("proxy").value_or("");
  p.ca_file = e.text("ca_file").value_or("");
  p.stream_usage = e.boolean("stream_usage").value_or(true);
  p.max_tokens = static_cast<int64_t>(e.number("max_tokens", 1, 10'000'000).value_or(4096));
  e.reject_unknown();
  if (p.default_model.empty() && p.type != "builtin") {
    e.problem("default_model",
              "a provider needs default_model (or models) to know what to ask for");
  }
  auto& list = config.llm.providers;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& x) { return x.name == name; }),
      list.end());
  list.push_back(std::move(p));
}

void parse_route(const std::string& name, const YAML::Node& node, const std::string& source,
                 Config& config, std::vector<Problem>& problems) {
  RouteConfig r;
  r.name = name;
  r.source = where(source, node);
  if (node.IsSequence() || node.IsScalar()) {
    // Short form: `smart: [openai/gpt-4o, anthropic/claude-sonnet-4-5]`.
    Entry e(YAML::Node(YAML::NodeType::Map), "routes." + name, source, problems);
    if (node.IsScalar()) {
      r.targets = {node.Scalar()};
    } else {
      for (const auto& t : node) {
        if (t.IsScalar()) r.targets.push_back(t.Scalar());
      }
    }
  } else {
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
  auto& list = config.llm.routes;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& x) { return x.name == name; }),
      list.end());
  list.push_back(std::move(r));
}

void parse_assistant(const std::string& name, const YAML::Node& node, const std::string& source,
                     Config& config, std::vector<Problem>& problems) {
  Entry e(node, "assistants." + name, source, problems);
  AssistantConfig a;
  a.name = name;
  a.source = where(source, node);
  a.description = e.text("description").value_or("");
  a.system_prompt = e.text("system_prompt").value_or("");
  a.model = e.text("model").value_or("");
  a.temperature = e.number("temperature", 0, 2);
  if (auto m = e.number("max_tokens", 1, 10'000'000)) a.max_tokens = static_cast<int64_t>(*m);
  a.max_history = static_cast<int>(e.number("max_history", 0, 10'000).value_or(100));
  e.reject_unknown();
  auto& list = config.chat.assistants;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& x) { return x.name == name; }),
      list.end());
  list.push_back(std::move(a));
}

void parse_model(const std::string& name, const YAML::Node& node, const std::string& source,
                 Config& config, std::vector<Problem>& problems) {
  Entry e(node, "models." + name, source, problems);
  ModelInfoConfig m;
  m.model = name;
  m.input_per_million = e.number("input", 0, 1e6);
  m.output_per_million = e.number("output", 0, 1e6);
  if (auto w = e.number("context_window", 1, 1e9)) m.context_window = static_cast<int64_t>(*w);
  e.reject_unknown();
  auto& list = config.llm.models;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& x) { return x.model == name; }),
      list.end());
  list.push_back(std::move(m));
}

// Stages as a list ("input", "output"); both when absent.
void read_stages(Entry& e, const std::string& key, bool& input, bool& output) {
  auto stages = e.list(key);
  if (stages.empty()) return;
  input = output = false;
  for (const auto& s : stages) {
    if (s == "input") {
      input = true;
    } else if (s == "output") {
      output = true;
    } else {
      e.problem(key, "stages are input and output, not '" + s + "'");
    }
  }
}

bool valid_action(const std::string& a) { return a == "allow" || a == "redact" || a == "block"; }

void parse_moderation(const YAML::Node& node, const std::string& source, Config& config,
                      std::vector<Problem>& problems) {
  if (!node.IsMap()) {
    problems.push_back({"moderation", "", where(source, node), "must be a mapping"});
    return;
  }
  auto& m = config.moderation;
  Entry e(node, "moderation", source, problems);
  if (auto v = e.number("max_input_chars", 0, 1e9)) m.max_input_chars = static_cast<int64_t>(*v);
  if (auto v = e.number("max_output_chars", 0, 1e9)) m.max_output_chars = static_cast<int64_t>(*v);
  if (auto pii = node["pii"]; pii && !pii.IsNull()) {
    if (!pii.IsMap()) {
      e.problem("pii", "must map email, phone and card to an action");
    } else {
      for (const auto& kv : pii) {
        ModerationPiiConfig p;
        p.kind = kv.first.as<std::string>();
        const std::string path = "moderation.pii." + p.kind;
        if (p.kind != "email" && p.kind != "phone" && p.kind != "card") {
          problems.push_back({path, "", where(source, kv.first), "expected email, phone or card"});
          continue;
        }
        if (kv.second.IsScalar()) {
          p.action = kv.second.Scalar();
        } else if (kv.second.IsMap()) {
          Entry pe(kv.second, path, source, problems);
          p.action = pe.text("action").value_or("redact");
          read_stages(pe, "stages", p.input, p.output);
          pe.reject_unknown();
        } else {
          problems.push_back(
              {path, "", where(source, kv.second), "must be an action or a mapping"});
          continue;
        }
        if (!valid_action(p.action)) {
          problems.push_back(
              {path, p.action, where(source, kv.second), "action must be allow, redact or block"});
          continue;
        }
        std::erase_if(m.pii, [&](const auto& x) { return x.kind == p.kind; });
        m.pii.push_back(std::move(p));
      }
    }
  }
  if (auto categories = node["categories"]; categories && !categories.IsNull()) {
    if (!categories.IsMap()) {
      e.problem("categories", "must be a mapping of category names to rules");
    } else {
      for (const auto& kv : categories) {
        ModerationCategoryConfig c;
        c.name = kv.first.as<std::string>();
        const std::string path = "moderation.categories." + c.name;
        if (!valid_name(c.name)) {
          problems.push_back({path, "", where(source, kv.first),
                              "names are 1 to 64 letters, digits, '-', '_' or '.'"});
          continue;
        }
        if (!kv.second.IsMap()) {
          problems.push_back({path, "", where(source, kv.second), "must be a mapping"});
          continue;
        }
        Entry ce(kv.second, path, source, problems);
        c.words = ce.list("words");
        c.patterns = ce.list("patterns");
        c.action = ce.text("action").value_or("block");
        if (!valid_action(c.action)) ce.problem("action", "must be allow, redact or block");
        read_stages(ce, "stages", c.input, c.output);
        ce.reject_unknown();
        std::erase_if(m.categories, [&](const auto& x) { return x.name == c.name; });
        m.categories.push_back(std::move(c));
      }
    }
  }
  if (auto provider = node["provider"]; provider && !provider.IsNull()) {
    if (!provider.IsMap()) {
      e.problem("provider", "must be a mapping: {name: <a provider>, model: ...}");
    } else {
      Entry pe(provider, "moderation.provider", source, problems);
      auto& p = m.provider;
      p.name = pe.text("name").value_or("");
      if (p.name.empty()) pe.problem("name", "names a provider from `providers:`");
      if (auto v = pe.text("model")) p.model = *v;
      // The rules' keyword, with another default: input only (output waits on the reply).
      p.input = true;
      p.output = false;
      read_stages(pe, "stages", p.input, p.output);
      p.action = pe.text("action").value_or("block");
      if (p.action != "block" && p.action != "allow") {
        pe.problem("action", "must be block or allow (a flagged message cannot be redacted)");
      }
      p.on_error = pe.text("on_error").value_or("allow");
      if (p.on_error != "block" && p.on_error != "allow") {
        pe.problem("on_error", "must be allow or block");
      }
      if (auto t = pe.text("timeout")) {
        auto d = parse_duration(*t);
        if (!d || d->count() <= 0) {
          pe.problem("timeout", "must be a duration such as 5s or 500ms");
        } else {
          p.timeout = *d;
        }
      }
      pe.reject_unknown();
    }
  }
  e.skip("pii");  // read above, by hand
  e.skip("categories");
  e.skip("provider");
  e.reject_unknown();
}

}  // namespace

bool is_section(std::string_view key) {
  return key == "providers" || key == "routes" || key == "assistants" || key == "models" ||
         key == "moderation";
}

void apply_section(const std::string& key, const YAML::Node& node, const std::string& source_name,
                   Config& config, std::vector<Problem>& problems) {
  if (node.IsNull()) return;
  if (key == "moderation") {
    parse_moderation(node, source_name, config, problems);
    return;
  }
  if (!node.IsMap()) {
    problems.push_back(
        {key, "", where(source_name, node), "must be a mapping of names to entries"});
    return;
  }
  for (const auto& kv : node) {
    std::string name;
    try {
      name = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      problems.push_back({key, "", where(source_name, kv.first), "a name that is not a string"});
      continue;
    }
    std::string path = key;
    path.append(".").append(name);
    if (!valid_name(name)) {
      problems.push_back({path, "", where(source_name, kv.first),
                          "names are 1 to 64 letters, digits, '-', '_' or '.'"});
      continue;
    }
    const YAML::Node& value = kv.second;
    if (key == "routes") {
      parse_route(name, value, source_name, config, problems);
      continue;
    }
    if (!value.IsMap() && !(value.IsNull())) {
      problems.push_back({path, "", where(source_name, value), "must be a mapping"});
      continue;
    }
    const YAML::Node map = value.IsNull() ? YAML::Node(YAML::NodeType::Map) : value;
    if (key == "providers") parse_provider(name, map, source_name, config, problems);
    if (key == "assistants") parse_assistant(name, map, source_name, config, problems);
    if (key == "models") parse_model(name, map, source_name, config, problems);
  }
}

void add_environment_providers(Config& config, const std::map<std::string, std::string>& env) {
  auto get = [&](const char* name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  auto add = [&](ProviderConfig p) {
    for (const auto& existing : config.llm.providers) {
      if (existing.name == p.name) return;  // the YAML file's definition wins
    }
    config.llm.providers.push_back(std::move(p));
  };
  if (auto key = get("OPENAI_API_KEY"); !key.empty() || !get("OPENAI_BASE_URL").empty()) {
    ProviderConfig p;
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
    ProviderConfig p;
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
    ProviderConfig p;
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
    ProviderConfig p;
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

void finish(Config& config, std::vector<Problem>& problems) {
  auto has_provider = [&](std::string_view name) {
    return std::any_of(config.llm.providers.begin(), config.llm.providers.end(),
                       [&](const auto& p) { return p.name == name; });
  };
  for (const auto& r : config.llm.routes) {
    for (const auto& t : r.targets) {
      const std::string provider = t.substr(0, t.find('/'));
      if (!has_provider(provider) && provider != "builtin") {
        problems.push_back({"routes." + r.name, t, r.source,
                            "target names provider '" + provider + "', which is not configured"});
      }
    }
  }
  if (const auto& mp = config.moderation.provider; !mp.name.empty()) {
    auto it = std::find_if(config.llm.providers.begin(), config.llm.providers.end(),
                           [&](const auto& p) { return p.name == mp.name; });
    if (it == config.llm.providers.end()) {
      problems.push_back({"moderation.provider.name", mp.name, "moderation",
                          "names provider '" + mp.name + "', which is not configured"});
    } else if (it->type != "openai") {
      problems.push_back({"moderation.provider.name", mp.name, "moderation",
                          "provider '" + mp.name + "' is of type " + it->type +
                              "; a moderation endpoint needs an OpenAI-compatible provider"});
    }
  }
  // The moderation rules compile (regular expressions, names): found now, not at startup.
  if (auto compiled =
          moderation::RuleSet::compile(parley::config::moderation_policy(config.moderation));
      !compiled) {
    problems.push_back({compiled.error().param, "", "moderation", compiled.error().message});
  }
}

void sections_to_json(const Config& config, nlohmann::json& root) {
  using nlohmann::json;
  json providers = json::object();
  for (const auto& p : config.llm.providers) {
    json headers = json::object();
    for (const auto& [k, v] : p.headers) headers[k] = v;
    providers[p.name] = {{"type", p.type},
                         {"base_url", p.base_url},
                         {"api_key", p.api_key.empty() ? "" : kRedacted},
                         {"models", p.models},
                         {"default_model", p.default_model},
                         {"embedding_model", p.embedding_model},
                         {"headers", headers},
                         {"proxy", p.proxy},
                         {"stream_usage", p.stream_usage},
                         {"source", p.source}};
  }
  root["providers"] = std::move(providers);
  json routes = json::object();
  for (const auto& r : config.llm.routes) {
    routes[r.name] = {{"targets", r.targets},
                      {"strategy", r.strategy},
                      {"complexity_threshold", r.complexity_threshold},
                      {"daily_budget_usd", r.daily_budget_usd}};
  }
  root["routes"] = std::move(routes);
  json assistants = json::object();
  for (const auto& a : config.chat.assistants) {
    json entry = {{"description", a.description},
                  {"system_prompt", a.system_prompt},
                  {"model", a.model},
                  {"max_history", a.max_history}};
    if (a.temperature) entry["temperature"] = *a.temperature;
    if (a.max_tokens) entry["max_tokens"] = *a.max_tokens;
    assistants[a.name] = std::move(entry);
  }
  root["assistants"] = std::move(assistants);
  json models = json::object();
  for (const auto& m : config.llm.models) {
    json entry = json::object();
    if (m.input_per_million) entry["input"] = *m.input_per_million;
    if (m.output_per_million) entry["output"] = *m.output_per_million;
    if (m.context_window) entry["context_window"] = *m.context_window;
    models[m.model] = std::move(entry);
  }
  root["models"] = std::move(models);
  json categories = json::object();
  for (const auto& c : config.moderation.categories) {
    json stages = json::array();
    if (c.input) stages.push_back("input");
    if (c.output) stages.push_back("output");
    categories[c.name] = {
        {"words", c.words}, {"patterns", c.patterns}, {"action", c.action}, {"stages", stages}};
  }
  json pii = json::object();
  for (const auto& p : config.moderation.pii) {
    json stages = json::array();
    if (p.input) stages.push_back("input");
    if (p.output) stages.push_back("output");
    pii[p.kind] = {{"action", p.action}, {"stages", stages}};
  }
  root["moderation"] = {{"max_input_chars", config.moderation.max_input_chars},
                        {"max_output_chars", config.moderation.max_output_chars},
                        {"pii", pii},
                        {"categories", categories}};
  if (const auto& mp = config.moderation.provider; !mp.name.empty()) {
    json stages = json::array();
    if (mp.input) stages.push_back("input");
    if (mp.output) stages.push_back("output");
    root["moderation"]["provider"] = {
        {"name", mp.name},     {"model", mp.model},       {"stages", stages},
        {"action", mp.action}, {"on_error", mp.on_error}, {"timeout_ms", mp.timeout.count()}};
  }
}

void section_secrets(const Config& config, std::vector<std::string>& out) {
  for (const auto& p : config.llm.providers) {
    if (!p.api_key.empty()) out.push_back(p.api_key);
  }
}

}  // namespace parley::config::detail

namespace parley::config {

moderation::Policy moderation_policy(const ModerationConfig& c) {
  moderation::Policy p;
  for (const auto& cat : c.categories) {
    moderation::CategoryRule r;
    r.name = cat.name;
    r.words = cat.words;
    r.patterns = cat.patterns;
    r.action = moderation::parse_action(cat.action).value_or(moderation::Action::kBlock);
    r.input = cat.input;
    r.output = cat.output;
    p.categories.push_back(std::move(r));
  }
  for (const auto& pii : c.pii) {
    moderation::PiiRule r;
    r.kind = moderation::parse_pii_kind(pii.kind).value_or(moderation::PiiKind::kEmail);
    r.action = moderation::parse_action(pii.action).value_or(moderation::Action::kRedact);
    r.input = pii.input;
    r.output = pii.output;
    p.pii.push_back(r);
  }
  p.max_input_chars = static_cast<size_t>(c.max_input_chars);
  p.max_output_chars = static_cast<size_t>(c.max_output_chars);
  return p;
}

}  // namespace parley::config

// The settings machinery (see settings.hpp): layering, parsing, unknown keys with hints,
// secret files, redaction and the reference table.
#include "config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/units.hpp"

extern char** environ;

namespace parley::config {
namespace {

constexpr std::string_view kEnvPrefix = "PARLEY_";
constexpr std::string_view kFileSuffix = "_file";

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

// How a value may appear in a problem report.
std::string shown_value(const Setting* s, const std::string& value) {
  if (!s) return "";  // an unknown key never echoes its value: it may be a mistyped secret
  if (s->secret()) return value.empty() ? "" : kRedacted;
  if (s->kind == Kind::kUrl) return redact_url(value);
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
    if (value.is_object() && !value.empty()) {
      out += "\n";
      emit_yaml(value, indent + 2, out);
    } else {
      // A JSON value is also a valid YAML flow value ({} and [] included).
      out += ' ';
      out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += '\n';
    }
  }
}

std::string shown_default(const Setting& s, const nlohmann::json& defaults) {
  size_t start = 0;
  const nlohmann::json* node = &defaults;
  while (node) {
    auto dot = s.path.find('.', start);
    const std::string part =
        s.path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto it = node->find(part);
    if (it == node->end()) return "";
    node = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node->is_string() ? node->get<std::string>() : node->dump();
}

}  // namespace

// Loading, with access to Settings' internals.
struct Loader {
  static void* section(Settings& settings, size_t index) { return settings.values_[index].get(); }
  static const void* section(const Settings& settings, size_t index) {
    return settings.values_[index].get();
  }

  static std::string unknown_key_message(const Schema& schema, std::string_view key, bool env) {
    std::string best;
    size_t best_distance = 4;
    for (const auto& s : schema.settings()) {
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

  // Applies one raw value to the setting named by `key`; `key` may be "<secret>_file".
  static void apply_value(Settings& settings, const std::string& key, const std::string& value,
                          const std::string& source, Problems& problems, bool env) {
    const Schema& schema = settings.schema();
    const Setting* setting = schema.find(key);
    std::string value_text = value;
    if (!setting && key.size() > kFileSuffix.size() &&
        key.compare(key.size() - kFileSuffix.size(), kFileSuffix.size(), kFileSuffix) == 0) {
      const Setting* target = schema.find(key.substr(0, key.size() - kFileSuffix.size()));
      if (target && (target->secret() || target->kind == Kind::kUrl)) {
        std::string secret;
        if (auto err = read_secret_file(value, secret)) {
          problems.push_back({key, value, source, *err});  // the value is a path, not a secret
          return;
        }
        setting = target;
        value_text = std::move(secret);
      }
    }
    if (!setting) {
      problems.push_back(
          {key, "", source, unknown_key_message(schema, env ? env_name(key) : key, env)});
      return;
    }
    if (auto err = setting->set(section(settings, setting->section), value_text)) {
      problems.push_back({setting->path, shown_value(setting, value_text), source, *err});
    }
  }

  static void walk_yaml(const YAML::Node& node, const std::string& prefix,
                        const std::string& source_name, Settings& settings, Problems& problems,
                        int depth = 0) {
    // Settings nest a few levels deep; anything deeper is a mistake (or a cyclic alias, which
    // would otherwise recurse forever).
    constexpr int kMaxDepth = 4;
    if (depth > kMaxDepth) {
      problems.push_back({prefix, "", source_name, "nested too deeply to be a setting"});
      return;
    }
    const Schema& schema = settings.schema();
    for (const auto& entry : node) {
      std::string key;
      try {
        key = entry.first.as<std::string>();
      } catch (const YAML::Exception&) {
        problems.push_back({prefix, "", source_name, "a key that is not a string"});
        continue;
      }
      std::string path = prefix;
      if (!path.empty()) path += '.';
      path += key;
      const YAML::Node& value = entry.second;
      std::string where = source_name + ":" + std::to_string(entry.first.Mark().line + 1);
      if (depth == 0) {
        if (const Block* block = schema.find_block(key)) {
          if (!value.IsNull()) {
            block->parse(section(settings, block->section), value, source_name, problems);
          }
          continue;
        }
      }
      const Setting* setting = schema.find(path);
      if (value.IsMap()) {
        walk_yaml(value, path, source_name, settings, problems, depth + 1);
      } else if (value.IsScalar()) {
        apply_value(settings, path, value.Scalar(), where, problems, false);
      } else if (value.IsNull()) {
        if (setting && (setting->kind == Kind::kString || setting->kind == Kind::kSecret ||
                        setting->kind == Kind::kUrl || setting->kind == Kind::kList)) {
          apply_value(settings, path, "", where, problems, false);
        } else {
          problems.push_back({path, "", where,
                              setting ? "has no value" : unknown_key_message(schema, path, false)});
        }
      } else if (!setting) {
        problems.push_back({path, "", where, unknown_key_message(schema, path, false)});
      } else if (value.IsSequence() && setting->kind == Kind::kList) {
        std::string joined;
        for (const auto& item : value) {
          if (item.IsScalar()) joined += (joined.empty() ? "" : ",") + item.Scalar();
        }
        apply_value(settings, path, joined, where, problems, false);
      } else {
        problems.push_back({path, "", where, "a list is not accepted here"});
      }
    }
  }

  static Loaded load(const Schema& schema, const Sources& sources) {
    Loaded out{schema.defaults(), {}};
    if (sources.config_file) {
      std::ifstream in(*sources.config_file, std::ios::binary);
      if (!in) {
        out.problems.push_back(
            {"--config", *sources.config_file, "flag", "cannot read the configuration file"});
      } else {
        std::ostringstream ss;
        ss << in.rdbuf();
        apply_yaml(ss.str(), *sources.config_file, out.settings, out.problems);
      }
    }
    // Environment: each PARLEY_* name must map back to exactly one setting path.
    for (const auto& [name, value] : sources.environment) {
      std::string path;
      for (const auto& s : schema.settings()) {
        if (env_name(s.path) == name) path = s.path;
        if ((s.secret() || s.kind == Kind::kUrl) && env_name(s.path) + "_FILE" == name) {
          path = s.path + std::string(kFileSuffix);
        }
      }
      if (path.empty()) {
        out.problems.push_back({name, "", "env " + name, unknown_key_message(schema, name, true)});
        continue;
      }
      apply_value(out.settings, path, value, "env " + name, out.problems, true);
    }
    for (const auto& [path, value] : sources.overrides) {
      apply_value(out.settings, path, value, "flag", out.problems, false);
    }
    for (const auto& foreign : schema.foreign_) {
      std::map<std::string, std::string> env;
      for (const auto& name : foreign.names) {
        if (auto it = sources.foreign_environment.find(name);
            it != sources.foreign_environment.end()) {
          env.insert(*it);
        }
      }
      foreign.read(out.settings, env, out.problems);
    }
    for (const auto& check : schema.checks_) check(out.settings, out.problems);
    return out;
  }
};

// --- helpers ----------------------------------------------------------------------------

std::string to_string(const Problem& p) {
  std::string out = p.path;
  if (!p.value.empty()) out += " = \"" + p.value + "\"";
  out += ": " + p.message;
  if (!p.source.empty()) out += " [" + p.source + "]";
  return out;
}

std::string url_userinfo(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  const size_t start = scheme_end + 3;
  // The authority ends at the first / ? or # after its '@': a password may hold those
  // characters unescaped (libpq takes them), and redacting too much is harmless.
  const auto first_at = url.find('@', start);
  if (first_at == std::string_view::npos) return "";
  const auto authority_end = url.find_first_of("/?#", first_at);
  const auto at =
      url.rfind('@', authority_end == std::string_view::npos ? url.size() : authority_end);
  return std::string(url.substr(start, at - start));
}

void add_url_secrets(std::string_view url, std::vector<std::string>& out) {
  // A user name alone is not a secret worth blanking out of every log line (it may be an
  // ordinary word); a password is, alone and with its user.
  const auto userinfo = url_userinfo(url);
  const auto colon = userinfo.find(':');
  if (colon == std::string::npos || colon + 1 >= userinfo.size()) return;
  out.push_back(userinfo);
  out.push_back(userinfo.substr(colon + 1));
}

std::string redact_url(std::string_view url) {
  const std::string userinfo = url_userinfo(url);
  if (userinfo.empty()) {
    // No scheme ("app:pw@db/x", a mistake that gets reported): everything before the last
    // '@' may be a credential.
    const auto at = url.rfind('@');
    if (url.find("://") == std::string_view::npos && at != std::string_view::npos) {
      return std::string(kRedacted) + std::string(url.substr(at));
    }
    return std::string(url);
  }
  const size_t start = url.find("://") + 3;
  std::string out(url);
  out.replace(start, userinfo.size(), kRedacted);
  return out;
}

std::string env_name(std::string_view path) {
  std::string name(kEnvPrefix);
  for (char c : path) {
    name.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name;
}

namespace detail {

std::optional<std::string> parse_bool(const std::string& text, bool& out) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    out = true;
  } else if (t == "false" || t == "no" || t == "off" || t == "0") {
    out = false;
  } else {
    return "not a boolean (expected true or false)";
  }
  return std::nullopt;
}

std::optional<std::string> parse_integer(const std::string& text, int64_t min, int64_t max,
                                         int64_t& out) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return "not an integer";
  }
  if (value < min || value > max) {
    return "out of range (expected " + std::to_string(min) + ".." + std::to_string(max) + ")";
  }
  out = value;
  return std::nullopt;
}

std::optional<std::string> parse_number(const std::string& text, double min, double max,
                                        double& out) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return "not a number";
  if (!(value >= min && value <= max)) {
    std::ostringstream range;
    range << "out of range (expected " << min << ".." << max << ")";
    return range.str();
  }
  out = value;
  return std::nullopt;
}

std::optional<std::string> parse_size(const std::string& text, uint64_t min, uint64_t max,
                                      uint64_t& out) {
  auto value = config::parse_size(text);
  if (!value) return "not a size (expected bytes or a unit: 512KiB, 1MiB, 2GiB)";
  if (*value < min || *value > max) {
    return "out of range (expected " + format_size(min) + " to " + format_size(max) + ")";
  }
  out = *value;
  return std::nullopt;
}

std::optional<std::string> parse_duration(const std::string& text, milliseconds min,
                                          milliseconds max, milliseconds& out) {
  auto value = config::parse_duration(text);
  if (!value) return "not a duration (expected a number with a unit: 250ms, 5s, 2m, 1h)";
  if (*value < min || *value > max) {
    return "out of range (expected " + format_duration(min) + " to " + format_duration(max) + ")";
  }
  out = *value;
  return std::nullopt;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

nlohmann::json show_size(uint64_t bytes) { return format_size(bytes); }
nlohmann::json show_duration(milliseconds ms) { return format_duration(ms); }

}  // namespace detail

// --- Schema -----------------------------------------------------------------------------

void Schema::add_setting(Setting setting) {
  for (const auto& s : settings_) {
    // Two modules claiming one path is a programming error, found by the first test to load.
    if (s.path == setting.path) std::abort();
  }
  settings_.push_back(std::move(setting));
}

const Setting* Schema::find(std::string_view path) const {
  for (const auto& s : settings_) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

const Block* Schema::find_block(std::string_view key) const {
  for (const auto& b : blocks_) {
    if (b.key == key) return &b;
  }
  return nullptr;
}

std::vector<std::string> Schema::environment_names() const {
  std::vector<std::string> out;
  for (const auto& f : foreign_) out.insert(out.end(), f.names.begin(), f.names.end());
  return out;
}

void* Schema::mutable_section(Settings& settings, size_t index) {
  return Loader::section(settings, index);
}

Settings Schema::defaults() const { return Settings(*this); }

// --- Settings ---------------------------------------------------------------------------

Settings::Settings(const Schema& schema) : schema_(&schema) {
  values_.reserve(schema.sections_.size());
  for (const auto& s : schema.sections_) values_.push_back(s.make());
}

const void* Settings::find(std::type_index type) const {
  for (size_t i = 0; i < schema_->sections_.size(); ++i) {
    if (schema_->sections_[i].type == type) return values_[i].get();
  }
  std::abort();  // a module reads options it never declared
}

nlohmann::json Settings::to_json() const {
  nlohmann::json root = nlohmann::json::object();
  for (const auto& s : schema_->settings()) {
    nlohmann::json value = s.get(values_[s.section].get());
    if (s.secret() && value.is_string() && !value.get<std::string>().empty()) value = kRedacted;
    if (s.kind == Kind::kUrl && value.is_string()) value = redact_url(value.get<std::string>());
    nested_slot(root, s.path) = std::move(value);
  }
  for (const auto& b : schema_->blocks()) root[b.key] = b.show(values_[b.section].get());
  return root;
}

std::string Settings::to_yaml() const {
  std::string out;
  emit_yaml(to_json(), 0, out);
  return out;
}

std::vector<std::string> Settings::secret_values() const {
  std::vector<std::string> out;
  for (const auto& s : schema_->settings()) {
    if (!s.secret() && s.kind != Kind::kUrl) continue;
    const auto value = s.get(values_[s.section].get());
    if (!value.is_string()) continue;
    const auto text = value.get<std::string>();
    if (s.secret() && !text.empty()) out.push_back(text);
    if (s.kind == Kind::kUrl) {
      add_url_secrets(text, out);
    }
  }
  for (const auto& b : schema_->blocks()) {
    if (b.secrets) b.secrets(values_[b.section].get(), out);
  }
  return out;
}

// --- loading ----------------------------------------------------------------------------

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

std::map<std::string, std::string> load_environment(const std::vector<std::string>& names) {
  std::map<std::string, std::string> env;
  for (const auto& name : names) {
    if (const char* value = std::getenv(name.c_str()); value && *value) env.emplace(name, value);
  }
  return env;
}

void apply_yaml(const std::string& text, const std::string& source_name, Settings& settings,
                Problems& problems) {
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
    Loader::walk_yaml(root, "", source_name, settings, problems);
  } catch (const YAML::Exception& e) {
    problems.push_back({"", "", source_name, "not valid YAML: " + e.msg});
  }
}

Loaded load(const Schema& schema, const Sources& sources) { return Loader::load(schema, sources); }

std::string reference_markdown(const Schema& schema) {
  const nlohmann::json defaults = schema.defaults().to_json();
  std::string out = "| setting | default | meaning |\n|---|---|---|\n";
  for (const auto& s : schema.settings()) {
    std::string shown = shown_default(s, defaults);
    out += "| `" + s.path + "` | " + (shown.empty() ? "empty" : "`" + shown + "`") + " | " +
           s.description;
    if (s.secret() || s.kind == Kind::kUrl) {
      out += " Secret" + std::string(s.kind == Kind::kUrl ? " userinfo" : "") + "; also `" +
             env_name(s.path) + "_FILE`.";
    }
    out += " |\n";
  }
  return out;
}

std::string reference_text(const Schema& schema) {
  const nlohmann::json defaults = schema.defaults().to_json();
  std::string out;
  for (const auto& s : schema.settings()) {
    std::string shown = shown_default(s, defaults);
    out += "  " + s.path + " (default " + (shown.empty() ? "\"\"" : shown) + ")\n      " +
           s.description +
           (s.secret() || s.kind == Kind::kUrl ? " Also " + s.path + "_file." : "") + "\n";
  }
  return out;
}

}  // namespace parley::config

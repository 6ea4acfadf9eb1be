// Settings machinery: how every module's settings are declared, loaded, checked, shown and
// kept secret. config/ knows no module: each module declares its own settings in its own
// folder (a `declare_settings(config::Schema&)` function), bound to the fields of its own
// options struct (a data member pointer, or a generic lambda `[](auto& o) -> auto& { return
// o.key.burst; }` for nested fields), and reads the loaded values back with
// `settings.get<ItsOptions>()`. The struct's member initialisers are the defaults; there is
// no second copy anywhere.
//
//   // limits/settings.cpp
//   void declare_settings(config::Schema& schema) {
//     schema.group<LimitSettings>("limits")
//         .integer("user.requests_per_minute", &LimitSettings::..., "Requests a minute...", 0,
//         1e9);
//   }
//
// Layers, in order of precedence: defaults < YAML file < PARLEY_* environment < flags. Every
// dotted path ("server.max_body_size") is the YAML key (nested), the environment variable
// (PARLEY_SERVER_MAX_BODY_SIZE) and the --set key. A secret may instead name a file holding
// it: "<path>_file" in YAML, PARLEY_<PATH>_FILE in the environment (Docker and Kubernetes
// secrets). Structured sections (providers:, routes:, moderation:, ...) are Blocks: parsed by
// the module that owns them, shown and redacted by it. Modules may read variables of the
// ecosystem (OPENAI_API_KEY) and add checks across sections (a route names a provider that
// exists).
//
// Loading never stops at the first problem: every unknown key (with a "did you mean"),
// unparsable value and failed check is collected, so `parley check-config` lists them all.
// Values of secrets, and the userinfo of URLs, never appear in a problem, in to_json/to_yaml,
// or (through secret_values(), given to the logger) in a log line.
//
// Thread-safety: a Schema is built once at startup, then only read. A Settings is immutable
// once loaded and may be read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace YAML {
class Node;
}

namespace parley::config {

using std::chrono::milliseconds;

// One thing wrong with the configuration.
struct Problem {
  std::string path;     // "server.max_body_size", or the unknown key as written
  std::string value;    // the offending value as given (secrets and URL userinfo redacted)
  std::string source;   // "config.yaml:12", "env PARLEY_LOG_LEVEL", "flag --set"
  std::string message;  // what is wrong, and what would be right
};
using Problems = std::vector<Problem>;

std::string to_string(const Problem& problem);

constexpr const char* kRedacted = "[REDACTED]";

// A URL with its userinfo (user:password@) replaced by [REDACTED]; other text unchanged.
std::string redact_url(std::string_view url);
// The userinfo of a URL ("user:password"), or empty.
std::string url_userinfo(std::string_view url);
// Adds what the log must never show of a URL: its password, alone and with its user.
void add_url_secrets(std::string_view url, std::vector<std::string>& out);

enum class Kind { kString, kSecret, kUrl, kList, kBool, kInt, kSize, kDuration, kNumber };

// A check of a text value before it is stored: an error message, or nullopt when fine.
using Check = std::function<std::optional<std::string>(const std::string&)>;

// One scalar setting, written into its section's options object.
struct Setting {
  std::string path;
  Kind kind = Kind::kString;
  std::string description;
  size_t section = 0;
  // Parses `text` into the section object; an error message when it is not acceptable.
  std::function<std::optional<std::string>(void* section, const std::string& text)> set;
  // The current value, typed, for display (secrets and URLs not yet redacted).
  std::function<nlohmann::json(const void* section)> get;
  bool secret() const { return kind == Kind::kSecret; }
};

// A structured section, parsed by its module.
struct Block {
  std::string key;  // the top-level YAML key
  std::string description;
  size_t section = 0;
  std::function<void(void* section, const YAML::Node& node, const std::string& source,
                     Problems& problems)>
      parse;
  // For display; must redact what is secret.
  std::function<nlohmann::json(const void* section)> show;
  // Every secret value it holds (for the logger's redaction).
  std::function<void(const void* section, std::vector<std::string>& out)> secrets;
};

class Settings;

namespace detail {
std::optional<std::string> parse_bool(const std::string& text, bool& out);
std::optional<std::string> parse_integer(const std::string& text, int64_t min, int64_t max,
                                         int64_t& out);
std::optional<std::string> parse_number(const std::string& text, double min, double max,
                                        double& out);
std::optional<std::string> parse_size(const std::string& text, uint64_t min, uint64_t max,
                                      uint64_t& out);
std::optional<std::string> parse_duration(const std::string& text, milliseconds min,
                                          milliseconds max, milliseconds& out);
std::vector<std::string> split_list(const std::string& text);
nlohmann::json show_size(uint64_t bytes);
nlohmann::json show_duration(milliseconds ms);
}  // namespace detail

class Schema;

// The builder a module declares a group of settings with: `prefix` + "." + name for each,
// bound to a field of T (a data member pointer, or a callable T& -> field&).
template <typename T>
class Group {
 public:
  Group(Schema& schema, std::string prefix, size_t section)
      : schema_(schema), prefix_(std::move(prefix)), section_(section) {}

  template <typename F>
  Group& text(const std::string& name, F field, std::string doc, const Check& check = {}) {
    return string_kind(Kind::kString, name, field, std::move(doc), check);
  }
  // Never shown, never logged; also settable from "<path>_file".
  template <typename F>
  Group& secret(const std::string& name, F field, std::string doc, const Check& check = {}) {
    return string_kind(Kind::kSecret, name, field, std::move(doc), check);
  }
  // A URL whose userinfo (user:password@) is secret.
  template <typename F>
  Group& url(const std::string& name, F field, std::string doc, const Check& check = {}) {
    return string_kind(Kind::kUrl, name, field, std::move(doc), check);
  }
  // A comma-separated list into a std::vector<std::string>.
  template <typename F>
  Group& list(const std::string& name, F field, std::string doc) {
    return add(
        Kind::kList, name, std::move(doc),
        [field](T& t, const std::string& text) {
          field_of(t, field) = detail::split_list(text);
          return std::optional<std::string>();
        },
        [field](const T& t) {
          std::string joined;
          for (const auto& item : field_of(t, field)) joined += (joined.empty() ? "" : ",") + item;
          return nlohmann::json(joined);
        });
  }
  template <typename F>
  Group& flag(const std::string& name, F field, std::string doc) {
    return add(
        Kind::kBool, name, std::move(doc),
        [field](T& t, const std::string& text) {
          bool value = false;
          auto err = detail::parse_bool(text, value);
          if (!err) field_of(t, field) = value;
          return err;
        },
        [field](const T& t) { return nlohmann::json(field_of(t, field)); });
  }
  // Into an int or int64_t field.
  template <typename F>
  Group& integer(const std::string& name, F field, std::string doc, int64_t min, int64_t max) {
    return add(
        Kind::kInt, name, std::move(doc),
        [field, min, max](T& t, const std::string& text) {
          int64_t value = 0;
          auto err = detail::parse_integer(text, min, max, value);
          using Field = std::remove_reference_t<decltype(field_of(t, field))>;
          if (!err) field_of(t, field) = static_cast<Field>(value);
          return err;
        },
        [field](const T& t) { return nlohmann::json(field_of(t, field)); });
  }
  template <typename F>
  Group& number(const std::string& name, F field, std::string doc, double min, double max) {
    return add(
        Kind::kNumber, name, std::move(doc),
        [field, min, max](T& t, const std::string& text) {
          double value = 0;
          auto err = detail::parse_number(text, min, max, value);
          if (!err) field_of(t, field) = value;
          return err;
        },
        [field](const T& t) { return nlohmann::json(field_of(t, field)); });
  }
  // Bytes, with units (512KiB, 1MiB).
  template <typename F>
  Group& size(const std::string& name, F field, std::string doc, uint64_t min, uint64_t max) {
    return add(
        Kind::kSize, name, std::move(doc),
        [field, min, max](T& t, const std::string& text) {
          uint64_t value = 0;
          auto err = detail::parse_size(text, min, max, value);
          using Field = std::remove_reference_t<decltype(field_of(t, field))>;
          if (!err) field_of(t, field) = static_cast<Field>(value);
          return err;
        },
        [field](const T& t) { return detail::show_size(field_of(t, field)); });
  }
  // A std::chrono::milliseconds field, with units (250ms, 5s, 2m, 1h).
  template <typename F>
  Group& duration(const std::string& name, F field, std::string doc, milliseconds min,
                  milliseconds max) {
    return add(
        Kind::kDuration, name, std::move(doc),
        [field, min, max](T& t, const std::string& text) {
          milliseconds value{0};
          auto err = detail::parse_duration(text, min, max, value);
          if (!err) field_of(t, field) = value;
          return err;
        },
        [field](const T& t) { return detail::show_duration(field_of(t, field)); });
  }

 private:
  template <typename F>
  static decltype(auto) field_of(T& t, F field) {
    return std::invoke(field, t);
  }
  template <typename F>
  static decltype(auto) field_of(const T& t, F field) {
    return std::invoke(field, t);
  }

  template <typename F>
  Group& string_kind(Kind kind, const std::string& name, F field, std::string doc,
                     const Check& check) {
    return add(
        kind, name, std::move(doc),
        [field, check](T& t, const std::string& text) {
          if (check) {
            if (auto err = check(text)) return err;
          }
          field_of(t, field) = text;
          return std::optional<std::string>();
        },
        [field](const T& t) { return nlohmann::json(field_of(t, field)); });
  }

  template <typename Set, typename Get>
  Group& add(Kind kind, const std::string& name, std::string doc, Set set, Get get);

  Schema& schema_;
  std::string prefix_;
  size_t section_;
};

// Every setting, block, environment reader and check that the modules declared.
class Schema {
 public:
  // Settings under `prefix` ("" for top-level names), bound to T's fields. Several groups
  // may bind the same T, and several types may share a prefix; every path is unique.
  template <typename T>
  Group<T> group(std::string prefix) {
    return Group<T>(*this, std::move(prefix), section<T>());
  }

  // A structured section under the top-level `key`, parsed into T by the module.
  template <typename T>
  void block(std::string key, std::string description,
             std::function<void(T&, const YAML::Node&, const std::string&, Problems&)> parse,
             std::function<nlohmann::json(const T&)> show,
             std::function<void(const T&, std::vector<std::string>&)> secrets = {}) {
    Block b;
    b.key = std::move(key);
    b.description = std::move(description);
    b.section = section<T>();
    b.parse = [parse](void* s, const YAML::Node& node, const std::string& source,
                      Problems& problems) { parse(*static_cast<T*>(s), node, source, problems); };
    b.show = [show](const void* s) { return show(*static_cast<const T*>(s)); };
    if (secrets) {
      b.secrets = [secrets](const void* s, std::vector<std::string>& out) {
        secrets(*static_cast<const T*>(s), out);
      };
    }
    blocks_.push_back(std::move(b));
  }

  // Variables of the ecosystem a module reads (OPENAI_API_KEY, DATABASE_URL), applied after
  // the file, PARLEY_* and flags; `read` gets the ones that are set.
  template <typename T>
  void environment(
      std::vector<std::string> names,
      std::function<void(T&, const std::map<std::string, std::string>&, Problems&)> read) {
    const size_t s = section<T>();
    foreign_.push_back({std::move(names),
                        [s, read](Settings& settings, const std::map<std::string, std::string>& env,
                                  Problems& problems) {
                          read(*static_cast<T*>(mutable_section(settings, s)), env, problems);
                        }});
  }

  // A check once everything is loaded (references between sections, compiled rules).
  void check(std::function<void(const Settings&, Problems&)> check) {
    checks_.push_back(std::move(check));
  }

  const std::vector<Setting>& settings() const { return settings_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  const Setting* find(std::string_view path) const;
  const Block* find_block(std::string_view key) const;
  // Every foreign environment variable any module reads.
  std::vector<std::string> environment_names() const;

  // A settings object holding every section's defaults.
  Settings defaults() const;

 private:
  friend class Settings;
  template <typename U>
  friend class Group;
  friend struct Loader;

  struct Section {
    std::type_index type;
    std::function<std::shared_ptr<void>()> make;
  };
  struct Foreign {
    std::vector<std::string> names;
    std::function<void(Settings&, const std::map<std::string, std::string>&, Problems&)> read;
  };

  template <typename T>
  size_t section() {
    const std::type_index type(typeid(T));
    for (size_t i = 0; i < sections_.size(); ++i) {
      if (sections_[i].type == type) return i;
    }
    sections_.push_back({type, [] { return std::shared_ptr<void>(std::make_shared<T>()); }});
    return sections_.size() - 1;
  }
  static void* mutable_section(Settings& settings, size_t index);
  void add_setting(Setting setting);

  std::vector<Section> sections_;
  std::vector<Setting> settings_;
  std::vector<Block> blocks_;
  std::vector<Foreign> foreign_;
  std::vector<std::function<void(const Settings&, Problems&)>> checks_;
};

template <typename T>
template <typename Set, typename Get>
Group<T>& Group<T>::add(Kind kind, const std::string& name, std::string doc, Set set, Get get) {
  Setting s;
  s.path = prefix_.empty() ? name : prefix_ + "." + name;
  s.kind = kind;
  s.description = std::move(doc);
  s.section = section_;
  s.set = [set](void* section, const std::string& text) {
    return set(*static_cast<T*>(section), text);
  };
  s.get = [get](const void* section) { return get(*static_cast<const T*>(section)); };
  schema_.add_setting(std::move(s));
  return *this;
}

// The loaded values: one options object per declared type. Move-only (each module's object
// has one home); read with get<T>().
class Settings {
 public:
  Settings(Settings&&) = default;
  Settings& operator=(Settings&&) = default;
  Settings(const Settings&) = delete;
  Settings& operator=(const Settings&) = delete;

  // The options of a module. T must have been declared in the schema (a module reading a
  // type it never declared is a programming error, caught by the first test that runs it).
  template <typename T>
  const T& get() const {
    return *static_cast<const T*>(find(typeid(T)));
  }
  template <typename T>
  T& mutable_get() {
    return *static_cast<T*>(const_cast<void*>(find(typeid(T))));  // NOLINT
  }

  const Schema& schema() const { return *schema_; }

  // The effective configuration, nested as in YAML; secrets "[REDACTED]" when set, URLs
  // without their userinfo.
  nlohmann::json to_json() const;
  std::string to_yaml() const;
  // Values that must never appear in logs or messages: every non-empty secret, the userinfo
  // of every URL, and what the blocks hold that is secret.
  std::vector<std::string> secret_values() const;

 private:
  friend class Schema;
  friend struct Loader;
  explicit Settings(const Schema& schema);
  const void* find(std::type_index type) const;

  const Schema* schema_;
  std::vector<std::shared_ptr<void>> values_;  // one per schema section
};

struct Sources {
  std::optional<std::string> config_file;
  // PARLEY_* variables (name -> value); load_environment() reads them from the process.
  std::map<std::string, std::string> environment;
  // The ecosystem's variables the modules read (Schema::environment_names()).
  std::map<std::string, std::string> foreign_environment;
  // From flags, in the order given: (path, value).
  std::vector<std::pair<std::string, std::string>> overrides;
};

// PARLEY_* variables of this process.
std::map<std::string, std::string> load_environment();
// The named variables of this process that are set and not empty.
std::map<std::string, std::string> load_environment(const std::vector<std::string>& names);

struct Loaded {
  Settings settings;
  Problems problems;
  bool ok() const { return problems.empty(); }
};

Loaded load(const Schema& schema, const Sources& sources);

// Applies a YAML document (already read) on top of `settings`; used by load() and the fuzzer.
void apply_yaml(const std::string& text, const std::string& source_name, Settings& settings,
                Problems& problems);

// "PARLEY_SERVER_MAX_BODY_SIZE" for "server.max_body_size".
std::string env_name(std::string_view path);

// The settings reference: every scalar setting with its default and description, as a
// Markdown table (the README's is generated from it) or as --help text.
std::string reference_markdown(const Schema& schema);
std::string reference_text(const Schema& schema);

}  // namespace parley::config

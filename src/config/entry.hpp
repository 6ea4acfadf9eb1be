// Reading a structured section (a Block, settings.hpp) of the YAML file: an Entry wraps one
// mapping and records every problem with its path and file:line, reads "<key>_file" secrets,
// and names every key nobody read (a typo would otherwise be ignored). Modules use it in
// their block parsers; it knows nothing of any module.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/settings.hpp"

namespace parley::config {

// "config.yaml:12" for a node of `source`.
std::string where(const std::string& source, const YAML::Node& node);

// Names of entries (providers, routes, categories): 1 to 64 letters, digits, '-', '_', '.'.
bool valid_name(const std::string& name);

class Entry {
 public:
  Entry(const YAML::Node& node, std::string path, std::string source, Problems& problems)
      : node_(node), path_(std::move(path)), source_(std::move(source)), problems_(problems) {}

  void problem(const std::string& key, const std::string& message);

  std::optional<std::string> text(const std::string& key);
  // A secret: the value, or "<key>_file" naming a file that holds it.
  std::optional<std::string> secret(const std::string& key);
  // A string or a list of strings.
  std::vector<std::string> list(const std::string& key);
  std::optional<double> number(const std::string& key, double min, double max);
  std::optional<bool> boolean(const std::string& key);
  std::vector<std::pair<std::string, std::string>> map(const std::string& key);
  // A key read some other way.
  void skip(const std::string& key) { seen_.push_back(key); }
  // Every key not read is a problem.
  void reject_unknown();

 private:
  const YAML::Node node_;
  std::string path_;
  std::string source_;
  Problems& problems_;
  std::vector<std::string> seen_;
};

// Calls `parse(name, node)` for each entry of a mapping of named entries (providers:,
// routes:), checking the names; reports a section that is not a mapping.
void for_each_entry(const YAML::Node& node, const std::string& key, const std::string& source,
                    Problems& problems,
                    const std::function<void(const std::string& name, const YAML::Node& value,
                                             const std::string& path)>& parse);

}  // namespace parley::config

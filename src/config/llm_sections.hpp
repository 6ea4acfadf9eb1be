// The structured parts of the configuration: `providers:`, `routes:`, `assistants:` and
// `models:` are maps of named entries, not fixed settings, so they are parsed here rather
// than through the settings table; plus the providers that the ecosystem's environment
// variables add. Private to config/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace parley::config::detail {

bool is_section(std::string_view key);
void apply_section(const std::string& key, const YAML::Node& node, const std::string& source_name,
                   Config& config, std::vector<Problem>& problems);
void add_environment_providers(Config& config, const std::map<std::string, std::string>& env);
// Checks references between sections (route targets name providers that exist).
void finish(Config& config, std::vector<Problem>& problems);
// The sections for the effective configuration, secrets redacted.
void sections_to_json(const Config& config, nlohmann::json& root);
void section_secrets(const Config& config, std::vector<std::string>& out);

}  // namespace parley::config::detail

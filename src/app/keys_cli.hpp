// `parley keys create|list|revoke`: API key administration from the shell, against the same
// database the server uses (a running server sees the change within
// auth.key_refresh_interval).
#pragma once

#include <optional>
#include <string>

#include "config/settings.hpp"

namespace parley::app {

struct KeysCommand {
  std::string action;  // "create", "list" or "revoke"
  // create
  std::string scope;
  std::string name;
  std::string tenant_id = "default";
  std::string user_id;
  std::string expires;      // "30d", "2026-12-31", ...
  std::string limits_json;  // {"key": {...}, "user": {...}}
  // list
  bool include_revoked = false;
  bool json = false;
  // revoke
  std::string key_id;
};

// Prints the outcome; returns the exit code.
int run_keys_command(const config::Settings& settings, const KeysCommand& command);

}  // namespace parley::app

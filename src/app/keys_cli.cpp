// The `parley keys` subcommands (see keys_cli.hpp).
#include "app/keys_cli.hpp"

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "auth/key_admin.hpp"
#include "core/clock.hpp"
#include "store/settings.hpp"

namespace parley::app {
namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "parley: keys: %s\n", message.c_str());
  return 1;
}

}  // namespace

int run_keys_command(const config::Settings& settings, const KeysCommand& cmd) {
  store::OpenOptions options;
  options.connections = 1;
  auto storage = store::open(settings.get<store::StorageSettings>(), options);
  if (!storage) return fail(storage.error().message);
  auto& keys = (*storage)->api_keys();
  const int64_t now = to_unix_ms(Clock::system().now());

  if (cmd.action == "create") {
    auth::NewKey in;
    in.name = cmd.name;
    in.scope = cmd.scope;
    in.tenant_id = cmd.tenant_id;
    in.user_id = cmd.user_id;
    in.created_by = "cli";
    if (!cmd.expires.empty()) {
      in.expires_at_ms = auth::parse_expiry(cmd.expires, now);
      if (!in.expires_at_ms) {
        return fail("--expires must be a duration (30d, 12h) or a date (2026-12-31)");
      }
    }
    if (!cmd.limits_json.empty()) {
      auto value = nlohmann::json::parse(cmd.limits_json, nullptr, false);
      if (value.is_discarded()) return fail("--limits is not JSON");
      auto limits = limits::parse_overrides(value, "limits");
      if (!limits) return fail(limits.error().param + ": " + limits.error().message);
      in.limits = *limits;
    }
    auto created = auth::create_key(keys, in, now);
    if (!created) {
      const auto& e = created.error();
      return fail((e.param.empty() ? "" : "--" + e.param + ": ") + e.message);
    }
    std::fprintf(stderr,
                 "created %s key %s; the key is printed once, below, and cannot be shown again\n",
                 created->key.scope.c_str(), created->key.id.c_str());
    std::cout << created->token << "\n";
    return 0;
  }
  if (cmd.action == "list") {
    auto all = keys.list(std::nullopt, cmd.include_revoked);
    if (!all) return fail(all.error().message);
    if (cmd.json) {
      nlohmann::json data = nlohmann::json::array();
      for (const auto& k : *all) data.push_back(auth::key_json(k, now));
      std::cout << data.dump(2) << "\n";
      return 0;
    }
    std::printf("%-34s %-8s %-8s %-12s %-16s %-22s %s\n", "ID", "SCOPE", "STATUS", "TENANT", "USER",
                "CREATED", "NAME");
    for (const auto& k : *all) {
      auto j = auth::key_json(k, now);
      std::printf("%-34s %-8s %-8s %-12s %-16s %-22s %s\n", k.id.c_str(), k.scope.c_str(),
                  j["status"].get<std::string>().c_str(), k.tenant_id.c_str(),
                  k.user_id.empty() ? "-" : k.user_id.c_str(),
                  j["created_at"].get<std::string>().c_str(), k.name.c_str());
    }
    return 0;
  }
  if (cmd.action == "revoke") {
    auto key = keys.revoke(cmd.key_id, now);
    if (!key) return fail(key.error().message);
    std::fprintf(stderr, "revoked %s\n", key->id.c_str());
    return 0;
  }
  return fail("unknown action '" + cmd.action + "'");
}

}  // namespace parley::app

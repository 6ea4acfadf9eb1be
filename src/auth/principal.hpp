// Who is calling: what the authenticator (auth/authenticator.hpp) makes of a request's
// credentials, and what every layer after it decides on. A plain value.
//
//   admin    everything, in every tenant (operators and their tools)
//   service  a back end acting for any end user of its tenant, named in the request
//            (`user` / `user_id`)
//   user     one end user of one tenant: an API key bound to that user, or a JWT whose `sub`
//            is the user
//
// With no key configured (protected mode, loopback only) every request is the local operator:
// an admin named "local".
#pragma once

#include <string>
#include <string_view>

#include "limits/policy.hpp"

namespace parley::auth {

enum class Scope { kAdmin, kService, kUser };

std::string_view scope_name(Scope scope);
// "admin", "service", "user"; false for anything else.
bool parse_scope(std::string_view text, Scope& out);

struct Principal {
  Scope scope = Scope::kUser;
  std::string key_id;  // "key_...", "jwt:<tenant>:<user>", "bootstrap" or "local"
  std::string tenant_id = "default";
  std::string user_id;  // kUser: the one user it acts as; empty otherwise
  limits::KeyLimitOverrides limits;

  bool admin() const { return scope == Scope::kAdmin; }
  bool local() const { return key_id == "local"; }
};

}  // namespace parley::auth

// Identifiers: request ids and resource ids. Random parts come from a per-thread generator
// seeded from the OS, so generation is lock-free and safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace parley {

// 32 lowercase hex characters (128 random bits).
std::string random_hex128();

// A resource id: prefix + "_" + 26 base32 characters (128 random bits), e.g. "sess_...".
std::string new_resource_id(std::string_view prefix);

// A client-supplied request id is kept when it is 1..128 characters of [A-Za-z0-9._:-];
// anything else is replaced by a generated one (it ends up in logs, so no control bytes).
bool is_valid_request_id(std::string_view id);

}  // namespace parley

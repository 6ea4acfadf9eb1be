// The default limits of every API key (`limits.key.*`) and every end user (`limits.user.*`);
// a key may override both (limits/policy.hpp). 0 is "no limit" everywhere.
#pragma once

#include <chrono>
#include <string>

#include "limits/policy.hpp"

namespace parley::config {
class Schema;
}

namespace parley::limits {

struct LimitSettings {
  Limits key;
  Limits user{60, 0, 0, 0, 0, 0, 0};  // the seeds' 60 requests a minute per user
  // When the shared limiter (Redis) cannot answer: "deny" (503) or "allow" (unlimited).
  std::string on_backend_error = "deny";
  // How long a concurrent-stream place outlives its replica (renewed every third of it).
  std::chrono::milliseconds stream_lease{30'000};
  bool allow_on_backend_error() const { return on_backend_error == "allow"; }
};

void declare_settings(config::Schema& schema);

}  // namespace parley::limits

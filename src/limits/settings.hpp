// The default limits of every API key (`limits.key.*`) and every end user (`limits.user.*`);
// a key may override both (limits/policy.hpp). 0 is "no limit" everywhere.
#pragma once

#include "limits/policy.hpp"

namespace parley::config {
class Schema;
}

namespace parley::limits {

struct LimitSettings {
  Limits key;
  Limits user{60, 0, 0, 0, 0, 0, 0};  // the seeds' 60 requests a minute per user
};

void declare_settings(config::Schema& schema);

}  // namespace parley::limits

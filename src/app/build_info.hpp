// What this binary is: version, commit and compiler, baked in at build time.
#pragma once

#include "obs/metrics.hpp"

namespace parley::app {

const obs::BuildInfo& build_info();

}  // namespace parley::app

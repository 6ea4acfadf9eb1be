// `health.*` and `diagnostics.enabled` (see health.hpp).
#include "api/health.hpp"
#include "config/settings.hpp"

namespace parley::api {

void declare_settings(config::Schema& schema) {
  schema.group<HealthSettings>("health")
      .size("min_free_disk", &HealthSettings::min_free_disk,
            "Readiness fails when the data directory's disk has less free space.", 0, UINT64_MAX)
      .size("max_memory", &HealthSettings::max_memory,
            "Readiness fails when resident memory exceeds this; 0 disables the check.", 0,
            UINT64_MAX);
  schema.group<HealthSettings>("diagnostics")
      .flag("enabled", &HealthSettings::diagnostics,
            "Serve GET /api/v1/health/diagnostics (to admin keys).");
}

}  // namespace parley::api

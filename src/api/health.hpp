// Health, diagnostics and metrics routes: what load balancers, Kubernetes probes, Prometheus
// and operators call.
//   GET /health, /api/v1/health/liveness   the process is up (never touches dependencies)
//   GET /api/v1/health/readiness           dependencies answer and resources are within limits
//   GET /api/v1/health/diagnostics         build, effective config, storage stats (opt-in)
//   GET /metrics                           Prometheus text format
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::config {
class Schema;
}

namespace parley::api {

// `health.*` and `diagnostics.enabled`.
struct HealthSettings {
  uint64_t min_free_disk = 100ULL * 1024 * 1024;
  uint64_t max_memory = 0;   // 0 = no threshold
  bool diagnostics = false;  // served to admin keys only
};

void declare_settings(config::Schema& schema);

void add_health_routes(http::Router& router, Context& context);

}  // namespace parley::api

// `idempotency.*` (see idempotency.hpp).
#include "config/settings.hpp"
#include "idempotency/idempotency.hpp"

namespace parley::idempotency {

void declare_settings(config::Schema& schema) {
  schema.group<LocalOptions>("idempotency")
      .duration("ttl", &LocalOptions::ttl,
                "How long a stored answer to an Idempotency-Key is kept.",
                std::chrono::milliseconds(1000), std::chrono::hours(24 * 30))
      .size("max_response_size", &LocalOptions::max_response_size,
            "Largest answer stored for replay; a larger one is not stored (a retry runs again).",
            1024, 1024ULL * 1024 * 1024);
}

}  // namespace parley::idempotency

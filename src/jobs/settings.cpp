// `jobs.*` (see job_pool.hpp).
#include "config/settings.hpp"
#include "jobs/job_pool.hpp"

namespace parley::jobs {

void declare_settings(config::Schema& schema) {
  schema.group<JobPoolOptions>("jobs")
      .integer("threads", &JobPoolOptions::threads,
               "Threads for in-process background work off the request path (durable jobs run "
               "in worker.*), apart "
               "from request storage calls.",
               1, 256)
      .integer(
          "max_queued", &JobPoolOptions::max_queued,
          "Background jobs waiting at most; more are refused (jobs_total{outcome=\"rejected\"}).",
          1, 1'000'000);
}

}  // namespace parley::jobs

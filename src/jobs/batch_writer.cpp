// The non-template part of BatchWriter (batch_writer.hpp): its log lines, kept out of the
// header that every owner of a writer includes.
#include "jobs/batch_writer.hpp"

#include "obs/log.hpp"

namespace parley::jobs::detail {

void log_batch_write_failed(std::string_view writer, size_t items, std::string_view error) {
  log::warn("background write failed; the batch is queued again for the next attempt",
            {{"writer", writer}, {"items", static_cast<int64_t>(items)}, {"error", error}});
}

void log_batch_queue_full(std::string_view writer, size_t max_queued) {
  log::warn(
      "background write queue full: the oldest items are dropped (counted in "
      "background_items_dropped_total)",
      {{"writer", writer}, {"max_queued", static_cast<int64_t>(max_queued)}});
}

}  // namespace parley::jobs::detail

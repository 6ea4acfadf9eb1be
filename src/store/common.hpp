// What every storage backend computes the same way, so they answer alike: the day a usage
// record counts towards, page cursors, and the errors the contract names (store.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"
#include "obs/metrics.hpp"

namespace parley::store {

// "YYYY-MM-DD" of a unix-millisecond time, UTC.
std::string utc_day(int64_t unix_ms);

// A page cursor is the positive sequence number of the last row of the previous page; null
// when absent, kInvalidArgument "invalid_cursor" when it is not one this server issued.
struct Cursor {
  std::optional<int64_t> after;
  std::optional<Error> error;
};
Cursor parse_cursor(const std::optional<std::string>& text);

// The usage columns a UsageQuery may group by, as (name, column) in the order asked; the
// names come from a fixed list, never from the request text. kInvalidArgument otherwise.
Result<std::vector<std::pair<std::string, std::string>>> usage_group_columns(
    const std::vector<std::string>& group_by);

// Times one storage call into parley_storage_query_duration_seconds.
class QueryTimer {
 public:
  QueryTimer(obs::Metrics* metrics, const char* operation)
      : metrics_(metrics), operation_(operation), start_(std::chrono::steady_clock::now()) {}
  ~QueryTimer() {
    if (!metrics_) return;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->observe_storage_query(operation_, elapsed.count());
  }
  QueryTimer(const QueryTimer&) = delete;
  QueryTimer& operator=(const QueryTimer&) = delete;

 private:
  obs::Metrics* metrics_;
  const char* operation_;
  std::chrono::steady_clock::time_point start_;
};

Error session_not_found(std::string_view id);
// The durable job queue's answers (JobRepository).
Error job_not_held(std::string_view id);
Error job_not_found(std::string_view id);
Error job_not_dead(std::string_view id, std::string_view state);
Error storage_closed();

}  // namespace parley::store

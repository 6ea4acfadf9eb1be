#include "store/common.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

namespace parley::store {

std::string utc_day(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  char buf[32];
  if (gmtime_r(&seconds, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm) == 0) {
    return "0000-00-00";  // outside the calendar: sorts before every real day
  }
  return buf;
}

RolledUpSpan rolled_up_span(int64_t from_ms, int64_t to_ms, int64_t rolled_until_ms) {
  RolledUpSpan span;
  const int64_t limit = std::min(to_ms, rolled_until_ms);
  // Nothing rolled up inside the range (also keeps the arithmetic below far from overflow:
  // rolled_until is a real time).
  if (rolled_until_ms <= 0 || from_ms >= limit) return span;
  const int64_t from = std::max<int64_t>(0, from_ms);
  const int64_t first = from % kDayMs == 0 ? from : utc_midnight(from) + kDayMs;
  const int64_t last = utc_midnight(limit);
  if (last <= first) return span;
  span.from_ms = first;
  span.until_ms = last;
  span.from_day = utc_day(first);
  span.until_day = utc_day(last);
  return span;
}

std::string usage_report_source(const RolledUpSpan& span, const std::string& filters,
                                const std::array<const char*, 6>& p) {
  const std::string in_range = std::string("at >= ") + p[0] + " AND at < " + p[1];
  if (span.empty()) return "usage_records WHERE " + in_range + filters;
  static const std::string columns =
      "day, tenant_id, user_id, key_id, source, provider, model, requests, input_tokens, "
      "output_tokens, cost_usd";
  return "(SELECT " + columns + " FROM usage_records WHERE " + in_range +
         " AND NOT (at >= " + p[2] + " AND at < " + p[3] + ")" + filters + " UNION ALL SELECT " +
         columns + " FROM usage_daily WHERE day >= " + p[4] + " AND day < " + p[5] + filters +
         ") AS u";
}

Cursor parse_cursor(const std::optional<std::string>& text) {
  if (!text) return {};
  int64_t value = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr != end || value <= 0) {
    return {std::nullopt,
            Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor")};
  }
  return {value, std::nullopt};
}

Result<std::vector<std::pair<std::string, std::string>>> usage_group_columns(
    const std::vector<std::string>& group_by) {
  static const std::vector<std::pair<std::string, std::string>> kColumns{
      {"model", "model"},   {"provider", "provider"}, {"user", "user_id"},    {"day", "day"},
      {"source", "source"}, {"key", "key_id"},        {"tenant", "tenant_id"}};
  std::vector<std::pair<std::string, std::string>> groups;
  for (const auto& g : group_by) {
    auto it =
        std::find_if(kColumns.begin(), kColumns.end(), [&](const auto& c) { return c.first == g; });
    if (it == kColumns.end()) {
      return Error::invalid("cannot group usage by '" + g +
                                "' (expected model, provider, user, day, source, key or tenant)",
                            "invalid_field", "group_by");
    }
    groups.push_back(*it);
  }
  return groups;
}

Error session_not_found(std::string_view id) {
  return Error::not_found("no session with id '" + std::string(id) + "'", "session_not_found");
}

Error job_not_held(std::string_view id) {
  return Error::conflict(
      "job '" + std::string(id) + "' is not held by this worker (its lock lapsed)", "job_not_held");
}

Error job_not_found(std::string_view id) {
  return Error::not_found("no job with id '" + std::string(id) + "'", "job_not_found");
}

Error job_not_dead(std::string_view id, std::string_view state) {
  return Error::conflict(
      "job '" + std::string(id) + "' is " + std::string(state) + "; only dead jobs are retried",
      "job_not_dead");
}

Error storage_closed() { return Error::unavailable("storage is closed", "storage_closed"); }

}  // namespace parley::store

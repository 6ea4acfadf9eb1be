// What a caller may consume: the numbers, apart from the machinery that enforces them
// (limits/limiter.hpp). Plain values, copied freely.
//
// Two sets apply to every request that acts for an end user: the limits of the API key (or
// token) it came with, and the limits of the end user. Defaults come from the configuration
// (`limits.key.*`, `limits.user.*`); a key may carry overrides of both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/result.hpp"

namespace parley::limits {

// 0 means "no limit" everywhere.
struct Limits {
  int64_t requests_per_minute = 0;
  int64_t requests_per_hour = 0;
  // How many requests may arrive at once (the bucket's depth) before the steady rate applies.
  // 0 = the whole per-minute quota, which is what "60 a minute" means to most people.
  int64_t burst = 0;
  int64_t tokens_per_minute = 0;
  int64_t concurrent_streams = 0;
  double usd_per_day = 0;
  double usd_per_month = 0;

  bool operator==(const Limits&) const = default;
};

// A key's overrides: each field set replaces the default.
struct LimitOverrides {
  std::optional<int64_t> requests_per_minute;
  std::optional<int64_t> requests_per_hour;
  std::optional<int64_t> burst;
  std::optional<int64_t> tokens_per_minute;
  std::optional<int64_t> concurrent_streams;
  std::optional<double> usd_per_day;
  std::optional<double> usd_per_month;

  Limits apply(Limits base) const;
  bool empty() const;
};

// Per-key overrides as stored with a key and accepted by the admin API:
//   {"key": {"requests_per_minute": 600, ...}, "user": {"usd_per_day": 5}}
struct KeyLimitOverrides {
  LimitOverrides key;
  LimitOverrides user;
};

// Parses and validates (non-negative numbers, known fields only); errors name the field
// path under `field` ("limits.key.requests_per_minute").
Result<KeyLimitOverrides> parse_overrides(const nlohmann::json& value, const std::string& field);
nlohmann::json to_json(const KeyLimitOverrides& overrides);

}  // namespace parley::limits

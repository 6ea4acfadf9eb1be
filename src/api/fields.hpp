// Field-by-field validation of JSON request bodies. Every helper names the field in its error
// (Error::param), so a client learns exactly what to fix.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace parley::api {

// Rejects any key not in `allowed` (a typo, or a field the client must not set, never passes
// silently).
Result<void> reject_unknown_fields(const nlohmann::json& body,
                                   std::initializer_list<std::string_view> allowed);

// Absent -> nullopt. Present: a string of 1..max bytes (null allowed when `nullable`).
Result<std::optional<std::string>> string_field(const nlohmann::json& body, const char* name,
                                                size_t max, bool nullable = false);
// Absent or null -> nullopt. Present: a number within [min, max].
Result<std::optional<double>> number_field(const nlohmann::json& body, const char* name, double min,
                                           double max);
// Absent or null -> nullopt. Present: an integer within [min, max].
Result<std::optional<int64_t>> integer_field(const nlohmann::json& body, const char* name,
                                             int64_t min, int64_t max);
// Absent or null -> nullopt. Present: true or false.
Result<std::optional<bool>> bool_field(const nlohmann::json& body, const char* name);

// The `limit` query parameter of a list: `fallback` when absent, else an integer 1..max.
Result<int> page_limit(const std::optional<std::string>& text, int fallback, int max);

}  // namespace parley::api

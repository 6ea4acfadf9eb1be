// Request field validation (see fields.hpp).
#include "api/fields.hpp"

#include <charconv>

namespace parley::api {

using nlohmann::json;

Result<void> reject_unknown_fields(const json& body,
                                   std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) return Error::invalid_field(key, "unknown field '" + key + "'");
  }
  return success();
}

Result<std::optional<std::string>> string_field(const json& body, const char* name, size_t max,
                                                bool nullable) {
  auto it = body.find(name);
  if (it == body.end()) return std::optional<std::string>();
  if (it->is_null() && nullable) return std::optional<std::string>();
  if (!it->is_string()) {
    return Error::invalid_field(
        name, std::string(name) + " must be a string" + (nullable ? " or null" : ""));
  }
  const auto& text = it->get_ref<const std::string&>();
  if (text.empty() || text.size() > max) {
    return Error::invalid_field(
        name, std::string(name) + " must be 1 to " + std::to_string(max) + " bytes long");
  }
  return std::optional<std::string>(text);
}

Result<std::optional<double>> number_field(const json& body, const char* name, double min,
                                           double max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return Error::invalid_field(name, std::string(name) + " must be a number");
  const double v = it->get<double>();
  if (!(v >= min && v <= max)) {
    return Error::invalid_field(name, std::string(name) + " must be between " + json(min).dump() +
                                          " and " + json(max).dump());
  }
  return std::optional<double>(v);
}

Result<std::optional<int64_t>> integer_field(const json& body, const char* name, int64_t min,
                                             int64_t max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) {
    return Error::invalid_field(name, std::string(name) + " must be an integer");
  }
  // Unsigned values above INT64_MAX read as negative here and fail the range check.
  const int64_t v =
      it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
          ? -1
          : it->get<int64_t>();
  if (v < min || v > max) {
    return Error::invalid_field(name, std::string(name) + " must be between " +
                                          std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<int64_t>(v);
}

Result<std::optional<bool>> bool_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean())
    return Error::invalid_field(name, std::string(name) + " must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<int> page_limit(const std::optional<std::string>& text, int fallback, int max) {
  if (!text) return fallback;
  int value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size() || value < 1 || value > max) {
    return Error::invalid_field("limit",
                                "limit must be an integer from 1 to " + std::to_string(max));
  }
  return value;
}

}  // namespace parley::api

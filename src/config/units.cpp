// Unit parsing for configuration values.
#include "config/units.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>

namespace parley::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "12KiB" into 12 and "KiB". Fails on an empty number or a number that overflows.
std::optional<std::pair<uint64_t, std::string_view>> split_number(std::string_view s) {
  s = trim(s);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr == s.data()) return std::nullopt;
  std::string_view unit = trim(s.substr(static_cast<size_t>(ptr - s.data())));
  return std::pair{value, unit};
}

std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) return std::nullopt;
  return a * b;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 11> kUnits{{
      {"", 1},
      {"b", 1},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"kib", 1024},
      {"mib", 1024 * 1024},
      {"gib", 1024ULL * 1024 * 1024},
      {"tib", 1024ULL * 1024 * 1024 * 1024},
      {"k", 1024},
      {"m", 1024 * 1024},
  }};
  for (const auto& [name, factor] : kUnits) {
    if (iequals(unit, name)) return checked_mul(value, factor);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 5> kUnits{{
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
      {"d", 24 * 60 * 60 * 1000},
  }};
  // A bare number is ambiguous (seconds? milliseconds?), so a unit is required, except for 0.
  if (unit.empty()) {
    if (value == 0) return std::chrono::milliseconds(0);
    return std::nullopt;
  }
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      auto ms = checked_mul(value, factor);
      if (!ms || *ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return std::nullopt;
      return std::chrono::milliseconds(static_cast<int64_t>(*ms));
    }
  }
  return std::nullopt;
}

std::string format_size(uint64_t bytes) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 4> kUnits{{
      {"TiB", 1024ULL * 1024 * 1024 * 1024},
      {"GiB", 1024ULL * 1024 * 1024},
      {"MiB", 1024 * 1024},
      {"KiB", 1024},
  }};
  for (const auto& [name, factor] : kUnits) {
    if (bytes >= factor && bytes % factor == 0)
      return std::to_string(bytes / factor) + std::string(name);
  }
  return std::to_string(bytes);
}

std::string format_duration(std::chrono::milliseconds ms) {
  constexpr int64_t kHour = 60LL * 60 * 1000;
  constexpr int64_t kMinute = 60LL * 1000;
  auto v = ms.count();
  if (v != 0 && v % kHour == 0) return std::to_string(v / kHour) + "h";
  if (v != 0 && v % kMinute == 0) return std::to_string(v / kMinute) + "m";
  if (v != 0 && v % 1000 == 0) return std::to_string(v / 1000) + "s";
  return std::to_string(v) + "ms";
}

}  // namespace parley::config

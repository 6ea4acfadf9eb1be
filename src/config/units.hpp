// Human units in configuration: byte sizes ("512KiB", "1MiB", "1048576") and durations
// ("250ms", "5s", "2m", "1h"). Parsing is strict: trailing junk, negatives and overflow fail.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::config {

std::optional<uint64_t> parse_size(std::string_view text);
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

std::string format_size(uint64_t bytes);
std::string format_duration(std::chrono::milliseconds ms);

}  // namespace parley::config

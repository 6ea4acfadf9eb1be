// Unit parsing for configuration values (config/units.hpp): byte sizes and durations.
// Covers the accepted spellings (bare numbers, SI and IEC suffixes, surrounding whitespace),
// the strictness promises (no negatives, fractions, unknown units, trailing junk, missing
// duration units), overflow at the uint64/int64 edges, and that format_* output parses back
// to the same value.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "config/units.hpp"

namespace {

using parley::config::format_duration;
using parley::config::format_size;
using parley::config::parse_duration;
using parley::config::parse_size;
using std::chrono::milliseconds;

TEST(ParseSize, BareNumberIsBytes) {
  EXPECT_EQ(parse_size("0"), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_size("1048576"), std::optional<uint64_t>(1048576));
  EXPECT_EQ(parse_size("17b"), std::optional<uint64_t>(17));
}

TEST(ParseSize, BinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("512KiB"), std::optional<uint64_t>(512 * 1024));
  EXPECT_EQ(parse_size("1MiB"), std::optional<uint64_t>(1024 * 1024));
  EXPECT_EQ(parse_size("2GiB"), std::optional<uint64_t>(2ULL * 1024 * 1024 * 1024));
  EXPECT_EQ(parse_size("1TiB"), std::optional<uint64_t>(1ULL << 40));
  EXPECT_EQ(parse_size("3KB"), std::optional<uint64_t>(3000));
  EXPECT_EQ(parse_size("3MB"), std::optional<uint64_t>(3'000'000));
  EXPECT_EQ(parse_size("1GB"), std::optional<uint64_t>(1'000'000'000));
  EXPECT_EQ(parse_size("4k"), std::optional<uint64_t>(4096));
  EXPECT_EQ(parse_size("4m"), std::optional<uint64_t>(4ULL * 1024 * 1024));
}

TEST(ParseSize, UnitsAreCaseInsensitive) {
  EXPECT_EQ(parse_size("1mib"), std::optional<uint64_t>(1024 * 1024));
  EXPECT_EQ(parse_size("1MIB"), std::optional<uint64_t>(1024 * 1024));
  EXPECT_EQ(parse_size("2kb"), std::optional<uint64_t>(2000));
}

TEST(ParseSize, SurroundingAndInnerWhitespaceIsAccepted) {
  EXPECT_EQ(parse_size("  2MiB  "), std::optional<uint64_t>(2 * 1024 * 1024));
  EXPECT_EQ(parse_size("\t64 KiB\n"), std::optional<uint64_t>(64 * 1024));
}

TEST(ParseSize, RejectsMalformedText) {
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("   "));
  EXPECT_FALSE(parse_size("KiB"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("-1KiB"));
  EXPECT_FALSE(parse_size("+1KiB"));
  EXPECT_FALSE(parse_size("1.5MiB"));
  EXPECT_FALSE(parse_size("10XB"));
  EXPECT_FALSE(parse_size("12KiB junk"));
  EXPECT_FALSE(parse_size("0x10"));
  EXPECT_FALSE(parse_size("1 2"));
}

TEST(ParseSize, OverflowFailsInsteadOfWrapping) {
  EXPECT_EQ(parse_size("18446744073709551615"), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_FALSE(parse_size("18446744073709551616"));
  // (2^24 - 1) TiB fits in 64 bits, 2^24 TiB is exactly 2^64 and does not.
  EXPECT_EQ(parse_size("16777215TiB"), std::optional<uint64_t>(16777215ULL << 40));
  EXPECT_FALSE(parse_size("16777216TiB"));
  EXPECT_FALSE(parse_size("17179869184GiB"));
}

TEST(ParseDuration, AllUnits) {
  EXPECT_EQ(parse_duration("250ms"), std::optional<milliseconds>(250));
  EXPECT_EQ(parse_duration("5s"), std::optional<milliseconds>(5000));
  EXPECT_EQ(parse_duration("2m"), std::optional<milliseconds>(120'000));
  EXPECT_EQ(parse_duration("1h"), std::optional<milliseconds>(3'600'000));
  EXPECT_EQ(parse_duration("1d"), std::optional<milliseconds>(86'400'000));
}

TEST(ParseDuration, BareZeroIsAcceptedButOtherBareNumbersAreAmbiguous) {
  EXPECT_EQ(parse_duration("0"), std::optional<milliseconds>(0));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("30000"));
}

TEST(ParseDuration, SurroundingWhitespaceIsTrimmed) {
  EXPECT_EQ(parse_duration("  5s  "), std::optional<milliseconds>(5000));
  EXPECT_EQ(parse_duration("\t100ms\n"), std::optional<milliseconds>(100));
}

TEST(ParseDuration, RejectsMalformedText) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("-5s"));
  EXPECT_FALSE(parse_duration("1.5s"));
  EXPECT_FALSE(parse_duration("5sec"));
  EXPECT_FALSE(parse_duration("5 seconds"));
  EXPECT_FALSE(parse_duration("5w"));
  EXPECT_FALSE(parse_duration("5s5"));
  EXPECT_FALSE(parse_duration("1h30m"));
}

TEST(ParseDuration, UnitsAreCaseSensitiveBecauseMAndMsDiffer) {
  EXPECT_FALSE(parse_duration("5S"));
  EXPECT_FALSE(parse_duration("5MS"));
  EXPECT_FALSE(parse_duration("1H"));
}

TEST(ParseDuration, OverflowFails) {
  const auto max_ms = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(parse_duration("9223372036854775807ms"), std::optional<milliseconds>(max_ms));
  // Fits in uint64 but not in the int64 that milliseconds holds.
  EXPECT_FALSE(parse_duration("9223372036854775808ms"));
  EXPECT_FALSE(parse_duration("106751991168d"));
  // Overflows uint64 in the multiplication itself.
  EXPECT_FALSE(parse_duration("213503982335d"));
  EXPECT_FALSE(parse_duration("99999999999999999999s"));
}

TEST(FormatSize, PicksTheLargestExactBinaryUnit) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(1024), "1KiB");
  EXPECT_EQ(format_size(1536), "1536");
  EXPECT_EQ(format_size(1024 * 1024), "1MiB");
  EXPECT_EQ(format_size(3ULL << 30), "3GiB");
  EXPECT_EQ(format_size(5ULL << 40), "5TiB");
}

TEST(FormatDuration, PicksTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(milliseconds(120'000)), "2m");
  EXPECT_EQ(format_duration(milliseconds(7'200'000)), "2h");
}

TEST(Units, FormattedValuesParseBack) {
  for (uint64_t bytes : {uint64_t{0}, uint64_t{1}, uint64_t{1023}, uint64_t{1024}, uint64_t{1536},
                         uint64_t{100} << 20, uint64_t{7} << 40, UINT64_MAX}) {
    EXPECT_EQ(parse_size(format_size(bytes)), std::optional<uint64_t>(bytes)) << bytes;
  }
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{61'000},
                     int64_t{3'600'000}, int64_t{25} * 3'600'000}) {
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), std::optional<milliseconds>(ms))
        << ms;
  }
}

}  // namespace

// Which part of a usage report the daily roll-ups answer (store/common.hpp): whole UTC days
// inside the range and before the roll-up's mark; nothing for ranges outside, empty ones, or
// times at the ends of int64.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "store/common.hpp"

namespace {

using parley::store::kDayMs;
using parley::store::rolled_up_span;
using parley::store::utc_midnight;

constexpr int64_t kMidnight = 1'795'305'600'000;  // 2026-11-22T00:00:00Z

TEST(RolledUpSpan, CoversTheWholeDaysInsideTheRangeBeforeTheMark) {
  auto span = rolled_up_span(kMidnight - 5, kMidnight + 3 * kDayMs + 7, kMidnight + 2 * kDayMs);
  EXPECT_EQ(span.from_ms, kMidnight);
  EXPECT_EQ(span.until_ms, kMidnight + 2 * kDayMs);
  EXPECT_EQ(span.from_day, "2026-11-22");
  EXPECT_EQ(span.until_day, "2026-11-24");
}

TEST(RolledUpSpan, APartialDayAtEitherEndComesFromTheRecords) {
  // No whole day between 00:00:00.001 of one day and 23:59:59.999 of the next.
  EXPECT_TRUE(
      rolled_up_span(kMidnight + 1, kMidnight + 2 * kDayMs - 1, kMidnight + 5 * kDayMs).empty());
  // One whole day between them a day later.
  auto span = rolled_up_span(kMidnight + 1, kMidnight + 3 * kDayMs - 1, kMidnight + 5 * kDayMs);
  EXPECT_EQ(span.from_ms, kMidnight + kDayMs);
  EXPECT_EQ(span.until_ms, kMidnight + 2 * kDayMs);
}

TEST(RolledUpSpan, NothingWhenNothingIsRolledUpOrTheRangeIsOutsideIt) {
  EXPECT_TRUE(rolled_up_span(0, kMidnight, -1).empty());
  EXPECT_TRUE(rolled_up_span(kMidnight + 10 * kDayMs, kMidnight + 11 * kDayMs, kMidnight).empty());
  EXPECT_TRUE(rolled_up_span(kMidnight + kDayMs, kMidnight, kMidnight + 5 * kDayMs).empty());
}

TEST(RolledUpSpan, TheEndsOfInt64AreSafe) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_TRUE(rolled_up_span(kMax, kMax, kMidnight).empty());
  EXPECT_TRUE(rolled_up_span(kMax - 1, kMax, kMidnight).empty());
  auto all = rolled_up_span(kMin, kMax, kMidnight);
  EXPECT_EQ(all.from_ms, 0);
  EXPECT_EQ(all.until_ms, kMidnight);
  EXPECT_EQ(all.from_day, "1970-01-01");
  EXPECT_EQ(utc_midnight(kMidnight + kDayMs - 1), kMidnight);
  EXPECT_EQ(utc_midnight(-1), -kDayMs);
}

}  // namespace

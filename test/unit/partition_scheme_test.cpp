// Unit tests of core/partition_scheme: UTC slots, their names and bounds.
#include "core/partition_scheme.hpp"

#include <gtest/gtest.h>

using namespace hb::core;

namespace {
constexpr std::int64_t kHour = 3'600'000'000LL;
std::int64_t at(int y, int m, int d, int hour = 0) {
    return days_from_civil(y, m, d) * kMicrosPerDay + hour * kHour;
}
}  // namespace

TEST(PartitionScheme, EpochIsDayZero) {
    EXPECT_EQ(days_from_civil(2000, 1, 1), 0);
    int y, m, d;
    civil_from_days(0, &y, &m, &d);
    EXPECT_EQ(y * 10000 + m * 100 + d, 20000101);
}

TEST(PartitionScheme, CivilRoundTripsAcrossCenturiesAndLeapDays) {
    for (std::int64_t days = -400000; days <= 400000; days += 13) {
        int y, m, d;
        civil_from_days(days, &y, &m, &d);
        ASSERT_EQ(days_from_civil(y, m, d), days) << y << "-" << m << "-" << d;
    }
    EXPECT_EQ(days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28), 2);
    EXPECT_EQ(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1);
}

TEST(PartitionScheme, DaySlotIsTheUtcDay) {
    auto s = slot_for(Granularity::Day, at(2026, 11, 2, 23));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->start, at(2026, 11, 2));
    EXPECT_EQ(s->end, at(2026, 11, 3));
    EXPECT_EQ(slot_name(Granularity::Day, "hb", *s), "hb_2026_11_02");
}

TEST(PartitionScheme, LastMicrosecondOfADayBelongsToIt) {
    auto s = slot_for(Granularity::Day, at(2026, 11, 3) - 1);
    ASSERT_TRUE(s);
    EXPECT_EQ(slot_name(Granularity::Day, "hb", *s), "hb_2026_11_02");
}

TEST(PartitionScheme, InstantsBefore2000RoundDown) {
    auto s = slot_for(Granularity::Day, at(1999, 12, 31, 12));
    ASSERT_TRUE(s);
    EXPECT_EQ(slot_name(Granularity::Day, "p", *s), "p_1999_12_31");
    EXPECT_EQ(s->start, -kMicrosPerDay);
}

TEST(PartitionScheme, MonthSlotSpansTheUtcMonth) {
    auto s = slot_for(Granularity::Month, at(2024, 2, 29, 5));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->start, at(2024, 2, 1));
    EXPECT_EQ(s->end, at(2024, 3, 1));
    EXPECT_EQ(slot_name(Granularity::Month, "fleet", *s), "fleet_2024_02");
}

TEST(PartitionScheme, ShiftCrossesMonthAndYearEnds) {
    auto d = slot_for(Granularity::Day, at(2026, 12, 31));
    auto next = slot_shift(Granularity::Day, *d, 1);
    ASSERT_TRUE(next);
    EXPECT_EQ(slot_name(Granularity::Day, "hb", *next), "hb_2027_01_01");
    auto m = slot_for(Granularity::Month, at(2026, 11, 15));
    auto back = slot_shift(Granularity::Month, *m, -11);
    ASSERT_TRUE(back);
    EXPECT_EQ(slot_name(Granularity::Month, "hb", *back), "hb_2025_12");
    auto fwd = slot_shift(Granularity::Month, *m, 14);
    EXPECT_EQ(slot_name(Granularity::Month, "hb", *fwd), "hb_2028_01");
}

TEST(PartitionScheme, BoundsOfASlotAreRecognised) {
    auto s = slot_of_bounds(Granularity::Day, at(2026, 3, 8), at(2026, 3, 9));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->day, 8);
    EXPECT_TRUE(slot_of_bounds(Granularity::Month, at(2026, 3, 1), at(2026, 4, 1)));
}

TEST(PartitionScheme, BoundsOffTheSchemeAreNot) {
    // A local-midnight day (New York, UTC-5) is not a UTC day.
    EXPECT_FALSE(slot_of_bounds(Granularity::Day, at(2026, 3, 8, 5), at(2026, 3, 9, 5)));
    // Two days are not one.
    EXPECT_FALSE(slot_of_bounds(Granularity::Day, at(2026, 3, 8), at(2026, 3, 10)));
    // A day is not a month.
    EXPECT_FALSE(slot_of_bounds(Granularity::Month, at(2026, 3, 1), at(2026, 3, 2)));
}

TEST(PartitionScheme, YearsOutsideFourDigitsHaveNoSlot) {
    EXPECT_FALSE(slot_for(Granularity::Day, at(10000, 1, 1)));
    EXPECT_FALSE(slot_for(Granularity::Day, at(999, 12, 31)));
    auto last = slot_for(Granularity::Day, at(9999, 12, 31));
    ASSERT_TRUE(last);
    EXPECT_FALSE(slot_shift(Granularity::Day, *last, 1));
}

TEST(PartitionScheme, GranularityParses) {
    EXPECT_EQ(parse_granularity("day"), Granularity::Day);
    EXPECT_EQ(parse_granularity("month"), Granularity::Month);
    EXPECT_FALSE(parse_granularity("week"));
}

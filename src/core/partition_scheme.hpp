// partition_scheme.hpp — names and UTC bounds of hb_lifecycle's partitions.
//
// Pure C++ (no postgres.h). A partition of a managed table covers one UTC
// calendar day, [00:00, 24:00) UTC, or one UTC calendar month, [1st 00:00,
// next 1st 00:00) UTC, and is named <prefix>_yyyy_mm_dd or <prefix>_yyyy_mm.
// Times are PostgreSQL's timestamptz representation: microseconds since
// 2000-01-01 00:00:00 UTC. No time zone, daylight-saving rule or session
// setting enters the arithmetic, which is what makes the names and bounds
// the same in every session.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hb::core {

enum class Granularity : std::uint8_t { Day, Month };

// Parses "day" / "month"; nullopt for anything else.
std::optional<Granularity> parse_granularity(std::string_view s) noexcept;

// One partition of the scheme.
struct Slot {
    std::int64_t start = 0;            // inclusive, microseconds since 2000-01-01 UTC
    std::int64_t end = 0;              // exclusive
    int year = 0, month = 0, day = 0;  // the UTC date of start (day 1 for months)
};

// The first and last years a slot may fall in: names keep four-digit years.
inline constexpr int kMinYear = 1000;
inline constexpr int kMaxYear = 9999;

// The slot holding instant t; nullopt when t falls outside the years above.
std::optional<Slot> slot_for(Granularity g, std::int64_t t) noexcept;

// The slot n slots after (n > 0) or before (n < 0) s; nullopt past the years above.
std::optional<Slot> slot_shift(Granularity g, const Slot &s, int n) noexcept;

// The slot whose bounds are exactly [start, end), or nullopt: how a
// partition made elsewhere is recognised as one of the scheme.
std::optional<Slot> slot_of_bounds(Granularity g, std::int64_t start, std::int64_t end) noexcept;

// <prefix>_yyyy_mm_dd or <prefix>_yyyy_mm.
std::string slot_name(Granularity g, std::string_view prefix, const Slot &s);

// Days since 2000-01-01 of a proleptic Gregorian date, and back.
std::int64_t days_from_civil(int y, int m, int d) noexcept;
void civil_from_days(std::int64_t days, int *y, int *m, int *d) noexcept;

inline constexpr std::int64_t kMicrosPerDay = 86'400'000'000LL;

}  // namespace hb::core

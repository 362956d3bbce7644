// partition_scheme.cpp — see partition_scheme.hpp.
#include "core/partition_scheme.hpp"

#include <cstdio>

namespace hb::core {
namespace {

// Floor division: the day of an instant before 2000 rounds down, not toward 0.
std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

bool year_ok(int y) noexcept {
    return y >= kMinYear && y <= kMaxYear;
}

Slot make_day(std::int64_t days) noexcept {
    Slot s;
    civil_from_days(days, &s.year, &s.month, &s.day);
    s.start = days * kMicrosPerDay;
    s.end = s.start + kMicrosPerDay;
    return s;
}

Slot make_month(int y, int m) noexcept {
    Slot s;
    s.year = y;
    s.month = m;
    s.day = 1;
    s.start = days_from_civil(y, m, 1) * kMicrosPerDay;
    int ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
    s.end = days_from_civil(ny, nm, 1) * kMicrosPerDay;
    return s;
}

}  // namespace

std::optional<Granularity> parse_granularity(std::string_view s) noexcept {
    if (s == "day")
        return Granularity::Day;
    if (s == "month")
        return Granularity::Month;
    return std::nullopt;
}

// Howard Hinnant's algorithms (public domain), shifted to the 2000-01-01 epoch.
std::int64_t days_from_civil(int y, int m, int d) noexcept {
    std::int64_t yy = y - (m <= 2 ? 1 : 0);
    std::int64_t era = floor_div(yy, 400);
    std::int64_t yoe = yy - era * 400;
    std::int64_t mp = (m + 9) % 12;
    std::int64_t doy = (153 * mp + 2) / 5 + d - 1;
    std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 - 10957;
}

void civil_from_days(std::int64_t days, int *y, int *m, int *d) noexcept {
    std::int64_t z = days + 10957 + 719468;
    std::int64_t era = floor_div(z, 146097);
    std::int64_t doe = z - era * 146097;
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::int64_t mp = (5 * doy + 2) / 153;
    std::int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    std::int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = static_cast<int>(yoe + era * 400 + (mm <= 2 ? 1 : 0));
    *m = static_cast<int>(mm);
    *d = static_cast<int>(dd);
}

std::optional<Slot> slot_for(Granularity g, std::int64_t t) noexcept {
    Slot day = make_day(floor_div(t, kMicrosPerDay));
    if (!year_ok(day.year))
        return std::nullopt;
    if (g == Granularity::Day)
        return day;
    return make_month(day.year, day.month);
}

std::optional<Slot> slot_shift(Granularity g, const Slot &s, int n) noexcept {
    if (g == Granularity::Day) {
        Slot out = make_day(floor_div(s.start, kMicrosPerDay) + n);
        if (!year_ok(out.year))
            return std::nullopt;
        return out;
    }
    std::int64_t months = static_cast<std::int64_t>(s.year) * 12 + (s.month - 1) + n;
    int y = static_cast<int>(floor_div(months, 12));
    int m = static_cast<int>(months - static_cast<std::int64_t>(y) * 12) + 1;
    if (!year_ok(y))
        return std::nullopt;
    return make_month(y, m);
}

std::optional<Slot> slot_of_bounds(Granularity g, std::int64_t start, std::int64_t end) noexcept {
    std::optional<Slot> s = slot_for(g, start);
    if (!s || s->start != start || s->end != end)
        return std::nullopt;
    return s;
}

std::string slot_name(Granularity g, std::string_view prefix, const Slot &s) {
    char buf[16];
    if (g == Granularity::Day)
        std::snprintf(buf, sizeof buf, "_%04d_%02d_%02d", s.year, s.month, s.day);
    else
        std::snprintf(buf, sizeof buf, "_%04d_%02d", s.year, s.month);
    std::string out(prefix);
    out += buf;
    return out;
}

}  // namespace hb::core

// Wall-clock time as RFC 3339 UTC text with millisecond precision
// ("2026-11-22T10:00:00.123Z"): fixed width, so it sorts as text in both
// SQLite and PostgreSQL and reads well in either.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace souq {
using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::milliseconds>;

TimePoint now();
std::string format_time(TimePoint t);
std::string now_text();
// The time `d` before `from` (default: now), as text: the start of a window.
std::string time_ago(std::chrono::seconds d, TimePoint from = now());
// Accepts RFC 3339 with 'Z' or a numeric offset and optional fraction.
std::optional<TimePoint> parse_time(std::string_view text);
}  // namespace souq

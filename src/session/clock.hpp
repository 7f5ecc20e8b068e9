// Time as the pure cores see it: a steady time point passed in by the caller, never read here.
#pragma once

#include <chrono>

namespace porthole::session {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline uint64_t to_micros(TimePoint t) {
    return uint64_t(std::chrono::duration_cast<Duration>(t.time_since_epoch()).count());
}

}  // namespace porthole::session

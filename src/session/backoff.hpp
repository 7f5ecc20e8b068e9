// Backoff: delays between reconnect attempts — exponential, capped, with jitter so that many UEs
// cut off together do not come back in lock-step. Pure: the caller supplies the randomness.
#pragma once

#include <algorithm>

#include "session/clock.hpp"

namespace porthole::session {

class Backoff {
public:
    Backoff(Duration first, Duration max, double jitter = 0.2)
        : first_(first), max_(max), jitter_(jitter), next_(first) {}

    // random01 in [0, 1). Returns the delay before the next attempt and doubles the base.
    Duration next(double random01) {
        Duration base = next_;
        next_ = std::min(max_, next_ * 2);
        double factor = 1.0 - jitter_ + 2.0 * jitter_ * std::clamp(random01, 0.0, 1.0);
        return Duration(int64_t(double(base.count()) * factor));
    }
    void reset() { next_ = first_; }

private:
    Duration first_, max_;
    double jitter_;
    Duration next_;
};

}  // namespace porthole::session

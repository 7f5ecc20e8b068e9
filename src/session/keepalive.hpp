// Keepalive: when to probe the peer and when to give it up for dead. Pure code.
//
// The UE sends a keep-alive request when it has sent nothing, or heard nothing, for one interval
// (3GPP TS 24.322's keep-alive timer idea), at most once per interval. Any byte received proves the
// peer alive. The peer is dead when nothing has been received for `missed` intervals.
#pragma once

#include <algorithm>

#include "session/clock.hpp"

namespace porthole::session {

class Keepalive {
public:
    void configure(Duration interval, unsigned missed, TimePoint now) {
        interval_ = interval;
        missed_ = std::max(1u, missed);
        last_rx_ = last_tx_ = last_probe_ = now;
    }
    void on_received(TimePoint now) { last_rx_ = now; }
    void on_sent(TimePoint now) { last_tx_ = now; }
    void on_probe_sent(TimePoint now) { last_probe_ = last_tx_ = now; }

    [[nodiscard]] bool probe_due(TimePoint now) const {
        bool quiet = now - last_tx_ >= interval_ || now - last_rx_ >= interval_;
        return quiet && now - last_probe_ >= interval_;
    }
    [[nodiscard]] bool peer_dead(TimePoint now) const { return now - last_rx_ >= dead_after(); }
    [[nodiscard]] Duration dead_after() const { return interval_ * missed_; }

    // Earliest time at which probe_due() or peer_dead() may turn true.
    [[nodiscard]] TimePoint next_deadline(bool probing) const {
        TimePoint dead = last_rx_ + dead_after();
        if (!probing) return dead;
        TimePoint quiet = std::min(last_tx_, last_rx_) + interval_;
        TimePoint probe = std::max(quiet, last_probe_ + interval_);
        return std::min(dead, probe);
    }

private:
    Duration interval_{seconds(20)};
    unsigned missed_ = 3;
    TimePoint last_rx_{}, last_tx_{}, last_probe_{};
};

}  // namespace porthole::session

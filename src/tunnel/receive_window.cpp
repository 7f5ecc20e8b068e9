#include "tunnel/receive_window.hpp"

#include <algorithm>

namespace porthole::tunnel {

using std::chrono::microseconds;

uint64_t ReceiveWindow::rate_bytes_per_s() const {
    return *std::max_element(rates_.begin(), rates_.end());
}

void ReceiveWindow::on_peer_timestamp(session::TimePoint now, uint64_t peer_us) {
    // Both clocks are monotonic microsecond counters with unrelated origins: only differences
    // of these values mean anything.
    int64_t owd = int64_t(session::to_micros(now)) - int64_t(peer_us);
    if (!have_sample_ || now - bucket_start_ >= kBaseBucket) {
        base_prev_ = have_sample_ ? base_cur_ : kNone;
        base_cur_ = kNone;
        bucket_start_ = now;
    }
    base_cur_ = std::min(base_cur_, owd);
    interval_min_ = std::min(interval_min_, owd);
    last_sample_ = now;
    have_sample_ = true;
}

size_t ReceiveWindow::update(session::TimePoint now, uint64_t bytes_received, microseconds min_rtt,
                             microseconds srtt) {
    if (!started_) {
        started_ = true;
        last_ = now;
        last_bytes_ = bytes_received;
        return 0;
    }
    auto elapsed = std::chrono::duration_cast<microseconds>(now - last_);
    if (elapsed < kInterval) return 0;
    uint64_t delta = bytes_received >= last_bytes_ ? bytes_received - last_bytes_ : 0;
    // Long gaps between calls (an idle session) count as one interval at the average rate.
    rates_[next_] = delta * 1'000'000 / uint64_t(elapsed.count());
    next_ = (next_ + 1) % kSamples;
    last_ = now;
    last_bytes_ = bytes_received;

    // This direction's queueing delay: the smallest sample of the interval (the least disturbed
    // by scheduling) over the base. Stale when the peer stopped stamping.
    if (interval_min_ != kNone && have_sample_ && now - last_sample_ <= kDelayFresh) {
        int64_t base = std::min(base_cur_, base_prev_);
        qdelay_ = microseconds(std::max<int64_t>(0, interval_min_ - base));
    } else if (!have_sample_ || now - last_sample_ > kDelayFresh) {
        qdelay_ = microseconds(-1);
    }
    interval_min_ = kNone;
    if (min_rtt.count() <= 0) return 0;

    const auto target = std::chrono::duration_cast<microseconds>(kTarget);
    const double rate = double(rate_bytes_per_s());
    double want;
    if (qdelay_.count() >= 0) {
        // Integral control on this direction's own queueing delay: the window grows while the
        // queue is under the target and shrinks while it is over, by at most kGain of itself
        // per interval, so it settles where the queue is about `target` whatever the ACKs'
        // delay in the other direction is (no RTT estimate needed, none of the see-saw
        // between the two directions' queues that sizing from srtt gave).
        double err = std::clamp(double((target - qdelay_).count()) / double(target.count()),
                                -kMaxShrinkErr, 1.0);
        double anchor = rate * double((min_rtt + target).count()) / 1e6;
        double prev = clamp_ > 0 ? double(clamp_)
                                 : rate * double((std::max(min_rtt, srtt) + target).count()) / 1e6;
        want = std::max(anchor, prev * (1.0 + kGain * err));
        // Growth only as far as the traffic justifies: an application-limited peer (no queue,
        // low rate) must not leave a huge window behind for its next burst.
        double cap = rate * double((std::max(min_rtt, srtt) + target).count()) * 1.25 / 1e6;
        if (err > 0) want = std::min(want, std::max(cap, prev));
    } else {
        want = rate * double((min_rtt + target).count()) * 1.5 / 1e6;
    }
    clamp_ = size_t(std::clamp(want, double(kFloor), double(kCeiling)));
    return clamp_;
}

}  // namespace porthole::tunnel

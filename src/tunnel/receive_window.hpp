// ReceiveWindow: how much the peer may have in flight toward us, so that the tunnel's own TCP
// connection leaves only a short queue at the bottleneck. Pure code, fed by SendLanes.
//
// Why: one TCP connection carries both directions. The ACKs of one direction wait behind the
// other direction's data at the bottleneck, so a sender's RTT (and BBR's min_rtt and its
// 2 x bandwidth x min_rtt in flight) includes the other direction's queue, and each direction
// lets the other keep tens of milliseconds of standing queue that a voice packet waits in.
// RTTs cannot tell the two directions' queues apart; one-way delay can. While it sends bulk,
// each side's SendLanes sends a keep-alive request every 10 ms stamped with its monotonic clock;
// the receiver's one-way delay sample is (its clock - that stamp). The clocks' offset is
// unknown but constant, so the minimum over the last 10-20 s is the base, and
//     queue delay = current one-way delay - base
// is this direction's own queueing (sender's socket + bottleneck + our read). Every interval
// the receiver then moves its advertised-window clamp (TCP_WINDOW_CLAMP) toward the window that
// leaves `target` of queue — integral control, LEDBAT's idea applied to the receive window:
//     clamp *= 1 + kGain x err,   err = (target - queue delay) / target, within [-2, 1]
// never below rate x (min_rtt + target) and, while growing, never above
// 1.25 x rate x (srtt + target) (an application-limited peer earns no window it does not use).
// An earlier version sized the clamp from srtt directly (rate x (srtt - queue delay + target));
// srtt includes the other direction's queue, which that made the two directions' queues
// see-saw (windows of 32-220 kB, 20-70 ms queues, in turns) once super-packets were cut small
// enough to show it (docs/latency.md).
// Without fresh delay samples (the peer sends no bulk, or is an older build), the clamp falls
// back to 1.5 x rate x (min_rtt + target).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "session/clock.hpp"

namespace porthole::tunnel {

class ReceiveWindow {
public:
    static constexpr auto kInterval = std::chrono::milliseconds(20);  // one rate sample
    static constexpr size_t kSamples = 10;                            // max filter: 200 ms
    static constexpr auto kTarget = std::chrono::milliseconds(6);     // queue we accept
    static constexpr auto kBaseBucket = std::chrono::seconds(10);     // base = min of 2 buckets
    static constexpr auto kDelayFresh = std::chrono::milliseconds(500);
    static constexpr double kGain = 0.05;        // per interval: at most +5 %
    static constexpr double kMaxShrinkErr = 2;   // at most -10 % per interval
    static constexpr size_t kFloor = 32 * 1024;  // never below: a fresh burst starts here
    static constexpr size_t kCeiling = 64 * 1024 * 1024;

    // A one-way delay sample: the peer stamped peer_us (its monotonic clock) on a keep-alive
    // request that we decoded at `now`.
    void on_peer_timestamp(session::TimePoint now, uint64_t peer_us);

    // Called often (each flush); bytes_received is the socket's running total
    // (tcpi_bytes_received), min_rtt/srtt the socket's RTT estimates (0: unknown). Returns the
    // window clamp to apply now, or 0 when it should stay as it is (no new rate sample yet, or
    // no RTT estimate).
    size_t update(session::TimePoint now, uint64_t bytes_received,
                  std::chrono::microseconds min_rtt, std::chrono::microseconds srtt);

    [[nodiscard]] uint64_t rate_bytes_per_s() const;  // max over the recent samples
    [[nodiscard]] size_t clamp() const { return clamp_; }
    // This direction's queueing delay at the last update; negative: not known (no fresh samples).
    [[nodiscard]] std::chrono::microseconds queue_delay() const { return qdelay_; }

private:
    static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

    std::array<uint64_t, kSamples> rates_{};  // bytes/s per interval, ring
    size_t next_ = 0;
    bool started_ = false;
    session::TimePoint last_{};
    uint64_t last_bytes_ = 0;
    size_t clamp_ = 0;

    int64_t base_cur_ = kNone, base_prev_ = kNone;  // minimum one-way delay per bucket
    session::TimePoint bucket_start_{};
    int64_t interval_min_ = kNone;  // minimum one-way delay since the last update
    session::TimePoint last_sample_{};
    bool have_sample_ = false;
    std::chrono::microseconds qdelay_{-1};
};

}  // namespace porthole::tunnel

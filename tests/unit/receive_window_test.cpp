// ReceiveWindow: the receive-window clamp follows the receive rate and this direction's own
// queueing delay (from the peer's clock stamps), not the other direction's queue; without
// stamps it falls back to the base RTT; it never leaves its floor/ceiling.
#include <doctest/doctest.h>

#include <algorithm>

#include "tunnel/receive_window.hpp"

using namespace porthole;
using porthole::tunnel::ReceiveWindow;
using namespace std::chrono_literals;
using std::chrono::microseconds;

namespace {

// Drives a ReceiveWindow like SendLanes does, with a peer whose clock is `offset` away from ours.
struct Feed {
    ReceiveWindow w;
    session::TimePoint t = session::TimePoint{} + 1000s;
    uint64_t total = 0;
    int64_t offset_us = 123'456'789'000;  // the peer's clock origin is unrelated to ours

    // A stamp sent `queue` before now plus a fixed 100 us of propagation.
    void stamp(microseconds queue) {
        uint64_t sent = uint64_t(int64_t(session::to_micros(t)) - queue.count() - 100 + offset_us);
        w.on_peer_timestamp(t, sent);
    }
    // One interval at `rate` bytes/s; returns what update() says.
    size_t step(uint64_t rate, microseconds min_rtt, microseconds srtt,
                std::chrono::milliseconds dt = ReceiveWindow::kInterval) {
        t += dt;
        total += rate * uint64_t(std::chrono::duration_cast<microseconds>(dt).count()) / 1'000'000;
        return w.update(t, total, min_rtt, srtt);
    }
};

constexpr microseconds kT = ReceiveWindow::kTarget;

double expect_clamp(uint64_t rate, microseconds horizon, double gain) {
    double v = double(rate) * double(horizon.count()) * gain / 1e6;
    return std::clamp(v, double(ReceiveWindow::kFloor), double(ReceiveWindow::kCeiling));
}

}  // namespace

TEST_CASE("ReceiveWindow: no clamp before a first interval or without a base RTT") {
    Feed f;
    CHECK(f.w.update(f.t, 0, 500us, 0us) == 0);  // the first call only starts the clock
    f.t += 5ms;
    CHECK(f.w.update(f.t, 1000, 500us, 0us) == 0);  // shorter than one interval
    CHECK(f.step(1'000'000, 0us, 0us) == 0);        // rate known, base RTT not
}

TEST_CASE("ReceiveWindow: without stamps, 1.5 x rate x (min_rtt + target)") {
    Feed f;
    f.w.update(f.t, 0, 1ms, 0us);
    CHECK(f.step(2'500'000, 1ms, 5ms) == size_t(expect_clamp(2'500'000, 1ms + kT, 1.5)));
    CHECK(f.w.queue_delay().count() < 0);
    CHECK(f.step(125'000'000, 2ms, 5ms) == size_t(expect_clamp(125'000'000, 2ms + kT, 1.5)));
}

TEST_CASE(
    "ReceiveWindow: the queue delay is the one-way delay over its minimum, whatever the "
    "clock offset") {
    Feed f;
    f.offset_us = -987'654'321'000;
    f.w.update(f.t, 0, 1ms, 0us);
    f.stamp(0us);  // an empty queue sets the base
    f.step(1'000'000, 1ms, 1ms);
    f.stamp(7ms);
    f.stamp(9ms);  // the smallest sample of an interval counts
    f.step(1'000'000, 1ms, 1ms);
    CHECK(f.w.queue_delay() == 7ms);
}

TEST_CASE("ReceiveWindow: under the target the window grows by kGain a step, up to its cap") {
    // The peer's data arrives with no queue, but the RTT is 40 ms because our ACKs wait behind
    // the other direction's data: the window must be allowed past rate x srtt.
    Feed f;
    f.w.update(f.t, 0, 500us, 0us);
    f.stamp(0us);
    size_t first = f.step(2'500'000, 500us, 40ms);
    CHECK(f.w.queue_delay() == 0us);
    // Starts from rate x (srtt + target), one step of growth on top.
    CHECK(first == size_t(expect_clamp(2'500'000, 40ms + kT, 1.0 + ReceiveWindow::kGain)));
    size_t prev = first, c = first;
    for (int i = 0; i < 20; ++i) {
        f.stamp(0us);
        c = f.step(2'500'000, 500us, 40ms);
        CHECK(c >= prev);
        CHECK(double(c) <= double(prev) * (1.0 + ReceiveWindow::kGain) + 1);
        prev = c;
    }
    CHECK(c == size_t(expect_clamp(2'500'000, 40ms + kT, 1.25)));  // the cap
    CHECK(double(c) > 2'500'000.0 * 0.040);
}

TEST_CASE("ReceiveWindow: a queue over the target shrinks the window, at most 10 % a step") {
    Feed f;
    f.w.update(f.t, 0, 500us, 0us);
    f.stamp(0us);
    size_t prev = f.step(10'000'000, 500us, 30ms);
    for (int i = 0; i < 100; ++i) {
        f.stamp(50ms);
        size_t c = f.step(10'000'000, 500us, 30ms);
        CHECK(c <= prev);
        CHECK(double(c) >= double(prev) * (1.0 - 2 * ReceiveWindow::kGain) - 1);
        prev = c;
    }
    // Down to what a queue of `target` needs with no RTT at all: rate x (min_rtt + target).
    CHECK(prev == size_t(expect_clamp(10'000'000, 500us + kT, 1.0)));
}

TEST_CASE("ReceiveWindow: against a model bottleneck the queue settles near the target") {
    // A 20 Mbit/s bottleneck; 15 ms of the round trip is not this direction's queue (the ACKs
    // wait behind the other direction). The peer keeps the window full: this direction's queue
    // is what the window holds beyond rate x 15 ms. Delay seen one interval late.
    Feed f;
    const double link = 2'500'000;  // bytes/s
    const double pipe_s = 0.015;
    f.w.update(f.t, 0, 200us, 0us);
    double window = double(ReceiveWindow::kFloor), queue_s = 0;
    double late_sum = 0;
    int late_n = 0;
    for (int i = 0; i < 300; ++i) {
        f.stamp(microseconds(int64_t(queue_s * 1e6)));
        double rate = std::min(link, window / pipe_s);
        auto srtt = microseconds(int64_t((pipe_s + queue_s) * 1e6));
        size_t c = f.step(uint64_t(rate), 200us, srtt);
        if (c != 0) window = double(c);
        queue_s = std::max(0.0, window / link - pipe_s);
        if (i >= 200) {
            late_sum += queue_s;
            ++late_n;
            CHECK(queue_s < 0.030);  // never a standing queue of several targets
        }
    }
    double mean = late_sum / late_n;
    CHECK(mean > 0.5 * double(kT.count()) / 1e6);  // the link is kept busy: some queue remains...
    CHECK(mean < 1.5 * double(kT.count()) / 1e6);  // ...about the target, not more
}

TEST_CASE("ReceiveWindow: stamps older than kDelayFresh are forgotten") {
    Feed f;
    f.w.update(f.t, 0, 1ms, 0us);
    f.stamp(0us);
    f.step(50'000'000, 1ms, 2ms);
    CHECK(f.w.queue_delay() == 0us);
    f.step(50'000'000, 1ms, 2ms, 600ms);
    CHECK(f.w.queue_delay().count() < 0);
}

TEST_CASE("ReceiveWindow: the max filter remembers the best rate for 10 intervals") {
    Feed f;
    f.w.update(f.t, 0, 1ms, 0us);
    f.step(100'000'000, 1ms, 1ms);
    for (size_t i = 0; i < ReceiveWindow::kSamples - 1; ++i)
        f.step(1'000'000, 1ms, 1ms);
    CHECK(f.w.rate_bytes_per_s() == 100'000'000);  // still inside the window
    f.step(1'000'000, 1ms, 1ms);
    CHECK(f.w.rate_bytes_per_s() == 1'000'000);  // aged out
    CHECK(f.w.clamp() == ReceiveWindow::kFloor);
}

TEST_CASE("ReceiveWindow: a long gap counts as one slow interval and the ceiling holds") {
    Feed f;
    f.w.update(f.t, 0, 1ms, 0us);
    CHECK(f.step(0, 1ms, 1ms, 5000ms) == ReceiveWindow::kFloor);
    CHECK(f.w.rate_bytes_per_s() == 0);
    CHECK(f.step(100'000'000'000ULL, 100ms, 100ms) == ReceiveWindow::kCeiling);
}

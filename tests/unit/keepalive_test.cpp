// Keepalive timer logic: when a probe is due, when the peer is dead, and that next_deadline() is
// exactly the first instant at which either turns true (checked on random event histories).
#include <doctest/doctest.h>

#include <random>

#include "session/keepalive.hpp"

using namespace porthole::session;
using std::chrono::microseconds;

namespace {
const TimePoint t0 = TimePoint{} + seconds(1000);
}

TEST_CASE("Keepalive: probe after one quiet interval, at most once per interval") {
    Keepalive k;
    k.configure(seconds(10), 3, t0);
    CHECK_FALSE(k.probe_due(t0));
    CHECK_FALSE(k.probe_due(t0 + seconds(10) - microseconds(1)));
    CHECK(k.probe_due(t0 + seconds(10)));
    k.on_probe_sent(t0 + seconds(10));
    CHECK_FALSE(k.probe_due(t0 + seconds(15)));
    CHECK_FALSE(k.probe_due(t0 + seconds(20) - microseconds(1)));
    CHECK(k.probe_due(t0 + seconds(20)));  // still quiet: heard nothing since t0
}

TEST_CASE("Keepalive: sending alone or receiving alone does not hold off the probe") {
    Keepalive k;
    k.configure(seconds(10), 3, t0);
    for (int s = 1; s <= 12; ++s)
        k.on_sent(t0 + seconds(s));  // we talk, the peer is silent
    CHECK(k.probe_due(t0 + seconds(10)));

    Keepalive r;
    r.configure(seconds(10), 3, t0);
    for (int s = 1; s <= 12; ++s)
        r.on_received(t0 + seconds(s));  // we only listen
    CHECK(r.probe_due(t0 + seconds(10)));

    Keepalive both;
    both.configure(seconds(10), 3, t0);
    for (int s = 1; s <= 30; ++s) {
        both.on_sent(t0 + seconds(s));
        both.on_received(t0 + seconds(s));
        CHECK_FALSE(both.probe_due(t0 + seconds(s)));  // traffic both ways: no probe needed
    }
}

TEST_CASE("Keepalive: peer dead after `missed` silent intervals; any reception revives") {
    Keepalive k;
    k.configure(seconds(10), 3, t0);
    CHECK(k.dead_after() == seconds(30));
    CHECK_FALSE(k.peer_dead(t0 + seconds(30) - microseconds(1)));
    CHECK(k.peer_dead(t0 + seconds(30)));
    k.on_received(t0 + seconds(29));
    CHECK_FALSE(k.peer_dead(t0 + seconds(58)));
    CHECK(k.peer_dead(t0 + seconds(59)));
    k.on_sent(t0 + seconds(100));  // sending does not prove the peer alive
    CHECK(k.peer_dead(t0 + seconds(100)));

    Keepalive zero;
    zero.configure(seconds(5), 0, t0);  // at least one interval
    CHECK(zero.dead_after() == seconds(5));
}

TEST_CASE("Keepalive: next_deadline is exactly when probe_due or peer_dead first turns true") {
    std::mt19937 rng(9);
    for (int trial = 0; trial < 3000; ++trial) {
        Keepalive k;
        auto interval = seconds(1 + rng() % 30);
        unsigned missed = 1 + rng() % 4;
        k.configure(interval, missed, t0);
        TimePoint now = t0;
        // a random history
        for (int e = int(rng() % 8); e > 0; --e) {
            now += microseconds(rng() % 20'000'000);
            switch (rng() % 3) {
                case 0:
                    k.on_received(now);
                    break;
                case 1:
                    k.on_sent(now);
                    break;
                case 2:
                    k.on_probe_sent(now);
                    break;
            }
        }
        for (bool probing : {true, false}) {
            TimePoint d = k.next_deadline(probing);
            auto fires = [&](TimePoint t) { return k.peer_dead(t) || (probing && k.probe_due(t)); };
            CHECK_FALSE(fires(d - microseconds(1)));
            CHECK(fires(d));
            // both predicates only ever turn true as time passes
            CHECK(fires(d + interval));
        }
    }
}

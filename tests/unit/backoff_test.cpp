#include <doctest/doctest.h>

#include "session/backoff.hpp"

using namespace porthole::session;

TEST_CASE("backoff: doubles from the first delay up to the cap, with bounded jitter") {
    Backoff b(seconds(1), seconds(30), 0.2);
    // random01 = 0.5 means no jitter: the base sequence itself.
    const long expect_s[] = {1, 2, 4, 8, 16, 30, 30};
    for (long e : expect_s)
        CHECK(b.next(0.5) == Duration(seconds(e)));
    b.reset();
    CHECK(b.next(0.5) == Duration(seconds(1)));
    // The extremes of the jitter stay within +-20 %.
    Backoff low(seconds(10), seconds(10), 0.2), high(seconds(10), seconds(10), 0.2);
    CHECK(low.next(0.0) == Duration(seconds(8)));
    auto h = high.next(0.999999);
    CHECK(h > Duration(std::chrono::milliseconds(11999)));
    CHECK(h <= Duration(seconds(12)));
}

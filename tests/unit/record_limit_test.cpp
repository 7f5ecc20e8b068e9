#include "tls/record_limit.hpp"

#include <doctest/doctest.h>

using porthole::tls::RecordLimit;

TEST_CASE("record limit: due after the configured number of records, then renewed") {
    RecordLimit l(20);
    CHECK(l.limit() == 20);
    for (int i = 0; i < 19; ++i)
        l.sent(100);
    CHECK(l.count() == 19);
    CHECK_FALSE(l.due());
    l.sent(1);
    CHECK(l.due());
    l.renewed();
    CHECK(l.count() == 0);
    CHECK(l.updates() == 1);
    CHECK_FALSE(l.due());
}

TEST_CASE("record limit: a write counts the records it needs, at least one; none for zero bytes") {
    RecordLimit l(1000);
    l.sent(0);
    CHECK(l.count() == 0);
    l.sent(1);
    CHECK(l.count() == 1);
    l.sent(16384);
    CHECK(l.count() == 2);
    l.sent(16385);  // 16 KiB + 1: two records
    CHECK(l.count() == 4);
    l.sent(5 * 16384);
    CHECK(l.count() == 9);
}

TEST_CASE("record limit: clamped to the bounds; the default stays below RFC 8446's 2^24.5") {
    CHECK(RecordLimit(0).limit() == porthole::tls::kMinKeyUpdateRecords);
    CHECK(RecordLimit(uint64_t(1) << 40).limit() == porthole::tls::kMaxKeyUpdateRecords);
    CHECK(RecordLimit().limit() == porthole::tls::kDefaultKeyUpdateRecords);
    // 2^24.5 = 23,726,566 full-size records (RFC 8446 §5.5, AES-GCM).
    CHECK(porthole::tls::kMaxKeyUpdateRecords < 23'726'566u);
}

TEST_CASE("record limit: one large write past the limit is due once, not once per record") {
    RecordLimit l(16);
    l.sent(20 * 16384);
    CHECK(l.count() == 20);
    CHECK(l.due());
    l.renewed();
    CHECK_FALSE(l.due());
    CHECK(l.updates() == 1);
}

TEST_CASE(
    "record limit: the peer is asked to renew after 1.25 x the limit's worth of full records") {
    RecordLimit l(16);
    const size_t full = 16 * 16384;
    l.received(full);
    CHECK_FALSE(l.peer_due());
    l.received(full / 4 - 1);
    CHECK_FALSE(l.peer_due());
    l.received(1);
    CHECK(l.peer_due());
    CHECK_FALSE(l.due());  // what we sent is counted apart
    l.peer_asked();
    CHECK_FALSE(l.peer_due());
    CHECK(l.requests() == 1);
    CHECK(l.updates() == 0);
}

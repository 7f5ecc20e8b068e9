// SendLanes over a real TLS connection on a socketpair with a small socket buffer: real-time
// envelopes overtake queued bulk, yet the byte stream never interleaves two envelopes, even when
// a 64 KiB envelope is cut into several records across flushes.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "packet/envelope.hpp"
#include "test_pki.hpp"
#include "test_tls_pair.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"
#include "tunnel/send_lanes.hpp"

using namespace porthole;
using porthole::tls::TlsStatus;

namespace {

using Bytes = std::vector<std::byte>;

Bytes envelope(uint8_t type, size_t payload, uint8_t fill) {
    Bytes e(packet::kHeaderSize + payload, std::byte{fill});
    packet::write_header(e.data(), type, payload);
    return e;
}

// A TLS 1.3 connection over a non-blocking socketpair whose sending (client) side has a small
// buffer, so that TLS writes block part-way.
struct LanesPair {
    test_pki::Pki pki;
    std::optional<tls::TlsContext> sctx, cctx;
    test_tls::TlsPair tls;

    LanesPair() {
        auto ca = pki.make_ca("Lab CA");
        auto srv = pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab"});
        auto ue = pki.make_leaf(ca, "ue-1", {"DNS:ue-1.lab"});
        auto sx = tls::TlsContext::server({srv.cert_file, srv.key_file, ca.cert_file});
        auto cx =
            tls::TlsContext::client({ca.cert_file, ue.cert_file, ue.key_file, "concentrator.lab"});
        REQUIRE(sx.has_value());
        REQUIRE(cx.has_value());
        sctx.emplace(std::move(*sx));
        cctx.emplace(std::move(*cx));
        int small = 32 * 1024;
        ::setsockopt(tls.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        tls.make(*cctx, *sctx);
        tls.handshake();
        REQUIRE(tls.client_status == TlsStatus::ok);
        REQUIRE(tls.server_status == TlsStatus::ok);
    }
};

// The receiving side: decodes envelopes and records (first payload octet, payload size) in order.
struct Received {
    packet::EnvelopeDecoder dec;
    std::vector<std::pair<uint8_t, size_t>> items;

    void pump(tls::TlsConnection& s) {
        std::byte buf[16384];
        for (;;) {
            auto r = s.read(buf);
            if (r.status != TlsStatus::ok) break;
            auto err =
                dec.feed(std::span<const std::byte>(buf, r.bytes), [&](const packet::Envelope& e) {
                    items.emplace_back(e.payload.empty() ? 0 : uint8_t(e.payload[0]),
                                       e.payload.size());
                });
            REQUIRE(err == packet::DecodeError::none);
        }
    }
    [[nodiscard]] size_t size() const { return items.size(); }
    const std::pair<uint8_t, size_t>& operator[](size_t i) const { return items[i]; }
};

}  // namespace

TEST_CASE("send lanes: real-time first, envelopes never interleaved") {
    LanesPair lp;
    auto& c = lp.tls.client;
    auto& s = lp.tls.server;
    tunnel::SendLanes lanes(64 * 1024, 4 * 1024 * 1024);  // not attached: no TCP pacing on AF_UNIX
    // Bulk: a mix of 64 KiB and small envelopes (type 0x42 = skipped by receivers, any payload).
    std::mt19937 rng(5);
    std::vector<Bytes> sent_bulk;
    for (int i = 0; i < 40; ++i) {
        size_t n = (i % 3 == 0) ? 65000 : 100 + rng() % 3000;
        auto e = envelope(0x42, n, uint8_t(i));
        REQUIRE(lanes.bulk().append(e));
        sent_bulk.push_back(e);
    }
    auto now = session::Clock::now();
    // Receiver: decodes envelopes and records their order.
    Received got;
    auto pump_receiver = [&] { got.pump(*s); };
    // First flush: the socket buffer fills part-way through the bulk.
    auto st = lanes.flush(*c, now);
    CHECK(st == tunnel::SendLanes::Status::blocked);
    // A real-time envelope arrives while bulk is still queued.
    REQUIRE(lanes.realtime().append(envelope(0x42, 160, 0xEE)));
    size_t rt_index = SIZE_MAX;
    for (int round = 0; round < 2000 && !lanes.idle(); ++round) {
        pump_receiver();
        st = lanes.flush(*c, now);
        REQUIRE(st != tunnel::SendLanes::Status::failed);
    }
    for (int round = 0; round < 50; ++round) {
        REQUIRE(lanes.flush(*c, now) != tunnel::SendLanes::Status::failed);
        pump_receiver();
    }
    REQUIRE(lanes.idle());
    REQUIRE(got.size() == sent_bulk.size() + 1);
    size_t bulk_seen = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (got[i].first == 0xEE && got[i].second == 160) {
            rt_index = i;
            continue;
        }
        // Bulk arrives whole and in order.
        CHECK(got[i].first == uint8_t(bulk_seen));
        CHECK(got[i].second + packet::kHeaderSize == sent_bulk[bulk_seen].size());
        ++bulk_seen;
    }
    // The real-time envelope overtook most of the queued bulk.
    REQUIRE(rt_index != SIZE_MAX);
    CHECK(rt_index < got.size() / 2);
}

// A TLS write that blocks holds an encrypted record inside OpenSSL; the next write must offer the
// same bytes. Bulk here is small envelopes only (no half-written envelope to finish first), and a
// real-time envelope, shorter than the held record, arrives after every blocked flush: each must
// still arrive exactly once, bulk in order, and no flush may fail ("bad length").
TEST_CASE("send lanes: a blocked TLS write is repeated before real-time overtakes") {
    LanesPair lp;
    auto& c = lp.tls.client;
    auto& s = lp.tls.server;
    tunnel::SendLanes lanes(64 * 1024, 4 * 1024 * 1024);
    constexpr int kBulk = 300;
    for (int i = 0; i < kBulk; ++i)
        REQUIRE(lanes.bulk().append(envelope(0x42, 2000 + size_t(i % 7) * 100, uint8_t(i))));
    auto now = session::Clock::now();
    Received got;
    int blocked = 0, rt_sent = 0;
    for (int round = 0; round < 5000 && !lanes.idle(); ++round) {
        auto st = lanes.flush(*c, now);
        REQUIRE(st != tunnel::SendLanes::Status::failed);
        if (st == tunnel::SendLanes::Status::blocked && !lanes.bulk().empty()) {
            ++blocked;
            REQUIRE(lanes.realtime().append(envelope(0x42, 160, 0xEE)));
            ++rt_sent;
        }
        got.pump(*s);
    }
    for (int round = 0; round < 50; ++round) {
        REQUIRE(lanes.flush(*c, now) != tunnel::SendLanes::Status::failed);
        got.pump(*s);
    }
    REQUIRE(lanes.idle());
    CHECK(blocked > 0);
    REQUIRE(got.size() == size_t(kBulk + rt_sent));
    int bulk_seen = 0, rt_seen = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (got[i].first == 0xEE && got[i].second == 160) {
            ++rt_seen;
            continue;
        }
        CHECK(got[i].first == uint8_t(bulk_seen));
        CHECK(got[i].second == 2000 + size_t(bulk_seen % 7) * 100);
        ++bulk_seen;
    }
    CHECK(bulk_seen == kBulk);
    CHECK(rt_seen == rt_sent);
}

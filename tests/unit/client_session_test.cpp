// ClientSession on its own: hand-built envelopes in, decoded envelopes out, simulated time.
#include <doctest/doctest.h>

#include <vector>

#include "packet/control_message.hpp"
#include "session/client_session.hpp"
#include "test_wire.hpp"

using namespace porthole::session;
using namespace porthole::packet;
using namespace porthole::test;
using std::chrono::microseconds;
using Ka = porthole::packet::Keepalive;

namespace {

const TimePoint t0 = TimePoint{} + seconds(5000);

ClientSession::Options options() {
    ClientSession::Options o;
    o.request.credential = Bytes(4, std::byte{9});
    return o;
}

struct Started {
    ClientSession c{options()};
    ClientOutput out;
    Started() {
        c.start(t0, out);
        out.clear();
    }
};

struct Configured : Started {
    explicit Configured(const ConfigAssign& a = v4_assign()) {
        c.on_bytes(control(a), t0, out);
        REQUIRE(out.configured);
        out.clear();
    }
};

}  // namespace

TEST_CASE("ClientSession: start sends the configuration request once") {
    ClientSession c(options());
    ClientOutput out;
    CHECK(c.state() == ClientSession::State::idle);
    CHECK(c.next_deadline() == TimePoint::max());
    c.on_bytes(control(v4_assign()), t0, out);  // before start: ignored
    CHECK_FALSE(out.configured);
    c.start(t0, out);
    CHECK(c.state() == ClientSession::State::awaiting_config);
    auto msgs = controls(out.to_peer);
    REQUIRE(msgs.size() == 1);
    CHECK(std::get<ConfigRequest>(msgs[0]) == options().request);
    out.clear();
    c.start(t0, out);
    CHECK(out.to_peer.empty());
}

TEST_CASE("ClientSession: assignment makes it established; a repeat is ignored") {
    Started s;
    auto a = v4_assign();
    a.ipv6 = P("fd00::2/64");
    a.routes = {P("10.0.0.0/8")};
    auto wire = control(a);
    for (size_t i = 0; i < wire.size(); ++i)
        s.c.on_bytes(std::span(wire).subspan(i, 1), t0, s.out);
    CHECK(s.out.configured);
    CHECK(s.c.established());
    CHECK(s.c.assignment() == a);
    s.out.clear();
    s.c.on_bytes(control(v4_assign()), t0, s.out);
    CHECK_FALSE(s.out.configured);
    CHECK(s.c.assignment() == a);
}

TEST_CASE("ClientSession: IP packets are delivered only once established") {
    Started s;
    s.c.on_bytes(ip_envelope(A("1.1.1.1"), A("198.18.0.2")), t0, s.out);
    CHECK(s.out.to_tun.empty());
    CHECK(s.c.packets_received() == 0);
    auto wire = cat({control(v4_assign()), ip_envelope(A("1.1.1.1"), A("198.18.0.2")),
                     ip_envelope(A("2001:db8::1"), A("fd00::2"))});
    s.c.on_bytes(wire, t0, s.out);
    CHECK(s.out.configured);
    REQUIRE(s.out.to_tun.size() == 2);
    CHECK(s.c.packets_received() == 2);
    size_t first = control(v4_assign()).size() + 3;
    CHECK(s.out.to_tun[0].data() == wire.data() + first);  // a view, not a copy
}

TEST_CASE("ClientSession: configuration timeout") {
    Started s;
    CHECK(s.c.next_deadline() == t0 + seconds(10));
    s.c.on_timer(t0 + seconds(10) - microseconds(1), s.out);
    CHECK_FALSE(s.out.closed.has_value());
    s.c.on_timer(t0 + seconds(10), s.out);
    require_closed_with(s.out, CloseReason::config_timeout);
    CHECK(s.c.state() == ClientSession::State::closed);
}

TEST_CASE("ClientSession: probes after a quiet interval and measures RTT from the echo") {
    Configured s;  // keep-alive 10 s
    CHECK(s.c.next_deadline() == t0 + seconds(10));
    s.c.on_timer(t0 + seconds(10) - microseconds(1), s.out);
    CHECK(s.out.to_peer.empty());
    TimePoint t = t0 + seconds(10);
    s.c.on_timer(t, s.out);
    auto msgs = controls(s.out.to_peer);
    REQUIRE(msgs.size() == 1);
    auto probe = std::get<Ka>(msgs[0]);
    CHECK_FALSE(probe.reply);
    CHECK(probe.timestamp_us == to_micros(t));
    s.out.clear();
    s.c.on_timer(t + seconds(1), s.out);  // not twice in one interval
    CHECK(s.out.to_peer.empty());
    CHECK_FALSE(s.c.last_rtt().has_value());

    s.c.on_bytes(control(Ka{true, probe.timestamp_us}), t + milliseconds(37), s.out);
    REQUIRE(s.c.last_rtt().has_value());
    CHECK(*s.c.last_rtt() == milliseconds(37));
    // a reply from the future (or forged) does not produce a negative RTT
    s.c.on_bytes(control(Ka{true, to_micros(t + seconds(100))}), t + seconds(2), s.out);
    CHECK(*s.c.last_rtt() == milliseconds(37));
}

TEST_CASE("ClientSession: answers the concentrator's keep-alive requests") {
    Configured s;
    s.c.on_bytes(control(Ka{false, 42}), t0 + seconds(1), s.out);
    auto msgs = controls(s.out.to_peer);
    REQUIRE(msgs.size() == 1);
    CHECK(std::get<Ka>(msgs[0]) == Ka{true, 42});
}

TEST_CASE("ClientSession: a silent concentrator is declared dead") {
    Configured s;  // 10 s x 3
    TimePoint t = t0;
    int probes = 0;
    while (!s.out.closed) {
        TimePoint next = s.c.next_deadline();
        REQUIRE(next > t);
        t = next;
        s.c.on_timer(t, s.out);
        for (auto& m : controls(s.out.to_peer))
            if (std::holds_alternative<Ka>(m)) ++probes;
        if (!s.out.closed) s.out.clear();
        REQUIRE(t < t0 + seconds(100));
    }
    CHECK(t == t0 + seconds(30));
    CHECK(s.out.closed->reason == CloseReason::peer_dead);
    CHECK(probes == 2);  // at 10 s and 20 s; at 30 s it gives up
    auto msgs = controls(s.out.to_peer);
    REQUIRE_FALSE(msgs.empty());
    CHECK(std::get<Close>(msgs.back()).reason == CloseReason::peer_dead);
}

TEST_CASE("ClientSession: CLOSE from the concentrator, and close() from the user") {
    {
        Configured s;
        s.c.on_bytes(cat({control(Close{CloseReason::admin, "kicked"}),
                          ip_envelope(A("1.1.1.1"), A("198.18.0.2"))}),
                     t0, s.out);
        REQUIRE(s.out.closed.has_value());
        CHECK(*s.out.closed == Close{CloseReason::admin, "kicked"});
        CHECK(s.out.closed_by_peer);
        CHECK(s.out.to_peer.empty());
        CHECK(s.out.to_tun.empty());
        CHECK(s.c.next_deadline() == TimePoint::max());
    }
    {
        Configured s;
        s.c.close(CloseReason::normal, "bye", s.out);
        s.c.close(CloseReason::normal, "again", s.out);
        auto msgs = controls(s.out.to_peer);
        REQUIRE(msgs.size() == 1);
        CHECK(std::get<Close>(msgs[0]) == Close{CloseReason::normal, "bye"});
        CHECK_FALSE(s.out.closed_by_peer);
        s.out.clear();
        s.c.on_bytes(control(Ka{false, 1}), t0, s.out);  // closed: nothing more
        CHECK(s.out.to_peer.empty());
    }
    {
        ClientSession c(options());  // never started: nothing to send to
        ClientOutput out;
        c.close(CloseReason::normal, "", out);
        CHECK(out.to_peer.empty());
        CHECK(out.closed.has_value());
        CHECK(c.state() == ClientSession::State::closed);
    }
}

TEST_CASE("ClientSession: garbage closes with protocol_error; unknown types are skipped") {
    {
        Configured s;
        s.c.on_bytes(cat({envelope(0x42, Bytes(7, std::byte{1})), envelope(0xA7, {}),
                          control(ConfigRequest{}), ip_envelope(A("1.1.1.1"), A("198.18.0.2"))}),
                     t0, s.out);
        CHECK(s.out.to_tun.size() == 1);
        CHECK_FALSE(s.out.closed.has_value());
        CHECK(s.out.to_peer.empty());
    }
    for (auto garbage : {Bytes{std::byte{1}, std::byte{0}, std::byte{3}}, envelope(1, Bytes(20)),
                         envelope(0x81, {}), envelope(0x84, Bytes{std::byte{0x30}})}) {
        Started s;
        s.c.on_bytes(garbage, t0, s.out);
        require_closed_with(s.out, CloseReason::protocol_error);
    }
}

// BUG (reported to the lead): same as the ServerSession case: a packet reassembled across chunks
// is a view into the decoder's partial buffer, which the chunk's trailing partial envelope
// overwrites before the caller reads out.to_tun.
TEST_CASE("ClientSession: a packet split across chunks survives a trailing partial envelope") {
    Configured s;
    auto p1 = ip_packet(A("1.1.1.1"), A("198.18.0.2"), 20);
    auto p2 = ip_packet(A("2001:db8::2"), A("fd00::2"), 20);  // another first octet
    auto wire = cat({envelope(1, p1), envelope(1, p2)});
    size_t first = envelope(1, p1).size();
    s.c.on_bytes(std::span(wire).first(10), t0, s.out);
    s.c.on_bytes(std::span(wire).subspan(10, first - 10 + 8), t0, s.out);
    REQUIRE(s.out.to_tun.size() == 1);
    CHECK(Bytes(s.out.to_tun[0].begin(), s.out.to_tun[0].end()) == p1);
}

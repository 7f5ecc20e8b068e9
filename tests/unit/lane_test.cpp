#include <doctest/doctest.h>
#include <tins/tins.h>

#include <vector>

#include "session/lane.hpp"

using namespace porthole::session;

namespace {
std::vector<std::byte> wire(Tins::PDU& pdu) {
    auto v = pdu.serialize();
    std::vector<std::byte> b(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        b[i] = std::byte(v[i]);
    return b;
}
}  // namespace

TEST_CASE("lane: voice, video, probes and signalling are real-time; bulk is bulk") {
    LanePolicy policy;
    {  // an RTP packet: small UDP
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip /= Tins::UDP(40000, 5004) / Tins::RawPDU(std::vector<uint8_t>(160, 0x80));
        CHECK(classify(wire(ip), policy) == Lane::realtime);
    }
    {  // a large UDP datagram marked EF (video or DSCP-marked voice)
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip.tos(46 << 2);
        ip /= Tins::UDP(40000, 5004) / Tins::RawPDU(std::vector<uint8_t>(1200, 1));
        CHECK(classify(wire(ip), policy) == Lane::realtime);
    }
    {  // a large unmarked UDP datagram: bulk, unless its port is configured
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip /= Tins::UDP(40000, 3478) / Tins::RawPDU(std::vector<uint8_t>(1200, 1));
        CHECK(classify(wire(ip), policy) == Lane::bulk);
        LanePolicy with_port;
        with_port.realtime_ports = {3478};
        CHECK(classify(wire(ip), with_port) == Lane::realtime);
    }
    {  // ping, v4 and v6
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip /= Tins::ICMP(Tins::ICMP::ECHO_REQUEST);
        CHECK(classify(wire(ip), policy) == Lane::realtime);
        Tins::IPv6 ip6("fd00:64::2", "fd00:18:3::2");
        ip6 /= Tins::ICMPv6(Tins::ICMPv6::ECHO_REQUEST);
        CHECK(classify(wire(ip6), policy) == Lane::realtime);
    }
    {  // TCP, however small or marked, is bulk (it has its own congestion control)
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip.tos(46 << 2);
        ip /= Tins::TCP(5060, 40000);
        CHECK(classify(wire(ip), policy) == Lane::bulk);
    }
    {  // an ICMP error is not a probe
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip /= Tins::ICMP(Tins::ICMP::DEST_UNREACHABLE);
        CHECK(classify(wire(ip), policy) == Lane::bulk);
    }
    std::vector<std::byte> junk(30, std::byte{0x45});
    CHECK(classify(junk, policy) == Lane::bulk);
}

TEST_CASE("lane: a pure TCP ACK is real-time; TCP with data, SYN or FIN is bulk") {
    LanePolicy policy;
    auto tcp = [](uint16_t flags, size_t payload) {
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        Tins::TCP t(5201, 40000);
        t.flags(flags);
        ip /= t;
        if (payload > 0) ip /= Tins::RawPDU(std::vector<uint8_t>(payload, 7));
        return wire(ip);
    };
    CHECK(classify(tcp(Tins::TCP::ACK, 0), policy) == Lane::realtime);
    CHECK(classify(tcp(Tins::TCP::ACK, 1), policy) == Lane::bulk);
    CHECK(classify(tcp(Tins::TCP::ACK | Tins::TCP::PSH, 1400), policy) == Lane::bulk);
    CHECK(classify(tcp(Tins::TCP::SYN, 0), policy) == Lane::bulk);
    CHECK(classify(tcp(Tins::TCP::ACK | Tins::TCP::FIN, 0), policy) == Lane::bulk);
    CHECK(classify(tcp(Tins::TCP::RST | Tins::TCP::ACK, 0), policy) == Lane::bulk);
    {  // IPv6 too (a pure ACK with the timestamp option: header 32 octets)
        Tins::IPv6 ip6("fd00:64::2", "fd00:18:3::2");
        Tins::TCP t(5201, 40000);
        t.flags(Tins::TCP::ACK);
        t.timestamp(1, 2);
        ip6 /= t;
        CHECK(classify(wire(ip6), policy) == Lane::realtime);
    }
}

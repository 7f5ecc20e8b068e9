// IpPacket: differential against libtins. Random IPv4/IPv6 packets with UDP/TCP/ICMP bodies are
// built and serialized by libtins; parse() must accept them and agree on addresses, protocol and
// DSCP. Mutated lengths must be rejected.
#include <doctest/doctest.h>
#include <tins/tins.h>

#include <random>
#include <vector>

#include "packet/ip_packet.hpp"
#include "test_wire.hpp"

using porthole::IpAddress;
using porthole::packet::IpPacket;
using porthole::packet::source_is;
using porthole::test::Bytes;
using porthole::test::to_bytes;

namespace {

IpAddress from_tins(const Tins::IPv4Address& a) {
    auto r = IpAddress::parse(a.to_string());
    REQUIRE(r.has_value());
    return *r;
}
IpAddress from_tins(const Tins::IPv6Address& a) {
    auto r = IpAddress::parse(a.to_string());
    REQUIRE(r.has_value());
    return *r;
}

Tins::RawPDU random_payload(std::mt19937& rng) {
    std::vector<uint8_t> p(rng() % 3 == 0 ? 0 : rng() % 600);
    for (auto& x : p)
        x = uint8_t(rng());
    return Tins::RawPDU(p);
}

std::string random_v4_text(std::mt19937& rng) {
    return Tins::IPv4Address(uint32_t(rng())).to_string();
}
std::string random_v6_text(std::mt19937& rng) {
    uint8_t b[16];
    for (auto& x : b)
        x = uint8_t(rng());
    return Tins::IPv6Address(b).to_string();
}

// Appends a transport layer chosen at random; returns the protocol number it should carry.
template <class Ip>
uint8_t add_transport(Ip& ip, std::mt19937& rng, bool v6) {
    switch (rng() % 4) {
        case 0:
            ip /= Tins::UDP(uint16_t(rng()), uint16_t(rng())) / random_payload(rng);
            return 17;
        case 1: {
            Tins::TCP tcp{uint16_t(rng()), uint16_t(rng())};
            tcp.seq(uint32_t(rng()));
            tcp.flags(uint16_t(rng() & 0x3f));
            ip /= tcp / random_payload(rng);
            return 6;
        }
        case 2:
            if (v6) {
                ip /= Tins::ICMPv6(Tins::ICMPv6::ECHO_REQUEST) / random_payload(rng);
                return 58;
            }
            ip /= Tins::ICMP(Tins::ICMP::ECHO_REPLY) / random_payload(rng);
            return 1;
        default:
            ip /= random_payload(rng);
            return 0;  // raw: protocol set below
    }
}

}  // namespace

TEST_CASE("IpPacket: random IPv4 packets from libtins parse and agree") {
    std::mt19937 rng(1);
    for (int i = 0; i < 3000; ++i) {
        Tins::IP ip(random_v4_text(rng), random_v4_text(rng));
        ip.tos(uint8_t(rng()));
        ip.ttl(uint8_t(rng()));
        ip.id(uint16_t(rng()));
        unsigned options = rng() % 4;
        for (unsigned k = 0; k < options; ++k)
            ip.noop();  // IHL > 5 (padded to 4 octets)
        uint8_t proto = add_transport(ip, rng, false);
        if (proto == 0) {
            proto = uint8_t(rng());
            ip.protocol(proto);
        }
        auto wire = to_bytes(ip.serialize());
        auto p = IpPacket::parse(wire);
        REQUIRE(p.has_value());
        CHECK(p->family() == porthole::IpFamily::v4);
        CHECK(p->source() == from_tins(ip.src_addr()));
        CHECK(p->destination() == from_tins(ip.dst_addr()));
        CHECK(p->protocol() == ip.protocol());
        CHECK(p->protocol() == proto);
        CHECK(p->dscp() == ip.tos() >> 2);
        CHECK(p->bytes().data() == wire.data());
        CHECK(p->bytes().size() == wire.size());
        CHECK(source_is(wire, from_tins(ip.src_addr())));
        CHECK_FALSE(source_is(wire, from_tins(ip.src_addr()).plus(1)));
        CHECK_FALSE(source_is(wire, from_tins(ip.dst_addr()).plus(ip.src_addr() == ip.dst_addr())));
    }
}

TEST_CASE("IpPacket: random IPv6 packets from libtins parse and agree") {
    std::mt19937 rng(2);
    for (int i = 0; i < 3000; ++i) {
        Tins::IPv6 ip(random_v6_text(rng), random_v6_text(rng));
        ip.traffic_class(uint8_t(rng()));
        ip.flow_label(uint32_t(rng()) & 0xfffff);
        ip.hop_limit(uint8_t(rng()));
        uint8_t proto = add_transport(ip, rng, true);
        if (proto == 0) {
            proto = uint8_t(rng());
            ip.next_header(proto);
        }
        auto wire = to_bytes(ip.serialize());
        auto p = IpPacket::parse(wire);
        REQUIRE(p.has_value());
        CHECK(p->family() == porthole::IpFamily::v6);
        CHECK(p->source() == from_tins(ip.src_addr()));
        CHECK(p->destination() == from_tins(ip.dst_addr()));
        CHECK(p->protocol() == proto);
        CHECK(p->dscp() == ip.traffic_class() >> 2);
        CHECK(source_is(wire, from_tins(ip.src_addr())));
        CHECK_FALSE(source_is(wire, from_tins(ip.src_addr()).plus(1)));
        // an IPv6 packet never has an IPv4 source, even if the bytes at offset 12 match
        auto v4_at_12 = IpAddress::v4_bytes(std::span<const std::byte, 4>(wire.data() + 12, 4));
        CHECK_FALSE(source_is(wire, v4_at_12));
    }
}

TEST_CASE("IpPacket: wrong lengths, versions and truncation are rejected") {
    std::mt19937 rng(3);
    for (int i = 0; i < 1000; ++i) {
        bool v6 = i % 2;
        Bytes wire;
        if (v6) {
            Tins::IPv6 ip(random_v6_text(rng), random_v6_text(rng));
            ip /= Tins::UDP(1, 2) / random_payload(rng);
            wire = to_bytes(ip.serialize());
        } else {
            Tins::IP ip(random_v4_text(rng), random_v4_text(rng));
            ip /= Tins::TCP(1, 2) / random_payload(rng);
            wire = to_bytes(ip.serialize());
        }
        REQUIRE(IpPacket::parse(wire).has_value());

        // one octet more or less than the length fields say
        Bytes longer = wire;
        longer.push_back(std::byte{0});
        CHECK_FALSE(IpPacket::parse(longer).has_value());
        CHECK_FALSE(IpPacket::parse(std::span(wire).first(wire.size() - 1)).has_value());
        // any cut is rejected
        size_t cut = rng() % wire.size();
        CHECK_FALSE(IpPacket::parse(std::span(wire).first(cut)).has_value());

        // the length field changed
        Bytes bad = wire;
        size_t at = v6 ? 4 : 2;
        uint16_t len = uint16_t(uint16_t(bad[at]) << 8 | uint16_t(bad[at + 1]));
        uint16_t other = uint16_t(len + 1 + rng() % 0xfffe);  // anything but len
        bad[at] = std::byte(other >> 8);
        bad[at + 1] = std::byte(other & 0xff);
        CHECK_FALSE(IpPacket::parse(bad).has_value());

        // another version
        Bytes ver = wire;
        unsigned v = rng() % 16;
        if (v == 4 || v == 6) v = 0;
        ver[0] = std::byte((v << 4) | (unsigned(ver[0]) & 0x0f));
        CHECK_FALSE(IpPacket::parse(ver).has_value());

        // the right version number but the other family's header: v4 as v6 or v6 as v4
        Bytes swapped = wire;
        swapped[0] = std::byte(((v6 ? 4u : 6u) << 4) | (unsigned(swapped[0]) & 0x0f));
        auto p = IpPacket::parse(swapped);
        if (p) {  // possible only if the other family's length field happens to match
            if (v6) {
                unsigned tl = unsigned(swapped[2]) << 8 | unsigned(swapped[3]);
                CHECK(tl == swapped.size());
            } else {
                unsigned pl = unsigned(swapped[4]) << 8 | unsigned(swapped[5]);
                CHECK(pl + 40 == swapped.size());
            }
        }
    }
}

TEST_CASE("IpPacket: IPv4 IHL must be 5..15 and within the packet") {
    Tins::IP ip("10.0.0.1", "10.0.0.2");
    ip /= Tins::UDP(1, 2) / Tins::RawPDU(std::vector<uint8_t>(4, 0xab));
    auto wire = to_bytes(ip.serialize());  // 20 + 8 + 4 = 32 octets
    REQUIRE(wire.size() == 32);
    for (unsigned ihl = 0; ihl < 16; ++ihl) {
        Bytes b = wire;
        b[0] = std::byte(0x40 | ihl);
        CAPTURE(ihl);
        CHECK(IpPacket::parse(b).has_value() == (ihl >= 5 && ihl * 4 <= 32));
    }
    CHECK_FALSE(IpPacket::parse({}).has_value());
    CHECK_FALSE(IpPacket::parse(Bytes(1, std::byte{0x45})).has_value());
    CHECK_FALSE(IpPacket::parse(Bytes(39, std::byte{0x60})).has_value());
}

TEST_CASE("IpPacket: minimal headers without payload") {
    Bytes v4(20);
    v4[0] = std::byte{0x45};
    v4[3] = std::byte{20};
    v4[1] = std::byte{0xb8};  // DSCP 46 (EF), ECN 0
    v4[9] = std::byte{17};
    auto p = IpPacket::parse(v4);
    REQUIRE(p.has_value());
    CHECK(p->dscp() == 46);
    CHECK(p->protocol() == 17);
    CHECK(p->source().is_unspecified());

    Bytes v6(40);
    v6[0] = std::byte{0x6b};  // traffic class 0xb8 across the nibble boundary
    v6[1] = std::byte{0x80};
    v6[6] = std::byte{58};
    auto q = IpPacket::parse(v6);
    REQUIRE(q.has_value());
    CHECK(q->dscp() == 46);
    CHECK(q->protocol() == 58);
    CHECK(q->destination().is_v6());
}

TEST_CASE("source_is: too short or wrong version is never a match") {
    Bytes v4(20);
    v4[0] = std::byte{0x45};
    v4[12] = std::byte{10};
    v4[15] = std::byte{1};
    auto a = *IpAddress::parse("10.0.0.1");
    CHECK(source_is(v4, a));
    CHECK_FALSE(source_is(std::span(v4).first(19), a));
    Bytes v = v4;
    v[0] = std::byte{0x65};
    CHECK_FALSE(source_is(v, a));
    CHECK_FALSE(source_is(v4, *IpAddress::parse("::a00:1")));
}

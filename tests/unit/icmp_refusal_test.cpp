// make_refusal: ICMP / ICMPv6 "administratively prohibited" for packets the tunnel cannot carry:
// addresses swapped, valid checksums, the invoking packet quoted (bounded), and no error for
// errors, multicast, broadcast, unspecified addresses or non-first fragments.
#include <doctest/doctest.h>
#include <tins/tins.h>

#include <algorithm>
#include <vector>

#include "client/icmp_refusal.hpp"
#include "packet/ip_packet.hpp"
#include "packet/offload.hpp"
#include "test_wire.hpp"

using porthole::client::kMaxRefusalSize;
using porthole::client::make_refusal;
using porthole::packet::checksum_add;
using porthole::packet::checksum_fold;
using porthole::packet::IpPacket;
using porthole::test::A;
using porthole::test::Bytes;

namespace {

Bytes wire(Tins::PDU& pdu) {
    auto v = pdu.serialize();
    return Bytes(reinterpret_cast<const std::byte*>(v.data()),
                 reinterpret_cast<const std::byte*>(v.data() + v.size()));
}

Bytes refuse(const Bytes& p) {
    Bytes out(kMaxRefusalSize);
    out.resize(make_refusal(p, out));
    return out;
}

Bytes udp6(const char* src, const char* dst, size_t payload = 10) {
    auto pdu = Tins::IPv6(dst, src) / Tins::UDP(53, 40000) /
               Tins::RawPDU(std::vector<uint8_t>(payload, 0x42));
    return wire(pdu);
}

Bytes tcp4(const char* src, const char* dst, size_t payload = 0) {
    Tins::TCP tcp(443, 40000);
    tcp.set_flag(Tins::TCP::SYN, 1);
    auto pdu = Tins::IP(dst, src) / tcp / Tins::RawPDU(std::vector<uint8_t>(payload, 0x42));
    return wire(pdu);
}

}  // namespace

TEST_CASE("make_refusal: IPv6 UDP gets ICMPv6 1/1 from its destination, checksum valid") {
    auto p = udp6("fd00:18:1::2", "fd00:18:3::2");
    auto r = refuse(p);
    REQUIRE(r.size() == 48 + p.size());
    auto ip = IpPacket::parse(r);
    REQUIRE(ip.has_value());
    CHECK(ip->source() == A("fd00:18:3::2"));
    CHECK(ip->destination() == A("fd00:18:1::2"));
    CHECK(ip->protocol() == 58);
    CHECK(uint8_t(r[40]) == 1);
    CHECK(uint8_t(r[41]) == 1);
    CHECK(Bytes(r.begin() + 48, r.end()) == p);  // the whole packet quoted
    // pseudo-header + ICMPv6 message sums to 0xffff
    Bytes tail(8);
    size_t len = r.size() - 40;
    tail[2] = std::byte(len >> 8);
    tail[3] = std::byte(len & 0xff);
    tail[7] = std::byte{58};
    uint32_t sum = checksum_add({r.data() + 8, 32});
    sum = checksum_add(tail, sum);
    sum = checksum_add({r.data() + 40, len}, sum);
    CHECK(checksum_fold(sum) == 0xffff);
    // libtins reads it as what it is
    Tins::IPv6 parsed(reinterpret_cast<const uint8_t*>(r.data()), uint32_t(r.size()));
    auto* icmp = parsed.find_pdu<Tins::ICMPv6>();
    REQUIRE(icmp != nullptr);
    CHECK(icmp->type() == Tins::ICMPv6::DEST_UNREACHABLE);
    CHECK(icmp->code() == 1);
}

TEST_CASE("make_refusal: IPv4 TCP SYN gets ICMP 3/13, header and ICMP checksums valid") {
    auto p = tcp4("198.18.1.2", "198.18.3.2");
    auto r = refuse(p);
    REQUIRE(r.size() == 28 + p.size());
    auto ip = IpPacket::parse(r);
    REQUIRE(ip.has_value());
    CHECK(ip->source() == A("198.18.3.2"));
    CHECK(ip->destination() == A("198.18.1.2"));
    CHECK(ip->protocol() == 1);
    CHECK(checksum_fold(checksum_add({r.data(), 20})) == 0xffff);
    CHECK(uint8_t(r[20]) == 3);
    CHECK(uint8_t(r[21]) == 13);
    CHECK(checksum_fold(checksum_add({r.data() + 20, r.size() - 20})) == 0xffff);
    CHECK(Bytes(r.begin() + 28, r.end()) == p);
}

TEST_CASE("make_refusal: large packets are quoted only up to 1280 (IPv6) / 576 (IPv4) octets") {
    auto r6 = refuse(udp6("fd00::2", "2001:db8::1", 3000));
    CHECK(r6.size() == 1280);
    CHECK(IpPacket::parse(r6).has_value());
    auto r4 = refuse(tcp4("10.0.0.2", "192.0.2.1", 1400));
    CHECK(r4.size() == 576);
    CHECK(IpPacket::parse(r4).has_value());
}

TEST_CASE("make_refusal: no error where RFC 1122 / RFC 4443 forbid one") {
    // to multicast / from unspecified
    CHECK(refuse(udp6("fd00::2", "ff02::2")).empty());
    CHECK(refuse(udp6("::", "2001:db8::1")).empty());
    CHECK(refuse(tcp4("10.0.0.2", "224.0.0.251")).empty());
    CHECK(refuse(tcp4("10.0.0.2", "255.255.255.255")).empty());
    auto unspecified = tcp4("10.0.0.2", "192.0.2.1");
    std::fill(unspecified.begin() + 12, unspecified.begin() + 16, std::byte{0});
    CHECK(refuse(unspecified).empty());
    // ICMPv6 errors are not answered; echo requests (and router solicitations to a
    // unicast address) are
    auto err6 = Tins::IPv6("2001:db8::1", "fd00::2") / Tins::ICMPv6(Tins::ICMPv6::TIME_EXCEEDED);
    CHECK(refuse(wire(err6)).empty());
    auto echo6 = Tins::IPv6("2001:db8::1", "fd00::2") / Tins::ICMPv6(Tins::ICMPv6::ECHO_REQUEST);
    CHECK_FALSE(refuse(wire(echo6)).empty());
    auto err4 = Tins::IP("192.0.2.1", "10.0.0.2") / Tins::ICMP(Tins::ICMP::DEST_UNREACHABLE);
    CHECK(refuse(wire(err4)).empty());
    auto echo4 = Tins::IP("192.0.2.1", "10.0.0.2") / Tins::ICMP(Tins::ICMP::ECHO_REQUEST);
    CHECK_FALSE(refuse(wire(echo4)).empty());
    // a non-first IPv4 fragment
    auto frag = Tins::IP("192.0.2.1", "10.0.0.2") / Tins::RawPDU(std::vector<uint8_t>(16, 1));
    frag.fragment_offset(8);
    CHECK(refuse(wire(frag)).empty());
    // not an IP packet, or a too small output buffer
    CHECK(refuse(Bytes(3, std::byte{0x45})).empty());
    Bytes small(100);
    CHECK(make_refusal(udp6("fd00::2", "2001:db8::1"), small) == 0);
}

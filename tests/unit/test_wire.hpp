// Scaffolding shared by the unit tests: address literals, hand-built IP packets and envelopes as
// they appear on the wire, and a decoder for the control messages a session wrote.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <variant>
#include <vector>

#include "base/ip_address.hpp"
#include "packet/control_message.hpp"
#include "packet/envelope.hpp"

namespace porthole::test {

using Bytes = std::vector<std::byte>;

// Address and prefix literals; a typo in a test fails the test instead of crashing it.
inline IpAddress A(const char* text) {
    auto a = IpAddress::parse(text);
    REQUIRE_MESSAGE(a.has_value(), text);
    return *a;
}
inline Prefix P(const char* text) {
    auto p = Prefix::parse(text);
    REQUIRE_MESSAGE(p.has_value(), text);
    return *p;
}

// libtins serializes to uint8_t; the code under test takes std::byte.
inline Bytes to_bytes(const std::vector<uint8_t>& v) {
    Bytes b(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        b[i] = std::byte(v[i]);
    return b;
}

// The IP header's size for packets from src: 20 (IPv4 without options) or 40 (IPv6).
inline size_t ip_header_size(const IpAddress& src) {
    return src.is_v4() ? 20 : 40;
}

// Writes version, length and addresses into p, which must be a packet of exactly
// ip_header_size(src) + payload bytes; every other header field keeps whatever p holds.
inline void write_ip_header(Bytes& p, const IpAddress& src, const IpAddress& dst, size_t payload) {
    const size_t total = ip_header_size(src) + payload;
    auto put = [&](size_t at, const IpAddress& a) {
        auto b = a.bytes();
        std::transform(b.begin(), b.end(), p.begin() + long(at),
                       [](uint8_t x) { return std::byte(x); });
    };
    if (src.is_v4()) {
        p[0] = std::byte{0x45};
        p[2] = std::byte(total >> 8);
        p[3] = std::byte(total & 0xff);
        put(12, src);
        put(16, dst);
    } else {
        p[0] = std::byte{0x60};
        p[4] = std::byte(payload >> 8);
        p[5] = std::byte(payload & 0xff);
        put(8, src);
        put(24, dst);
    }
}

// A UDP packet (protocol 17 but no UDP header) with `payload` bytes of 0x5a after the IP header.
inline Bytes ip_packet(const IpAddress& src, const IpAddress& dst, size_t payload = 8) {
    Bytes p(ip_header_size(src) + payload, std::byte{0x5a});
    write_ip_header(p, src, dst, payload);
    p[src.is_v4() ? 9 : 6] = std::byte{17};
    return p;
}

inline Bytes envelope(uint8_t type, const Bytes& payload) {
    Bytes w(packet::kHeaderSize + payload.size());
    packet::write_header(w.data(), type, payload.size());
    if (!payload.empty())
        std::memcpy(w.data() + packet::kHeaderSize, payload.data(), payload.size());
    return w;
}
inline Bytes ip_envelope(const IpAddress& src, const IpAddress& dst) {
    return envelope(uint8_t(packet::EnvelopeType::ip_packet), ip_packet(src, dst));
}
inline Bytes control(const packet::ControlMessage& m) {
    Bytes w;
    packet::encode(m, w);
    return w;
}
inline Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

// The assignment most session tests configure: IPv4 only, MTU 1400, keepalive every 10 s.
inline packet::ConfigAssign v4_assign() {
    packet::ConfigAssign a;
    a.ipv4 = P("198.18.0.2/24");
    a.mtu = 1400;
    a.keepalive_s = 10;
    return a;
}

// Every control message in a to_peer buffer (which must hold only whole control envelopes).
inline std::vector<packet::ControlMessage> controls(const Bytes& to_peer) {
    std::vector<packet::ControlMessage> out;
    packet::EnvelopeDecoder d;
    auto err = d.feed(to_peer, [&](const packet::Envelope& e) {
        REQUIRE(packet::is_control_type(e.type));
        auto m = packet::decode(e.type, e.payload);
        REQUIRE(m.has_value());
        out.push_back(*m);
    });
    REQUIRE(err == packet::DecodeError::none);
    REQUIRE(d.buffered() == 0);
    return out;
}

// A session's output (ClientOutput or ServerOutput): the session closed itself for `reason` and
// told the peer so in a single CLOSE, and nothing else.
template <class Output>
void require_closed_with(const Output& out, packet::CloseReason reason) {
    REQUIRE(out.closed.has_value());
    CHECK(out.closed->reason == reason);
    CHECK_FALSE(out.closed_by_peer);
    auto msgs = controls(out.to_peer);
    REQUIRE(msgs.size() == 1);
    CHECK(std::get<packet::Close>(msgs[0]).reason == reason);
}

}  // namespace porthole::test

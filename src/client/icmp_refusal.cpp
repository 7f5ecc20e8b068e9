#include "client/icmp_refusal.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "packet/ip_packet.hpp"
#include "packet/offload.hpp"

namespace porthole::client {
namespace {

constexpr size_t kMaxRefusal4 = 576;
constexpr uint8_t kIcmp = 1, kIcmp6 = 58;

void put16(std::byte* p, uint16_t v) {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v & 0xff);
}

bool v4_special(const std::byte* a) {
    auto b0 = uint8_t(a[0]);
    bool zero = a[0] == std::byte{0} && a[1] == std::byte{0} && a[2] == std::byte{0} &&
                a[3] == std::byte{0};
    bool broadcast = a[0] == std::byte{0xff} && a[1] == std::byte{0xff} &&
                     a[2] == std::byte{0xff} && a[3] == std::byte{0xff};
    return zero || broadcast || (b0 >= 224 && b0 <= 239);
}

bool v6_special(const std::byte* a) {
    if (a[0] == std::byte{0xff}) return true;  // multicast
    return std::all_of(a, a + 16, [](std::byte b) { return b == std::byte{0}; });
}

size_t refuse4(std::span<const std::byte> p, std::span<std::byte> out) {
    size_t ihl = size_t(uint8_t(p[0]) & 0x0f) * 4;
    uint16_t frag = uint16_t(uint8_t(p[6]) << 8 | uint8_t(p[7]));
    if ((frag & 0x1fff) != 0) return 0;  // not the first fragment
    if (v4_special(p.data() + 12) || v4_special(p.data() + 16)) return 0;
    if (uint8_t(p[9]) == kIcmp) {
        if (p.size() < ihl + 1) return 0;
        auto type = uint8_t(p[ihl]);
        if (type != 8 && type != 13 && type != 15 && type != 17) return 0;  // only to queries
    }
    size_t quoted = std::min(p.size(), kMaxRefusal4 - 28);
    size_t total = 28 + quoted;
    std::byte* o = out.data();
    std::memset(o, 0, 28);
    o[0] = std::byte{0x45};
    put16(o + 2, uint16_t(total));
    o[8] = std::byte{64};  // TTL
    o[9] = std::byte{kIcmp};
    std::memcpy(o + 12, p.data() + 16, 4);  // from the packet's destination
    std::memcpy(o + 16, p.data() + 12, 4);  // to its source
    put16(o + 10, uint16_t(~packet::checksum_fold(packet::checksum_add({o, 20}))));
    o[20] = std::byte{3};   // destination unreachable
    o[21] = std::byte{13};  // communication administratively prohibited
    std::memcpy(o + 28, p.data(), quoted);
    put16(o + 22, uint16_t(~packet::checksum_fold(packet::checksum_add({o + 20, 8 + quoted}))));
    return total;
}

size_t refuse6(std::span<const std::byte> p, std::span<std::byte> out) {
    if (v6_special(p.data() + 8) || v6_special(p.data() + 24)) return 0;
    if (uint8_t(p[6]) == kIcmp6) {
        if (p.size() < 41) return 0;
        if (uint8_t(p[40]) < 128) return 0;  // an ICMPv6 error
    }
    size_t quoted = std::min(p.size(), kMaxRefusalSize - 48);
    size_t total = 48 + quoted;
    std::byte* o = out.data();
    std::memset(o, 0, 48);
    o[0] = std::byte{0x60};
    put16(o + 4, uint16_t(8 + quoted));
    o[6] = std::byte{kIcmp6};
    o[7] = std::byte{64};                   // hop limit
    std::memcpy(o + 8, p.data() + 24, 16);  // from the packet's destination
    std::memcpy(o + 24, p.data() + 8, 16);  // to its source
    o[40] = std::byte{1};                   // destination unreachable
    o[41] = std::byte{1};  // communication with destination administratively prohibited
    std::memcpy(o + 48, p.data(), quoted);
    // Pseudo-header: source, destination, upper-layer length, next header.
    std::byte tail[8] = {};
    put16(tail + 2, uint16_t(8 + quoted));
    tail[7] = std::byte{kIcmp6};
    uint32_t sum = packet::checksum_add({o + 8, 32});
    sum = packet::checksum_add({tail, 8}, sum);
    sum = packet::checksum_add({o + 40, 8 + quoted}, sum);
    put16(o + 42, uint16_t(~packet::checksum_fold(sum)));
    return total;
}

}  // namespace

size_t make_refusal(std::span<const std::byte> packet, std::span<std::byte> out) {
    if (out.size() < kMaxRefusalSize) return 0;
    auto ip = packet::IpPacket::parse(packet);
    if (!ip) return 0;
    return ip->family() == IpFamily::v4 ? refuse4(packet, out) : refuse6(packet, out);
}

}  // namespace porthole::client

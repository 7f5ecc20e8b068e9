#include "packet/ip_packet.hpp"

#include <cstring>

namespace porthole::packet {
namespace {
uint16_t be16(const std::byte* p) {
    return uint16_t(uint16_t(p[0]) << 8 | uint16_t(p[1]));
}
}  // namespace

std::optional<IpPacket> IpPacket::parse(std::span<const std::byte> b) {
    if (b.empty()) return std::nullopt;
    unsigned version = unsigned(b[0]) >> 4;
    if (version == 4) {
        if (b.size() < 20) return std::nullopt;
        unsigned ihl = (unsigned(b[0]) & 0x0f) * 4;
        if (ihl < 20 || ihl > b.size()) return std::nullopt;
        if (be16(&b[2]) != b.size()) return std::nullopt;
        return IpPacket(IpFamily::v4, b);
    }
    if (version == 6) {
        if (b.size() < 40) return std::nullopt;
        if (size_t(be16(&b[4])) + 40 != b.size()) return std::nullopt;
        return IpPacket(IpFamily::v6, b);
    }
    return std::nullopt;
}

IpAddress IpPacket::source() const {
    return family_ == IpFamily::v4
               ? IpAddress::v4_bytes(std::span<const std::byte, 4>(bytes_.data() + 12, 4))
               : IpAddress::v6_bytes(std::span<const std::byte, 16>(bytes_.data() + 8, 16));
}

IpAddress IpPacket::destination() const {
    return family_ == IpFamily::v4
               ? IpAddress::v4_bytes(std::span<const std::byte, 4>(bytes_.data() + 16, 4))
               : IpAddress::v6_bytes(std::span<const std::byte, 16>(bytes_.data() + 24, 16));
}

uint8_t IpPacket::protocol() const {
    return family_ == IpFamily::v4 ? uint8_t(bytes_[9]) : uint8_t(bytes_[6]);
}

uint8_t IpPacket::dscp() const {
    if (family_ == IpFamily::v4) return uint8_t(bytes_[1]) >> 2;
    unsigned tc = (unsigned(bytes_[0]) & 0x0f) << 4 | unsigned(bytes_[1]) >> 4;
    return uint8_t(tc >> 2);
}

bool source_is(std::span<const std::byte> p, const IpAddress& addr) {
    auto want = addr.bytes();
    if (addr.is_v4()) {
        return p.size() >= 20 && (unsigned(p[0]) >> 4) == 4 &&
               std::memcmp(p.data() + 12, want.data(), 4) == 0;
    }
    return p.size() >= 40 && (unsigned(p[0]) >> 4) == 6 &&
           std::memcmp(p.data() + 8, want.data(), 16) == 0;
}

}  // namespace porthole::packet

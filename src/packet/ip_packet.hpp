// IpPacket: a validated, read-only view of an IPv4 or IPv6 header over bytes owned elsewhere.
// Pure code; used to check envelope payloads, to route TUN packets to sessions by destination and
// to enforce anti-spoofing by source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/ip_address.hpp"

namespace porthole::packet {

class IpPacket {
public:
    // Accepts exactly one whole packet: version 4 (IHL >= 5, total length == size) or 6
    // (40-byte header, 40 + payload length == size). Anything else: nullopt.
    static std::optional<IpPacket> parse(std::span<const std::byte> bytes);

    [[nodiscard]] IpFamily family() const { return family_; }
    [[nodiscard]] IpAddress source() const;
    [[nodiscard]] IpAddress destination() const;
    // IPv4 protocol, or the IPv6 Next Header field (extension headers are not walked).
    [[nodiscard]] uint8_t protocol() const;
    [[nodiscard]] uint8_t dscp() const;
    [[nodiscard]] std::span<const std::byte> bytes() const { return bytes_; }

private:
    IpPacket(IpFamily f, std::span<const std::byte> b) : family_(f), bytes_(b) {}
    IpFamily family_;
    std::span<const std::byte> bytes_;
};

// Fast checks on raw bytes without building a view (used on the TUN read path).
[[nodiscard]] bool source_is(std::span<const std::byte> packet, const IpAddress& addr);

}  // namespace porthole::packet

// Probe packets for porthole-uesim: hand-built IPv4 + ICMP echo packets (correct header and ICMP
// checksums) that travel inside the tunnel, and the parser for what comes back. Pure code.
//
// Every echo the simulator sends carries a 24-octet payload that identifies it, so a reply can be
// attributed to the session and the purpose it was sent for, whatever path it took:
//   "PHUESIM1" | index (u32) | kind (u8) | 3 zero octets | seq (u32) | sender's index echo (u32)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/ip_address.hpp"

namespace porthole::sim {

enum class ProbeKind : uint8_t {
    probe = 1,  // legitimate: source = the session's own address
    spoof = 2,  // forged source: must be dropped by the concentrator
    ue2ue = 3,  // to another simulated UE's inner address
};

inline constexpr size_t kIpv4HeaderSize = 20;
inline constexpr size_t kIcmpHeaderSize = 8;
inline constexpr size_t kProbePayloadSize = 24;
inline constexpr size_t kProbePacketSize = kIpv4HeaderSize + kIcmpHeaderSize + kProbePayloadSize;

struct ProbeTag {
    uint32_t index = 0;  // the sending session
    ProbeKind kind = ProbeKind::probe;
    uint32_t seq = 0;
};

struct EchoInfo {
    bool reply = false;  // echo reply (type 0) or request (type 8)
    IpAddress source, destination;
    uint16_t ident = 0, seq = 0;
    std::optional<ProbeTag> tag;  // set when the payload is one of ours
};

// The Internet checksum (RFC 1071) over data, as a value to store big-endian.
[[nodiscard]] uint16_t internet_checksum(std::span<const std::byte> data);

// Builds an IPv4 ICMP echo request (reply = false) or reply into out (kProbePacketSize octets).
// src/dst must be IPv4. ip_id is the IPv4 identification field.
void build_echo(std::span<std::byte, kProbePacketSize> out, const IpAddress& src,
                const IpAddress& dst, bool reply, uint16_t ident, uint16_t seq, uint16_t ip_id,
                const ProbeTag& tag);

// Builds a reply to a parsed echo request: swaps addresses, keeps ident, seq and payload.
// Returns the packet size written (0 if the request does not fit out).
size_t build_echo_reply(std::span<std::byte> out, std::span<const std::byte> request);

// Parses an IPv4 ICMP echo request/reply with valid IPv4 and ICMP checksums; nullopt otherwise.
[[nodiscard]] std::optional<EchoInfo> parse_echo(std::span<const std::byte> packet);

}  // namespace porthole::sim

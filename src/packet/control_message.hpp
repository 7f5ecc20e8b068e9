// ControlMessage: porthole's control envelopes (configuration request/assignment, keep-alive,
// close) and their TLV encoding. Pure code. The wire layout is in docs/protocol.md.
//
// Payload = sequence of attributes: Type(1) | Length(2, big-endian, value only) | Value.
// Unknown attribute types are skipped by length, so either side may add attributes later.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ip_address.hpp"
#include "base/result.hpp"
#include "packet/envelope.hpp"

namespace porthole::packet {

inline constexpr uint8_t kProtocolVersion = 1;

enum class Attr : uint8_t {
    protocol_version = 0x01,    // u8
    capabilities = 0x02,        // u32 bit set (Capability)
    credential = 0x03,          // opaque, optional (never logged)
    session_token = 0x04,       // opaque, <= 64 octets
    ipv4_address = 0x10,        // 4 octets address + 1 octet prefix length
    ipv6_address = 0x11,        // 16 octets address + 1 octet prefix length
    route = 0x12,               // 4 or 16 octets network + 1 octet prefix length; repeatable
    dns_server = 0x13,          // 4 or 16 octets; repeatable
    mtu = 0x14,                 // u16
    keepalive_interval = 0x15,  // u16 seconds
    dns_search = 0x16,          // UTF-8 domain name (LDH labels), <= 253 octets; repeatable
    timestamp = 0x20,           // u64 microseconds of the sender's clock (keep-alive)
    reason_code = 0x30,         // u16 (CloseReason)
    reason_text = 0x31,         // UTF-8, <= 512 octets
};

enum Capability : uint32_t {
    cap_ipv4 = 1u << 0,
    cap_ipv6 = 1u << 1,
    cap_resume = 1u << 2,   // understands session tokens
    cap_offload = 1u << 3,  // sends and accepts type 0x90 (IP packet + offload trailer)
};

enum class CloseReason : uint16_t {
    normal = 0,    // the sender's user asked for it
    shutdown = 1,  // the concentrator is stopping
    auth_failed = 2,
    pool_exhausted = 3,
    protocol_error = 4,
    peer_dead = 5,  // keep-alives unanswered
    replaced = 6,   // a newer connection took over this identity
    admin = 7,      // operator kicked the session
    unsupported_version = 8,
    config_timeout = 9,
    server_full = 10,
};

[[nodiscard]] std::string_view to_string(CloseReason r);

inline constexpr size_t kMaxTokenSize = 64;
inline constexpr size_t kMaxReasonText = 512;
inline constexpr size_t kMaxDomainName = 253;
inline constexpr size_t kMaxDnsSearch = 16;  // search domains in one assignment

// A search domain the UE may write into its resolver configuration: 1..253 octets of dot-separated
// labels of 1..63 letters, digits, '-' or '_', with an optional final dot. Anything else (spaces,
// control characters, empty labels) is refused, so a domain can never break a resolv.conf line.
[[nodiscard]] bool valid_domain_name(std::string_view name);

struct ConfigRequest {
    uint8_t version = kProtocolVersion;
    uint32_t capabilities = cap_ipv4 | cap_ipv6 | cap_resume;
    std::vector<std::byte> credential;
    std::vector<std::byte> session_token;
    friend bool operator==(const ConfigRequest&, const ConfigRequest&) = default;
};

struct ConfigAssign {
    std::optional<Prefix> ipv4;  // the UE's address, with the pool's prefix length
    std::optional<Prefix> ipv6;
    std::vector<Prefix> routes;  // empty: full tunnel
    std::vector<IpAddress> dns;
    std::vector<std::string> dns_search;  // search domains, in order (valid_domain_name)
    uint16_t mtu = 1400;
    uint16_t keepalive_s = 20;
    std::vector<std::byte> session_token;
    uint32_t capabilities = 0;  // what the concentrator agreed to use with this UE
    friend bool operator==(const ConfigAssign&, const ConfigAssign&) = default;
};

struct Keepalive {
    bool reply = false;
    uint64_t timestamp_us = 0;  // a request's own clock; a reply echoes the request's value
    friend bool operator==(const Keepalive&, const Keepalive&) = default;
};

struct Close {
    CloseReason reason = CloseReason::normal;
    std::string text;
    friend bool operator==(const Close&, const Close&) = default;
};

using ControlMessage = std::variant<ConfigRequest, ConfigAssign, Keepalive, Close>;

[[nodiscard]] bool is_control_type(uint8_t envelope_type);
// "reason" or "reason: text", with the peer's text cut to printable ASCII (it is untrusted).
[[nodiscard]] std::string describe(const Close& close);

// Appends the whole envelope (header included) to out.
void encode(const ControlMessage& msg, std::vector<std::byte>& out);
// Decodes the payload of a control envelope of the given type. Errors say which attribute.
Result<ControlMessage> decode(uint8_t envelope_type, std::span<const std::byte> payload);

}  // namespace porthole::packet

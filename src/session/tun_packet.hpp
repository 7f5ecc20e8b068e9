// TunPacket: one IP packet a session core hands to its shell for the TUN device: a view into the
// receive buffer plus the offload metadata it arrived with (plain for type 1 envelopes).
#pragma once

#include <cstddef>
#include <span>

#include "packet/envelope.hpp"
#include "packet/offload.hpp"

namespace porthole::session {

struct TunPacket {
    std::span<const std::byte> bytes;
    packet::OffloadHeader offload{};

    // Span-like access to the packet's bytes.
    [[nodiscard]] size_t size() const { return bytes.size(); }
    [[nodiscard]] const std::byte* data() const { return bytes.data(); }
    [[nodiscard]] auto begin() const { return bytes.begin(); }
    [[nodiscard]] auto end() const { return bytes.end(); }
    operator std::span<const std::byte>() const { return bytes; }  // NOLINT
};

// The IP packet and metadata of a type 1 or type 0x90 envelope (already validated by the
// decoder).
inline TunPacket tun_packet_of(uint8_t envelope_type, std::span<const std::byte> payload) {
    if (envelope_type != uint8_t(packet::EnvelopeType::ip_packet_offload)) return {payload, {}};
    auto pkt = payload.first(payload.size() - packet::kOffloadTrailerSize);
    return {pkt, packet::read_trailer(pkt.data() + pkt.size())};
}

inline bool is_ip_envelope(uint8_t t) {
    return t == uint8_t(packet::EnvelopeType::ip_packet) ||
           t == uint8_t(packet::EnvelopeType::ip_packet_offload);
}

}  // namespace porthole::session

#include "packet/envelope.hpp"

#include "packet/ip_packet.hpp"
#include "packet/offload.hpp"

namespace porthole::packet {

std::string_view to_string(DecodeError e) {
    switch (e) {
        case DecodeError::none:
            return "no error";
        case DecodeError::length_too_small:
            return "envelope length too small";
        case DecodeError::length_too_large:
            return "envelope length above the maximum";
        case DecodeError::not_ip_packet:
            return "IP envelope does not carry a valid IP packet";
        case DecodeError::bad_offload:
            return "offload envelope with inconsistent metadata";
    }
    return "unknown decode error";
}

EnvelopeDecoder::EnvelopeDecoder(size_t max_envelope)
    : max_(std::min(std::max(max_envelope, kMinIpEnvelopeSize), kMaxEnvelopeSize)) {}

DecodeError EnvelopeDecoder::check_header(const std::byte* h, size_t& total) {
    total = size_t(h[1]) << 8 | size_t(h[2]);
    uint8_t type = uint8_t(h[0]);
    if (total < kHeaderSize) return DecodeError::length_too_small;
    if (type == uint8_t(EnvelopeType::ip_packet) && total < kMinIpEnvelopeSize)
        return DecodeError::length_too_small;
    if (total > max_) return DecodeError::length_too_large;
    return DecodeError::none;
}

DecodeError EnvelopeDecoder::check_envelope(uint8_t type, std::span<const std::byte> payload) {
    if (type == uint8_t(EnvelopeType::ip_packet) && !IpPacket::parse(payload))
        return DecodeError::not_ip_packet;
    if (type == uint8_t(EnvelopeType::ip_packet_offload)) {
        if (payload.size() <= kOffloadTrailerSize) return DecodeError::not_ip_packet;
        auto pkt = payload.first(payload.size() - kOffloadTrailerSize);
        if (!IpPacket::parse(pkt)) return DecodeError::not_ip_packet;
        if (!offload_consistent(read_trailer(pkt.data() + pkt.size()), pkt))
            return DecodeError::bad_offload;
    }
    return DecodeError::none;
}

}  // namespace porthole::packet

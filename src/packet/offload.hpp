// Offload: carrying TUN offload metadata (virtio_net_hdr semantics) across the tunnel, and the
// software fallbacks for a peer or device without offloads. Pure code.
//
// With offloads on, the TUN device hands us (and takes from us) TCP/UDP "super-packets" of up to
// 64 KiB with one header, plus packets whose transport checksum is left for later (partial).
// Between two porthole ends that both advertise cap_offload such a packet travels whole, in an
// envelope of type 0x90 whose payload is the IP packet followed by a 10-octet trailer:
//
//   IP packet | flags(1) | gso_type(1) | hdr_len(2) | gso_size(2) | csum_start(2) | csum_offset(2)
//
// (a trailer, so that the packet can be read from the TUN device straight into the send queue and
// written from the receive buffer straight to the TUN device: no copy either way). Packets without
// metadata always travel as plain type 1 envelopes. Toward a peer or device without offloads,
// super-packets are cut into MTU-sized segments and partial checksums are completed here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "packet/envelope.hpp"

namespace porthole::packet {

struct OffloadHeader {
    static constexpr uint8_t kNeedsCsum = 1;  // transport checksum is partial (see csum_*)
    static constexpr uint8_t kDataValid = 2;  // checksum already verified
    static constexpr uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoTcpV6 = 4, kGsoUdpL4 = 5;
    static constexpr uint8_t kGsoEcn = 0x80;

    uint8_t flags = 0;
    uint8_t gso_type = kGsoNone;
    uint16_t hdr_len = 0;
    uint16_t gso_size = 0;
    uint16_t csum_start = 0;
    uint16_t csum_offset = 0;

    // Nothing to carry: the packet is complete as it is.
    [[nodiscard]] bool plain() const {
        return (flags & kNeedsCsum) == 0 && (gso_type & ~kGsoEcn) == kGsoNone;
    }
    [[nodiscard]] bool gso() const { return (gso_type & ~kGsoEcn) != kGsoNone; }
    friend bool operator==(const OffloadHeader&, const OffloadHeader&) = default;
};

inline constexpr size_t kOffloadTrailerSize = 10;
// Super-packets are capped on our TUN devices (IFLA_GSO_MAX_SIZE) so that one always fits an
// envelope with its trailer: 65000 + 3 + 10 <= 65535.
inline constexpr uint32_t kTunGsoMaxSize = 65000;

void write_trailer(const OffloadHeader& h, std::byte* out);
[[nodiscard]] OffloadHeader read_trailer(const std::byte* in);

// Frames the IP packet of `size` octets that sits at at + kHeaderSize: a type 1 envelope when h is
// plain, else type 0x90 with h as the trailer after the packet. Returns the envelope's size.
inline size_t frame_packet(std::byte* at, const OffloadHeader& h, size_t size) {
    if (h.plain()) {
        write_header(at, uint8_t(EnvelopeType::ip_packet), size);
        return kHeaderSize + size;
    }
    write_trailer(h, at + kHeaderSize + size);
    write_header(at, uint8_t(EnvelopeType::ip_packet_offload), size + kOffloadTrailerSize);
    return kHeaderSize + size + kOffloadTrailerSize;
}

// Checks that h describes packet (a validated IP packet): a known GSO type matching the
// packet's family and transport protocol, segment size and checksum positions inside it.
[[nodiscard]] bool offload_consistent(const OffloadHeader& h, std::span<const std::byte> packet);

// Completes a partial transport checksum in place (kNeedsCsum): the ones'-complement sum from
// csum_start to the end, folded into the field at csum_start + csum_offset.
void complete_checksum(const OffloadHeader& h, std::span<std::byte> packet);

// RFC 1071 ones'-complement sum (not yet inverted), continuing from `sum`.
[[nodiscard]] uint32_t checksum_add(std::span<const std::byte> data, uint32_t sum = 0);
[[nodiscard]] uint16_t checksum_fold(uint32_t sum);

// Cuts a TCP or UDP super-packet into segments of at most h.gso_size payload octets, each a
// complete IP packet with correct lengths, IPv4 IDs and header checksum, TCP sequence numbers and
// flags, and transport checksums. Each segment is built in `scratch` (at least
// headers + gso_size octets) and handed to emit(std::span<const std::byte>). Returns false
// (emitting nothing) when the packet cannot be segmented (inconsistent metadata).
template <class Emit>
bool segment(const OffloadHeader& h, std::span<const std::byte> packet,
             std::span<std::byte> scratch, Emit&& emit);

// Cuts a TCP or UDP super-packet into smaller super-packets ("pieces") of at most `segments`
// segments each, so that a slow path never has a whole 64 KiB packet ahead of a voice packet in
// the byte stream, while each piece still travels as one envelope and leaves the segmentation
// to the receiving TUN device. Every piece is a valid packet with its own lengths, IPv4 ID and
// header checksum, TCP sequence number and flags; its transport checksum is partial (seeded with
// the piece's pseudo-header, as the kernel hands super-packets over) and its metadata keeps
// gso_type and gso_size. A piece of a single segment is completed instead and has plain metadata.
// For each piece: out = place(meta, size) returns where to build it (size octets; nullptr stops
// the split), then done(meta, size). Returns false when the packet cannot be cut (inconsistent
// metadata) or place() refused a piece; the pieces done until then stay done.
template <class Place, class Done>
bool split(const OffloadHeader& h, std::span<const std::byte> packet, size_t segments,
           Place&& place, Done&& done);

namespace detail {
struct SegmentPlan {
    size_t l3_len = 0, l4_len = 0, payload = 0;
    bool v4 = true, tcp = true;
};
bool plan_segments(const OffloadHeader& h, std::span<const std::byte> packet, SegmentPlan& plan);
// Writes segment i (payload [off, off + n)) into out; returns its size. partial: the transport
// checksum field gets the pseudo-header sum only (to be completed by a device), else the full
// checksum.
size_t build_segment(const SegmentPlan& p, std::span<const std::byte> packet, size_t index,
                     size_t off, size_t n, bool last, std::byte* out, bool partial = false);
// The metadata of a piece of `n` payload octets cut from a super-packet described by h.
OffloadHeader piece_header(const OffloadHeader& h, const SegmentPlan& p, size_t n, bool first);
}  // namespace detail

template <class Emit>
bool segment(const OffloadHeader& h, std::span<const std::byte> packet,
             std::span<std::byte> scratch, Emit&& emit) {
    detail::SegmentPlan p;
    if (!detail::plan_segments(h, packet, p)) return false;
    size_t hdrs = p.l3_len + p.l4_len;
    size_t mss = h.gso_size;
    if (scratch.size() < hdrs + mss) return false;
    size_t count = p.payload == 0 ? 1 : (p.payload + mss - 1) / mss;
    for (size_t i = 0; i < count; ++i) {
        size_t off = i * mss;
        size_t n = off + mss <= p.payload ? mss : p.payload - off;
        size_t size = detail::build_segment(p, packet, i, off, n, i + 1 == count, scratch.data());
        emit(std::span<const std::byte>(scratch.data(), size));
    }
    return true;
}

template <class Place, class Done>
bool split(const OffloadHeader& h, std::span<const std::byte> packet, size_t segments,
           Place&& place, Done&& done) {
    detail::SegmentPlan p;
    if (!detail::plan_segments(h, packet, p) || segments == 0) return false;
    size_t hdrs = p.l3_len + p.l4_len;
    size_t mss = h.gso_size, step = segments * mss;
    size_t count = p.payload == 0 ? 1 : (p.payload + step - 1) / step;
    for (size_t i = 0; i < count; ++i) {
        size_t off = i * step;
        size_t n = off + step <= p.payload ? step : p.payload - off;
        OffloadHeader meta = detail::piece_header(h, p, n, i == 0);
        std::byte* out = place(meta, hdrs + n);
        if (out == nullptr) return false;
        size_t size = detail::build_segment(p, packet, i * segments, off, n, i + 1 == count, out,
                                            !meta.plain());
        done(meta, size);
    }
    return true;
}

}  // namespace porthole::packet

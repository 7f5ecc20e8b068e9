// Offload metadata from a peer: a 10-octet trailer and an IP packet, both arbitrary. Whatever
// offload_consistent() accepts must segment without a crash into segments that are each one valid
// IP packet no larger than headers + gso_size; complete_checksum() must stay inside the packet;
// split() must cut it into pieces that are each a valid IP packet whose metadata is consistent
// with it, no more pieces than segments.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "packet/ip_packet.hpp"
#include "packet/offload.hpp"

using namespace porthole::packet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < kOffloadTrailerSize) return 0;
    auto meta = read_trailer(reinterpret_cast<const std::byte*>(data));
    std::vector<std::byte> pkt(reinterpret_cast<const std::byte*>(data) + kOffloadTrailerSize,
                               reinterpret_cast<const std::byte*>(data) + size);
    if (!IpPacket::parse(pkt)) return 0;
    if (!offload_consistent(meta, pkt)) return 0;
    complete_checksum(meta, pkt);
    if (!meta.gso()) return 0;
    static std::vector<std::byte> scratch(70000);
    size_t total_payload = 0, segments = 0;
    bool ok = segment(meta, pkt, scratch, [&](std::span<const std::byte> seg) {
        if (!IpPacket::parse(seg)) abort();
        if (seg.size() > pkt.size()) abort();
        total_payload += seg.size();
        ++segments;
    });
    if (!ok) abort();  // consistent metadata must be segmentable

    // Pieces of 1..8 segments (the count from the packet's last octet).
    size_t per_piece = 1 + size_t(data[size - 1]) % 8;
    size_t pieces = 0;
    ok = split(
        meta, pkt, per_piece,
        [&](const OffloadHeader&, size_t n) -> std::byte* {
            return n <= scratch.size() ? scratch.data() : nullptr;
        },
        [&](const OffloadHeader& m, size_t n) {
            std::span<const std::byte> piece(scratch.data(), n);
            if (!IpPacket::parse(piece) || n > pkt.size()) abort();
            if (!m.plain() && !offload_consistent(m, piece)) abort();
            ++pieces;
        });
    if (!ok) abort();
    // Each piece holds per_piece segments (the last one may hold fewer).
    if (pieces != (segments + per_piece - 1) / per_piece) abort();
    return 0;
}

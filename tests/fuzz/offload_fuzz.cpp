// Offload metadata from a peer: a 10-octet trailer and an IP packet, both arbitrary. Whatever
// offload_consistent() accepts must segment without a crash into segments that are each one valid
// IP packet no larger than headers + gso_size; complete_checksum() must stay inside the packet.
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
    size_t total_payload = 0;
    bool ok = segment(meta, pkt, scratch, [&](std::span<const std::byte> seg) {
        if (!IpPacket::parse(seg)) abort();
        if (seg.size() > pkt.size()) abort();
        total_payload += seg.size();
    });
    if (!ok) abort();  // consistent metadata must be segmentable
    return 0;
}

// Lane: which send queue a packet joins. Real-time packets (voice, video, probes) go ahead of
// bulk so that they never wait behind a download in the tunnel's own queues. Pure code.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace porthole::session {

enum class Lane : uint8_t { realtime, bulk };

struct LanePolicy {
    uint16_t max_realtime_size = 400;      // UDP packets up to this IP size (RTP voice, RTCP, SIP)
    std::vector<uint16_t> realtime_ports;  // UDP ports always real-time (either end)
};

// packet: one validated IP packet without offload metadata (super-packets are bulk by nature).
// Real-time: ICMP/ICMPv6 echo; UDP marked EF, CS4, CS5 or AF4x; small UDP; UDP on a configured
// port. Everything else, all TCP included, is bulk.
[[nodiscard]] Lane classify(std::span<const std::byte> packet, const LanePolicy& policy);

}  // namespace porthole::session

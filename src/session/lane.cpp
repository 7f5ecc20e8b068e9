#include "session/lane.hpp"

#include <algorithm>

#include "packet/ip_packet.hpp"

namespace porthole::session {

Lane classify(std::span<const std::byte> pkt, const LanePolicy& policy) {
    auto ip = packet::IpPacket::parse(pkt);
    if (!ip) return Lane::bulk;
    bool v4 = ip->family() == IpFamily::v4;
    size_t l3 = v4 ? (unsigned(pkt[0]) & 0x0f) * 4 : 40;
    uint8_t proto = ip->protocol();
    if ((v4 && proto == 1) || (!v4 && proto == 58)) {
        if (pkt.size() <= l3) return Lane::bulk;
        unsigned type = unsigned(pkt[l3]);
        bool echo = v4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
        return echo ? Lane::realtime : Lane::bulk;
    }
    if (proto != 17) return Lane::bulk;
    if (v4 && ((unsigned(pkt[6]) & 0x3f) << 8 | unsigned(pkt[7])) != 0)
        return Lane::bulk;  // fragment
    switch (ip->dscp()) {
        case 46:  // EF: voice
        case 32:  // CS4: real-time interactive
        case 40:  // CS5: signalling
        case 34:
        case 36:
        case 38:  // AF4x: video conferencing
            return Lane::realtime;
        default:
            break;
    }
    if (pkt.size() <= policy.max_realtime_size) return Lane::realtime;
    if (!policy.realtime_ports.empty() && pkt.size() >= l3 + 4) {
        auto port = [&](size_t at) {
            return uint16_t(unsigned(pkt[at]) << 8 | unsigned(pkt[at + 1]));
        };
        uint16_t src = port(l3), dst = port(l3 + 2);
        const auto& ports = policy.realtime_ports;
        if (std::find(ports.begin(), ports.end(), src) != ports.end() ||
            std::find(ports.begin(), ports.end(), dst) != ports.end())
            return Lane::realtime;
    }
    return Lane::bulk;
}

}  // namespace porthole::session

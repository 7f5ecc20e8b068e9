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
    if (proto == 6) {
        // A pure TCP ACK (header only; no SYN/FIN/RST) clocks a bulk flow the other way: held
        // behind bulk in this direction, it stalls that flow (the classic upload-kills-download
        // effect of a shared queue). Tiny and paced by the data it acknowledges.
        if (pkt.size() < l3 + 20) return Lane::bulk;
        size_t tcp_header = (unsigned(pkt[l3 + 12]) >> 4) * 4;
        unsigned flags = unsigned(pkt[l3 + 13]);
        bool pure_ack = (flags & 0x10) != 0 && (flags & 0x07) == 0;  // ACK, not FIN/SYN/RST
        return pure_ack && pkt.size() == l3 + tcp_header ? Lane::realtime : Lane::bulk;
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

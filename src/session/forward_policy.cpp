#include "session/forward_policy.hpp"

#include "packet/ip_packet.hpp"

namespace porthole::session {

bool ForwardPolicy::allowed(std::span<const std::byte> packet) const {
    if (allow_ue_to_ue_) return true;
    auto ip = packet::IpPacket::parse(packet);
    if (!ip) return false;
    return !ue_address(ip->destination());
}

bool ForwardPolicy::ue_address(const IpAddress& dst) const {
    for (const auto& p : pools_)
        if (p.prefix.contains(dst) && dst != p.gateway) return true;
    return false;
}

}  // namespace porthole::session

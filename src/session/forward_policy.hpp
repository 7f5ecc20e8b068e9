// ForwardPolicy: which packets a UE may send into the operator network. Pure code.
//
// Isolation (the default): a packet from a UE to an address of the UE pools is dropped, except to
// the concentrator's own address in that pool (the gateway), so UEs cannot reach each other
// through the concentrator unless the operator allows it. The source check (anti-spoofing) is the
// session's (ServerSession); this is the destination check.
#pragma once

#include <span>
#include <vector>

#include "base/ip_address.hpp"

namespace porthole::session {

class ForwardPolicy {
public:
    void add_pool(const Prefix& pool, const IpAddress& gateway) {
        pools_.push_back({pool, gateway});
    }
    void set_allow_ue_to_ue(bool allow) { allow_ue_to_ue_ = allow; }
    [[nodiscard]] bool allow_ue_to_ue() const { return allow_ue_to_ue_; }

    // packet: one validated IP packet from a UE.
    [[nodiscard]] bool allowed(std::span<const std::byte> packet) const;
    // dst is a UE's address: in a pool, and not the pool's gateway.
    [[nodiscard]] bool ue_address(const IpAddress& dst) const;

private:
    struct Pool {
        Prefix prefix;
        IpAddress gateway;
    };
    std::vector<Pool> pools_;
    bool allow_ue_to_ue_ = false;
};

}  // namespace porthole::session

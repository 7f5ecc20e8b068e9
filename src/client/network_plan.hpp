// NetworkPlan: the addresses, MTU and routes the UE client puts in place for an assignment, as
// plain data. Pure code: built and checked in unit tests, applied by TunnelClient via netlink.
#pragma once

#include <cstdint>
#include <vector>

#include "base/ip_address.hpp"
#include "packet/control_message.hpp"
#include "tun/netlink.hpp"

namespace porthole::client {

struct NetworkPlan {
    std::vector<Prefix> addresses;  // on the TUN device
    uint16_t mtu = 0;
    std::vector<tun::RouteSpec> routes;  // in the order to add them
    bool full_tunnel = false;
};

// to_server: how the kernel reaches the concentrator before any tunnel route exists. In full
// tunnel mode (no routes assigned) the plan sends everything into the TUN device with two
// half-default routes per family (the original default route stays untouched), and pins the
// concentrator itself to its original path with a host route so the tunnel never carries itself.
NetworkPlan plan_network(const packet::ConfigAssign& assignment, int tun_ifindex,
                         const tun::RouteSpec& to_server);

}  // namespace porthole::client

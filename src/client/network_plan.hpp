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
    // Full tunnel only: half-default routes into the TUN device for a family the concentrator
    // assigned no address for, so that this family cannot go around the tunnel. The client
    // answers what arrives there with ICMP "administratively prohibited". Added after `routes`;
    // a host without that family (IPv6 disabled) refuses them, which is harmless.
    std::vector<tun::RouteSpec> guard_routes;
    bool blocks_v4 = false;  // guard routes catch IPv4 (no IPv4 address assigned)
    bool blocks_v6 = false;  // guard routes catch IPv6 (no IPv6 address assigned)
    // The assigned DNS servers the tunnel can carry (those of an assigned family), in order.
    // Split tunnel: each one outside the pushed routes gets a host route into the TUN device
    // (in `routes`), so that DNS queries for the tunnel's domains never leave beside it.
    std::vector<IpAddress> dns_servers;
    bool full_tunnel = false;
};

// to_server: how the kernel reaches the concentrator before any tunnel route exists. In full
// tunnel mode (no routes assigned) the plan sends everything into the TUN device with two
// half-default routes per family (the original default route stays untouched), and pins the
// concentrator itself to its original path with a host route so the tunnel never carries itself.
NetworkPlan plan_network(const packet::ConfigAssign& assignment, int tun_ifindex,
                         const tun::RouteSpec& to_server);

}  // namespace porthole::client

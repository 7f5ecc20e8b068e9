#include "client/network_plan.hpp"

#include <algorithm>

namespace porthole::client {
namespace {
Prefix must_parse(const char* text) {
    return *Prefix::parse(text);
}
}  // namespace

NetworkPlan plan_network(const packet::ConfigAssign& a, int tun_ifindex,
                         const tun::RouteSpec& to_server) {
    NetworkPlan plan;
    plan.mtu = a.mtu;
    if (a.ipv4) plan.addresses.push_back(*a.ipv4);
    if (a.ipv6) plan.addresses.push_back(*a.ipv6);
    plan.full_tunnel = a.routes.empty();

    std::vector<Prefix> into_tunnel;
    if (plan.full_tunnel) {
        if (a.ipv4) into_tunnel = {must_parse("0.0.0.0/1"), must_parse("128.0.0.0/1")};
        if (a.ipv6) {
            into_tunnel.push_back(must_parse("::/1"));
            into_tunnel.push_back(must_parse("8000::/1"));
        }
    } else {
        for (const auto& r : a.routes) {
            bool have_family = r.addr.is_v4() ? a.ipv4.has_value() : a.ipv6.has_value();
            if (have_family) into_tunnel.push_back(r.network());
        }
    }

    const IpAddress& server = to_server.dst.addr;
    bool captures_server = std::any_of(into_tunnel.begin(), into_tunnel.end(),
                                       [&](const Prefix& p) { return p.contains(server); });
    if (captures_server) {
        tun::RouteSpec pin = to_server;
        pin.dst = Prefix{server, uint8_t(server.bits())};
        plan.routes.push_back(pin);  // first, so the session's own packets never loop
    }
    for (const auto& p : into_tunnel)
        plan.routes.push_back({p, std::nullopt, tun_ifindex, 0});
    return plan;
}

}  // namespace porthole::client

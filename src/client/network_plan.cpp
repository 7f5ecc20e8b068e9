#include "client/network_plan.hpp"

#include <algorithm>

namespace porthole::client {
namespace {
Prefix must_parse(const char* text) {
    return *Prefix::parse(text);
}

std::vector<Prefix> half_defaults(IpFamily family) {
    if (family == IpFamily::v4) return {must_parse("0.0.0.0/1"), must_parse("128.0.0.0/1")};
    return {must_parse("::/1"), must_parse("8000::/1")};
}

bool covered(const std::vector<Prefix>& prefixes, const IpAddress& a) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](const Prefix& p) { return p.contains(a); });
}
}  // namespace

NetworkPlan plan_network(const packet::ConfigAssign& a, int tun_ifindex,
                         const tun::RouteSpec& to_server) {
    NetworkPlan plan;
    plan.mtu = a.mtu;
    if (a.ipv4) plan.addresses.push_back(*a.ipv4);
    if (a.ipv6) plan.addresses.push_back(*a.ipv6);
    plan.full_tunnel = a.routes.empty();
    auto assigned = [&](const IpAddress& x) {
        return x.is_v4() ? a.ipv4.has_value() : a.ipv6.has_value();
    };

    std::vector<Prefix> into_tunnel, guards;
    if (plan.full_tunnel) {
        for (auto family : {IpFamily::v4, IpFamily::v6}) {
            bool have = family == IpFamily::v4 ? a.ipv4.has_value() : a.ipv6.has_value();
            auto halves = half_defaults(family);
            (have ? into_tunnel : guards)
                .insert((have ? into_tunnel : guards).end(), halves.begin(), halves.end());
        }
        plan.blocks_v4 = !a.ipv4;
        plan.blocks_v6 = !a.ipv6;
    } else {
        for (const auto& r : a.routes)
            if (assigned(r.addr)) into_tunnel.push_back(r.network());
    }
    for (const auto& d : a.dns)
        if (assigned(d) && std::find(plan.dns_servers.begin(), plan.dns_servers.end(), d) ==
                               plan.dns_servers.end())
            plan.dns_servers.push_back(d);
    const IpAddress& server = to_server.dst.addr;
    if (!plan.full_tunnel) {
        // (A DNS server on the concentrator's own address stays on the concentrator's path.)
        for (const auto& d : plan.dns_servers)
            if (!covered(into_tunnel, d) && d != server)
                into_tunnel.push_back(Prefix{d, uint8_t(d.bits())});
    }

    if (covered(into_tunnel, server) || covered(guards, server)) {
        tun::RouteSpec pin = to_server;
        pin.dst = Prefix{server, uint8_t(server.bits())};
        plan.routes.push_back(pin);  // first, so the session's own packets never loop
    }
    for (const auto& p : into_tunnel)
        plan.routes.push_back({p, std::nullopt, tun_ifindex, 0});
    for (const auto& p : guards)
        plan.guard_routes.push_back({p, std::nullopt, tun_ifindex, 0});
    return plan;
}

}  // namespace porthole::client

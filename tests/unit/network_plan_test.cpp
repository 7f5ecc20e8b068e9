// plan_network: full tunnel (half-default routes per assigned family, server pinned to its
// original path first) and split tunnel (pushed routes of assigned families, pin only if needed).
#include <doctest/doctest.h>

#include <random>

#include "client/network_plan.hpp"
#include "test_wire.hpp"

using porthole::IpAddress;
using porthole::Prefix;
using porthole::client::NetworkPlan;
using porthole::client::plan_network;
using porthole::packet::ConfigAssign;
using porthole::test::A;
using porthole::test::P;
using porthole::tun::RouteSpec;

namespace {

constexpr int kTun = 42;

RouteSpec path_to(const char* server, const char* gateway, int ifindex) {
    RouteSpec r;
    r.dst = P(server);
    r.gateway = A(gateway);
    r.ifindex = ifindex;
    r.metric = 100;
    return r;
}

ConfigAssign assign(bool v4, bool v6, std::vector<Prefix> routes = {}) {
    ConfigAssign a;
    if (v4) a.ipv4 = P("198.18.0.2/24");
    if (v6) a.ipv6 = P("fd00::2/64");
    a.routes = std::move(routes);
    a.mtu = 1380;
    return a;
}

bool is_tunnel_route(const RouteSpec& r) {
    return r.ifindex == kTun && !r.gateway;
}

// The tunnel routes that would carry address a (0 = the tunnel does not catch it).
int tunnel_routes_covering(const NetworkPlan& plan, const IpAddress& a) {
    int n = 0;
    for (auto& r : plan.routes)
        if (is_tunnel_route(r) && r.dst.contains(a)) ++n;
    return n;
}

std::vector<Prefix> tunnel_prefixes(const NetworkPlan& plan) {
    std::vector<Prefix> out;
    for (auto& r : plan.routes)
        if (is_tunnel_route(r)) out.push_back(r.dst);
    return out;
}

}  // namespace

TEST_CASE("plan_network: full tunnel, IPv4 only") {
    auto to_server = path_to("203.0.113.7/32", "192.168.1.1", 3);
    auto plan = plan_network(assign(true, false), kTun, to_server);
    CHECK(plan.full_tunnel);
    CHECK(plan.mtu == 1380);
    CHECK(plan.addresses == std::vector<Prefix>{P("198.18.0.2/24")});
    REQUIRE(plan.routes.size() == 3);
    // the pin comes first: the server via its original gateway and interface
    CHECK(plan.routes[0].dst == P("203.0.113.7/32"));
    CHECK(plan.routes[0].gateway == A("192.168.1.1"));
    CHECK(plan.routes[0].ifindex == 3);
    CHECK(plan.routes[0].metric == 100);
    CHECK(tunnel_prefixes(plan) == std::vector<Prefix>{P("0.0.0.0/1"), P("128.0.0.0/1")});
    // every IPv4 address is caught exactly once; no IPv6 address is
    std::mt19937_64 rng(1);
    for (int i = 0; i < 1000; ++i) {
        CHECK(tunnel_routes_covering(plan, IpAddress::v4(uint32_t(rng()))) == 1);
        std::array<std::byte, 16> b{};
        for (auto& x : b)
            x = std::byte(rng());
        CHECK(tunnel_routes_covering(plan, IpAddress::v6_bytes(b)) == 0);
    }
}

TEST_CASE("plan_network: full tunnel, IPv4 and IPv6, server reached over IPv6") {
    RouteSpec to_server;
    to_server.dst = P("2001:db8:ffff::7/128");
    to_server.gateway = A("fe80::1");
    to_server.ifindex = 2;
    auto plan = plan_network(assign(true, true), kTun, to_server);
    CHECK(plan.full_tunnel);
    CHECK(plan.addresses == std::vector<Prefix>{P("198.18.0.2/24"), P("fd00::2/64")});
    REQUIRE(plan.routes.size() == 5);
    CHECK(plan.routes[0].dst == P("2001:db8:ffff::7/128"));
    CHECK(plan.routes[0].gateway == A("fe80::1"));
    CHECK(plan.routes[0].ifindex == 2);
    auto t = tunnel_prefixes(plan);
    CHECK(t == std::vector<Prefix>{P("0.0.0.0/1"), P("128.0.0.0/1"), P("::/1"), P("8000::/1")});
    std::mt19937_64 rng(2);
    for (int i = 0; i < 1000; ++i) {
        std::array<std::byte, 16> b{};
        for (auto& x : b)
            x = std::byte(rng());
        CHECK(tunnel_routes_covering(plan, IpAddress::v6_bytes(b)) == 1);
        CHECK(tunnel_routes_covering(plan, IpAddress::v4(uint32_t(rng()))) == 1);
    }
}

TEST_CASE("plan_network: full tunnel, IPv4 only, IPv6 server is pinned (guards catch IPv6)") {
    RouteSpec to_server;
    to_server.dst = P("2001:db8::7/128");
    to_server.gateway = A("fe80::1");
    to_server.ifindex = 2;
    auto plan = plan_network(assign(true, false), kTun, to_server);
    REQUIRE(plan.routes.size() == 3);
    CHECK(plan.routes[0].dst == P("2001:db8::7/128"));
    CHECK(plan.routes[0].ifindex == 2);
    CHECK(tunnel_prefixes(plan) == std::vector<Prefix>{P("0.0.0.0/1"), P("128.0.0.0/1")});
    REQUIRE(plan.guard_routes.size() == 2);
    CHECK(plan.blocks_v6);
}

TEST_CASE("plan_network: full tunnel never lets a family without an address around the tunnel") {
    auto to_server = path_to("203.0.113.7/32", "192.168.1.1", 3);
    std::mt19937_64 rng(5);
    auto rand6 = [&] {
        std::array<std::byte, 16> b{};
        for (auto& x : b)
            x = std::byte(rng());
        return IpAddress::v6_bytes(b);
    };
    auto guarded = [](const NetworkPlan& plan, const IpAddress& a) {
        int n = 0;
        for (auto& r : plan.guard_routes)
            if (r.ifindex == kTun && !r.gateway && r.dst.contains(a)) ++n;
        return n;
    };
    SUBCASE("IPv4 only: every IPv6 address goes into the TUN device (and is refused there)") {
        auto plan = plan_network(assign(true, false), kTun, to_server);
        CHECK(plan.blocks_v6);
        CHECK_FALSE(plan.blocks_v4);
        CHECK(plan.guard_routes.size() == 2);
        for (int i = 0; i < 1000; ++i) {
            auto a = rand6();
            CHECK(guarded(plan, a) + tunnel_routes_covering(plan, a) == 1);
        }
    }
    SUBCASE("IPv6 only: every IPv4 address goes into the TUN device") {
        auto plan = plan_network(assign(false, true), kTun, to_server);
        CHECK(plan.blocks_v4);
        CHECK_FALSE(plan.blocks_v6);
        for (int i = 0; i < 1000; ++i) {
            auto a = IpAddress::v4(uint32_t(rng()));
            if (a == A("203.0.113.7")) continue;
            CHECK(guarded(plan, a) == 1);
        }
        // the IPv4 concentrator is caught by the guards, so it is pinned to its path
        REQUIRE_FALSE(plan.routes.empty());
        CHECK(plan.routes[0].dst == P("203.0.113.7/32"));
        CHECK(plan.routes[0].gateway == A("192.168.1.1"));
    }
    SUBCASE("dual stack: nothing to guard") {
        auto plan = plan_network(assign(true, true), kTun, to_server);
        CHECK(plan.guard_routes.empty());
        CHECK_FALSE(plan.blocks_v4);
        CHECK_FALSE(plan.blocks_v6);
    }
    SUBCASE("split tunnel: no guards (the rest of the traffic goes around by design)") {
        auto plan = plan_network(assign(true, false, {P("10.0.0.0/8")}), kTun, to_server);
        CHECK(plan.guard_routes.empty());
        CHECK_FALSE(plan.blocks_v6);
    }
}

TEST_CASE("plan_network: DNS servers") {
    auto to_server = path_to("203.0.113.7/32", "192.168.1.1", 3);
    SUBCASE("only servers of an assigned family, each once, in order") {
        auto a = assign(true, false);
        a.dns = {A("10.9.9.9"), A("fd00::53"), A("10.8.8.8"), A("10.9.9.9")};
        auto plan = plan_network(a, kTun, to_server);
        CHECK(plan.dns_servers == std::vector<IpAddress>{A("10.9.9.9"), A("10.8.8.8")});
        CHECK(plan.routes.size() == 3);  // full tunnel: no host routes needed
    }
    SUBCASE("split tunnel: servers outside the pushed routes get host routes into the tunnel") {
        auto a = assign(true, true, {P("10.0.0.0/8")});
        a.dns = {A("10.0.0.53"), A("192.0.2.53"), A("fd00:99::53")};
        auto plan = plan_network(a, kTun, to_server);
        CHECK(tunnel_prefixes(plan) ==
              std::vector<Prefix>{P("10.0.0.0/8"), P("192.0.2.53/32"), P("fd00:99::53/128")});
        for (auto& d : a.dns)
            CHECK(tunnel_routes_covering(plan, d) == 1);
    }
    SUBCASE("a DNS server on the concentrator's own address does not capture the session") {
        auto a = assign(true, false, {P("10.0.0.0/8")});
        a.dns = {A("203.0.113.7")};
        auto plan = plan_network(a, kTun, to_server);
        CHECK(tunnel_prefixes(plan) == std::vector<Prefix>{P("10.0.0.0/8")});
        CHECK(plan.routes.size() == 1);
        CHECK(plan.dns_servers == a.dns);
    }
}

TEST_CASE("plan_network: the pin is a host route even if the path given was wider") {
    auto to_server = path_to("0.0.0.0/0", "192.168.1.1", 3);
    to_server.dst.addr = A("203.0.113.7");  // the server's address with the default route's len
    auto plan = plan_network(assign(true, false), kTun, to_server);
    REQUIRE_FALSE(plan.routes.empty());
    CHECK(plan.routes[0].dst == P("203.0.113.7/32"));
    CHECK(plan.routes[0].gateway == A("192.168.1.1"));
}

TEST_CASE("plan_network: split tunnel that does not cover the server") {
    auto to_server = path_to("203.0.113.7/32", "192.168.1.1", 3);
    auto plan =
        plan_network(assign(true, false, {P("10.0.0.0/8"), P("172.16.0.0/12"), P("2001:db8::/32")}),
                     kTun, to_server);
    CHECK_FALSE(plan.full_tunnel);
    // the IPv6 route is skipped: no IPv6 address was assigned
    CHECK(plan.routes.size() == 2);
    CHECK(tunnel_prefixes(plan) == std::vector<Prefix>{P("10.0.0.0/8"), P("172.16.0.0/12")});
    CHECK(tunnel_routes_covering(plan, A("203.0.113.7")) == 0);
    CHECK(tunnel_routes_covering(plan, A("10.200.1.1")) == 1);
    CHECK(tunnel_routes_covering(plan, A("8.8.8.8")) == 0);
}

TEST_CASE("plan_network: split tunnel whose routes cover the server pins it first") {
    auto to_server = path_to("203.0.113.7/32", "192.168.1.1", 3);
    auto plan = plan_network(
        assign(true, true, {P("203.0.113.0/24"), P("2001:db8::/32"), P("10.1.2.3/16")}), kTun,
        to_server);
    CHECK_FALSE(plan.full_tunnel);
    REQUIRE(plan.routes.size() == 4);
    CHECK(plan.routes[0].dst == P("203.0.113.7/32"));
    CHECK(plan.routes[0].gateway == A("192.168.1.1"));
    CHECK(plan.routes[0].ifindex == 3);
    // routes with host bits are installed as their network
    CHECK(tunnel_prefixes(plan) ==
          std::vector<Prefix>{P("203.0.113.0/24"), P("2001:db8::/32"), P("10.1.0.0/16")});
    for (auto& r : plan.routes)
        CHECK(r.dst == r.dst.network());
}

TEST_CASE("plan_network: IPv6-only assignment") {
    RouteSpec to_server;
    to_server.dst = P("198.51.100.1/32");
    to_server.ifindex = 5;
    auto plan = plan_network(assign(false, true), kTun, to_server);
    CHECK(plan.addresses == std::vector<Prefix>{P("fd00::2/64")});
    CHECK(tunnel_prefixes(plan) == std::vector<Prefix>{P("::/1"), P("8000::/1")});
    // the IPv4 server is caught by the IPv4 guard routes: pinned to its path
    REQUIRE(plan.routes.size() == 3);
    CHECK(plan.routes[0].dst == P("198.51.100.1/32"));
    CHECK(plan.guard_routes.size() == 2);
}

#include <doctest/doctest.h>

#include <vector>

#include "session/forward_policy.hpp"

using namespace porthole;

namespace {
// A minimal valid IPv4 packet (header only) from src to dst.
std::vector<std::byte> v4(const char* src, const char* dst) {
    std::vector<std::byte> p(20, std::byte{0});
    p[0] = std::byte{0x45};
    p[3] = std::byte{20};
    p[8] = std::byte{64};
    p[9] = std::byte{1};
    auto sa = *IpAddress::parse(src), da = *IpAddress::parse(dst);  // bytes() views these
    auto s = sa.bytes(), d = da.bytes();
    for (int i = 0; i < 4; ++i) {
        p[12 + i] = std::byte(s[i]);
        p[16 + i] = std::byte(d[i]);
    }
    return p;
}
std::vector<std::byte> v6(const char* src, const char* dst) {
    std::vector<std::byte> p(40, std::byte{0});
    p[0] = std::byte{0x60};
    p[6] = std::byte{58};
    auto sa = *IpAddress::parse(src), da = *IpAddress::parse(dst);
    auto s = sa.bytes(), d = da.bytes();
    for (int i = 0; i < 16; ++i) {
        p[8 + i] = std::byte(s[i]);
        p[24 + i] = std::byte(d[i]);
    }
    return p;
}
}  // namespace

TEST_CASE("forward policy: UEs are isolated from each other by default") {
    session::ForwardPolicy policy;
    policy.add_pool(*Prefix::parse("100.64.0.0/24"), *IpAddress::parse("100.64.0.1"));
    policy.add_pool(*Prefix::parse("fd00:64::/64"), *IpAddress::parse("fd00:64::1"));

    CHECK(policy.allowed(v4("100.64.0.2", "198.18.3.2")));          // to the operator network
    CHECK(policy.allowed(v4("100.64.0.2", "100.64.0.1")));          // to the concentrator itself
    CHECK_FALSE(policy.allowed(v4("100.64.0.2", "100.64.0.3")));    // to another UE
    CHECK_FALSE(policy.allowed(v4("100.64.0.2", "100.64.0.255")));  // pool broadcast
    CHECK(policy.allowed(v6("fd00:64::2", "fd00:18:3::2")));
    CHECK(policy.allowed(v6("fd00:64::2", "fd00:64::1")));
    CHECK_FALSE(policy.allowed(v6("fd00:64::2", "fd00:64::3")));
    // What may be a UE's address (the concentrator's event loops hand such packets over).
    CHECK(policy.ue_address(*IpAddress::parse("100.64.0.3")));
    CHECK(policy.ue_address(*IpAddress::parse("fd00:64::3")));
    CHECK_FALSE(policy.ue_address(*IpAddress::parse("100.64.0.1")));  // the gateway
    CHECK_FALSE(policy.ue_address(*IpAddress::parse("198.18.3.2")));

    policy.set_allow_ue_to_ue(true);
    CHECK(policy.allowed(v4("100.64.0.2", "100.64.0.3")));
    CHECK(policy.allowed(v6("fd00:64::2", "fd00:64::3")));
}

TEST_CASE("forward policy: without pools everything valid passes; garbage never does") {
    session::ForwardPolicy policy;
    CHECK(policy.allowed(v4("100.64.0.2", "100.64.0.3")));
    std::vector<std::byte> junk(10, std::byte{0x45});
    CHECK_FALSE(policy.allowed(junk));
}

// IpAddress, Prefix, Endpoint: parsing, formatting, arithmetic and containment, checked against
// independent computations (inet_pton/inet_ntop, 32-bit masks) on random inputs.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>

#include "base/ip_address.hpp"
#include "test_wire.hpp"

using porthole::Endpoint;
using porthole::IpAddress;
using porthole::IpFamily;
using porthole::Prefix;
using porthole::test::A;

namespace {

IpAddress random_v6(std::mt19937_64& rng) {
    std::array<std::byte, 16> b{};
    for (auto& x : b)
        x = std::byte(rng());
    return IpAddress::v6_bytes(b);
}

}  // namespace

TEST_CASE("IpAddress: default is 0.0.0.0 and unspecified") {
    IpAddress a;
    CHECK(a.is_v4());
    CHECK(a.is_unspecified());
    CHECK(a.to_string() == "0.0.0.0");
    CHECK(a.bits() == 32);
    CHECK(a.bytes().size() == 4);
}

TEST_CASE("IpAddress: parse v4 and v6, and reject garbage") {
    auto v4 = A("198.18.2.2");
    CHECK(v4.is_v4());
    CHECK(v4.v4_host_order() == 0xc6120202u);
    CHECK(v4 == IpAddress::v4(0xc6120202u));
    CHECK(v4.to_string() == "198.18.2.2");
    CHECK_FALSE(v4.is_unspecified());

    auto v6 = A("2001:db8::1");
    CHECK(v6.is_v6());
    CHECK(v6.bits() == 128);
    REQUIRE(v6.bytes().size() == 16);
    CHECK(v6.bytes()[0] == 0x20);
    CHECK(v6.bytes()[1] == 0x01);
    CHECK(v6.bytes()[15] == 0x01);
    CHECK(v6.to_string() == "2001:db8::1");
    CHECK(A("::").is_unspecified());
    CHECK(A("::").is_v6());

    for (const char* bad :
         {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "a.b.c.d", "2001:db8:::1", "198.18.2.2/32",
          " 1.2.3.4", "1.2.3.4 ", "[::1]", "gggg::1", "1:2:3:4:5:6:7:8:9",
          "0000000000000000000000000000000000000000000000000000000000000"}) {
        CHECK_MESSAGE(!IpAddress::parse(bad).has_value(), bad);
    }
}

TEST_CASE("IpAddress: v4 and v6 with the same leading bytes are different addresses") {
    auto v4 = A("1.2.3.4");
    auto v6 = A("102:304::");
    CHECK(v4 != v6);
    CHECK(std::memcmp(v4.bytes().data(), v6.bytes().data(), 4) == 0);
}

TEST_CASE("IpAddress: random round trip through text agrees with inet_ntop/inet_pton") {
    std::mt19937_64 rng(1);
    for (int i = 0; i < 2000; ++i) {
        uint32_t h = uint32_t(rng());
        auto a = IpAddress::v4(h);
        in_addr raw{};
        raw.s_addr = htonl(h);
        char buf[INET_ADDRSTRLEN];
        REQUIRE(inet_ntop(AF_INET, &raw, buf, sizeof buf));
        CHECK(a.to_string() == buf);
        CHECK(A(buf) == a);
        CHECK(A(buf).v4_host_order() == h);

        auto b = random_v6(rng);
        in6_addr raw6{};
        std::memcpy(&raw6, b.bytes().data(), 16);
        char buf6[INET6_ADDRSTRLEN];
        REQUIRE(inet_ntop(AF_INET6, &raw6, buf6, sizeof buf6));
        CHECK(b.to_string() == buf6);
        CHECK(A(buf6) == b);
    }
}

TEST_CASE("IpAddress: bit() reads bits most significant first") {
    auto a = A("128.0.0.1");
    CHECK(a.bit(0));
    CHECK_FALSE(a.bit(1));
    CHECK(a.bit(31));
    CHECK_FALSE(a.bit(30));
    auto b = A("8000::1");
    CHECK(b.bit(0));
    CHECK(b.bit(127));
    CHECK_FALSE(b.bit(64));
}

TEST_CASE("IpAddress: plus() adds with carry and wraps within the family") {
    CHECK(A("10.0.0.255").plus(1) == A("10.0.1.0"));
    CHECK(A("255.255.255.255").plus(1) == A("0.0.0.0"));
    CHECK(A("255.255.255.255").plus(1).is_v4());
    CHECK(A("10.0.0.0").plus(0) == A("10.0.0.0"));
    CHECK(A("2001:db8::ffff:ffff:ffff:ffff").plus(1) == A("2001:db8:0:1::"));
    CHECK(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").plus(1) == A("::"));

    std::mt19937_64 rng(2);
    for (int i = 0; i < 2000; ++i) {
        uint32_t h = uint32_t(rng());
        uint64_t n = rng() % 5 == 0 ? rng() : rng() % 100000;
        CHECK(IpAddress::v4(h).plus(n) == IpAddress::v4(uint32_t(h + n)));
    }
    // v6: the low 64 bits as an integer, with carry into the upper half.
    for (int i = 0; i < 2000; ++i) {
        auto a = random_v6(rng);
        uint64_t n = rng();
        uint64_t lo = 0, hi = 0;
        for (int k = 0; k < 8; ++k)
            hi = hi << 8 | a.bytes()[size_t(k)];
        for (int k = 8; k < 16; ++k)
            lo = lo << 8 | a.bytes()[size_t(k)];
        uint64_t nlo = lo + n, nhi = hi + (nlo < lo ? 1 : 0);
        std::array<std::byte, 16> want{};
        for (int k = 0; k < 8; ++k)
            want[size_t(k)] = std::byte(nhi >> (56 - 8 * k));
        for (int k = 0; k < 8; ++k)
            want[size_t(8 + k)] = std::byte(nlo >> (56 - 8 * k));
        CHECK(a.plus(n) == IpAddress::v6_bytes(want));
    }
}

TEST_CASE("IpAddress: ordering is by family, then bytes") {
    CHECK(A("10.0.0.1") < A("10.0.0.2"));
    CHECK(A("9.255.255.255") < A("10.0.0.0"));
    CHECK(A("255.255.255.255") < A("::"));  // v4 sorts before v6
}

TEST_CASE("Prefix: parse, bare address as host prefix, and bad lengths") {
    auto p = Prefix::parse("198.18.0.0/24");
    REQUIRE(p.has_value());
    CHECK(p->addr == A("198.18.0.0"));
    CHECK(p->len == 24);
    CHECK(p->to_string() == "198.18.0.0/24");

    auto host = Prefix::parse("198.18.2.2");
    REQUIRE(host.has_value());
    CHECK(host->len == 32);
    auto host6 = Prefix::parse("2001:db8::1");
    REQUIRE(host6.has_value());
    CHECK(host6->len == 128);

    auto v6 = Prefix::parse("2001:db8::/64");
    REQUIRE(v6.has_value());
    CHECK(v6->len == 64);
    CHECK(v6->to_string() == "2001:db8::/64");

    CHECK(Prefix::parse("0.0.0.0/0").has_value());
    CHECK(Prefix::parse("::/0").has_value());
    CHECK(Prefix::parse("1.2.3.4/32").has_value());
    CHECK(Prefix::parse("::/128").has_value());

    for (const char* bad :
         {"1.2.3.4/", "1.2.3.4/33", "::/129", "1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/8x",
          "1.2.3.4/ 8", "/24", "x/24", "1.2.3.4//24", "1.2.3.4/99999999999999999999"}) {
        CHECK_MESSAGE(!Prefix::parse(bad).has_value(), bad);
    }
}

TEST_CASE("Prefix: network() and contains() agree with a 32-bit mask on random inputs") {
    std::mt19937_64 rng(3);
    for (int i = 0; i < 3000; ++i) {
        uint32_t h = uint32_t(rng());
        uint8_t len = uint8_t(rng() % 33);
        uint32_t mask = len == 0 ? 0 : ~uint32_t(0) << (32 - len);
        Prefix p{IpAddress::v4(h), len};
        CHECK(p.network() == Prefix{IpAddress::v4(h & mask), len});
        uint32_t other = rng() % 2 ? uint32_t(rng()) : (h & mask) | (uint32_t(rng()) & ~mask);
        CHECK(p.contains(IpAddress::v4(other)) == ((other & mask) == (h & mask)));
        CHECK(p.contains(IpAddress::v4(h)));
        CHECK_FALSE(p.contains(random_v6(rng)));  // never across families
    }
}

TEST_CASE("Prefix: IPv6 network() and contains() bit by bit") {
    std::mt19937_64 rng(4);
    for (int i = 0; i < 1000; ++i) {
        auto a = random_v6(rng);
        uint8_t len = uint8_t(rng() % 129);
        Prefix net = Prefix{a, len}.network();
        CHECK(net.len == len);
        for (unsigned b = 0; b < 128; ++b)
            CHECK(net.addr.bit(b) == (b < len ? a.bit(b) : false));
        auto other = random_v6(rng);
        bool same = true;
        for (unsigned b = 0; b < len; ++b)
            same = same && other.bit(b) == a.bit(b);
        CHECK(Prefix{a, len}.contains(other) == same);
        CHECK(Prefix{a, len}.contains(a));
        CHECK_FALSE(Prefix{a, len}.contains(IpAddress::v4(uint32_t(rng()))));
    }
}

TEST_CASE("Endpoint: host:port, [v6]:port, defaults and errors") {
    auto e = Endpoint::parse("198.18.2.2:8443", 443);
    REQUIRE(e.has_value());
    CHECK(e->addr == A("198.18.2.2"));
    CHECK(e->port == 8443);
    CHECK(e->to_string() == "198.18.2.2:8443");

    auto d = Endpoint::parse("198.18.2.2", 443);
    REQUIRE(d.has_value());
    CHECK(d->port == 443);

    auto v6 = Endpoint::parse("[2001:db8::1]:9000", 443);
    REQUIRE(v6.has_value());
    CHECK(v6->addr == A("2001:db8::1"));
    CHECK(v6->port == 9000);
    CHECK(v6->to_string() == "[2001:db8::1]:9000");

    auto bare6 = Endpoint::parse("2001:db8::1", 443);
    REQUIRE(bare6.has_value());
    CHECK(bare6->addr == A("2001:db8::1"));
    CHECK(bare6->port == 443);

    auto br6 = Endpoint::parse("[::1]", 443);
    REQUIRE(br6.has_value());
    CHECK(br6->port == 443);

    for (const char* bad :
         {"", "host:443", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x", "1.2.3.4:44x", "[::1",
          "[::1]443", "[::1]:0", "[]:443", "[1.2.3.4.5]:1", ":443"}) {
        CHECK_MESSAGE(!Endpoint::parse(bad, 443).has_value(), bad);
    }

    // to_string() is parseable back to the same endpoint.
    std::mt19937_64 rng(5);
    for (int i = 0; i < 200; ++i) {
        Endpoint ep{i % 2 ? IpAddress::v4(uint32_t(rng())) : random_v6(rng),
                    uint16_t(1 + rng() % 65535)};
        auto back = Endpoint::parse(ep.to_string(), 1);
        REQUIRE(back.has_value());
        CHECK(back->addr == ep.addr);
        CHECK(back->port == ep.port);
    }
}

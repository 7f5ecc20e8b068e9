// SessionTable: ownership of inner addresses, checked against std::map under random operations.
#include <doctest/doctest.h>

#include <map>
#include <random>

#include "session/session_table.hpp"
#include "test_wire.hpp"

using porthole::IpAddress;
using porthole::session::IpAddressHash;
using porthole::session::SessionId;
using porthole::session::SessionTable;
using porthole::test::A;

TEST_CASE("SessionTable: insert, find, no double assignment") {
    SessionTable t;
    CHECK(t.size() == 0);
    CHECK_FALSE(t.find(A("10.0.0.2")).has_value());
    CHECK(t.insert(A("10.0.0.2"), 1));
    CHECK(t.insert(A("fd00::2"), 1));
    CHECK_FALSE(t.insert(A("10.0.0.2"), 2));  // owned by 1
    CHECK(t.find(A("10.0.0.2")) == SessionId{1});
    CHECK(t.find(A("fd00::2")) == SessionId{1});
    CHECK(t.size() == 2);
}

TEST_CASE("SessionTable: erase only by the owner") {
    SessionTable t;
    REQUIRE(t.insert(A("10.0.0.2"), 7));
    t.erase(A("10.0.0.2"), 8);  // a replaced session cannot remove its successor's entry
    CHECK(t.find(A("10.0.0.2")) == SessionId{7});
    t.erase(A("10.0.0.3"), 7);  // absent: harmless
    CHECK(t.size() == 1);
    t.erase(A("10.0.0.2"), 7);
    CHECK_FALSE(t.find(A("10.0.0.2")).has_value());
    CHECK(t.insert(A("10.0.0.2"), 8));  // free again
}

TEST_CASE("SessionTable: IPv4 and IPv6 with the same leading bytes are distinct keys") {
    SessionTable t;
    CHECK(t.insert(A("1.2.3.4"), 1));
    CHECK(t.insert(A("102:304::"), 2));
    CHECK(t.insert(A("::"), 3));
    CHECK(t.insert(A("0.0.0.0"), 4));
    CHECK(t.find(A("1.2.3.4")) == SessionId{1});
    CHECK(t.find(A("102:304::")) == SessionId{2});
    CHECK(t.find(A("::")) == SessionId{3});
    CHECK(t.find(A("0.0.0.0")) == SessionId{4});
    IpAddressHash h;
    CHECK(h(A("0.0.0.0")) != h(A("::")));  // the family is hashed too
    CHECK(h(A("10.0.0.2")) == h(A("10.0.0.2")));
}

TEST_CASE("SessionTable: random operations agree with std::map") {
    std::mt19937 rng(5);
    SessionTable t;
    std::map<IpAddress, SessionId> model;
    std::vector<IpAddress> addrs;
    for (uint32_t i = 0; i < 64; ++i) {
        addrs.push_back(IpAddress::v4(0x0a000000u + i));
        std::array<std::byte, 16> b{};
        b[0] = std::byte{0xfd};
        b[15] = std::byte(i);
        addrs.push_back(IpAddress::v6_bytes(b));
    }
    for (int op = 0; op < 20000; ++op) {
        auto& a = addrs[rng() % addrs.size()];
        SessionId id = rng() % 8;
        if (rng() % 2) {
            bool expect = !model.count(a);
            CHECK(t.insert(a, id) == expect);
            if (expect) model[a] = id;
        } else {
            t.erase(a, id);
            if (auto it = model.find(a); it != model.end() && it->second == id) model.erase(it);
        }
        REQUIRE(t.size() == model.size());
        auto& q = addrs[rng() % addrs.size()];
        auto it = model.find(q);
        CHECK(t.find(q) ==
              (it == model.end() ? std::nullopt : std::optional<SessionId>(it->second)));
    }
}

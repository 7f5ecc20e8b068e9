#include <doctest/doctest.h>

#include <algorithm>

#include "session/address_pool.hpp"
#include "test_wire.hpp"

using namespace porthole;
using porthole::test::A;
using porthole::test::P;
using session::AddressPool;

TEST_CASE("address pool: a static address goes only to its identity") {
    auto pool = AddressPool::create(P("100.64.0.0/29"));  // .2 .. .6: 5 addresses
    REQUIRE(pool.has_value());
    REQUIRE(pool->reserve("boss", A("100.64.0.2")));
    CHECK_FALSE(pool->reserve("other", A("100.64.0.2")));  // taken by boss
    CHECK_FALSE(pool->reserve("boss", A("100.64.0.3")));   // one per identity
    CHECK_FALSE(pool->reserve("x", A("198.18.0.1")));      // outside the pool
    CHECK_FALSE(pool->reserve("x", A("100.64.0.1")));      // the gateway

    // Everybody else fills the other four addresses and then finds the pool exhausted, even
    // though boss's address is free.
    for (int i = 0; i < 4; ++i) {
        auto a = pool->allocate("ue" + std::to_string(i));
        REQUIRE(a.has_value());
        CHECK(*a != A("100.64.0.2"));
    }
    CHECK_FALSE(pool->allocate("late").has_value());
    CHECK_FALSE(pool->allocate_exact("late", A("100.64.0.2")));
    auto b = pool->allocate("boss");
    REQUIRE(b.has_value());
    CHECK(*b == A("100.64.0.2"));
}

TEST_CASE("address pool: remembered leases are restored and handed back to their identity") {
    auto pool = AddressPool::create(P("100.64.0.0/24"));
    REQUIRE(pool.has_value());
    CHECK(pool->remember("ue7", A("100.64.0.77")));
    CHECK_FALSE(pool->remember("ue8", A("10.0.0.1")));  // not ours
    auto fresh = pool->allocate("newcomer");
    REQUIRE(fresh.has_value());
    CHECK(*fresh != A("100.64.0.77"));  // remembered addresses are not given to newcomers first
    auto back = pool->allocate("ue7");
    REQUIRE(back.has_value());
    CHECK(*back == A("100.64.0.77"));

    auto mem = pool->remembered();
    auto has = [&](const char* id, const char* addr) {
        return std::find(mem.begin(), mem.end(), std::make_pair(std::string(id), A(addr))) !=
               mem.end();
    };
    CHECK(has("ue7", "100.64.0.77"));
    CHECK(has("newcomer", fresh->to_string().c_str()));
    CHECK(mem.size() == 2);
}

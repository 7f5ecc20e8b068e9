// AddressPool: checked against a brute-force reference model under random operations, plus the
// documented edge cases (gateway, broadcast, exhaustion, stickiness, pool size limits).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

#include "session/address_pool.hpp"
#include "test_wire.hpp"

using namespace porthole::test;
using porthole::IpAddress;
using porthole::Prefix;
using porthole::session::AddressPool;

namespace {

AddressPool make(const char* prefix, uint32_t max = 1u << 20) {
    auto p = AddressPool::create(P(prefix), max);
    REQUIRE_MESSAGE(p.has_value(), prefix);
    return std::move(*p);
}

// The documented behaviour, by brute force over a list of every UE address.
//  - an identity remembers the address it last held; it forgets it when another identity takes it
//  - allocate(): the remembered address if free; else a free address nobody remembers; else any
//    free address; else nothing
struct Model {
    std::vector<IpAddress> addrs;  // every address a UE may get
    std::set<IpAddress> used;
    std::map<std::string, IpAddress> remembered;

    [[nodiscard]] bool valid(const IpAddress& a) const {
        return std::find(addrs.begin(), addrs.end(), a) != addrs.end();
    }
    void take(const std::string& id, const IpAddress& a) {
        used.insert(a);
        for (auto it = remembered.begin(); it != remembered.end();)
            it = (it->second == a && it->first != id) ? remembered.erase(it) : std::next(it);
        remembered[id] = a;
    }
};

// Runs random operations on pool and model, checking every allocation against the rules.
void differential(AddressPool& pool, Model& m, std::mt19937& rng, int ops, int identities) {
    for (int op = 0; op < ops; ++op) {
        std::string id = "ue" + std::to_string(rng() % unsigned(identities));
        unsigned kind = rng() % 10;
        if (kind < 5) {  // allocate
            bool exhausted = m.used.size() == m.addrs.size();
            std::optional<IpAddress> sticky;
            if (auto it = m.remembered.find(id);
                it != m.remembered.end() && !m.used.count(it->second))
                sticky = it->second;
            std::set<IpAddress> remembered;
            for (auto& [who, r] : m.remembered)
                remembered.insert(r);
            bool fresh_exists = false;
            for (auto& a : m.addrs)
                if (!m.used.count(a) && !remembered.count(a)) fresh_exists = true;

            auto got = pool.allocate(id);
            REQUIRE(got.has_value() == !exhausted);
            if (!got) continue;
            REQUIRE(m.valid(*got));
            REQUIRE_FALSE(m.used.count(*got));
            if (sticky)
                REQUIRE(*got == *sticky);
            else if (fresh_exists)
                REQUIRE_FALSE(remembered.count(*got));
            m.take(id, *got);
        } else if (kind < 8) {  // release something (sometimes a free or foreign address)
            IpAddress a = m.addrs[rng() % m.addrs.size()];
            if (rng() % 4 == 0) a = pool.gateway();
            pool.release(a);
            m.used.erase(a);
        } else {  // allocate_exact
            IpAddress a = m.addrs[rng() % m.addrs.size()];
            if (rng() % 5 == 0) a = m.addrs.back().plus(1 + rng() % 3);  // beyond the pool
            if (rng() % 7 == 0) a = pool.gateway();
            bool expect = m.valid(a) && !m.used.count(a);
            REQUIRE(pool.allocate_exact(id, a) == expect);
            if (expect) m.take(id, a);
        }
        REQUIRE(pool.used() == m.used.size());
        if (op % 16 == 0)
            for (auto& a : m.addrs)
                REQUIRE(pool.in_use(a) == (m.used.count(a) == 1));
    }
}

Model model_for(const AddressPool& pool, uint64_t count) {
    Model m;
    for (uint64_t i = 0; i < count; ++i)
        m.addrs.push_back(pool.prefix().addr.plus(2 + i));
    return m;
}

}  // namespace

TEST_CASE("AddressPool: IPv4 /28 layout: gateway first, broadcast never handed out") {
    auto pool = make("198.18.0.5/28");  // host bits are cleared
    CHECK(pool.prefix() == P("198.18.0.0/28"));
    CHECK(pool.gateway() == A("198.18.0.1"));
    CHECK(pool.capacity() == 13);  // 16 - network - gateway - broadcast
    CHECK_FALSE(pool.contains(A("198.18.0.0")));
    CHECK_FALSE(pool.contains(A("198.18.0.1")));
    CHECK(pool.contains(A("198.18.0.2")));
    CHECK(pool.contains(A("198.18.0.14")));
    CHECK_FALSE(pool.contains(A("198.18.0.15")));
    CHECK_FALSE(pool.contains(A("198.18.0.16")));
    CHECK_FALSE(pool.contains(A("::198.18.0.2")));

    std::set<IpAddress> got;
    for (int i = 0; i < 13; ++i) {
        auto a = pool.allocate("ue" + std::to_string(i));
        REQUIRE(a.has_value());
        CHECK(pool.contains(*a));
        CHECK(pool.in_use(*a));
        got.insert(*a);
    }
    CHECK(got.size() == 13);
    CHECK_FALSE(got.count(A("198.18.0.15")));
    CHECK_FALSE(got.count(pool.gateway()));
    CHECK(pool.used() == 13);
    CHECK_FALSE(pool.allocate("late").has_value());  // exhausted
    CHECK_FALSE(pool.allocate("ue0").has_value());   // even for a known identity
    CHECK_FALSE(pool.allocate_exact("x", A("198.18.0.15")));
    CHECK(pool.with_pool_length(A("198.18.0.9")) == P("198.18.0.9/28"));
}

TEST_CASE("AddressPool: too-small pools are rejected") {
    for (const char* p : {"10.0.0.0/31", "10.0.0.0/32", "2001:db8::/127", "2001:db8::/128"}) {
        CHECK_MESSAGE(!AddressPool::create(P(p)).has_value(), p);
    }
    CHECK_FALSE(AddressPool::create(P("10.0.0.0/24"), 0).has_value());
    CHECK(make("10.0.0.0/30").capacity() == 1);
    CHECK(make("2001:db8::/126").capacity() == 2);
    CHECK(make("10.0.0.0/8").capacity() == (1u << 20));  // bounded by max_size
    CHECK(make("10.0.0.0/24", 10).capacity() == 10);
}

TEST_CASE("AddressPool: sticky allocation") {
    auto pool = make("10.9.0.0/24");
    auto a = pool.allocate("alice");
    auto b = pool.allocate("bob");
    REQUIRE(a);
    REQUIRE(b);
    pool.release(*a);
    CHECK_FALSE(pool.in_use(*a));
    // a newcomer does not get alice's remembered address while fresh ones exist
    auto c = pool.allocate("carol");
    REQUIRE(c);
    CHECK(*c != *a);
    CHECK(pool.allocate("alice") == a);  // alice comes back to her address
    pool.release(*a);
    pool.release(*b);
    CHECK(pool.allocate("bob") == b);
    CHECK(pool.allocate("alice") == a);
    CHECK(pool.used() == 3);
}

TEST_CASE("AddressPool: a remembered address goes to a newcomer only when nothing fresh is left") {
    auto pool = make("10.0.0.0/29");  // 5 addresses
    std::vector<IpAddress> held;
    for (int i = 0; i < 5; ++i)
        held.push_back(*pool.allocate("old" + std::to_string(i)));
    for (auto& a : held)
        pool.release(a);
    // all five are free and all remembered: a newcomer still gets one
    auto n = pool.allocate("new");
    REQUIRE(n);
    // old owner of that address lost it; another old identity keeps its own
    for (int i = 0; i < 5; ++i) {
        if (held[size_t(i)] == *n) continue;
        CHECK(pool.allocate("old" + std::to_string(i)) == held[size_t(i)]);
    }
    CHECK(pool.used() == 5);
}

TEST_CASE("AddressPool: allocate_exact") {
    auto pool = make("10.1.0.0/24");
    CHECK(pool.allocate_exact("a", A("10.1.0.50")));
    CHECK(pool.in_use(A("10.1.0.50")));
    CHECK_FALSE(pool.allocate_exact("b", A("10.1.0.50")));   // taken
    CHECK_FALSE(pool.allocate_exact("b", A("10.1.0.1")));    // gateway
    CHECK_FALSE(pool.allocate_exact("b", A("10.1.0.0")));    // network
    CHECK_FALSE(pool.allocate_exact("b", A("10.1.0.255")));  // broadcast
    CHECK_FALSE(pool.allocate_exact("b", A("10.2.0.5")));    // elsewhere
    CHECK_FALSE(pool.allocate_exact("b", A("::5")));
    pool.release(A("10.1.0.50"));
    CHECK(pool.allocate("a") == A("10.1.0.50"));  // exact allocation is remembered too
}

TEST_CASE("AddressPool: IPv6 /64 carved with max_size") {
    auto pool = make("2001:db8:0:7::/64", 100);
    CHECK(pool.capacity() == 100);
    CHECK(pool.gateway() == A("2001:db8:0:7::1"));
    CHECK(pool.contains(A("2001:db8:0:7::2")));
    CHECK(pool.contains(A("2001:db8:0:7::65")));        // index 99
    CHECK_FALSE(pool.contains(A("2001:db8:0:7::66")));  // index 100: beyond max_size
    CHECK_FALSE(pool.contains(A("2001:db8:0:7:1::2")));
    CHECK_FALSE(pool.contains(A("2001:db8:0:8::2")));
    CHECK_FALSE(pool.allocate_exact("x", A("2001:db8:0:7::66")));
    std::set<IpAddress> got;
    for (int i = 0; i < 100; ++i) {
        auto a = pool.allocate("ue" + std::to_string(i));
        REQUIRE(a);
        CHECK(pool.prefix().contains(*a));
        got.insert(*a);
    }
    CHECK(got.size() == 100);
    CHECK_FALSE(pool.allocate("ue100").has_value());
    CHECK(pool.with_pool_length(*got.begin()).len == 64);

    // a /48 (host bits beyond the low 64) works and never hands out addresses outside it
    auto wide = make("2001:db8:1::/48", 1000);
    CHECK(wide.capacity() == 1000);
    CHECK_FALSE(wide.contains(A("2001:db8:1:1::2")));
    CHECK(wide.contains(A("2001:db8:1::2")));
}

TEST_CASE("AddressPool: differential against a brute-force model") {
    std::mt19937 rng(42);
    struct Case {
        const char* prefix;
        uint32_t max;
        uint64_t count;
        int identities;
    };
    for (auto c : {Case{"10.0.0.0/28", 1u << 20, 13, 20}, Case{"10.0.0.0/29", 1u << 20, 5, 8},
                   Case{"10.0.0.0/30", 1u << 20, 1, 3}, Case{"192.168.4.0/24", 40, 40, 60},
                   Case{"fd00::/120", 1u << 20, 254, 300}, Case{"fd00::/64", 30, 30, 45},
                   Case{"fd00::/126", 1u << 20, 2, 4}}) {
        CAPTURE(c.prefix);
        auto pool = make(c.prefix, c.max);
        REQUIRE(pool.capacity() == c.count);
        auto m = model_for(pool, c.count);
        differential(pool, m, rng, 6000, c.identities);
    }
}

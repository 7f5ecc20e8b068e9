// NatTable::ruleset(): the nft script, checked as text (no privileges, no kernel).
#include <doctest/doctest.h>

#include <string>

#include "net/nat_table.hpp"
#include "test_wire.hpp"

using porthole::Prefix;
using porthole::net::NatSpec;
using porthole::net::NatTable;
using porthole::test::P;

namespace {

bool has(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size()))
        ++n;
    return n;
}

}  // namespace

TEST_CASE("nat ruleset: IPv4 source only") {
    std::string s = NatTable::ruleset(NatSpec{"eth0", {P("100.64.0.0/16")}});
    CHECK(std::string(NatTable::kTableName) == "porthole");
    CHECK(has(s, "table inet porthole {"));
    CHECK(has(s, "chain postrouting {"));
    CHECK(has(s, "type nat hook postrouting priority srcnat; policy accept;"));
    CHECK(has(s, "oifname \"eth0\" ip saddr 100.64.0.0/16 masquerade"));
    CHECK_FALSE(has(s, "ip6 saddr"));
    CHECK_FALSE(has(s, "hook forward"));  // minimal: no filter chain
    CHECK(count(s, "masquerade") == 1);
}

TEST_CASE("nat ruleset: IPv4 and IPv6 sources") {
    std::string s = NatTable::ruleset(
        NatSpec{"wan1", {P("100.64.0.0/16"), P("fd00:7::/64"), P("198.18.64.0/20")}});
    CHECK(has(s, "oifname \"wan1\" ip saddr 100.64.0.0/16 masquerade"));
    CHECK(has(s, "oifname \"wan1\" ip6 saddr fd00:7::/64 masquerade"));
    CHECK(has(s, "oifname \"wan1\" ip saddr 198.18.64.0/20 masquerade"));
    CHECK(count(s, "masquerade") == 3);
    CHECK_FALSE(has(s, "eth0"));
}

TEST_CASE("nat ruleset: host bits are cleared from source prefixes") {
    std::string s = NatTable::ruleset(NatSpec{"eth0", {P("100.64.7.2/24"), P("fd00:7::2/64")}});
    CHECK(has(s, "ip saddr 100.64.7.0/24 masquerade"));
    CHECK(has(s, "ip6 saddr fd00:7::/64 masquerade"));
    CHECK_FALSE(has(s, "100.64.7.2"));
}

TEST_CASE("nat ruleset: replaces a stale table in the same transaction") {
    std::string s = NatTable::ruleset(NatSpec{"eth0", {P("100.64.0.0/16")}});
    auto add = s.find("add table inet porthole\n");
    auto del = s.find("delete table inet porthole\n");
    auto def = s.find("table inet porthole {");
    REQUIRE(add != std::string::npos);
    REQUIRE(del != std::string::npos);
    REQUIRE(def != std::string::npos);
    CHECK(add < del);
    CHECK(del < def);
    CHECK(count(s, "{") == count(s, "}"));
}

TEST_CASE("nat ruleset: is pure") {
    NatSpec spec{"eth0", {P("100.64.0.0/16"), P("fd00:7::/64")}};
    CHECK(NatTable::ruleset(spec) == NatTable::ruleset(spec));
}

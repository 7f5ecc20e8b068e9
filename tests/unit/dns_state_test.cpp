// DnsState: the crash record round-trips, and damaged records are refused with the line.
#include <doctest/doctest.h>

#include <string>

#include "os/dns_config.hpp"
#include "os/dns_state.hpp"

using namespace porthole::os;

namespace {
std::string error_of(std::string_view text) {
    auto r = parse_state(text);
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}
}  // namespace

TEST_CASE("dns state: both methods round trip") {
    DnsState a;
    a.pid = 4242;
    a.tun = "porthole0";
    a.ifindex = 7;
    a.method = DnsMethod::resolv_conf;
    a.target = "/etc/resolv.conf";
    a.backup = "/run/porthole/porthole0.resolv.conf";
    a.original_present = false;
    a.written = "0123456789abcdef";
    auto back = parse_state(format_state(a));
    REQUIRE(back.has_value());
    CHECK(*back == a);

    DnsState r;
    r.pid = 1;
    r.tun = "vpn0";
    r.ifindex = 12;
    r.method = DnsMethod::resolved;
    auto rb = parse_state(format_state(r));
    REQUIRE(rb.has_value());
    CHECK(*rb == r);
}

TEST_CASE("dns state: unknown keys and comments are skipped") {
    auto s = parse_state("# x\nfuture=1\npid=5\nmethod=resolved\nifindex=3\n\n");
    REQUIRE(s.has_value());
    CHECK(s->pid == 5);
    CHECK(s->ifindex == 3);
}

TEST_CASE("dns state: damaged records") {
    CHECK(error_of("pid=abc\nmethod=resolved\nifindex=1\n").find("line 1") != std::string::npos);
    CHECK(error_of("pid=-3\nmethod=resolved\nifindex=1\n").find("pid") != std::string::npos);
    CHECK(error_of("method=resolved\nifindex=1\n") == "no pid");
    CHECK(error_of("pid=3\n") == "no method");
    CHECK(error_of("pid=3\nmethod=nsswitch\n").find("unknown method") != std::string::npos);
    CHECK(error_of("pid=3\nmethod=resolv-conf\n").find("target") != std::string::npos);
    CHECK(error_of("pid=3\nmethod=resolved\n").find("ifindex") != std::string::npos);
    CHECK(error_of("pid=3\nmethod=resolved\nifindex=2\ngarbage\n").find("line 4") !=
          std::string::npos);
    CHECK(error_of("pid=3\nmethod=resolv-conf\ntarget=/x\nbackup=/y\noriginal=maybe\n")
              .find("original") != std::string::npos);
}

TEST_CASE("dns mode: the four spellings") {
    CHECK(*parse_dns_mode("auto") == DnsMode::automatic);
    CHECK(*parse_dns_mode("resolved") == DnsMode::resolved);
    CHECK(*parse_dns_mode("resolv-conf") == DnsMode::resolv_conf);
    CHECK(*parse_dns_mode("off") == DnsMode::off);
    CHECK_FALSE(parse_dns_mode("resolvconf").has_value());
    for (auto m : {DnsMode::automatic, DnsMode::resolved, DnsMode::resolv_conf, DnsMode::off})
        CHECK(*parse_dns_mode(to_string(m)) == m);
}

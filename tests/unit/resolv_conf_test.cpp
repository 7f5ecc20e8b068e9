// render_resolv_conf: full tunnel lists only the tunnel's servers and domains; split tunnel puts
// them first; options are kept; at most three nameservers. content_fingerprint is stable.
#include <doctest/doctest.h>

#include <string>

#include "os/resolv_conf.hpp"
#include "test_wire.hpp"

using porthole::os::content_fingerprint;
using porthole::os::DnsSettings;
using porthole::os::render_resolv_conf;
using porthole::test::A;

namespace {

const char* kOriginal =
    "# from DHCP\n"
    "domain home.lan\n"
    "search home.lan office.lan\n"
    "nameserver 192.168.1.1\n"
    "nameserver fe80::1%wlan0\n"
    "options edns0 trust-ad\n"
    "sortlist 130.155.160.0/255.255.240.0\n";

// The lines of text that are not comments.
std::string body(const std::string& text) {
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        size_t nl = text.find('\n', i);
        std::string line = text.substr(i, nl - i);
        if (!line.empty() && line[0] != '#') out += line + "\n";
        i = nl == std::string::npos ? text.size() : nl + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("resolv.conf: full tunnel lists only the tunnel's servers and search domains") {
    DnsSettings s{{A("100.64.0.1"), A("fd00:64::1")}, {"corp.example"}, true};
    auto out = render_resolv_conf(s, kOriginal, "porthole0 (pid 42)");
    CHECK(out.rfind("# Written by porthole for porthole0 (pid 42)", 0) == 0);
    CHECK(body(out) ==
          "nameserver 100.64.0.1\n"
          "nameserver fd00:64::1\n"
          "search corp.example\n"
          "options edns0 trust-ad\n"
          "sortlist 130.155.160.0/255.255.240.0\n");
}

TEST_CASE("resolv.conf: split tunnel puts the tunnel's first, then the original ones") {
    DnsSettings s{{A("10.0.0.53")}, {"corp.example", "home.lan"}, false};
    auto out = render_resolv_conf(s, kOriginal, "pt0");
    CHECK(body(out) ==
          "nameserver 10.0.0.53\n"
          "nameserver 192.168.1.1\n"
          "nameserver fe80::1%wlan0\n"
          "search corp.example home.lan office.lan\n"
          "options edns0 trust-ad\n"
          "sortlist 130.155.160.0/255.255.240.0\n");
}

TEST_CASE("resolv.conf: at most three nameservers; search domains only from the tunnel") {
    DnsSettings s{{A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.4")}, {}, true};
    CHECK(body(render_resolv_conf(s, kOriginal, "x")) ==
          "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"
          "options edns0 trust-ad\nsortlist 130.155.160.0/255.255.240.0\n");
    s.full_tunnel = false;
    auto split = body(render_resolv_conf(s, kOriginal, "x"));
    CHECK(split.find("192.168.1.1") == std::string::npos);  // no room left
}

TEST_CASE("resolv.conf: only search domains from the tunnel keep the original servers") {
    DnsSettings s{{}, {"lab.example"}, true};
    CHECK(body(render_resolv_conf(s, "nameserver 9.9.9.9\r\n", "x")) ==
          "nameserver 9.9.9.9\nsearch lab.example\n");
}

TEST_CASE("resolv.conf: empty or absent original, odd spacing") {
    DnsSettings s{{A("100.64.0.1")}, {"a.example"}, false};
    CHECK(body(render_resolv_conf(s, "", "x")) == "nameserver 100.64.0.1\nsearch a.example\n");
    CHECK(body(render_resolv_conf(s, "  nameserver\t1.1.1.1  \n;comment\nnameserver\n", "x")) ==
          "nameserver 100.64.0.1\nnameserver 1.1.1.1\nsearch a.example\n");
}

TEST_CASE("content_fingerprint: 16 hex digits, stable, content-sensitive") {
    CHECK(content_fingerprint("") == "cbf29ce484222325");
    CHECK(content_fingerprint("nameserver 1.1.1.1\n").size() == 16);
    CHECK(content_fingerprint("a") != content_fingerprint("b"));
    CHECK(content_fingerprint("abc") == content_fingerprint(std::string("abc")));
}

// ClientStatus: JSON round trip (what `porthole status` reads back) and the text rendering.
#include <doctest/doctest.h>

#include <string>

#include "client/client_status.hpp"

using porthole::client::ClientStatus;
using porthole::client::from_json;
using porthole::client::to_json;
using porthole::client::to_text;

namespace {
ClientStatus sample() {
    ClientStatus s;
    s.state = "up";
    s.server = "vpn.example.net:443";
    s.tun = "porthole0";
    s.addresses = {"100.64.0.2/24", "fd00:64::2/64"};
    s.mode = "full tunnel";
    s.since_unix = 1000;
    s.up_since_unix = 1000;
    s.pid = 77;
    s.bytes_up = 20000;
    s.packets_up = 20;
    s.bytes_down = 3;
    s.packets_down = 1;
    s.reconnects = 2;
    s.key_updates = 4;
    s.records_sealed = 1000;
    s.records_opened = 2000;
    s.last_error = "peer stopped answering keep-alives";
    s.rtt_ms = 12.5;
    s.dns = "/etc/resolv.conf: servers 100.64.0.1";
    return s;
}
}  // namespace

TEST_CASE("client status: JSON round trip") {
    auto s = sample();
    auto text = to_json(s);
    CHECK(text.back() == '\n');
    std::string error;
    auto back = from_json(text, error);
    REQUIRE_MESSAGE(back.has_value(), error);
    CHECK(back->state == "up");
    CHECK(back->addresses == s.addresses);
    CHECK(back->bytes_up == 20000);
    CHECK(back->reconnects == 2);
    CHECK(back->key_updates == 4);
    CHECK(back->records_sealed == 1000);
    CHECK(back->records_opened == 2000);
    REQUIRE(back->rtt_ms.has_value());
    CHECK(*back->rtt_ms == doctest::Approx(12.5));
    CHECK(back->dns == s.dns);

    s.rtt_ms.reset();
    s.last_error = "bad \xff byte";  // invalid UTF-8 from a peer must not throw
    auto again = from_json(to_json(s), error);
    REQUIRE(again.has_value());
    CHECK_FALSE(again->rtt_ms.has_value());
}

TEST_CASE("client status: bad replies are one-line errors") {
    std::string error;
    CHECK_FALSE(from_json("not json", error).has_value());
    CHECK(error.find("not JSON") != std::string::npos);
    CHECK_FALSE(from_json("{\"state\": 5}", error).has_value());
    CHECK(error.find("bad field") != std::string::npos);
}

TEST_CASE("client status: text") {
    auto t = to_text(sample(), 1300);
    CHECK(t.find("state:      up (since 5 min ago)\n") != std::string::npos);
    CHECK(t.find("tunnel:     porthole0 100.64.0.2/24 fd00:64::2/64, full tunnel\n") !=
          std::string::npos);
    CHECK(t.find("traffic:    up 19.5 KiB (20 packets), down 3 B (1 packets)\n") !=
          std::string::npos);
    CHECK(t.find("rtt:        12.5 ms\n") != std::string::npos);
    CHECK(
        t.find("tls:        key updates sent 4, records sealed 1000 / opened 2000 by porthole\n") !=
        std::string::npos);
    CHECK(t.find("last error: peer stopped answering keep-alives\n") != std::string::npos);
}

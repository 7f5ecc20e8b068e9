// src/control: full and resumed TLS handshakes in the status JSON, Prometheus text and
// portholectl's status table.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "control/report.hpp"
#include "control/stats.hpp"

using namespace porthole;
using namespace porthole::control;

TEST_CASE("control: TLS handshakes, full and resumed") {
    StatusReport r;
    r.version = "9.9.9";
    for (int i = 0; i < 3; ++i)
        r.handshakes.add_tls(false);
    for (int i = 0; i < 5; ++i)
        r.handshakes.add_tls(true);
    CHECK(r.handshakes.tls_full() == 3);
    CHECK(r.handshakes.tls_resumed() == 5);
    CHECK(r.handshakes.failed() == 0);  // not connection results

    auto j = nlohmann::json::parse(status_json(r));
    CHECK(j["tls_handshakes"]["full"] == 3);
    CHECK(j["tls_handshakes"]["resumed"] == 5);

    const std::string prom = prometheus_text(r);
    CHECK(prom.find("# TYPE porthole_tls_handshakes_total counter\n") != std::string::npos);
    CHECK(prom.find("porthole_tls_handshakes_total{kind=\"full\"} 3\n") != std::string::npos);
    CHECK(prom.find("porthole_tls_handshakes_total{kind=\"resumed\"} 5\n") != std::string::npos);

    auto table = status_table(status_json(r));
    REQUIRE(table);
    CHECK(table->find("tls          full 3, resumed 5; key updates sent 0\n") != std::string::npos);
}

// src/control: statistics, the JSON and Prometheus formats, portholectl's tables.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "control/metrics_server.hpp"
#include "control/one_shot_server.hpp"
#include "control/report.hpp"
#include "control/stats.hpp"

using namespace porthole;
using namespace porthole::control;
using nlohmann::json;

namespace {

StatusReport sample_report() {
    StatusReport r;
    r.version = "9.9.9";
    r.start_unix = 1'764'140'000;
    r.uptime_s = 3723;
    r.sessions = 2;
    r.connections = 3;
    r.max_sessions = 100;
    r.handshakes.add(HandshakeResult::ok);
    r.handshakes.add(HandshakeResult::ok);
    r.handshakes.add(HandshakeResult::cert_rejected);
    r.handshakes.add(HandshakeResult::decoy);
    r.traffic = {10, 1000, 20, 3'000'000};
    r.drops.add(session::DropReason::tx_queue_full, 5);
    r.resumed = 1;
    r.replaced = 2;
    r.kicked = 3;
    r.event_loops = 2;
    r.handed_off = 7;
    r.key_updates = 11;
    for (uint64_t us : {10, 50, 51, 900, 2'000'000})
        r.queue_delay.record(us);
    return r;
}

// Prometheus sample lines "name{labels} value" -> value.
std::map<std::string, std::string> samples(const std::string& text) {
    std::map<std::string, std::string> m;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto sp = line.rfind(' ');
        m[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return m;
}

}  // namespace

TEST_CASE("control: the delay histogram has fixed, inclusive buckets") {
    DelayHistogram h;
    CHECK(h.count() == 0);
    CHECK_FALSE(h.quantile_bound_us(0.5));
    h.record(0);
    h.record(50);         // == bound: in the 50 us bucket
    h.record(51);         // next bucket (100 us)
    h.record(1'000'001);  // +Inf
    CHECK(h.bucket(0) == 2);
    CHECK(h.bucket(1) == 1);
    CHECK(h.bucket(DelayHistogram::kBuckets - 1) == 1);
    CHECK(h.cumulative(0) == 2);
    CHECK(h.cumulative(1) == 3);
    CHECK(h.cumulative(DelayHistogram::kBuckets - 1) == 4);
    CHECK(h.count() == 4);
    CHECK(h.sum_us() == 1'000'102);
    CHECK(h.quantile_bound_us(0.5) == 50u);
    CHECK(h.quantile_bound_us(0.75) == 100u);
    CHECK_FALSE(h.quantile_bound_us(1.0));  // in +Inf
}

TEST_CASE("control: TLS handshake failures are sorted by their message") {
    CHECK(classify_tls_failure("client certificate rejected: not issued by the configured client "
                               "CA (subject: CN=x, issuer: CN=y)") ==
          HandshakeResult::cert_rejected);
    CHECK(classify_tls_failure("client sent no certificate") == HandshakeResult::no_certificate);
    CHECK(classify_tls_failure("peer does not speak TLS (wrong version number)") ==
          HandshakeResult::not_tls);
    CHECK(classify_tls_failure("198.18.1.2:4000 closed the connection during the TLS handshake") ==
          HandshakeResult::peer_closed);
    CHECK(classify_tls_failure("no TLS cipher suite in common with the peer") ==
          HandshakeResult::tls_error);
    HandshakeCounters c;
    c.add(HandshakeResult::ok);
    c.add(HandshakeResult::decoy);
    c.add(HandshakeResult::timeout);
    c.add(HandshakeResult::server_full);
    CHECK(c.failed() == 2);  // neither ok nor decoy visits are failures
    CHECK(kHandshakeResultNames.size() == size_t(HandshakeResult::count_));
    CHECK(kHandshakeResultNames[size_t(HandshakeResult::server_full)] == "server_full");
}

TEST_CASE("control: event loops' reports add up; process-wide fields stay") {
    StatusReport total;
    total.version = "9.9.9";
    total.max_sessions = 100;
    StatusReport a = sample_report(), b = sample_report();
    b.drops.add(session::DropReason::spoofed_source, 4);
    add_report(total, a);
    add_report(total, b);
    CHECK(total.version == "9.9.9");
    CHECK(total.max_sessions == 100);
    CHECK(total.sessions == 2 * a.sessions);
    CHECK(total.connections == 2 * a.connections);
    CHECK(total.handshakes[HandshakeResult::ok] == 4);
    CHECK(total.handshakes.failed() == 2 * a.handshakes.failed());
    CHECK(total.traffic.bytes_down == 6'000'000);
    CHECK(total.drops[session::DropReason::tx_queue_full] == 10);
    CHECK(total.drops[session::DropReason::spoofed_source] == 4);
    CHECK(total.resumed == 2);
    CHECK(total.replaced == 4);
    CHECK(total.kicked == 6);
    CHECK(total.handed_off == 14);
    CHECK(total.key_updates == 22);
    CHECK(total.queue_delay.count() == 10);
    CHECK(total.queue_delay.sum_us() == 2 * a.queue_delay.sum_us());
}

TEST_CASE("control: status JSON carries every counter") {
    json j = json::parse(status_json(sample_report()));
    CHECK(j["version"] == "9.9.9");
    CHECK(j["uptime_s"] == 3723);
    CHECK(j["sessions"] == 2);
    CHECK(j["handshakes"]["ok"] == 2);
    CHECK(j["handshakes"]["cert_rejected"] == 1);
    CHECK(j["handshakes_failed"] == 1);
    CHECK(j["traffic"]["down"]["bytes"] == 3'000'000);
    CHECK(j["traffic"]["up"]["packets"] == 10);
    CHECK(j["drops"]["tx_queue_full"] == 5);
    CHECK(j["drops"]["spoofed_source"] == 0);
    CHECK(j["reconnects"]["resumed"] == 1);
    CHECK(j["reconnects"]["replaced"] == 2);
    CHECK(j["kicked"] == 3);
    CHECK(j["event_loops"] == 2);
    CHECK(j["handed_off"] == 7);
    CHECK(j["tls_key_updates"] == 11);
    CHECK(j["queue_delay"]["count"] == 5);
    CHECK(j["queue_delay"]["buckets"].size() == DelayHistogram::kBuckets);
    CHECK(j["queue_delay"]["buckets"].back()["le_us"].is_null());
    CHECK(j["queue_delay"]["p50_le_us"] == 100);
}

TEST_CASE("control: sessions JSON, invalid UTF-8 in an identity does not throw") {
    SessionInfo s;
    s.id = 7;
    s.identity = "ue\xff";
    s.state = "established";
    s.inner4 = "100.64.0.2";
    s.outer = "198.18.1.2:40000";
    s.rtt_us = 1234;
    s.traffic.bytes_up = 99;
    SessionInfo t;
    t.id = 8;
    t.state = "handshake";
    json j = json::parse(sessions_json({s, t}));
    REQUIRE(j["sessions"].size() == 2);
    CHECK(j["sessions"][0]["id"] == 7);
    CHECK(j["sessions"][0]["inner4"] == "100.64.0.2");
    CHECK(j["sessions"][0]["inner6"].is_null());
    CHECK(j["sessions"][0]["rtt_us"] == 1234);
    CHECK(j["sessions"][0]["traffic"]["up"]["bytes"] == 99);
    CHECK(j["sessions"][1]["rtt_us"].is_null());
    CHECK(json::parse(error_json("no \"such\" thing"))["error"] == "no \"such\" thing");
}

TEST_CASE("control: event loops that did not answer are named in every reply") {
    StatusReport r = sample_report();
    CHECK(json::parse(status_json(r))["unresponsive_loops"].empty());
    auto complete = status_table(status_json(r));
    REQUIRE(complete);
    CHECK(complete->find("not answering") == std::string::npos);
    CHECK(prometheus_text(r).find("\nporthole_event_loops_unresponsive 0\n") != std::string::npos);

    r.unresponsive_loops = {1};
    json j = json::parse(status_json(r));
    CHECK(j["unresponsive_loops"] == json::array({1}));
    auto one = status_table(status_json(r));
    REQUIRE(one);
    CHECK(one->find("2 (7 packets handed from one to another); loop 1 not answering") !=
          std::string::npos);
    CHECK(prometheus_text(r).find("\nporthole_event_loops_unresponsive 1\n") != std::string::npos);
    r.unresponsive_loops = {1, 3};
    CHECK(status_table(status_json(r))->find("; loops 1, 3 not answering") != std::string::npos);

    SessionInfo s;
    s.id = 2;
    s.state = "established";
    CHECK_FALSE(json::parse(sessions_json({s})).contains("unresponsive_loops"));
    CHECK(sessions_table(sessions_json({s}))->find("incomplete") == std::string::npos);
    auto partial = sessions_table(sessions_json({s}, {3}));
    REQUIRE(partial);
    CHECK(partial->find("incomplete; loop 3 not answering: their sessions are not listed") !=
          std::string::npos);
    CHECK(partial->find("2   -") != std::string::npos);
}

TEST_CASE("control: the Prometheus page is well-formed") {
    std::string text = prometheus_text(sample_report());
    auto m = samples(text);
    CHECK(m["porthole_sessions"] == "2");
    CHECK(m["porthole_handshakes_total{result=\"ok\"}"] == "2");
    CHECK(m["porthole_handshakes_total{result=\"cert_rejected\"}"] == "1");
    CHECK(m["porthole_bytes_total{direction=\"down\"}"] == "3000000");
    CHECK(m["porthole_packets_total{direction=\"up\"}"] == "10");
    CHECK(m["porthole_event_loops"] == "2");
    CHECK(m["porthole_handed_off_packets_total"] == "7");
    CHECK(m["porthole_tls_key_updates_total"] == "11");
    CHECK(m["porthole_drops_total{reason=\"tx_queue_full\"}"] == "5");
    CHECK(m["porthole_reconnects_total"] == "1");
    CHECK(m["porthole_uptime_seconds"] == "3723");
    CHECK(m["porthole_queue_delay_seconds_bucket{le=\"0.00005\"}"] == "2");
    CHECK(m["porthole_queue_delay_seconds_bucket{le=\"0.0001\"}"] == "3");
    CHECK(m["porthole_queue_delay_seconds_bucket{le=\"1\"}"] == "4");
    CHECK(m["porthole_queue_delay_seconds_bucket{le=\"+Inf\"}"] == "5");
    CHECK(m["porthole_queue_delay_seconds_count"] == "5");
    CHECK(m["porthole_queue_delay_seconds_sum"] == "2.001011");
    // Every sample's metric has one # TYPE line, given before it.
    std::istringstream in(text);
    std::string line;
    std::set<std::string> typed;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            auto name = line.substr(7, line.find(' ', 7) - 7);
            CHECK(typed.insert(name).second);
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        auto name = line.substr(0, line.find_first_of("{ "));
        for (auto suffix : {"_bucket", "_sum", "_count"})
            if (name.size() > strlen(suffix) &&
                name.compare(name.size() - strlen(suffix), std::string::npos, suffix) == 0 &&
                typed.count(name.substr(0, name.size() - strlen(suffix))))
                name = name.substr(0, name.size() - strlen(suffix));
        CHECK_MESSAGE(typed.count(name) == 1, line);
    }
}

TEST_CASE("control: readable tables from the JSON replies") {
    auto status = status_table(status_json(sample_report()));
    REQUIRE(status);
    CHECK(status->find("portholed    9.9.9, up 1h02m03s") != std::string::npos);
    CHECK(status->find("2 established (3 connections, limit 100)") != std::string::npos);
    CHECK(status->find("ok 2, failed 1 (cert_rejected 1, decoy 1)") != std::string::npos);
    CHECK(status->find("20 packets, 2.9 MiB") != std::string::npos);
    CHECK(status->find("tx_queue_full 5") != std::string::npos);
    CHECK(status->find("resumed 1, replaced 2, kicked 3") != std::string::npos);
    CHECK(status->find("key updates sent 11") != std::string::npos);
    CHECK(status->find("2 (7 packets handed from one to another)") != std::string::npos);
    CHECK(status->find("p50 <= 100 us, p99 > 1 s (5 samples)") != std::string::npos);

    SessionInfo s;
    s.id = 3;
    s.identity = "ue1";
    s.state = "established";
    s.inner4 = "100.64.0.2";
    s.inner6 = "fd00:64::2";
    s.outer = "198.18.1.2:40000";
    s.connected_s = 65;
    s.rtt_us = 850;
    s.traffic.bytes_down = 1536;
    auto table = sessions_table(sessions_json({s}));
    REQUIRE(table);
    CHECK(table->rfind("ID  IDENTITY", 0) == 0);
    CHECK(
        table->find("3   ue1       established  100.64.0.2,fd00:64::2  198.18.1.2:40000  1m05s") !=
        std::string::npos);
    CHECK(table->find("1.5 KiB") != std::string::npos);
    CHECK(table->find("850 us") != std::string::npos);
    CHECK(sessions_table(sessions_json({}))->find("(no sessions)") != std::string::npos);

    auto err = status_table(error_json("unknown request"));
    REQUIRE_FALSE(err);
    CHECK(err.error().message == "unknown request");
    CHECK_FALSE(status_table("not json").has_value());
    CHECK_FALSE(sessions_table("{\"uptime_s\":1}").has_value());
    CHECK(*message_text(ok_json("kicked session 3 [ue1]")) == "kicked session 3 [ue1]\n");
    CHECK(reply_error(error_json("x")) == "x");
    CHECK_FALSE(reply_error(ok_json("y")).has_value());
}

TEST_CASE("control: durations, sizes and delays for people") {
    CHECK(format_duration(5) == "5s");
    CHECK(format_duration(62) == "1m02s");
    CHECK(format_duration(3723) == "1h02m03s");
    CHECK(format_duration(90061) == "1d01h01m");
    CHECK(format_bytes(999) == "999 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(1073741824) == "1.0 GiB");
    CHECK(format_us(850) == "850 us");
    CHECK(format_us(1250) == "1.25 ms");
    CHECK(format_us(12'000) == "12 ms");
    CHECK(format_us(1'500'000) == "1.5 s");
}

TEST_CASE("control: request framing") {
    size_t t = 0;
    using F = OneShotServer::Framing;
    CHECK(OneShotServer::find_end("status", F::line, t) == std::string_view::npos);
    CHECK(OneShotServer::find_end("status\n", F::line, t) == 6);
    CHECK(t == 1);
    CHECK(OneShotServer::find_end("status\r\nx", F::line, t) == 6);
    CHECK(t == 2);
    CHECK(OneShotServer::find_end("GET / HTTP/1.1\r\nHost: x\r\n", F::http_head, t) ==
          std::string_view::npos);
    CHECK(OneShotServer::find_end("GET / HTTP/1.1\r\nHost: x\r\n\r\n", F::http_head, t) == 23);
    CHECK(t == 4);
    CHECK(OneShotServer::find_end("GET / HTTP/1.0\n\n", F::http_head, t) == 14);
    CHECK(t == 2);
}

TEST_CASE("control: the metrics endpoint answers GET /metrics only") {
    MetricsServer::Render page = [] { return std::string("porthole_sessions 1\n"); };
    auto ok = MetricsServer::respond("GET /metrics HTTP/1.1\r\nHost: x", page);
    CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(ok.find("Content-Length: 20\r\n") != std::string::npos);
    CHECK(ok.substr(ok.size() - 20) == "porthole_sessions 1\n");
    CHECK(MetricsServer::respond("GET /metrics?x=1 HTTP/1.0", page).rfind("HTTP/1.1 200", 0) == 0);
    auto head = MetricsServer::respond("HEAD /metrics HTTP/1.1", page);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
    CHECK(MetricsServer::respond("GET / HTTP/1.1", page).rfind("HTTP/1.1 404", 0) == 0);
    CHECK(MetricsServer::respond("POST /metrics HTTP/1.1", page).rfind("HTTP/1.1 405", 0) == 0);
    CHECK(MetricsServer::respond("garbage", page).rfind("HTTP/1.1 400", 0) == 0);
    CHECK(MetricsServer::respond("", page).rfind("HTTP/1.1 400", 0) == 0);
}

#include "control/report.hpp"

#include <fmt/chrono.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace porthole::control {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
    // Identities come from certificates: invalid UTF-8 is replaced, never a throw.
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json traffic_json(const Traffic& t) {
    return {{"up", {{"packets", t.packets_up}, {"bytes", t.bytes_up}}},
            {"down", {{"packets", t.packets_down}, {"bytes", t.bytes_down}}}};
}

json drops_json(const session::DropCounters& d) {
    json j = json::object();
    for (size_t r = 0; r < size_t(session::DropReason::count_); ++r)
        j[std::string(session::kDropReasonNames[r])] = d[session::DropReason(r)];
    return j;
}

// 50 -> "0.00005", 1000000 -> "1"
std::string seconds_text(uint64_t us) {
    std::string s = fmt::format("{}.{:06}", us / 1'000'000, us % 1'000'000);
    while (s.back() == '0')
        s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

}  // namespace

std::string format_duration(uint64_t s) {
    if (s >= 86400)
        return fmt::format("{}d{:02}h{:02}m", s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if (s >= 3600) return fmt::format("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60);
    if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}s", s);
}

std::string format_bytes(uint64_t b) {
    static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (b < 1024) return fmt::format("{} B", b);
    double v = double(b) / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(kUnits)) {
        v /= 1024;
        ++u;
    }
    return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string format_us(uint64_t us) {
    if (us >= 1'000'000) return fmt::format("{:.1f} s", double(us) / 1e6);
    if (us >= 10'000) return fmt::format("{} ms", us / 1000);
    if (us >= 1'000) return fmt::format("{:.2f} ms", double(us) / 1000);
    return fmt::format("{} us", us);
}

std::string status_json(const StatusReport& r) {
    json hs = json::object();
    for (size_t i = 0; i < size_t(HandshakeResult::count_); ++i)
        hs[std::string(kHandshakeResultNames[i])] = r.handshakes[HandshakeResult(i)];
    json buckets = json::array();
    for (size_t i = 0; i < DelayHistogram::kBuckets; ++i) {
        json b = {{"count", r.queue_delay.bucket(i)}};
        b["le_us"] = i < DelayHistogram::kBoundsUs.size() ? json(DelayHistogram::kBoundsUs[i])
                                                          : json(nullptr);
        buckets.push_back(std::move(b));
    }
    json qd = {{"count", r.queue_delay.count()},
               {"sum_us", r.queue_delay.sum_us()},
               {"buckets", std::move(buckets)}};
    for (auto [name, q] : {std::pair{"p50_le_us", 0.5}, {"p99_le_us", 0.99}}) {
        auto b = r.queue_delay.quantile_bound_us(q);
        qd[name] = b ? json(*b) : json(nullptr);
    }
    json j = {{"version", r.version},
              {"start_time", r.start_unix},
              {"uptime_s", r.uptime_s},
              {"sessions", r.sessions},
              {"connections", r.connections},
              {"max_sessions", r.max_sessions},
              {"handshakes", std::move(hs)},
              {"handshakes_failed", r.handshakes.failed()},
              {"tls_handshakes",
               {{"full", r.handshakes.tls_full()}, {"resumed", r.handshakes.tls_resumed()}}},
              {"tls_key_updates", r.key_updates},
              {"traffic", traffic_json(r.traffic)},
              {"drops", drops_json(r.drops)},
              {"reconnects", {{"resumed", r.resumed}, {"replaced", r.replaced}}},
              {"kicked", r.kicked},
              {"queue_delay", std::move(qd)},
              {"event_loops", r.event_loops},
              {"handed_off", r.handed_off},
              {"unresponsive_loops", r.unresponsive_loops}};
    return dump(j);
}

std::string sessions_json(const std::vector<SessionInfo>& sessions,
                          const std::vector<uint64_t>& unresponsive_loops) {
    json list = json::array();
    for (const auto& s : sessions) {
        json j = {{"id", s.id},
                  {"identity", s.identity},
                  {"state", s.state},
                  {"inner4", s.inner4.empty() ? json(nullptr) : json(s.inner4)},
                  {"inner6", s.inner6.empty() ? json(nullptr) : json(s.inner6)},
                  {"outer", s.outer},
                  {"since", s.since_unix},
                  {"connected_s", s.connected_s},
                  {"traffic", traffic_json(s.traffic)},
                  {"drops", drops_json(s.drops)},
                  {"rtt_us", s.rtt_us ? json(*s.rtt_us) : json(nullptr)},
                  {"queue_delay_us", s.queue_delay_us},
                  {"queued_bytes", s.queued_bytes}};
        list.push_back(std::move(j));
    }
    json j{{"sessions", std::move(list)}};
    if (!unresponsive_loops.empty()) j["unresponsive_loops"] = unresponsive_loops;
    return dump(j);
}

std::string error_json(std::string_view text) {
    return dump(json{{"error", text}});
}

std::string ok_json(std::string_view text) {
    return dump(json{{"ok", true}, {"message", text}});
}

std::string prometheus_text(const StatusReport& r) {
    std::string out;
    auto head = [&](std::string_view name, std::string_view type, std::string_view help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    // A metric with one unlabelled sample.
    auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                      auto value) {
        head(name, type, help);
        out += fmt::format("{} {}\n", name, value);
    };
    metric("porthole_uptime_seconds", "gauge", "Seconds since portholed started.", r.uptime_s);
    metric("process_start_time_seconds", "gauge", "Start time of the process since the epoch.",
           r.start_unix);
    metric("porthole_sessions", "gauge", "Established tunnel sessions.", r.sessions);
    metric("porthole_connections", "gauge",
           "Open connections, including TLS handshakes and closing sessions.", r.connections);
    metric("porthole_max_sessions", "gauge", "Configured session limit (max-sessions).",
           r.max_sessions);
    head("porthole_handshakes_total", "counter",
         "Connections by how their way to a tunnel session ended (ok, or the failure).");
    for (size_t i = 0; i < size_t(HandshakeResult::count_); ++i)
        out += fmt::format("porthole_handshakes_total{{result=\"{}\"}} {}\n",
                           kHandshakeResultNames[i], r.handshakes[HandshakeResult(i)]);
    head("porthole_tls_handshakes_total", "counter",
         "Completed TLS handshakes: full (client certificate verified) or resumed (TLS 1.3 "
         "session ticket).");
    out +=
        fmt::format("porthole_tls_handshakes_total{{kind=\"full\"}} {}\n", r.handshakes.tls_full());
    out += fmt::format("porthole_tls_handshakes_total{{kind=\"resumed\"}} {}\n",
                       r.handshakes.tls_resumed());
    metric("porthole_tls_key_updates_total", "counter",
           "TLS 1.3 KeyUpdates sent to UEs: each session renews its sending key every "
           "key-update-records records.",
           r.key_updates);
    head("porthole_bytes_total", "counter",
         "Tunnelled IP bytes; up: from UEs to the network, down: from the network to UEs.");
    out += fmt::format("porthole_bytes_total{{direction=\"up\"}} {}\n", r.traffic.bytes_up);
    out += fmt::format("porthole_bytes_total{{direction=\"down\"}} {}\n", r.traffic.bytes_down);
    head("porthole_packets_total", "counter",
         "Tunnelled IP packets (a super-packet counts once); up/down as for bytes.");
    out += fmt::format("porthole_packets_total{{direction=\"up\"}} {}\n", r.traffic.packets_up);
    out += fmt::format("porthole_packets_total{{direction=\"down\"}} {}\n", r.traffic.packets_down);
    head("porthole_drops_total", "counter", "Packets not delivered, by reason.");
    for (size_t i = 0; i < size_t(session::DropReason::count_); ++i)
        out += fmt::format("porthole_drops_total{{reason=\"{}\"}} {}\n",
                           session::kDropReasonNames[i], r.drops[session::DropReason(i)]);
    metric("porthole_reconnects_total", "counter",
           "Sessions resumed by a UE presenting its session token (a reconnect).", r.resumed);
    metric("porthole_sessions_replaced_total", "counter",
           "Sessions ended because a newer connection with the same identity took over.",
           r.replaced);
    metric("porthole_sessions_kicked_total", "counter", "Sessions ended by portholectl kick.",
           r.kicked);
    metric("porthole_event_loops", "gauge", "Event loops (threads) serving UEs.", r.event_loops);
    metric("porthole_event_loops_unresponsive", "gauge",
           "Event loops that did not answer this scrape within 2 s (hung?); their counters are "
           "missing from it.",
           r.unresponsive_loops.size());
    metric("porthole_handed_off_packets_total", "counter",
           "Packets that arrived on one event loop's TUN queue (or from a UE) for a session of "
           "another loop, and were passed to it.",
           r.handed_off);
    head("porthole_queue_delay_seconds", "histogram",
         "Time a packet waits in a session's send queue before it is written to the socket "
         "(sampled: one packet in flight per session and lane).");
    for (size_t i = 0; i < DelayHistogram::kBuckets; ++i) {
        std::string le = i < DelayHistogram::kBoundsUs.size()
                             ? seconds_text(DelayHistogram::kBoundsUs[i])
                             : std::string("+Inf");
        out += fmt::format("porthole_queue_delay_seconds_bucket{{le=\"{}\"}} {}\n", le,
                           r.queue_delay.cumulative(i));
    }
    out +=
        fmt::format("porthole_queue_delay_seconds_sum {}\n", seconds_text(r.queue_delay.sum_us()));
    out += fmt::format("porthole_queue_delay_seconds_count {}\n", r.queue_delay.count());
    return out;
}

// --- readable tables (portholectl) ---

namespace {

Result<json> parse_reply(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return make_error("portholed sent a reply that is not JSON");
    if (j.contains("error") && j["error"].is_string())
        return make_error("{}", j["error"].get<std::string>());
    return j;
}

uint64_t u64(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
const json& sub(const json& j, const char* key) {
    static const json empty = json::object();
    auto it = j.find(key);
    return it != j.end() && it->is_object() ? *it : empty;
}

// "a 1, b 2" for the non-zero entries of an object of counters; "none" when all are zero.
std::string nonzero_list(const json& obj, std::string_view skip = {}) {
    std::string out;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (it.key() == skip || !it->is_number_unsigned() || it->get<uint64_t>() == 0) continue;
        out += fmt::format("{}{} {}", out.empty() ? "" : ", ", it.key(), it->get<uint64_t>());
    }
    return out.empty() ? "none" : out;
}

// "; loop 1 not answering" / "; loops 1, 3 not answering" from "unresponsive_loops"; empty when
// every loop answered.
std::string unresponsive_note(const json& j) {
    auto it = j.find("unresponsive_loops");
    if (it == j.end() || !it->is_array() || it->empty()) return {};
    std::string list;
    for (const auto& v : *it)
        if (v.is_number_unsigned())
            list += fmt::format("{}{}", list.empty() ? "" : ", ", v.get<uint64_t>());
    return fmt::format("; {} {} not answering", it->size() == 1 ? "loop" : "loops", list);
}

std::string traffic_text(const json& t, const char* dir) {
    const json& d = sub(t, dir);
    return fmt::format("{} packets, {}", u64(d, "packets"), format_bytes(u64(d, "bytes")));
}

}  // namespace

Result<std::string> status_table(std::string_view text) {
    auto parsed = parse_reply(text);
    if (!parsed) return parsed.error();
    const json& j = *parsed;
    if (!j.contains("uptime_s")) return make_error("portholed sent an unexpected status reply");
    std::string out;
    auto row = [&](std::string_view k, const std::string& v) {
        out += fmt::format("{:<13}{}\n", k, v);
    };
    auto start = std::chrono::system_clock::time_point(
        std::chrono::seconds(j.value("start_time", int64_t(0))));
    row("portholed", fmt::format("{}, up {} (since {:%Y-%m-%d %H:%M:%S} UTC)", str(j, "version"),
                                 format_duration(u64(j, "uptime_s")),
                                 std::chrono::floor<std::chrono::seconds>(start)));
    row("sessions", fmt::format("{} established ({} connections, limit {})", u64(j, "sessions"),
                                u64(j, "connections"), u64(j, "max_sessions")));
    const json& hs = sub(j, "handshakes");
    std::string failed = nonzero_list(hs, "ok");
    row("handshakes", fmt::format("ok {}, failed {}{}", u64(hs, "ok"), u64(j, "handshakes_failed"),
                                  failed == "none" ? "" : fmt::format(" ({})", failed)));
    const json& tls = sub(j, "tls_handshakes");
    row("tls", fmt::format("full {}, resumed {}; key updates sent {}", u64(tls, "full"),
                           u64(tls, "resumed"), u64(j, "tls_key_updates")));
    const json& t = sub(j, "traffic");
    row("up", traffic_text(t, "up"));
    row("down", traffic_text(t, "down"));
    row("drops", nonzero_list(sub(j, "drops")));
    const json& rc = sub(j, "reconnects");
    row("reconnects", fmt::format("resumed {}, replaced {}, kicked {}", u64(rc, "resumed"),
                                  u64(rc, "replaced"), u64(j, "kicked")));
    row("event loops",
        fmt::format("{} ({} packets handed from one to another){}", u64(j, "event_loops"),
                    u64(j, "handed_off"), unresponsive_note(j)));
    const json& qd = sub(j, "queue_delay");
    uint64_t n = u64(qd, "count");
    if (n == 0) {
        row("queue delay", "no samples yet");
    } else {
        auto bound = [&](const char* key) {
            auto it = qd.find(key);
            return it != qd.end() && it->is_number_unsigned()
                       ? "<= " + format_us(it->get<uint64_t>())
                       : std::string("> 1 s");
        };
        row("queue delay",
            fmt::format("mean {}, p50 {}, p99 {} ({} samples)", format_us(u64(qd, "sum_us") / n),
                        bound("p50_le_us"), bound("p99_le_us"), n));
    }
    return out;
}

Result<std::string> sessions_table(std::string_view text) {
    auto parsed = parse_reply(text);
    if (!parsed) return parsed.error();
    const json& j = *parsed;
    auto it = j.find("sessions");
    if (it == j.end() || !it->is_array())
        return make_error("portholed sent an unexpected sessions reply");
    std::vector<std::array<std::string, 10>> rows;
    rows.push_back(
        {"ID", "IDENTITY", "STATE", "INNER", "OUTER", "CONNECTED", "UP", "DOWN", "RTT", "QDELAY"});
    for (const auto& s : *it) {
        if (!s.is_object()) continue;
        std::string inner = str(s, "inner4");
        if (auto v6 = str(s, "inner6"); !v6.empty()) inner += (inner.empty() ? "" : ",") + v6;
        const json& t = sub(s, "traffic");
        auto rtt = s.find("rtt_us");
        rows.push_back(
            {std::to_string(u64(s, "id")), str(s, "identity").empty() ? "-" : str(s, "identity"),
             str(s, "state"), inner.empty() ? "-" : inner, str(s, "outer"),
             format_duration(u64(s, "connected_s")), format_bytes(u64(sub(t, "up"), "bytes")),
             format_bytes(u64(sub(t, "down"), "bytes")),
             rtt != s.end() && rtt->is_number_unsigned() ? format_us(rtt->get<uint64_t>()) : "-",
             format_us(u64(s, "queue_delay_us"))});
    }
    std::array<size_t, 10> width{};
    for (const auto& r : rows)
        for (size_t c = 0; c < r.size(); ++c)
            width[c] = std::max(width[c], r[c].size());
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (size_t c = 0; c < r.size(); ++c)
            line += c + 1 < r.size() ? fmt::format("{:<{}}  ", r[c], width[c]) : r[c];
        out += line + "\n";
    }
    if (rows.size() == 1) out += "(no sessions)\n";
    if (auto note = unresponsive_note(j); !note.empty())
        out += fmt::format("incomplete{}: their sessions are not listed\n", note);
    return out;
}

std::optional<std::string> reply_error(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
        return j["error"].get<std::string>();
    return std::nullopt;
}

Result<std::string> message_text(std::string_view text) {
    auto parsed = parse_reply(text);
    if (!parsed) return parsed.error();
    std::string m = str(*parsed, "message");
    if (m.empty()) return make_error("portholed sent an unexpected reply");
    return m + "\n";
}

}  // namespace porthole::control

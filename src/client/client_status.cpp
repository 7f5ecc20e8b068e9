#include "client/client_status.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace porthole::client {
namespace {

std::string ago(int64_t then, int64_t now) {
    if (then <= 0) return "-";
    int64_t d = now > then ? now - then : 0;
    if (d < 120) return fmt::format("{} s ago", d);
    if (d < 7200) return fmt::format("{} min ago", d / 60);
    if (d < 172800) return fmt::format("{} h {} min ago", d / 3600, d % 3600 / 60);
    return fmt::format("{} days ago", d / 86400);
}

std::string amount(uint64_t bytes) {
    if (bytes < 10 * 1024) return fmt::format("{} B", bytes);
    if (bytes < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
    if (bytes < 10ull * 1024 * 1024 * 1024)
        return fmt::format("{:.1f} MiB", double(bytes) / (1024 * 1024));
    return fmt::format("{:.1f} GiB", double(bytes) / (1024.0 * 1024 * 1024));
}

}  // namespace

std::string to_json(const ClientStatus& s) {
    nlohmann::json j = {
        {"state", s.state},
        {"server", s.server},
        {"tun", s.tun},
        {"addresses", s.addresses},
        {"mode", s.mode},
        {"since", s.since_unix},
        {"up_since", s.up_since_unix},
        {"pid", s.pid},
        {"bytes_up", s.bytes_up},
        {"packets_up", s.packets_up},
        {"bytes_down", s.bytes_down},
        {"packets_down", s.packets_down},
        {"reconnects", s.reconnects},
        {"tls_key_updates", s.key_updates},
        {"tls_records_sealed", s.records_sealed},
        {"tls_records_opened", s.records_opened},
        {"refused_no_address", s.refused},
        {"last_error", s.last_error},
        {"rtt_ms", s.rtt_ms ? nlohmann::json(*s.rtt_ms) : nlohmann::json(nullptr)},
        {"dns", s.dns},
    };
    // Invalid UTF-8 (from a peer's text in last_error) is replaced, never thrown.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::optional<ClientStatus> from_json(const std::string& text, std::string& error) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error = "the client's status reply is not JSON";
        return std::nullopt;
    }
    ClientStatus s;
    try {
        s.state = j.value("state", "");
        s.server = j.value("server", "");
        s.tun = j.value("tun", "");
        s.addresses = j.value("addresses", std::vector<std::string>{});
        s.mode = j.value("mode", "");
        s.since_unix = j.value("since", int64_t(0));
        s.up_since_unix = j.value("up_since", int64_t(0));
        s.pid = j.value("pid", uint64_t(0));
        s.bytes_up = j.value("bytes_up", uint64_t(0));
        s.packets_up = j.value("packets_up", uint64_t(0));
        s.bytes_down = j.value("bytes_down", uint64_t(0));
        s.packets_down = j.value("packets_down", uint64_t(0));
        s.reconnects = j.value("reconnects", uint64_t(0));
        s.key_updates = j.value("tls_key_updates", uint64_t(0));
        s.records_sealed = j.value("tls_records_sealed", uint64_t(0));
        s.records_opened = j.value("tls_records_opened", uint64_t(0));
        s.refused = j.value("refused_no_address", uint64_t(0));
        s.last_error = j.value("last_error", "");
        if (j.contains("rtt_ms") && j["rtt_ms"].is_number()) s.rtt_ms = j["rtt_ms"].get<double>();
        s.dns = j.value("dns", "");
    } catch (const nlohmann::json::exception& e) {
        error = fmt::format("the client's status reply has a bad field: {}", e.what());
        return std::nullopt;
    }
    return s;
}

std::string to_text(const ClientStatus& s, int64_t now) {
    std::string out;
    auto line = [&](std::string_view k, const std::string& v) {
        out += fmt::format("{:<11} {}\n", fmt::format("{}:", k), v);
    };
    line("state", fmt::format("{} (since {})", s.state, ago(s.since_unix, now)));
    line("server", s.server);
    std::string addrs;
    for (const auto& a : s.addresses)
        addrs += (addrs.empty() ? "" : " ") + a;
    line("tunnel", fmt::format("{} {}{}", s.tun, addrs.empty() ? "-" : addrs,
                               s.mode.empty() ? "" : ", " + s.mode));
    line("traffic", fmt::format("up {} ({} packets), down {} ({} packets)", amount(s.bytes_up),
                                s.packets_up, amount(s.bytes_down), s.packets_down));
    line("rtt", s.rtt_ms ? fmt::format("{:.1f} ms", *s.rtt_ms) : "-");
    line("reconnects", fmt::format("{}", s.reconnects));
    line("tls", fmt::format("key updates sent {}, records sealed {} / opened {} by porthole",
                            s.key_updates, s.records_sealed, s.records_opened));
    if (s.refused > 0)
        line("refused", fmt::format("{} packets of a family the tunnel does not carry", s.refused));
    line("dns", s.dns.empty() ? "-" : s.dns);
    if (!s.last_error.empty()) line("last error", s.last_error);
    line("pid", fmt::format("{}", s.pid));
    return out;
}

}  // namespace porthole::client

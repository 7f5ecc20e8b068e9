#include "cli/cli_parsing.hpp"

#include <CLI/CLI.hpp>
#include <charconv>

namespace porthole::cli {

Result<HostPort> parse_host_port(std::string_view text, uint16_t default_port) {
    HostPort hp{std::string(text), default_port};
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return make_error("'{}': missing ']'", text);
        hp.host = std::string(text.substr(1, close - 1));
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return make_error("'{}': expected ':PORT' after ']'", text);
            port_text = rest.substr(1);
        }
    } else if (auto colon = text.find(':');
               colon != std::string_view::npos && text.rfind(':') == colon) {
        hp.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    if (hp.host.empty()) return make_error("'{}': no host", text);
    if (!port_text.empty()) {
        unsigned port = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
            port > 65535)
            return make_error("'{}': bad port", text);
        hp.port = uint16_t(port);
    }
    return hp;
}

Result<tls::TlsVersion> parse_tls_version(std::string_view text) {
    if (text == "1.3") return tls::TlsVersion::v1_3;
    if (text == "1.2") return tls::TlsVersion::v1_2;
    return make_error("tls-min '{}': only 1.2 and 1.3 are allowed", text);
}

Result<log::Level> parse_log_level(std::string_view text) {
    log::Level l;
    if (!log::parse_level(text, l))
        return make_error("log-level '{}': use debug, info, warn or error", text);
    return l;
}

Result<std::vector<Prefix>> parse_prefixes(const std::vector<std::string>& texts,
                                           std::string_view what) {
    std::vector<Prefix> out;
    for (const auto& t : texts) {
        auto p = Prefix::parse(t);
        if (!p) return p.error().context(what);
        out.push_back(*p);
    }
    return out;
}

std::string describe(const CLI::ParseError& e) {
    std::string_view what = e.what();
    constexpr std::string_view unknown_key = "INI was not able to parse ";
    if (what.substr(0, unknown_key.size()) == unknown_key)
        return fmt::format("configuration file: unknown key '{}'", what.substr(unknown_key.size()));
    return std::string(what);
}

}  // namespace porthole::cli

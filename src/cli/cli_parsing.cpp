#include "cli/cli_parsing.hpp"

#include <CLI/CLI.hpp>

namespace porthole::cli {

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

Result<bool> parse_tls_sealer(std::string_view text) {
    if (text == "porthole") return true;
    if (text == "openssl") return false;
    return make_error("tls-sealer '{}': use porthole or openssl", text);
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

int fail(std::string_view program, std::string_view message) {
    fmt::print(stderr, "{}: error: {}\n", program, message);
    return 1;
}

std::string describe(const CLI::ParseError& e) {
    std::string_view what = e.what();
    constexpr std::string_view unknown_key = "INI was not able to parse ";
    if (what.substr(0, unknown_key.size()) == unknown_key)
        return fmt::format("configuration file: unknown key '{}'", what.substr(unknown_key.size()));
    return std::string(what);
}

}  // namespace porthole::cli

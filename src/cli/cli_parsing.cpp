#include "cli/cli_parsing.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

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

namespace {

std::string why_unreadable(const std::string& path) {
    std::error_code ec;
    auto st = std::filesystem::status(path, ec);
    if (ec) return ec.message();
    if (std::filesystem::is_directory(st)) return "it is a directory";
    errno = 0;
    std::ifstream f(path);
    if (!f.good() && errno != 0) return std::strerror(errno);
    return "not readable";
}

// A config-file error, as one line naming the file and the key (without key_prefix).
std::string describe_config_error(std::string what, const std::string& path,
                                  std::string_view key_prefix) {
    auto without_prefix = [key_prefix](std::string text) {
        if (!key_prefix.empty() && text.rfind(key_prefix, 0) == 0) text.erase(0, key_prefix.size());
        return text;
    };
    constexpr std::string_view unknown_key = "INI was not able to parse ";
    if (what.rfind(unknown_key, 0) == 0)
        return fmt::format("configuration file {}: unknown key '{}'", path,
                           without_prefix(what.substr(unknown_key.size())));
    constexpr std::string_view not_configurable =
        ": This option is not allowed in a configuration file";
    if (auto at = what.rfind(not_configurable);
        at != std::string::npos && at + not_configurable.size() == what.size())
        return fmt::format("configuration file {}: key '{}' is not allowed in a file", path,
                           without_prefix(what.substr(0, at)));
    return fmt::format("configuration file {}: {}", path, without_prefix(what));
}

// The long flag a CLI11 message starts with ("--mtu: Value 100 not in range ..."), or "".
std::string_view flag_named_by(std::string_view what) {
    if (what.rfind("--", 0) != 0) return {};
    auto colon = what.find(':');
    return colon == std::string_view::npos ? std::string_view() : what.substr(0, colon);
}

bool on_command_line(const std::vector<std::string>& args, std::string_view flag) {
    for (const auto& a : args)
        if (a == flag || (a.size() > flag.size() && a.rfind(flag, 0) == 0 && a[flag.size()] == '='))
            return true;
    return false;
}

}  // namespace

Result<std::string> parse_command_line(CLI::App& app, const std::vector<std::string>& args,
                                       std::string_view key_prefix) {
    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const auto& a : args)
        argv.push_back(a.c_str());
    auto config_file = [&app] {
        const CLI::Option* c = app.get_config_ptr();
        return c == nullptr || c->results().empty() ? std::string() : c->results().back();
    };
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::CallForHelp&) {
        return app.help();
    } catch (const CLI::CallForAllHelp&) {
        return app.help("", CLI::AppFormatMode::All);
    } catch (const CLI::CallForVersion& e) {
        return std::string(e.what()) + "\n";
    } catch (const CLI::FileError&) {  // only the config file is read while parsing
        return make_error("configuration file {}: cannot read it ({})", config_file(),
                          why_unreadable(config_file()));
    } catch (const CLI::ConfigError& e) {
        return make_error("{}", describe_config_error(e.what(), config_file(), key_prefix));
    } catch (const CLI::ParseError& e) {
        // A value from the file that CLI11 could not take names its key (with key_prefix).
        if (!key_prefix.empty() && !config_file().empty() &&
            std::string_view(e.what()).rfind(key_prefix, 0) == 0)
            return make_error("{}", describe_config_error(e.what(), config_file(), key_prefix));
        // A value CLI11 refused (a range, a number) that came from the file, not the command
        // line: name the file and the key.
        if (auto flag = flag_named_by(e.what());
            !flag.empty() && !config_file().empty() && !on_command_line(args, flag))
            return make_error("configuration file {}: {}", config_file(),
                              std::string_view(e.what()).substr(2));
        return make_error("{}", e.what());
    }
    return std::string();
}

}  // namespace porthole::cli

// porthole's command line: `porthole connect`'s flags and the keys of its --config file (one
// name each), and `porthole status`. Kept apart from main() so that it is unit-tested.
//
// CLI11 (2.1.2, Debian 12's) reads a --config file only for the top-level app, never for a
// subcommand's own --config. So `connect --config FILE` hands FILE to a hidden --config of the
// top-level app as soon as it is parsed, and that app reads FILE with a TOML reader that puts
// each (flat) key under `connect`. CLI11 then fills from the file only the options the command
// line left empty, before it checks the required ones: a flag given on the command line wins,
// also over a list (a list given on the command line replaces the file's, it is not appended to).
#pragma once

#include <string>
#include <vector>

#include "base/log.hpp"
#include "base/result.hpp"
#include "client/client_options.hpp"

namespace porthole::cli {

struct ClientCommandLine {
    enum class Command { connect, status };
    Command command = Command::connect;
    // connect:
    client::ClientOptions options;  // status_gid is left to the caller (it depends on sudo)
    std::string config_file;        // empty: no --config
    log::Level log_level = log::Level::info;
    // status:
    std::string status_socket;  // <state-dir>/<tun-name>.sock
    bool status_json = false;
    // Set when --help or --version was asked for: print this and exit 0.
    std::string exit_text;
};

// Parses argv (argv[0] is the program). Errors are one line naming the flag, or the key and the
// file. --proxy defaults to $https_proxy (or $HTTPS_PROXY).
Result<ClientCommandLine> parse_client_command_line(const std::vector<std::string>& args);

}  // namespace porthole::cli

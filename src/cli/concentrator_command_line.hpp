// ConcentratorCommandLine: portholed's flags and config-file keys (one name each) turned into
// ConcentratorOptions. Kept apart from main() so that a reload (SIGHUP, `portholectl reload`)
// parses the same command line and re-reads the same --config file again.
#pragma once

#include <string>
#include <vector>

#include "base/log.hpp"
#include "base/result.hpp"
#include "concentrator/concentrator_options.hpp"

namespace porthole::cli {

struct ConcentratorCommandLine {
    concentrator::ConcentratorOptions options;
    std::string config_file;  // empty: no --config
    log::Level log_level = log::Level::info;
    // Set when --help or --version was asked for: print this and exit 0.
    std::string exit_text;
};

// Parses argv (argv[0] is the program). Errors are one line naming the flag or key.
Result<ConcentratorCommandLine> parse_concentrator_command_line(
    const std::vector<std::string>& args);

}  // namespace porthole::cli

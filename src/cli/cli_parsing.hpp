// Small parsers shared by the two command lines: values are checked here so that a bad flag or
// config key is reported as one line naming it.
#pragma once

#include <string>
#include <vector>

#include "base/ip_address.hpp"
#include "base/log.hpp"
#include "base/result.hpp"
#include "tls/tls_context.hpp"

namespace CLI {
class App;
}

namespace porthole::cli {

using porthole::HostPort;  // "host", "host:443", "[2001:db8::1]:443", ...
using porthole::parse_host_port;
Result<tls::TlsVersion> parse_tls_version(std::string_view text);
Result<log::Level> parse_log_level(std::string_view text);
// tls-sealer: "porthole" (true: porthole seals and opens TLS 1.3 AES-GCM records where it can)
// or "openssl" (false: OpenSSL does, every record); tls::ServerConfig/ClientConfig::seal_records.
Result<bool> parse_tls_sealer(std::string_view text);
Result<std::vector<Prefix>> parse_prefixes(const std::vector<std::string>& texts,
                                           std::string_view what);

// Prints "PROGRAM: error: MESSAGE" to stderr; returns the exit code 1.
int fail(std::string_view program, std::string_view message);

// Runs app.parse over args (args[0] is the program) for both programs' command lines. Returns the
// text to print before exiting 0 when --help, --help-all or --version was asked for, else an
// empty string. A mistake is one line naming the flag, or the configuration file (app's
// set_config option) and the key. key_prefix: what CLI11 puts before the file's keys
// ("connect." for porthole, whose file holds connect's options; "" for portholed).
Result<std::string> parse_command_line(CLI::App& app, const std::vector<std::string>& args,
                                       std::string_view key_prefix = "");

}  // namespace porthole::cli

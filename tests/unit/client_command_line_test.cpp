// porthole's command line and `connect --config FILE` (src/cli/client_command_line.hpp): the file's
// keys are connect's long flag names, the command line overrides the file, unknown keys and
// unreadable files are errors naming them.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "cli/client_command_line.hpp"
#include "test_command_line.hpp"
#include "test_temp_dir.hpp"

using namespace porthole;
using cli::ClientCommandLine;
using cli::parse_client_command_line;
using test::TempDir;

namespace {

const std::string kRequired =
    "server = \"198.18.2.2:8443\"\n"
    "ca = \"/etc/porthole/ca.pem\"\n"
    "cert = \"/etc/porthole/ue.pem\"\n"
    "key = \"/etc/porthole/ue.key\"\n";

ClientCommandLine ok(std::vector<std::string> args) {
    return test::parsed_ok(parse_client_command_line, "porthole", std::move(args));
}

std::string error(std::vector<std::string> args) {
    return test::parse_error(parse_client_command_line, "porthole", std::move(args));
}

}  // namespace

TEST_CASE("porthole connect: flags only, as before") {
    auto cl = ok({"connect", "--server", "vpn.example.net", "--ca", "a", "--cert", "b", "--key",
                  "c", "--proxy", "none"});
    CHECK(cl.command == ClientCommandLine::Command::connect);
    CHECK(cl.config_file.empty());
    CHECK(cl.options.server_host == "vpn.example.net");
    CHECK(cl.options.server_port == 443);
    CHECK(cl.options.ca_file == "a");
    CHECK(cl.options.tun_name == "porthole0");
    CHECK(cl.options.offload);
    CHECK_FALSE(cl.options.proxy.has_value());
    CHECK(error({"connect", "--ca", "a", "--cert", "b", "--key", "c"}).find("--server") !=
          std::string::npos);
}

TEST_CASE("porthole connect --config: the required keys from the file only") {
    TempDir dir;
    auto file = dir.write("c.toml", kRequired);
    auto cl = ok({"connect", "--config", file});
    CHECK(cl.config_file == file);
    CHECK(cl.options.server_host == "198.18.2.2");
    CHECK(cl.options.server_port == 8443);
    CHECK(cl.options.ca_file == "/etc/porthole/ca.pem");
    CHECK(cl.options.cert_file == "/etc/porthole/ue.pem");
    CHECK(cl.options.key_file == "/etc/porthole/ue.key");
    CHECK(cl.options.tls_min == tls::TlsVersion::v1_3);  // defaults stay
    CHECK(cl.log_level == log::Level::info);
    // --config=FILE works as well.
    CHECK(ok({"connect", "--config=" + file}).options.ca_file == "/etc/porthole/ca.pem");
}

TEST_CASE("porthole connect --config: every kind of key (strings, numbers, booleans)") {
    TempDir dir;
    auto file = dir.write("c.toml", kRequired +
                                        "# a comment\n"
                                        "server-name = \"vpn.example.net\"\n"
                                        "tls-min = \"1.2\"\n"
                                        "key-update-records = 1024\n"
                                        "tls-sealer = \"openssl\"\n"
                                        "tun-name = \"ph1\"\n"
                                        "connect-timeout = 20\n"
                                        "dead-after-missed = 5\n"
                                        "proxy = \"http://proxy.example.net:3128\"\n"
                                        "no-offload = true\n"
                                        "reconnect-max = 60\n"
                                        "log-level = \"debug\"\n"
                                        "dns = \"off\"\n"
                                        "state-dir = \"/run/ph\"\n");
    auto cl = ok({"connect", "--config", file});
    const auto& o = cl.options;
    CHECK(o.server_name == "vpn.example.net");
    CHECK(o.tls_min == tls::TlsVersion::v1_2);
    CHECK(o.key_update_records == 1024);
    CHECK_FALSE(o.seal_records);
    CHECK(o.tun_name == "ph1");
    CHECK(o.connect_timeout == std::chrono::seconds(20));
    CHECK(o.dead_after_missed == 5);
    REQUIRE(o.proxy.has_value());
    CHECK(o.proxy->host == "proxy.example.net");
    CHECK(o.proxy->port == 3128);
    CHECK_FALSE(o.offload);
    CHECK(o.reconnect_max == std::chrono::seconds(60));
    CHECK(cl.log_level == log::Level::debug);
    CHECK(o.dns == os::DnsMode::off);
    CHECK(o.state_dir == "/run/ph");

    auto off = dir.write("off.toml", kRequired + "no-offload = false\n");
    CHECK(ok({"connect", "--config", off}).options.offload);
}

TEST_CASE("porthole connect --config: the command line overrides the file, before or after") {
    TempDir dir;
    auto file = dir.write("c.toml", kRequired + "tls-min = \"1.2\"\ntun-name = \"ph1\"\n");
    auto cl = ok({"connect", "--ca", "/mine.pem", "--config", file, "--tls-min", "1.3"});
    CHECK(cl.options.ca_file == "/mine.pem");
    CHECK(cl.options.tls_min == tls::TlsVersion::v1_3);
    CHECK(cl.options.tun_name == "ph1");                    // not on the command line: the file's
    CHECK(cl.options.cert_file == "/etc/porthole/ue.pem");  // a required one too
    // A bad value in the file is an error when the command line does not give that option...
    auto bad = dir.write("bad.toml", kRequired + "tls-min = \"1.1\"\n");
    CHECK(error({"connect", "--config", bad}).find("tls-min") != std::string::npos);
    // ...and none where it does: the file's value is not looked at.
    CHECK(ok({"connect", "--config", bad, "--tls-min", "1.2"}).options.tls_min ==
          tls::TlsVersion::v1_2);
    // A value CLI11 refuses (out of range) names the file, or the flag when it is the flag's.
    auto range = dir.write("range.toml", kRequired + "connect-timeout = 0\n");
    CHECK(error({"connect", "--config", range}) ==
          "configuration file " + range + ": connect-timeout: Value 0 not in range 1 to 300");
    CHECK(error({"connect", "--config", range, "--connect-timeout=0"}) ==
          "--connect-timeout: Value 0 not in range 1 to 300");
    // The last --config counts.
    auto other = dir.write("other.toml", kRequired + "tun-name = \"ph2\"\n");
    CHECK(ok({"connect", "--config", file, "--config", other}).options.tun_name == "ph2");
}

TEST_CASE("porthole connect --config: a required key in neither is still required") {
    TempDir dir;
    auto file = dir.write("c.toml", "server = \"vpn.example.net\"\nca = \"a\"\ncert = \"b\"\n");
    CHECK(error({"connect", "--config", file}).find("--key") != std::string::npos);
    CHECK(ok({"connect", "--config", file, "--key", "c"}).options.key_file == "c");
}

TEST_CASE("porthole connect --config: an unknown key is an error naming it and the file") {
    TempDir dir;
    auto file = dir.write("c.toml", kRequired + "tls-minimum = \"1.2\"\n");
    auto e = error({"connect", "--config", file});
    CHECK(e == "configuration file " + file + ": unknown key 'tls-minimum'");
    // Even when the command line has everything else.
    CHECK(error({"connect", "--config", file, "--tls-min", "1.2"}) == e);
    // A key of another subcommand, a section, a dotted key, keys that may not be in a file.
    for (const char* text :
         {"json = true\n", "[connect]\nserver = \"a\"\n", "connect.server = \"a\"\n",
          "config = \"/etc/other.conf\"\n", "help = true\n", "version = true\n"}) {
        auto bad = dir.write("bad.toml", kRequired + text);
        auto msg = error({"connect", "--config", bad});
        CHECK_MESSAGE(msg.find("configuration file " + bad + ": ") == 0, msg);
    }
}

TEST_CASE("porthole connect --config: a missing or unreadable file is an error naming it") {
    TempDir dir;
    auto missing = (dir.path / "missing.toml").string();
    auto e = error({"connect", "--config", missing, "--server", "a", "--ca", "b", "--cert", "c",
                    "--key", "d"});
    CHECK(e.find("configuration file " + missing) == 0);
    CHECK(e.find("No such file or directory") != std::string::npos);
    CHECK(error({"connect", "--config", dir.path.string()}).find(dir.path.string()) !=
          std::string::npos);
    if (::geteuid() != 0) {  // root reads it all the same
        auto locked = dir.write("locked.toml", kRequired);
        std::filesystem::permissions(locked, std::filesystem::perms::none);
        CHECK(error({"connect", "--config", locked}).find(locked) != std::string::npos);
    }
}

TEST_CASE("porthole connect --config: the shipped packaging/porthole.conf parses") {
    const std::string file = std::string(PORTHOLE_SOURCE_DIR) + "/packaging/porthole.conf";
    REQUIRE(std::filesystem::exists(file));
    auto cl = ok({"connect", "--config", file});
    CHECK(cl.options.server_host == "vpn.example.net");
    CHECK(cl.options.server_port == 443);
    CHECK(cl.options.ca_file == "/etc/porthole/operator-ca.pem");
    CHECK(cl.options.cert_file == "/etc/porthole/ue.pem");
    CHECK(cl.options.key_file == "/etc/porthole/ue.key");
}

TEST_CASE("porthole: --help, --version and status") {
    auto help = ok({"connect", "--help"});
    CHECK(help.exit_text.find("--config") != std::string::npos);
    CHECK(help.exit_text.find("--server") != std::string::npos);
    CHECK_FALSE(ok({"--version"}).exit_text.empty());
    // The top-level help does not show the app's own (hidden) --config.
    CHECK(ok({"--help"}).exit_text.find("--config") == std::string::npos);
    auto st = ok({"status", "--json", "--tun-name", "ph1"});
    CHECK(st.command == ClientCommandLine::Command::status);
    CHECK(st.status_json);
    CHECK(st.status_socket == "/run/porthole-client/ph1.sock");
    CHECK(error({"status", "--server", "a"}).find("--server") != std::string::npos);
}

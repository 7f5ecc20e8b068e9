// portholed's command line and --config file (src/cli/concentrator_command_line.hpp): the file's
// keys are the long flag names, the command line overrides the file, mistakes are one line naming
// the flag or the file and its key.
#include <doctest/doctest.h>

#include <filesystem>

#include "cli/concentrator_command_line.hpp"
#include "test_command_line.hpp"
#include "test_temp_dir.hpp"

using namespace porthole;
using cli::ConcentratorCommandLine;
using cli::parse_concentrator_command_line;
using test::TempDir;

namespace {

const std::string kRequired =
    "cert = \"/etc/porthole/ca/server.pem\"\n"
    "key = \"/etc/porthole/ca/server.key\"\n"
    "client-ca = \"/etc/porthole/ca/ca.pem\"\n";

ConcentratorCommandLine ok(std::vector<std::string> args) {
    return test::parsed_ok(parse_concentrator_command_line, "portholed", std::move(args));
}

std::string error(std::vector<std::string> args) {
    return test::parse_error(parse_concentrator_command_line, "portholed", std::move(args));
}

}  // namespace

TEST_CASE("portholed: flags only, with their defaults") {
    auto cl = ok({"--cert", "s.pem", "--key", "s.key", "--client-ca", "ca.pem"});
    const auto& o = cl.options;
    CHECK(cl.config_file.empty());
    CHECK(cl.exit_text.empty());
    CHECK(o.cert_file == "s.pem");
    CHECK(o.key_file == "s.key");
    CHECK(o.client_ca_file == "ca.pem");
    REQUIRE(o.listen.size() == 1);
    CHECK(o.listen[0].port == 443);
    CHECK(o.tls_min == tls::TlsVersion::v1_3);
    CHECK(o.seal_records);
    CHECK(o.offload);
    CHECK(o.handshake_timeout == std::chrono::seconds(10));
    CHECK_FALSE(o.pool4.has_value());
    CHECK(cl.log_level == log::Level::info);
    CHECK(o.workers >= 1);
    CHECK(error({"--cert", "s.pem", "--key", "s.key"}).find("--client-ca") != std::string::npos);
}

TEST_CASE("portholed --config: every kind of key (strings, lists, numbers, booleans)") {
    TempDir dir;
    auto file = dir.write("d.toml", kRequired +
                                        "# a comment\n"
                                        "listen = [\"0.0.0.0:8443\", \"[::]:8443\"]\n"
                                        "crl = \"/etc/porthole/ca/crl.pem\"\n"
                                        "tls-min = \"1.2\"\n"
                                        "tls-sealer = \"openssl\"\n"
                                        "pool = \"100.64.0.0/16\"\n"
                                        "pool6 = \"fd00:64::/64\"\n"
                                        "push-route = [\"198.18.3.0/24\", \"10.0.0.0/8\"]\n"
                                        "dns = \"100.64.0.1\"\n"
                                        "mtu = 1400\n"
                                        "handshake-timeout = 20\n"
                                        "no-offload = true\n"
                                        "allow-ue-to-ue = true\n"
                                        "static-address = \"ue-7=100.64.0.7\"\n"
                                        "metrics-listen = \"127.0.0.1:9641\"\n"
                                        "log-level = \"warn\"\n");
    auto cl = ok({"--config", file});
    const auto& o = cl.options;
    CHECK(cl.config_file == file);
    CHECK(o.cert_file == "/etc/porthole/ca/server.pem");
    REQUIRE(o.listen.size() == 2);
    CHECK(o.listen[0].port == 8443);
    CHECK(o.listen[1].addr.is_v6());
    CHECK(o.crl_file == "/etc/porthole/ca/crl.pem");
    CHECK(o.tls_min == tls::TlsVersion::v1_2);
    CHECK_FALSE(o.seal_records);
    REQUIRE(o.pool4.has_value());
    CHECK(o.pool4->len == 16);
    REQUIRE(o.pool6.has_value());
    CHECK(o.push_routes.size() == 2);
    REQUIRE(o.dns.size() == 1);
    CHECK(o.mtu == 1400);
    CHECK(o.handshake_timeout == std::chrono::seconds(20));
    CHECK_FALSE(o.offload);
    CHECK(o.allow_ue_to_ue);
    REQUIRE(o.static_addresses.size() == 1);
    CHECK(o.static_addresses[0].first == "ue-7");
    REQUIRE(o.metrics_listen.has_value());
    CHECK(o.metrics_listen->port == 9641);
    CHECK(cl.log_level == log::Level::warn);
}

TEST_CASE("portholed --config: the command line overrides the file") {
    TempDir dir;
    auto file = dir.write("d.toml", kRequired + "mtu = 1400\ntls-min = \"1.2\"\n");
    auto cl = ok({"--config", file, "--mtu", "1300", "--key", "/mine.key"});
    CHECK(cl.options.mtu == 1300);
    CHECK(cl.options.key_file == "/mine.key");
    CHECK(cl.options.tls_min == tls::TlsVersion::v1_2);  // not on the command line: the file's
}

TEST_CASE("portholed --config: mistakes name the file and the key") {
    TempDir dir;
    auto unknown = dir.write("u.toml", kRequired + "max-session = 10\n");
    CHECK(error({"--config", unknown}) ==
          "configuration file " + unknown + ": unknown key 'max-session'");
    auto not_in_file = dir.write("c.toml", kRequired + "config = \"/etc/other.conf\"\n");
    CHECK(error({"--config", not_in_file}).find("configuration file " + not_in_file + ": ") == 0);
    // A value checked by CLI11 (a range) and one checked by porthole (an address).
    auto range = dir.write("r.toml", kRequired + "mtu = 100\n");
    CHECK(error({"--config", range}) ==
          "configuration file " + range + ": mtu: Value 100 not in range 576 to 9000");
    // The same value on the command line is the flag's mistake, not the file's.
    CHECK(error({"--config", range, "--mtu", "100"}) ==
          "--mtu: Value 100 not in range 576 to 9000");
    auto pool = dir.write("p.toml", kRequired + "pool = \"fd00::/64\"\n");
    CHECK(error({"--config", pool}).find("pool 'fd00::/64'") != std::string::npos);
}

TEST_CASE("portholed --config: a missing file or a directory is an error naming it") {
    TempDir dir;
    auto missing = (dir.path / "missing.toml").string();
    auto e = error({"--config", missing});
    CHECK(e.find("configuration file " + missing) == 0);
    CHECK(e.find("No such file or directory") != std::string::npos);
    CHECK(error({"--config", dir.path.string()}).find("it is a directory") != std::string::npos);
}

TEST_CASE("portholed --config: the shipped packaging/portholed.conf parses") {
    const std::string file = std::string(PORTHOLE_SOURCE_DIR) + "/packaging/portholed.conf";
    REQUIRE(std::filesystem::exists(file));
    auto cl = ok({"--config", file});
    CHECK(cl.options.cert_file == "/etc/porthole/ca/server.pem");
    CHECK(cl.options.crl_file == "/etc/porthole/ca/crl.pem");
    REQUIRE(cl.options.pool4.has_value());
    REQUIRE(cl.options.listen.size() == 1);
    CHECK(cl.options.listen[0].port == 443);
}

TEST_CASE("portholed: --help, --version, workers and handshake threads") {
    CHECK(ok({"--help"}).exit_text.find("--client-ca") != std::string::npos);
    CHECK_FALSE(ok({"--version"}).exit_text.empty());
    const std::vector<std::string> req{"--cert", "s", "--key", "k", "--client-ca", "c"};
    auto with = [&](std::vector<std::string> more) {
        auto args = req;
        args.insert(args.end(), more.begin(), more.end());
        return ok(args).options;
    };
    auto w = with({"--workers", "3"});
    CHECK(w.workers == 3);
    CHECK(w.handshake_threads == 0);  // more loops instead of handshake threads
    auto h = with({"--handshake-threads", "2"});
    CHECK(h.workers == 1);
    CHECK(h.handshake_threads == 2);
    CHECK(error({"--cert", "s", "--key", "k", "--client-ca", "c", "--workers", "999"})
              .find("--workers") != std::string::npos);
    CHECK(error({"--cert", "s", "--key", "k", "--client-ca", "c", "--bogus"}).find("--bogus") !=
          std::string::npos);
}

// porthole: the UE client. `porthole connect ...` brings the tunnel up until Ctrl-C/SIGTERM;
// `porthole status` asks the running client how it is doing.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "client/client_status.hpp"
#include "client/tunnel_client.hpp"
#include "control/control_client.hpp"

using namespace porthole;

namespace {

int fail(std::string_view msg) {
    return cli::fail("porthole", msg);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"porthole: carries all IP traffic over one TLS session on TCP 443"};
    app.set_version_flag("--version", std::string(PORTHOLE_VERSION));
    app.require_subcommand(1);

    auto* connect = app.add_subcommand("connect", "Bring the tunnel up (needs root/CAP_NET_ADMIN)");
    connect->set_config("--config", "", "Configuration file (TOML keys = the long flag names)");
    connect->allow_config_extras(false);
    client::ClientOptions o;
    std::string server, tls_min = "1.3", tls_sealer = "porthole", log_level = "info";
    unsigned connect_timeout = 10;
    connect->add_option("--server", server, "Concentrator HOST[:PORT] (port 443 by default)")
        ->required();
    connect->add_option("--server-name", o.server_name,
                        "Name to verify in the server certificate and send as SNI (default: HOST)");
    connect->add_option("--ca", o.ca_file, "CA that issued the concentrator's certificate (PEM)")
        ->required();
    connect->add_option("--cert", o.cert_file, "This UE's certificate (PEM)")->required();
    connect->add_option("--key", o.key_file, "This UE's private key (PEM)")->required();
    connect->add_option("--tls-min", tls_min, "Oldest TLS version accepted: 1.3 or 1.2")
        ->capture_default_str();
    connect
        ->add_option("--key-update-records", o.key_update_records,
                     "TLS records sent under one key before the key is updated (TLS 1.3 "
                     "KeyUpdate; a TLS 1.2 session reconnects instead)")
        ->capture_default_str()
        ->check(CLI::Range(tls::kMinKeyUpdateRecords, tls::kMaxKeyUpdateRecords));
    connect
        ->add_option("--tls-sealer", tls_sealer,
                     "Who seals outgoing TLS 1.3 records: porthole (AES-GCM with ipsec-mb where "
                     "the build and CPU allow, else OpenSSL) or openssl")
        ->capture_default_str();
    connect->add_option("--tun-name", o.tun_name, "Name of the TUN device")->capture_default_str();
    connect
        ->add_option("--connect-timeout", connect_timeout,
                     "Seconds allowed for TCP, TLS and configuration")
        ->capture_default_str()
        ->check(CLI::Range(1, 300));
    connect
        ->add_option("--dead-after-missed", o.dead_after_missed,
                     "Keep-alive intervals without a word before the concentrator is dead")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    std::string proxy;
    connect->add_option("--proxy", proxy,
                        "Reach the concentrator through this HTTP proxy: "
                        "http://[user:pass@]host:port (default: $https_proxy; 'none': direct)");
    bool no_offload = false;
    connect->add_flag("--no-offload", no_offload,
                      "Do not use TUN offloads (super-packets); every packet MTU-sized");
    unsigned reconnect_max = 30;
    connect
        ->add_option("--reconnect-max", reconnect_max,
                     "Longest wait between reconnect attempts, seconds (backoff from 1 s)")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    connect->add_option("--log-level", log_level, "debug, info, warn or error")
        ->capture_default_str();
    std::string dns = "auto";
    connect
        ->add_option("--dns", dns,
                     "Apply the concentrator's DNS servers and search domains: auto "
                     "(systemd-resolved if it runs, else /etc/resolv.conf), resolved, "
                     "resolv-conf or off")
        ->capture_default_str();
    connect
        ->add_option("--state-dir", o.state_dir,
                     "Directory for the crash record (<tun>.state) and the status socket "
                     "(<tun>.sock)")
        ->capture_default_str();

    auto* status = app.add_subcommand("status", "Show the running client's state and counters");
    std::string status_tun = "porthole0", status_dir = "/run/porthole-client";
    bool status_json = false;
    status->add_flag("--json", status_json, "Print the status as one JSON object");
    status->add_option("--tun-name", status_tun, "The client's TUN device")->capture_default_str();
    status->add_option("--state-dir", status_dir, "The client's --state-dir")
        ->capture_default_str();

    std::signal(SIGPIPE, SIG_IGN);  // a peer's reset must be an error return, not a kill
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        return fail(cli::describe(e));
    }

    if (status->parsed()) {
        std::string path = fmt::format("{}/{}.sock", status_dir, status_tun);
        auto reply = control::control_request(path, "status", std::chrono::seconds(5), "porthole");
        if (!reply) return fail(reply.error().message);
        if (status_json) {
            std::cout << *reply << std::flush;
            return 0;
        }
        std::string error;
        auto st = client::from_json(*reply, error);
        if (!st) return fail(error);
        std::cout << client::to_text(*st, int64_t(std::time(nullptr))) << std::flush;
        return 0;
    }

    auto level = cli::parse_log_level(log_level);
    if (!level) return fail(level.error().message);
    log::set_level(*level);
    auto hp = cli::parse_host_port(server, 443);
    if (!hp) return fail(hp.error().context("server").message);
    o.server_host = hp->host;
    o.server_port = hp->port;
    auto tv = cli::parse_tls_version(tls_min);
    if (!tv) return fail(tv.error().message);
    o.tls_min = *tv;
    auto sealer = cli::parse_tls_sealer(tls_sealer);
    if (!sealer) return fail(sealer.error().message);
    o.seal_records = *sealer;
    o.connect_timeout = std::chrono::seconds(connect_timeout);
    o.reconnect_max = std::chrono::seconds(reconnect_max);
    o.offload = !no_offload;
    auto dns_mode = os::parse_dns_mode(dns);
    if (!dns_mode) return fail(dns_mode.error().message);
    o.dns = *dns_mode;
    // Under sudo, the invoking user's group may read the status without sudo.
    if (const char* g = std::getenv("SUDO_GID"); g != nullptr && ::geteuid() == 0) {
        gid_t gid = 0;
        std::string_view text(g);
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), gid);
        if (ec == std::errc() && p == text.data() + text.size() && gid != 0) o.status_gid = gid;
    }
    if (proxy.empty()) {
        for (const char* var : {"https_proxy", "HTTPS_PROXY"})
            if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
                proxy = v;
                break;
            }
    }
    if (!proxy.empty() && proxy != "none") {
        auto p = client::parse_proxy_url(proxy);
        if (!p) return fail(p.error().message);
        o.proxy = *p;
    }

    if (::geteuid() != 0)
        log::debug("not running as root: creating the TUN device needs CAP_NET_ADMIN");
    client::TunnelClient tunnel(std::move(o));
    if (auto r = tunnel.run(); !r) return fail(r.error().message);
    return 0;
}

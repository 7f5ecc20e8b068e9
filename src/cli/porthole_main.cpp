// porthole: the UE client. `porthole connect ...` brings the tunnel up until Ctrl-C/SIGTERM.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "client/tunnel_client.hpp"

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
    std::string server, tls_min = "1.3", log_level = "info";
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

    std::signal(SIGPIPE, SIG_IGN);  // a peer's reset must be an error return, not a kill
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        return fail(cli::describe(e));
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
    o.connect_timeout = std::chrono::seconds(connect_timeout);
    o.reconnect_max = std::chrono::seconds(reconnect_max);
    o.offload = !no_offload;
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

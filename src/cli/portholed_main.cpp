// portholed: the concentrator. Every option is a flag and a key of the same name in --config.
#include <CLI/CLI.hpp>
#include <csignal>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "concentrator/concentrator.hpp"

using namespace porthole;

namespace {

int fail(std::string_view msg) {
    fmt::print(stderr, "portholed: error: {}\n", msg);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"portholed: porthole concentrator (TLS on TCP 443 tunnel endpoint)"};
    app.set_version_flag("--version", std::string(PORTHOLE_VERSION));
    app.set_config("--config", "", "Configuration file (TOML keys = the long flag names)");
    app.allow_config_extras(false);

    concentrator::ConcentratorOptions o;
    std::vector<std::string> listen{"0.0.0.0:443"};
    std::string tls_min = "1.3", pool, pool6, log_level = "info";
    std::vector<std::string> push_routes, dns;
    unsigned handshake_timeout = 10;
    app.add_option("--listen", listen,
                   "ADDRESS:PORT to accept UEs on ([v6]:port for IPv6; repeatable)")
        ->capture_default_str();
    app.add_option("--cert", o.cert_file, "Server certificate chain (PEM)")->required();
    app.add_option("--key", o.key_file, "Server private key (PEM)")->required();
    app.add_option("--client-ca", o.client_ca_file, "CA that issues UE certificates (PEM)")
        ->required();
    app.add_option("--tls-min", tls_min, "Oldest TLS version accepted: 1.3 or 1.2")
        ->capture_default_str();
    app.add_option("--pool", pool,
                   "IPv4 pool for UEs (CIDR); its first host is the concentrator's");
    app.add_option("--pool6", pool6, "IPv6 pool for UEs (CIDR)");
    app.add_option("--push-route", push_routes,
                   "Route the UE sends into the tunnel (repeatable; none: full tunnel)");
    app.add_option("--dns", dns, "DNS server pushed to UEs (repeatable)");
    app.add_option("--nat-egress", o.nat_egress,
                   "Masquerade UE traffic leaving through this interface (absent: routed mode)");
    app.add_option("--tun-name", o.tun_name, "Name of the concentrator's TUN device")
        ->capture_default_str();
    app.add_option("--mtu", o.mtu, "Inner MTU (TUN devices)")
        ->capture_default_str()
        ->check(CLI::Range(576, 9000));
    app.add_option("--keepalive", o.keepalive_s, "Keep-alive interval assigned to UEs (seconds)")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    app.add_option("--dead-after-missed", o.dead_after_missed,
                   "Keep-alive intervals without a word before a UE is declared dead")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    app.add_option("--max-sessions", o.max_sessions, "Most UE connections at once")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--max-envelope", o.max_envelope, "Largest envelope accepted (bytes)")
        ->capture_default_str()
        ->check(CLI::Range(579, 65535));
    app.add_option("--session-queue-bytes", o.session_queue_bytes,
                   "Bound of each session's send queue (bytes)")
        ->capture_default_str()
        ->check(CLI::Range(16384, 64 * 1024 * 1024));
    app.add_option("--handshake-timeout", handshake_timeout,
                   "Seconds a UE may take for TLS and configuration")
        ->capture_default_str()
        ->check(CLI::Range(1, 300));
    std::vector<std::string> static_addresses;
    app.add_flag("--allow-ue-to-ue", o.allow_ue_to_ue,
                 "Let UEs reach each other's inner addresses (isolated by default)");
    app.add_option("--decoy-dir", o.decoy_dir,
                   "Directory whose index.html web visitors (HTTP after TLS) are shown");
    bool no_offload = false;
    app.add_flag("--no-offload", no_offload,
                 "Do not use TUN offloads (super-packets); every packet MTU-sized");
    app.add_option("--lease-file", o.lease_file,
                   "File that keeps each identity's address across restarts (written atomically)");
    app.add_option("--static-address", static_addresses,
                   "IDENTITY=ADDRESS: always give this identity this address (repeatable)");
    app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();

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
    for (const auto& l : listen) {
        auto hp = cli::parse_host_port(l, 443);
        if (!hp) return fail(hp.error().context("listen").message);
        auto addr = IpAddress::parse(hp->host);
        if (!addr) return fail(fmt::format("listen: '{}' is not an IP address", hp->host));
        o.listen.push_back({*addr, hp->port});
    }
    auto tv = cli::parse_tls_version(tls_min);
    if (!tv) return fail(tv.error().message);
    o.tls_min = *tv;
    if (!pool.empty()) {
        auto p = Prefix::parse(pool);
        if (!p || !p->addr.is_v4()) return fail(fmt::format("pool '{}' is not an IPv4 CIDR", pool));
        o.pool4 = *p;
    }
    if (!pool6.empty()) {
        auto p = Prefix::parse(pool6);
        if (!p || !p->addr.is_v6())
            return fail(fmt::format("pool6 '{}' is not an IPv6 CIDR", pool6));
        o.pool6 = *p;
    }
    auto routes = cli::parse_prefixes(push_routes, "push-route");
    if (!routes) return fail(routes.error().message);
    o.push_routes = *routes;
    for (const auto& d : dns) {
        auto a = IpAddress::parse(d);
        if (!a) return fail(a.error().context("dns").message);
        o.dns.push_back(*a);
    }
    o.handshake_timeout = std::chrono::seconds(handshake_timeout);
    o.offload = !no_offload;
    for (const auto& sa : static_addresses) {
        auto eq = sa.rfind('=');
        auto a = eq == std::string::npos ? Result<IpAddress>(make_error("no '='"))
                                         : IpAddress::parse(sa.substr(eq + 1));
        if (!a || eq == 0)
            return fail(fmt::format("static-address '{}': expected IDENTITY=ADDRESS", sa));
        o.static_addresses.emplace_back(sa.substr(0, eq), *a);
    }

    auto c = concentrator::Concentrator::create(o);
    if (!c) return fail(c.error().message);
    return (*c)->run();
}

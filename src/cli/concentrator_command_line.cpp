#include "cli/concentrator_command_line.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <thread>

#include "cli/cli_parsing.hpp"
#include "packet/control_message.hpp"

namespace porthole::cli {

namespace {

struct RawOptions {
    std::vector<std::string> listen{"0.0.0.0:443"};
    std::string tls_min = "1.3", tls_sealer = "porthole", pool, pool6, log_level = "info",
                metrics_listen;
    std::vector<std::string> push_routes, dns, static_addresses;
    unsigned handshake_timeout = 10;
    unsigned ticket_lifetime = 3600;
    bool no_offload = false;
    size_t workers = 0;  // 0: default_workers()
};

void add_options(CLI::App& app, concentrator::ConcentratorOptions& o, RawOptions& raw) {
    app.set_version_flag("--version", std::string(PORTHOLE_VERSION));
    app.set_config("--config", "", "Configuration file (TOML keys = the long flag names)");
    app.allow_config_extras(false);

    app.add_option("--listen", raw.listen,
                   "ADDRESS:PORT to accept UEs on ([v6]:port for IPv6; repeatable)")
        ->capture_default_str();
    app.add_option("--cert", o.cert_file, "Server certificate chain (PEM)")->required();
    app.add_option("--key", o.key_file, "Server private key (PEM)")->required();
    app.add_option("--client-ca", o.client_ca_file, "CA that issues UE certificates (PEM)")
        ->required();
    app.add_option("--crl", o.crl_file,
                   "Certificate revocation list of the UE CA (PEM); revoked UEs are refused");
    app.add_option("--tls-min", raw.tls_min, "Oldest TLS version accepted: 1.3 or 1.2")
        ->capture_default_str();
    app.add_option("--ticket-lifetime", raw.ticket_lifetime,
                   "Seconds a TLS 1.3 session ticket lets a UE reconnect without a full "
                   "handshake (0: no resumption)")
        ->capture_default_str()
        ->check(CLI::Range(0, 604800));
    app.add_option("--key-update-records", o.key_update_records,
                   "TLS records each session sends under one key before it updates the key "
                   "(TLS 1.3 KeyUpdate; a TLS 1.2 session reconnects instead)")
        ->capture_default_str()
        ->check(CLI::Range(tls::kMinKeyUpdateRecords, tls::kMaxKeyUpdateRecords));
    app.add_option("--tls-sealer", raw.tls_sealer,
                   "Who seals and opens TLS 1.3 records: porthole (AES-GCM with ipsec-mb where "
                   "the build and CPU allow, else OpenSSL) or openssl")
        ->capture_default_str();
    app.add_option("--pool", raw.pool,
                   "IPv4 pool for UEs (CIDR); its first host is the concentrator's");
    app.add_option("--pool6", raw.pool6, "IPv6 pool for UEs (CIDR)");
    app.add_option("--push-route", raw.push_routes,
                   "Route the UE sends into the tunnel (repeatable; none: full tunnel)");
    app.add_option("--dns", raw.dns, "DNS server pushed to UEs (repeatable)");
    app.add_option("--dns-search", o.dns_search, "DNS search domain pushed to UEs (repeatable)");
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
    app.add_option("--handshake-timeout", raw.handshake_timeout,
                   "Seconds a UE may take for TLS and configuration")
        ->capture_default_str()
        ->check(CLI::Range(1, 300));
    app.add_option("--handshake-threads", o.handshake_threads,
                   "Threads for TLS handshakes (0: in the event loop; default: one per CPU but "
                   "one with 4 or more CPUs, else 0)")
        ->capture_default_str()
        ->check(CLI::Range(0, 64));
    app.add_option("--workers", raw.workers,
                   "Event loops, each in its own thread with its own UEs (0: one per CPU, at most "
                   "16; with --handshake-threads: 1)")
        ->capture_default_str()
        ->check(CLI::Range(size_t(0), concentrator::kMaxWorkers));
    app.add_flag("--allow-ue-to-ue", o.allow_ue_to_ue,
                 "Let UEs reach each other's inner addresses (isolated by default)");
    app.add_option("--decoy-dir", o.decoy_dir,
                   "Directory whose index.html web visitors (HTTP after TLS) are shown");
    app.add_flag("--no-offload", raw.no_offload,
                 "Do not use TUN offloads (super-packets); every packet MTU-sized");
    app.add_option("--lease-file", o.lease_file,
                   "File that keeps each identity's address across restarts (written atomically)");
    app.add_option("--static-address", raw.static_addresses,
                   "IDENTITY=ADDRESS: always give this identity this address (repeatable)");
    app.add_option("--user", o.user,
                   "Started as root: switch to this user once TUN, NAT and listeners are up "
                   "(keeping only CAP_NET_ADMIN)");
    app.add_option("--control-socket", o.control_socket,
                   "Unix socket for portholectl (empty: none)")
        ->capture_default_str();
    app.add_option("--control-group", o.control_group,
                   "Group allowed to use the control socket besides root (mode 0660)");
    app.add_option("--metrics-listen", raw.metrics_listen,
                   "ADDRESS:PORT of a Prometheus text endpoint (absent: no metrics endpoint)");
    app.add_option("--log-level", raw.log_level, "debug, info, warn or error")
        ->capture_default_str();
}

Result<void> convert(const RawOptions& raw, ConcentratorCommandLine& out) {
    auto& o = out.options;
    auto level = parse_log_level(raw.log_level);
    if (!level) return level.error();
    out.log_level = *level;
    o.log_level = *level;
    for (const auto& l : raw.listen) {
        auto hp = parse_host_port(l, 443);
        if (!hp) return hp.error().context("listen");
        auto addr = IpAddress::parse(hp->host);
        if (!addr) return make_error("listen: '{}' is not an IP address", hp->host);
        o.listen.push_back({*addr, hp->port});
    }
    auto tv = parse_tls_version(raw.tls_min);
    if (!tv) return tv.error();
    o.tls_min = *tv;
    auto sealer = parse_tls_sealer(raw.tls_sealer);
    if (!sealer) return sealer.error();
    o.seal_records = *sealer;
    if (!raw.pool.empty()) {
        auto p = Prefix::parse(raw.pool);
        if (!p || !p->addr.is_v4()) return make_error("pool '{}' is not an IPv4 CIDR", raw.pool);
        o.pool4 = *p;
    }
    if (!raw.pool6.empty()) {
        auto p = Prefix::parse(raw.pool6);
        if (!p || !p->addr.is_v6()) return make_error("pool6 '{}' is not an IPv6 CIDR", raw.pool6);
        o.pool6 = *p;
    }
    auto routes = parse_prefixes(raw.push_routes, "push-route");
    if (!routes) return routes.error();
    o.push_routes = *routes;
    for (const auto& d : raw.dns) {
        auto a = IpAddress::parse(d);
        if (!a) return a.error().context("dns");
        o.dns.push_back(*a);
    }
    for (const auto& d : o.dns_search)
        if (!packet::valid_domain_name(d))
            return make_error("dns-search: '{}' is not a domain name", d);
    o.handshake_timeout = std::chrono::seconds(raw.handshake_timeout);
    o.ticket_lifetime = std::chrono::seconds(raw.ticket_lifetime);
    o.offload = !raw.no_offload;
    for (const auto& sa : raw.static_addresses) {
        auto eq = sa.rfind('=');
        auto a = eq == std::string::npos ? Result<IpAddress>(make_error("no '='"))
                                         : IpAddress::parse(sa.substr(eq + 1));
        if (!a || eq == 0) return make_error("static-address '{}': expected IDENTITY=ADDRESS", sa);
        o.static_addresses.emplace_back(sa.substr(0, eq), *a);
    }
    if (!raw.metrics_listen.empty()) {
        auto hp = parse_host_port(raw.metrics_listen, 9641);
        if (!hp) return hp.error().context("metrics-listen");
        auto addr = IpAddress::parse(hp->host);
        if (!addr) return make_error("metrics-listen: '{}' is not an IP address", hp->host);
        o.metrics_listen = Endpoint{*addr, hp->port};
    }
    return {};
}

}  // namespace

Result<ConcentratorCommandLine> parse_concentrator_command_line(
    const std::vector<std::string>& args) {
    CLI::App app{"portholed: porthole concentrator (TLS on TCP 443 tunnel endpoint)"};
    ConcentratorCommandLine out;
    RawOptions raw;
    out.options.handshake_threads =
        concentrator::default_handshake_threads(std::thread::hardware_concurrency());
    add_options(app, out.options, raw);
    auto parsed = parse_command_line(app, args);
    if (!parsed) return parsed.error();
    if (!parsed->empty()) {
        out.exit_text = *parsed;
        return out;
    }
    if (auto* c = app.get_config_ptr(); c != nullptr && c->count() > 0)
        out.config_file = c->as<std::string>();
    if (auto r = convert(raw, out); !r) return r.error();
    // Event loops and handshake threads are two ways to use more cores: more loops by default;
    // handshake threads only with one loop (asked for, or where they are the default).
    const unsigned cpus = std::thread::hardware_concurrency();
    const bool threads_given = app.get_option("--handshake-threads")->count() > 0;
    auto& o = out.options;
    if (raw.workers != 0)
        o.workers = raw.workers;
    else if (threads_given && o.handshake_threads > 0)
        o.workers = 1;
    else
        o.workers = concentrator::default_workers(cpus);
    if (!threads_given && o.workers > 1) o.handshake_threads = 0;
    return out;
}

}  // namespace porthole::cli

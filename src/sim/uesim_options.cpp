#include "sim/uesim_options.hpp"

#include <CLI/CLI.hpp>

namespace porthole::sim {

Result<UesimOptions> parse_options(int argc, char** argv) {
    CLI::App app{
        "porthole-uesim: simulated UEs (no TUN device) against one portholed, for load and "
        "isolation tests. Sends traffic only to --server and, inside the tunnels, to --probe."};
    UesimOptions o;
    std::string server, probe, expect_u2u = "blocked";
    unsigned connect_timeout = 10, probe_interval_ms = 100, probe_wait_ms = 3000;

    app.add_option("--server", server, "Concentrator ADDR:PORT (an IP address; port 443 default)")
        ->required();
    app.add_option("--server-name", o.server_name,
                   "Name verified in the server certificate (default: the server address)");
    app.add_option("--ca", o.ca_file, "CA that issued the concentrator's certificate (PEM)")
        ->required();
    auto* mc = app.add_option("--mint-ca-cert", o.mint_ca_cert,
                              "Mint one client certificate per session from this CA (PEM)");
    auto* mk = app.add_option("--mint-ca-key", o.mint_ca_key, "Key of --mint-ca-cert (PEM)");
    auto* cert = app.add_option("--cert", o.cert_file,
                                "One client certificate for all sessions (a shared identity: "
                                "the concentrator replaces older sessions)");
    auto* key = app.add_option("--key", o.key_file, "Key of --cert (PEM)");
    mc->needs(mk);
    mk->needs(mc);
    cert->needs(key);
    key->needs(cert);
    mc->excludes(cert);
    cert->excludes(mc);
    app.add_option("--identity-prefix", o.identity_prefix, "Minted CN = PREFIX-<index>")
        ->capture_default_str();

    app.add_option("--sessions", o.sessions, "Concurrent sessions")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    app.add_option("--connect-rate", o.connect_rate, "New connections per second")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    app.add_option("--connect-timeout", connect_timeout,
                   "Seconds allowed per session for TCP, TLS and configuration")
        ->capture_default_str()
        ->check(CLI::Range(1, 300));
    app.add_option("--hold", o.hold_s, "Seconds to keep the sessions up (answering keep-alives)")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    app.add_option("--probe", probe,
                   "Once all are up, each session pings DST (IPv4) from its own address");
    app.add_option("--probes", o.probes, "Echo requests per session")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    app.add_option("--probe-interval", probe_interval_ms, "Milliseconds between a session's probes")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000));
    app.add_option("--probe-wait", probe_wait_ms, "Milliseconds to wait for replies after the last")
        ->capture_default_str()
        ->check(CLI::Range(100, 60000));
    app.add_flag("--spoof", o.spoof,
                 "Also send echo requests to the --probe DST with forged sources (another "
                 "session's address, and a foreign one); expects no replies");
    app.add_flag("--ue-to-ue", o.ue_to_ue, "Session i pings session i+1's inner address");
    app.add_option("--expect-ue-to-ue", expect_u2u, "What --ue-to-ue expects: blocked or allowed")
        ->capture_default_str()
        ->check(CLI::IsMember({"blocked", "allowed"}));
    app.add_flag("--resume", o.resume,
                 "Once all are up, close every session and reconnect it offering its TLS 1.3 "
                 "session ticket (a resumed handshake); then probe and hold as usual");
    app.add_option("--cpu-pid", o.cpu_pid,
                   "Report the CPU time of this process (portholed) in the connect and resume "
                   "phases, from /proc/PID/stat")
        ->check(CLI::Range(1, 1 << 30));
    app.add_option("--churn", o.churn_s,
                   "Churn for SECONDS: connect, configure, (probe,) CLOSE, disconnect, repeat")
        ->check(CLI::Range(1, 86400));
    app.add_option("--churn-parallel", o.churn_parallel, "Churning sessions at once")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    app.add_flag("--churn-probe", o.churn_probe, "One probe to --probe DST per churn cycle");
    app.add_option("--duration", o.duration_s, "Hard bound on the whole run (seconds)")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) {
            app.exit(e);
            return Error{"", 0};
        }
        return Error{e.what(), 2};
    }

    auto ep = Endpoint::parse(server, 443);
    if (!ep) return ep.error().context("--server");
    o.server = *ep;
    if (o.server_name.empty()) o.server_name = o.server.addr.to_string();
    if (o.mint_ca_cert.empty() && o.cert_file.empty())
        return make_error(
            "give --mint-ca-cert/--mint-ca-key (one identity per session) or "
            "--cert/--key (one shared identity)");
    if (!probe.empty()) {
        auto a = IpAddress::parse(probe);
        if (!a || !a->is_v4()) return make_error("--probe: '{}' is not an IPv4 address", probe);
        o.probe_dst = *a;
    }
    if (o.spoof && !o.probe_dst) return make_error("--spoof needs --probe DST (the destination)");
    if (o.churn_probe && !o.probe_dst) return make_error("--churn-probe needs --probe DST");
    if (o.ue_to_ue && o.sessions < 2) return make_error("--ue-to-ue needs --sessions 2 or more");
    if (o.churn_s > 0 && (o.spoof || o.ue_to_ue || o.hold_s > 0 || o.resume))
        return make_error("--churn runs alone (no --spoof, --ue-to-ue, --hold or --resume)");
    if (o.resume && o.shared_identity())
        return make_error("--resume needs one identity per session (--mint-ca-cert)");
    if (o.churn_s > 0 && o.shared_identity() && o.churn_parallel > 1)
        return make_error(
            "--churn with a shared --cert needs --churn-parallel 1 (sessions of one "
            "identity replace each other)");
    o.expect_ue_to_ue = expect_u2u == "allowed";
    o.connect_timeout = std::chrono::seconds(connect_timeout);
    o.probe_interval = std::chrono::milliseconds(probe_interval_ms);
    o.probe_wait = std::chrono::milliseconds(probe_wait_ms);
    return o;
}

}  // namespace porthole::sim

#include "cli/client_command_line.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>

#include "cli/cli_parsing.hpp"

namespace porthole::cli {

namespace {

constexpr const char* kConnect = "connect";

// CLI11's TOML reader, for a file whose flat keys are the long option names of one subcommand:
// each key is put under that subcommand, as if the file had been written as `connect.KEY = ...`.
// Sections and dotted keys are refused (CLI11 would look them up as subcommands).
class SubcommandConfig : public CLI::ConfigTOML {
public:
    explicit SubcommandConfig(std::string subcommand) : subcommand_(std::move(subcommand)) {}

    std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
        auto config_items = CLI::ConfigTOML::from_config(input);
        for (auto& item : config_items) {
            if (!item.parents.empty()) {
                if (item.name == "++" || item.name == "--")  // a [section] opening or closing
                    throw CLI::ConfigError("unknown section [" +
                                           CLI::detail::join(item.parents, ".") +
                                           "] (the keys are not in sections)");
                throw CLI::ConfigError("unknown key '" + item.fullname() + "'");
            }
            item.parents = {subcommand_};
        }
        return config_items;
    }

private:
    std::string subcommand_;
};

struct RawOptions {
    std::string server, tls_min = "1.3", tls_sealer = "porthole", log_level = "info", proxy,
                        dns = "auto";
    unsigned connect_timeout = 10, reconnect_max = 30;
    bool no_offload = false;
    std::string status_tun = "porthole0", status_dir = "/run/porthole-client";
};

void add_connect_options(CLI::App& connect, client::ClientOptions& o, RawOptions& raw) {
    connect.add_option("--server", raw.server, "Concentrator HOST[:PORT] (port 443 by default)")
        ->required();
    connect.add_option("--server-name", o.server_name,
                       "Name to verify in the server certificate and send as SNI (default: HOST)");
    connect.add_option("--ca", o.ca_file, "CA that issued the concentrator's certificate (PEM)")
        ->required();
    connect.add_option("--cert", o.cert_file, "This UE's certificate (PEM)")->required();
    connect.add_option("--key", o.key_file, "This UE's private key (PEM)")->required();
    connect.add_option("--tls-min", raw.tls_min, "Oldest TLS version accepted: 1.3 or 1.2")
        ->capture_default_str();
    connect
        .add_option("--key-update-records", o.key_update_records,
                    "TLS records sent under one key before the key is updated (TLS 1.3 "
                    "KeyUpdate; a TLS 1.2 session reconnects instead)")
        ->capture_default_str()
        ->check(CLI::Range(tls::kMinKeyUpdateRecords, tls::kMaxKeyUpdateRecords));
    connect
        .add_option("--tls-sealer", raw.tls_sealer,
                    "Who seals and opens TLS 1.3 records: porthole (AES-GCM with ipsec-mb where "
                    "the build and CPU allow, else OpenSSL) or openssl")
        ->capture_default_str();
    connect.add_option("--tun-name", o.tun_name, "Name of the TUN device")->capture_default_str();
    connect
        .add_option("--connect-timeout", raw.connect_timeout,
                    "Seconds allowed for TCP, TLS and configuration")
        ->capture_default_str()
        ->check(CLI::Range(1, 300));
    connect
        .add_option("--dead-after-missed", o.dead_after_missed,
                    "Keep-alive intervals without a word before the concentrator is dead")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    connect.add_option("--proxy", raw.proxy,
                       "Reach the concentrator through this HTTP proxy: "
                       "http://[user:pass@]host:port (default: $https_proxy; 'none': direct)");
    connect.add_flag("--no-offload", raw.no_offload,
                     "Do not use TUN offloads (super-packets); every packet MTU-sized");
    connect
        .add_option("--reconnect-max", raw.reconnect_max,
                    "Longest wait between reconnect attempts, seconds (backoff from 1 s)")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    connect.add_option("--log-level", raw.log_level, "debug, info, warn or error")
        ->capture_default_str();
    connect
        .add_option("--dns", raw.dns,
                    "Apply the concentrator's DNS servers and search domains: auto "
                    "(systemd-resolved if it runs, else /etc/resolv.conf), resolved, "
                    "resolv-conf or off")
        ->capture_default_str();
    connect
        .add_option("--state-dir", o.state_dir,
                    "Directory for the crash record (<tun>.state) and the status socket "
                    "(<tun>.sock)")
        ->capture_default_str();
}

Result<void> convert_connect(const RawOptions& raw, ClientCommandLine& out) {
    auto& o = out.options;
    auto level = parse_log_level(raw.log_level);
    if (!level) return level.error();
    out.log_level = *level;
    auto hp = parse_host_port(raw.server, 443);
    if (!hp) return hp.error().context("server");
    o.server_host = hp->host;
    o.server_port = hp->port;
    auto tv = parse_tls_version(raw.tls_min);
    if (!tv) return tv.error();
    o.tls_min = *tv;
    auto sealer = parse_tls_sealer(raw.tls_sealer);
    if (!sealer) return sealer.error();
    o.seal_records = *sealer;
    o.connect_timeout = std::chrono::seconds(raw.connect_timeout);
    o.reconnect_max = std::chrono::seconds(raw.reconnect_max);
    o.offload = !raw.no_offload;
    auto dns_mode = os::parse_dns_mode(raw.dns);
    if (!dns_mode) return dns_mode.error();
    o.dns = *dns_mode;
    std::string proxy = raw.proxy;
    if (proxy.empty()) {
        for (const char* var : {"https_proxy", "HTTPS_PROXY"})
            if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
                proxy = v;
                break;
            }
    }
    if (!proxy.empty() && proxy != "none") {
        auto p = client::parse_proxy_url(proxy);
        if (!p) return p.error();
        o.proxy = *p;
    }
    return {};
}

}  // namespace

Result<ClientCommandLine> parse_client_command_line(const std::vector<std::string>& args) {
    CLI::App app{"porthole: carries all IP traffic over one TLS session on TCP 443"};
    app.set_version_flag("--version", std::string(PORTHOLE_VERSION));
    app.require_subcommand(1);

    ClientCommandLine out;
    RawOptions raw;
    auto* connect = app.add_subcommand(kConnect, "Bring the tunnel up (needs root/CAP_NET_ADMIN)");
    // CLI11 reads config files for the top-level app only: this hidden --config of the app reads
    // the file that `connect --config` names (see client_command_line.hpp).
    CLI::Option* reader = app.set_config("--config", "", "Configuration file of connect");
    reader->group("");
    app.config_formatter(std::make_shared<SubcommandConfig>(kConnect));
    app.allow_config_extras(false);
    connect
        ->add_option_function<std::string>(
            "--config",
            [reader](const std::string& path) {
                reader->clear();  // the last --config counts
                reader->add_result(path);
            },
            "Configuration file (TOML keys = the long flag names)")
        ->configurable(false)
        ->trigger_on_parse();  // before the app reads the file, at the end of the parse
    add_connect_options(*connect, out.options, raw);

    auto* status = app.add_subcommand("status", "Show the running client's state and counters");
    status->add_flag("--json", out.status_json, "Print the status as one JSON object");
    status->add_option("--tun-name", raw.status_tun, "The client's TUN device")
        ->capture_default_str();
    status->add_option("--state-dir", raw.status_dir, "The client's --state-dir")
        ->capture_default_str();

    auto parsed = parse_command_line(app, args, std::string(kConnect) + ".");
    if (!parsed) return parsed.error();
    if (!parsed->empty()) {
        out.exit_text = *parsed;
        return out;
    }

    if (status->parsed()) {
        out.command = ClientCommandLine::Command::status;
        out.status_socket = fmt::format("{}/{}.sock", raw.status_dir, raw.status_tun);
        return out;
    }
    out.command = ClientCommandLine::Command::connect;
    out.config_file = reader->results().empty() ? std::string() : reader->results().back();
    if (auto r = convert_connect(raw, out); !r) return r.error();
    return out;
}

}  // namespace porthole::cli

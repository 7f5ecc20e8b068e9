// ConcentratorOptions: every setting of portholed; each is both a config-file key and a flag of
// the same name (see src/cli/portholed_main.cpp and docs/configuration.md).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ip_address.hpp"
#include "base/log.hpp"
#include "tls/tls_context.hpp"

namespace porthole::concentrator {

struct ConcentratorOptions {
    std::vector<Endpoint> listen;  // one listener each (e.g. an IPv4 and an IPv6 address)
    std::string cert_file, key_file, client_ca_file;
    std::string crl_file;  // empty: no revocation list
    tls::TlsVersion tls_min = tls::TlsVersion::v1_3;
    std::chrono::seconds ticket_lifetime = tls::kDefaultTicketLifetime;  // 0: no resumption
    uint64_t key_update_records = tls::kDefaultKeyUpdateRecords;  // per key, then a KeyUpdate
    bool seal_records = true;     // tls-sealer porthole (true) or openssl (false)
    std::optional<Prefix> pool4;  // the concentrator's TUN takes the first host address
    std::optional<Prefix> pool6;
    std::vector<Prefix> push_routes;  // empty: full tunnel
    std::vector<IpAddress> dns;
    std::vector<std::string> dns_search;  // search domains pushed to UEs
    std::string nat_egress;               // empty: routed mode
    std::string tun_name = "portholed0";
    uint16_t mtu = 1400;
    uint16_t keepalive_s = 20;
    unsigned dead_after_missed = 3;
    size_t max_sessions = 10000;
    size_t max_envelope = 65535;  // super-packets (offloads) need the protocol's maximum
    size_t session_queue_bytes = 4 * 1024 * 1024;  // a bound; the buffer grows to it on demand
    std::chrono::seconds handshake_timeout{10};
    // TLS handshakes run on this many worker threads (HandshakePool); 0: in the event loop.
    // portholed's default: default_handshake_threads() below.
    size_t handshake_threads = 0;
    // Event loops, each in its own thread with its own TUN queue and UEs (1: all in the main
    // thread). portholed's default: default_workers() below.
    size_t workers = 1;
    bool allow_ue_to_ue = false;  // isolation between UEs is the default
    bool offload = true;          // TUN super-packets (TSO/checksum offload) when possible
    std::string decoy_dir;        // DIR/index.html is the page web visitors see
    std::string lease_file;       // empty: leases kept in memory only
    std::vector<std::pair<std::string, IpAddress>> static_addresses;  // identity -> address
    std::string user;  // started as root: run as this user once set up (empty: stay)
    std::string control_socket = "/run/porthole/portholed.sock";  // empty: none
    std::string control_group;                                    // may use it besides root
    std::optional<Endpoint> metrics_listen;  // Prometheus text endpoint (absent: none)
    log::Level log_level = log::Level::info;
};

// The TLS part of the options, for TlsContext::server() (at start and at every reload).
inline tls::ServerConfig server_tls_config(const ConcentratorOptions& o) {
    return {o.cert_file, o.key_file,        o.client_ca_file,     o.tls_min,
            o.crl_file,  o.ticket_lifetime, o.key_update_records, o.seal_records};
}

// Handshake threads for a machine with `cpus` CPUs: one per CPU but the event loop's when there
// are 4 or more (at most 16); none below that. On the 2-vCPU lab, two threads cost ~20 % more
// CPU per handshake (hand-offs, wake-ups, OpenSSL's locks) and bought no latency for the
// established sessions, because the cores were already shared (docs/performance.md).
constexpr size_t default_handshake_threads(unsigned cpus) {
    return cpus >= 4 ? std::min<size_t>(cpus - 1, 16) : 0;
}

constexpr size_t kMaxWorkers = 64;

// Event loops for a machine with `cpus` CPUs: one per CPU, at most 16.
constexpr size_t default_workers(unsigned cpus) {
    return std::clamp<size_t>(cpus, 1, 16);
}

}  // namespace porthole::concentrator

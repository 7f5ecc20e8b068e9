// UesimOptions: the settings of porthole-uesim and their command line.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::sim {

struct UesimOptions {
    Endpoint server;
    std::string server_name;  // verified in the server certificate; default: the server address
    std::string ca_file;
    // Identities: minted per session from a CA, or one certificate shared by all sessions.
    std::string mint_ca_cert, mint_ca_key;
    std::string cert_file, key_file;
    std::string identity_prefix = "sim";

    unsigned sessions = 10;
    unsigned connect_rate = 200;               // new connections per second
    std::chrono::seconds connect_timeout{10};  // TCP + TLS + configuration, per session
    unsigned hold_s = 0;

    std::optional<IpAddress> probe_dst;
    unsigned probes = 3;
    std::chrono::milliseconds probe_interval{100};
    std::chrono::milliseconds probe_wait{3000};  // for replies after the last probe
    bool spoof = false;
    bool ue_to_ue = false;
    bool expect_ue_to_ue = false;  // --expect-ue-to-ue allowed|blocked (default blocked)

    bool resume = false;  // once all are up: close each and reconnect it with its ticket
    int cpu_pid = 0;      // > 0: report this process's CPU time per phase (portholed's)

    unsigned churn_s = 0;  // > 0: churn mode
    unsigned churn_parallel = 10;
    bool churn_probe = false;

    unsigned duration_s = 120;  // hard bound for the whole run
    bool shared_identity() const { return !cert_file.empty(); }
};

// Parses argv; on --help prints and returns an Error with code 0 ("help shown").
Result<UesimOptions> parse_options(int argc, char** argv);

}  // namespace porthole::sim

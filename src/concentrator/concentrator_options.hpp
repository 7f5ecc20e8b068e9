// ConcentratorOptions: every setting of portholed; each is both a config-file key and a flag of
// the same name (see src/cli/portholed_main.cpp and docs/configuration.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/ip_address.hpp"
#include "tls/tls_context.hpp"

namespace porthole::concentrator {

struct ConcentratorOptions {
    Endpoint listen;
    std::string cert_file, key_file, client_ca_file;
    tls::TlsVersion tls_min = tls::TlsVersion::v1_3;
    std::optional<Prefix> pool4;          // the concentrator's TUN takes the first host address
    std::optional<Prefix> pool6;
    std::vector<Prefix> push_routes;      // empty: full tunnel
    std::vector<IpAddress> dns;
    std::string nat_egress;               // empty: routed mode
    std::string tun_name = "portholed0";
    uint16_t mtu = 1400;
    uint16_t keepalive_s = 20;
    unsigned dead_after_missed = 3;
    size_t max_sessions = 10000;
    size_t max_envelope = 16384;
    size_t session_queue_bytes = 256 * 1024;
    std::chrono::seconds handshake_timeout{10};
};

}  // namespace porthole::concentrator

// ClientOptions: every setting of `porthole connect` (flags, or keys of the same name in --config).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include "client/http_proxy.hpp"
#include "os/dns_config.hpp"
#include "tls/tls_context.hpp"

namespace porthole::client {

struct ClientOptions {
    std::string server_host;  // name or address of the concentrator
    uint16_t server_port = 443;
    std::string server_name;  // SNI and the name verified in its certificate (default: host)
    std::string ca_file, cert_file, key_file;
    tls::TlsVersion tls_min = tls::TlsVersion::v1_3;
    uint64_t key_update_records = tls::kDefaultKeyUpdateRecords;  // per key, then a KeyUpdate
    bool seal_records = true;  // tls-sealer porthole (true) or openssl (false)
    std::string tun_name = "porthole0";
    std::chrono::seconds connect_timeout{10};
    unsigned dead_after_missed = 3;
    size_t queue_bytes = 4 * 1024 * 1024;
    // After a session has been up, a lost connection is retried with exponential backoff
    // (1 s doubling up to this, with jitter) while the TUN device and routes stay in place.
    std::chrono::seconds reconnect_max{30};
    bool offload = true;  // TUN super-packets when the kernel and the concentrator allow
    std::optional<ProxyConfig> proxy;  // reach the concentrator through HTTP CONNECT
    // DNS servers and search domains from the concentrator: how to apply them (os::DnsConfig).
    os::DnsMode dns = os::DnsMode::automatic;
    // <state-dir>/<tun>.state records DNS changes (undone after a crash at the next start);
    // <state-dir>/<tun>.sock answers `porthole status`.
    std::string state_dir = "/run/porthole-client";
    // Group allowed to use the status socket (besides root): the invoking user's under sudo.
    std::optional<gid_t> status_gid;
    // After the TUN device and routes are up: keep only CAP_NET_ADMIN (uid stays 0).
    bool drop_privileges = true;
};

}  // namespace porthole::client

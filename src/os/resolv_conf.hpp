// ResolvConf: what the UE client writes into /etc/resolv.conf when systemd-resolved does not run.
// Pure code (rendering, content fingerprints); the file itself is handled by os::DnsConfig.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip_address.hpp"

namespace porthole::os {

// The DNS settings the tunnel brings, for one link.
struct DnsSettings {
    std::vector<IpAddress> servers;   // reachable through the tunnel, in order
    std::vector<std::string> search;  // search domains (packet::valid_domain_name)
    bool full_tunnel = false;         // all names go to these servers (no leak beside the tunnel)
    friend bool operator==(const DnsSettings&, const DnsSettings&) = default;
};

// glibc reads at most this many nameserver lines.
inline constexpr size_t kMaxResolvNameservers = 3;

// The new resolv.conf for `settings`, given the original content:
// - full tunnel: only the tunnel's servers and search domains (nothing may be asked beside the
//   tunnel); split tunnel: the tunnel's first, then the original ones (glibc asks in order, so
//   the tunnel's servers answer while they answer);
// - with no servers from the tunnel, the original servers stay (reached as routing says);
// - at most kMaxResolvNameservers nameservers; search domains without duplicates;
// - the original `options` and `sortlist` lines are kept; comments, `domain` and the rest go.
// `who` ends up in the first comment line ("porthole0 (pid 123)").
[[nodiscard]] std::string render_resolv_conf(const DnsSettings& settings, std::string_view original,
                                             std::string_view who);

// A fingerprint of a file's content (64-bit FNV-1a, 16 hex digits): tells whether the file is
// still what porthole wrote before it is overwritten with the original again.
[[nodiscard]] std::string content_fingerprint(std::string_view content);

}  // namespace porthole::os

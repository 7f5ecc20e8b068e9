// DnsState: the record of what the UE client changed in the system's DNS configuration, written
// to `<state-dir>/<tun>.state` BEFORE the change, so that the next start can undo it after a
// crash. Pure code (format/parse); the file is handled by os::DnsConfig.
//
// Format: `key=value` lines, '#' comments, unknown keys ignored:
//   pid=1234                      the client that made the change
//   tun=porthole0  ifindex=7      the tunnel's link
//   method=resolved | resolv-conf
//   target=/etc/resolv.conf       resolv-conf: the file rewritten (in place)
//   backup=/run/porthole/porthole0.resolv.conf   its original content
//   original=present | absent     whether the target existed before
//   written=0123456789abcdef      content_fingerprint() of what porthole wrote
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace porthole::os {

enum class DnsMethod { resolved, resolv_conf };
[[nodiscard]] std::string_view to_string(DnsMethod m);

struct DnsState {
    pid_t pid = 0;
    std::string tun;
    int ifindex = 0;
    DnsMethod method = DnsMethod::resolv_conf;
    std::string target, backup;
    bool original_present = true;
    std::string written;
    friend bool operator==(const DnsState&, const DnsState&) = default;
};

[[nodiscard]] std::string format_state(const DnsState& state);
// Errors name the line ("line 3: bad pid 'x'"); the caller adds the file name.
Result<DnsState> parse_state(std::string_view text);

}  // namespace porthole::os

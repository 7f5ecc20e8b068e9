// DnsConfig: the tunnel's DNS settings applied to the system for as long as the object lives —
// through systemd-resolved for the tunnel's link when it runs, else by rewriting /etc/resolv.conf
// in place (not by rename: it may be a bind mount or a symlink's target) after keeping the
// original. What is about to be changed is recorded in `<state-dir>/<tun>.state` first, so that
// a crash is undone by recover_stale_dns() at the next start.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "os/dns_state.hpp"
#include "os/resolv_conf.hpp"

namespace porthole::os {

enum class DnsMode { automatic, resolved, resolv_conf, off };
Result<DnsMode> parse_dns_mode(std::string_view text);  // auto | resolved | resolv-conf | off
[[nodiscard]] std::string_view to_string(DnsMode mode);

struct DnsPlace {
    std::string state_dir;  // e.g. /run/porthole
    std::string tun;        // the TUN device's name
    std::string resolv_conf = "/etc/resolv.conf";
    [[nodiscard]] std::string state_file() const { return state_dir + "/" + tun + ".state"; }
    [[nodiscard]] std::string backup_file() const { return state_dir + "/" + tun + ".resolv.conf"; }
};

// Creates the state directory (0755) if missing.
Result<void> make_state_dir(const std::string& dir);

// At start: if a state file for this TUN is left by a porthole that is gone, undoes what it
// records and returns one line saying so; nullopt when there was nothing to do. A state file of a
// porthole that still runs is an error (two clients for one TUN name and state directory).
Result<std::optional<std::string>> recover_stale_dns(const DnsPlace& place);

class DnsConfig {
public:
    // Applies `settings` for link ifindex (mode automatic: resolved if it runs, else
    // resolv.conf). Nothing is left changed when it fails.
    static Result<DnsConfig> apply(DnsMode mode, const DnsPlace& place, int ifindex,
                                   const DnsSettings& settings);
    DnsConfig(DnsConfig&& o) noexcept;
    DnsConfig& operator=(DnsConfig&& o) noexcept;
    DnsConfig(const DnsConfig&) = delete;
    DnsConfig& operator=(const DnsConfig&) = delete;
    ~DnsConfig();  // restore()

    // Undoes the change (once); problems are logged, never fatal.
    void restore();
    [[nodiscard]] DnsMethod method() const { return state_.method; }
    // "systemd-resolved for porthole0 (all names)" or "/etc/resolv.conf (original kept in ...)".
    [[nodiscard]] std::string describe() const;

private:
    DnsConfig(DnsPlace place, DnsState state, DnsSettings settings)
        : place_(std::move(place)), state_(std::move(state)), settings_(std::move(settings)) {}
    DnsPlace place_;
    DnsState state_;
    DnsSettings settings_;
    bool active_ = true;
};

}  // namespace porthole::os

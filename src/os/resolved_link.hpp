// ResolvedLink: per-link DNS settings through systemd-resolved's D-Bus API
// (org.freedesktop.resolve1.Manager: SetLinkDNS, SetLinkDomains, SetLinkDefaultRoute,
// RevertLink), using sd-bus from libsystemd. resolved lets callers holding CAP_NET_ADMIN do this
// without polkit, which is why the client keeps that capability.
#pragma once

#include "base/result.hpp"
#include "os/resolv_conf.hpp"

namespace porthole::os {

// True when systemd-resolved runs: its runtime directory exists and its bus name has an owner.
[[nodiscard]] bool resolved_running();

// Sets the servers and domains of link `ifindex`. Full tunnel: the routing domain "~." and
// DefaultRoute=yes, so every name is asked on this link only; split tunnel: the search domains
// (which also route their names to this link) and DefaultRoute=no.
Result<void> resolved_apply(int ifindex, const DnsSettings& settings);
// Drops every setting of link `ifindex` (RevertLink). A link that no longer exists is not an error.
Result<void> resolved_revert(int ifindex);

}  // namespace porthole::os

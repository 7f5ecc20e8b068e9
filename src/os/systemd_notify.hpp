// SystemdNotify: tells systemd (Type=notify) how the service is doing, through sd_notify(3).
// Every function does nothing when the process was not started by systemd (no NOTIFY_SOCKET).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace porthole::os::systemd {

// Start-up is complete: listeners accept connections and the TUN device is up.
void notify_ready();
// A configuration reload starts (ended by notify_ready()).
void notify_reloading();
void notify_stopping();
// A one-line status shown by `systemctl status` ("3 sessions").
void notify_status(std::string_view text);
// The watchdog interval systemd expects keep-alives within (WatchdogSec=), if it is on.
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval();
void notify_watchdog();

}  // namespace porthole::os::systemd

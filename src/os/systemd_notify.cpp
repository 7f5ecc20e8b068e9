#include "os/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <string>

#include "base/log.hpp"

namespace porthole::os::systemd {
namespace {

void send(const std::string& state) {
    // unset_environment = 0: a reload sends READY=1 again later.
    int r = sd_notify(0, state.c_str());
    if (r < 0) log::debug("sd_notify '{}': error {}", state, -r);
}

}  // namespace

void notify_ready() {
    send("READY=1");
}

void notify_reloading() {
    // MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an earlier one.
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}",
                     uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u));
}

void notify_stopping() {
    send("STOPPING=1");
}

void notify_status(std::string_view text) {
    send(fmt::format("STATUS={}", text));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec);
}

void notify_watchdog() {
    send("WATCHDOG=1");
}

}  // namespace porthole::os::systemd

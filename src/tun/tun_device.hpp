// TunDevice: one Linux TUN interface (IFF_TUN | IFF_NO_PI), non-blocking, owned by this object.
// Closing the fd destroys the device, and with it every address and route the kernel bound to it.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace porthole::tun {

class TunDevice {
public:
    // name: the wanted interface name ("pt0"), or a pattern with "%d" ("porthole%d"); the kernel
    // picks the number. Fails with a one-line reason (no /dev/net/tun, not CAP_NET_ADMIN, ...).
    static Result<TunDevice> create(std::string_view name);

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] int ifindex() const { return ifindex_; }

    // Reads one IP packet into buf. Returns its size, or 0 when no packet is waiting (EAGAIN).
    Result<size_t> read(std::span<std::byte> buf);
    // Writes one IP packet. EAGAIN/ENOBUFS come back as an Error whose code is that errno;
    // the caller counts the drop.
    Result<void> write(std::span<const std::byte> packet);

private:
    TunDevice(Fd fd, std::string name, int ifindex)
        : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}
    Fd fd_;
    std::string name_;
    int ifindex_ = 0;
};

}  // namespace porthole::tun

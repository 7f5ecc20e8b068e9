#include "tun/tun_device.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace porthole::tun {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";

// A hint for the errors a user can do something about; empty for the others.
std::string_view hint(int err) {
    switch (err) {
        case EPERM:
        case EACCES:
            return " (run as root or with CAP_NET_ADMIN)";
        case EBUSY:
            return " (the interface exists and is in use by another process)";
        case EINVAL:
            return " (invalid name, or an interface of that name exists and is not a TUN device)";
        default:
            return "";
    }
}

}  // namespace

Result<TunDevice> TunDevice::create(std::string_view name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return make_error("cannot create TUN device '{}': name must be 1 to {} characters", name,
                          IFNAMSIZ - 1);
    if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
        return make_error("cannot create TUN device '{}': invalid interface name", name);

    Fd fd(::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            return Error{fmt::format("{} missing (load the tun module: modprobe tun)", kTunPath),
                         err};
        return Error{fmt::format("cannot open {}: {}{}", kTunPath, std::strerror(err), hint(err)),
                     err};
    }

    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, name.data(), name.size());  // zero-terminated: ifr is zeroed
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
        int err = errno;
        return Error{
            fmt::format("cannot create TUN device '{}': {}{}", name, std::strerror(err), hint(err)),
            err};
    }
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    std::string actual(ifr.ifr_name);  // the kernel fills in "%d"

    unsigned index = ::if_nametoindex(actual.c_str());
    if (index == 0) {
        int err = errno;
        return Error{fmt::format("TUN device '{}' created but its index is unknown: {}", actual,
                                 std::strerror(err)),
                     err};
    }
    return TunDevice(std::move(fd), std::move(actual), int(index));
}

Result<size_t> TunDevice::read(std::span<std::byte> buf) {
    for (;;) {
        ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
        if (n >= 0) return size_t(n);
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return size_t{0};
        return sys_error(fmt::format("read from TUN device {}", name_), err);
    }
}

Result<void> TunDevice::write(std::span<const std::byte> packet) {
    for (;;) {
        ssize_t n = ::write(fd_.get(), packet.data(), packet.size());
        if (n >= 0) {
            if (size_t(n) != packet.size())
                return make_error("write to TUN device {}: short write ({} of {} bytes)", name_, n,
                                  packet.size());
            return ok();
        }
        int err = errno;
        if (err == EINTR) continue;
        return sys_error(fmt::format("write to TUN device {}", name_), err);
    }
}

}  // namespace porthole::tun

#include "tun/tun_device.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
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

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20  // kernel 6.2; Debian 12's headers predate it
#define TUN_F_USO6 0x40
#endif

// struct virtio_net_hdr from <linux/virtio_net.h>, which C++ cannot include (a member is named
// `class`). Legacy TUN uses the host's byte order for the 16-bit fields.
struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == 10);

virtio_net_hdr to_virtio(const packet::OffloadHeader& m) {
    virtio_net_hdr h{};
    h.flags = m.flags;
    h.gso_type = m.gso_type;
    h.hdr_len = m.hdr_len;
    h.gso_size = m.gso_size;
    h.csum_start = m.csum_start;
    h.csum_offset = m.csum_offset;
    return h;
}

packet::OffloadHeader from_virtio(const virtio_net_hdr& h) {
    packet::OffloadHeader m;
    m.flags = h.flags;
    m.gso_type = h.gso_type;
    m.hdr_len = h.hdr_len;
    m.gso_size = h.gso_size;
    m.csum_start = h.csum_start;
    m.csum_offset = h.csum_offset;
    return m;
}

}  // namespace

Result<TunDevice> TunDevice::create(std::string_view name, Offload offload) {
    return open(name, offload, false);
}

Result<TunDevice> TunDevice::create_multi_queue(std::string_view name, Offload offload) {
    return open(name, offload, true);
}

Result<TunDevice> TunDevice::add_queue() const {
    if (!multi_queue_)
        return make_error("TUN device '{}' has a single queue: no queue can be added", name_);
    auto q = open(name_, vnet_ ? Offload::on : Offload::off, true);
    if (!q) return q.error();
    // The device's offload state (set_offload) applies to this queue's reads and writes too.
    if (q->offload_ != offload_ && !q->set_offload(offload_))
        return make_error("TUN device '{}': new queue cannot match the offload setting", name_);
    return q;
}

Result<TunDevice> TunDevice::open(std::string_view name, Offload offload, bool multi_queue) {
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
        // Not root, and the device is not open to everyone: CAP_NET_ADMIN does not help (udev
        // makes it 0666; a machine without udev, such as a container, may leave it 0600).
        struct stat st {};
        if (err == EACCES && ::geteuid() != 0 && ::stat(kTunPath, &st) == 0 &&
            (st.st_mode & 0006) != 0006)
            return Error{fmt::format("cannot open {}: {} (it is mode {:04o}: a non-root process "
                                     "with CAP_NET_ADMIN needs it 0666, as udev sets it, or must "
                                     "run as root)",
                                     kTunPath, std::strerror(err), st.st_mode & 07777),
                         err};
        return Error{fmt::format("cannot open {}: {}{}", kTunPath, std::strerror(err), hint(err)),
                     err};
    }

    ifreq ifr{};
    ifr.ifr_flags = short(IFF_TUN | IFF_NO_PI | (offload == Offload::on ? IFF_VNET_HDR : 0) |
                          (multi_queue ? IFF_MULTI_QUEUE : 0));
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
    bool vnet = offload == Offload::on;
    unsigned offloads = 0;
    if (vnet) {
        int hdr_size = sizeof(virtio_net_hdr);
        if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) < 0)
            return sys_error(fmt::format("TUN device '{}': TUNSETVNETHDRSZ", actual), errno);
        // Most capable set first; older kernels lack USO.
        for (unsigned flags : {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
                               TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6}) {
            if (::ioctl(fd.get(), TUNSETOFFLOAD, flags) == 0) {
                offloads = flags;
                break;
            }
        }
    }
    TunDevice dev(std::move(fd), std::move(actual), int(index), vnet, offloads);
    dev.multi_queue_ = multi_queue;
    return dev;
}

bool TunDevice::set_offload(bool on) {
    if (!vnet_ || offload_flags_ == 0) return !on;
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, on ? offload_flags_ : 0u) < 0) return false;
    offload_ = on;
    return true;
}

Result<size_t> TunDevice::read(std::span<std::byte> buf) {
    packet::OffloadHeader ignored;
    return read(buf, ignored);
}

Result<size_t> TunDevice::read(std::span<std::byte> buf, packet::OffloadHeader& meta) {
    virtio_net_hdr h{};
    iovec iov[2] = {{&h, sizeof h}, {buf.data(), buf.size()}};
    int first = vnet_ ? 0 : 1;
    for (;;) {
        ssize_t n = ::readv(fd_.get(), iov + first, 2 - first);
        if (n >= 0) {
            if (!vnet_) {
                meta = {};
                return size_t(n);
            }
            if (size_t(n) < sizeof h) return size_t{0};
            meta = from_virtio(h);
            return size_t(n) - sizeof h;
        }
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return size_t{0};
        return sys_error(fmt::format("read from TUN device {}", name_), err);
    }
}

Result<void> TunDevice::write(std::span<const std::byte> packet,
                              const packet::OffloadHeader& meta) {
    virtio_net_hdr h = to_virtio(meta);
    iovec iov[2] = {{&h, sizeof h}, {const_cast<std::byte*>(packet.data()), packet.size()}};
    int first = vnet_ ? 0 : 1;
    size_t want = packet.size() + (vnet_ ? sizeof h : 0);
    for (;;) {
        ssize_t n = ::writev(fd_.get(), iov + first, 2 - first);
        if (n >= 0) {
            if (size_t(n) != want)
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

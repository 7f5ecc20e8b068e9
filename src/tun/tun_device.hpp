// TunDevice: one Linux TUN interface (IFF_TUN | IFF_NO_PI; IFF_VNET_HDR with offloads),
// non-blocking, owned by this object. Closing the fd destroys the device, and with it every
// address and route the kernel bound to it.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "packet/offload.hpp"

namespace porthole::tun {

class TunDevice {
public:
    enum class Offload { off, on };

    // name: the wanted interface name ("pt0"), or a pattern with "%d" ("porthole%d"); the kernel
    // picks the number. Fails with a one-line reason (no /dev/net/tun, not CAP_NET_ADMIN, ...).
    // Offload::on asks for a virtio_net_hdr per packet and for checksum/TSO4/TSO6 (and USO where
    // the kernel has it) offloads, so that reads return up to 64 KiB super-packets; where the
    // kernel refuses, the device works without them (offload() tells).
    static Result<TunDevice> create(std::string_view name, Offload offload = Offload::off);
    // The same, as the first queue of a multi-queue device (IFF_MULTI_QUEUE): add_queue() opens
    // more. The kernel spreads what it sends to the device over the queues by flow, and sends
    // the replies of a flow to the queue that wrote its packets.
    static Result<TunDevice> create_multi_queue(std::string_view name, Offload offload);
    // Another queue of this multi-queue device, with the same offload settings.
    Result<TunDevice> add_queue() const;

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] int ifindex() const { return ifindex_; }

    // Reads one IP packet into buf, and its offload metadata into meta (plain when offloads are
    // off). Returns its size, or 0 when no packet is waiting (EAGAIN).
    Result<size_t> read(std::span<std::byte> buf, packet::OffloadHeader& meta);
    // The same, for devices created without offloads.
    Result<size_t> read(std::span<std::byte> buf);
    // Writes one IP packet with its offload metadata (needs offload() unless meta is plain).
    // EAGAIN/ENOBUFS come back as an Error whose code is that errno; the caller counts the drop.
    Result<void> write(std::span<const std::byte> packet, const packet::OffloadHeader& meta = {});

    // TSO/checksum offloads are on: reads may return super-packets and partial checksums, and
    // writes may carry them.
    [[nodiscard]] bool offload() const { return offload_; }
    // Turns the offloads off (the kernel then segments and checksums itself), e.g. for a peer
    // that cannot take super-packets, or on again. False when the kernel refuses.
    bool set_offload(bool on);

private:
    static Result<TunDevice> open(std::string_view name, Offload offload, bool multi_queue);
    TunDevice(Fd fd, std::string name, int ifindex, bool vnet, unsigned offload_flags)
        : fd_(std::move(fd)),
          name_(std::move(name)),
          ifindex_(ifindex),
          vnet_(vnet),
          offload_(offload_flags != 0),
          offload_flags_(offload_flags) {}
    Fd fd_;
    std::string name_;
    int ifindex_ = 0;
    bool vnet_ = false;           // every read/write starts with a virtio_net_hdr
    bool offload_ = false;        // and the kernel agreed to TSO/checksum offloads
    unsigned offload_flags_ = 0;  // what TUNSETOFFLOAD accepted
    bool multi_queue_ = false;
};

}  // namespace porthole::tun

// Netlink: sets link state, addresses and routes through rtnetlink (libnl-route-3), never by
// running `ip`. Every address or route it adds comes back as a handle that removes it again when
// destroyed, so that every exit path of the client leaves the system as it found it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/ip_address.hpp"
#include "base/result.hpp"

struct nl_sock;

namespace porthole::tun {

// The rtnetlink protocol number on every route we add, so that leftovers are easy to find
// after a crash: `ip route show proto 211` (and `ip -6 route show proto 211`).
inline constexpr uint8_t kRouteProtocol = 211;

struct RouteSpec {
    Prefix dst;                        // 0.0.0.0/1, 198.18.2.2/32, ::/1, ...
    std::optional<IpAddress> gateway;  // none: a link route (directly on ifindex)
    int ifindex = 0;
    uint32_t metric = 0;
};

class Netlink;

// Removes what it stands for on destruction (errors there are logged at debug level and
// ignored: the interface may already be gone, which removed it anyway).
class NetlinkHandle {
public:
    NetlinkHandle() = default;
    NetlinkHandle(NetlinkHandle&&) noexcept;
    NetlinkHandle& operator=(NetlinkHandle&&) noexcept;
    NetlinkHandle(const NetlinkHandle&) = delete;
    NetlinkHandle& operator=(const NetlinkHandle&) = delete;
    ~NetlinkHandle();
    void release();  // keep the object in the kernel; forget it here

private:
    friend class Netlink;
    enum class Kind { none, address, route };
    NetlinkHandle(std::shared_ptr<nl_sock> sock, Kind kind, int ifindex, Prefix prefix,
                  RouteSpec route);
    void undo();
    std::shared_ptr<nl_sock> sock_;
    Kind kind_ = Kind::none;
    int ifindex_ = 0;
    Prefix prefix_{};
    RouteSpec route_{};
};

// One rtnetlink socket, shared with the handles it hands out. Not thread-safe: use it, and its
// handles, from one thread.
class Netlink {
public:
    static Result<Netlink> open();

    Result<void> set_link_up(int ifindex, uint32_t mtu);
    // Caps the size of the super-packets the kernel builds for this device (IFLA_GSO_MAX_SIZE).
    Result<void> set_gso_max_size(int ifindex, uint32_t size);
    // Adds local/len on ifindex (for IPv6 with IFA_F_NODAD so it is usable at once).
    Result<NetlinkHandle> add_address(int ifindex, const Prefix& local);
    Result<NetlinkHandle> add_route(const RouteSpec& route);
    // What the kernel would use to reach dst right now (RTM_GETROUTE): gateway (if any) and
    // outgoing interface, with dst as a host prefix.
    Result<RouteSpec> route_to(const IpAddress& dst);

private:
    explicit Netlink(std::shared_ptr<nl_sock> sock) : sock_(std::move(sock)) {}
    std::shared_ptr<nl_sock> sock_;
};

}  // namespace porthole::tun

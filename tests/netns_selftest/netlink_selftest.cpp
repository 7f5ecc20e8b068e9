// Privileged self-test of the kernel shells (TunDevice, Netlink, NatTable) against the real kernel.
// It changes interfaces, addresses, routes and nftables, so it refuses to run unless it is in a
// network namespace of its own: run it through run.sh, which starts it under `unshare --net`.
// Packets only go to the kernel of that namespace (through the TUN device).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/ip_address.hpp"
#include "base/log.hpp"
#include "net/nat_table.hpp"
#include "tun/netlink.hpp"
#include "tun/tun_device.hpp"

using namespace porthole;

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool cond, const std::string& what) {
    if (cond) {
        ++g_passed;
        std::printf("  ok    %s\n", what.c_str());
    } else {
        ++g_failed;
        std::printf("  FAIL  %s\n", what.c_str());
    }
}

template <class T>
void check_ok(const Result<T>& r, const std::string& what) {
    check(r.has_value(), r.has_value() ? what : what + ": " + r.error().message);
}

Prefix P(const char* text) {
    return *Prefix::parse(text);
}
IpAddress A(const char* text) {
    return *IpAddress::parse(text);
}

bool contains(const std::string& s, const std::string& needle) {
    return s.find(needle) != std::string::npos;
}

unsigned long parse_hex(const std::string& text) {  // 0 when it is not a number
    return std::strtoul(text.c_str(), nullptr, 16);
}

// In a fresh namespace of our own: not the one PID 1 lives in (when that can be seen), and no
// interfaces but loopback and run.sh's d0 (+ its veth peer). The host namespace never looks so.
bool in_private_netns() {
    struct stat self {
    }, init{};
    if (::stat("/proc/self/ns/net", &self) == 0 && ::stat("/proc/1/ns/net", &init) == 0 &&
        self.st_ino == init.st_ino && self.st_dev == init.st_dev)
        return false;
    std::unique_ptr<struct if_nameindex, void (*)(struct if_nameindex*)> list(::if_nameindex(),
                                                                              ::if_freenameindex);
    if (!list) return false;
    for (const struct if_nameindex* i = list.get(); i->if_index != 0; ++i) {
        std::string n = i->if_name;
        if (n != "lo" && n != "d0" && n != "d0peer") {
            std::printf("interface %s present: this does not look like a fresh namespace\n",
                        n.c_str());
            return false;
        }
    }
    return true;
}

// --- what the kernel has, read without our own netlink code ---------------------------------

struct ProcRoute {
    std::string iface;
    uint32_t dst = 0, gw = 0, mask = 0;  // network order, as /proc shows them
};

std::vector<ProcRoute> ipv4_routes() {
    std::vector<ProcRoute> out;
    std::ifstream f("/proc/net/route");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
        std::istringstream in(line);
        ProcRoute r;
        unsigned flags = 0, refcnt = 0, use = 0, metric = 0;
        in >> r.iface >> std::hex >> r.dst >> r.gw >> flags >> std::dec >> refcnt >> use >>
            metric >> std::hex >> r.mask;
        if (in) out.push_back(r);
    }
    return out;
}

uint32_t net_order(const char* v4) {
    in_addr a{};
    ::inet_pton(AF_INET, v4, &a);
    return a.s_addr;
}

uint32_t mask_of(unsigned len) {
    return len == 0 ? 0 : htonl(~uint32_t(0) << (32 - len));
}

bool has_v4_route(const std::string& iface, const char* dst, unsigned len,
                  const char* gw = "0.0.0.0") {
    for (const auto& r : ipv4_routes())
        if (r.iface == iface && r.dst == net_order(dst) && r.mask == mask_of(len) &&
            r.gw == net_order(gw))
            return true;
    return false;
}

// /proc/net/ipv6_route: dst(32 hex) dstlen src srclen nexthop metric refcnt use flags iface
bool has_v6_route(const std::string& iface, const char* dst, unsigned len) {
    in6_addr want{};
    ::inet_pton(AF_INET6, dst, &want);
    char hex[33];
    for (int i = 0; i < 16; ++i)
        std::snprintf(hex + 2 * i, 3, "%02x", want.s6_addr[i]);
    std::ifstream f("/proc/net/ipv6_route");
    std::string d, dl, s, sl, nh, metric, ref, use, flags, dev;
    while (f >> d >> dl >> s >> sl >> nh >> metric >> ref >> use >> flags >> dev)
        if (dev == iface && d == hex && parse_hex(dl) == len) return true;
    return false;
}

bool has_address(const std::string& iface, const IpAddress& want) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return false;
    std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, ::freeifaddrs);
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || iface != i->ifa_name) continue;
        if (i->ifa_addr->sa_family == AF_INET && want.is_v4()) {
            auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
            if (std::memcmp(&sin->sin_addr, want.bytes().data(), 4) == 0) return true;
        } else if (i->ifa_addr->sa_family == AF_INET6 && want.is_v6()) {
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
            if (std::memcmp(&sin6->sin6_addr, want.bytes().data(), 16) == 0) return true;
        }
    }
    return false;
}

int link_mtu(const std::string& name) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
    return s && ::ioctl(s.get(), SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;
}

int link_flags(const std::string& name) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
    return s && ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0 ? ifr.ifr_flags : 0;
}

// IFA_F_TENTATIVE (0x40) in /proc/net/if_inet6: still doing duplicate address detection.
bool v6_tentative(const std::string& iface) {
    std::ifstream f("/proc/net/if_inet6");
    std::string addr, idx, plen, scope, flags, dev;
    while (f >> addr >> idx >> plen >> scope >> flags >> dev)
        if (dev == iface && (parse_hex(flags) & 0x40)) return true;
    return false;
}

// --- nftables, read through libnftables directly -------------------------------------------

struct NftResult {
    bool ok = false;
    std::string out;
};

NftResult nft(const char* cmd) {
    std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    NftResult r;
    r.ok = nft_run_cmd_from_buffer(ctx.get(), cmd) == 0;
    r.out = nft_ctx_get_output_buffer(ctx.get());
    r.out += nft_ctx_get_error_buffer(ctx.get());
    return r;
}

// --- one ICMP echo through the TUN device ---------------------------------------------------

uint16_t checksum(const uint8_t* p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += uint32_t(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += uint32_t(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

std::vector<std::byte> echo_request(uint32_t src, uint32_t dst) {  // addresses in network order
    uint8_t p[28] = {0x45, 0, 0, 28, 0x12, 0x34, 0, 0, 64, 1 /*ICMP*/, 0, 0};
    std::memcpy(p + 12, &src, 4);
    std::memcpy(p + 16, &dst, 4);
    uint16_t c = checksum(p, 20);
    p[10] = uint8_t(c >> 8);
    p[11] = uint8_t(c);
    uint8_t* icmp = p + 20;
    icmp[0] = 8;  // echo request
    icmp[4] = 0x50;
    icmp[5] = 0x54;  // id
    icmp[7] = 1;     // seq
    c = checksum(icmp, 8);
    icmp[2] = uint8_t(c >> 8);
    icmp[3] = uint8_t(c);
    std::vector<std::byte> out(28);
    std::memcpy(out.data(), p, 28);
    return out;
}

// --- the tests ------------------------------------------------------------------------------

void test_tun_and_netlink() {
    std::printf("TunDevice / Netlink\n");
    auto long_name = tun::TunDevice::create("a-name-that-is-far-too-long");
    check(!long_name && contains(long_name.error().message, "cannot create TUN device"),
          "too long a name is refused: " +
              (long_name ? std::string("(created)") : long_name.error().message));

    std::optional<tun::TunDevice> dev;
    {
        auto created = tun::TunDevice::create("ptst%d");
        check_ok(created, "create TUN device from pattern ptst%d");
        if (!created) return;
        dev.emplace(std::move(*created));
    }
    const std::string name = dev->name();
    check(name.rfind("ptst", 0) == 0 && name.find('%') == std::string::npos,
          "kernel picked the name: " + name);
    check(dev->ifindex() > 0 && int(::if_nametoindex(name.c_str())) == dev->ifindex(),
          "ifindex matches if_nametoindex");
    std::byte buf[2048];
    auto nothing = dev->read(buf);
    check(nothing && *nothing == 0, "read() with nothing queued returns 0");

    auto nl = tun::Netlink::open();
    check_ok(nl, "open rtnetlink socket");
    if (!nl) return;
    const int tif = dev->ifindex();

    auto unreachable = nl->route_to(A("192.0.2.1"));
    check(!unreachable && unreachable.error().code == ENETUNREACH,
          "route_to without a route fails: " +
              (unreachable ? std::string("(found one)") : unreachable.error().message));

    auto nodev = nl->set_link_up(999999, 1400);
    check(!nodev && nodev.error().code == ENODEV,
          "set_link_up on a missing ifindex: " +
              (nodev ? std::string("(worked)") : nodev.error().message));
    check_ok(nl->set_link_up(tif, 1400), "set_link_up mtu 1400");
    // ioctl, not /sys: sysfs still shows the namespace it was mounted in.
    check(link_mtu(name) == 1400, "SIOCGIFMTU says 1400");
    check(link_flags(name) & IFF_UP, "SIOCGIFFLAGS has IFF_UP");

    const int d0 = int(::if_nametoindex("d0"));  // set up by run.sh (dummy or veth)
    if (d0 > 0) {
        auto clash = tun::TunDevice::create("d0");
        check(!clash && clash.error().code == EINVAL,
              "a TUN device named like a non-TUN interface: " +
                  (clash ? std::string("(created)") : clash.error().message));
    }
    {
        auto a4 = nl->add_address(tif, P("100.64.7.2/24"));
        check_ok(a4, "add 100.64.7.2/24");
        auto a6 = nl->add_address(tif, P("fd00:7::2/64"));
        check_ok(a6, "add fd00:7::2/64");
        check(has_address(name, A("100.64.7.2")), "100.64.7.2 is on the device");
        check(has_address(name, A("fd00:7::2")), "fd00:7::2 is on the device");
        check(!v6_tentative(name), "fd00:7::2 is not tentative (IFA_F_NODAD)");
        std::vector<tun::NetlinkHandle> handles;  // after the addresses: routes go first
        auto again = nl->add_address(tif, P("100.64.7.2/24"));
        check(!again && again.error().code == EEXIST,
              "adding it twice fails with EEXIST: " +
                  (again ? std::string("(added)") : again.error().message));

        auto r1 = nl->add_route({P("0.0.0.0/1"), std::nullopt, tif, 0});
        check_ok(r1, "add route 0.0.0.0/1 dev tun");
        auto r2 = nl->add_route({P("128.0.0.0/1"), std::nullopt, tif, 0});
        check_ok(r2, "add route 128.0.0.0/1 dev tun");
        auto r3 = nl->add_route({P("203.0.113.0/24"), A("100.64.7.1"), tif, 0});
        check_ok(r3, "add route 203.0.113.0/24 via 100.64.7.1 dev tun");
        auto r6 = nl->add_route({P("::/1"), std::nullopt, tif, 0});
        check_ok(r6, "add route ::/1 dev tun");
        auto r6gw = nl->add_route({P("2001:db8:1::/48"), A("fd00:7::1"), tif, 1024});
        check_ok(r6gw, "add route 2001:db8:1::/48 via fd00:7::1 dev tun metric 1024");

        check(has_v4_route(name, "0.0.0.0", 1), "/proc/net/route has 0.0.0.0/1");
        check(has_v4_route(name, "128.0.0.0", 1), "/proc/net/route has 128.0.0.0/1");
        check(has_v4_route(name, "203.0.113.0", 24, "100.64.7.1"),
              "/proc/net/route has 203.0.113.0/24 via 100.64.7.1");
        check(has_v6_route(name, "::", 1), "/proc/net/ipv6_route has ::/1");
        check(has_v6_route(name, "2001:db8:1::", 48), "/proc/net/ipv6_route has 2001:db8:1::/48");

        auto dup = nl->add_route({P("0.0.0.0/1"), std::nullopt, tif, 0});
        std::string want = fmt::format("add route 0.0.0.0/1 dev #{}: File exists", tif);
        check(!dup && dup.error().code == EEXIST && dup.error().message.rfind(want, 0) == 0,
              "duplicate route error reads '" + want +
                  "...': " + (dup ? std::string("(added)") : dup.error().message));
        auto mixed = nl->add_route({P("10.0.0.0/8"), A("fd00:7::1"), tif, 0});
        check(!mixed, "route with a gateway of the other family is refused");

        auto via = nl->route_to(A("203.0.113.9"));
        check_ok(via, "route_to 203.0.113.9");
        if (via)
            check(via->ifindex == tif && via->gateway && *via->gateway == A("100.64.7.1") &&
                      via->dst == P("203.0.113.9/32"),
                  "route_to 203.0.113.9: via 100.64.7.1 dev tun, dst as /32");
        auto direct = nl->route_to(A("192.0.2.1"));
        check(direct && direct->ifindex == tif && !direct->gateway,
              "route_to 192.0.2.1: dev tun, no gateway (128.0.0.0/1)");
        auto v6 = nl->route_to(A("2001:db8:1::5"));
        check(v6 && v6->ifindex == tif && v6->gateway && *v6->gateway == A("fd00:7::1"),
              "route_to 2001:db8:1::5: via fd00:7::1 dev tun");
        auto v6direct = nl->route_to(A("2001:db8:2::5"));
        check(v6direct && v6direct->ifindex == tif && !v6direct->gateway,
              "route_to 2001:db8:2::5: dev tun, no gateway (::/1)");

        if (d0 > 0) {
            auto gw = nl->add_route({P("198.51.100.0/24"), A("198.18.50.254"), d0, 0});
            check_ok(gw, "add route 198.51.100.0/24 via 198.18.50.254 dev d0");
            auto u = nl->route_to(A("198.51.100.7"));
            check(u && u->ifindex == d0 && u->gateway && *u->gateway == A("198.18.50.254"),
                  "route_to 198.51.100.7: via 198.18.50.254 dev d0");
            auto c = nl->route_to(A("198.18.50.7"));
            check(c && c->ifindex == d0 && !c->gateway, "route_to 198.18.50.7: dev d0 (connected)");
            if (gw) handles.push_back(std::move(*gw));
        } else {
            std::printf("  skip  d0 missing: no underlay gateway checks\n");
        }

        // One packet through the device: an echo request to our own address comes back as an
        // echo reply, read from the TUN fd.
        check_ok(dev->write(echo_request(net_order("100.64.7.1"), net_order("100.64.7.2"))),
                 "write an ICMP echo request into the TUN device");
        bool got_reply = false;
        for (int i = 0; i < 50 && !got_reply; ++i) {
            pollfd pfd{dev->fd(), POLLIN, 0};
            if (::poll(&pfd, 1, 100) <= 0) continue;
            auto n = dev->read(buf);
            if (!n || *n < 28) continue;
            const auto* p = reinterpret_cast<const uint8_t*>(buf);
            uint32_t src = 0, dst = 0;
            std::memcpy(&src, p + 12, 4);
            std::memcpy(&dst, p + 16, 4);
            got_reply = (p[0] >> 4) == 4 && p[9] == 1 && p[20] == 0 &&
                        src == net_order("100.64.7.2") && dst == net_order("100.64.7.1");
        }
        check(got_reply, "read the ICMP echo reply from the TUN device");
        auto bad = dev->write(std::vector<std::byte>(3));
        check(!bad && bad.error().code != 0,
              "writing garbage fails with an errno: " +
                  (bad ? std::string("(written)") : bad.error().message));

        // Handles move; release() keeps the object in the kernel.
        handles.push_back(std::move(*r1));
        handles.push_back(std::move(*r2));
        handles.push_back(std::move(*r3));
        handles.push_back(std::move(*r6));
        handles.push_back(std::move(*r6gw));
        {
            auto kept = nl->add_route({P("198.18.97.0/24"), std::nullopt, tif, 0});
            check_ok(kept, "add route 198.18.97.0/24 dev tun (to be released)");
            if (kept) kept->release();
        }
        check(has_v4_route(name, "198.18.97.0", 24), "the released route stays");
    }
    check(!has_v4_route(name, "0.0.0.0", 1), "0.0.0.0/1 is gone after its handle");
    check(!has_v4_route(name, "128.0.0.0", 1), "128.0.0.0/1 is gone after its handle");
    check(!has_v4_route(name, "203.0.113.0", 24, "100.64.7.1"), "203.0.113.0/24 is gone");
    check(!has_v6_route(name, "::", 1), "::/1 is gone");
    check(!has_v6_route(name, "2001:db8:1::", 48), "2001:db8:1::/48 is gone");
    if (d0 > 0)
        check(!has_v4_route("d0", "198.51.100.0", 24, "198.18.50.254"),
              "198.51.100.0/24 via d0 is gone");
    check(!has_address(name, A("100.64.7.2")), "100.64.7.2 is gone after its handle");
    check(!has_address(name, A("fd00:7::2")), "fd00:7::2 is gone after its handle");

    // Handles outliving what they depend on: removal fails quietly (ENODEV/ESRCH).
    {
        auto a = nl->add_address(tif, P("100.64.8.2/24"));
        auto r = nl->add_route({P("198.18.99.0/24"), A("100.64.8.1"), tif, 0});
        check(a && r, "add address and gateway route for the teardown-order test");
        if (a) tun::NetlinkHandle gone = std::move(*a);  // deletes the address, and the route
        check(!has_v4_route(name, "198.18.99.0", 24, "100.64.8.1"),
              "the kernel dropped the gateway route with the address");
        // r's destructor now gets ESRCH: logged at debug level only.
    }
    auto late = nl->add_route({P("198.18.98.0/24"), std::nullopt, tif, 0});
    check_ok(late, "add a route, then destroy the device under it");
    dev.reset();  // closes the fd
    check(::if_nametoindex(name.c_str()) == 0, "closing the fd destroyed " + name);
    // late's destructor now gets ENODEV: logged at debug level only.
}

void test_nat() {
    std::printf("NatTable\n");
    check_ok(net::NatTable::remove(), "remove() with no table present");
    check(!nft("list table inet porthole").ok, "no table inet porthole at the start");

    auto bad = net::NatTable::install({"not a name", {P("100.64.0.0/16")}});
    check(!bad, "bad interface name is refused");
    auto empty = net::NatTable::install({"lo", {}});
    check(!empty, "no source prefixes is refused");
    {
        auto first = net::NatTable::install({"lo", {P("100.64.0.0/16")}});
        check_ok(first, "install for egress lo");
        check(nft("list table inet porthole").ok, "table inet porthole exists");
    }
    check(!nft("list table inet porthole").ok, "table gone after destruction");

    // A stale table from a crashed run, with something of its own in it.
    auto stale =
        nft("table inet porthole {\n chain stale {\n type filter hook input priority 0;\n }\n}\n");
    check(stale.ok, "create a stale table inet porthole " + stale.out);
    {
        auto t = net::NatTable::install({"lo", {P("100.64.0.0/16"), P("fd00:7::/64")}});
        check_ok(t, "install over the stale table");
        auto list = nft("list table inet porthole");
        check(list.ok, "list table inet porthole");
        check(!contains(list.out, "chain stale"), "the stale chain is gone");
        check(contains(list.out, "type nat hook postrouting priority srcnat"), "nat chain");
        check(contains(list.out, "oifname \"lo\" ip saddr 100.64.0.0/16 masquerade"),
              "IPv4 masquerade rule");
        check(contains(list.out, "oifname \"lo\" ip6 saddr fd00:7::/64 masquerade"),
              "IPv6 masquerade rule");

        auto again = net::NatTable::install({"lo", {P("198.18.64.0/20")}});
        check_ok(again, "install twice (replaces, no error)");
        list = nft("list table inet porthole");
        check(contains(list.out, "198.18.64.0/20") && !contains(list.out, "100.64.0.0/16"),
              "the second install replaced the rules");
        net::NatTable moved = std::move(*again);  // the moved-from object must not delete
        check(nft("list table inet porthole").ok, "table still there after a move");
    }
    check(!nft("list table inet porthole").ok, "table gone after the tables are destroyed");
}

}  // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (std::getenv("PORTHOLE_SELFTEST_DEBUG")) log::set_level(log::Level::debug);
    if (::geteuid() != 0) {
        std::printf("skip: needs root (CAP_NET_ADMIN) inside a private network namespace\n");
        return 77;
    }
    if (!in_private_netns()) {
        std::printf(
            "refusing to run in the host's network namespace: use run.sh "
            "(unshare --net)\n");
        return 2;
    }
    test_tun_and_netlink();
    test_nat();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

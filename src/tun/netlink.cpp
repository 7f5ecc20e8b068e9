#include "tun/netlink.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "base/log.hpp"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace porthole::tun {

namespace {

// --- RAII for libnl objects ----------------------------------------------------------------

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const {
        if (p) Free(p);
    }
};
using MsgPtr = std::unique_ptr<nl_msg, Deleter<nl_msg, nlmsg_free>>;
using CbPtr = std::unique_ptr<nl_cb, Deleter<nl_cb, nl_cb_put>>;
using AddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;

int family_of(const IpAddress& a) {
    return a.is_v4() ? AF_INET : AF_INET6;
}

AddrPtr to_nl_addr(const IpAddress& a, unsigned prefixlen) {
    auto b = a.bytes();
    AddrPtr p(nl_addr_build(family_of(a), b.data(), b.size()));
    if (p) nl_addr_set_prefixlen(p.get(), int(prefixlen));
    return p;
}

std::string describe(const RouteSpec& r) {
    std::string s = fmt::format("route {}", r.dst.network());
    if (r.gateway) s += fmt::format(" via {}", *r.gateway);
    s += fmt::format(" dev #{}", r.ifindex);
    if (r.metric) s += fmt::format(" metric {}", r.metric);
    return s;
}

// --- one request, its replies and its acknowledgement --------------------------------------

// The kernel's answer to one request. libnl folds errno values into its own NLE_* codes, whose
// texts ("Object exists") are not what a user searches for, so the error is taken from the
// NLMSG_ERROR message itself, together with the kernel's extended-ack text when there is one.
struct Exchange {
    bool done = false;
    int err = 0;          // errno from the kernel, 0 for success
    std::string ext_msg;  // NLMSGERR_ATTR_MSG
    nl_recvmsg_msg_cb_t on_reply = nullptr;
    void* reply_arg = nullptr;
};

std::string extack_message(const nlmsgerr* e) {
    auto* hdr = reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(e) - NLMSG_HDRLEN);
    if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    size_t off = sizeof(nlmsgerr);
    if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    const char* p = reinterpret_cast<const char*>(e) + NLMSG_ALIGN(off);
    const char* end = reinterpret_cast<const char*>(hdr) + hdr->nlmsg_len;
    while (p + NLA_HDRLEN <= end) {
        auto* a = reinterpret_cast<const nlattr*>(p);
        if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
            std::string_view text(p + NLA_HDRLEN, a->nla_len - NLA_HDRLEN);
            if (auto z = text.find('\0'); z != std::string_view::npos) text = text.substr(0, z);
            return std::string(text);
        }
        p += NLA_ALIGN(a->nla_len);
    }
    return {};
}

int on_error(sockaddr_nl*, nlmsgerr* e, void* arg) {
    auto* ex = static_cast<Exchange*>(arg);
    ex->done = true;
    ex->err = -e->error;
    if (ex->err) ex->ext_msg = extack_message(e);
    return NL_STOP;
}

int on_ack(nl_msg*, void* arg) {
    static_cast<Exchange*>(arg)->done = true;
    return NL_STOP;
}

int on_valid(nl_msg* msg, void* arg) {
    auto* ex = static_cast<Exchange*>(arg);
    if (ex->on_reply) return ex->on_reply(msg, ex->reply_arg);
    return NL_OK;
}

// Sends msg (libnl adds NLM_F_ACK) and reads until the kernel acknowledged or refused it.
// Replies before the acknowledgement go to on_reply. what: "add route 0.0.0.0/1 dev #7".
Result<void> exchange(nl_sock* sk, nl_msg* msg, const std::string& what,
                      nl_recvmsg_msg_cb_t on_reply = nullptr, void* reply_arg = nullptr) {
    int rc = nl_send_auto(sk, msg);
    if (rc < 0) return Error{fmt::format("{}: send: {}", what, nl_geterror(rc)), EIO};

    Exchange ex;
    ex.on_reply = on_reply;
    ex.reply_arg = reply_arg;
    CbPtr base(nl_socket_get_cb(sk));
    CbPtr cb(base ? nl_cb_clone(base.get()) : nullptr);
    if (!cb) return Error{fmt::format("{}: out of memory", what), ENOMEM};
    nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &ex);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &ex);
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &ex);

    while (!ex.done) {
        rc = nl_recvmsgs(sk, cb.get());
        if (ex.done) break;
        if (rc < 0) return Error{fmt::format("{}: receive: {}", what, nl_geterror(rc)), EIO};
    }
    if (ex.err == 0) return ok();
    std::string text = std::strerror(ex.err);
    if (!ex.ext_msg.empty()) text += fmt::format(" ({})", ex.ext_msg);
    return Error{fmt::format("{}: {}", what, text), ex.err};
}

// --- request builders (shared by add and by the handles' undo) -----------------------------

Result<MsgPtr> address_msg(int ifindex, const Prefix& local, bool add) {
    RtAddrPtr a(rtnl_addr_alloc());
    AddrPtr l = to_nl_addr(local.addr, local.len);
    if (!a || !l) return make_error("out of memory");
    rtnl_addr_set_ifindex(a.get(), ifindex);
    if (int rc = rtnl_addr_set_local(a.get(), l.get()); rc < 0)
        return make_error("{}", nl_geterror(rc));
    rtnl_addr_set_prefixlen(a.get(), local.len);
    // IPv6: usable at once (no duplicate address detection on a point-to-point tunnel).
    if (local.addr.is_v6()) rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
    nl_msg* m = nullptr;
    int rc = add ? rtnl_addr_build_add_request(a.get(), NLM_F_CREATE | NLM_F_EXCL, &m)
                 : rtnl_addr_build_delete_request(a.get(), 0, &m);
    if (rc < 0) return make_error("{}", nl_geterror(rc));
    return MsgPtr(m);
}

Result<MsgPtr> route_msg(const RouteSpec& spec, bool add) {
    RoutePtr r(rtnl_route_alloc());
    Prefix dst = spec.dst.network();
    AddrPtr d = to_nl_addr(dst.addr, dst.len);
    if (!r || !d) return make_error("out of memory");
    rtnl_route_set_family(r.get(), uint8_t(family_of(dst.addr)));
    rtnl_route_set_table(r.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(r.get(), kRouteProtocol);
    rtnl_route_set_type(r.get(), RTN_UNICAST);
    rtnl_route_set_scope(r.get(), spec.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    if (int rc = rtnl_route_set_dst(r.get(), d.get()); rc < 0)
        return make_error("{}", nl_geterror(rc));
    if (spec.metric) rtnl_route_set_priority(r.get(), spec.metric);

    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!nh) return make_error("out of memory");
    rtnl_route_nh_set_ifindex(nh, spec.ifindex);
    if (spec.gateway) {
        AddrPtr gw = to_nl_addr(*spec.gateway, spec.gateway->bits());
        if (!gw) {
            rtnl_route_nh_free(nh);
            return make_error("out of memory");
        }
        rtnl_route_nh_set_gateway(nh, gw.get());  // takes its own reference
    }
    rtnl_route_add_nexthop(r.get(), nh);  // the route owns nh from here on

    nl_msg* m = nullptr;
    int rc = add ? rtnl_route_build_add_request(r.get(), NLM_F_CREATE | NLM_F_EXCL, &m)
                 : rtnl_route_build_del_request(r.get(), 0, &m);
    if (rc < 0) return make_error("{}", nl_geterror(rc));
    return MsgPtr(m);
}

// --- RTM_GETROUTE reply --------------------------------------------------------------------

struct Lookup {
    bool got = false;
    int oif = 0;
    std::optional<IpAddress> gateway;
};

std::optional<IpAddress> address_from(const nlattr* a, int family) {
    const auto* data = static_cast<const std::byte*>(nla_data(a));
    if (family == AF_INET && nla_len(a) == 4)
        return IpAddress::v4_bytes(std::span<const std::byte, 4>(data, 4));
    if (family == AF_INET6 && nla_len(a) == 16)
        return IpAddress::v6_bytes(std::span<const std::byte, 16>(data, 16));
    return std::nullopt;
}

int on_route_reply(nl_msg* msg, void* arg) {
    auto* out = static_cast<Lookup*>(arg);
    nlmsghdr* hdr = nlmsg_hdr(msg);
    if (hdr->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(hdr, sizeof(rtmsg))) return NL_SKIP;
    const auto* rtm = static_cast<const rtmsg*>(nlmsg_data(hdr));
    nlattr* tb[RTA_MAX + 1] = {};
    if (nlmsg_parse(hdr, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) return NL_SKIP;
    out->got = true;
    if (tb[RTA_OIF] && nla_len(tb[RTA_OIF]) >= int(sizeof(uint32_t)))
        out->oif = int(nla_get_u32(tb[RTA_OIF]));
    if (tb[RTA_GATEWAY]) {
        out->gateway = address_from(tb[RTA_GATEWAY], rtm->rtm_family);
    } else if (tb[RTA_VIA] && nla_len(tb[RTA_VIA]) >= int(sizeof(rtvia))) {
        // An IPv4 route via an IPv6 next hop (RFC 5549).
        const auto* via = static_cast<const rtvia*>(nla_data(tb[RTA_VIA]));
        const auto* bytes = reinterpret_cast<const std::byte*>(via->rtvia_addr);
        size_t n = size_t(nla_len(tb[RTA_VIA])) - sizeof(rtvia);
        if (via->rtvia_family == AF_INET6 && n >= 16)
            out->gateway = IpAddress::v6_bytes(std::span<const std::byte, 16>(bytes, 16));
        else if (via->rtvia_family == AF_INET && n >= 4)
            out->gateway = IpAddress::v4_bytes(std::span<const std::byte, 4>(bytes, 4));
    }
    return NL_OK;
}

bool quietly_gone(int err) {
    return err == ENODEV || err == ESRCH || err == EADDRNOTAVAIL;
}

}  // namespace

// --- NetlinkHandle -------------------------------------------------------------------------

NetlinkHandle::NetlinkHandle(std::shared_ptr<nl_sock> sock, Kind kind, int ifindex, Prefix prefix,
                             RouteSpec route)
    : sock_(std::move(sock)),
      kind_(kind),
      ifindex_(ifindex),
      prefix_(prefix),
      route_(std::move(route)) {}

NetlinkHandle::NetlinkHandle(NetlinkHandle&& o) noexcept
    : sock_(std::move(o.sock_)),
      kind_(std::exchange(o.kind_, Kind::none)),
      ifindex_(o.ifindex_),
      prefix_(o.prefix_),
      route_(std::move(o.route_)) {}

NetlinkHandle& NetlinkHandle::operator=(NetlinkHandle&& o) noexcept {
    if (this != &o) {
        undo();
        sock_ = std::move(o.sock_);
        kind_ = std::exchange(o.kind_, Kind::none);
        ifindex_ = o.ifindex_;
        prefix_ = o.prefix_;
        route_ = std::move(o.route_);
    }
    return *this;
}

NetlinkHandle::~NetlinkHandle() {
    undo();
}

void NetlinkHandle::release() {
    kind_ = Kind::none;
    sock_.reset();
}

void NetlinkHandle::undo() {
    Kind kind = std::exchange(kind_, Kind::none);
    auto sock = std::move(sock_);
    if (kind == Kind::none || !sock) return;

    std::string what = kind == Kind::address
                           ? fmt::format("delete address {} dev #{}", prefix_, ifindex_)
                           : "delete " + describe(route_);
    auto msg =
        kind == Kind::address ? address_msg(ifindex_, prefix_, false) : route_msg(route_, false);
    Result<void> r = msg ? exchange(sock.get(), msg->get(), what) : msg.error().context(what);
    if (r) {
        log::debug("netlink: {}", what);
    } else if (quietly_gone(r.error().code)) {
        log::debug("netlink: {} (already gone)", r.error().message);
    } else {
        log::warn("netlink: {}", r.error().message);
    }
}

// --- Netlink -------------------------------------------------------------------------------

Result<Netlink> Netlink::open() {
    std::shared_ptr<nl_sock> sock(nl_socket_alloc(), [](nl_sock* s) {
        if (s) nl_socket_free(s);  // closes the socket too
    });
    if (!sock) return make_error("netlink: cannot allocate a socket");
    if (int rc = nl_connect(sock.get(), NETLINK_ROUTE); rc < 0)
        return make_error("netlink: cannot open a route socket: {}", nl_geterror(rc));
    // Ask for the kernel's reason text with errors (best effort, kernels >= 4.12).
    int one = 1;
    (void)::setsockopt(nl_socket_get_fd(sock.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one,
                       sizeof one);
    return Netlink(std::move(sock));
}

Result<void> Netlink::set_link_up(int ifindex, uint32_t mtu) {
    std::string what = fmt::format("set link #{} up (mtu {})", ifindex, mtu);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return make_error("{}: out of memory", what);
    rtnl_link_set_ifindex(orig.get(), ifindex);
    rtnl_link_set_flags(change.get(), IFF_UP);
    if (mtu) rtnl_link_set_mtu(change.get(), mtu);
    nl_msg* m = nullptr;
    if (int rc = rtnl_link_build_change_request(orig.get(), change.get(), 0, &m); rc < 0)
        return make_error("{}: {}", what, nl_geterror(rc));
    MsgPtr msg(m);
    return exchange(sock_.get(), msg.get(), what);
}

Result<void> Netlink::set_gso_max_size(int ifindex, uint32_t size) {
    std::string what = fmt::format("set link #{} gso_max_size {}", ifindex, size);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return make_error("{}: out of memory", what);
    rtnl_link_set_ifindex(orig.get(), ifindex);
    nl_msg* m = nullptr;
    if (int rc = rtnl_link_build_change_request(orig.get(), change.get(), 0, &m); rc < 0)
        return make_error("{}: {}", what, nl_geterror(rc));
    MsgPtr msg(m);
    if (int rc = nla_put_u32(msg.get(), IFLA_GSO_MAX_SIZE, size); rc < 0)
        return make_error("{}: {}", what, nl_geterror(rc));
    return exchange(sock_.get(), msg.get(), what);
}

Result<NetlinkHandle> Netlink::add_address(int ifindex, const Prefix& local) {
    std::string what = fmt::format("add address {} dev #{}", local, ifindex);
    auto msg = address_msg(ifindex, local, true);
    if (!msg) return msg.error().context(what);
    if (auto r = exchange(sock_.get(), msg->get(), what); !r) return r.error();
    return NetlinkHandle(sock_, NetlinkHandle::Kind::address, ifindex, local, {});
}

Result<NetlinkHandle> Netlink::add_route(const RouteSpec& route) {
    std::string what = "add " + describe(route);
    if (route.gateway && route.gateway->family() != route.dst.addr.family())
        return make_error("{}: gateway and destination are of different address families", what);
    auto msg = route_msg(route, true);
    if (!msg) return msg.error().context(what);
    if (auto r = exchange(sock_.get(), msg->get(), what); !r) return r.error();
    return NetlinkHandle(sock_, NetlinkHandle::Kind::route, route.ifindex, {}, route);
}

Result<RouteSpec> Netlink::route_to(const IpAddress& dst) {
    std::string what = fmt::format("route lookup for {}", dst);
    MsgPtr msg(nlmsg_alloc_simple(RTM_GETROUTE, 0));
    if (!msg) return make_error("{}: out of memory", what);
    rtmsg rtm{};
    rtm.rtm_family = uint8_t(family_of(dst));
    rtm.rtm_dst_len = uint8_t(dst.bits());
    auto bytes = dst.bytes();
    if (nlmsg_append(msg.get(), &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 ||
        nla_put(msg.get(), RTA_DST, int(bytes.size()), bytes.data()) < 0)
        return make_error("{}: cannot build the request", what);

    Lookup out;
    if (auto r = exchange(sock_.get(), msg.get(), what, on_route_reply, &out); !r) return r.error();
    if (!out.got) return make_error("{}: no answer from the kernel", what);
    if (out.oif == 0) return make_error("{}: the kernel named no outgoing interface", what);
    RouteSpec spec;
    spec.dst = Prefix{dst, uint8_t(dst.bits())};
    spec.gateway = out.gateway;
    spec.ifindex = out.oif;
    return spec;
}

}  // namespace porthole::tun

#include "packet/control_message.hpp"

namespace porthole::packet {
namespace {

class AttrWriter {
public:
    explicit AttrWriter(std::vector<std::byte>& out) : out_(out) {}
    void raw(Attr a, std::span<const uint8_t> v) {
        put8(uint8_t(a));
        put16(uint16_t(v.size()));
        for (auto x : v)
            put8(x);
    }
    void bytes(Attr a, std::span<const std::byte> v) {
        put8(uint8_t(a));
        put16(uint16_t(v.size()));
        out_.insert(out_.end(), v.begin(), v.end());
    }
    void u8(Attr a, uint8_t v) { raw(a, std::span<const uint8_t>(&v, 1)); }
    void u16(Attr a, uint16_t v) {
        uint8_t b[2] = {uint8_t(v >> 8), uint8_t(v)};
        raw(a, b);
    }
    void u32(Attr a, uint32_t v) {
        uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
        raw(a, b);
    }
    void u64(Attr a, uint64_t v) {
        uint8_t b[8];
        for (int i = 0; i < 8; ++i)
            b[i] = uint8_t(v >> (56 - 8 * i));
        raw(a, b);
    }
    void prefix(Attr a, const Prefix& p) {
        uint8_t b[17];
        auto ab = p.addr.bytes();
        std::copy(ab.begin(), ab.end(), b);
        b[ab.size()] = p.len;
        raw(a, std::span<const uint8_t>(b, ab.size() + 1));
    }
    void address(Attr a, const IpAddress& ip) { raw(a, ip.bytes()); }

private:
    void put8(uint8_t v) { out_.push_back(std::byte(v)); }
    void put16(uint16_t v) {
        put8(uint8_t(v >> 8));
        put8(uint8_t(v));
    }
    std::vector<std::byte>& out_;
};

uint64_t be(std::span<const std::byte> v) {
    uint64_t x = 0;
    for (auto b : v)
        x = x << 8 | uint64_t(b);
    return x;
}

Result<IpAddress> address_from(std::span<const std::byte> v, const char* what) {
    if (v.size() == 4) return IpAddress::v4_bytes(std::span<const std::byte, 4>(v.data(), 4));
    if (v.size() == 16) return IpAddress::v6_bytes(std::span<const std::byte, 16>(v.data(), 16));
    return make_error("{}: address of {} octets", what, v.size());
}

Result<Prefix> prefix_from(std::span<const std::byte> v, const char* what,
                           std::optional<IpFamily> family) {
    if (v.empty()) return make_error("{}: empty", what);
    auto addr = address_from(v.first(v.size() - 1), what);
    if (!addr) return addr.error();
    if (family && addr->family() != *family) return make_error("{}: wrong address family", what);
    Prefix p{*addr, uint8_t(v.back())};
    if (p.len > addr->bits()) return make_error("{}: prefix length {} too long", what, p.len);
    return p;
}

template <class Fn>
Result<void> for_each_attr(std::span<const std::byte> payload, Fn&& fn) {
    while (!payload.empty()) {
        if (payload.size() < 3) return make_error("truncated attribute header");
        auto type = uint8_t(payload[0]);
        size_t len = size_t(payload[1]) << 8 | size_t(payload[2]);
        if (payload.size() < 3 + len)
            return make_error("attribute 0x{:02x} longer than the envelope", type);
        if (auto r = fn(type, payload.subspan(3, len)); !r) return r;
        payload = payload.subspan(3 + len);
    }
    return ok();
}

Result<void> need_size(std::span<const std::byte> v, size_t n, const char* what) {
    if (v.size() != n) return make_error("{}: {} octets, expected {}", what, v.size(), n);
    return ok();
}

}  // namespace

std::string_view to_string(CloseReason r) {
    switch (r) {
        case CloseReason::normal:
            return "closed by user";
        case CloseReason::shutdown:
            return "concentrator shutting down";
        case CloseReason::auth_failed:
            return "authentication failed";
        case CloseReason::pool_exhausted:
            return "address pool exhausted";
        case CloseReason::protocol_error:
            return "protocol error";
        case CloseReason::peer_dead:
            return "peer stopped answering keep-alives";
        case CloseReason::replaced:
            return "replaced by a newer connection";
        case CloseReason::admin:
            return "closed by the operator";
        case CloseReason::unsupported_version:
            return "unsupported protocol version";
        case CloseReason::config_timeout:
            return "configuration timed out";
        case CloseReason::server_full:
            return "concentrator at its session limit";
    }
    return "unknown reason";
}

std::string describe(const Close& c) {
    std::string out(to_string(c.reason));
    std::string text;
    for (char ch : std::string_view(c.text).substr(0, 200))
        text += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
    if (!text.empty() && text != out) out += ": " + text;
    return out;
}

bool valid_domain_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxDomainName) return false;
    if (name.back() == '.') name.remove_suffix(1);
    if (name.empty()) return false;
    size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

bool is_control_type(uint8_t t) {
    return t >= uint8_t(EnvelopeType::config_request) && t <= uint8_t(EnvelopeType::close);
}

void encode(const ControlMessage& msg, std::vector<std::byte>& out) {
    size_t start = out.size();
    out.resize(start + kHeaderSize);
    AttrWriter w(out);
    uint8_t type = 0;
    if (auto* req = std::get_if<ConfigRequest>(&msg)) {
        type = uint8_t(EnvelopeType::config_request);
        w.u8(Attr::protocol_version, req->version);
        w.u32(Attr::capabilities, req->capabilities);
        if (!req->credential.empty()) w.bytes(Attr::credential, req->credential);
        if (!req->session_token.empty()) w.bytes(Attr::session_token, req->session_token);
    } else if (auto* as = std::get_if<ConfigAssign>(&msg)) {
        type = uint8_t(EnvelopeType::config_assign);
        if (as->ipv4) w.prefix(Attr::ipv4_address, *as->ipv4);
        if (as->ipv6) w.prefix(Attr::ipv6_address, *as->ipv6);
        for (auto& r : as->routes)
            w.prefix(Attr::route, r);
        for (auto& d : as->dns)
            w.address(Attr::dns_server, d);
        for (auto& d : as->dns_search)
            w.bytes(Attr::dns_search, std::as_bytes(std::span(d.data(), d.size())));
        w.u16(Attr::mtu, as->mtu);
        w.u16(Attr::keepalive_interval, as->keepalive_s);
        if (!as->session_token.empty()) w.bytes(Attr::session_token, as->session_token);
        if (as->capabilities != 0) w.u32(Attr::capabilities, as->capabilities);
    } else if (auto* ka = std::get_if<Keepalive>(&msg)) {
        type = uint8_t(ka->reply ? EnvelopeType::keepalive_reply : EnvelopeType::keepalive_request);
        w.u64(Attr::timestamp, ka->timestamp_us);
    } else if (auto* cl = std::get_if<Close>(&msg)) {
        type = uint8_t(EnvelopeType::close);
        w.u16(Attr::reason_code, uint16_t(cl->reason));
        std::string_view text = cl->text;
        text = text.substr(0, kMaxReasonText);
        w.bytes(Attr::reason_text, std::as_bytes(std::span(text.data(), text.size())));
    }
    write_header(out.data() + start, type, out.size() - start - kHeaderSize);
}

Result<ControlMessage> decode(uint8_t type, std::span<const std::byte> payload) {
    switch (EnvelopeType(type)) {
        case EnvelopeType::config_request: {
            ConfigRequest m;
            bool have_version = false;
            auto r = for_each_attr(payload,
                                   [&](uint8_t a, std::span<const std::byte> v) -> Result<void> {
                                       switch (Attr(a)) {
                                           case Attr::protocol_version:
                                               if (auto s = need_size(v, 1, "protocol version"); !s)
                                                   return s;
                                               m.version = uint8_t(v[0]);
                                               have_version = true;
                                               break;
                                           case Attr::capabilities:
                                               if (auto s = need_size(v, 4, "capabilities"); !s)
                                                   return s;
                                               m.capabilities = uint32_t(be(v));
                                               break;
                                           case Attr::credential:
                                               m.credential.assign(v.begin(), v.end());
                                               break;
                                           case Attr::session_token:
                                               if (v.size() > kMaxTokenSize)
                                                   return make_error("session token too long");
                                               m.session_token.assign(v.begin(), v.end());
                                               break;
                                           default:
                                               break;
                                       }
                                       return ok();
                                   });
            if (!r) return r.error().context("configuration request");
            if (!have_version) return make_error("configuration request: no protocol version");
            return ControlMessage(std::move(m));
        }
        case EnvelopeType::config_assign: {
            ConfigAssign m;
            m.mtu = 0;
            m.keepalive_s = 0;
            auto r = for_each_attr(
                payload, [&](uint8_t a, std::span<const std::byte> v) -> Result<void> {
                    switch (Attr(a)) {
                        case Attr::ipv4_address: {
                            auto p = prefix_from(v, "IPv4 address", IpFamily::v4);
                            if (!p) return p.error();
                            m.ipv4 = *p;
                            break;
                        }
                        case Attr::ipv6_address: {
                            auto p = prefix_from(v, "IPv6 address", IpFamily::v6);
                            if (!p) return p.error();
                            m.ipv6 = *p;
                            break;
                        }
                        case Attr::route: {
                            auto p = prefix_from(v, "route", std::nullopt);
                            if (!p) return p.error();
                            m.routes.push_back(p->network());
                            break;
                        }
                        case Attr::dns_server: {
                            auto d = address_from(v, "DNS server");
                            if (!d) return d.error();
                            m.dns.push_back(*d);
                            break;
                        }
                        case Attr::dns_search: {
                            std::string_view name(reinterpret_cast<const char*>(v.data()),
                                                  v.size());
                            if (!valid_domain_name(name))
                                return make_error("DNS search domain: not a domain name");
                            if (m.dns_search.size() == kMaxDnsSearch)
                                return make_error("more than {} DNS search domains", kMaxDnsSearch);
                            m.dns_search.emplace_back(name);
                            break;
                        }
                        case Attr::mtu:
                            if (auto s = need_size(v, 2, "MTU"); !s) return s;
                            m.mtu = uint16_t(be(v));
                            break;
                        case Attr::keepalive_interval:
                            if (auto s = need_size(v, 2, "keep-alive interval"); !s) return s;
                            m.keepalive_s = uint16_t(be(v));
                            break;
                        case Attr::session_token:
                            if (v.size() > kMaxTokenSize)
                                return make_error("session token too long");
                            m.session_token.assign(v.begin(), v.end());
                            break;
                        case Attr::capabilities:
                            if (auto sz = need_size(v, 4, "capabilities"); !sz) return sz;
                            m.capabilities = uint32_t(be(v));
                            break;
                        default:
                            break;
                    }
                    return ok();
                });
            if (!r) return r.error().context("configuration assignment");
            if (!m.ipv4 && !m.ipv6) return make_error("configuration assignment: no address");
            if (m.mtu < 576) return make_error("configuration assignment: MTU {} too small", m.mtu);
            return ControlMessage(std::move(m));
        }
        case EnvelopeType::keepalive_request:
        case EnvelopeType::keepalive_reply: {
            Keepalive m;
            m.reply = type == uint8_t(EnvelopeType::keepalive_reply);
            auto r = for_each_attr(payload,
                                   [&](uint8_t a, std::span<const std::byte> v) -> Result<void> {
                                       if (Attr(a) == Attr::timestamp) {
                                           if (auto s = need_size(v, 8, "timestamp"); !s) return s;
                                           m.timestamp_us = be(v);
                                       }
                                       return ok();
                                   });
            if (!r) return r.error().context("keep-alive");
            return ControlMessage(m);
        }
        case EnvelopeType::close: {
            Close m;
            auto r = for_each_attr(
                payload, [&](uint8_t a, std::span<const std::byte> v) -> Result<void> {
                    if (Attr(a) == Attr::reason_code) {
                        if (auto s = need_size(v, 2, "reason code"); !s) return s;
                        m.reason = CloseReason(be(v));
                    } else if (Attr(a) == Attr::reason_text) {
                        auto n = std::min(v.size(), kMaxReasonText);
                        m.text.assign(reinterpret_cast<const char*>(v.data()), n);
                    }
                    return ok();
                });
            if (!r) return r.error().context("close");
            return ControlMessage(std::move(m));
        }
        default:
            return make_error("envelope type 0x{:02x} is not a control message", type);
    }
}

}  // namespace porthole::packet

#include "base/ip_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace porthole {

IpAddress IpAddress::v4(uint32_t h) {
    IpAddress a;
    a.family_ = IpFamily::v4;
    a.b_[0] = uint8_t(h >> 24);
    a.b_[1] = uint8_t(h >> 16);
    a.b_[2] = uint8_t(h >> 8);
    a.b_[3] = uint8_t(h);
    return a;
}

IpAddress IpAddress::v4_bytes(std::span<const std::byte, 4> b) {
    IpAddress a;
    a.family_ = IpFamily::v4;
    std::memcpy(a.b_.data(), b.data(), 4);
    return a;
}

IpAddress IpAddress::v6_bytes(std::span<const std::byte, 16> b) {
    IpAddress a;
    a.family_ = IpFamily::v6;
    std::memcpy(a.b_.data(), b.data(), 16);
    return a;
}

Result<IpAddress> IpAddress::parse(std::string_view text) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.size() >= sizeof buf) return make_error("'{}' is not an IP address", text);
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress a;
    if (::inet_pton(AF_INET, buf, a.b_.data()) == 1) {
        a.family_ = IpFamily::v4;
        return a;
    }
    if (::inet_pton(AF_INET6, buf, a.b_.data()) == 1) {
        a.family_ = IpFamily::v6;
        return a;
    }
    return make_error("'{}' is not an IP address", text);
}

uint32_t IpAddress::v4_host_order() const {
    return uint32_t(b_[0]) << 24 | uint32_t(b_[1]) << 16 | uint32_t(b_[2]) << 8 | b_[3];
}

bool IpAddress::is_unspecified() const {
    auto b = bytes();
    return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    ::inet_ntop(is_v4() ? AF_INET : AF_INET6, b_.data(), buf, sizeof buf);
    return buf;
}

IpAddress IpAddress::plus(uint64_t n) const {
    IpAddress r = *this;
    unsigned carry = 0;
    for (int i = int(bytes().size()) - 1; i >= 0; --i) {
        unsigned sum = r.b_[size_t(i)] + unsigned(n & 0xff) + carry;
        r.b_[size_t(i)] = uint8_t(sum);
        carry = sum >> 8;
        n >>= 8;
    }
    return r;
}

Result<Prefix> Prefix::parse(std::string_view text) {
    auto slash = text.find('/');
    auto addr = IpAddress::parse(text.substr(0, slash));
    if (!addr) return addr.error();
    Prefix p{*addr, uint8_t(addr->bits())};
    if (slash != std::string_view::npos) {
        auto len_text = text.substr(slash + 1);
        unsigned len = 0;
        auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (ec != std::errc{} || end != len_text.data() + len_text.size() || len > addr->bits() ||
            len_text.empty())
            return make_error("'{}' is not a prefix (bad length)", text);
        p.len = uint8_t(len);
    }
    return p;
}

Prefix Prefix::network() const {
    Prefix p = *this;
    auto b = addr.bytes();
    IpAddress out = addr;
    std::array<std::byte, 16> raw{};
    for (size_t i = 0; i < b.size(); ++i) {
        unsigned first_bit = unsigned(i) * 8;
        uint8_t mask = 0;
        if (first_bit + 8 <= len)
            mask = 0xff;
        else if (first_bit < len)
            mask = uint8_t(0xff << (8 - (len - first_bit)));
        raw[i] = std::byte(b[i] & mask);
    }
    out = addr.is_v4() ? IpAddress::v4_bytes(std::span<const std::byte, 4>(raw.data(), 4))
                       : IpAddress::v6_bytes(std::span<const std::byte, 16>(raw.data(), 16));
    p.addr = out;
    return p;
}

bool Prefix::contains(const IpAddress& a) const {
    if (a.family() != addr.family()) return false;
    for (unsigned i = 0; i < len; ++i)
        if (a.bit(i) != addr.bit(i)) return false;
    return true;
}

std::string Prefix::to_string() const {
    return fmt::format("{}/{}", addr.to_string(), len);
}

Result<HostPort> parse_host_port(std::string_view text, uint16_t default_port) {
    HostPort hp{std::string(text), default_port};
    std::string_view port_text;
    bool has_port = false;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return make_error("'{}': missing ']'", text);
        hp.host = std::string(text.substr(1, close - 1));
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return make_error("'{}': expected ':PORT' after ']'", text);
            port_text = rest.substr(1);
            has_port = true;
        }
    } else if (auto colon = text.find(':');
               colon != std::string_view::npos && text.rfind(':') == colon) {
        hp.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        has_port = true;
    }
    if (hp.host.empty()) return make_error("'{}': no host", text);
    if (has_port) {
        unsigned port = 0;
        auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
            port > 65535)
            return make_error("'{}': bad port", text);
        hp.port = uint16_t(port);
    }
    return hp;
}

Result<Endpoint> Endpoint::parse(std::string_view text, uint16_t default_port) {
    auto hp = parse_host_port(text, default_port);
    if (!hp) return hp.error();
    auto addr = IpAddress::parse(hp->host);
    if (!addr) return addr.error();
    return Endpoint{*addr, hp->port};
}

std::string Endpoint::to_string() const {
    return addr.is_v4() ? fmt::format("{}:{}", addr.to_string(), port)
                        : fmt::format("[{}]:{}", addr.to_string(), port);
}

}  // namespace porthole

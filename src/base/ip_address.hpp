// IpAddress and Prefix: plain values for IPv4/IPv6 addresses and CIDR prefixes. Pure code.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace porthole {

enum class IpFamily : uint8_t { v4 = 4, v6 = 6 };

class IpAddress {
public:
    IpAddress() = default;  // 0.0.0.0
    static IpAddress v4(uint32_t host_order);
    static IpAddress v4_bytes(std::span<const std::byte, 4> b);
    static IpAddress v6_bytes(std::span<const std::byte, 16> b);
    static Result<IpAddress> parse(std::string_view text);

    [[nodiscard]] IpFamily family() const { return family_; }
    [[nodiscard]] bool is_v4() const { return family_ == IpFamily::v4; }
    [[nodiscard]] bool is_v6() const { return family_ == IpFamily::v6; }
    [[nodiscard]] unsigned bits() const { return is_v4() ? 32 : 128; }
    // Network-order bytes: 4 for IPv4, 16 for IPv6.
    [[nodiscard]] std::span<const uint8_t> bytes() const { return {b_.data(), is_v4() ? 4u : 16u}; }
    [[nodiscard]] uint32_t v4_host_order() const;
    [[nodiscard]] bool bit(unsigned i) const { return (b_[i / 8] >> (7 - i % 8)) & 1; }
    [[nodiscard]] bool is_unspecified() const;
    [[nodiscard]] std::string to_string() const;

    // Adds n to the address (wrapping within the family's width).
    [[nodiscard]] IpAddress plus(uint64_t n) const;

    friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
    friend bool operator==(const IpAddress&, const IpAddress&) = default;

private:
    IpFamily family_ = IpFamily::v4;
    std::array<uint8_t, 16> b_{};
};

struct Prefix {
    IpAddress addr;
    uint8_t len = 0;

    // "198.18.0.0/24", "2001:db8::/64"; a bare address means a host prefix.
    static Result<Prefix> parse(std::string_view text);
    [[nodiscard]] Prefix network() const;  // host bits cleared
    [[nodiscard]] bool contains(const IpAddress& a) const;
    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const Prefix&, const Prefix&) = default;
};

struct HostPort {
    std::string host;  // a name or an address literal, without brackets
    uint16_t port = 0;
};

// "host", "host:443", "198.18.2.2:443", "[2001:db8::1]:443", "2001:db8::1" (a bare IPv6 address
// has no port). An empty or out-of-range port is an error.
Result<HostPort> parse_host_port(std::string_view text, uint16_t default_port);

struct Endpoint {  // host:port, [v6]:port
    IpAddress addr;
    uint16_t port = 0;
    static Result<Endpoint> parse(std::string_view text, uint16_t default_port);
    [[nodiscard]] std::string to_string() const;
};

}  // namespace porthole

template <>
struct fmt::formatter<porthole::IpAddress> : fmt::formatter<std::string_view> {
    auto format(const porthole::IpAddress& a, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
    }
};
template <>
struct fmt::formatter<porthole::Prefix> : fmt::formatter<std::string_view> {
    auto format(const porthole::Prefix& p, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(p.to_string(), ctx);
    }
};
template <>
struct fmt::formatter<porthole::Endpoint> : fmt::formatter<std::string_view> {
    auto format(const porthole::Endpoint& e, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(e.to_string(), ctx);
    }
};

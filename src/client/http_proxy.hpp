// HttpProxy: reaching the concentrator through an explicit HTTP proxy with CONNECT (3GPP TS 24.322
// "restrictive access network type II"). Pure code: URL parsing, the request, the reply parser.
// TunnelClient does the I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::client {

struct ProxyConfig {
    std::string host;  // name or address literal (no brackets)
    uint16_t port = 8080;
    std::string user, password;  // Basic authentication when user is set (never logged)
    [[nodiscard]] std::string where() const;  // "host:port" for messages
};

// "http://[user:pass@]host[:port][/]" (port 8080 by default; user and password may be
// percent-encoded). Other schemes are refused with a clear reason.
Result<ProxyConfig> parse_proxy_url(std::string_view url);

// The CONNECT request for target host:port, with Proxy-Authorization when configured.
std::string connect_request(const ProxyConfig& proxy, std::string_view target_host,
                            uint16_t target_port);

struct ProxyReply {
    int status = 0;
    std::string reason;
    size_t header_bytes = 0;  // the reply head ends here; what follows belongs to the tunnel
};

inline constexpr size_t kMaxProxyReplyHead = 16 * 1024;

// Parses the proxy's reply head from what has been received so far: nullopt while the head is
// incomplete; an error when it is malformed or longer than kMaxProxyReplyHead.
Result<std::optional<ProxyReply>> parse_proxy_reply(std::string_view received);

// One line for a refusal: "407 Proxy Authentication Required (check the proxy user and
// password)".
std::string describe_refusal(const ProxyReply& reply);

std::string base64(std::string_view in);

}  // namespace porthole::client

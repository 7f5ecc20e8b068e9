#include "client/http_proxy.hpp"

#include <charconv>

namespace porthole::client {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

Result<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
            return make_error("bad percent-encoding in proxy credentials");
        out += char(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
        i += 2;
    }
    return out;
}

}  // namespace

std::string ProxyConfig::where() const {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                               : fmt::format("{}:{}", host, port);
}

std::string base64(std::string_view in) {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v =
            uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (i < in.size()) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16;
        if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += i + 1 < in.size() ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

Result<ProxyConfig> parse_proxy_url(std::string_view url) {
    constexpr std::string_view scheme = "http://";
    if (url.substr(0, scheme.size()) != scheme) {
        if (url.find("://") != std::string_view::npos)
            return make_error("proxy '{}': only http:// proxies are supported",
                              url.substr(0, url.find("://") + 3));
        // A bare host:port, as some environments set https_proxy.
    } else {
        url.remove_prefix(scheme.size());
    }
    if (auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
    ProxyConfig p;
    if (auto at = url.rfind('@'); at != std::string_view::npos) {
        auto cred = url.substr(0, at);
        url.remove_prefix(at + 1);
        auto colon = cred.find(':');
        auto user = percent_decode(cred.substr(0, colon));
        if (!user) return user.error();
        p.user = *user;
        if (colon != std::string_view::npos) {
            auto pass = percent_decode(cred.substr(colon + 1));
            if (!pass) return pass.error();
            p.password = *pass;
        }
    }
    auto hp = parse_host_port(url, 8080);
    if (!hp) return make_error("proxy: {}", hp.error().message);
    p.host = hp->host;
    p.port = hp->port;
    return p;
}

std::string connect_request(const ProxyConfig& proxy, std::string_view host, uint16_t port) {
    std::string target = host.find(':') != std::string_view::npos
                             ? fmt::format("[{}]:{}", host, port)
                             : fmt::format("{}:{}", host, port);
    std::string req = fmt::format("CONNECT {} HTTP/1.1\r\nHost: {}\r\n", target, target);
    if (!proxy.user.empty())
        req += fmt::format("Proxy-Authorization: Basic {}\r\n",
                           base64(proxy.user + ":" + proxy.password));
    req += "\r\n";
    return req;
}

Result<std::optional<ProxyReply>> parse_proxy_reply(std::string_view rx) {
    auto end = rx.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (rx.size() > kMaxProxyReplyHead) return make_error("the proxy's reply is too long");
        if (!rx.empty() && rx.substr(0, std::min<size_t>(rx.size(), 5)) !=
                               std::string_view("HTTP/").substr(0, std::min<size_t>(rx.size(), 5)))
            return make_error("the proxy did not answer in HTTP");
        return std::optional<ProxyReply>();
    }
    auto line = rx.substr(0, rx.find("\r\n"));
    // "HTTP/1.1 200 Connection established"
    if (line.substr(0, 5) != "HTTP/") return make_error("the proxy did not answer in HTTP");
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp + 4 > line.size())
        return make_error("malformed proxy status line");
    int status = 0;
    auto code = line.substr(sp + 1, 3);
    auto [p, ec] = std::from_chars(code.data(), code.data() + 3, status);
    if (ec != std::errc{} || p != code.data() + 3 || status < 100 || status > 599)
        return make_error("malformed proxy status line");
    ProxyReply r;
    r.status = status;
    if (sp + 5 <= line.size()) r.reason = std::string(line.substr(sp + 5, 80));
    for (auto& c : r.reason)
        if (c < 0x20 || c > 0x7e) c = '?';
    r.header_bytes = end + 4;
    return std::optional<ProxyReply>(std::move(r));
}

std::string describe_refusal(const ProxyReply& reply) {
    std::string hint;
    switch (reply.status) {
        case 407:
            hint = " (check the proxy user and password)";
            break;
        case 403:
            hint = " (the proxy does not allow this destination)";
            break;
        case 502:
        case 503:
        case 504:
            hint = " (the proxy could not reach the concentrator)";
            break;
        default:
            break;
    }
    return fmt::format("{} {}{}", reply.status, reply.reason, hint);
}

}  // namespace porthole::client

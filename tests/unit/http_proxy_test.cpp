#include <doctest/doctest.h>

#include "client/http_proxy.hpp"

using namespace porthole::client;

TEST_CASE("http proxy: URLs with and without credentials, ports, IPv6") {
    auto p = parse_proxy_url("http://lab:lab%40pass@198.18.4.2:3128/");
    REQUIRE(p.has_value());
    CHECK(p->host == "198.18.4.2");
    CHECK(p->port == 3128);
    CHECK(p->user == "lab");
    CHECK(p->password == "lab@pass");
    auto bare = parse_proxy_url("proxy.corp:8080");
    REQUIRE(bare.has_value());
    CHECK(bare->host == "proxy.corp");
    CHECK(bare->user.empty());
    auto v6 = parse_proxy_url("http://[fd00:18:4::2]:3128");
    REQUIRE(v6.has_value());
    CHECK(v6->host == "fd00:18:4::2");
    CHECK(v6->where() == "[fd00:18:4::2]:3128");
    auto dflt = parse_proxy_url("http://proxy");
    REQUIRE(dflt.has_value());
    CHECK(dflt->port == 8080);
    CHECK_FALSE(parse_proxy_url("socks5://proxy:1080").has_value());
    CHECK_FALSE(parse_proxy_url("http://proxy:99999").has_value());
    CHECK_FALSE(parse_proxy_url("http://u:%zz@proxy:1").has_value());
}

TEST_CASE("http proxy: the CONNECT request carries Basic credentials") {
    ProxyConfig p{"198.18.4.2", 3128, "Aladdin", "open sesame"};
    auto req = connect_request(p, "198.18.2.2", 443);
    CHECK(req ==
          "CONNECT 198.18.2.2:443 HTTP/1.1\r\nHost: 198.18.2.2:443\r\n"
          "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");  // RFC 7617's example
    ProxyConfig anon{"proxy", 8080, "", ""};
    CHECK(connect_request(anon, "fd00:18:2::2", 443) ==
          "CONNECT [fd00:18:2::2]:443 HTTP/1.1\r\nHost: [fd00:18:2::2]:443\r\n\r\n");
    CHECK(base64("") == "");
    CHECK(base64("f") == "Zg==");
    CHECK(base64("fo") == "Zm8=");
    CHECK(base64("foo") == "Zm9v");
}

TEST_CASE("http proxy: replies are parsed incrementally; refusals explained") {
    auto partial = parse_proxy_reply("HTTP/1.1 200 Connection est");
    REQUIRE(partial.has_value());
    CHECK_FALSE(partial->has_value());
    auto ok = parse_proxy_reply("HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n\x16\x03");
    REQUIRE(ok.has_value());
    REQUIRE(ok->has_value());
    CHECK((*ok)->status == 200);
    CHECK((*ok)->header_bytes == 47);  // the two TLS bytes after the head are not part of it
    auto denied = parse_proxy_reply("HTTP/1.0 407 Proxy Authentication Required\r\n\r\n");
    REQUIRE(denied.has_value());
    REQUIRE(denied->has_value());
    CHECK(describe_refusal(**denied) ==
          "407 Proxy Authentication Required (check the proxy user and password)");
    CHECK(describe_refusal({403, "Forbidden", 0}).find("does not allow") != std::string::npos);
    CHECK(describe_refusal({502, "Bad Gateway", 0}).find("could not reach") != std::string::npos);
    CHECK_FALSE(parse_proxy_reply("SSH-2.0-OpenSSH\r\n\r\n").has_value());
    CHECK_FALSE(parse_proxy_reply("SSH-2.0").has_value());
    CHECK_FALSE(parse_proxy_reply(std::string(kMaxProxyReplyHead + 1, 'H')).has_value());
}

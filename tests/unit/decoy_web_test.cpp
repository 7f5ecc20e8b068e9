#include <doctest/doctest.h>

#include <string>

#include "concentrator/decoy_web.hpp"

using porthole::concentrator::DecoyWeb;

namespace {
std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}
}  // namespace

TEST_CASE("decoy web: HTTP is told apart from the tunnel by its first byte") {
    CHECK(DecoyWeb::looks_like_http(bytes("GET / HTTP/1.1\r\n")));
    CHECK(DecoyWeb::looks_like_http(bytes("HEAD")));
    CHECK(DecoyWeb::looks_like_http(bytes("P")));
    const char config_request[] = {char(0x80), 0, 16};
    CHECK_FALSE(DecoyWeb::looks_like_http(bytes(std::string_view(config_request, 3))));
    CHECK_FALSE(DecoyWeb::looks_like_http(bytes("\x01\x00\x20")));
    CHECK_FALSE(DecoyWeb::looks_like_http({}));
}

TEST_CASE("decoy web: an ordinary site answers GET, HEAD, unknown paths and junk") {
    DecoyWeb web("<html>custom</html>");
    CHECK(web.respond("GET / HTTP/1.1\r\nHost: x").empty());  // head incomplete: wait
    auto ok = web.respond("GET / HTTP/1.1\r\nHost: concentrator.lab\r\n\r\n");
    CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(ok.find("Content-Length: 19\r\n") != std::string::npos);
    CHECK(ok.substr(ok.size() - 19) == "<html>custom</html>");
    auto head = web.respond("HEAD /index.html?x=1 HTTP/1.1\r\n\r\n");
    CHECK(head.rfind("HTTP/1.1 200 OK", 0) == 0);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");  // no body
    CHECK(web.respond("GET /admin HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 Not Found", 0) == 0);
    CHECK(web.respond("POST / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);
    CHECK(web.respond("GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
    std::string huge = "GET / HTTP/1.1\r\n" + std::string(DecoyWeb::kMaxRequestHead, 'a');
    CHECK(web.respond(huge).rfind("HTTP/1.1 431", 0) == 0);
    DecoyWeb builtin;
    CHECK(builtin.respond("GET / HTTP/1.0\r\n\r\n").find("<h1>Welcome</h1>") != std::string::npos);
}

#include "concentrator/decoy_web.hpp"

#include <fmt/format.h>

namespace porthole::concentrator {
namespace {

constexpr std::string_view kDefaultPage =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Welcome</title></head>\n"
    "<body><h1>Welcome</h1><p>This site is working.</p></body></html>\n";

constexpr std::string_view kNotFound =
    "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
    "<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body>"
    "</html>\n";

std::string response(int status, std::string_view reason, std::string_view body, bool head) {
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\n\r\n{}",
        status, reason, body.size(), head ? std::string_view() : body);
}

}  // namespace

DecoyWeb::DecoyWeb(std::string index_html)
    : index_(index_html.empty() ? std::string(kDefaultPage) : std::move(index_html)) {}

bool DecoyWeb::looks_like_http(std::span<const std::byte> first) {
    if (first.empty()) return false;
    auto c = char(first[0]);
    return c >= 'A' && c <= 'Z';
}

std::string DecoyWeb::respond(std::string_view req) const {
    auto end = req.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (req.size() < kMaxRequestHead) return {};
        return response(431, "Request Header Fields Too Large", "", false);
    }
    auto line = req.substr(0, req.find("\r\n"));
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.substr(sp2 + 1, 5) != "HTTP/")
        return response(400, "Bad Request", "", false);
    auto method = line.substr(0, sp1);
    auto path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    bool head = method == "HEAD";
    if (method != "GET" && !head) return response(405, "Method Not Allowed", "", false);
    if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path == "/" || path == "/index.html") return response(200, "OK", index_, head);
    return response(404, "Not Found", kNotFound, head);
}

}  // namespace porthole::concentrator

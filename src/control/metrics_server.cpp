#include "control/metrics_server.hpp"

#include "control/one_shot_server.hpp"
#include "net/tcp_socket.hpp"

namespace porthole::control {

namespace {

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     bool head_only) {
    return fmt::format(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status, content_type, body.size(), head_only ? std::string_view() : body);
}

}  // namespace

std::string MetricsServer::respond(std::string_view head, const Render& render) {
    auto eol = head.find_first_of("\r\n");
    std::string_view line = head.substr(0, eol);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/")
        return response("400 Bad Request", "text/plain; charset=utf-8", "bad request\n", false);
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics")
        return response("404 Not Found", "text/plain; charset=utf-8", "not found\n",
                        method == "HEAD");
    if (method != "GET" && method != "HEAD")
        return response("405 Method Not Allowed", "text/plain; charset=utf-8",
                        "method not allowed\n", false);
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(),
                    method == "HEAD");
}

MetricsServer::MetricsServer(std::unique_ptr<OneShotServer> server) : server_(std::move(server)) {}
MetricsServer::~MetricsServer() = default;

Result<std::unique_ptr<MetricsServer>> MetricsServer::create(net::EventLoop& loop,
                                                             const Endpoint& listen,
                                                             Render render) {
    auto fd = net::listen_tcp(listen, 64);
    if (!fd) return fd.error().context("metrics-listen");
    OneShotServer::Limits limits;
    limits.max_request = 8192;
    limits.max_clients = 8;
    auto server = OneShotServer::create(
        loop, std::move(*fd), OneShotServer::Framing::http_head, limits,
        [render = std::move(render)](const OneShotServer::Request& req) -> std::string {
            if (req.too_long)
                return response("431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                                "request too large\n", false);
            return respond(req.text, render);
        });
    if (!server) return server.error();
    return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(*server)));
}

}  // namespace porthole::control

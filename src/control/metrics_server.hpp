// MetricsServer: the optional Prometheus endpoint. Minimal HTTP/1.1 on a TCP listener driven by
// the event loop (OneShotServer: bounded request head, deadline, one response, then close):
// `GET /metrics` answers 200 with the text exposition format; anything else 404 (405 for a
// method other than GET/HEAD on /metrics, 400 for what is not an HTTP request).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/ip_address.hpp"
#include "base/result.hpp"
#include "net/event_loop.hpp"

namespace porthole::control {

class OneShotServer;

class MetricsServer {
public:
    using Render = std::function<std::string()>;  // the metrics page (text format 0.0.4)

    static Result<std::unique_ptr<MetricsServer>> create(net::EventLoop& loop,
                                                         const Endpoint& listen, Render render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The whole HTTP response to a request head (pure; unit-tested).
    static std::string respond(std::string_view request_head, const Render& render);

private:
    explicit MetricsServer(std::unique_ptr<OneShotServer> server);
    std::unique_ptr<OneShotServer> server_;
};

}  // namespace porthole::control

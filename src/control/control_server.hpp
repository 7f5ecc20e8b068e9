// ControlServer: a local request/reply service on a unix stream socket, driven by a
// net::EventLoop. Each connection sends one request line ("status\n"); the handler's reply is
// written back and the connection is closed. Used by portholed (portholectl's socket) and by the
// client (`porthole status`).
//
// It never blocks the loop and a slow or hostile peer costs little: requests are bounded (a line
// longer than max_request is answered with an error and closed), each connection has a deadline
// (timeout: no complete request, or a reply not taken, and it is closed), replies are bounded,
// and at most max_clients connections are served at once (more are closed on accept).
//
// The socket file is created with `mode` (0660) and, when `group` is set, owned by that group; a
// missing parent directory is created 0750 (same group). A stale socket file (nobody answering)
// is replaced; a live one is an error "control socket PATH is in use by another portholed"
// (`owner_name` names the program). The file is removed on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "net/event_loop.hpp"

namespace porthole::control {

struct ControlServerOptions {
    std::string path;                      // e.g. /run/porthole/portholed.sock
    std::string group;                     // empty: the process's group
    mode_t mode = 0660;                    // of the socket file
    std::string owner_name = "portholed";  // for "in use by another ..."
    size_t max_request = 4096;             // bytes, including the newline
    size_t max_reply = 64 * 1024 * 1024;   // a longer reply is truncated (and logged)
    size_t max_clients = 16;
    std::chrono::milliseconds timeout{5000};
};

class ControlServer {
public:
    // Takes one request line without its line end ('\n' or "\r\n"); returns the reply (sent as
    // is; a JSON document followed by '\n' by convention). Runs on the loop's thread.
    using Handler = std::function<std::string(std::string_view request)>;

    static Result<std::unique_ptr<ControlServer>> create(net::EventLoop& loop,
                                                         ControlServerOptions options,
                                                         Handler handler);
    ~ControlServer();  // closes every connection and removes the socket file
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    [[nodiscard]] const std::string& path() const;
    [[nodiscard]] size_t connections() const;

private:
    struct Impl;
    explicit ControlServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace porthole::control

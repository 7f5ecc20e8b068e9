// The other end of ControlServer: connect to the unix socket, send one request line, read the
// reply until the server closes. Used by portholectl (and `porthole status`).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace porthole::control {

// Errors are one line naming the socket, e.g.
//   cannot reach portholed at /run/porthole/portholed.sock: no such file (is portholed running?)
//   cannot reach portholed at ...: permission denied (run as root or as a member of the control
//   group)
// `server` names the program behind the socket. The reply is bounded by max_reply bytes.
Result<std::string> control_request(const std::string& path, std::string_view request,
                                    std::chrono::milliseconds timeout,
                                    std::string_view server = "portholed",
                                    size_t max_reply = 64 * 1024 * 1024);

}  // namespace porthole::control

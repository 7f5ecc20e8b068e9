#include "control/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "base/fd.hpp"

namespace porthole::control {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    return int(std::max<int64_t>(0, left.count()));
}

}  // namespace

Result<std::string> control_request(const std::string& path, std::string_view request,
                                    std::chrono::milliseconds timeout, std::string_view server,
                                    size_t max_reply) {
    auto unreachable = [&](std::string_view why) {
        return make_error("cannot reach {} at {}: {}", server, path, why);
    };
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sun.sun_path)
        return unreachable("the path is empty or too long for a unix socket");
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    auto until = Clock::now() + timeout;
    // Non-blocking: a unix socket's connect fails with EAGAIN (instead of blocking) while the
    // server's backlog is full; retried until the deadline.
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket(AF_UNIX)", errno);
    while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN) {
            if (Clock::now() >= until)
                return make_error("{} at {} did not accept the connection within {} ms", server,
                                  path, timeout.count());
            ::poll(nullptr, 0, 20);
            continue;
        }
        if (err == ENOENT) return unreachable(fmt::format("no such file (is {} running?)", server));
        if (err == ECONNREFUSED)
            return unreachable(fmt::format("connection refused (is {} running?)", server));
        if (err == EACCES || err == EPERM)
            return unreachable(
                "permission denied (run as root or as a member of the control group)");
        return unreachable(std::strerror(err));
    }
    // The server closes connections beyond its limit of simultaneous clients at once.
    auto closed_early = [&] {
        return make_error(
            "{} at {} closed the connection without a reply (busy with other "
            "control clients?)",
            server, path);
    };
    std::string line(request);
    line += '\n';
    for (size_t off = 0; off < line.size();) {
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, remaining_ms(until)) == 0)
            return make_error("{} at {} did not take the request within {} ms", server, path,
                              timeout.count());
        ssize_t n =
            ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return closed_early();
        if (n < 0) return sys_error(fmt::format("sending to {} at {}", server, path), errno);
        off += size_t(n);
    }
    std::string reply;
    char buf[16384];
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, remaining_ms(until));
        if (ready == 0)
            return make_error("{} at {} did not answer within {} ms", server, path,
                              timeout.count());
        if (ready < 0 && errno == EINTR) continue;
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) break;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0 && errno == ECONNRESET) return closed_early();
        if (n < 0) return sys_error(fmt::format("reading from {} at {}", server, path), errno);
        reply.append(buf, size_t(n));
        if (reply.size() > max_reply)
            return make_error("{} at {} sent a reply over {} bytes", server, path, max_reply);
    }
    if (reply.empty()) return closed_early();
    return reply;
}

}  // namespace porthole::control

#include "net/tcp_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace porthole::net {
namespace {

socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage& ss) {
    std::memset(&ss, 0, sizeof ss);
    if (e.addr.is_v4()) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(e.port);
        std::memcpy(&sin->sin_addr, e.addr.bytes().data(), 4);
        return sizeof(sockaddr_in);
    }
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(e.port);
    std::memcpy(&sin6->sin6_addr, e.addr.bytes().data(), 16);
    return sizeof(sockaddr_in6);
}

}  // namespace

Endpoint sockaddr_to_endpoint(const void* sa) {
    auto* s = static_cast<const sockaddr*>(sa);
    Endpoint e;
    if (s->sa_family == AF_INET) {
        auto* sin = static_cast<const sockaddr_in*>(sa);
        e.addr = IpAddress::v4(ntohl(sin->sin_addr.s_addr));
        e.port = ntohs(sin->sin_port);
    } else if (s->sa_family == AF_INET6) {
        auto* sin6 = static_cast<const sockaddr_in6*>(sa);
        e.addr = IpAddress::v6_bytes(std::span<const std::byte, 16>(
            reinterpret_cast<const std::byte*>(&sin6->sin6_addr), 16));
        e.port = ntohs(sin6->sin6_port);
    }
    return e;
}

void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void set_user_timeout(int fd, std::chrono::milliseconds timeout) {
    unsigned ms = unsigned(timeout.count());
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
}

Result<Fd> listen_tcp(const Endpoint& local, int backlog) {
    auto what = [&] { return fmt::format("listen on {}", local); };
    Fd fd(::socket(local.addr.is_v4() ? AF_INET : AF_INET6,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error(what(), errno);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // An IPv6 listener takes IPv6 only, so that [::]:443 and 0.0.0.0:443 can both be listened on.
    if (local.addr.is_v6()) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(local, ss);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
        int err = errno;
        auto e = sys_error(what(), err);
        if (err == EACCES) e.message += " (port below 1024 needs root or CAP_NET_BIND_SERVICE)";
        if (err == EADDRNOTAVAIL) e.message += " (no interface has that address)";
        return e;
    }
    if (::listen(fd.get(), backlog) < 0) return sys_error(what(), errno);
    return fd;
}

Result<Fd> accept_tcp(int listen_fd, Endpoint& peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd =
        ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
            return Fd();
        return sys_error("accept", errno);
    }
    peer = sockaddr_to_endpoint(&ss);
    return Fd(fd);
}

Result<Fd> connect_tcp(const Endpoint& remote, std::chrono::milliseconds timeout) {
    auto what = [&] { return fmt::format("connect {}", remote); };
    Fd fd(::socket(remote.addr.is_v4() ? AF_INET : AF_INET6,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error(what(), errno);
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(remote, ss);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
        if (errno != EINPROGRESS) return sys_error(what(), errno);
        pollfd p{fd.get(), POLLOUT, 0};
        int n;
        do
            n = ::poll(&p, 1, int(timeout.count()));
        while (n < 0 && errno == EINTR);
        if (n == 0)
            return make_error("{}: no answer within {} s", what(), timeout.count() / 1000.0);
        int err = 0;
        socklen_t elen = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) return sys_error(what(), err);
    }
    set_nodelay(fd.get());
    return fd;
}

}  // namespace porthole::net

// test_tls::TlsPair: a client and a server tls::TlsConnection over a non-blocking AF_UNIX
// socketpair, for tests that drive both ends in one thread. The sockets close with it.
//
//   test_tls::TlsPair p;            // the socketpair: fds[0] client end, fds[1] server end
//   p.make(client_ctx, server_ctx);  // both connections (the client may offer a ticket now)
//   p.handshake();                   // steps both until each ended, or 200 rounds
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <optional>

#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"

namespace test_tls {

inline bool terminal(porthole::tls::TlsStatus s) {
    using porthole::tls::TlsStatus;
    return s == TlsStatus::ok || s == TlsStatus::failed || s == TlsStatus::closed;
}

struct TlsPair {
    int fds[2] = {-1, -1};  // [0] the client's end, [1] the server's
    std::optional<porthole::tls::TlsConnection> client, server;
    porthole::tls::TlsStatus client_status = porthole::tls::TlsStatus::want_write;
    porthole::tls::TlsStatus server_status = porthole::tls::TlsStatus::want_read;

    TlsPair() {
        std::signal(SIGPIPE, SIG_IGN);  // a broken pipe is an EPIPE error, not the test's end
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    }
    ~TlsPair() {
        client.reset();
        server.reset();
        ::close(fds[0]);
        ::close(fds[1]);
    }
    TlsPair(const TlsPair&) = delete;
    TlsPair& operator=(const TlsPair&) = delete;

    void make(const porthole::tls::TlsContext& client_ctx,
              const porthole::tls::TlsContext& server_ctx) {
        auto c = porthole::tls::TlsConnection::make(client_ctx, fds[0]);
        REQUIRE(c.has_value());
        client.emplace(std::move(c).value());
        auto s = porthole::tls::TlsConnection::make(server_ctx, fds[1]);
        REQUIRE(s.has_value());
        server.emplace(std::move(s).value());
    }
    void handshake() {
        for (int i = 0; i < 200 && !(terminal(client_status) && terminal(server_status)); ++i) {
            if (!terminal(client_status)) client_status = client->handshake();
            if (!terminal(server_status)) server_status = server->handshake();
        }
    }
};

}  // namespace test_tls

// TCP socket helpers: listen, accept, connect with a deadline, and the socket options the data
// path wants. Every socket comes back non-blocking and close-on-exec, owned by an Fd.
#pragma once

#include <chrono>

#include "base/fd.hpp"
#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::net {

Result<Fd> listen_tcp(const Endpoint& local, int backlog = 1024);
// An accepted connection, or an invalid Fd when none is waiting.
Result<Fd> accept_tcp(int listen_fd, Endpoint& peer);
// Connects within timeout. Errors read "connect 198.18.2.2:443: Connection refused".
Result<Fd> connect_tcp(const Endpoint& remote, std::chrono::milliseconds timeout);
// TCP_NODELAY: envelopes are batched by us, never by Nagle.
void set_nodelay(int fd);
// TCP_USER_TIMEOUT: unacknowledged data older than this aborts the connection, so a black-holed
// path is noticed in the keep-alive's time, not after minutes of retransmissions.
void set_user_timeout(int fd, std::chrono::milliseconds timeout);
Endpoint sockaddr_to_endpoint(const void* sockaddr);

}  // namespace porthole::net

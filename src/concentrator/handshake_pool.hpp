// HandshakePool: TLS handshakes on worker threads, so that a storm of connecting UEs uses every
// core and never stalls the event loop that carries the established sessions' packets.
//
// Hand-off, in three steps:
//   1. the event loop accepts a connection, creates its UeConnection (with a fresh
//      tls::TlsConnection on the shared SSL_CTX) and lends it: lend() queues the socket and the
//      TlsConnection to one worker (round robin) and wakes that worker's eventfd;
//   2. the worker drives SSL_do_handshake in its own epoll loop until the handshake succeeds,
//      fails, the peer closes, or the deadline passes;
//   3. it queues the result for the event loop and writes the pool's eventfd; the event loop
//      takes the results (take_done()), registers the socket in its own loop and carries on.
// Between lend() and take_done() only the worker touches that TlsConnection; the two mutexed
// queues are the only state shared between threads (they order every access). OpenSSL's
// SSL_CTX, with its session cache, is shared by design and locks itself. Workers never log.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "session/clock.hpp"
#include "session/session_table.hpp"
#include "tls/tls_connection.hpp"

namespace porthole::concentrator {

class HandshakePool {
public:
    // How a lent handshake ended.
    struct Done {
        session::SessionId id = 0;
        tls::TlsStatus status = tls::TlsStatus::failed;  // ok, failed or closed
        bool timed_out = false;                          // the deadline passed first
    };

    // Starts `workers` threads (>= 1); fails with one line when a thread, epoll or eventfd
    // cannot be created.
    static Result<std::unique_ptr<HandshakePool>> create(size_t workers);
    // Stops and joins the workers. Handshakes still lent are abandoned where they are: the
    // caller still owns their connections (and closes them).
    ~HandshakePool();
    HandshakePool(const HandshakePool&) = delete;
    HandshakePool& operator=(const HandshakePool&) = delete;

    // Event-loop thread. Drives the handshake of tls (on socket fd) on a worker; neither may be
    // touched until take_done() returns id. After `deadline` it comes back timed_out.
    void lend(session::SessionId id, int fd, tls::TlsConnection& tls, session::TimePoint deadline);
    // Readable (eventfd) when handshakes have ended; register it in the event loop.
    [[nodiscard]] int done_fd() const { return done_event_.get(); }
    // Event-loop thread: appends the handshakes that ended since the last call.
    void take_done(std::vector<Done>& out);
    [[nodiscard]] size_t workers() const { return workers_.size(); }
    // Handshakes lent and not yet taken back.
    [[nodiscard]] size_t in_flight() const { return in_flight_; }

private:
    struct Job;
    class Worker;
    HandshakePool() = default;
    void complete(const Done& done);  // worker threads

    std::vector<std::unique_ptr<Worker>> workers_;
    size_t next_ = 0;
    size_t in_flight_ = 0;  // event-loop thread only
    Fd done_event_;
    std::mutex done_mu_;
    std::vector<Done> done_;  // guarded by done_mu_
};

}  // namespace porthole::concentrator

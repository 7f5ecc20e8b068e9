// EventLoop: a thin epoll shell. Handlers are registered per fd; the owner keeps them alive
// until run_once() has returned (close sessions by marking them, destroy them after the batch).
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace porthole::net {

class EventHandler {
public:
    virtual void on_event(uint32_t epoll_events) = 0;

protected:
    ~EventHandler() = default;
};

class EventLoop {
public:
    static Result<EventLoop> create();

    Result<void> add(int fd, uint32_t events, EventHandler* handler);
    Result<void> modify(int fd, uint32_t events, EventHandler* handler);
    void remove(int fd);
    // Waits at most timeout (negative: forever) and dispatches what is ready. EINTR is not an
    // error.
    Result<void> run_once(std::chrono::milliseconds timeout);
    // How many events the last run_once() dispatched (at most kMaxEvents).
    [[nodiscard]] size_t last_batch() const { return last_batch_; }
    static constexpr int kMaxEvents = 128;

private:
    explicit EventLoop(Fd epfd) : epfd_(std::move(epfd)) {}
    Fd epfd_;
    size_t last_batch_ = 0;
};

// Signals delivered as readable events (SIGINT, SIGTERM, SIGHUP, SIGUSR1), blocked for normal
// delivery.
class SignalFd {
public:
    static Result<SignalFd> create();
    [[nodiscard]] int fd() const { return fd_.get(); }
    // The next pending signal number, or 0 when none.
    int take();

private:
    explicit SignalFd(Fd fd) : fd_(std::move(fd)) {}
    Fd fd_;
};

}  // namespace porthole::net

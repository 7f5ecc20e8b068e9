// OneShotServer: the connection handling shared by the control socket and the metrics endpoint.
// A listening socket (unix or TCP, already bound) on a net::EventLoop; each accepted connection
// sends one request, gets one reply, and is closed. Nothing here blocks or grows without bound:
//   - connections live in a fixed number of slots allocated at creation; when all are busy a
//     new connection is closed at once;
//   - a request is read up to its end (a line, or an HTTP request head) or max_request bytes;
//     an over-long request gets the handler's reply to "" with too_long set, then is closed;
//   - each connection has a deadline (timeout from accept): whatever it is doing then, it is
//     closed. A timerfd on the same loop checks deadlines while connections are open;
//   - the reply is written as the socket accepts it (EPOLLOUT), then the socket is closed.
// Slots are reused, never freed before the server: an event still queued for a slot whose
// connection was closed in the same epoll batch finds a harmless non-blocking socket or none.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "net/event_loop.hpp"

namespace porthole::control {

class OneShotServer {
public:
    enum class Framing {
        line,       // the request ends at '\n' (a trailing '\r' is removed)
        http_head,  // the request ends at an empty line ("\r\n\r\n" or "\n\n")
    };
    struct Request {
        std::string_view text;  // without its terminator
        bool too_long = false;  // max_request reached before the terminator
        int fd = -1;            // the connection (for SO_PEERCRED and the like)
    };
    using Handler = std::function<std::string(const Request&)>;
    struct Limits {
        size_t max_request = 4096;
        size_t max_reply = 8 * 1024 * 1024;
        size_t max_clients = 16;
        std::chrono::milliseconds timeout{5000};
    };

    // listen_fd: bound, listening, non-blocking.
    static Result<std::unique_ptr<OneShotServer>> create(net::EventLoop& loop, Fd listen_fd,
                                                         Framing framing, Limits limits,
                                                         Handler handler);
    ~OneShotServer();
    OneShotServer(const OneShotServer&) = delete;
    OneShotServer& operator=(const OneShotServer&) = delete;

    [[nodiscard]] size_t connections() const { return busy_; }
    [[nodiscard]] int listen_fd() const { return listen_.fd.get(); }

    // Where a complete request ends in `buffered` (the offset of its terminator's first byte,
    // and the terminator's length), or npos. Pure; public for the unit tests.
    static size_t find_end(std::string_view buffered, Framing framing, size_t& terminator_len);

private:
    struct Slot;
    struct Listener final : net::EventHandler {
        OneShotServer* self = nullptr;
        Fd fd;
        void on_event(uint32_t) override { self->accept_all(); }
    };
    struct Timer final : net::EventHandler {
        OneShotServer* self = nullptr;
        Fd fd;
        void on_event(uint32_t) override { self->on_timer(); }
    };

    OneShotServer(net::EventLoop& loop, Framing framing, Limits limits, Handler handler);
    void accept_all();
    void on_timer();
    void on_slot_event(Slot& slot, uint32_t events);
    void read_request(Slot& slot);
    void write_reply(Slot& slot);
    void close_slot(Slot& slot);
    void arm_timer(bool on);

    net::EventLoop& loop_;
    Framing framing_;
    Limits limits_;
    Handler handler_;
    Listener listen_;
    Timer timer_;
    bool timer_armed_ = false;
    std::vector<std::unique_ptr<Slot>> slots_;
    size_t busy_ = 0;
};

}  // namespace porthole::control

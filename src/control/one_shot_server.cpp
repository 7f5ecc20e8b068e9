#include "control/one_shot_server.hpp"

#include <sys/socket.h>
#include <sys/timerfd.h>

#include <cerrno>

#include "base/log.hpp"

namespace porthole::control {

namespace {
using Clock = std::chrono::steady_clock;
constexpr size_t kAcceptBatch = 16;
constexpr size_t kDrainBytes = 64 * 1024;  // read and discarded after the reply, at most
constexpr auto kTimerPeriod = std::chrono::milliseconds(200);
}  // namespace

struct OneShotServer::Slot final : net::EventHandler {
    enum class State { free, reading, writing, draining };
    OneShotServer* self = nullptr;
    Fd fd;
    State state = State::free;
    std::string in, out;
    size_t out_off = 0, drained = 0;
    Clock::time_point deadline{};
    void on_event(uint32_t events) override { self->on_slot_event(*this, events); }
};

size_t OneShotServer::find_end(std::string_view b, Framing framing, size_t& term_len) {
    if (framing == Framing::line) {
        size_t nl = b.find('\n');
        if (nl == std::string_view::npos) return nl;
        if (nl > 0 && b[nl - 1] == '\r') {
            term_len = 2;
            return nl - 1;
        }
        term_len = 1;
        return nl;
    }
    size_t crlf = b.find("\r\n\r\n"), lf = b.find("\n\n");
    if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf < lf)) {
        term_len = 4;
        return crlf;
    }
    if (lf != std::string_view::npos) term_len = 2;
    return lf;
}

OneShotServer::OneShotServer(net::EventLoop& loop, Framing framing, Limits limits, Handler handler)
    : loop_(loop), framing_(framing), limits_(limits), handler_(std::move(handler)) {
    listen_.self = this;
    timer_.self = this;
}

Result<std::unique_ptr<OneShotServer>> OneShotServer::create(net::EventLoop& loop, Fd listen_fd,
                                                             Framing framing, Limits limits,
                                                             Handler handler) {
    if (limits.max_clients == 0) limits.max_clients = 1;
    std::unique_ptr<OneShotServer> s(new OneShotServer(loop, framing, limits, std::move(handler)));
    s->timer_.fd = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!s->timer_.fd) return sys_error("timerfd_create", errno);
    for (size_t i = 0; i < limits.max_clients; ++i) {
        auto slot = std::make_unique<Slot>();
        slot->self = s.get();
        s->slots_.push_back(std::move(slot));
    }
    s->listen_.fd = std::move(listen_fd);
    if (auto r = loop.add(s->listen_.fd.get(), EPOLLIN, &s->listen_); !r) return r.error();
    if (auto r = loop.add(s->timer_.fd.get(), EPOLLIN, &s->timer_); !r) {
        loop.remove(s->listen_.fd.get());
        return r.error();
    }
    return s;
}

OneShotServer::~OneShotServer() {
    for (auto& slot : slots_)
        if (slot->fd) close_slot(*slot);
    loop_.remove(listen_.fd.get());
    loop_.remove(timer_.fd.get());
}

void OneShotServer::arm_timer(bool on) {
    if (on == timer_armed_) return;
    itimerspec spec{};
    if (on) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kTimerPeriod).count();
        spec.it_interval.tv_sec = ns / 1000000000;
        spec.it_interval.tv_nsec = ns % 1000000000;
        spec.it_value = spec.it_interval;
    }
    if (::timerfd_settime(timer_.fd.get(), 0, &spec, nullptr) == 0) timer_armed_ = on;
}

void OneShotServer::accept_all() {
    for (size_t i = 0; i < kAcceptBatch; ++i) {
        Fd fd(::accept4(listen_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log::warn("{}", sys_error("accept on a control/metrics socket", errno).message);
            return;
        }
        Slot* slot = nullptr;
        for (auto& s : slots_)
            if (s->state == Slot::State::free) {
                slot = s.get();
                break;
            }
        if (slot == nullptr) {
            log::debug("control/metrics: all {} connection slots busy; closing a new one",
                       slots_.size());
            continue;  // fd closes here
        }
        if (auto r = loop_.add(fd.get(), EPOLLIN, slot); !r) {
            log::warn("{}", r.error().message);
            continue;
        }
        slot->fd = std::move(fd);
        slot->state = Slot::State::reading;
        slot->in.clear();
        slot->out.clear();
        slot->out_off = slot->drained = 0;
        slot->deadline = Clock::now() + limits_.timeout;
        ++busy_;
        arm_timer(true);
    }
}

void OneShotServer::on_timer() {
    uint64_t expirations = 0;
    (void)!::read(timer_.fd.get(), &expirations, sizeof expirations);
    auto now = Clock::now();
    for (auto& s : slots_)
        if (s->fd && now >= s->deadline) {
            log::debug("control/metrics: connection timed out; closed");
            close_slot(*s);
        }
    if (busy_ == 0) arm_timer(false);
}

void OneShotServer::on_slot_event(Slot& slot, uint32_t events) {
    if (!slot.fd) return;  // closed earlier in this batch
    switch (slot.state) {
        case Slot::State::reading:
            if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_request(slot);
            return;
        case Slot::State::writing:
            if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) write_reply(slot);
            return;
        case Slot::State::draining: {
            char scratch[4096];
            for (;;) {
                ssize_t n = ::recv(slot.fd.get(), scratch, sizeof scratch, 0);
                if (n > 0) {
                    slot.drained += size_t(n);
                    if (slot.drained > kDrainBytes) return close_slot(slot);
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
                return close_slot(slot);  // EOF or error
            }
        }
        case Slot::State::free:
            return;
    }
}

void OneShotServer::read_request(Slot& slot) {
    char buf[4096];
    for (;;) {
        size_t room = limits_.max_request - slot.in.size();
        ssize_t n = ::recv(slot.fd.get(), buf, std::min(room, sizeof buf), 0);
        bool eof = n == 0;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            return close_slot(slot);
        }
        size_t before = slot.in.size();
        slot.in.append(buf, size_t(n));
        Request req;
        req.fd = slot.fd.get();
        size_t term = 0;
        // Search only the new bytes (and a terminator that straddles the old ones).
        size_t from = before > 3 ? before - 3 : 0;
        size_t end = find_end(std::string_view(slot.in).substr(from), framing_, term);
        if (end != std::string_view::npos) {
            req.text = std::string_view(slot.in).substr(0, from + end);
        } else if (slot.in.size() >= limits_.max_request) {
            req.too_long = true;
        } else if (eof) {
            // A request without its terminator, then end of input: serve a line, drop the rest.
            if (framing_ != Framing::line || slot.in.empty()) return close_slot(slot);
            req.text = slot.in;
        } else {
            continue;
        }
        slot.out = handler_(req);
        if (slot.out.size() > limits_.max_reply) {
            log::warn("control/metrics: reply of {} bytes cut to {}", slot.out.size(),
                      limits_.max_reply);
            slot.out.resize(limits_.max_reply);
        }
        slot.in.clear();
        slot.in.shrink_to_fit();
        slot.state = Slot::State::writing;
        return write_reply(slot);
    }
}

void OneShotServer::write_reply(Slot& slot) {
    while (slot.out_off < slot.out.size()) {
        ssize_t n = ::send(slot.fd.get(), slot.out.data() + slot.out_off,
                           slot.out.size() - slot.out_off, MSG_NOSIGNAL);
        if (n > 0) {
            slot.out_off += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            (void)loop_.modify(slot.fd.get(), EPOLLOUT, &slot);
            return;
        }
        return close_slot(slot);
    }
    // All sent: half-close and read what the peer still sends until it closes, so that unread
    // input does not turn our close into a reset that destroys the reply in flight.
    slot.out.clear();
    slot.out.shrink_to_fit();
    ::shutdown(slot.fd.get(), SHUT_WR);
    slot.state = Slot::State::draining;
    (void)loop_.modify(slot.fd.get(), EPOLLIN, &slot);
    on_slot_event(slot, EPOLLIN);
}

void OneShotServer::close_slot(Slot& slot) {
    if (!slot.fd) return;
    loop_.remove(slot.fd.get());
    slot.fd.reset();
    slot.state = Slot::State::free;
    slot.in.clear();
    slot.in.shrink_to_fit();
    slot.out.clear();
    slot.out.shrink_to_fit();
    if (busy_ > 0) --busy_;
}

}  // namespace porthole::control

#include "net/event_loop.hpp"

#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>

namespace porthole::net {

Result<EventLoop> EventLoop::create() {
    Fd fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!fd) return sys_error("epoll_create1", errno);
    return EventLoop(std::move(fd));
}

Result<void> EventLoop::add(int fd, uint32_t events, EventHandler* handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return sys_error("epoll add", errno);
    return ok();
}

Result<void> EventLoop::modify(int fd, uint32_t events, EventHandler* handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) return sys_error("epoll mod", errno);
    return ok();
}

void EventLoop::remove(int fd) {
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

Result<void> EventLoop::run_once(std::chrono::milliseconds timeout) {
    epoll_event events[kMaxEvents];
    int n = ::epoll_wait(epfd_.get(), events, kMaxEvents, int(timeout.count()));
    last_batch_ = n > 0 ? size_t(n) : 0;
    if (n < 0) return errno == EINTR ? ok() : sys_error("epoll_wait", errno);
    for (int i = 0; i < n; ++i)
        static_cast<EventHandler*>(events[i].data.ptr)->on_event(events[i].events);
    return ok();
}

Result<SignalFd> SignalFd::create() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return sys_error("sigprocmask", errno);
    Fd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) return sys_error("signalfd", errno);
    return SignalFd(std::move(fd));
}

int SignalFd::take() {
    signalfd_siginfo info{};
    if (::read(fd_.get(), &info, sizeof info) != sizeof info) return 0;
    return int(info.ssi_signo);
}

}  // namespace porthole::net

#include "concentrator/handshake_pool.hpp"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <unordered_map>

#include "net/event_loop.hpp"

namespace porthole::concentrator {

using session::Clock;

namespace {

constexpr auto kExpireEvery = std::chrono::milliseconds(100);  // deadline granularity
constexpr int kNice = 10;

Result<Fd> make_eventfd() {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return make_error("handshake threads: eventfd: {}", std::strerror(errno));
    return Fd(fd);
}

void signal_eventfd(int fd) {
    uint64_t one = 1;
    (void)!::write(fd, &one, sizeof one);  // EAGAIN: the counter is already non-zero
}

void drain_eventfd(int fd) {
    uint64_t n = 0;
    (void)!::read(fd, &n, sizeof n);
}

}  // namespace

// One lent handshake, registered in its worker's epoll.
struct HandshakePool::Job final : net::EventHandler {
    Worker* worker = nullptr;
    session::SessionId id = 0;
    int fd = -1;
    tls::TlsConnection* tls = nullptr;
    session::TimePoint deadline{};
    uint32_t events = EPOLLIN;
    bool finished = false;

    void on_event(uint32_t) override;
};

// A thread with its own epoll loop; the event handler of its wake-up eventfd.
class HandshakePool::Worker final : public net::EventHandler {
public:
    Worker(HandshakePool& pool, net::EventLoop loop, Fd wake)
        : pool_(pool), loop_(std::move(loop)), wake_(std::move(wake)) {}
    ~Worker() { stop(); }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    Result<void> start() {
        if (auto r = loop_.add(wake_.get(), EPOLLIN, this); !r) return r;
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error& e) {
            return make_error("handshake threads: cannot start a thread: {}", e.what());
        }
        return ok();
    }
    void stop() {
        stop_.store(true);
        signal_eventfd(wake_.get());
        if (thread_.joinable()) thread_.join();
    }
    // Event-loop thread.
    void give(std::unique_ptr<Job> job) {
        job->worker = this;
        {
            std::lock_guard lock(mu_);
            incoming_.push_back(std::move(job));
        }
        signal_eventfd(wake_.get());
    }

    // Worker thread from here on.
    void on_event(uint32_t) override {  // woken: take the new jobs
        drain_eventfd(wake_.get());
        std::vector<std::unique_ptr<Job>> jobs;
        {
            std::lock_guard lock(mu_);
            jobs.swap(incoming_);
        }
        for (auto& j : jobs) {
            Job& job = *j;
            active_.emplace(job.id, std::move(j));
            if (!loop_.add(job.fd, EPOLLIN, &job)) {
                finish(job, tls::TlsStatus::failed, false);
                continue;
            }
            step(job);  // the ClientHello may be there already
        }
    }
    void step(Job& job) {
        if (job.finished) return;
        auto st = job.tls->handshake();
        if (st == tls::TlsStatus::want_read || st == tls::TlsStatus::want_write) {
            uint32_t ev = st == tls::TlsStatus::want_write ? EPOLLOUT : EPOLLIN;
            if (ev != job.events && loop_.modify(job.fd, ev, &job)) job.events = ev;
            return;
        }
        finish(job, st, false);
    }

private:
    void run() {
        // Below the event loop: when the CPUs are busy, established sessions' packets go first
        // and handshakes take what is left (nice 10: ~1/10 of the event loop's weight).
        (void)::setpriority(PRIO_PROCESS, pid_t(::syscall(SYS_gettid)), kNice);
        auto next_expire = Clock::now() + kExpireEvery;
        while (!stop_.load()) {
            auto wait = active_.empty() ? std::chrono::milliseconds(-1) : kExpireEvery;
            (void)loop_.run_once(wait);
            reap();
            if (auto now = Clock::now(); now >= next_expire) {
                for (auto& [id, job] : active_)
                    if (!job->finished && now >= job->deadline)
                        finish(*job, tls::TlsStatus::failed, true);
                reap();
                next_expire = now + kExpireEvery;
            }
        }
        for (auto& [id, job] : active_)
            loop_.remove(job->fd);
    }
    void finish(Job& job, tls::TlsStatus st, bool timed_out) {
        job.finished = true;
        loop_.remove(job.fd);
        finished_.push_back(job.id);
        pool_.complete({job.id, st, timed_out});
    }
    // Jobs are destroyed after the epoll batch that finished them (event_loop.hpp).
    void reap() {
        for (auto id : finished_)
            active_.erase(id);
        finished_.clear();
    }

    HandshakePool& pool_;
    net::EventLoop loop_;
    Fd wake_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::unique_ptr<Job>> incoming_;  // guarded by mu_
    // Worker thread only.
    std::unordered_map<session::SessionId, std::unique_ptr<Job>> active_;
    std::vector<session::SessionId> finished_;
};

void HandshakePool::Job::on_event(uint32_t) {
    worker->step(*this);
}

Result<std::unique_ptr<HandshakePool>> HandshakePool::create(size_t workers) {
    if (workers == 0) return make_error("handshake threads: at least one is needed");
    std::unique_ptr<HandshakePool> pool(new HandshakePool());
    auto done = make_eventfd();
    if (!done) return done.error();
    pool->done_event_ = std::move(*done);
    for (size_t i = 0; i < workers; ++i) {
        auto loop = net::EventLoop::create();
        if (!loop) return loop.error().context("handshake threads");
        auto wake = make_eventfd();
        if (!wake) return wake.error();
        auto w = std::make_unique<Worker>(*pool, std::move(*loop), std::move(*wake));
        if (auto r = w->start(); !r) return r.error();
        pool->workers_.push_back(std::move(w));
    }
    return pool;
}

HandshakePool::~HandshakePool() {
    for (auto& w : workers_)
        w->stop();
    workers_.clear();
}

void HandshakePool::lend(session::SessionId id, int fd, tls::TlsConnection& tls,
                         session::TimePoint deadline) {
    auto job = std::make_unique<Job>();
    job->id = id;
    job->fd = fd;
    job->tls = &tls;
    job->deadline = deadline;
    ++in_flight_;
    workers_[next_]->give(std::move(job));
    next_ = (next_ + 1) % workers_.size();
}

void HandshakePool::take_done(std::vector<Done>& out) {
    drain_eventfd(done_event_.get());
    size_t before = out.size();
    {
        std::lock_guard lock(done_mu_);
        out.insert(out.end(), done_.begin(), done_.end());
        done_.clear();
    }
    in_flight_ -= std::min(in_flight_, out.size() - before);
}

void HandshakePool::complete(const Done& done) {
    {
        std::lock_guard lock(done_mu_);
        done_.push_back(done);
    }
    signal_eventfd(done_event_.get());
}

}  // namespace porthole::concentrator

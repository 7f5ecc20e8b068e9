#include "concentrator/loop_call.hpp"

#include <algorithm>

namespace porthole::concentrator {

void LoopCall::run(const std::function<void()>& f) {
    std::lock_guard lock(mu_);
    if (given_up_ && late_ == Late::cancel) return;
    f();
    done_ = true;
    cv_.notify_all();
}

bool LoopCall::wait(std::chrono::steady_clock::duration limit, const std::function<bool()>& help) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::unique_lock lock(mu_);
    for (;;) {
        if (done_) return true;
        lock.unlock();  // help() may run the task, which takes the lock
        const bool helped = help && help();
        lock.lock();
        if (done_) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            given_up_ = true;
            return false;
        }
        if (!helped) cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
    }
}

bool LoopCall::done() const {
    std::lock_guard lock(mu_);
    return done_;
}

}  // namespace porthole::concentrator

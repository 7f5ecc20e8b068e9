// LoopCall: one request from the primary event loop to another loop, waited for with a bound.
//
// The primary posts a task to another loop's inbox and waits for it to run. The other loop may
// be hung (a bug, a debugger): then the primary gives up after a limit instead of freezing with
// it. Giving up cancels the call, under the call's own mutex, so a task that refers to the
// caller's stack never runs after the caller returned; a task that owns what it uses may be
// left to run later instead (Late::still_run). A task already running when the limit passes is
// waited for (it holds the mutex), so it is never half done when the caller moves on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace porthole::concentrator {

class LoopCall {
public:
    enum class Late {
        cancel,     // after the caller gave up the task does nothing
        still_run,  // the task runs whenever the loop gets to it
    };
    explicit LoopCall(Late late) : late_(late) {}

    // On the called loop: runs f, unless the call was given up and is Late::cancel.
    void run(const std::function<void()>& f);

    // On the caller: waits until run() has finished, at most `limit`. Before each wait of up to
    // 100 ms, `help` (may be empty) is called without the lock held; it returns true when it did
    // something that may have run the task (the caller draining the inbox of a loop that has
    // stopped), and then the wait is skipped. Returns true when the task ran; false when the
    // limit passed first, and the call is then given up.
    bool wait(std::chrono::steady_clock::duration limit, const std::function<bool()>& help);

    [[nodiscard]] bool done() const;

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    const Late late_;
    bool done_ = false;
    bool given_up_ = false;
};

}  // namespace porthole::concentrator

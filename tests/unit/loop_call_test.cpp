// LoopCall: the primary's bounded wait for another event loop (concentrator/loop_call.hpp).
// Threads stand in for the other loop; these cases also run under ThreadSanitizer
// (scripts/test.sh: -tc="loop call*").
#include "concentrator/loop_call.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using porthole::concentrator::LoopCall;
using namespace std::chrono_literals;

TEST_CASE("loop call: a task that already ran is not waited for") {
    LoopCall call(LoopCall::Late::cancel);
    int runs = 0;
    call.run([&] { ++runs; });
    CHECK(call.wait(0ms, {}));
    CHECK(runs == 1);
    CHECK(call.done());
}

TEST_CASE("loop call: the caller waits for a task another thread runs") {
    auto call = std::make_shared<LoopCall>(LoopCall::Late::cancel);
    int value = 0;  // the caller's stack, written by the other thread
    std::thread loop([call, &value] {
        std::this_thread::sleep_for(50ms);
        call->run([&] { value = 42; });
    });
    CHECK(call->wait(5s, {}));
    CHECK(value == 42);
    loop.join();
}

TEST_CASE("loop call: a loop that does not answer is given up; the task then does nothing") {
    auto call = std::make_shared<LoopCall>(LoopCall::Late::cancel);
    std::atomic<int> runs{0};
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(call->wait(150ms, {}));
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= 150ms);
    CHECK(waited < 2s);
    // The loop turns again later: the cancelled task must not touch what the caller had.
    std::thread loop([call, &runs] { call->run([&] { ++runs; }); });
    loop.join();
    CHECK(runs.load() == 0);
    CHECK_FALSE(call->done());
}

TEST_CASE("loop call: Late::still_run runs the task after the caller gave up") {
    auto call = std::make_shared<LoopCall>(LoopCall::Late::still_run);
    auto owned = std::make_shared<std::atomic<int>>(0);  // what the task owns
    CHECK_FALSE(call->wait(50ms, {}));
    std::thread loop([call, owned] { call->run([owned] { ++*owned; }); });
    loop.join();
    CHECK(owned->load() == 1);
    CHECK(call->done());
}

TEST_CASE(
    "loop call: a task running when the limit passes is finished before the caller moves on") {
    auto call = std::make_shared<LoopCall>(LoopCall::Late::cancel);
    std::atomic<bool> started{false};
    int value = 0;
    std::thread loop([call, &started, &value] {
        call->run([&] {
            started = true;
            std::this_thread::sleep_for(300ms);  // longer than the caller's limit
            value = 7;
        });
    });
    while (!started.load())
        std::this_thread::sleep_for(1ms);
    // The task holds the call: the caller cannot give it up half done.
    CHECK(call->wait(50ms, {}));
    CHECK(value == 7);
    loop.join();
}

TEST_CASE("loop call: help runs the task itself (the inbox of a loop that has stopped)") {
    LoopCall call(LoopCall::Late::cancel);
    int helps = 0, runs = 0;
    auto help = [&] {
        ++helps;
        if (helps < 3) return false;  // the loop is still running for two checks
        call.run([&] { ++runs; });    // then it has stopped: the caller drains its inbox
        return true;
    };
    CHECK(call.wait(5s, help));
    CHECK(runs == 1);
    CHECK(helps == 3);
}

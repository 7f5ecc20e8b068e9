// ByteQueue: bounded FIFO, checked against std::deque under random operations.
#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <vector>

#include "base/byte_queue.hpp"

using porthole::ByteQueue;

namespace {
std::vector<std::byte> bytes_of(size_t n, uint8_t seed) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = std::byte(uint8_t(seed + i));
    return v;
}
}  // namespace

TEST_CASE("ByteQueue: empty queue allocates nothing until used") {
    ByteQueue q(16);
    CHECK(q.empty());
    CHECK(q.size() == 0);
    CHECK(q.capacity() == 16);
    CHECK(q.free_space() == 16);
    CHECK_FALSE(q.allocated());
    CHECK(q.front().empty());
    CHECK(q.append({}));  // an empty append succeeds and queues nothing
    CHECK(q.empty());
}

TEST_CASE("ByteQueue: append, front, consume, and the bound") {
    ByteQueue q(10);
    auto a = bytes_of(6, 1);
    REQUIRE(q.append(a));
    CHECK(q.allocated());
    CHECK(q.size() == 6);
    CHECK(q.free_space() == 4);
    auto too_big = bytes_of(5, 50);
    CHECK_FALSE(q.append(too_big));  // refused whole, nothing written
    CHECK(q.size() == 6);
    REQUIRE(q.front().size() == 6);
    CHECK(std::equal(a.begin(), a.end(), q.front().begin()));

    q.consume(4);
    CHECK(q.size() == 2);
    CHECK(q.front()[0] == a[4]);
    // 8 bytes now fit only after compaction: the tail has 4 bytes of room, the head 4 more.
    auto b = bytes_of(8, 100);
    REQUIRE(q.append(b));
    CHECK(q.size() == 10);
    CHECK(q.free_space() == 0);
    REQUIRE(q.front().size() == 10);
    CHECK(q.front()[0] == a[4]);
    CHECK(q.front()[1] == a[5]);
    CHECK(std::equal(b.begin(), b.end(), q.front().begin() + 2));
    CHECK(q.reserve(1).empty());

    q.consume(10);
    CHECK(q.empty());
    q.release_if_empty();
    CHECK_FALSE(q.allocated());
    CHECK(q.append(bytes_of(10, 7)));  // exactly the bound
}

TEST_CASE("ByteQueue: reserve gives contiguous room of at least `want`, commit makes it visible") {
    ByteQueue q(8);
    auto s = q.reserve(3);
    REQUIRE(s.size() >= 3);
    s[0] = std::byte{1};
    s[1] = std::byte{2};
    q.commit(2);
    CHECK(q.size() == 2);
    CHECK(q.reserve(7).empty());  // only 6 free
    auto t = q.reserve(6);
    REQUIRE(t.size() >= 6);
    q.commit(0);  // reserving without committing changes nothing
    CHECK(q.size() == 2);
    CHECK(q.front()[0] == std::byte{1});
    CHECK(q.front()[1] == std::byte{2});
    q.release_if_empty();  // not empty: keeps the buffer
    CHECK(q.allocated());
}

TEST_CASE("ByteQueue: random operations agree with std::deque") {
    std::mt19937 rng(11);
    for (int round = 0; round < 50; ++round) {
        size_t cap = 1 + rng() % 64;
        ByteQueue q(cap);
        std::deque<std::byte> model;
        uint8_t next = 0;
        for (int op = 0; op < 2000; ++op) {
            switch (rng() % 4) {
                case 0: {  // append
                    size_t n = rng() % (cap + 3);
                    std::vector<std::byte> v(n);
                    for (auto& x : v)
                        x = std::byte(next++);
                    bool ok = q.append(v);
                    CHECK(ok == (n <= cap - model.size()));
                    if (ok)
                        model.insert(model.end(), v.begin(), v.end());
                    else
                        next = uint8_t(next - n);
                    break;
                }
                case 1: {  // reserve + partial commit
                    size_t want = rng() % (cap + 2);
                    auto s = q.reserve(want);
                    if (want > cap - model.size()) {
                        CHECK(s.empty());
                        break;
                    }
                    REQUIRE(s.size() >= want);
                    size_t n = want ? rng() % (want + 1) : 0;
                    for (size_t i = 0; i < n; ++i)
                        s[i] = std::byte(next++);
                    q.commit(n);
                    for (size_t i = 0; i < n; ++i)
                        model.push_back(s[i]);
                    break;
                }
                case 2: {  // consume some
                    size_t n = model.empty() ? 0 : rng() % (model.size() + 1);
                    q.consume(n);
                    model.erase(model.begin(), model.begin() + long(n));
                    break;
                }
                case 3:
                    q.release_if_empty();
                    break;
            }
            REQUIRE(q.size() == model.size());
            REQUIRE(q.free_space() == cap - model.size());
            auto f = q.front();
            REQUIRE(f.size() == model.size());
            CHECK(std::equal(f.begin(), f.end(), model.begin()));
        }
    }
}

// WorkerInbox: packets and tasks handed from one event loop to another. In order, with their
// offload metadata, bounded (a full inbox refuses), and one eventfd wake-up per drain; from
// several threads at once (this file also runs under ThreadSanitizer).
#include <doctest/doctest.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "concentrator/worker_inbox.hpp"

using namespace porthole;
using concentrator::WorkerInbox;

namespace {

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

std::vector<std::byte> packet_of(uint32_t producer, uint32_t seq, size_t size) {
    std::vector<std::byte> p(size, std::byte{0x5a});
    std::memcpy(p.data(), &producer, sizeof producer);
    std::memcpy(p.data() + 4, &seq, sizeof seq);
    return p;
}

}  // namespace

TEST_CASE("worker inbox: packets and tasks come out in order, with their metadata") {
    auto inbox = WorkerInbox::create(64 * 1024);
    REQUIRE(inbox);
    auto& in = **inbox;
    CHECK_FALSE(readable(in.fd()));

    packet::OffloadHeader gso;
    gso.flags = packet::OffloadHeader::kNeedsCsum;
    gso.gso_type = packet::OffloadHeader::kGsoTcpV4;
    gso.gso_size = 1448;
    gso.csum_start = 20;
    gso.csum_offset = 16;
    CHECK(in.push_packet(packet_of(0, 1, 100), {}));
    CHECK(readable(in.fd()));  // the first item wakes the owner
    CHECK(in.push_packet(packet_of(0, 2, 3000), gso));
    std::vector<int> ran;
    in.post([&ran] { ran.push_back(1); });
    in.post([&ran] { ran.push_back(2); });

    std::vector<std::pair<uint32_t, size_t>> got;
    std::vector<packet::OffloadHeader> metas;
    std::vector<WorkerInbox::Task> tasks;
    in.drain(
        [&](std::span<std::byte> p, const packet::OffloadHeader& m) {
            uint32_t seq = 0;
            std::memcpy(&seq, p.data() + 4, sizeof seq);
            got.emplace_back(seq, p.size());
            metas.push_back(m);
            p[8] = std::byte{1};  // the sink may modify what it is given
        },
        tasks);
    CHECK_FALSE(readable(in.fd()));
    REQUIRE(got.size() == 2);
    CHECK(got[0] == std::pair<uint32_t, size_t>(1, 100));
    CHECK(got[1] == std::pair<uint32_t, size_t>(2, 3000));
    CHECK(metas[0].plain());
    CHECK(metas[1].gso_type == packet::OffloadHeader::kGsoTcpV4);
    CHECK(metas[1].gso_size == 1448);
    CHECK(metas[1].csum_offset == 16);
    REQUIRE(tasks.size() == 2);
    for (auto& t : tasks)
        t();
    CHECK(ran == std::vector<int>{1, 2});

    // Drained means empty: nothing comes out twice, and the next item wakes the owner again.
    got.clear();
    in.drain([&](std::span<std::byte>, const packet::OffloadHeader&) { got.emplace_back(0, 0); },
             tasks);
    CHECK(got.empty());
    CHECK(tasks.empty());
    in.post([] {});
    CHECK(readable(in.fd()));
}

TEST_CASE("worker inbox: a full inbox refuses packets, and has room again once drained") {
    constexpr size_t kCapacity = 16 * 1024;
    auto inbox = WorkerInbox::create(kCapacity);
    REQUIRE(inbox);
    auto& in = **inbox;
    size_t accepted = 0;
    while (in.push_packet(packet_of(0, uint32_t(accepted), 1500), {}))
        ++accepted;
    // Each packet takes its bytes and a small header: at most capacity / 1500, at least most of it.
    CHECK(accepted <= kCapacity / 1500);
    CHECK(accepted >= kCapacity / 1600);
    CHECK_FALSE(in.push_packet(packet_of(0, 99, 1500), {}));
    CHECK(in.push_packet(packet_of(0, 98, 10), {}));  // a small one may still fit
    size_t drained = 0;
    std::vector<WorkerInbox::Task> tasks;
    in.drain([&](std::span<std::byte>, const packet::OffloadHeader&) { ++drained; }, tasks);
    CHECK(drained == accepted + 1);
    CHECK(in.push_packet(packet_of(0, 0, 1500), {}));
}

TEST_CASE("worker inbox: several writer threads, one owner, nothing lost or reordered") {
    constexpr uint32_t kWriters = 3, kPerWriter = 5000;
    auto inbox = WorkerInbox::create(32 * 1024);
    REQUIRE(inbox);
    auto& in = **inbox;
    std::atomic<uint32_t> tasks_ran{0};
    std::vector<std::thread> writers;
    for (uint32_t w = 0; w < kWriters; ++w)
        writers.emplace_back([&in, &tasks_ran, w] {
            for (uint32_t seq = 0; seq < kPerWriter; ++seq) {
                auto p = packet_of(w, seq, 64 + (seq % 7) * 200);
                while (!in.push_packet(p, {}))
                    std::this_thread::yield();  // full: the owner drains
                if (seq % 1000 == 0) in.post([&tasks_ran] { ++tasks_ran; });
            }
        });
    std::array<uint32_t, kWriters> next{};
    bool in_order = true;
    size_t received = 0;
    std::vector<WorkerInbox::Task> tasks;
    size_t ran = 0;
    const size_t want_tasks = kWriters * (kPerWriter / 1000);
    while (received < kWriters * kPerWriter || ran < want_tasks) {
        pollfd p{in.fd(), POLLIN, 0};
        REQUIRE(::poll(&p, 1, 5000) == 1);  // every item is announced
        in.drain(
            [&](std::span<std::byte> pkt, const packet::OffloadHeader&) {
                uint32_t w = 0, seq = 0;
                std::memcpy(&w, pkt.data(), 4);
                std::memcpy(&seq, pkt.data() + 4, 4);
                if (w >= kWriters || seq != next[w]) in_order = false;
                if (w < kWriters) next[w] = seq + 1;
                ++received;
            },
            tasks);
        for (auto& t : tasks)
            t();
        ran += tasks.size();
    }
    for (auto& t : writers)
        t.join();
    CHECK(in_order);
    CHECK(received == kWriters * kPerWriter);
    CHECK(tasks_ran.load() == want_tasks);
}

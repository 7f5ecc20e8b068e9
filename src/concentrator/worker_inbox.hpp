// WorkerInbox: how one of portholed's event loops hands work to another (--workers). Two kinds:
//   - packets for a session another loop owns (the kernel put them on this loop's TUN queue, or
//     a UE sent them to another UE): copied once into a bounded buffer, with their offload
//     metadata. Full: push_packet() says no and the sender counts the drop. No allocation per
//     packet: the owner drains one buffer while writers fill the other.
//   - tasks: closures for control work (close a session, report, reload). Rare; they allocate.
// Writers wake the owner through an eventfd, once per drain: only when the inbox was empty.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "packet/offload.hpp"

namespace porthole::concentrator {

class WorkerInbox {
public:
    using Task = std::function<void()>;
    using PacketSink = std::function<void(std::span<std::byte>, const packet::OffloadHeader&)>;

    // capacity: bytes of packets (and their small headers) held at once.
    static Result<std::unique_ptr<WorkerInbox>> create(size_t capacity);

    // The owner's loop watches this for EPOLLIN.
    [[nodiscard]] int fd() const { return event_.get(); }

    // Any thread. False when the inbox has no room for it (the packet is not taken).
    bool push_packet(std::span<const std::byte> packet, const packet::OffloadHeader& meta);
    // Any thread.
    void post(Task task);

    // The owner's thread only: every packet that arrived (in order) to sink, then every task
    // (in order) into tasks, which is cleared first. Packets may be modified by the sink (e.g. a
    // checksum completed).
    void drain(const PacketSink& sink, std::vector<Task>& tasks);

private:
    struct Buffer {
        std::unique_ptr<std::byte[]> bytes;
        size_t used = 0;
    };
    WorkerInbox(Fd event, size_t capacity);
    void wake();

    Fd event_;
    size_t capacity_;
    std::mutex mu_;
    Buffer filling_;  // under mu_: writers append here
    std::vector<Task> tasks_;
    Buffer draining_;  // the owner's, outside the lock
};

}  // namespace porthole::concentrator

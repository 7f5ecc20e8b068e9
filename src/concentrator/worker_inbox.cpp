#include "concentrator/worker_inbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace porthole::concentrator {

namespace {
// Each packet is stored as this header followed by its bytes (copied with memcpy: no alignment).
struct Record {
    uint32_t size;
    packet::OffloadHeader meta;
};
}  // namespace

Result<std::unique_ptr<WorkerInbox>> WorkerInbox::create(size_t capacity) {
    Fd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd) return sys_error("worker inbox: eventfd", errno);
    return std::unique_ptr<WorkerInbox>(new WorkerInbox(std::move(fd), capacity));
}

WorkerInbox::WorkerInbox(Fd event, size_t capacity)
    : event_(std::move(event)), capacity_(capacity) {
    filling_.bytes.reset(new std::byte[capacity]);
    draining_.bytes.reset(new std::byte[capacity]);
}

void WorkerInbox::wake() {
    uint64_t one = 1;
    // EAGAIN only when the counter is about to overflow: the owner is woken anyway.
    [[maybe_unused]] auto n = ::write(event_.get(), &one, sizeof one);
}

bool WorkerInbox::push_packet(std::span<const std::byte> packet,
                              const packet::OffloadHeader& meta) {
    const size_t need = sizeof(Record) + packet.size();
    bool was_empty = false;
    {
        std::lock_guard lock(mu_);
        if (capacity_ - filling_.used < need) return false;
        was_empty = filling_.used == 0 && tasks_.empty();
        Record r{uint32_t(packet.size()), meta};
        std::byte* at = filling_.bytes.get() + filling_.used;
        std::memcpy(at, &r, sizeof r);
        std::memcpy(at + sizeof r, packet.data(), packet.size());
        filling_.used += need;
    }
    if (was_empty) wake();
    return true;
}

void WorkerInbox::post(Task task) {
    bool was_empty = false;
    {
        std::lock_guard lock(mu_);
        was_empty = filling_.used == 0 && tasks_.empty();
        tasks_.push_back(std::move(task));
    }
    if (was_empty) wake();
}

void WorkerInbox::drain(const PacketSink& sink, std::vector<Task>& tasks) {
    // Reset the wake-up first: whatever arrives after the swap below wakes the owner again.
    uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(event_.get(), &count, sizeof count);
    tasks.clear();
    {
        std::lock_guard lock(mu_);
        std::swap(filling_, draining_);
        filling_.used = 0;
        tasks.swap(tasks_);  // tasks_ takes the caller's (cleared) vector and its capacity
    }
    for (size_t off = 0; off < draining_.used;) {
        Record r;
        std::byte* at = draining_.bytes.get() + off;
        std::memcpy(&r, at, sizeof r);
        sink(std::span<std::byte>(at + sizeof r, r.size), r.meta);
        off += sizeof r + r.size;
    }
    draining_.used = 0;
}

}  // namespace porthole::concentrator

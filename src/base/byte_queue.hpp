// ByteQueue: a bounded FIFO of bytes in one contiguous buffer, for a session's pending output.
// Writers reserve space at the tail and commit what they wrote; the reader takes contiguous runs
// from the head. The buffer is allocated at first use, small, and doubles when a reservation does
// not fit, up to the bound: an idle session costs little, a busy one reallocates a few times in
// its life, never per packet.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace porthole {

class ByteQueue {
public:
    explicit ByteQueue(size_t capacity) : cap_(capacity) {}
    static constexpr size_t kInitialSize = 16 * 1024;

    [[nodiscard]] size_t size() const { return tail_ - head_; }
    [[nodiscard]] bool empty() const { return head_ == tail_; }
    [[nodiscard]] size_t capacity() const { return cap_; }
    [[nodiscard]] size_t free_space() const { return cap_ - size(); }

    // Contiguous writable space of at least `want` bytes at the tail (compacting if needed), or
    // an empty span when the bound does not allow it.
    std::span<std::byte> reserve(size_t want) {
        if (want > free_space()) return {};
        if (alloc_ - tail_ >= want) return {buf_.get() + tail_, alloc_ - tail_};
        if (alloc_ - size() >= want && head_ > 0) {  // room enough once compacted
            std::memmove(buf_.get(), buf_.get() + head_, size());
        } else {  // grow: double until it fits, within the bound
            size_t n = std::max(alloc_, std::min(kInitialSize, cap_));
            while (n - size() < want)
                n = std::min(n * 2, cap_);
            std::unique_ptr<std::byte[]> bigger(new std::byte[n]);
            if (size() > 0) std::memcpy(bigger.get(), buf_.get() + head_, size());
            buf_ = std::move(bigger);
            alloc_ = n;
        }
        tail_ -= head_;
        head_ = 0;
        return {buf_.get() + tail_, alloc_ - tail_};
    }
    void commit(size_t n) { tail_ += n; }

    bool append(std::span<const std::byte> bytes) {
        auto space = reserve(bytes.size());
        if (space.size() < bytes.size() || bytes.empty()) return bytes.empty();
        std::memcpy(space.data(), bytes.data(), bytes.size());
        commit(bytes.size());
        return true;
    }

    [[nodiscard]] std::span<const std::byte> front() const {
        return buf_ ? std::span<const std::byte>(buf_.get() + head_, size())
                    : std::span<const std::byte>();
    }
    void consume(size_t n) {
        head_ += n;
        if (head_ == tail_) head_ = tail_ = 0;
    }
    void clear() { head_ = tail_ = 0; }
    // Frees the buffer when nothing is queued (for idle sessions).
    void release_if_empty() {
        if (!empty()) return;
        buf_.reset();
        alloc_ = head_ = tail_ = 0;
    }
    [[nodiscard]] bool allocated() const { return buf_ != nullptr; }

private:
    size_t cap_;
    size_t alloc_ = 0;  // size of buf_
    std::unique_ptr<std::byte[]> buf_;
    size_t head_ = 0, tail_ = 0;
};

}  // namespace porthole

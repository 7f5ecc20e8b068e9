#include "tunnel/send_lanes.hpp"

#include <linux/sockios.h>
#include <linux/tcp.h>  // tcp_info with tcpi_delivery_rate (glibc's is older)
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>

#include "packet/control_message.hpp"
#include "packet/envelope.hpp"

namespace porthole::tunnel {
namespace {

constexpr size_t kMaxRecord = 16 * 1024;
constexpr size_t kMinPace = 8 * 1024, kMaxPace = 4 * 1024 * 1024;
constexpr size_t kMinBulk = 256 * 1024;
constexpr auto kPaceEvery = std::chrono::milliseconds(20);
constexpr auto kStampEvery = std::chrono::milliseconds(10);  // one-way delay samples for the peer

size_t envelope_length(const std::byte* h) {
    return size_t(h[1]) << 8 | size_t(h[2]);
}

}  // namespace

SendLanes::SendLanes(size_t realtime_bound, size_t bulk_bound)
    : rt_(realtime_bound), bulk_(bulk_bound), bulk_limit_(bulk_bound), bulk_bound_(bulk_bound) {}

void SendLanes::attach(int fd) {
    fd_ = fd;
    // CUBIC, not BBR: the receive-window clamp (ReceiveWindow) already keeps the queue short,
    // and BBR's ProbeRTT (4 packets in flight for 200 ms every 10 s) stalls the real-time lane
    // with 100+ ms spikes (docs/latency.md). The kernel's default is used if CUBIC is absent.
    static const char cc[] = "cubic";
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, sizeof cc - 1);
    // Writable means "below the pacing limit" from the start, before any rate is known (else a
    // socket with a large send buffer would report writable while bulk may not go: a busy loop).
    unsigned v = unsigned(pace_limit_);
    lowat_set_ =
        ::setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v) == 0 ? pace_limit_ : 0;
    next_update_ = {};
    rwin_ = ReceiveWindow{};
    bulk_since_stamp_ = false;
    acked_rates_ = {};
    acked_at_ = {};
}

size_t SendLanes::piece_segments(size_t size, size_t gso_size) const {
    if (size <= pace_limit_ || gso_size == 0) return 0;
    return std::max<size_t>(1, pace_limit_ / gso_size);
}

bool SendLanes::queue_pieces(std::span<const std::byte> pkt, const packet::OffloadHeader& meta,
                             size_t segments) {
    std::byte* at = nullptr;  // the reservation of the piece being built
    return packet::split(
        meta, pkt, segments,
        [&](const packet::OffloadHeader& m, size_t size) -> std::byte* {
            size_t n = packet::kHeaderSize + size + (m.plain() ? 0 : packet::kOffloadTrailerSize);
            auto space = bulk_.reserve(n);
            at = space.size() < n ? nullptr : space.data();
            return at == nullptr ? nullptr : at + packet::kHeaderSize;
        },
        [&](const packet::OffloadHeader& m, size_t size) {
            bulk_.commit(packet::frame_packet(at, m, size));
        });
}

void SendLanes::clear() {
    rt_.clear();
    bulk_.clear();
    partial_ = 0;
    retry_ = {};
}

void SendLanes::release_buffers() {
    rt_.release_if_empty();
    bulk_.release_if_empty();
}

size_t SendLanes::unsent() const {
    int n = 0;
    if (fd_ < 0 || ::ioctl(fd_, SIOCOUTQNSD, &n) < 0) return 0;
    return size_t(n);
}

void SendLanes::update_pacing(session::TimePoint now) {
    if (fd_ < 0 || now < next_update_) return;
    next_update_ = now + kPaceEvery;
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return;
    // Receive side: clamp what the peer may have in flight toward us (receive_window.hpp).
    if (size_t clamp = rwin_.update(now, info.tcpi_bytes_received,
                                    std::chrono::microseconds(info.tcpi_min_rtt),
                                    std::chrono::microseconds(info.tcpi_rtt));
        clamp != 0) {
        // Applied every time: the kernel's receive-buffer autotuning resets the clamp when it
        // grows the buffer.
        int v = int(std::min<size_t>(clamp, INT32_MAX));
        (void)::setsockopt(fd_, IPPROTO_TCP, TCP_WINDOW_CLAMP, &v, sizeof v);
    }
    // Send rate: the kernel's delivery rate, but at most twice what was really acknowledged
    // lately. A delivery-rate sample taken from a burst of compressed ACKs (ACKs that queued
    // behind the other direction's data) can be several times the link rate, and the unsent
    // backlog sized from it would hold real-time envelopes back for that much longer.
    if (acked_at_ != session::TimePoint{} && now > acked_at_) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - acked_at_).count();
        acked_rates_[acked_next_] = (info.tcpi_bytes_acked - acked_) * 1'000'000 / uint64_t(us);
        acked_next_ = (acked_next_ + 1) % acked_rates_.size();
    }
    acked_ = info.tcpi_bytes_acked;
    acked_at_ = now;
    uint64_t acked_rate = *std::max_element(acked_rates_.begin(), acked_rates_.end());
    if (info.tcpi_delivery_rate > 0)
        rate_ = acked_rate > 0 ? std::min<uint64_t>(info.tcpi_delivery_rate, 2 * acked_rate)
                               : info.tcpi_delivery_rate;
    if (rate_ == 0) return;
    pace_limit_ = std::clamp<size_t>(size_t(rate_ / 500), kMinPace, kMaxPace);    // 2 ms
    bulk_limit_ = std::clamp<size_t>(size_t(rate_ / 20), kMinBulk, bulk_bound_);  // 50 ms
    // Re-arm the writable threshold when the limit moved by more than a quarter.
    if (lowat_set_ == 0 || pace_limit_ > lowat_set_ + lowat_set_ / 4 ||
        pace_limit_ < lowat_set_ - lowat_set_ / 4) {
        unsigned v = unsigned(pace_limit_);
        if (::setsockopt(fd_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v) == 0)
            lowat_set_ = pace_limit_;
    }
}

SendLanes::Status SendLanes::write_queue(tls::TlsConnection& tls, ByteQueue& q, size_t budget,
                                         size_t& written, bool track_partial) {
    while (!q.empty() && written < budget) {
        auto front = q.front();
        size_t chunk = 0, big = 0;  // big: length of an envelope larger than one record
        if (track_partial && partial_ > 0) {
            chunk = std::min({partial_, kMaxRecord, front.size()});
        } else {
            // Whole envelopes up to one record, and no more than the budget left (but at least
            // one envelope): the socket's unsent backlog must not overshoot the pacing limit by
            // a whole record. An envelope bigger than a record goes alone.
            size_t record = std::min(kMaxRecord, budget - written);
            while (chunk + packet::kHeaderSize <= front.size()) {
                size_t len = envelope_length(front.data() + chunk);
                if (len < packet::kHeaderSize || chunk + len > front.size()) break;
                if (chunk > 0 && chunk + len > record) break;
                if (chunk + len > kMaxRecord) {
                    if (chunk == 0) {
                        chunk = kMaxRecord;
                        big = len;
                    }
                    break;
                }
                chunk += len;
            }
            if (chunk == 0) return Status::failed;  // the queue holds whole envelopes only
        }
        if (auto st = write_chunk(tls, q, chunk, big, track_partial, written); st != Status::done)
            return st;
    }
    return q.empty() ? Status::done : Status::blocked;
}

SendLanes::Status SendLanes::write_chunk(tls::TlsConnection& tls, ByteQueue& q, size_t chunk,
                                         size_t big, bool track_partial, size_t& written) {
    auto r = tls.write(q.front().first(chunk));
    if (r.status == tls::TlsStatus::want_write || r.status == tls::TlsStatus::want_read) {
        retry_ = {&q, chunk, big, track_partial};
        return Status::blocked;
    }
    retry_ = {};
    if (r.status != tls::TlsStatus::ok) return Status::failed;
    // chunk is at most one record, and OpenSSL writes a record whole (partial-write mode
    // returns after each record): r.bytes == chunk.
    q.consume(r.bytes);
    written += r.bytes;
    if (track_partial) {
        if (partial_ > 0)
            partial_ -= std::min(partial_, r.bytes);
        else if (big > r.bytes)
            partial_ = big - r.bytes;  // the rest must follow
    }
    return Status::done;
}

void SendLanes::stamp_if_due(session::TimePoint now) {
    if (fd_ < 0 || !bulk_since_stamp_ || now - last_stamp_ < kStampEvery) return;
    stamp_.clear();
    packet::encode(packet::Keepalive{false, session::to_micros(now)}, stamp_);
    if (rt_.append(stamp_)) {
        last_stamp_ = now;
        bulk_since_stamp_ = false;
    }
}

SendLanes::Status SendLanes::flush(tls::TlsConnection& tls, session::TimePoint now) {
    update_pacing(now);
    stamp_if_due(now);
    size_t written = 0;
    Status st = Status::done;
    // 0. A write that would have blocked last time, repeated with the same bytes (retry_).
    if (retry_.queue != nullptr) {
        PendingWrite p = retry_;
        st = write_chunk(tls, *p.queue, p.chunk, p.big, p.track_partial, written);
        if (st != Status::done) return st;
        written = 0;
    }
    // 1. A half-written bulk envelope goes first: the stream must not interleave envelopes.
    if (partial_ > 0) {
        st = write_queue(tls, bulk_, partial_, written, true);
        if (st == Status::failed) return st;
    }
    // 2. Real-time, whatever the pacing says.
    if (partial_ == 0 && st != Status::blocked) {
        size_t rt_written = 0;
        st = write_queue(tls, rt_, SIZE_MAX, rt_written, false);
        if (st == Status::failed) return st;
    }
    // 3. Bulk within the pacing budget.
    if (partial_ == 0 && st == Status::done && !bulk_.empty()) {
        size_t backlog = unsent() + tls.unflushed();
        size_t budget = backlog < pace_limit_ ? pace_limit_ - backlog : 0;
        written = 0;
        st = budget > 0 ? write_queue(tls, bulk_, budget, written, true) : Status::blocked;
        if (st == Status::failed) return st;
        if (written > 0) bulk_since_stamp_ = true;
    }
    // 4. Send what the TLS layer gathered.
    switch (tls.flush()) {
        case tls::TlsStatus::ok:
            break;
        case tls::TlsStatus::failed:
            return Status::failed;
        default:
            return Status::blocked;
    }
    if (!idle()) return Status::blocked;
    return Status::done;
}

}  // namespace porthole::tunnel

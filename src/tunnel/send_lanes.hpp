// SendLanes: a session's outbound path from envelopes to the TCP socket, shared by the UE client
// and the concentrator. Two bounded queues — real-time and bulk — written into TLS records,
// real-time first, and a pacer that keeps the socket's unsent backlog to a few milliseconds of
// its delivery rate, so that a voice packet never waits behind megabytes of download.
//
// Each flush():
//   1. finishes a bulk envelope that an earlier flush left half-written (the byte stream must
//      not interleave envelopes);
//   2. writes every queued real-time envelope (they bypass the pacing budget);
//   3. writes bulk envelopes while the socket's unsent bytes stay under the pacing limit
//      (limit = delivery rate x 2 ms, between 8 KiB and 4 MiB, records cut to the budget left;
//      TCP_NOTSENT_LOWAT follows it, so the socket reports writable exactly when more bulk may
//      go): a real-time envelope waits behind at most that much in the socket;
//   4. sends the gathered records (TlsConnection::flush()).
// Every pacing update also clamps the socket's receive window (ReceiveWindow) so that the peer
// leaves about 6 ms of queue in its direction; while bulk flows, a keep-alive request stamped
// with our clock goes out every 10 ms and gives the peer the one-way delay samples for that.
// The bulk queue admits packets only up to about 50 ms of the delivery rate (at least 256 KiB):
// beyond that, newly arriving bulk packets are dropped and the inner TCP flows slow down, instead
// of a standing queue growing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/byte_queue.hpp"
#include "packet/offload.hpp"
#include "session/clock.hpp"
#include "tls/tls_connection.hpp"
#include "tunnel/receive_window.hpp"

namespace porthole::tunnel {

class SendLanes {
public:
    SendLanes(size_t realtime_bound, size_t bulk_bound);

    // The socket to pace: selects BBR congestion control when the kernel has it (a delay-based
    // algorithm keeps the bottleneck's queue short) and sets TCP_NOTSENT_LOWAT.
    void attach(int fd);

    ByteQueue& realtime() { return rt_; }
    ByteQueue& bulk() { return bulk_; }
    // Whether a bulk envelope of n bytes may join the queue now (rate-scaled bound).
    [[nodiscard]] bool admit_bulk(size_t n) const { return bulk_.size() + n <= bulk_limit_; }

    enum class Status { done, blocked, failed };
    // blocked: wait for the socket to be writable (EPOLLOUT), then flush() again.
    Status flush(tls::TlsConnection& tls, session::TimePoint now);
    [[nodiscard]] bool idle() const { return rt_.empty() && bulk_.empty() && partial_ == 0; }
    // Drops everything queued (a new connection starts with clean framing).
    void clear();
    void release_buffers();

    // The peer's keep-alive stamp (ClientOutput/ServerOutput::peer_timestamp_us): a one-way
    // delay sample for the receive-window clamp.
    void on_peer_timestamp(session::TimePoint now, uint64_t peer_us) {
        rwin_.on_peer_timestamp(now, peer_us);
    }
    [[nodiscard]] const ReceiveWindow& receive_window() const { return rwin_; }

    // Segments per piece when a bulk super-packet of `size` octets (segment size gso_size) should
    // be cut (packet::split) before it joins the queue, 0 when it may go whole. A super-packet is
    // written to the socket in one go (envelopes do not interleave), so a real-time envelope can
    // wait behind all of it: on a path slower than ~250 Mbit/s a 64 KiB one is more than the
    // pacing limit, and pieces of about that limit keep that wait to a couple of milliseconds.
    [[nodiscard]] size_t piece_segments(size_t size, size_t gso_size) const;
    // Queues super-packet pkt as bulk envelopes of `segments` segments each (packet::split).
    // False when it cannot be cut or the queue is full (the pieces queued until then stay).
    bool queue_pieces(std::span<const std::byte> pkt, const packet::OffloadHeader& meta,
                      size_t segments);

    [[nodiscard]] uint64_t rate_bytes_per_s() const { return rate_; }
    [[nodiscard]] size_t pacing_limit() const { return pace_limit_; }

private:
    // Writes up to `budget` bytes of q; whole envelopes only unless one is bigger than a record.
    Status write_queue(tls::TlsConnection& tls, ByteQueue& q, size_t budget, size_t& written,
                       bool track_partial);
    // One TLS write of the first `chunk` bytes of q (one record); `big` is the length of an
    // envelope larger than a record that starts there (0 if none). On want_write/want_read it
    // remembers the write in retry_.
    Status write_chunk(tls::TlsConnection& tls, ByteQueue& q, size_t chunk, size_t big,
                       bool track_partial, size_t& written);
    void update_pacing(session::TimePoint now);
    void stamp_if_due(session::TimePoint now);
    [[nodiscard]] size_t unsent() const;

    ByteQueue rt_, bulk_;
    size_t partial_ = 0;  // bytes of a half-written bulk envelope still to go
    // A TLS write that returned want_write/want_read. OpenSSL has already encrypted that record
    // and keeps it: the next write must offer the same bytes again (at least as many; a shorter
    // one fails with "bad length", and different bytes would be counted as sent while the held
    // record goes out instead). So it is repeated before anything else, even real-time.
    struct PendingWrite {
        ByteQueue* queue = nullptr;
        size_t chunk = 0, big = 0;
        bool track_partial = false;
    };
    PendingWrite retry_;
    int fd_ = -1;
    uint64_t rate_ = 0;
    size_t pace_limit_ = 4 * 1024 * 1024;
    size_t lowat_set_ = 0;
    size_t bulk_limit_;
    size_t bulk_bound_;
    session::TimePoint next_update_{};
    ReceiveWindow rwin_;
    std::vector<std::byte> stamp_;  // reused buffer for the keep-alive stamp
    session::TimePoint last_stamp_{};
    bool bulk_since_stamp_ = false;
    std::array<uint64_t, 5> acked_rates_{};  // bytes/s acknowledged per pacing update: 100 ms
    size_t acked_next_ = 0;
    uint64_t acked_ = 0;  // tcpi_bytes_acked at acked_at_
    session::TimePoint acked_at_{};
};

}  // namespace porthole::tunnel

#include "concentrator/ue_connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "concentrator/concentrator.hpp"
#include "concentrator/decoy_web.hpp"
#include "net/tcp_socket.hpp"
#include "packet/envelope.hpp"
#include "session/lane.hpp"

namespace porthole::concentrator {

using packet::CloseReason;
using session::Clock;

namespace {
constexpr size_t kReadBudget = 512 * 1024;            // per wake-up, then let other UEs run
constexpr size_t kRealtimeQueue = 64 * 1024;          // real-time lane bound
constexpr auto kLinger = std::chrono::seconds(2);     // drain time after our close
constexpr auto kIdleAfter = std::chrono::seconds(2);  // then buffers are given back

// sid= and identity= on every line about this connection (identity once TLS verified it).
log::Fields session_fields(session::SessionId id, const std::string& identity) {
    return {{"sid", id}, {"identity", identity}};
}

}  // namespace

UeConnection::UeConnection(Concentrator& owner, session::SessionId id, Fd socket, Endpoint peer,
                           tls::TlsConnection tls, session::TimePoint now)
    : owner_(owner),
      id_(id),
      socket_(std::move(socket)),
      peer_(peer),
      tls_(std::move(tls)),
      core_({owner.options().max_envelope, owner.options().handshake_timeout,
             owner.options().dead_after_missed},
            now),
      lanes_(kRealtimeQueue, owner.options().session_queue_bytes),
      accepted_(now) {
    lanes_.attach(socket_.get());
}

std::string UeConnection::tag() const {
    return identity_.empty() ? fmt::format("session {} ({})", id_, peer_)
                             : fmt::format("session {} [{}]", id_, identity_);
}

void UeConnection::on_event(uint32_t events) {
    if (phase_ == Phase::dead) return;
    if (phase_ == Phase::draining) return drain();
    if (phase_ == Phase::handshake) {
        if (!owner_.take_handshake_step()) return park_handshake();
        return drive_handshake();
    }
    if (events & EPOLLOUT) flush();
    if (phase_ != Phase::dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_records();
}

void UeConnection::resume() {
    if (phase_ == Phase::session) read_records();
}

void UeConnection::drive_handshake() {
    on_handshake(tls_.handshake());
}

void UeConnection::park_handshake() {
    owner_.loop().remove(socket_.get());  // removed, not muted: a hang-up would still be reported
    owner_.park_handshake(*this);
}

void UeConnection::resume_handshake() {
    if (phase_ != Phase::handshake) return;
    if (auto r = owner_.loop().add(socket_.get(), EPOLLIN | (writing_ ? EPOLLOUT : 0u), this); !r)
        return finish(fmt::format("cannot resume the TLS handshake: {}", r.error().message),
                      Linger::no);
    drive_handshake();
}

void UeConnection::handshake_returned(tls::TlsStatus st, bool timed_out) {
    lent_ = false;
    if (close_when_returned_) {
        return finish(fmt::format("closed: {}", *close_when_returned_), Linger::no);
    }
    if (timed_out) {
        count_handshake(control::HandshakeResult::timeout);
        return finish("TLS handshake timed out", Linger::no);
    }
    on_handshake(st);
}

void UeConnection::on_handshake(tls::TlsStatus st) {
    switch (st) {
        case tls::TlsStatus::ok:
            phase_ = Phase::session;
            identity_ = tls_.peer_identity();
            owner_.count_tls_handshake(tls_.resumed());
            if (identity_.empty())
                log::debug(session_fields(id_, identity_),
                           "{}: TLS up from {} ({}) without a client certificate", tag(), peer_,
                           tls_.description());
            else
                log::info(session_fields(id_, identity_), "{}: TLS up from {} ({}), identity '{}'",
                          tag(), peer_, tls_.description(), identity_);
            want_write(false);
            read_records();  // the configuration request may already be buffered
            return;
        case tls::TlsStatus::want_read:
            return want_write(false);
        case tls::TlsStatus::want_write:
            return want_write(true);
        case tls::TlsStatus::closed:
            count_handshake(control::HandshakeResult::peer_closed);
            return finish("peer closed during the TLS handshake", Linger::no);
        case tls::TlsStatus::failed:
            count_handshake(control::classify_tls_failure(tls_.error()));
            return finish(fmt::format("TLS handshake failed: {}", tls_.error()), Linger::yes);
    }
}

void UeConnection::read_records() {
    auto buf = owner_.rx_buffer();
    size_t total = 0;
    while (phase_ == Phase::session && total < kReadBudget) {
        // The rest of an envelope that spans TLS records is read straight into the decoder.
        auto room = seen_bytes_ && !decoy_ ? core_.receive_room() : std::span<std::byte>();
        auto r = tls_.read(room.empty() ? buf : room);
        if (r.status == tls::TlsStatus::ok && !room.empty()) {
            total += r.bytes;
            out_.clear();
            last_active_ = Clock::now();
            core_.on_received_in_place(r.bytes, last_active_, out_);
            after_receive();
            continue;
        }
        if (r.status == tls::TlsStatus::ok) {
            total += r.bytes;
            auto chunk = buf.first(r.bytes);
            if (decoy_ || (!seen_bytes_ && DecoyWeb::looks_like_http(chunk))) {
                answer_http(chunk);
                if (phase_ != Phase::session) return;
                continue;
            }
            seen_bytes_ = true;
            if (identity_.empty()) {
                // The tunnel needs a verified identity (the TLS layer only asked for one).
                count_handshake(control::HandshakeResult::no_certificate);
                return close(CloseReason::auth_failed, "a client certificate is required");
            }
            out_.clear();
            last_active_ = Clock::now();
            core_.on_bytes(chunk, last_active_, out_);
            after_receive();
            continue;
        }
        if (r.status == tls::TlsStatus::want_read) break;
        if (r.status == tls::TlsStatus::want_write) {
            want_write(true);
            break;
        }
        if (r.status == tls::TlsStatus::closed)
            return finish("peer closed the connection", Linger::no);
        return finish(fmt::format("TLS error: {}", tls_.error()), Linger::yes);
    }
    if (total >= kReadBudget && phase_ == Phase::session) owner_.defer(*this);
    if (phase_ == Phase::session) flush();
}

void UeConnection::after_receive() {
    if (out_.peer_timestamp_us) lanes_.on_peer_timestamp(last_active_, *out_.peer_timestamp_us);
    handle_output();
}

void UeConnection::handle_output() {
    for (const auto& pkt : out_.to_tun) {
        ++traffic_.packets_up;
        traffic_.bytes_up += pkt.bytes.size();
        owner_.deliver_to_tun(pkt);
    }
    if (!out_.to_peer.empty() && !lanes_.realtime().append(out_.to_peer))
        log::warn(session_fields(id_, identity_), "{}: send queue full, control message lost",
                  tag());
    if (out_.config_request) {
        auto req = std::move(*out_.config_request);
        out_.config_request.reset();
        owner_.on_config_request(*this, req);  // calls assign() or refuse()
    }
    if (out_.closed) {
        auto why = fmt::format("{}: {}", out_.closed_by_peer ? "UE closed the session" : "closing",
                               packet::describe(*out_.closed));
        // A UE that ended its session on purpose does a full handshake next time: resumption
        // is for lost connections, and the session cache must not fill with goodbyes.
        if (out_.closed_by_peer) tls_.forget_session();
        flush();
        tls_.shutdown();
        finish(why, out_.closed_by_peer ? Linger::no : Linger::yes);
    }
}

void UeConnection::answer_http(std::span<const std::byte> bytes) {
    decoy_ = true;
    count_handshake(control::HandshakeResult::decoy);
    size_t room =
        DecoyWeb::kMaxRequestHead - std::min(http_request_.size(), DecoyWeb::kMaxRequestHead);
    http_request_.append(reinterpret_cast<const char*>(bytes.data()), std::min(bytes.size(), room));
    std::string response = owner_.decoy().respond(http_request_);
    if (response.empty()) return;  // the request head is not complete yet
    // Not envelopes: written straight to TLS (the tunnel never started on this connection).
    (void)tls_.write(std::as_bytes(std::span(response.data(), response.size())));
    flush();
    tls_.shutdown();
    log::debug(session_fields(id_, identity_),
               "{}: HTTP request from {} answered with the web page", tag(), peer_);
    finish("web request served", Linger::yes);
}

void UeConnection::assign(packet::ConfigAssign assignment) {
    offload_ = (assignment.capabilities & packet::cap_offload) != 0;
    session::ServerOutput out;
    auto keepalive = std::chrono::seconds(assignment.keepalive_s);
    core_.assign(std::move(assignment), Clock::now(), out);
    // Unacknowledged data older than the dead-peer time means the path is gone.
    net::set_user_timeout(socket_.get(), keepalive * (owner_.options().dead_after_missed + 1));
    if (!lanes_.realtime().append(out.to_peer))
        log::warn(session_fields(id_, identity_), "{}: send queue full at assignment", tag());
    dirty_ = false;
    flush();
}

void UeConnection::refuse(CloseReason reason, std::string text) {
    close(reason, std::move(text));
}

void UeConnection::close(CloseReason reason, std::string text) {
    if (!live()) return;
    if (lent_) {
        close_when_returned_ = std::move(text);
        return;
    }
    if (phase_ == Phase::handshake) return finish(fmt::format("closed: {}", text), Linger::no);
    std::string why = fmt::format("closed: {}", packet::describe({reason, text}));
    session::ServerOutput out;
    core_.close(reason, std::move(text), out);
    (void)lanes_.realtime().append(out.to_peer);
    flush();
    tls_.shutdown();
    finish(why, Linger::yes);
}

bool UeConnection::queue_packet(std::span<const std::byte> pkt) {
    if (!core_.established()) return false;
    size_t total = pkt.size() + packet::kHeaderSize;
    bool realtime = session::classify(pkt, owner_.lane_policy()) == session::Lane::realtime;
    auto& q = realtime ? lanes_.realtime() : lanes_.bulk();
    if (!realtime && !lanes_.admit_bulk(total)) return false;  // bounded by ~50 ms of rate
    auto space = q.reserve(total);
    if (space.size() < total) return false;
    packet::EnvelopeWriter w(space.data(), space.size());
    w.append(uint8_t(packet::EnvelopeType::ip_packet), pkt);
    q.commit(w.size());
    ++traffic_.packets_down;
    traffic_.bytes_down += pkt.size();
    if (auto& s = realtime ? rt_sample_ : bulk_sample_; !s.active) sample_enqueue(s, q);
    return true;
}

bool UeConnection::queue_packet(std::span<std::byte> pkt, const packet::OffloadHeader& meta,
                                std::span<std::byte> scratch) {
    if (!meta.gso()) {
        // A single packet: complete a partial checksum here so it travels as plain type 1 and
        // can take the real-time lane (only super-packets need the offload envelope).
        packet::complete_checksum(meta, pkt);
        return queue_packet(std::span<const std::byte>(pkt));
    }
    size_t total = packet::kHeaderSize + pkt.size() + packet::kOffloadTrailerSize;
    if (offload_ && total <= packet::kMaxEnvelopeSize) {
        // The UE takes the super-packet whole: one envelope, metadata in the trailer.
        auto& bulk = lanes_.bulk();
        if (!core_.established() || !lanes_.admit_bulk(total)) return false;
        if (size_t segs = lanes_.piece_segments(pkt.size(), meta.gso_size); segs != 0) {
            // A slow path: smaller super-packets (send_lanes.hpp), built in the queue.
            if (!lanes_.queue_pieces(pkt, meta, segs)) return false;
        } else {
            auto space = bulk.reserve(total);
            if (space.size() < total) return false;
            std::memcpy(space.data() + packet::kHeaderSize, pkt.data(), pkt.size());
            bulk.commit(packet::frame_packet(space.data(), meta, pkt.size()));
        }
        ++traffic_.packets_down;
        traffic_.bytes_down += pkt.size();
        if (!bulk_sample_.active) sample_enqueue(bulk_sample_, bulk);
        return true;
    }
    // A UE without offloads gets MTU-sized packets, cut here.
    bool all = true;
    bool cut = packet::segment(meta, pkt, scratch, [&](std::span<const std::byte> seg) {
        all = queue_packet(seg) && all;
    });
    return cut && all;
}

std::span<std::byte> UeConnection::tun_read_room(size_t max_packet) {
    size_t total = packet::kHeaderSize + max_packet + packet::kOffloadTrailerSize;
    if (!offload_ || !core_.established() || total > packet::kMaxEnvelopeSize ||
        !lanes_.admit_bulk(total))
        return {};
    auto space = lanes_.bulk().reserve(total);
    return space.size() < total ? std::span<std::byte>() : space.first(total);
}

bool UeConnection::queue_in_place(std::span<std::byte> pkt, const packet::OffloadHeader& meta) {
    auto& bulk = lanes_.bulk();
    std::byte* envelope = pkt.data() - packet::kHeaderSize;  // the room's start
    if (meta.gso()) {
        // Whole super-packets only: a slow path's pieces are built in this same queue.
        if (lanes_.piece_segments(pkt.size(), meta.gso_size) != 0) return false;
        bulk.commit(packet::frame_packet(envelope, meta, pkt.size()));
    } else {
        // Real-time goes the usual way, untouched (it completes the checksum itself).
        if (session::classify(pkt, owner_.lane_policy()) == session::Lane::realtime) return false;
        packet::complete_checksum(meta, pkt);
        packet::write_header(envelope, uint8_t(packet::EnvelopeType::ip_packet), pkt.size());
        bulk.commit(packet::kHeaderSize + pkt.size());
    }
    ++traffic_.packets_down;
    traffic_.bytes_down += pkt.size();
    if (!bulk_sample_.active) sample_enqueue(bulk_sample_, bulk);
    return true;
}

void UeConnection::flush() {
    dirty_ = false;
    if (phase_ != Phase::session) return;
    bool had_data = !lanes_.idle();
    size_t rt_before = lanes_.realtime().size(), bulk_before = lanes_.bulk().size();
    auto now = Clock::now();
    auto st = lanes_.flush(tls_, now);
    // What this flush wrote from each lane's head. flush() may also append (a keep-alive stamp
    // to the real-time lane): the difference then undercounts by that much, never overcounts.
    auto written = [](size_t before, size_t after) { return before > after ? before - after : 0; };
    if (rt_sample_.active)
        sample_written(rt_sample_, written(rt_before, lanes_.realtime().size()), now);
    if (bulk_sample_.active)
        sample_written(bulk_sample_, written(bulk_before, lanes_.bulk().size()), now);
    if (st == tunnel::SendLanes::Status::failed)
        return finish(
            fmt::format("TLS write error: {}", tls_.error().empty() ? "send failed" : tls_.error()),
            Linger::no);
    if (had_data) {
        last_active_ = Clock::now();
        core_.on_data_sent(last_active_);
    }
    want_write(st == tunnel::SendLanes::Status::blocked);
}

void UeConnection::on_timer(session::TimePoint now) {
    if (lent_) return;  // the worker keeps the handshake deadline
    if (phase_ == Phase::draining) {
        if (now - drain_started_ >= kLinger) end();
        return;
    }
    if (phase_ == Phase::handshake) {
        if (now - accepted_ >= owner_.options().handshake_timeout) {
            count_handshake(control::HandshakeResult::timeout);
            finish("TLS handshake timed out", Linger::no);
        }
        return;
    }
    if (phase_ != Phase::session) return;
    out_.clear();
    core_.on_timer(now, out_);
    handle_output();
    if (phase_ == Phase::session && lanes_.idle() && now - last_active_ >= kIdleAfter) {
        lanes_.release_buffers();  // an idle session keeps no buffers
        tls_.release_buffers();
        core_.release_buffers();
    }
}

void UeConnection::want_write(bool on) {
    if (on == writing_ || phase_ == Phase::dead) return;
    writing_ = on;
    (void)owner_.loop().modify(socket_.get(), EPOLLIN | (on ? EPOLLOUT : 0u), this);
}

void UeConnection::finish(std::string_view why, Linger linger) {
    if (phase_ == Phase::dead || phase_ == Phase::draining) return;
    bool was_session = phase_ == Phase::session;
    count_handshake(control::HandshakeResult::no_config);  // unless it ended otherwise before
    if (was_session && decoy_) {
        // Web visitors: not worth a line each at info.
        log::debug(session_fields(id_, identity_), "{}: {}", tag(), why);
    } else if (was_session) {
        auto& d = core_.drops();
        log::info(session_fields(id_, identity_),
                  "{}: ended: {} (received {} packets; dropped: spoofed {}, early {})", tag(), why,
                  core_.packets_received(), d[session::DropReason::spoofed_source],
                  d[session::DropReason::before_config]);
    } else {
        log::warn(session_fields(id_, identity_), "{}: {}", tag(), why);
    }
    owner_.on_session_end(*this);  // the address and identity are free from now on
    if (linger == Linger::no) return end();
    // Our last words (TLS alert or CLOSE) are in flight: half-close and read until the peer
    // closes too (or kLinger passes), so that unread input does not turn our close into a reset
    // that overtakes them.
    phase_ = Phase::draining;
    drain_started_ = session::Clock::now();
    ::shutdown(socket_.get(), SHUT_WR);
    want_write(false);
    drain();
}

void UeConnection::drain() {
    std::byte scratch[4096];
    for (int i = 0; i < 64; ++i) {
        ssize_t n = ::recv(socket_.get(), scratch, sizeof scratch, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        return end();  // EOF or error: the peer has what we sent
    }
}

void UeConnection::end() {
    if (phase_ == Phase::dead) return;
    phase_ = Phase::dead;
    owner_.loop().remove(socket_.get());
    owner_.on_dead(*this);
}

}  // namespace porthole::concentrator

namespace porthole::concentrator {

void UeConnection::count_handshake(control::HandshakeResult r) {
    if (handshake_counted_) return;
    handshake_counted_ = true;
    owner_.count_handshake(r);
}

void UeConnection::sample_enqueue(DelaySample& s, const ByteQueue& q) {
    s.at = Clock::now();
    s.ahead = q.size();
    s.active = true;
}

void UeConnection::sample_written(DelaySample& s, size_t written, session::TimePoint now) {
    if (written < s.ahead) {
        s.ahead -= written;
        return;
    }
    s.active = false;
    auto us = uint64_t(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(now - s.at).count()));
    owner_.queue_delay().record(us);
    qdelay_avg_us_ = (qdelay_avg_us_ * 7 + us) / 8;
}

std::optional<uint64_t> UeConnection::rtt_us() const {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (!socket_ || ::getsockopt(socket_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) < 0 ||
        info.tcpi_rtt == 0)
        return std::nullopt;
    return info.tcpi_rtt;
}

const char* UeConnection::state_name() const {
    switch (phase_) {
        case Phase::handshake:
            return "handshake";
        case Phase::session:
            return core_.established() ? "established" : "configuring";
        case Phase::draining:
            return "closing";
        case Phase::dead:
            break;
    }
    return "closed";
}

}  // namespace porthole::concentrator

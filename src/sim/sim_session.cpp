#include "sim/sim_session.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "net/tcp_socket.hpp"
#include "packet/envelope.hpp"
#include "packet/ip_packet.hpp"

namespace porthole::sim {

using packet::CloseReason;
using session::Clock;

namespace {
constexpr size_t kQueueBytes = 64 * 1024;
constexpr size_t kMaxRecord = 16 * 1024;
constexpr size_t kControlReserve = 4 * 1024;
constexpr size_t kReadBudget = 256 * 1024;
constexpr auto kLinger = std::chrono::seconds(2);

// Starts a non-blocking connect; the result is known when the socket turns writable.
Result<Fd> start_connect(const Endpoint& remote) {
    Fd fd(::socket(remote.addr.is_v4() ? AF_INET : AF_INET6,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket", errno);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (remote.addr.is_v4()) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(remote.port);
        std::memcpy(&sin->sin_addr, remote.addr.bytes().data(), 4);
        len = sizeof(sockaddr_in);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(remote.port);
        std::memcpy(&sin6->sin6_addr, remote.addr.bytes().data(), 16);
        len = sizeof(sockaddr_in6);
    }
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0 && errno != EINPROGRESS)
        return sys_error(fmt::format("connect {}", remote), errno);
    net::set_nodelay(fd.get());
    return fd;
}
}  // namespace

SimSession::SimSession(SimEnv& env, uint32_t index, const ClientIdentity& identity)
    : env_(env), index_(index), identity_(identity), tx_(kQueueBytes) {}

SimSession::~SimSession() {
    teardown();
}

void SimSession::start(session::TimePoint now) {
    teardown();
    if (tls_) {  // keep its ticket, unless the connection failed at the TLS layer
        if (tls_->tls_failed())
            ticket_.reset();
        else if (auto t = tls_->take_ticket(); !t.empty())
            ticket_ = std::move(t);
    }
    tls_.reset();
    resumed_ = false;
    core_.reset();
    tx_ = ByteQueue(kQueueBytes);
    writing_ = fin_sent_ = false;
    tls_at_.reset();
    configured_at_.reset();
    address_.reset();
    address6_.reset();
    error_.clear();
    server_close_.reset();
    seen_.clear();
    probe_replies_ = 0;
    started_at_ = now;

    auto fd = start_connect(env_.server);
    if (!fd) return fail(fd.error().message);
    socket_ = std::move(*fd);
    if (auto r = env_.loop.add(socket_.get(), EPOLLOUT, this); !r) return fail(r.error().message);
    writing_ = true;
    phase_ = Phase::connecting;
}

void SimSession::fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    teardown();
}

void SimSession::abort(std::string why) {
    if (phase_ == Phase::done || phase_ == Phase::idle) return;
    if (phase_ == Phase::closing) return teardown();  // our CLOSE is out: not a failure
    fail(std::move(why));
}

void SimSession::cut() {
    if (phase_ == Phase::configuring || phase_ == Phase::established) teardown();
}

void SimSession::teardown() {
    if (socket_) {
        env_.loop.remove(socket_.get());
        socket_.reset();
    }
    if (phase_ != Phase::idle) phase_ = Phase::done;
    tx_.release_if_empty();
}

void SimSession::on_event(uint32_t events) {
    switch (phase_) {
        case Phase::connecting:
            return finish_connect();
        case Phase::handshake:
            return drive_handshake();
        case Phase::configuring:
        case Phase::established:
            if (events & EPOLLOUT) flush();
            if (phase_ == Phase::configuring || phase_ == Phase::established) read_records();
            return;
        case Phase::closing:
            if (events & EPOLLOUT) send_fin_when_flushed();
            if (phase_ == Phase::closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) drain();
            return;
        default:
            return;
    }
}

void SimSession::finish_connect() {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(sys_error(fmt::format("connect {}", env_.server), err).message);
    auto tls = tls::TlsConnection::make(env_.tls, socket_.get());
    if (!tls) return fail(tls.error().message);
    if (auto r = identity_.apply(tls->ssl()); !r) return fail(r.error().message);
    tls_.emplace(std::move(*tls));
    if (env_.offer_tickets) tls_->offer_ticket(ticket_);
    phase_ = Phase::handshake;
    drive_handshake();
}

void SimSession::drive_handshake() {
    switch (tls_->handshake()) {
        case tls::TlsStatus::ok: {
            tls_at_ = Clock::now();
            resumed_ = tls_->resumed();
            if (tls_->ticket_offered() && !resumed_) ticket_.reset();  // refused: forget it
            phase_ = Phase::configuring;
            core_.emplace(session::ClientSession::Options{
                packet::kMaxEnvelopeSize, {}, env_.connect_timeout, 3});
            out_.clear();
            core_->start(*tls_at_, out_);
            tx_.append(out_.to_peer);
            want_write(false);
            flush();
            if (phase_ == Phase::configuring) read_records();
            return;
        }
        case tls::TlsStatus::want_read:
            return want_write(false);
        case tls::TlsStatus::want_write:
            return want_write(true);
        case tls::TlsStatus::closed:
            return fail(tls_->error().empty() ? "the concentrator closed during the TLS handshake"
                                              : tls_->error());
        case tls::TlsStatus::failed:
            return fail(tls_->error());
    }
}

void SimSession::read_records() {
    size_t total = 0;
    while ((phase_ == Phase::configuring || phase_ == Phase::established) && total < kReadBudget) {
        auto r = tls_->read(env_.rx_buffer);
        if (r.status == tls::TlsStatus::ok) {
            total += r.bytes;
            out_.clear();
            core_->on_bytes(env_.rx_buffer.first(r.bytes), Clock::now(), out_);
            handle_output();
            continue;
        }
        if (r.status == tls::TlsStatus::want_read) break;
        if (r.status == tls::TlsStatus::want_write) {
            want_write(true);
            break;
        }
        if (r.status == tls::TlsStatus::closed)
            return fail(tls_->error().empty() ? "the concentrator closed the connection"
                                              : tls_->error());
        return fail(tls_->error());
    }
    if (phase_ == Phase::configuring || phase_ == Phase::established) flush();
}

void SimSession::handle_output() {
    if (out_.configured) {
        configured_at_ = Clock::now();
        const auto& a = core_->assignment();
        if (a.ipv4) address_ = a.ipv4->addr;
        if (a.ipv6) address6_ = a.ipv6->addr;
        phase_ = Phase::established;
    }
    for (auto pkt : out_.to_tun)
        on_packet(pkt);
    if (!out_.to_peer.empty() && !tx_.append(out_.to_peer)) return fail("send queue full");
    if (out_.closed) {
        if (out_.closed_by_peer) {
            server_close_ = *out_.closed;
            tls_->shutdown();
            return teardown();
        }
        flush();  // our own CLOSE (protocol error, dead peer, config timeout)
        fail(fmt::format("session ended: {}", packet::describe(*out_.closed)));
    }
}

void SimSession::on_packet(std::span<const std::byte> pkt) {
    auto ip = packet::IpPacket::parse(pkt);
    if (!ip) return env_.counters.note_other("not an IP packet");
    const IpAddress dst = ip->destination();
    if (!(address_ && dst == *address_) && !(address6_ && dst == *address6_)) {
        ++env_.counters.misdelivered;
        return;
    }
    auto echo = parse_echo(pkt);
    if (!echo || !echo->tag) {
        // Say what it is: "ICMP type 5 code 1 from 100.64.0.1", "proto 17 from 198.18.3.2".
        const size_t ihl = (static_cast<unsigned>(pkt[0]) & 0x0fu) * 4;
        const bool icmp4 =
            ip->family() == IpFamily::v4 && ip->protocol() == 1 && pkt.size() >= ihl + 2;
        return env_.counters.note_other(
            icmp4 ? fmt::format("ICMP type {} code {} from {}", unsigned(pkt[ihl]),
                                unsigned(pkt[ihl + 1]), ip->source())
                  : fmt::format("IP protocol {} from {}", ip->protocol(), ip->source()));
    }
    const ProbeTag& tag = *echo->tag;
    if (!echo->reply) {
        if (tag.kind != ProbeKind::ue2ue)
            return env_.counters.note_other("echo request not from a UE-to-UE probe");
        ++env_.counters.ue2ue_arrived;  // answer it, as a host would
        std::byte reply[kProbePacketSize + 64];
        size_t n = build_echo_reply(reply, pkt);
        if (n > 0 && tx_.free_space() >= n + packet::kHeaderSize + kControlReserve) {
            auto space = tx_.reserve(n + packet::kHeaderSize);
            packet::EnvelopeWriter w(space.data(), space.size());
            w.append(uint8_t(packet::EnvelopeType::ip_packet), {reply, n});
            tx_.commit(w.size());
        }
        return;
    }
    switch (tag.kind) {
        case ProbeKind::spoof:
            ++env_.counters.spoof_replies;
            return;
        case ProbeKind::ue2ue:
            if (tag.index == index_)
                ++env_.counters.ue2ue_replies;
            else
                ++env_.counters.foreign_replies;
            return;
        case ProbeKind::probe:
            if (tag.index != index_) {
                ++env_.counters.foreign_replies;
                return;
            }
            if (tag.seq >= seen_.size()) seen_.resize(tag.seq + 1, false);
            if (!seen_[tag.seq]) {
                seen_[tag.seq] = true;
                ++probe_replies_;
            }
            return;
    }
}

bool SimSession::send_echo(const IpAddress& src, const IpAddress& dst, ProbeKind kind,
                           uint32_t seq) {
    if (phase_ != Phase::established) return false;
    if (tx_.free_space() < kProbePacketSize + packet::kHeaderSize + kControlReserve) return false;
    auto space = tx_.reserve(kProbePacketSize + packet::kHeaderSize);
    packet::EnvelopeWriter w(space.data(), space.size());
    auto payload = w.payload_space();
    // ICMP ident: unique per session and kind, so the concentrator's NAT need not remap it.
    const auto ident = uint16_t((index_ * 3 + uint32_t(kind)) & 0xffff);
    build_echo(payload.first<kProbePacketSize>(), src, dst, false, ident, uint16_t(seq), ++ip_id_,
               ProbeTag{index_, kind, seq});
    w.commit(uint8_t(packet::EnvelopeType::ip_packet), kProbePacketSize);
    tx_.commit(w.size());
    flush();
    return true;
}

void SimSession::flush() {
    if (!tls_ || !socket_) return;
    bool sent = false;
    while (!tx_.empty()) {
        auto chunk = tx_.front();
        if (chunk.size() > kMaxRecord) chunk = chunk.first(kMaxRecord);
        auto r = tls_->write(chunk);
        if (r.status == tls::TlsStatus::ok) {
            tx_.consume(r.bytes);
            sent = true;
            continue;
        }
        if (r.status == tls::TlsStatus::want_write || r.status == tls::TlsStatus::want_read) {
            want_write(true);
            return;
        }
        if (phase_ == Phase::closing) return teardown();
        return fail(r.status == tls::TlsStatus::closed
                        ? "the concentrator closed the connection"
                        : fmt::format("TLS write: {}", tls_->error()));
    }
    // TlsConnection gathers records: send them.
    switch (tls_->flush()) {
        case tls::TlsStatus::ok:
            break;
        case tls::TlsStatus::want_write:
            want_write(true);
            return;
        default:
            if (phase_ == Phase::closing) return teardown();
            return fail(fmt::format("TLS send: {}", tls_->error()));
    }
    if (sent && core_) core_->on_data_sent(Clock::now());
    want_write(false);
}

void SimSession::close(session::TimePoint now) {
    if (phase_ == Phase::connecting || phase_ == Phase::handshake) return teardown();
    if (phase_ != Phase::configuring && phase_ != Phase::established) return;
    out_.clear();
    core_->close(CloseReason::normal, "uesim done", out_);
    tx_.append(out_.to_peer);
    phase_ = Phase::closing;
    closing_since_ = now;
    send_fin_when_flushed();
}

void SimSession::send_fin_when_flushed() {
    flush();
    if (phase_ != Phase::closing || !tx_.empty() || fin_sent_) return;
    tls_->shutdown();
    ::shutdown(socket_.get(), SHUT_WR);
    fin_sent_ = true;
    want_write(false);
    drain();
}

void SimSession::drain() {
    std::byte scratch[4096];
    for (int i = 0; i < 64; ++i) {
        ssize_t n = ::recv(socket_.get(), scratch, sizeof scratch, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        return teardown();  // EOF (or reset): the concentrator is done with us
    }
}

void SimSession::on_timer(session::TimePoint now) {
    switch (phase_) {
        case Phase::connecting:
        case Phase::handshake:
            if (now - started_at_ >= env_.connect_timeout)
                fail(phase_ == Phase::connecting
                         ? fmt::format("connect {}: no answer within {} s", env_.server,
                                       std::chrono::duration_cast<std::chrono::seconds>(
                                           env_.connect_timeout)
                                           .count())
                         : std::string("TLS handshake timed out"));
            return;
        case Phase::configuring:
        case Phase::established:
            if (now < core_->next_deadline()) return;
            out_.clear();
            core_->on_timer(now, out_);
            handle_output();
            flush();
            return;
        case Phase::closing:
            if (now - closing_since_ >= kLinger) teardown();
            return;
        default:
            return;
    }
}

void SimSession::want_write(bool on) {
    if (on == writing_ || !socket_) return;
    writing_ = on;
    (void)env_.loop.modify(socket_.get(), EPOLLIN | (on ? EPOLLOUT : 0u), this);
}

}  // namespace porthole::sim

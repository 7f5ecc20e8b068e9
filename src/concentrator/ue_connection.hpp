// UeConnection: one UE's TCP socket + TLS + ServerSession core, driven by the concentrator's
// event loop. It owns its send queue (bounded) and knows nothing of other UEs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/fd.hpp"
#include "base/ip_address.hpp"
#include "control/stats.hpp"
#include "net/event_loop.hpp"
#include "session/server_session.hpp"
#include "session/session_table.hpp"
#include "tls/tls_connection.hpp"
#include "tunnel/send_lanes.hpp"

namespace porthole::concentrator {

class Concentrator;

class UeConnection final : public net::EventHandler {
public:
    UeConnection(Concentrator& owner, session::SessionId id, Fd socket, Endpoint peer,
                 tls::TlsConnection tls, session::TimePoint now);

    void on_event(uint32_t epoll_events) override;
    // Outbound path: frames one IP packet from the TUN device into the send queue. False when
    // the queue is at its bound (the packet is dropped and counted by the caller).
    bool queue_packet(std::span<const std::byte> ip_packet);
    // The same for a packet read from an offloading TUN device: sent whole with its metadata when
    // the UE agreed to offloads, else cut into segments (built in scratch) or checksummed here.
    bool queue_packet(std::span<std::byte> ip_packet, const packet::OffloadHeader& meta,
                      std::span<std::byte> scratch);
    // Zero-copy receive from the TUN device (Concentrator::read_tun): room at the tail of the bulk
    // queue for one packet of up to max_packet octets, after its envelope header, when this
    // session takes super-packets whole and its bulk lane admits one; empty otherwise. Valid
    // until this session's queues are next touched.
    std::span<std::byte> tun_read_room(size_t max_packet);
    // The packet the TUN device wrote into that room (room.subspan(kHeaderSize, n)): queued in
    // place when it is bulk that goes whole. False when it needs the usual queue_packet() path,
    // which the caller must then feed from a copy (that path may reserve in this same queue).
    bool queue_in_place(std::span<std::byte> pkt, const packet::OffloadHeader& meta);
    void flush();
    void on_timer(session::TimePoint now);
    // Ends the session with a reason the UE will print.
    void close(packet::CloseReason reason, std::string text);
    // Continues reading after a budget-limited pass.
    void resume();
    // Handshakes in the event loop (no handshake threads) take turns: when this turn's budget is
    // spent, the socket leaves the loop until the concentrator resumes the handshake, so that
    // the UEs already connected do not wait behind a whole batch of handshakes.
    void park_handshake();
    void resume_handshake();

    // The TLS handshake runs on a HandshakePool worker: until handshake_returned() the event loop
    // does not touch this connection's TLS state or socket (timers skip it; a close() is kept
    // for when it returns). The worker enforces the handshake timeout.
    tls::TlsConnection& lend_handshake() {
        lent_ = true;
        return tls_;
    }
    // Back from the worker (the socket is registered in the event loop again): the handshake
    // ended with st (ok, failed or closed), or timed out.
    void handshake_returned(tls::TlsStatus st, bool timed_out);
    // The pool was stopped with this handshake still on a worker: the connection is ours again,
    // to be closed.
    void abandon_handshake() { lent_ = false; }
    [[nodiscard]] bool lent() const { return lent_; }

    [[nodiscard]] session::SessionId id() const { return id_; }
    [[nodiscard]] bool dead() const { return phase_ == Phase::dead; }
    // Still owns a session (address, identity): not ended, not draining.
    [[nodiscard]] bool live() const {
        return phase_ == Phase::handshake || phase_ == Phase::session;
    }
    [[nodiscard]] bool established() const { return core_.established(); }
    // TLS is up and the UE asked for its configuration, which it has not been given yet.
    [[nodiscard]] bool awaiting_config() const {
        return phase_ == Phase::session &&
               core_.state() == session::ServerSession::State::assigning;
    }
    [[nodiscard]] const std::string& identity() const { return identity_; }
    [[nodiscard]] const Endpoint& peer() const { return peer_; }
    [[nodiscard]] const session::ServerSession& core() const { return core_; }
    [[nodiscard]] int fd() const { return socket_.get(); }
    [[nodiscard]] bool dirty() const { return dirty_; }
    void set_dirty(bool d) { dirty_ = d; }
    void assign(packet::ConfigAssign assignment);
    void refuse(packet::CloseReason reason, std::string text);

    // Statistics (portholectl sessions, metrics).
    [[nodiscard]] const control::Traffic& traffic() const { return traffic_; }
    // TLS KeyUpdates this connection sent (its sending key renewed every key-update-records).
    [[nodiscard]] uint64_t key_updates() const { return tls_.key_updates(); }
    [[nodiscard]] session::TimePoint accepted() const { return accepted_; }
    [[nodiscard]] uint64_t queue_delay_us() const { return qdelay_avg_us_; }
    [[nodiscard]] size_t queued_bytes() { return lanes_.realtime().size() + lanes_.bulk().size(); }
    // The outer TCP connection's smoothed RTT (TCP_INFO), when the kernel has one.
    [[nodiscard]] std::optional<uint64_t> rtt_us() const;
    [[nodiscard]] const char* state_name() const;
    // Records how this connection's way to a session ended (once; later calls are ignored).
    void count_handshake(control::HandshakeResult r);

private:
    enum class Phase { handshake, session, draining, dead };
    enum class Linger { no, yes };
    void drive_handshake();
    void on_handshake(tls::TlsStatus st);
    void answer_http(std::span<const std::byte> bytes);
    void read_records();
    void after_receive();  // the core's output after received bytes
    void handle_output();
    void finish(std::string_view why, Linger linger);
    void drain();
    void end();
    void want_write(bool on);
    std::string tag() const;

    Concentrator& owner_;
    session::SessionId id_;
    Fd socket_;
    Endpoint peer_;
    tls::TlsConnection tls_;
    session::ServerSession core_;
    session::ServerOutput out_;
    tunnel::SendLanes lanes_;
    Phase phase_ = Phase::handshake;
    std::string identity_;
    session::TimePoint accepted_;
    session::TimePoint drain_started_{};
    session::TimePoint last_active_{};  // last byte read or written
    bool writing_ = false;              // EPOLLOUT registered
    bool dirty_ = false;                // queued packets await flush() after this TUN batch
    bool offload_ = false;              // the UE takes type 0x90 envelopes (cap_offload agreed)
    bool seen_bytes_ = false;           // the first application bytes decided: tunnel or web
    bool decoy_ = false;                // the peer speaks HTTP: it gets the web page
    std::string http_request_;          // its request head so far (bounded)
    // Statistics. Queue delay is sampled: one packet per lane at a time; `ahead` is the number
    // of queued bytes up to and including it, reduced by what each flush writes.
    struct DelaySample {
        session::TimePoint at{};
        size_t ahead = 0;
        bool active = false;
    };
    void sample_enqueue(DelaySample& s, const ByteQueue& q);
    void sample_written(DelaySample& s, size_t written, session::TimePoint now);
    control::Traffic traffic_;
    DelaySample rt_sample_, bulk_sample_;
    uint64_t qdelay_avg_us_ = 0;
    bool handshake_counted_ = false;
    bool lent_ = false;                               // the handshake is on a HandshakePool worker
    std::optional<std::string> close_when_returned_;  // a close() that came while lent
};

}  // namespace porthole::concentrator

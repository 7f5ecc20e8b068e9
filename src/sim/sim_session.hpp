// SimSession: one simulated UE. The same sans-IO core as the real client
// (session::ClientSession) over a non-blocking TCP + TLS connection on the simulator's shared
// event loop, but with no TUN device: packets are built and consumed here.
//
//   idle --start()--> connecting --> handshake --> configuring --> established
//        --close()--> closing (CLOSE, close_notify, half-close, read until EOF or 2 s) --> done
//   any phase --error/timeout/server CLOSE--> done, with error() or server_close() set
//
// A done session can be start()ed again (churn mode). The owner must not destroy a session
// while the event loop may still dispatch to it (only between run_once() calls).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/byte_queue.hpp"
#include "base/fd.hpp"
#include "base/ip_address.hpp"
#include "net/event_loop.hpp"
#include "session/client_session.hpp"
#include "sim/cert_mint.hpp"
#include "sim/probe_packet.hpp"
#include "tls/tls_connection.hpp"

namespace porthole::sim {

// Counters shared by all sessions of one run.
struct SimCounters {
    uint64_t misdelivered = 0;     // packets whose destination is not the receiving session's
    uint64_t spoof_replies = 0;    // replies to forged-source probes, on any session
    uint64_t ue2ue_arrived = 0;    // UE-to-UE echo requests that reached their target session
    uint64_t ue2ue_replies = 0;    // ...and whose reply came back to the sender
    uint64_t other_rx = 0;         // packets for us that are none of the above
    uint64_t foreign_replies = 0;  // our probe replies that arrived on the wrong session
    std::map<std::string, uint64_t> other_kinds;  // what the other_rx packets were (bounded)

    void note_other(std::string kind) {
        ++other_rx;
        if (other_kinds.size() < 16 || other_kinds.count(kind)) ++other_kinds[std::move(kind)];
    }
};

struct SimEnv {
    net::EventLoop& loop;
    const tls::TlsContext& tls;
    std::span<std::byte> rx_buffer;  // shared decrypt buffer
    SimCounters& counters;
    Endpoint server;
    session::Duration connect_timeout;
    bool offer_tickets = false;  // --resume: a restarted session offers its TLS session ticket
};

class SimSession final : public net::EventHandler {
public:
    enum class Phase { idle, connecting, handshake, configuring, established, closing, done };

    SimSession(SimEnv& env, uint32_t index, const ClientIdentity& identity);
    ~SimSession();
    SimSession(const SimSession&) = delete;
    SimSession& operator=(const SimSession&) = delete;

    // Starts (or restarts, when done) a connection; resets the per-connection results.
    void start(session::TimePoint now);
    // Ends the session from our side (CLOSE normal); done once the concentrator has closed too.
    void close(session::TimePoint now);
    // Drops the connection at once (used at the hard deadline).
    void abort(std::string why);
    // Drops the connection as a lost one: no CLOSE, no close_notify, the socket just closed
    // (--resume: the concentrator keeps the TLS session of a lost connection, not of a CLOSE).
    void cut();
    void on_event(uint32_t events) override;
    void on_timer(session::TimePoint now);

    // Sends one ICMP echo request inside the tunnel. False if not established or no room.
    bool send_echo(const IpAddress& src, const IpAddress& dst, ProbeKind kind, uint32_t seq);

    [[nodiscard]] uint32_t index() const { return index_; }
    [[nodiscard]] Phase phase() const { return phase_; }
    [[nodiscard]] bool established() const { return phase_ == Phase::established; }
    [[nodiscard]] bool done() const { return phase_ == Phase::done; }
    [[nodiscard]] bool active() const { return phase_ != Phase::idle && phase_ != Phase::done; }
    [[nodiscard]] const std::optional<IpAddress>& address() const { return address_; }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::optional<packet::Close>& server_close() const { return server_close_; }
    [[nodiscard]] bool was_configured() const { return configured_at_.has_value(); }
    [[nodiscard]] bool tls_done() const { return tls_at_.has_value(); }
    // The last TLS handshake resumed a session (a ticket of the previous connection).
    [[nodiscard]] bool resumed() const { return resumed_; }
    [[nodiscard]] std::optional<session::TimePoint> configured_at() const { return configured_at_; }
    [[nodiscard]] session::TimePoint started_at() const { return started_at_; }
    [[nodiscard]] uint32_t probe_replies() const { return probe_replies_; }
    [[nodiscard]] std::optional<session::Duration> keepalive_rtt() const {
        return core_ ? core_->last_rtt() : std::nullopt;
    }
    [[nodiscard]] const std::string& identity() const { return identity_.name; }

private:
    void fail(std::string why);
    void teardown();
    void finish_connect();
    void drive_handshake();
    void read_records();
    void handle_output();
    void on_packet(std::span<const std::byte> pkt);
    void flush();
    void send_fin_when_flushed();
    void drain();
    void want_write(bool on);

    SimEnv& env_;
    uint32_t index_;
    const ClientIdentity& identity_;
    Phase phase_ = Phase::idle;
    Fd socket_;
    std::optional<tls::TlsConnection> tls_;
    tls::SessionTicket ticket_;  // newest ticket of an earlier connection (memory only)
    bool resumed_ = false;
    std::optional<session::ClientSession> core_;
    session::ClientOutput out_;
    ByteQueue tx_;
    bool writing_ = false;
    bool fin_sent_ = false;
    uint16_t ip_id_ = 0;

    session::TimePoint started_at_{}, closing_since_{};
    std::optional<session::TimePoint> tls_at_, configured_at_;
    std::optional<IpAddress> address_;
    std::optional<IpAddress> address6_;  // when the concentrator also assigns IPv6
    std::string error_;
    std::optional<packet::Close> server_close_;
    std::vector<bool> seen_;  // probe seqs answered
    uint32_t probe_replies_ = 0;
};

}  // namespace porthole::sim

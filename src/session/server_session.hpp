// ServerSession: the concentrator side of one UE's tunnel session, as a pure state machine. It is
// fed the decrypted byte stream and `now`, and returns what to do. No I/O, no clock.
//
//   awaiting_config --CONFIG_REQUEST--> (owner allocates) --assign()--> established --> closed
//
// The owner (the concentrator) answers config_request with assign() or refuse(). Once
// established, every IP packet's inner source must be the session's own address
// (anti-spoofing, as WireGuard's cryptokey routing); others are dropped and counted.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "packet/control_message.hpp"
#include "packet/envelope.hpp"
#include "session/clock.hpp"
#include "session/drop_reason.hpp"
#include "session/keepalive.hpp"
#include "session/tun_packet.hpp"

namespace porthole::session {

struct ServerOutput {
    std::vector<std::byte> to_peer;  // whole envelopes to send, in order
    std::vector<TunPacket> to_tun;   // IP packets; views valid until the next call
    std::optional<packet::ConfigRequest> config_request;  // answer with assign() or refuse()
    std::optional<packet::Close> closed;                  // the session ended in this call: why
    bool closed_by_peer = false;
    // The send time (the peer's monotonic clock, us) of the last keep-alive request in this
    // call: SendLanes turns it into this direction's queueing delay (receive_window.hpp).
    std::optional<uint64_t> peer_timestamp_us;

    void clear() {
        to_peer.clear();
        to_tun.clear();
        config_request.reset();
        closed.reset();
        closed_by_peer = false;
        peer_timestamp_us.reset();
    }
};

class ServerSession {
public:
    enum class State { awaiting_config, assigning, established, closed };

    struct Options {
        size_t max_envelope = packet::kMaxEnvelopeSize;
        Duration config_timeout = seconds(10);
        unsigned dead_after_missed = 3;
    };

    ServerSession(Options options, TimePoint now);

    void on_bytes(std::span<const std::byte> data, TimePoint now, ServerOutput& out);
    // Where the next received bytes may be written directly: the rest of an envelope that spans
    // TLS records, read in place instead of being copied into the decoder. Empty otherwise; then
    // read anywhere and call on_bytes().
    [[nodiscard]] std::span<std::byte> receive_room();
    // n bytes were written into receive_room(): the same as on_bytes() with them.
    void on_received_in_place(size_t n, TimePoint now, ServerOutput& out);
    void assign(packet::ConfigAssign assignment, TimePoint now, ServerOutput& out);
    void refuse(packet::CloseReason reason, std::string text, ServerOutput& out);
    void on_timer(TimePoint now, ServerOutput& out);
    void on_data_sent(TimePoint now) { keepalive_.on_sent(now); }
    void close(packet::CloseReason reason, std::string text, ServerOutput& out);

    // Gives back reassembly buffers while no envelope is partly received (idle sessions).
    void release_buffers() { decoder_.release_buffers(); }

    [[nodiscard]] State state() const { return state_; }
    [[nodiscard]] bool established() const { return state_ == State::established; }
    [[nodiscard]] const packet::ConfigAssign& assignment() const { return assignment_; }
    [[nodiscard]] TimePoint next_deadline() const;
    [[nodiscard]] const DropCounters& drops() const { return drops_; }
    [[nodiscard]] uint64_t packets_received() const { return rx_packets_; }

private:
    void on_envelope(const packet::Envelope& env, TimePoint now, ServerOutput& out);
    void on_decoded(packet::DecodeError err, ServerOutput& out);
    auto deliver_to(TimePoint now, ServerOutput& out);
    [[nodiscard]] bool receiving() const { return state_ != State::closed; }
    [[nodiscard]] bool source_allowed(std::span<const std::byte> packet) const;

    Options opt_;
    State state_ = State::awaiting_config;
    packet::EnvelopeDecoder decoder_;
    packet::ConfigAssign assignment_;
    Keepalive keepalive_;
    TimePoint started_;
    DropCounters drops_;
    uint64_t rx_packets_ = 0;
};

}  // namespace porthole::session

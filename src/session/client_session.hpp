// ClientSession: the UE side of one tunnel session, as a pure state machine. It is fed the
// decrypted byte stream and `now`, and returns what to do: bytes to send, packets for the TUN
// device, the configuration to apply, or the end of the session and why. No I/O, no clock.
//
//   idle --start()--> awaiting_config --CONFIG_ASSIGN--> established --CLOSE/error/dead--> closed
//
// IP packets from the TUN device do not pass through here: the shell frames them straight into
// its send buffer (packet::EnvelopeWriter) once established() is true, and reports on_data_sent().
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "packet/control_message.hpp"
#include "packet/envelope.hpp"
#include "session/clock.hpp"
#include "session/keepalive.hpp"
#include "session/tun_packet.hpp"

namespace porthole::session {

struct ClientOutput {
    std::vector<std::byte> to_peer;       // whole envelopes to send, in order
    std::vector<TunPacket> to_tun;        // IP packets; views valid until the next call
    bool configured = false;              // assignment() became valid in this call
    std::optional<packet::Close> closed;  // the session ended in this call: why
    bool closed_by_peer = false;
    // The send time (the peer's monotonic clock, us) of the last keep-alive request in this
    // call: SendLanes turns it into this direction's queueing delay (receive_window.hpp).
    std::optional<uint64_t> peer_timestamp_us;

    void clear() {
        to_peer.clear();
        to_tun.clear();
        configured = false;
        closed.reset();
        closed_by_peer = false;
        peer_timestamp_us.reset();
    }
};

class ClientSession {
public:
    enum class State { idle, awaiting_config, established, closed };

    struct Options {
        size_t max_envelope = packet::kMaxEnvelopeSize;
        packet::ConfigRequest request;
        Duration config_timeout = seconds(10);
        unsigned dead_after_missed = 3;
    };

    explicit ClientSession(Options options);

    // TLS is up: sends the configuration request.
    void start(TimePoint now, ClientOutput& out);
    void on_bytes(std::span<const std::byte> data, TimePoint now, ClientOutput& out);
    // Where the next received bytes may be written directly: the rest of an envelope that spans
    // TLS records, read in place instead of being copied into the decoder. Empty otherwise; then
    // read anywhere and call on_bytes().
    [[nodiscard]] std::span<std::byte> receive_room();
    // n bytes were written into receive_room(): the same as on_bytes() with them.
    void on_received_in_place(size_t n, TimePoint now, ClientOutput& out);
    void on_timer(TimePoint now, ClientOutput& out);
    void on_data_sent(TimePoint now) { keepalive_.on_sent(now); }
    // Ends the session from this side, sending CLOSE with the reason.
    void close(packet::CloseReason reason, std::string text, ClientOutput& out);

    [[nodiscard]] State state() const { return state_; }
    [[nodiscard]] bool established() const { return state_ == State::established; }
    [[nodiscard]] const packet::ConfigAssign& assignment() const { return assignment_; }
    [[nodiscard]] TimePoint next_deadline() const;
    [[nodiscard]] std::optional<Duration> last_rtt() const { return rtt_; }
    [[nodiscard]] uint64_t packets_received() const { return rx_packets_; }

private:
    void on_envelope(const packet::Envelope& env, TimePoint now, ClientOutput& out);
    void on_decoded(packet::DecodeError err, ClientOutput& out);
    auto deliver_to(TimePoint now, ClientOutput& out);
    [[nodiscard]] bool receiving() const {
        return !(state_ == State::closed || state_ == State::idle);
    }
    void fail(packet::CloseReason reason, std::string text, ClientOutput& out);

    Options opt_;
    State state_ = State::idle;
    packet::EnvelopeDecoder decoder_;
    packet::ConfigAssign assignment_;
    Keepalive keepalive_;
    TimePoint started_{};
    std::optional<Duration> rtt_;
    uint64_t rx_packets_ = 0;
};

}  // namespace porthole::session

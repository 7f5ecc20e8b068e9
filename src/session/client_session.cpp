#include "session/client_session.hpp"

#include <fmt/format.h>

namespace porthole::session {

using packet::CloseReason;
using packet::EnvelopeType;

ClientSession::ClientSession(Options options)
    : opt_(std::move(options)), decoder_(opt_.max_envelope) {}

void ClientSession::start(TimePoint now, ClientOutput& out) {
    if (state_ != State::idle) return;
    state_ = State::awaiting_config;
    started_ = now;
    packet::encode(opt_.request, out.to_peer);
}

// The envelope sink shared by on_bytes() and on_received_in_place().
auto ClientSession::deliver_to(TimePoint now, ClientOutput& out) {
    return [this, now, &out](const packet::Envelope& env) {
        if (state_ != State::closed) on_envelope(env, now, out);
    };
}

void ClientSession::on_bytes(std::span<const std::byte> data, TimePoint now, ClientOutput& out) {
    if (!receiving()) return;
    keepalive_.on_received(now);
    on_decoded(decoder_.feed(data, deliver_to(now, out)), out);
}

std::span<std::byte> ClientSession::receive_room() {
    return receiving() ? decoder_.partial_room() : std::span<std::byte>();
}

void ClientSession::on_received_in_place(size_t n, TimePoint now, ClientOutput& out) {
    if (!receiving()) return;
    keepalive_.on_received(now);
    on_decoded(decoder_.commit_partial(n, deliver_to(now, out)), out);
}

void ClientSession::on_decoded(packet::DecodeError err, ClientOutput& out) {
    if (err != packet::DecodeError::none && state_ != State::closed)
        fail(CloseReason::protocol_error, std::string(packet::to_string(err)), out);
}

void ClientSession::on_envelope(const packet::Envelope& env, TimePoint now, ClientOutput& out) {
    if (is_ip_envelope(env.type)) {
        if (state_ == State::established) {
            out.to_tun.push_back(tun_packet_of(env.type, env.payload));
            ++rx_packets_;
        }
        return;  // before configuration: nothing to deliver to yet
    }
    if (!packet::is_control_type(env.type)) return;  // unknown extension: skipped by length

    auto msg = packet::decode(env.type, env.payload);
    if (!msg) return fail(CloseReason::protocol_error, msg.error().message, out);

    if (auto* as = std::get_if<packet::ConfigAssign>(&*msg)) {
        if (state_ != State::awaiting_config) return;  // a repeat: ignored
        assignment_ = std::move(*as);
        state_ = State::established;
        out.configured = true;
        auto interval = seconds(assignment_.keepalive_s ? assignment_.keepalive_s : 20);
        keepalive_.configure(interval, opt_.dead_after_missed, now);
    } else if (auto* ka = std::get_if<packet::Keepalive>(&*msg)) {
        if (ka->reply) {
            uint64_t sent = ka->timestamp_us, at = to_micros(now);
            if (sent <= at) rtt_ = Duration(at - sent);
        } else {
            packet::encode(packet::Keepalive{true, ka->timestamp_us}, out.to_peer);
            keepalive_.on_sent(now);
            out.peer_timestamp_us = ka->timestamp_us;
        }
    } else if (auto* cl = std::get_if<packet::Close>(&*msg)) {
        state_ = State::closed;
        out.closed = std::move(*cl);
        out.closed_by_peer = true;
    }
    // A CONFIG_REQUEST sent to a UE is meaningless: ignored.
}

void ClientSession::on_timer(TimePoint now, ClientOutput& out) {
    if (state_ == State::awaiting_config) {
        if (now - started_ >= opt_.config_timeout)
            fail(CloseReason::config_timeout, "no configuration from the concentrator", out);
        return;
    }
    if (state_ != State::established) return;
    if (keepalive_.peer_dead(now)) {
        auto secs = std::chrono::duration_cast<seconds>(keepalive_.dead_after()).count();
        return fail(CloseReason::peer_dead, fmt::format("nothing heard for {} s", secs), out);
    }
    if (keepalive_.probe_due(now)) {
        packet::encode(packet::Keepalive{false, to_micros(now)}, out.to_peer);
        keepalive_.on_probe_sent(now);
    }
}

TimePoint ClientSession::next_deadline() const {
    switch (state_) {
        case State::awaiting_config:
            return started_ + opt_.config_timeout;
        case State::established:
            return keepalive_.next_deadline(true);
        default:
            return TimePoint::max();
    }
}

void ClientSession::close(CloseReason reason, std::string text, ClientOutput& out) {
    if (state_ == State::closed) return;
    fail(reason, std::move(text), out);
}

void ClientSession::fail(CloseReason reason, std::string text, ClientOutput& out) {
    bool can_send = state_ != State::idle;
    state_ = State::closed;
    packet::Close msg{reason, std::move(text)};
    if (can_send) packet::encode(msg, out.to_peer);
    out.closed = std::move(msg);
    out.closed_by_peer = false;
}

}  // namespace porthole::session

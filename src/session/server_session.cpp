#include "session/server_session.hpp"

#include <fmt/format.h>

#include "packet/ip_packet.hpp"

namespace porthole::session {

using packet::CloseReason;
using packet::EnvelopeType;

ServerSession::ServerSession(Options options, TimePoint now)
    : opt_(options), decoder_(opt_.max_envelope), started_(now) {}

// The envelope sink shared by on_bytes() and on_received_in_place().
auto ServerSession::deliver_to(TimePoint now, ServerOutput& out) {
    return [this, now, &out](const packet::Envelope& env) {
        if (state_ != State::closed) on_envelope(env, now, out);
    };
}

void ServerSession::on_bytes(std::span<const std::byte> data, TimePoint now, ServerOutput& out) {
    if (!receiving()) return;
    keepalive_.on_received(now);
    on_decoded(decoder_.feed(data, deliver_to(now, out)), out);
}

std::span<std::byte> ServerSession::receive_room() {
    return receiving() ? decoder_.partial_room() : std::span<std::byte>();
}

void ServerSession::on_received_in_place(size_t n, TimePoint now, ServerOutput& out) {
    if (!receiving()) return;
    keepalive_.on_received(now);
    on_decoded(decoder_.commit_partial(n, deliver_to(now, out)), out);
}

void ServerSession::on_decoded(packet::DecodeError err, ServerOutput& out) {
    if (err != packet::DecodeError::none && state_ != State::closed)
        close(CloseReason::protocol_error, std::string(packet::to_string(err)), out);
}

bool ServerSession::source_allowed(std::span<const std::byte> p) const {
    return (assignment_.ipv4 && packet::source_is(p, assignment_.ipv4->addr)) ||
           (assignment_.ipv6 && packet::source_is(p, assignment_.ipv6->addr));
}

void ServerSession::on_envelope(const packet::Envelope& env, TimePoint now, ServerOutput& out) {
    if (is_ip_envelope(env.type)) {
        if (state_ != State::established) return drops_.add(DropReason::before_config);
        auto pkt = tun_packet_of(env.type, env.payload);
        if (!source_allowed(pkt.bytes)) return drops_.add(DropReason::spoofed_source);
        out.to_tun.push_back(pkt);
        ++rx_packets_;
        return;
    }
    if (!packet::is_control_type(env.type)) return;  // unknown extension: skipped by length

    auto msg = packet::decode(env.type, env.payload);
    if (!msg) return close(CloseReason::protocol_error, msg.error().message, out);

    if (auto* req = std::get_if<packet::ConfigRequest>(&*msg)) {
        if (state_ != State::awaiting_config) return;  // a repeat: ignored
        if (req->version != packet::kProtocolVersion)
            return close(CloseReason::unsupported_version,
                         fmt::format("protocol version {} not supported (this concentrator "
                                     "speaks {})",
                                     req->version, packet::kProtocolVersion),
                         out);
        state_ = State::assigning;
        out.config_request = std::move(*req);
    } else if (auto* ka = std::get_if<packet::Keepalive>(&*msg)) {
        if (!ka->reply) {
            packet::encode(packet::Keepalive{true, ka->timestamp_us}, out.to_peer);
            keepalive_.on_sent(now);
            out.peer_timestamp_us = ka->timestamp_us;
        }
    } else if (auto* cl = std::get_if<packet::Close>(&*msg)) {
        state_ = State::closed;
        out.closed = std::move(*cl);
        out.closed_by_peer = true;
    }
    // A CONFIG_ASSIGN sent to the concentrator is meaningless: ignored.
}

void ServerSession::assign(packet::ConfigAssign assignment, TimePoint now, ServerOutput& out) {
    if (state_ != State::assigning) return;
    assignment_ = std::move(assignment);
    state_ = State::established;
    packet::encode(assignment_, out.to_peer);
    // The UE probes every interval; allow for `missed` intervals plus one of slack.
    auto interval = seconds(assignment_.keepalive_s ? assignment_.keepalive_s : 20);
    keepalive_.configure(interval, opt_.dead_after_missed + 1, now);
}

void ServerSession::refuse(CloseReason reason, std::string text, ServerOutput& out) {
    close(reason, std::move(text), out);
}

void ServerSession::on_timer(TimePoint now, ServerOutput& out) {
    if (state_ == State::awaiting_config || state_ == State::assigning) {
        if (now - started_ >= opt_.config_timeout)
            close(CloseReason::config_timeout, "no configuration request in time", out);
        return;
    }
    if (state_ == State::established && keepalive_.peer_dead(now)) {
        auto secs = std::chrono::duration_cast<seconds>(keepalive_.dead_after()).count();
        close(CloseReason::peer_dead, fmt::format("nothing heard for {} s", secs), out);
    }
}

TimePoint ServerSession::next_deadline() const {
    switch (state_) {
        case State::awaiting_config:
        case State::assigning:
            return started_ + opt_.config_timeout;
        case State::established:
            return keepalive_.next_deadline(false);
        default:
            return TimePoint::max();
    }
}

void ServerSession::close(CloseReason reason, std::string text, ServerOutput& out) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    packet::Close msg{reason, std::move(text)};
    packet::encode(msg, out.to_peer);
    out.closed = std::move(msg);
    out.closed_by_peer = false;
}

}  // namespace porthole::session

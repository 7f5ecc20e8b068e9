// A ServerSession fed arbitrary bytes in input-chosen chunks (odd-sized ones written into
// receive_room() when it has room, as the concentrator reads them), at input-chosen times,
// answering CONFIG_REQUEST with assign() (or refuse()) as the concentrator would: it must never
// crash, and once closed it must stay closed and silent.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "packet/ip_packet.hpp"
#include "session/server_session.hpp"

using namespace porthole::session;
using namespace porthole::packet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    ServerSession::Options o;
    o.max_envelope = 64 + size_t(data[0]) * 256;
    bool refuse = data[1] & 1;
    TimePoint now = TimePoint{} + seconds(1000);
    ServerSession s(o, now);
    ServerOutput out;
    size_t at = 2;
    bool closed = false;
    while (at < size) {
        uint8_t ctl = data[at++];
        size_t len = std::min<size_t>(ctl & 0x3f, size - at);
        now += milliseconds((ctl >> 6) * 4000);  // time advances 0, 4, 8 or 12 s
        out.clear();
        auto room = s.receive_room();
        if (len % 2 == 1 && !room.empty()) {
            len = std::min(len, room.size());
            std::copy_n(std::as_bytes(std::span(data + at, len)).begin(), len, room.begin());
            s.on_received_in_place(len, now, out);
        } else {
            s.on_bytes(std::as_bytes(std::span(data + at, len)), now, out);
        }
        at += len;
        for (auto p : out.to_tun) {  // only well-formed packets from the assigned source
            auto ip = porthole::packet::IpPacket::parse(p);
            if (!ip || !s.assignment().ipv4 || !s.assignment().ipv6) abort();
            auto src = ip->source();
            if (src != s.assignment().ipv4->addr && src != s.assignment().ipv6->addr) abort();
        }
        if (closed && (!out.to_peer.empty() || !out.to_tun.empty() || out.closed)) abort();
        if (out.config_request) {
            out.clear();
            if (refuse) {
                s.refuse(CloseReason::pool_exhausted, "full", out);
            } else {
                ConfigAssign a;
                a.ipv4 = *porthole::Prefix::parse("198.18.0.2/24");
                a.ipv6 = *porthole::Prefix::parse("fd00::2/64");
                a.keepalive_s = 5;
                s.assign(a, now, out);
            }
        }
        s.on_timer(now, out);
        if (s.next_deadline() < now && s.state() != ServerSession::State::closed) {
            out.clear();
            s.on_timer(now, out);
            if (s.state() != ServerSession::State::closed) abort();  // a due deadline acts
        }
        closed = s.state() == ServerSession::State::closed;
    }
    return 0;
}

// EnvelopeDecoder fed one stream in chunks whose sizes come from the input; an odd chunk size
// writes the chunk into partial_room() and commits it there when an envelope is partly received
// (the in-place read of the data path). The first byte picks the maximum envelope size; every
// delivered envelope must be within it, and the same stream fed whole must give the same
// envelopes and the same error.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "packet/envelope.hpp"
#include "packet/ip_packet.hpp"

using namespace porthole::packet;

namespace {
struct Seen {
    uint8_t type;
    std::vector<std::byte> payload;
    bool operator==(const Seen&) const = default;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    size_t max = 4 + size_t(data[0]) * 64;
    // Layout: max | n | n chunk sizes | stream
    size_t n = data[1] % 32;
    if (size < 2 + n) return 0;
    const uint8_t* sizes = data + 2;
    auto stream = std::as_bytes(std::span(data + 2 + n, size - 2 - n));

    auto check = [&](const Envelope& e) {
        if (e.payload.size() + kHeaderSize > max) abort();
        if (e.type == uint8_t(EnvelopeType::ip_packet) && !IpPacket::parse(e.payload)) abort();
    };

    std::vector<Seen> chunked, whole;
    EnvelopeDecoder d(max);
    DecodeError err = DecodeError::none;
    size_t at = 0, k = 0;
    while (at < stream.size() && err == DecodeError::none) {
        size_t len = n ? std::max<size_t>(1, sizes[k++ % n]) : 1;
        len = std::min(len, stream.size() - at);
        auto sink = [&](const Envelope& e) {
            check(e);
            chunked.push_back({e.type, {e.payload.begin(), e.payload.end()}});
        };
        auto room = d.partial_room();
        if (len % 2 == 1 && !room.empty()) {
            len = std::min(len, room.size());
            std::copy_n(stream.begin() + long(at), len, room.begin());
            err = d.commit_partial(len, sink);
        } else {
            err = d.feed(stream.subspan(at, len), sink);
        }
        at += len;
    }
    if (err != DecodeError::none && d.feed(stream, [](const Envelope&) { abort(); }) != err)
        abort();  // stays failed, delivers nothing

    EnvelopeDecoder w(max);
    DecodeError werr = w.feed(stream, [&](const Envelope& e) {
        check(e);
        whole.push_back({e.type, {e.payload.begin(), e.payload.end()}});
    });
    if (werr != err || whole != chunked) abort();
    return 0;
}

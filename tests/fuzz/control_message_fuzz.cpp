// Control message decoding for every control type, and re-encoding of whatever decodes: the
// result must decode again to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "packet/control_message.hpp"

using namespace porthole::packet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto payload = std::as_bytes(std::span(data, size));
    for (unsigned t = 0x7f; t <= 0x85; ++t) {
        auto m = decode(uint8_t(t), payload);
        if (m.has_value() != is_control_type(uint8_t(t))) {
            // non-control types must always fail; control types may fail on bad input
            if (!is_control_type(uint8_t(t))) abort();
            continue;
        }
        if (!m) continue;
        std::vector<std::byte> wire;
        encode(*m, wire);
        if (wire.size() < kHeaderSize) abort();
        uint8_t type = uint8_t(wire[0]);
        if (!is_control_type(type)) abort();
        if ((size_t(wire[1]) << 8 | size_t(wire[2])) != (wire.size() & 0xffff)) abort();
        // Oversized fields cannot be re-framed in 16-bit lengths; only check what fits.
        if (wire.size() > kMaxEnvelopeSize) continue;
        auto again = decode(type, std::span(wire).subspan(kHeaderSize));
        if (!again || !(*again == *m)) abort();
    }
    return 0;
}

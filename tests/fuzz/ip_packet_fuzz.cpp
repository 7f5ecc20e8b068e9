// IpPacket::parse on arbitrary bytes: no crash, and whatever it accepts satisfies its contract.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "packet/ip_packet.hpp"

using namespace porthole::packet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto b = std::as_bytes(std::span(data, size));
    auto p = IpPacket::parse(b);
    if (!p) return 0;
    if (p->bytes().data() != b.data() || p->bytes().size() != size) abort();
    unsigned version = data[0] >> 4;
    if (p->family() == porthole::IpFamily::v4) {
        if (version != 4 || size < 20 || (data[0] & 0x0f) < 5 ||
            (size_t(data[2]) << 8 | data[3]) != size)
            abort();
    } else {
        if (version != 6 || size < 40 || (size_t(data[4]) << 8 | data[5]) + 40 != size) abort();
    }
    auto src = p->source();
    (void)p->destination();
    (void)p->protocol();
    if (p->dscp() > 63) abort();
    if (!source_is(b, src)) abort();
    return 0;
}

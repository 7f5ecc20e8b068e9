#include "packet/offload.hpp"

#include <cstring>

#include "packet/ip_packet.hpp"

namespace porthole::packet {
namespace {

constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr uint16_t kMinGsoSize = 64;  // smaller segments are abuse, not traffic

uint16_t get16(const std::byte* p) {
    return uint16_t(uint16_t(p[0]) << 8 | uint16_t(p[1]));
}
void put16(std::byte* p, uint16_t v) {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v & 0xff);
}
uint32_t get32(const std::byte* p) {
    return uint32_t(get16(p)) << 16 | get16(p + 2);
}
void put32(std::byte* p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v));
}

// Sum of the pseudo-header for a transport segment of l4_total octets.
uint32_t pseudo_header_sum(const std::byte* ip, bool v4, uint8_t proto, size_t l4_total) {
    uint32_t sum = 0;
    if (v4) {
        sum = checksum_add({ip + 12, 8});
        sum += proto;
        sum += uint32_t(l4_total);
    } else {
        sum = checksum_add({ip + 8, 32});
        sum += uint32_t(l4_total >> 16) + uint32_t(l4_total & 0xffff);
        sum += proto;
    }
    return sum;
}

}  // namespace

void write_trailer(const OffloadHeader& h, std::byte* out) {
    out[0] = std::byte(h.flags);
    out[1] = std::byte(h.gso_type);
    put16(out + 2, h.hdr_len);
    put16(out + 4, h.gso_size);
    put16(out + 6, h.csum_start);
    put16(out + 8, h.csum_offset);
}

OffloadHeader read_trailer(const std::byte* in) {
    OffloadHeader h;
    h.flags = uint8_t(in[0]);
    h.gso_type = uint8_t(in[1]);
    h.hdr_len = get16(in + 2);
    h.gso_size = get16(in + 4);
    h.csum_start = get16(in + 6);
    h.csum_offset = get16(in + 8);
    return h;
}

uint32_t checksum_add(std::span<const std::byte> d, uint32_t sum) {
    size_t i = 0;
    // Big-endian 16-bit words; a 64-bit accumulator would be faster, this is the fallback path.
    for (; i + 1 < d.size(); i += 2)
        sum += uint32_t(d[i]) << 8 | uint32_t(d[i + 1]);
    if (i < d.size()) sum += uint32_t(d[i]) << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

uint16_t checksum_fold(uint32_t sum) {
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(sum);
}

void complete_checksum(const OffloadHeader& h, std::span<std::byte> packet) {
    if (!(h.flags & OffloadHeader::kNeedsCsum)) return;
    size_t start = h.csum_start, field = size_t(h.csum_start) + h.csum_offset;
    if (start >= packet.size() || field + 2 > packet.size()) return;
    uint16_t c = uint16_t(~checksum_fold(checksum_add(packet.subspan(start))));
    auto ip = IpPacket::parse(packet);
    if (c == 0 && ip && ip->protocol() == kProtoUdp) c = 0xffff;  // 0 means "none" for UDP
    put16(packet.data() + field, c);
}

namespace detail {

bool plan_segments(const OffloadHeader& h, std::span<const std::byte> packet, SegmentPlan& p) {
    auto ip = IpPacket::parse(packet);
    if (!ip || h.gso_size < kMinGsoSize) return false;
    const std::byte* b = packet.data();
    p.v4 = ip->family() == IpFamily::v4;
    uint8_t proto = ip->protocol();
    if (p.v4) {
        p.l3_len = (unsigned(b[0]) & 0x0f) * 4;
        if ((get16(b + 6) & 0x3fff) != 0) return false;  // a fragment cannot be segmented
    } else {
        p.l3_len = 40;  // extension headers are not produced by the stacks that use GSO
    }
    uint8_t type = h.gso_type & ~OffloadHeader::kGsoEcn;
    if (type == OffloadHeader::kGsoTcpV4 || type == OffloadHeader::kGsoTcpV6) {
        if (proto != kProtoTcp || (type == OffloadHeader::kGsoTcpV4) != p.v4) return false;
        if (packet.size() < p.l3_len + 20) return false;
        p.tcp = true;
        p.l4_len = (unsigned(b[p.l3_len + 12]) >> 4) * 4;
        if (p.l4_len < 20) return false;
    } else if (type == OffloadHeader::kGsoUdpL4) {
        if (proto != kProtoUdp) return false;
        p.tcp = false;
        p.l4_len = 8;
    } else {
        return false;
    }
    if (packet.size() < p.l3_len + p.l4_len) return false;
    p.payload = packet.size() - p.l3_len - p.l4_len;
    return true;
}

size_t build_segment(const SegmentPlan& p, std::span<const std::byte> packet, size_t index,
                     size_t off, size_t n, bool last, std::byte* out, bool partial) {
    size_t hdrs = p.l3_len + p.l4_len;
    std::memcpy(out, packet.data(), hdrs);
    std::memcpy(out + hdrs, packet.data() + hdrs + off, n);
    size_t total = hdrs + n;
    std::byte* l4 = out + p.l3_len;
    if (p.v4) {
        put16(out + 2, uint16_t(total));
        put16(out + 4, uint16_t(get16(out + 4) + index));
        put16(out + 10, 0);
        put16(out + 10, uint16_t(~checksum_fold(checksum_add({out, p.l3_len}))));
    } else {
        put16(out + 4, uint16_t(total - 40));
    }
    size_t l4_total = p.l4_len + n;
    uint8_t proto;
    size_t csum_field;
    if (p.tcp) {
        proto = kProtoTcp;
        csum_field = 16;
        put32(l4 + 4, uint32_t(get32(l4 + 4) + off));
        uint8_t flags = uint8_t(l4[13]);
        if (!last) flags &= uint8_t(~0x09);      // FIN and PSH only on the last segment
        if (index > 0) flags &= uint8_t(~0x80);  // CWR only on the first
        l4[13] = std::byte(flags);
    } else {
        proto = kProtoUdp;
        csum_field = 6;
        put16(l4 + 4, uint16_t(l4_total));
    }
    put16(l4 + csum_field, 0);
    uint32_t sum = pseudo_header_sum(out, p.v4, proto, l4_total);
    if (partial) {
        // What a device completes: the folded pseudo-header sum, not inverted (as the kernel's
        // tcp_v4_send_check / udp6_hwcsum_outgoing leave it for CHECKSUM_PARTIAL).
        put16(l4 + csum_field, checksum_fold(sum));
        return total;
    }
    sum = checksum_add({l4, l4_total}, sum);
    uint16_t c = uint16_t(~checksum_fold(sum));
    if (c == 0 && !p.tcp) c = 0xffff;
    put16(l4 + csum_field, c);
    return total;
}

OffloadHeader piece_header(const OffloadHeader& h, const SegmentPlan& p, size_t n, bool first) {
    OffloadHeader m;
    if (n <= h.gso_size) return m;  // one segment: a complete, plain packet
    m.flags = OffloadHeader::kNeedsCsum;
    m.gso_type = h.gso_type;
    if (!first) m.gso_type &= uint8_t(~OffloadHeader::kGsoEcn);  // CWR is on the first piece only
    m.hdr_len = uint16_t(p.l3_len + p.l4_len);
    m.gso_size = h.gso_size;
    m.csum_start = uint16_t(p.l3_len);
    m.csum_offset = p.tcp ? 16 : 6;
    return m;
}

}  // namespace detail

bool offload_consistent(const OffloadHeader& h, std::span<const std::byte> packet) {
    if (h.flags & ~(OffloadHeader::kNeedsCsum | OffloadHeader::kDataValid)) return false;
    if (h.flags & OffloadHeader::kNeedsCsum) {
        // Only TCP and UDP checksums are offloaded, and their field is where the header says.
        auto ip = IpPacket::parse(packet);
        if (!ip) return false;
        size_t l3 = ip->family() == IpFamily::v4 ? (unsigned(packet[0]) & 0x0f) * 4 : 40;
        uint16_t field = ip->protocol() == kProtoTcp ? 16 : ip->protocol() == kProtoUdp ? 6 : 0;
        if (field == 0 || h.csum_start != l3 || h.csum_offset != field) return false;
        if (size_t(h.csum_start) + h.csum_offset + 2 > packet.size()) return false;
    }
    if (!h.gso()) return true;
    detail::SegmentPlan p;
    return detail::plan_segments(h, packet, p);
}

}  // namespace porthole::packet

#include "sim/probe_packet.hpp"

#include <cstring>

namespace porthole::sim {
namespace {

constexpr std::array<char, 8> kMagic = {'P', 'H', 'U', 'E', 'S', 'I', 'M', '1'};
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kEchoReply = 0;
constexpr uint8_t kEchoRequest = 8;

void put16(std::byte* p, uint16_t v) {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v & 0xff);
}
void put32(std::byte* p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v & 0xffff));
}
uint16_t get16(const std::byte* p) {
    return uint16_t(unsigned(p[0]) << 8 | unsigned(p[1]));
}
uint32_t get32(const std::byte* p) {
    return uint32_t(get16(p)) << 16 | get16(p + 2);
}

}  // namespace

uint16_t internet_checksum(std::span<const std::byte> data) {
    uint32_t sum = 0;
    size_t i = 0;
    for (; i + 1 < data.size(); i += 2)
        sum += get16(&data[i]);
    if (i < data.size()) sum += uint32_t(data[i]) << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum & 0xffff);
}

void build_echo(std::span<std::byte, kProbePacketSize> out, const IpAddress& src,
                const IpAddress& dst, bool reply, uint16_t ident, uint16_t seq, uint16_t ip_id,
                const ProbeTag& tag) {
    std::memset(out.data(), 0, out.size());
    std::byte* ip = out.data();
    ip[0] = std::byte(0x45);  // version 4, IHL 5
    put16(ip + 2, uint16_t(kProbePacketSize));
    put16(ip + 4, ip_id);
    ip[8] = std::byte(64);  // TTL
    ip[9] = std::byte(kProtoIcmp);
    std::memcpy(ip + 12, src.bytes().data(), 4);
    std::memcpy(ip + 16, dst.bytes().data(), 4);
    put16(ip + 10, internet_checksum({ip, kIpv4HeaderSize}));

    std::byte* icmp = ip + kIpv4HeaderSize;
    icmp[0] = std::byte(reply ? kEchoReply : kEchoRequest);
    put16(icmp + 4, ident);
    put16(icmp + 6, seq);
    std::byte* pl = icmp + kIcmpHeaderSize;
    std::memcpy(pl, kMagic.data(), kMagic.size());
    put32(pl + 8, tag.index);
    pl[12] = std::byte(tag.kind);
    put32(pl + 16, tag.seq);
    put32(pl + 20, ~tag.index);  // a second copy, so that a corrupted index is not believed
    put16(icmp + 2, internet_checksum({icmp, kIcmpHeaderSize + kProbePayloadSize}));
}

size_t build_echo_reply(std::span<std::byte> out, std::span<const std::byte> request) {
    auto info = parse_echo(request);
    if (!info || info->reply || request.size() > out.size()) return 0;
    std::memcpy(out.data(), request.data(), request.size());
    std::byte* ip = out.data();
    const size_t ihl = (unsigned(ip[0]) & 0x0f) * 4;
    std::memcpy(ip + 12, info->destination.bytes().data(), 4);
    std::memcpy(ip + 16, info->source.bytes().data(), 4);
    ip[8] = std::byte(64);
    put16(ip + 10, 0);
    put16(ip + 10, internet_checksum({ip, ihl}));
    std::byte* icmp = ip + ihl;
    icmp[0] = std::byte(kEchoReply);
    put16(icmp + 2, 0);
    put16(icmp + 2, internet_checksum({icmp, request.size() - ihl}));
    return request.size();
}

std::optional<EchoInfo> parse_echo(std::span<const std::byte> p) {
    if (p.size() < kIpv4HeaderSize + kIcmpHeaderSize || (unsigned(p[0]) >> 4) != 4)
        return std::nullopt;
    const size_t ihl = (unsigned(p[0]) & 0x0f) * 4;
    if (ihl < kIpv4HeaderSize || p.size() < ihl + kIcmpHeaderSize) return std::nullopt;
    if (get16(&p[2]) != p.size() || uint8_t(p[9]) != kProtoIcmp) return std::nullopt;
    if ((get16(&p[6]) & 0x3fff) != 0) return std::nullopt;  // a fragment
    if (internet_checksum(p.first(ihl)) != 0) return std::nullopt;
    auto icmp = p.subspan(ihl);
    if (internet_checksum(icmp) != 0) return std::nullopt;
    const uint8_t type = uint8_t(icmp[0]);
    if ((type != kEchoReply && type != kEchoRequest) || uint8_t(icmp[1]) != 0) return std::nullopt;

    EchoInfo e;
    e.reply = type == kEchoReply;
    e.source = IpAddress::v4_bytes(std::span<const std::byte, 4>(p.data() + 12, 4));
    e.destination = IpAddress::v4_bytes(std::span<const std::byte, 4>(p.data() + 16, 4));
    e.ident = get16(&icmp[4]);
    e.seq = get16(&icmp[6]);
    auto pl = icmp.subspan(kIcmpHeaderSize);
    if (pl.size() == kProbePayloadSize &&
        std::memcmp(pl.data(), kMagic.data(), kMagic.size()) == 0 &&
        get32(&pl[20]) == ~get32(&pl[8])) {
        const uint8_t kind = uint8_t(pl[12]);
        if (kind >= uint8_t(ProbeKind::probe) && kind <= uint8_t(ProbeKind::ue2ue))
            e.tag = ProbeTag{get32(&pl[8]), ProbeKind(kind), get32(&pl[16])};
    }
    return e;
}

}  // namespace porthole::sim

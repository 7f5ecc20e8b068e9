// Offload: segmentation and checksum completion, checked against libtins-built packets and the
// checksum arithmetic itself (a valid segment sums to 0xffff with its pseudo-header).
#include <doctest/doctest.h>
#include <tins/tins.h>

#include <random>
#include <vector>

#include "packet/envelope.hpp"
#include "packet/ip_packet.hpp"
#include "packet/offload.hpp"
#include "test_wire.hpp"

using namespace porthole;
using namespace porthole::packet;
using namespace porthole::test;

namespace {

std::vector<uint8_t> noise_bytes(std::mt19937& rng, size_t n) {
    std::vector<uint8_t> d(n);
    for (auto& x : d)
        x = uint8_t(rng());
    return d;
}

// Sum of a transport segment with its pseudo-header: 0xffff when the checksum is right.
uint16_t verify_sum(std::span<const std::byte> pkt) {
    auto ip = IpPacket::parse(pkt);
    REQUIRE(ip.has_value());
    bool v4 = ip->family() == IpFamily::v4;
    size_t l3 = v4 ? (unsigned(pkt[0]) & 0x0f) * 4 : 40;
    size_t l4_total = pkt.size() - l3;
    uint32_t sum = v4 ? checksum_add(pkt.subspan(12, 8)) : checksum_add(pkt.subspan(8, 32));
    sum += ip->protocol();
    sum += uint32_t(l4_total >> 16) + uint32_t(l4_total & 0xffff);
    return checksum_fold(checksum_add(pkt.subspan(l3), sum));
}

struct Cut {
    std::vector<Bytes> segments;
};

Cut cut(const OffloadHeader& h, const Bytes& pkt) {
    Cut c;
    Bytes scratch(70000);
    bool ok = segment(h, pkt, scratch, [&](std::span<const std::byte> s) {
        c.segments.emplace_back(s.begin(), s.end());
    });
    REQUIRE(ok);
    return c;
}

}  // namespace

TEST_CASE("offload: trailer round trip") {
    OffloadHeader h{OffloadHeader::kNeedsCsum, OffloadHeader::kGsoTcpV6, 74, 1348, 54, 16};
    std::byte buf[kOffloadTrailerSize];
    write_trailer(h, buf);
    CHECK(read_trailer(buf) == h);
    CHECK_FALSE(h.plain());
    CHECK(OffloadHeader{}.plain());
    CHECK(OffloadHeader{OffloadHeader::kDataValid, 0, 0, 0, 0, 0}.plain());
}

TEST_CASE("offload: a TCP/IPv4 super-packet is cut into valid segments that rebuild the stream") {
    std::mt19937 rng(7);
    for (size_t payload : {1u, 1360u, 1361u, 20000u, 64000u}) {
        auto data = noise_bytes(rng, payload);
        Tins::TCP tcp(5001, 40000);
        tcp.seq(0xfffff000u);  // wraps within the super-packet
        tcp.flags(Tins::TCP::ACK | Tins::TCP::PSH | Tins::TCP::FIN | Tins::TCP::CWR);
        Tins::IP ip("198.18.3.2", "100.64.0.2");
        ip.id(0xfffe);
        ip /= tcp / Tins::RawPDU(data);
        Bytes pkt = to_bytes(ip.serialize());
        OffloadHeader h{OffloadHeader::kNeedsCsum, OffloadHeader::kGsoTcpV4, 40, 1360, 20, 16};
        REQUIRE(offload_consistent(h, pkt));
        auto c = cut(h, pkt);
        CHECK(c.segments.size() == (payload + 1359) / 1360);
        std::vector<uint8_t> rebuilt;
        for (size_t i = 0; i < c.segments.size(); ++i) {
            const auto& s = c.segments[i];
            CHECK(IpPacket::parse(s).has_value());
            CHECK(verify_sum(s) == 0xffff);
            std::vector<uint8_t> raw(s.size());
            for (size_t k = 0; k < s.size(); ++k)
                raw[k] = uint8_t(s[k]);
            Tins::IP seg(raw.data(), uint32_t(raw.size()));
            auto& t = seg.rfind_pdu<Tins::TCP>();
            CHECK(seg.id() == uint16_t(0xfffe + i));
            CHECK(t.seq() == uint32_t(0xfffff000u + i * 1360));
            bool last = i + 1 == c.segments.size();
            CHECK(bool(t.get_flag(Tins::TCP::FIN)) == last);
            CHECK(bool(t.get_flag(Tins::TCP::PSH)) == last);
            CHECK(bool(t.get_flag(Tins::TCP::CWR)) == (i == 0));
            CHECK(t.get_flag(Tins::TCP::ACK));
            // The IPv4 header checksum is right too (a header sums to 0xffff).
            CHECK(checksum_fold(checksum_add(std::span<const std::byte>(s).first(20))) == 0xffff);
            auto* rawpdu = t.find_pdu<Tins::RawPDU>();
            REQUIRE(rawpdu);
            rebuilt.insert(rebuilt.end(), rawpdu->payload().begin(), rawpdu->payload().end());
        }
        CHECK(rebuilt == data);
    }
}

TEST_CASE("offload: TCP/IPv6 and UDP (USO) super-packets") {
    std::mt19937 rng(11);
    auto data = noise_bytes(rng, 9000);
    {
        Tins::IPv6 ip6("fd00:18:3::2", "fd00:64::2");
        ip6 /= Tins::TCP(443, 50000) / Tins::RawPDU(data);
        Bytes pkt = to_bytes(ip6.serialize());
        OffloadHeader h{OffloadHeader::kNeedsCsum, OffloadHeader::kGsoTcpV6, 60, 1340, 40, 16};
        auto c = cut(h, pkt);
        CHECK(c.segments.size() == 7);
        for (const auto& s : c.segments) {
            CHECK(IpPacket::parse(s).has_value());
            CHECK(verify_sum(s) == 0xffff);
        }
    }
    {
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        ip /= Tins::UDP(5004, 5004) / Tins::RawPDU(data);
        Bytes pkt = to_bytes(ip.serialize());
        OffloadHeader h{OffloadHeader::kNeedsCsum, OffloadHeader::kGsoUdpL4, 28, 1200, 20, 6};
        auto c = cut(h, pkt);
        CHECK(c.segments.size() == 8);
        size_t total = 0;
        for (const auto& s : c.segments) {
            CHECK(IpPacket::parse(s).has_value());
            CHECK(verify_sum(s) == 0xffff);
            total += s.size() - 28;
        }
        CHECK(total == data.size());
    }
}

TEST_CASE("offload: split pieces are super-packets whose segments are the original's segments") {
    std::mt19937 rng(5);
    struct Case {
        bool v6, udp;
        size_t payload, segs;
    };
    for (Case k :
         {Case{false, false, 64000, 5}, Case{false, false, 7000, 5}, Case{false, false, 2721, 1},
          Case{true, false, 30000, 4}, Case{false, true, 9000, 3}, Case{false, false, 6800, 5}}) {
        CAPTURE(k.v6);
        CAPTURE(k.udp);
        CAPTURE(k.payload);
        CAPTURE(k.segs);
        auto data = noise_bytes(rng, k.payload);
        Bytes pkt;
        OffloadHeader h;
        if (k.udp) {
            Tins::IP ip("100.64.0.2", "198.18.3.2");
            ip.id(0xfff0);
            ip /= Tins::UDP(5004, 5004) / Tins::RawPDU(data);
            pkt = to_bytes(ip.serialize());
            h = {OffloadHeader::kNeedsCsum, OffloadHeader::kGsoUdpL4, 28, 1200, 20, 6};
        } else if (k.v6) {
            Tins::TCP tcp(443, 50000);
            tcp.flags(Tins::TCP::ACK | Tins::TCP::PSH);
            Tins::IPv6 ip6("fd00:18:3::2", "fd00:64::2");
            ip6 /= tcp / Tins::RawPDU(data);
            pkt = to_bytes(ip6.serialize());
            h = {OffloadHeader::kNeedsCsum, OffloadHeader::kGsoTcpV6, 60, 1340, 40, 16};
        } else {
            Tins::TCP tcp(5001, 40000);
            tcp.seq(0xffffa000u);
            tcp.flags(Tins::TCP::ACK | Tins::TCP::PSH | Tins::TCP::FIN | Tins::TCP::CWR);
            Tins::IP ip("198.18.3.2", "100.64.0.2");
            ip.id(0xfffa);
            ip /= tcp / Tins::RawPDU(data);
            pkt = to_bytes(ip.serialize());
            h = {OffloadHeader::kNeedsCsum,
                 uint8_t(OffloadHeader::kGsoTcpV4 | OffloadHeader::kGsoEcn),
                 40,
                 1360,
                 20,
                 16};
        }
        auto direct = cut(h, pkt).segments;

        std::vector<std::pair<OffloadHeader, Bytes>> pieces;
        Bytes buf(70000);
        bool ok = split(
            h, pkt, k.segs,
            [&](const OffloadHeader&, size_t size) {
                return size <= buf.size() ? buf.data() : nullptr;
            },
            [&](const OffloadHeader& m, size_t size) {
                pieces.emplace_back(m, Bytes(buf.begin(), buf.begin() + ptrdiff_t(size)));
            });
        REQUIRE(ok);
        size_t step = k.segs * h.gso_size;
        CHECK(pieces.size() == (k.payload + step - 1) / step);
        std::vector<Bytes> resegmented;
        for (size_t i = 0; i < pieces.size(); ++i) {
            auto& [m, piece] = pieces[i];
            REQUIRE(IpPacket::parse(piece).has_value());
            if (m.plain()) {
                // A piece of one segment is a finished packet.
                CHECK(verify_sum(piece) == 0xffff);
                resegmented.push_back(piece);
                continue;
            }
            CHECK(m.gso());
            CHECK(m.gso_size == h.gso_size);
            CHECK(bool(m.gso_type & OffloadHeader::kGsoEcn) == (i == 0 && !k.udp && !k.v6));
            REQUIRE(offload_consistent(m, piece));
            // Its partial checksum completes to a valid one for the piece as a whole packet.
            Bytes done = piece;
            complete_checksum(m, done);
            CHECK(verify_sum(done) == 0xffff);
            for (auto& s : cut(m, piece).segments)
                resegmented.push_back(std::move(s));
        }
        CHECK(resegmented == direct);
    }
}

TEST_CASE("offload: inconsistent metadata is refused, not segmented") {
    Tins::IP ip("198.18.3.2", "100.64.0.2");
    ip /= Tins::TCP(1, 2) / Tins::RawPDU(std::vector<uint8_t>(3000, 1));
    Bytes pkt = to_bytes(ip.serialize());
    Bytes scratch(70000);
    auto refuses = [&](OffloadHeader h) {
        bool emitted = false;
        bool ok = segment(h, pkt, scratch, [&](std::span<const std::byte>) { emitted = true; });
        return !ok && !emitted && !offload_consistent(h, pkt);
    };
    CHECK(refuses({0, OffloadHeader::kGsoTcpV6, 0, 1360, 0, 0}));  // wrong family
    CHECK(refuses({0, OffloadHeader::kGsoUdpL4, 0, 1360, 0, 0}));  // wrong protocol
    CHECK(refuses({0, OffloadHeader::kGsoTcpV4, 0, 8, 0, 0}));     // absurd segment size
    CHECK(refuses({0, 3 /* UFO */, 0, 1360, 0, 0}));               // unsupported type
    CHECK_FALSE(offload_consistent({OffloadHeader::kNeedsCsum, 0, 0, 0, 20, 99}, pkt));
    CHECK_FALSE(offload_consistent({OffloadHeader::kNeedsCsum, 0, 0, 0, 16, 16}, pkt));  // not L4
    CHECK_FALSE(offload_consistent({OffloadHeader::kNeedsCsum, 0, 0, 0, 20, 6}, pkt));   // UDP's
    CHECK_FALSE(
        offload_consistent({OffloadHeader::kNeedsCsum, 0, 0, 0, 3030, 16}, pkt));  // past the end
    CHECK_FALSE(offload_consistent({0x40, 0, 0, 0, 0, 0}, pkt));                   // unknown flag
    CHECK(offload_consistent({OffloadHeader::kNeedsCsum, 0, 0, 0, 20, 16}, pkt));
}

TEST_CASE("offload: a partial checksum is completed to the value libtins computes") {
    std::mt19937 rng(3);
    for (int round = 0; round < 50; ++round) {
        bool udp = round % 2;
        Tins::IP ip("100.64.0.2", "198.18.3.2");
        auto data = noise_bytes(rng, 1 + rng() % 1400);
        if (udp)
            ip /= Tins::UDP(uint16_t(rng()), uint16_t(rng())) / Tins::RawPDU(data);
        else
            ip /= Tins::TCP(uint16_t(rng()), uint16_t(rng())) / Tins::RawPDU(data);
        Bytes good = to_bytes(ip.serialize());
        size_t field = 20 + (udp ? 6 : 16);
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted.
        Bytes partial = good;
        size_t l4 = good.size() - 20;
        uint32_t pseudo = checksum_add(std::span<const std::byte>(good).subspan(12, 8));
        pseudo += udp ? 17 : 6;
        pseudo += uint32_t(l4);
        uint16_t folded = checksum_fold(pseudo);
        partial[field] = std::byte(folded >> 8);
        partial[field + 1] = std::byte(folded & 0xff);
        OffloadHeader h{OffloadHeader::kNeedsCsum, 0, 0, 0, 20, uint16_t(udp ? 6 : 16)};
        complete_checksum(h, partial);
        CHECK(verify_sum(partial) == 0xffff);
        CHECK(partial == good);
    }
}

TEST_CASE("offload: the decoder accepts type 0x90 only with a packet its trailer describes") {
    Tins::IP ip("100.64.0.2", "198.18.3.2");
    ip /= Tins::TCP(1, 2) / Tins::RawPDU(std::vector<uint8_t>(5000, 7));
    Bytes pkt = to_bytes(ip.serialize());
    auto envelope = [&](const OffloadHeader& h) {
        Bytes e(kHeaderSize + pkt.size() + kOffloadTrailerSize);
        std::copy(pkt.begin(), pkt.end(), e.begin() + kHeaderSize);
        write_trailer(h, e.data() + kHeaderSize + pkt.size());
        write_header(e.data(), uint8_t(EnvelopeType::ip_packet_offload),
                     pkt.size() + kOffloadTrailerSize);
        return e;
    };
    {
        EnvelopeDecoder d;
        int seen = 0;
        auto e = envelope({OffloadHeader::kNeedsCsum, OffloadHeader::kGsoTcpV4, 40, 1360, 20, 16});
        CHECK(d.feed(e, [&](const Envelope& env) {
            ++seen;
            CHECK(env.payload.size() == pkt.size() + kOffloadTrailerSize);
        }) == DecodeError::none);
        CHECK(seen == 1);
    }
    {
        EnvelopeDecoder d;
        auto e = envelope({0, OffloadHeader::kGsoTcpV6, 40, 1360, 20, 16});
        CHECK(d.feed(e, [](const Envelope&) {}) == DecodeError::bad_offload);
    }
    {
        EnvelopeDecoder d;
        Bytes e(kHeaderSize + 5, std::byte{0});
        write_header(e.data(), uint8_t(EnvelopeType::ip_packet_offload), 5);
        CHECK(d.feed(e, [](const Envelope&) {}) == DecodeError::not_ip_packet);
    }
}

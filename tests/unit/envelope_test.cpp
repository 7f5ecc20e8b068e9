// EnvelopeDecoder and EnvelopeWriter: framing round trips under arbitrary chunking, every decode
// error, the size boundary, and the zero-copy promise for envelopes that lie inside one chunk.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "packet/envelope.hpp"

using namespace porthole::packet;

namespace {

using Bytes = std::vector<std::byte>;

struct Env {
    uint8_t type;
    Bytes payload;
    friend bool operator==(const Env&, const Env&) = default;
};

void put16(Bytes& b, size_t at, size_t v) {
    b[at] = std::byte(v >> 8);
    b[at + 1] = std::byte(v & 0xff);
}

// A well-formed IPv4 (IHL 5..15) or IPv6 packet of the given total size (>= header size).
Bytes ip_packet(std::mt19937& rng, bool v6, size_t total) {
    Bytes p(total);
    for (auto& x : p)
        x = std::byte(rng());
    if (v6) {
        p[0] = std::byte(0x60 | (uint8_t(p[0]) & 0x0f));
        put16(p, 4, total - 40);
    } else {
        size_t ihl = 5 + rng() % 11;
        while (ihl * 4 > total)
            --ihl;
        p[0] = std::byte(0x40 | ihl);
        put16(p, 2, total);
    }
    return p;
}

Bytes random_ip_packet(std::mt19937& rng, size_t max_total = 1500) {
    bool v6 = rng() % 2;
    size_t min = v6 ? 40 : 20;
    size_t total = min + rng() % (max_total - min + 1);
    if (rng() % 4 == 0) total = min + rng() % 16;  // many small ones
    return ip_packet(rng, v6, total);
}

Env random_envelope(std::mt19937& rng) {
    if (rng() % 2) return {uint8_t(EnvelopeType::ip_packet), random_ip_packet(rng)};
    uint8_t type = uint8_t(rng());
    // Types whose payload the decoder validates (IP, IP + offload trailer) are not "unknown".
    if (type == uint8_t(EnvelopeType::ip_packet) ||
        type == uint8_t(EnvelopeType::ip_packet_offload))
        type = 0x42;
    Bytes payload(rng() % 3 == 0 ? 0 : rng() % 200);
    for (auto& x : payload)
        x = std::byte(rng());
    return {type, payload};
}

void append_envelope(Bytes& wire, uint8_t type, const Bytes& payload) {
    size_t at = wire.size();
    wire.resize(at + kHeaderSize + payload.size());
    write_header(wire.data() + at, type, payload.size());
    std::copy(payload.begin(), payload.end(), wire.begin() + long(at + kHeaderSize));
}

Bytes header(uint8_t type, size_t length) {
    return {std::byte(type), std::byte(length >> 8), std::byte(length & 0xff)};
}

// Feeds wire in the given chunk sizes (the last chunk takes the rest), collecting envelopes.
struct Collect {
    std::vector<Env> got;
    DecodeError feed(EnvelopeDecoder& d, std::span<const std::byte> data) {
        return d.feed(data, [&](const Envelope& e) {
            got.push_back({e.type, Bytes(e.payload.begin(), e.payload.end())});
        });
    }
};

size_t biased_chunk(std::mt19937& rng) {
    unsigned r = rng() % 100;
    if (r < 90) return 1 + rng() % 16;
    if (r < 98) return 1 + rng() % 300;
    return 1 + rng() % 4000;
}

}  // namespace

TEST_CASE("Envelope: write_header is Type | Length(BE, whole envelope)") {
    std::byte h[3];
    write_header(h, 0x81, 0x1234 - 3);
    CHECK(h[0] == std::byte{0x81});
    CHECK(h[1] == std::byte{0x12});
    CHECK(h[2] == std::byte{0x34});
    CHECK(fits(kMaxEnvelopeSize - kHeaderSize, kMaxEnvelopeSize));
    CHECK_FALSE(fits(kMaxEnvelopeSize - kHeaderSize + 1, kMaxEnvelopeSize));
}

TEST_CASE("EnvelopeDecoder: one buffer with several envelopes, and the same split at every point") {
    std::mt19937 rng(1);
    std::vector<Env> sent;
    Bytes wire;
    for (int i = 0; i < 6; ++i) {
        sent.push_back(random_envelope(rng));
        append_envelope(wire, sent.back().type, sent.back().payload);
    }
    sent.push_back({0x80, {}});  // header-only control envelope
    append_envelope(wire, 0x80, {});

    {
        EnvelopeDecoder d;
        Collect c;
        CHECK(c.feed(d, wire) == DecodeError::none);
        CHECK(c.got == sent);
        CHECK(d.buffered() == 0);
    }
    for (size_t cut = 0; cut <= wire.size(); ++cut) {
        EnvelopeDecoder d;
        Collect c;
        REQUIRE(c.feed(d, std::span(wire).first(cut)) == DecodeError::none);
        REQUIRE(c.feed(d, std::span(wire).subspan(cut)) == DecodeError::none);
        REQUIRE(c.got == sent);
        CHECK(d.buffered() == 0);
    }
    for (size_t a = 0; a <= wire.size(); a += 7) {
        for (size_t b = a; b <= wire.size(); b += 5) {
            EnvelopeDecoder d;
            Collect c;
            REQUIRE(c.feed(d, std::span(wire).first(a)) == DecodeError::none);
            REQUIRE(c.feed(d, std::span(wire).subspan(a, b - a)) == DecodeError::none);
            REQUIRE(c.feed(d, std::span(wire).subspan(b)) == DecodeError::none);
            REQUIRE(c.got == sent);
        }
    }
}

TEST_CASE("EnvelopeDecoder: random streams in random chunks yield exactly the envelopes sent") {
    auto t0 = std::chrono::steady_clock::now();
    std::mt19937 rng(20240601);
    size_t feeds = 0, envelopes = 0;
    for (int stream = 0; stream < 80; ++stream) {
        std::vector<Env> sent;
        Bytes wire;
        while (wire.size() < 60000) {
            sent.push_back(random_envelope(rng));
            append_envelope(wire, sent.back().type, sent.back().payload);
        }
        for (int pass = 0; pass < 3; ++pass) {
            EnvelopeDecoder d;
            Collect c;
            c.got.reserve(sent.size());
            size_t at = 0;
            while (at < wire.size()) {
                size_t n = std::min(wire.size() - at, biased_chunk(rng));
                if (rng() % 50 == 0) n = 0;  // empty feeds are harmless
                REQUIRE(c.feed(d, std::span(wire).subspan(at, n)) == DecodeError::none);
                at += n;
                ++feeds;
            }
            REQUIRE(c.got.size() == sent.size());
            for (size_t i = 0; i < sent.size(); ++i)
                REQUIRE(c.got[i] == sent[i]);
            CHECK(d.buffered() == 0);
            CHECK(d.error() == DecodeError::none);
            envelopes += sent.size();
        }
    }
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    MESSAGE("fed ", feeds, " chunks, ", envelopes, " envelopes in ", ms, " ms");
    CHECK(feeds > 200000);
}

TEST_CASE("EnvelopeDecoder: one byte at a time") {
    std::mt19937 rng(3);
    std::vector<Env> sent;
    Bytes wire;
    for (int i = 0; i < 200; ++i) {
        sent.push_back(random_envelope(rng));
        append_envelope(wire, sent.back().type, sent.back().payload);
    }
    EnvelopeDecoder d;
    Collect c;
    for (size_t i = 0; i < wire.size(); ++i) {
        REQUIRE(c.feed(d, std::span(wire).subspan(i, 1)) == DecodeError::none);
        // buffered() is the length of the incomplete envelope seen so far
        CHECK(d.buffered() < kMaxEnvelopeSize);
    }
    CHECK(c.got == sent);
}

TEST_CASE("EnvelopeDecoder: envelopes inside one chunk are views into it (no copy)") {
    std::mt19937 rng(4);
    Bytes wire;
    std::vector<size_t> offsets;
    for (int i = 0; i < 20; ++i) {
        auto e = random_envelope(rng);
        offsets.push_back(wire.size());
        append_envelope(wire, e.type, e.payload);
    }
    EnvelopeDecoder d;
    std::vector<const std::byte*> ptrs;
    std::vector<size_t> sizes;
    REQUIRE(d.feed(wire, [&](const Envelope& e) {
        ptrs.push_back(e.payload.data());
        sizes.push_back(e.payload.size());
    }) == DecodeError::none);
    REQUIRE(ptrs.size() == offsets.size());
    for (size_t i = 0; i < ptrs.size(); ++i) {
        // an empty span may carry any pointer; a non-empty one must point into the input
        if (sizes[i] > 0) CHECK(ptrs[i] == wire.data() + offsets[i] + kHeaderSize);
    }

    // A straddling envelope comes from the decoder's buffer; the following whole ones are views.
    Bytes a(wire.begin(), wire.begin() + long(offsets[1] + 2));
    Bytes b(wire.begin() + long(offsets[1] + 2), wire.end());
    EnvelopeDecoder d2;
    std::vector<const std::byte*> p2;
    REQUIRE(d2.feed(a, [&](const Envelope& e) { p2.push_back(e.payload.data()); }) ==
            DecodeError::none);
    REQUIRE(p2.size() == 1);
    REQUIRE(d2.feed(b, [&](const Envelope& e) { p2.push_back(e.payload.data()); }) ==
            DecodeError::none);
    REQUIRE(p2.size() == offsets.size());
    bool second_in_b = p2[1] >= b.data() && p2[1] < b.data() + b.size();
    CHECK_FALSE(second_in_b);
    for (size_t i = 2; i < p2.size(); ++i)
        if (sizes[i] > 0) CHECK(p2[i] == b.data() + (offsets[i] - offsets[1] - 2) + kHeaderSize);
}

TEST_CASE("EnvelopeDecoder: the rest of a straddling envelope read in place (partial_room)") {
    std::mt19937 rng(20261126);
    size_t in_place = 0;
    for (int stream = 0; stream < 40; ++stream) {
        std::vector<Env> sent;
        Bytes wire;
        while (wire.size() < 30000) {
            // IP packets up to 9000 octets: most straddle the chunks below.
            if (rng() % 3 == 0) {
                sent.push_back({uint8_t(EnvelopeType::ip_packet), random_ip_packet(rng, 9000)});
            } else {
                sent.push_back(random_envelope(rng));
            }
            append_envelope(wire, sent.back().type, sent.back().payload);
        }
        EnvelopeDecoder d;
        Collect c;
        size_t at = 0;
        while (at < wire.size()) {
            size_t n = std::min(wire.size() - at, 1 + rng() % 2000);
            auto room = d.partial_room();
            if (!room.empty() && rng() % 4 != 0) {
                // As a TLS read would: at most the room, possibly less.
                n = std::min(n, room.size());
                std::copy_n(wire.begin() + long(at), n, room.begin());
                bool completes = n == room.size();
                size_t before = c.got.size();
                REQUIRE(d.commit_partial(n, [&](const Envelope& e) {
                    // the envelope is handed out where it was read: no second copy
                    CHECK(e.payload.data() + e.payload.size() == room.data() + room.size());
                    c.got.push_back({e.type, Bytes(e.payload.begin(), e.payload.end())});
                }) == DecodeError::none);
                CHECK(c.got.size() == before + (completes ? 1 : 0));
                CHECK(d.partial_room().empty() == completes);
                ++in_place;
            } else {
                REQUIRE(c.feed(d, std::span(wire).subspan(at, n)) == DecodeError::none);
            }
            at += n;
        }
        REQUIRE(c.got == sent);
        CHECK(d.buffered() == 0);
        CHECK(d.partial_room().empty());
    }
    CHECK(in_place > 500);  // the in-place path was taken often
}

TEST_CASE("EnvelopeDecoder: partial_room is empty until the header is known, and after an error") {
    EnvelopeDecoder d;
    Collect c;
    CHECK(d.partial_room().empty());  // nothing received
    Bytes h = header(uint8_t(EnvelopeType::ip_packet), kHeaderSize + 20);
    REQUIRE(c.feed(d, std::span(h).first(2)) == DecodeError::none);
    CHECK(d.partial_room().empty());  // Length not complete yet
    REQUIRE(c.feed(d, std::span(h).subspan(2)) == DecodeError::none);
    auto room = d.partial_room();
    REQUIRE(room.size() == 20);
    // An IPv4 header whose version nibble is wrong, completed in place: the error is reported and
    // the decoder stays failed.
    std::fill(room.begin(), room.end(), std::byte(0x55));
    CHECK(d.commit_partial(room.size(), [&](const Envelope&) {
        FAIL("a bad envelope was delivered");
    }) == DecodeError::not_ip_packet);
    CHECK(d.error() == DecodeError::not_ip_packet);
    CHECK(d.partial_room().empty());
    CHECK(d.commit_partial(1, [](const Envelope&) {}) == DecodeError::not_ip_packet);
    CHECK(c.got.empty());
}

TEST_CASE("EnvelopeDecoder: the maximum envelope size is inclusive") {
    for (size_t max : {size_t(64), size_t(1500), size_t(4000)}) {
        std::mt19937 rng{unsigned(max)};
        CAPTURE(max);
        {  // exactly max: accepted (an unknown type and an IP packet)
            EnvelopeDecoder d(max);
            CHECK(d.max_envelope() == max);
            Bytes wire;
            append_envelope(wire, 0x99, Bytes(max - kHeaderSize));
            append_envelope(wire, 1, ip_packet(rng, false, max - kHeaderSize));
            append_envelope(wire, 1, ip_packet(rng, true, max - kHeaderSize));
            Collect c;
            CHECK(c.feed(d, wire) == DecodeError::none);
            CHECK(c.got.size() == 3);
        }
        {  // max + 1: rejected as soon as the header is complete, before the payload arrives
            EnvelopeDecoder d(max);
            Collect c;
            auto h = header(0x99, max + 1);
            CHECK(c.feed(d, std::span(h).first(2)) == DecodeError::none);
            CHECK(c.feed(d, std::span(h).subspan(2)) == DecodeError::length_too_large);
            CHECK(d.error() == DecodeError::length_too_large);
        }
        {
            EnvelopeDecoder d(max);
            Collect c;
            auto h = header(0x01, max + 1);
            CHECK(c.feed(d, h) == DecodeError::length_too_large);
        }
    }
    // The default maximum is the Length field's own limit: 65535 is fine.
    EnvelopeDecoder d;
    std::mt19937 rng(9);
    Bytes wire;
    append_envelope(wire, 1, ip_packet(rng, false, kMaxEnvelopeSize - kHeaderSize));
    append_envelope(wire, 1, ip_packet(rng, true, kMaxEnvelopeSize - kHeaderSize));
    Collect c;
    for (size_t at = 0; at < wire.size(); at += 1000)
        REQUIRE(c.feed(d, std::span(wire).subspan(at, std::min<size_t>(1000, wire.size() - at))) ==
                DecodeError::none);
    CHECK(c.got.size() == 2);
    // A configured maximum is clamped to [4, 65535].
    CHECK(EnvelopeDecoder(0).max_envelope() == kMinIpEnvelopeSize);
    CHECK(EnvelopeDecoder(1 << 20).max_envelope() == kMaxEnvelopeSize);
}

namespace {
// Feeds `bad` after a valid envelope, whole and byte by byte; expects err and a failed decoder
// that delivered only the valid envelope and refuses any further input.
void expect_error(const Bytes& bad, DecodeError err) {
    std::mt19937 rng(5);
    Bytes good;
    auto pkt = random_ip_packet(rng);
    append_envelope(good, 1, pkt);
    Bytes wire = good;
    wire.insert(wire.end(), bad.begin(), bad.end());
    Bytes more;
    append_envelope(more, 1, pkt);

    for (bool bytewise : {false, true}) {
        CAPTURE(bytewise);
        EnvelopeDecoder d;
        Collect c;
        DecodeError got = DecodeError::none;
        if (bytewise) {
            for (size_t i = 0; i < wire.size() && got == DecodeError::none; ++i)
                got = c.feed(d, std::span(wire).subspan(i, 1));
        } else {
            got = c.feed(d, wire);
        }
        CHECK(got == err);
        CHECK(d.error() == err);
        CHECK(c.got.size() == 1);
        // stays failed: more valid input is refused and delivers nothing
        CHECK(c.feed(d, more) == err);
        CHECK(c.feed(d, {}) == err);
        CHECK(c.got.size() == 1);
    }
    CHECK_FALSE(to_string(err).empty());
}
}  // namespace

TEST_CASE("EnvelopeDecoder: every error, and the decoder stays failed") {
    std::mt19937 rng(6);
    SUBCASE("Length < 3") {
        for (size_t len : {0, 1, 2})
            expect_error(header(0x80, len), DecodeError::length_too_small);
        expect_error(header(0x01, 2), DecodeError::length_too_small);
    }
    SUBCASE("IP packet with Length 3 (no payload)") {
        expect_error(header(0x01, 3), DecodeError::length_too_small);
    }
    SUBCASE("non-IP types may be header-only") {
        EnvelopeDecoder d;
        Collect c;
        CHECK(c.feed(d, header(0x80, 3)) == DecodeError::none);
        CHECK(c.feed(d, header(0xff, 3)) == DecodeError::none);
        CHECK(c.feed(d, header(0x00, 3)) == DecodeError::none);
        CHECK(c.got.size() == 3);
    }
    SUBCASE("IP payload with a bad version") {
        for (uint8_t v : {0, 1, 5, 7, 15}) {
            auto p = ip_packet(rng, false, 60);
            p[0] = std::byte(v << 4 | 5);
            Bytes w;
            append_envelope(w, 1, p);
            expect_error(w, DecodeError::not_ip_packet);
        }
    }
    SUBCASE("IPv4 total length mismatch") {
        for (int delta : {-1, 1, 100}) {
            auto p = ip_packet(rng, false, 60);
            put16(p, 2, size_t(60 + delta));
            Bytes w;
            append_envelope(w, 1, p);
            expect_error(w, DecodeError::not_ip_packet);
        }
    }
    SUBCASE("IPv4 IHL < 5 and IHL beyond the packet") {
        for (uint8_t ihl : {0, 1, 4}) {
            auto p = ip_packet(rng, false, 60);
            p[0] = std::byte(0x40 | ihl);
            Bytes w;
            append_envelope(w, 1, p);
            expect_error(w, DecodeError::not_ip_packet);
        }
        auto p = ip_packet(rng, false, 24);
        p[0] = std::byte(0x4f);  // 60-byte header in a 24-byte packet
        Bytes w;
        append_envelope(w, 1, p);
        expect_error(w, DecodeError::not_ip_packet);
    }
    SUBCASE("IPv4 shorter than its header") {
        Bytes p(19);
        p[0] = std::byte(0x45);
        put16(p, 2, 19);
        Bytes w;
        append_envelope(w, 1, p);
        expect_error(w, DecodeError::not_ip_packet);
    }
    SUBCASE("IPv6 payload length mismatch and short header") {
        for (int delta : {-1, 1, 1000}) {
            auto p = ip_packet(rng, true, 100);
            put16(p, 4, size_t(60 + delta));
            Bytes w;
            append_envelope(w, 1, p);
            expect_error(w, DecodeError::not_ip_packet);
        }
        Bytes p(39);
        p[0] = std::byte(0x60);
        Bytes w;
        append_envelope(w, 1, p);
        expect_error(w, DecodeError::not_ip_packet);
    }
    SUBCASE("Length above the maximum") {
        EnvelopeDecoder d(100);
        Collect c;
        CHECK(c.feed(d, header(0x42, 101)) == DecodeError::length_too_large);
        CHECK(c.feed(d, header(0x42, 3)) == DecodeError::length_too_large);
        CHECK(c.got.empty());
    }
}

TEST_CASE("EnvelopeWriter: payload_space/commit, append, and refusal without writing") {
    Bytes buf(64, std::byte{0xee});
    EnvelopeWriter w(buf.data(), buf.size());
    CHECK(w.size() == 0);
    CHECK(w.room() == 64);

    auto space = w.payload_space();
    REQUIRE(space.size() == 61);
    CHECK(space.data() == buf.data() + 3);
    for (size_t i = 0; i < 10; ++i)
        space[i] = std::byte(i);
    w.commit(0x01, 10);
    CHECK(w.size() == 13);
    CHECK(w.room() == 51);

    Bytes pay(20, std::byte{0x5a});
    CHECK(w.append(0x82, pay));
    CHECK(w.size() == 36);

    // 28 bytes left: 25 fits exactly, 26 does not and must not touch the buffer.
    Bytes big(26, std::byte{0x11});
    Bytes before = buf;
    CHECK_FALSE(w.append(0x83, big));
    CHECK(w.size() == 36);
    CHECK(buf == before);
    CHECK(w.append(0x83, std::span(big).first(25)));
    CHECK(w.room() == 0);
    CHECK(w.payload_space().empty());
    CHECK_FALSE(w.append(0x80, {}));

    // What was written decodes back to the same three envelopes.
    EnvelopeDecoder d;
    Collect c;
    // first payload is not a valid IP packet: decode with the non-IP type for this check
    buf[0] = std::byte{0x70};
    REQUIRE(c.feed(d, buf) == DecodeError::none);
    REQUIRE(c.got.size() == 3);
    CHECK(c.got[0].payload.size() == 10);
    CHECK(c.got[0].payload[9] == std::byte{9});
    CHECK(c.got[1] == Env{0x82, pay});
    CHECK(c.got[2] == Env{0x83, Bytes(25, std::byte{0x11})});
}

TEST_CASE("EnvelopeWriter: header-only room and the 64 KiB cap on payload_space") {
    Bytes small(3);
    EnvelopeWriter w(small.data(), small.size());
    CHECK(w.payload_space().empty());  // a header alone leaves no payload space
    CHECK(w.append(0x80, {}));         // but a header-only envelope fits
    CHECK(w.size() == 3);

    Bytes huge(200000);
    EnvelopeWriter h(huge.data(), huge.size());
    CHECK(h.payload_space().size() == kMaxEnvelopeSize - kHeaderSize);
    Bytes too_big(kMaxEnvelopeSize - kHeaderSize + 1);
    CHECK_FALSE(h.append(0x42, too_big));
    CHECK(h.size() == 0);
    CHECK(h.append(0x42, std::span(too_big).first(kMaxEnvelopeSize - kHeaderSize)));
    CHECK(h.size() == kMaxEnvelopeSize);
}

TEST_CASE("EnvelopeWriter + EnvelopeDecoder: random batches round trip") {
    std::mt19937 rng(8);
    for (int round = 0; round < 300; ++round) {
        Bytes buf(1 + rng() % 5000);
        EnvelopeWriter w(buf.data(), buf.size());
        std::vector<Env> sent;
        for (;;) {
            auto e = random_envelope(rng);
            bool use_space = rng() % 2;
            if (use_space) {
                auto s = w.payload_space();
                if (s.size() < e.payload.size()) break;
                std::copy(e.payload.begin(), e.payload.end(), s.begin());
                w.commit(e.type, e.payload.size());
            } else if (!w.append(e.type, e.payload)) {
                break;
            }
            sent.push_back(e);
        }
        EnvelopeDecoder d;
        Collect c;
        size_t at = 0;
        while (at < w.size()) {
            size_t n = std::min(w.size() - at, biased_chunk(rng));
            REQUIRE(c.feed(d, std::span(buf).subspan(at, n)) == DecodeError::none);
            at += n;
        }
        CHECK(c.got == sent);
        CHECK(d.buffered() == 0);
    }
}

// Control messages: round trips with every field, decode errors, unknown attributes skipped and
// unknown types rejected. Attributes are built by hand here (Type(1) | Length(2) | Value) so the
// decoder is checked against the documented layout, not against its own encoder only.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "packet/control_message.hpp"
#include "test_wire.hpp"

using namespace porthole::test;
using namespace porthole::packet;
using porthole::IpAddress;
using porthole::Prefix;

namespace {

Bytes token(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i)
        b[i] = std::byte(uint8_t(seed * 31 + i));
    return b;
}

struct AttrBuilder {
    Bytes out;
    AttrBuilder& raw(uint8_t type, std::initializer_list<uint8_t> v) {
        return bytes(type, Bytes(reinterpret_cast<const std::byte*>(v.begin()),
                                 reinterpret_cast<const std::byte*>(v.end())));
    }
    AttrBuilder& bytes(uint8_t type, const Bytes& v) {
        out.push_back(std::byte(type));
        out.push_back(std::byte(v.size() >> 8));
        out.push_back(std::byte(v.size() & 0xff));
        out.insert(out.end(), v.begin(), v.end());
        return *this;
    }
    AttrBuilder& prefix(uint8_t type, const Prefix& p) {
        Bytes v;
        for (auto b : p.addr.bytes())
            v.push_back(std::byte(b));
        v.push_back(std::byte(p.len));
        return bytes(type, v);
    }
};

// Encodes msg, checks the envelope header, decodes the payload back.
ControlMessage round_trip(const ControlMessage& msg, uint8_t want_type) {
    Bytes wire{std::byte{0xaa}};  // encode appends: a prefix must survive
    encode(msg, wire);
    REQUIRE(wire.size() >= 1 + kHeaderSize);
    CHECK(wire[0] == std::byte{0xaa});
    CHECK(uint8_t(wire[1]) == want_type);
    size_t length = size_t(wire[2]) << 8 | size_t(wire[3]);
    CHECK(length == wire.size() - 1);
    CHECK(is_control_type(want_type));
    auto back = decode(want_type, std::span(wire).subspan(1 + kHeaderSize));
    REQUIRE_MESSAGE(back.has_value(), (back.has_value() ? "" : back.error().message));
    return *back;
}

ConfigAssign full_assign() {
    ConfigAssign a;
    a.ipv4 = P("198.18.0.7/24");
    a.ipv6 = P("fd00:1::7/64");
    a.routes = {P("10.0.0.0/8"), P("192.168.0.0/16"), P("2001:db8::/32"), P("0.0.0.0/0")};
    a.dns = {A("198.18.0.1"), A("fd00:1::1")};
    a.dns_search = {"corp.example", "lab.example."};
    a.mtu = 1380;
    a.keepalive_s = 25;
    a.session_token = token(64, 3);
    return a;
}

std::string error_of(uint8_t type, const Bytes& payload) {
    auto r = decode(type, payload);
    REQUIRE_FALSE(r.has_value());
    CHECK_FALSE(r.error().message.empty());
    return r.error().message;
}

bool contains(const std::string& s, const char* what) {
    return s.find(what) != std::string::npos;
}

constexpr uint8_t kReq = uint8_t(EnvelopeType::config_request);
constexpr uint8_t kAssign = uint8_t(EnvelopeType::config_assign);
constexpr uint8_t kKaReq = uint8_t(EnvelopeType::keepalive_request);
constexpr uint8_t kKaRep = uint8_t(EnvelopeType::keepalive_reply);
constexpr uint8_t kClose = uint8_t(EnvelopeType::close);

}  // namespace

TEST_CASE("control: is_control_type covers exactly 0x80..0x84") {
    for (unsigned t = 0; t < 256; ++t)
        CHECK(is_control_type(uint8_t(t)) == (t >= 0x80 && t <= 0x84));
}

TEST_CASE("control: ConfigRequest round trip with every field") {
    ConfigRequest r;
    r.version = 1;
    r.capabilities = cap_ipv4 | cap_resume | 0x80000000u;
    r.credential = token(300, 1);
    r.session_token = token(64, 2);
    CHECK(std::get<ConfigRequest>(round_trip(r, kReq)) == r);

    ConfigRequest minimal;
    minimal.capabilities = 0;
    CHECK(std::get<ConfigRequest>(round_trip(minimal, kReq)) == minimal);
}

TEST_CASE("control: ConfigAssign round trip with every field") {
    auto a = full_assign();
    CHECK(std::get<ConfigAssign>(round_trip(a, kAssign)) == a);

    ConfigAssign v6_only;
    v6_only.ipv6 = P("2001:db8:1::2/128");
    v6_only.mtu = 576;  // the minimum
    v6_only.keepalive_s = 0;
    CHECK(std::get<ConfigAssign>(round_trip(v6_only, kAssign)) == v6_only);

    // routes are delivered as networks (host bits cleared)
    ConfigAssign hosty;
    hosty.ipv4 = P("10.1.2.3/8");
    hosty.routes = {P("10.1.2.3/8"), P("2001:db8::1/32")};
    auto back = std::get<ConfigAssign>(round_trip(hosty, kAssign));
    CHECK(back.routes == std::vector<Prefix>{P("10.0.0.0/8"), P("2001:db8::/32")});
    CHECK(back.ipv4 == P("10.1.2.3/8"));  // the UE's own address keeps its host bits
}

TEST_CASE("control: Keepalive request and reply round trip") {
    std::mt19937_64 rng(1);
    for (int i = 0; i < 100; ++i) {
        Keepalive k{i % 2 == 1, rng()};
        CHECK(std::get<Keepalive>(round_trip(k, k.reply ? kKaRep : kKaReq)) == k);
    }
    Keepalive max{false, ~uint64_t(0)};
    CHECK(std::get<Keepalive>(round_trip(max, kKaReq)) == max);
}

TEST_CASE("control: Close round trip, and reason text capped at 512 octets") {
    for (auto reason : {CloseReason::normal, CloseReason::protocol_error, CloseReason::server_full,
                        CloseReason::peer_dead}) {
        Close c{reason, "because: ünïcødé"};
        CHECK(std::get<Close>(round_trip(c, kClose)) == c);
        CHECK_FALSE(to_string(reason).empty());
    }
    Close empty{CloseReason::admin, ""};
    CHECK(std::get<Close>(round_trip(empty, kClose)) == empty);

    Close long_text{CloseReason::shutdown, std::string(2000, 'x')};
    auto back = std::get<Close>(round_trip(long_text, kClose));
    CHECK(back.reason == CloseReason::shutdown);
    CHECK(back.text == std::string(kMaxReasonText, 'x'));

    // a peer that sends a longer text is cut on decode too
    AttrBuilder b;
    b.raw(0x30, {0, 4}).bytes(0x31, Bytes(700, std::byte{'y'}));
    auto d = decode(kClose, b.out);
    REQUIRE(d.has_value());
    CHECK(std::get<Close>(*d).text.size() == kMaxReasonText);
    CHECK(std::get<Close>(*d).reason == CloseReason::protocol_error);
}

TEST_CASE("control: hand-built payloads decode per the documented layout") {
    AttrBuilder b;
    b.raw(0x10, {198, 18, 0, 9, 24})
        .raw(0x14, {0x05, 0x78})  // MTU 1400
        .raw(0x15, {0, 30})
        .raw(0x13, {8, 8, 8, 8})
        .raw(0x12, {10, 0, 0, 0, 8});
    auto d = decode(kAssign, b.out);
    REQUIRE(d.has_value());
    auto& a = std::get<ConfigAssign>(*d);
    CHECK(a.ipv4 == P("198.18.0.9/24"));
    CHECK_FALSE(a.ipv6.has_value());
    CHECK(a.mtu == 1400);
    CHECK(a.keepalive_s == 30);
    CHECK(a.dns == std::vector<IpAddress>{A("8.8.8.8")});
    CHECK(a.routes == std::vector<Prefix>{P("10.0.0.0/8")});

    AttrBuilder k;
    k.raw(0x20, {1, 2, 3, 4, 5, 6, 7, 8});
    auto kd = decode(kKaRep, k.out);
    REQUIRE(kd.has_value());
    CHECK(std::get<Keepalive>(*kd).timestamp_us == 0x0102030405060708ull);
    CHECK(std::get<Keepalive>(*kd).reply);
}

TEST_CASE("control: unknown attributes are skipped by length, anywhere") {
    AttrBuilder b;
    b.raw(0x7f, {1, 2, 3})
        .raw(0x01, {1})
        .bytes(0xee, Bytes(1000, std::byte{0x10}))
        .raw(0x02, {0, 0, 0, 3})
        .raw(0x55, {});
    auto d = decode(kReq, b.out);
    REQUIRE(d.has_value());
    CHECK(std::get<ConfigRequest>(*d).version == 1);
    CHECK(std::get<ConfigRequest>(*d).capabilities == 3);

    // An attribute that belongs to another message is ignored too (timestamp in a request).
    AttrBuilder c;
    c.raw(0x20, {1}).raw(0x01, {1});
    CHECK(decode(kReq, c.out).has_value());

    // Unknown attributes in every message type.
    for (uint8_t t : {kAssign, kKaReq, kKaRep, kClose}) {
        Bytes wire;
        ControlMessage m = t == kAssign  ? ControlMessage(full_assign())
                           : t == kClose ? ControlMessage(Close{CloseReason::admin, "x"})
                                         : ControlMessage(Keepalive{t == kKaRep, 77});
        encode(m, wire);
        AttrBuilder extra;
        extra.raw(0xfe, {9, 9}).raw(0x40, {});
        Bytes payload = extra.out;
        payload.insert(payload.end(), wire.begin() + kHeaderSize, wire.end());
        payload.insert(payload.end(), extra.out.begin(), extra.out.end());
        auto r = decode(t, payload);
        REQUIRE(r.has_value());
        CHECK(*r == m);
    }
}

TEST_CASE("control: decode errors") {
    SUBCASE("truncated attribute header and value") {
        AttrBuilder ok;
        ok.raw(0x01, {1});
        Bytes p = ok.out;
        p.push_back(std::byte{0x02});
        p.push_back(std::byte{0x00});  // 2 of 3 header octets
        CHECK(contains(error_of(kReq, p), "truncated"));

        AttrBuilder longer;
        longer.raw(0x01, {1});
        Bytes q = longer.out;
        q.insert(q.end(), {std::byte{0x02}, std::byte{0}, std::byte{4}, std::byte{0}});
        error_of(kReq, q);  // capabilities says 4 octets, 1 present
        for (uint8_t t : {kAssign, kKaReq, kClose})
            error_of(t, {std::byte{0x20}});
    }
    SUBCASE("wrong sizes") {
        CHECK(contains(error_of(kReq, AttrBuilder().raw(0x01, {1, 0}).out), "version"));
        error_of(kReq, AttrBuilder().raw(0x01, {}).out);
        CHECK(contains(error_of(kReq, AttrBuilder().raw(0x01, {1}).raw(0x02, {0, 0, 1}).out),
                       "capabilities"));
        error_of(kReq, AttrBuilder().raw(0x01, {1}).bytes(0x04, token(65, 1)).out);  // token > 64
        error_of(kKaReq, AttrBuilder().raw(0x20, {1, 2, 3, 4, 5, 6, 7}).out);
        error_of(kKaRep, AttrBuilder().raw(0x20, {1, 2, 3, 4, 5, 6, 7, 8, 9}).out);
        error_of(kClose, AttrBuilder().raw(0x30, {4}).out);
        AttrBuilder base;
        base.raw(0x10, {10, 0, 0, 2, 24});
        auto with = [&](uint8_t t, std::initializer_list<uint8_t> v) {
            AttrBuilder b = base;
            b.raw(t, v);
            return b.out;
        };
        CHECK(contains(error_of(kAssign, with(0x14, {5})), "MTU"));
        error_of(kAssign, with(0x14, {0, 5, 0x78}));
        error_of(kAssign, with(0x15, {20}));
        error_of(kAssign, with(0x13, {8, 8, 8}));          // DNS of 3 octets
        error_of(kAssign, with(0x12, {10, 0, 0, 8}));      // route of 4 (no length)
        error_of(kAssign, with(0x12, {}));                 // empty route
        error_of(kAssign, with(0x11, {10, 0, 0, 2, 24}));  // v4 in the v6 attribute
        error_of(kAssign, AttrBuilder().prefix(0x10, P("2001:db8::2/64")).out);  // v6 in v4
        AttrBuilder long_token = base;
        long_token.raw(0x14, {5, 0x78}).bytes(0x04, token(65, 1));
        CHECK(contains(error_of(kAssign, long_token.out), "token"));
    }
    SUBCASE("prefix length too long") {
        CHECK(contains(error_of(kAssign, AttrBuilder().raw(0x10, {10, 0, 0, 2, 33}).out),
                       "too long"));
        Bytes v6(16, std::byte{0});
        v6.push_back(std::byte{129});
        error_of(kAssign, AttrBuilder().bytes(0x11, v6).out);
        error_of(kAssign,
                 AttrBuilder().raw(0x10, {10, 0, 0, 2, 24}).raw(0x12, {10, 0, 0, 0, 40}).out);
        // exactly the width is fine
        CHECK(decode(kAssign, AttrBuilder().raw(0x10, {10, 0, 0, 2, 32}).raw(0x14, {2, 64}).out)
                  .has_value());
    }
    SUBCASE("no address in an assignment") {
        auto a = full_assign();
        a.ipv4.reset();
        a.ipv6.reset();
        Bytes wire;
        encode(a, wire);
        CHECK(contains(error_of(kAssign, Bytes(wire.begin() + kHeaderSize, wire.end())),
                       "no address"));
        error_of(kAssign, {});
    }
    SUBCASE("MTU below 576, or missing") {
        auto a = full_assign();
        a.mtu = 575;
        Bytes wire;
        encode(a, wire);
        CHECK(contains(error_of(kAssign, Bytes(wire.begin() + kHeaderSize, wire.end())), "MTU"));
        error_of(kAssign, AttrBuilder().raw(0x10, {10, 0, 0, 2, 24}).out);  // no MTU at all
    }
    SUBCASE("missing protocol version") {
        CHECK(contains(error_of(kReq, AttrBuilder().raw(0x02, {0, 0, 0, 1}).out), "version"));
        error_of(kReq, {});
    }
    SUBCASE("not a control type") {
        for (uint8_t t : {0x00, 0x01, 0x7f, 0x85, 0xff})
            error_of(t, {});
    }
}

TEST_CASE("control: DNS search domains (0x16): layout, order, bounds") {
    auto text = [](std::string_view s) {
        return Bytes(reinterpret_cast<const std::byte*>(s.data()),
                     reinterpret_cast<const std::byte*>(s.data() + s.size()));
    };
    AttrBuilder base;
    base.raw(0x10, {10, 0, 0, 2, 24}).raw(0x14, {5, 0x78});
    SUBCASE("repeatable, kept in order and byte for byte") {
        AttrBuilder b = base;
        b.bytes(0x16, text("b.example")).bytes(0x16, text("A-1.Example.")).bytes(0x16, text("x_y"));
        auto m = decode(kAssign, b.out);
        REQUIRE(m.has_value());
        CHECK(std::get<ConfigAssign>(*m).dns_search ==
              std::vector<std::string>{"b.example", "A-1.Example.", "x_y"});
    }
    SUBCASE("anything that could break a resolver configuration line is refused") {
        for (std::string_view bad : {"", ".", "a..b", ".a", "a b", "a\nnameserver 1.2.3.4", "a\tb",
                                     "a;b", "a/b", "é.example"}) {
            AttrBuilder b = base;
            std::string s(bad);
            b.bytes(0x16, text(s));
            CAPTURE(s);
            CHECK(contains(error_of(kAssign, b.out), "search domain"));
        }
        AttrBuilder nul = base;
        nul.bytes(0x16, text(std::string("a\0b", 3)));
        error_of(kAssign, nul.out);
    }
    SUBCASE("label and name lengths") {
        std::string label63(63, 'a'), label64(64, 'a');
        CHECK(valid_domain_name(label63 + ".example"));
        CHECK_FALSE(valid_domain_name(label64 + ".example"));
        std::string name253;
        while (name253.size() + 4 <= 253)
            name253 += "abc.";
        name253 += std::string(253 - name253.size(), 'z');
        REQUIRE(name253.size() == 253);
        CHECK(valid_domain_name(name253));
        CHECK_FALSE(valid_domain_name(name253 + "z"));
        CHECK(valid_domain_name("example."));
    }
    SUBCASE("at most kMaxDnsSearch of them") {
        AttrBuilder b = base;
        for (size_t i = 0; i < kMaxDnsSearch; ++i)
            b.bytes(0x16, text(fmt::format("d{}.example",
                                           i)));  // no string temporaries: g++ 12 -O3 -Wrestrict
        CHECK(decode(kAssign, b.out).has_value());
        b.bytes(0x16, text("one-more.example"));
        CHECK(contains(error_of(kAssign, b.out), "search domains"));
    }
}

TEST_CASE("control: keep-alive and close tolerate missing attributes") {
    auto k = decode(kKaReq, {});
    REQUIRE(k.has_value());
    CHECK(std::get<Keepalive>(*k) == Keepalive{false, 0});
    auto c = decode(kClose, {});
    REQUIRE(c.has_value());
    CHECK(std::get<Close>(*c).reason == CloseReason::normal);
    // an unknown reason code survives as a number
    auto u = decode(kClose, AttrBuilder().raw(0x30, {0x12, 0x34}).out);
    REQUIRE(u.has_value());
    CHECK(uint16_t(std::get<Close>(*u).reason) == 0x1234);
    CHECK_FALSE(to_string(std::get<Close>(*u).reason).empty());
}

TEST_CASE("control: random messages round trip") {
    std::mt19937_64 rng(7);
    auto rprefix = [&](bool v6) {
        std::array<std::byte, 16> b{};
        for (auto& x : b)
            x = std::byte(rng());
        auto a = v6 ? IpAddress::v6_bytes(b)
                    : IpAddress::v4_bytes(std::span<const std::byte, 4>(b.data(), 4));
        return Prefix{a, uint8_t(rng() % (a.bits() + 1))};
    };
    for (int i = 0; i < 500; ++i) {
        ConfigAssign a;
        if (rng() % 2) a.ipv4 = rprefix(false);
        if (!a.ipv4 || rng() % 2) a.ipv6 = rprefix(true);
        for (size_t n = rng() % 6; n > 0; --n)
            a.routes.push_back(rprefix(rng() % 2).network());
        for (size_t n = rng() % 4; n > 0; --n)
            a.dns.push_back(rprefix(rng() % 2).addr);
        for (size_t n = rng() % 3; n > 0; --n)
            a.dns_search.push_back(fmt::format("d{}.example", rng() % 1000));
        a.mtu = uint16_t(576 + rng() % (65536 - 576));
        a.keepalive_s = uint16_t(rng());
        a.session_token = token(rng() % 65, uint8_t(i));
        CHECK(std::get<ConfigAssign>(round_trip(a, kAssign)) == a);

        ConfigRequest r;
        r.version = uint8_t(rng());
        r.capabilities = uint32_t(rng());
        r.credential = token(rng() % 200, uint8_t(i + 1));
        r.session_token = token(rng() % 65, uint8_t(i + 2));
        CHECK(std::get<ConfigRequest>(round_trip(r, kReq)) == r);
    }
}

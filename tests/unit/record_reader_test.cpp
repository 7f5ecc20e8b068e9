// RecordReader (src/tls/record_reader.hpp) fed records sealed by RecordProtection under a known
// traffic secret: application data into buffers of every size, the peer's KeyUpdates,
// close_notify and alerts, and everything it must refuse. (tls_test.cpp runs it against a stock
// OpenSSL peer.)
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "tls/record_reader.hpp"

using porthole::tls::RecordProtection;
using porthole::tls::RecordReader;
using Status = RecordReader::Status;

namespace {

std::vector<uint8_t> secret_of(size_t len, uint8_t seed) {
    std::vector<uint8_t> s(len);
    for (size_t i = 0; i < len; ++i)
        s[i] = uint8_t(seed + 7 * i);
    return s;
}

// The sending side: seals records of any type under the same secret the reader was given.
struct Peer {
    RecordProtection seal;
    std::vector<uint8_t> secret;
    std::vector<uint8_t> wire;
    explicit Peer(RecordProtection::Cipher c, std::vector<uint8_t> s, uint64_t seq = 0)
        : secret(std::move(s)) {
        REQUIRE(seal.set_secret(c, secret, seq));
    }
    void record(uint8_t type, std::vector<uint8_t> plaintext) {
        std::vector<uint8_t> out(plaintext.size() + RecordProtection::kOverhead);
        size_t n = seal.seal(type, plaintext, out.data());
        REQUIRE(n == out.size());
        wire.insert(wire.end(), out.begin(), out.end());
    }
    void key_update(bool requested) {
        record(22, {24, 0, 0, 1, uint8_t(requested ? 1 : 0)});
        std::vector<uint8_t> next(secret.size());
        REQUIRE(RecordProtection::next_secret(secret, next.data()));
        secret = next;
        REQUIRE(seal.update_from_secret(secret));
    }
};

std::vector<uint8_t> data_of(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = uint8_t(seed + i * 13);
    return v;
}

// Reads everything available with buffers of `chunk` bytes.
std::vector<uint8_t> drain(RecordReader& r, size_t chunk, Status* last = nullptr) {
    std::vector<uint8_t> got;
    std::vector<std::byte> buf(chunk);
    for (int i = 0; i < 100000; ++i) {
        auto res = r.read(buf);
        if (res.status != Status::ok) {
            if (last != nullptr) *last = res.status;
            break;
        }
        REQUIRE(res.bytes > 0);
        REQUIRE(res.bytes <= chunk);
        auto* p = reinterpret_cast<const uint8_t*>(buf.data());
        got.insert(got.end(), p, p + res.bytes);
    }
    return got;
}

void start(RecordReader& r, RecordProtection::Cipher c, const std::vector<uint8_t>& secret,
           uint64_t records_before = 0) {
    r.peer_secret(secret, true);
    r.handshake_done();
    for (uint64_t i = 0; i < records_before; ++i)
        r.record_seen();
    REQUIRE(r.start(c));
}

}  // namespace

TEST_CASE("record reader: application data into buffers of every size, both AES-GCM suites") {
    if (!RecordProtection::available()) {
        MESSAGE("built without ipsec-mb or no AES-NI: OpenSSL receives");
        RecordReader r(-1, true);
        r.peer_secret(secret_of(32, 1), true);
        CHECK_FALSE(r.start(RecordProtection::Cipher::aes_128_gcm));
        return;
    }
    for (auto c : {RecordProtection::Cipher::aes_128_gcm, RecordProtection::Cipher::aes_256_gcm}) {
        const size_t secret_len = c == RecordProtection::Cipher::aes_128_gcm ? 32 : 48;
        for (size_t chunk : {size_t(1), size_t(100), size_t(16383), size_t(16384), size_t(65536)}) {
            CAPTURE(chunk);
            auto secret = secret_of(secret_len, 3);
            Peer peer(c, secret, 2);  // OpenSSL read two records before the hand-over
            RecordReader r(-1, true);
            start(r, c, secret, 2);
            std::vector<uint8_t> expected;
            for (size_t size : {size_t(1), size_t(5000), size_t(16384), size_t(0), size_t(777)}) {
                auto d = data_of(size, uint8_t(size));
                peer.record(23, d);
                expected.insert(expected.end(), d.begin(), d.end());
            }
            REQUIRE(r.append(peer.wire));
            Status last = Status::ok;
            CHECK(drain(r, chunk, &last) == expected);
            CHECK(last == Status::want_read);  // nothing more (no socket in this test)
            CHECK(r.records() == 5);
        }
    }
}

TEST_CASE("record reader: records that arrive a byte at a time") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 9);
    Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
    RecordReader r(-1, true);
    start(r, RecordProtection::Cipher::aes_128_gcm, secret);
    auto d = data_of(3000, 1);
    peer.record(23, d);
    std::vector<uint8_t> got;
    std::byte buf[4096];
    for (uint8_t b : peer.wire) {
        REQUIRE(r.append({&b, 1}));
        auto res = r.read(buf);
        if (res.status == Status::ok)
            got.insert(got.end(), reinterpret_cast<uint8_t*>(buf),
                       reinterpret_cast<uint8_t*>(buf) + res.bytes);
        else
            REQUIRE(res.status == Status::want_read);
    }
    CHECK(got == d);
}

TEST_CASE("record reader: follows the peer's KeyUpdates and reports a request for ours") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(48, 5);
    Peer peer(RecordProtection::Cipher::aes_256_gcm, secret);
    RecordReader r(-1, true);
    start(r, RecordProtection::Cipher::aes_256_gcm, secret);
    peer.record(23, data_of(100, 1));
    peer.key_update(false);
    peer.record(23, data_of(200, 2));
    REQUIRE(r.append(peer.wire));
    peer.wire.clear();
    CHECK(drain(r, 65536).size() == 300);
    CHECK(r.key_updates() == 1);
    CHECK_FALSE(r.take_update_request());
    peer.key_update(true);
    peer.record(23, data_of(300, 3));
    REQUIRE(r.append(peer.wire));
    CHECK(drain(r, 65536) == data_of(300, 3));
    CHECK(r.key_updates() == 2);
    CHECK(r.take_update_request());
    CHECK_FALSE(r.take_update_request());  // once
}

TEST_CASE("record reader: a KeyUpdate OpenSSL read before the hand-over restarts the count") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 11);
    std::vector<uint8_t> next(32);
    REQUIRE(RecordProtection::next_secret(secret, next.data()));
    RecordReader r(-1, false);
    r.peer_secret(secret, true);
    r.handshake_done();
    r.record_seen();  // tickets, application data, then the KeyUpdate record itself
    r.record_seen();
    r.record_seen();
    r.peer_secret(next, false);  // OpenSSL's keylog: the peer's _N secret
    r.record_seen();             // one record under the new key, read by OpenSSL
    REQUIRE(r.start(RecordProtection::Cipher::aes_128_gcm));
    Peer peer(RecordProtection::Cipher::aes_128_gcm, next, 1);
    peer.record(23, data_of(50, 4));
    REQUIRE(r.append(peer.wire));
    CHECK(drain(r, 1000) == data_of(50, 4));
}

TEST_CASE("record reader: user_canceled is not an error (close_notify follows it)") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 4);
    Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
    RecordReader r(-1, true);
    start(r, RecordProtection::Cipher::aes_128_gcm, secret);
    peer.record(23, data_of(7, 1));
    peer.record(21, {1, 90});  // warning, user_canceled
    peer.record(23, data_of(9, 2));
    peer.record(21, {1, 0});
    REQUIRE(r.append(peer.wire));
    Status last = Status::ok;
    auto expected = data_of(7, 1);
    auto more = data_of(9, 2);
    expected.insert(expected.end(), more.begin(), more.end());
    CHECK(drain(r, 100, &last) == expected);
    CHECK(last == Status::closed);
}

TEST_CASE("record reader: close_notify ends the stream after the data before it") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 2);
    Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
    RecordReader r(-1, true);
    start(r, RecordProtection::Cipher::aes_128_gcm, secret);
    peer.record(23, data_of(10, 1));
    peer.record(21, {1, 0});  // warning, close_notify
    REQUIRE(r.append(peer.wire));
    Status last = Status::ok;
    CHECK(drain(r, 100, &last) == data_of(10, 1));
    CHECK(last == Status::closed);
}

TEST_CASE("record reader: refuses what a TLS 1.3 peer must not send, with one line") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 8);
    struct Case {
        const char* name;
        std::vector<uint8_t> (*make)(Peer&);
        bool is_server;
        const char* says;
        int alert;  // what the peer is to be told (0: nothing)
    };
    const Case cases[] = {
        {"tampered ciphertext",
         [](Peer& p) {
             p.record(23, data_of(100, 1));
             p.wire[20] ^= 1;
             return p.wire;
         },
         true, "does not authenticate", 20},
        {"tampered header",
         [](Peer& p) {
             p.record(23, data_of(100, 1));
             p.wire[2] = 1;  // version 3.1
             return p.wire;
         },
         true, "record of type 23 version 3.1", 10},
        {"plaintext record type",
         [](Peer& p) {
             p.record(23, data_of(100, 1));
             p.wire[0] = 22;
             return p.wire;
         },
         true, "record of type 22", 10},
        {"record too long",
         [](Peer&) {
             return std::vector<uint8_t>{23, 3, 3, 0x41, 0x11};
         },
         true, "record of 16657 bytes", 22},
        {"record too short",
         [](Peer&) {
             return std::vector<uint8_t>{23, 3, 3, 0, 16};
         },
         true, "record of 16 bytes", 22},
        {"fatal alert",
         [](Peer& p) {
             p.record(21, {2, 20});
             return p.wire;
         },
         true, "alert 'bad record mac' (20)", 0},
        {"malformed alert",
         [](Peer& p) {
             p.record(21, {2});
             return p.wire;
         },
         true, "malformed alert", 50},
        {"a ticket sent to the server",
         [](Peer& p) {
             p.record(22, {4, 0, 0, 1, 0});
             return p.wire;
         },
         true, "unexpected handshake message (type 4)", 10},
        {"a handshake message cut short",
         [](Peer& p) {
             p.record(22, {4, 0, 0, 9, 0});
             return p.wire;
         },
         false, "cut by its record's end", 50},
        {"KeyUpdate not at the record's end",
         [](Peer& p) {
             p.record(22, {24, 0, 0, 1, 0, 24, 0, 0, 1, 0});
             return p.wire;
         },
         true, "malformed KeyUpdate", 10},
        {"KeyUpdate with a bad value",
         [](Peer& p) {
             p.record(22, {24, 0, 0, 1, 2});
             return p.wire;
         },
         true, "malformed KeyUpdate", 47},
        {"unknown content type",
         [](Peer& p) {
             p.record(24, {1, 2, 3});
             return p.wire;
         },
         true, "content type 24", 10},
        {"only padding",
         [](Peer& p) {
             p.record(23, {});
             p.wire[5] ^= 23;  // the type octet becomes zero: the tag no longer matches either
             return p.wire;
         },
         true, "does not authenticate", 20},
    };
    for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
        RecordReader r(-1, c.is_server);
        start(r, RecordProtection::Cipher::aes_128_gcm, secret);
        REQUIRE(r.append(c.make(peer)));
        Status last = Status::ok;
        CHECK(drain(r, 65536, &last).empty());
        CHECK(last == Status::failed);
        CHECK_MESSAGE(r.error().find(c.says) != std::string::npos, r.error());
        CHECK(r.alert_to_send() == c.alert);
        std::byte b[16];
        CHECK(r.read(b).status == Status::failed);  // and it stays failed
    }
    // A client ignores later tickets (the first ones went to OpenSSL before the hand-over).
    Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
    RecordReader client(-1, false);
    start(client, RecordProtection::Cipher::aes_128_gcm, secret);
    peer.record(22, {4, 0, 0, 1, 0});
    peer.record(23, data_of(5, 5));
    REQUIRE(client.append(peer.wire));
    CHECK(drain(client, 100) == data_of(5, 5));
}

TEST_CASE("record reader: the buffer is freed while idle and comes back") {
    if (!RecordProtection::available()) return;
    auto secret = secret_of(32, 6);
    Peer peer(RecordProtection::Cipher::aes_128_gcm, secret);
    RecordReader r(-1, true);
    start(r, RecordProtection::Cipher::aes_128_gcm, secret);
    peer.record(23, data_of(100, 1));
    REQUIRE(r.append(peer.wire));
    CHECK(drain(r, 1000).size() == 100);
    r.release();
    peer.wire.clear();
    peer.record(23, data_of(60, 2));
    REQUIRE(r.append(peer.wire));
    CHECK(drain(r, 1000) == data_of(60, 2));
}

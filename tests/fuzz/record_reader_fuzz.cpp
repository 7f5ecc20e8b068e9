// The TLS 1.3 record reader fed a stream built from the input: records sealed under a known key
// (any content type, any content: application data, KeyUpdates good and bad, tickets, alerts),
// key updates the sender follows, and raw bytes spliced in. Reads use buffers of the size the
// input picks. Whatever it is fed, the application data it returns must be a prefix of what was
// sealed as application data, and it must never read or write out of bounds (ASan).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tls/record_reader.hpp"

using porthole::tls::RecordProtection;
using porthole::tls::RecordReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3 || !RecordProtection::available()) return 0;
    const size_t chunk = 1 + size_t(data[0]) * 97;  // 1 to 24,736 bytes per read
    const auto cipher =
        data[1] & 1 ? RecordProtection::Cipher::aes_256_gcm : RecordProtection::Cipher::aes_128_gcm;
    const bool is_server = data[2] & 1;
    std::vector<uint8_t> secret(cipher == RecordProtection::Cipher::aes_128_gcm ? 32 : 48, 0x5a);
    RecordProtection seal;
    if (!seal.set_secret(cipher, secret, 0)) abort();
    RecordReader reader(-1, is_server);
    reader.peer_secret(secret, true);
    reader.handshake_done();
    if (!reader.start(cipher)) abort();

    std::vector<uint8_t> wire, sealed_app, got;
    std::vector<uint8_t> record(RecordProtection::kMaxPlaintext + RecordProtection::kOverhead);
    size_t at = 3;
    while (at < size) {
        const uint8_t op = data[at++];
        size_t len = 0;
        if (at < size) {
            const size_t want = data[at++] * 67u;
            len = std::min({want, size - at, RecordProtection::kMaxPlaintext});
        }
        const uint8_t* payload = data + at;
        at += len;
        if (op < 200) {  // one sealed record; types 21-24 most often
            const uint8_t type = op < 150 ? uint8_t(21 + op % 4) : op;
            const size_t n = seal.seal(type, {payload, len}, record.data());
            if (n == 0) abort();
            wire.insert(wire.end(), record.begin(), record.begin() + long(n));
            if (type == 23) sealed_app.insert(sealed_app.end(), payload, payload + len);
        } else if (op < 230) {  // a KeyUpdate the sender follows
            const uint8_t msg[5] = {24, 0, 0, 1, uint8_t(op & 1)};
            const size_t n = seal.seal(22, msg, record.data());
            wire.insert(wire.end(), record.begin(), record.begin() + long(n));
            std::vector<uint8_t> next(secret.size());
            if (!RecordProtection::next_secret(secret, next.data())) abort();
            secret = next;
            if (!seal.update_from_secret(secret)) abort();
        } else {  // raw bytes
            wire.insert(wire.end(), payload, payload + len);
        }
    }

    std::vector<std::byte> buf(chunk);
    size_t fed = 0;
    for (int rounds = 0; rounds < 100000; ++rounds) {
        if (fed < wire.size()) {
            const size_t n = std::min<size_t>(wire.size() - fed, 4096);
            if (reader.append({wire.data() + fed, n})) fed += n;
        }
        auto r = reader.read(buf);
        if (r.status == RecordReader::Status::ok) {
            if (r.bytes == 0 || r.bytes > chunk) abort();
            const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
            got.insert(got.end(), p, p + r.bytes);
            continue;
        }
        if (r.status != RecordReader::Status::want_read) break;
        if (fed == wire.size()) break;
    }
    if (got.size() > sealed_app.size() ||
        std::memcmp(got.data(), sealed_app.data(), got.size()) != 0)
        abort();
    return 0;
}

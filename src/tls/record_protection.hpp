// RecordProtection: TLS 1.3 record protection (RFC 8446 §5.2-5.3) of one direction, AES-GCM with
// Intel's ipsec-mb library (VAES/AVX-512 where the CPU has them): seal() for the sending
// direction, open() for the receiving one.
//
// Why: OpenSSL 3.0 encrypts and decrypts AES-GCM at ~4.3 GB/s here; ipsec-mb at ~11.7 GB/s
// (16 KiB records, same core). OpenSSL also copies each record's plaintext into its own buffer
// before encrypting it (then our BIO copied the result again), and copies what it decrypted out
// of its read buffer. Sealing reads the plaintext where the caller has it and writes the record
// once, into the send buffer; opening decrypts from the receive buffer straight into the
// caller's buffer.
//
// What it is not: a TLS implementation. OpenSSL does the handshake, the key schedule and every
// KeyUpdate decision; the keys come from OpenSSL (its kernel-TLS hook for the sending key, its
// keylog callback for the traffic secrets: tls_context.cpp, socket_bio.hpp, record_reader.hpp).
// The two things that must never go wrong are the nonce (IV XOR the 64-bit record sequence
// number, which only ever counts up under one key) and the key; both are checked in every test
// by a stock OpenSSL peer, since a wrong record fails its decryption there (and one of ours
// fails here). open() releases no plaintext whose tag did not verify.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace porthole::tls {

class RecordProtection {
public:
    enum class Cipher { aes_128_gcm, aes_256_gcm };
    static constexpr size_t kHeader = 5;
    static constexpr size_t kOverhead = kHeader + 1 + 16;  // header, content type, tag
    static constexpr size_t kMaxPlaintext = 16384;

    // False when porthole was built without ipsec-mb or the CPU lacks AES-NI: OpenSSL seals.
    static bool available();
    // Who seals sent records, for the log: "porthole (ipsec-mb 1.3.0, AVX-512) ...", or
    // "OpenSSL (why)". `wanted`: the configuration's tls-sealer is porthole.
    static std::string describe(bool wanted);

    RecordProtection();
    ~RecordProtection();
    RecordProtection(const RecordProtection&) = delete;
    RecordProtection& operator=(const RecordProtection&) = delete;

    static constexpr size_t kTag = 16;
    static constexpr size_t kMaxCiphertext = kMaxPlaintext + 256;  // RFC 8446 §5.2

    // Installs a traffic key: key (16 or 32 bytes), the 12-byte IV, the next sequence number.
    bool set_key(Cipher cipher, std::span<const uint8_t> key, std::span<const uint8_t, 12> iv,
                 uint64_t sequence);
    // Installs the key and IV derived from a traffic secret (HKDF-Expand-Label "key"/"iv" with
    // the suite's hash: 32 bytes for AES-128-GCM/SHA-256, 48 for AES-256-GCM/SHA-384).
    bool set_secret(Cipher cipher, std::span<const uint8_t> secret, uint64_t sequence);
    // The next key from a KeyUpdate: key and IV derived from the new traffic secret
    // (HKDF-Expand-Label "key"/"iv" with the suite's hash), sequence number 0.
    bool update_from_secret(std::span<const uint8_t> secret);
    // The traffic secret that follows `secret` (HKDF-Expand-Label "traffic upd", RFC 8446
    // §7.2), written to `next` (same size). False on a wrong size or a failed derivation.
    [[nodiscard]] static bool next_secret(std::span<const uint8_t> secret, uint8_t* next);

    [[nodiscard]] bool keyed() const { return keyed_; }
    [[nodiscard]] uint64_t sequence() const { return sequence_; }

    // One record of `type` (23 application data, 22 handshake, 21 alert) carrying `plaintext`
    // (at most kMaxPlaintext octets), written to `out`, which has room for plaintext.size() +
    // kOverhead. Returns the record's size.
    size_t seal(uint8_t type, std::span<const uint8_t> plaintext, uint8_t* out);

    // Opens one record: `record` is the whole record as received, header included (the caller
    // checked the header: application_data, length from kTag + 1 to kMaxCiphertext). The
    // TLSInnerPlaintext (content, type, zero padding) is decrypted to `out`, which has room for
    // record.size() - kHeader - kTag bytes and may be record.data() + kHeader (in place).
    // Returns the content's length and its type, or nothing when the tag does not verify or
    // the plaintext has no type (all zeros): then `out` holds nothing to use and the key's
    // sequence number did not advance.
    struct Opened {
        uint8_t type;
        size_t length;
    };
    std::optional<Opened> open(std::span<const uint8_t> record, uint8_t* out);

private:
    struct Keys;
    std::unique_ptr<Keys> keys_;
    Cipher cipher_ = Cipher::aes_128_gcm;
    std::array<uint8_t, 12> iv_{};
    uint64_t sequence_ = 0;
    bool keyed_ = false;
};

}  // namespace porthole::tls

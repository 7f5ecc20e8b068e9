// RecordSealer: TLS 1.3 record protection for the sending direction (RFC 8446 §5.2–5.3), AES-GCM
// with Intel's ipsec-mb library (VAES/AVX-512 where the CPU has them).
//
// Why: OpenSSL 3.0 encrypts AES-GCM at ~4.3 GB/s here; ipsec-mb at ~11.7 GB/s (16 KiB records,
// same core), and OpenSSL copies each record's plaintext into its own buffer before encrypting
// it in place, then our buffer BIO copies the result again. The sealer reads the plaintext where
// the caller has it and writes the protected record once, into the send buffer.
//
// What it is not: a TLS implementation. OpenSSL does the handshake, the key schedule, every
// alert, every KeyUpdate decision and all of the receiving side; it hands the sending key to
// send_buffer_bio.hpp through its kernel-TLS offload hook (as it would to the kernel), and the
// secrets of later key updates arrive through the keylog callback (tls_context.cpp). Sealing
// parses nothing a peer sent. The two things that must never go wrong are the nonce (IV XOR the
// 64-bit record sequence number, which only ever counts up under one key) and the key; both are
// checked by the peer's stock OpenSSL in every test, since a wrong record fails its decryption.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace porthole::tls {

class RecordSealer {
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

    RecordSealer();
    ~RecordSealer();
    RecordSealer(const RecordSealer&) = delete;
    RecordSealer& operator=(const RecordSealer&) = delete;

    // Installs a traffic key: key (16 or 32 bytes), the 12-byte IV, the next sequence number.
    bool set_key(Cipher cipher, std::span<const uint8_t> key, std::span<const uint8_t, 12> iv,
                 uint64_t sequence);
    // The next key from a KeyUpdate: key and IV derived from the new traffic secret
    // (HKDF-Expand-Label "key"/"iv" with the suite's hash), sequence number 0.
    bool update_from_secret(std::span<const uint8_t> secret);

    [[nodiscard]] bool keyed() const { return keyed_; }
    [[nodiscard]] uint64_t sequence() const { return sequence_; }

    // One record of `type` (23 application data, 22 handshake, 21 alert) carrying `plaintext`
    // (at most kMaxPlaintext octets), written to `out`, which has room for plaintext.size() +
    // kOverhead. Returns the record's size.
    size_t seal(uint8_t type, std::span<const uint8_t> plaintext, uint8_t* out);

private:
    struct Keys;
    std::unique_ptr<Keys> keys_;
    Cipher cipher_ = Cipher::aes_128_gcm;
    std::array<uint8_t, 12> iv_{};
    uint64_t sequence_ = 0;
    bool keyed_ = false;
};

}  // namespace porthole::tls

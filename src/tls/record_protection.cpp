#include "tls/record_protection.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <mutex>
#include <string>

#ifdef PORTHOLE_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#endif

namespace porthole::tls {

#ifdef PORTHOLE_HAVE_IPSEC_MB

namespace {

struct Manager {
    IMB_MGR* mgr = nullptr;
    IMB_ARCH arch = IMB_ARCH_NONE;
};

// One manager for the process: the GCM functions used here keep all state in the key and
// context structures the caller passes, so threads share it read-only.
const Manager& the_manager() {
    static const Manager m = [] {
        Manager r;
        r.mgr = alloc_mb_mgr(0);
        if (r.mgr == nullptr) return r;
        init_mb_mgr_auto(r.mgr, &r.arch);
        if (imb_get_errno(r.mgr) != 0 || r.arch == IMB_ARCH_NONE || r.arch == IMB_ARCH_NOAESNI) {
            free_mb_mgr(r.mgr);
            r.mgr = nullptr;
        }
        return r;
    }();
    return m;
}

IMB_MGR* manager() {
    return the_manager().mgr;
}

const char* arch_name(IMB_ARCH a) {
    switch (a) {
        case IMB_ARCH_SSE:
            return "SSE";
        case IMB_ARCH_AVX:
            return "AVX";
        case IMB_ARCH_AVX2:
            return "AVX2";
        case IMB_ARCH_AVX512:
            return "AVX-512";
        default:
            return "?";
    }
}

}  // namespace

struct RecordProtection::Keys {
    alignas(64) gcm_key_data key;
    alignas(64) gcm_context_data context;
};

bool RecordProtection::available() {
    return manager() != nullptr;
}

std::string RecordProtection::describe(bool wanted) {
    if (!wanted) return "OpenSSL (tls-sealer = openssl)";
    if (!available()) return "OpenSSL (ipsec-mb cannot run on this CPU: no AES-NI)";
    return std::string("porthole (ipsec-mb ") + imb_get_version_str() + ", " +
           arch_name(the_manager().arch) + ") for TLS 1.3 AES-GCM; OpenSSL for the rest";
}

RecordProtection::RecordProtection() : keys_(std::make_unique<Keys>()) {}

RecordProtection::~RecordProtection() {
    OPENSSL_cleanse(keys_.get(), sizeof(Keys));
}

bool RecordProtection::set_key(Cipher cipher, std::span<const uint8_t> key,
                               std::span<const uint8_t, 12> iv, uint64_t sequence) {
    IMB_MGR* m = manager();
    const size_t want = cipher == Cipher::aes_128_gcm ? 16 : 32;
    if (m == nullptr || key.size() != want) return false;
    if (cipher == Cipher::aes_128_gcm)
        IMB_AES128_GCM_PRE(m, key.data(), &keys_->key);
    else
        IMB_AES256_GCM_PRE(m, key.data(), &keys_->key);
    cipher_ = cipher;
    std::memcpy(iv_.data(), iv.data(), iv_.size());
    sequence_ = sequence;
    keyed_ = true;
    return true;
}

size_t RecordProtection::seal(uint8_t type, std::span<const uint8_t> plaintext, uint8_t* out) {
    // A sequence number never repeats under one key (RFC 8446 §5.3); KeyUpdates come long
    // before 2^64 records, so running out is a bug to fail on, not to wrap around.
    if (!keyed_ || plaintext.size() > kMaxPlaintext || sequence_ == UINT64_MAX) return 0;
    IMB_MGR* m = manager();
    const size_t inner = plaintext.size() + 1;  // TLSInnerPlaintext: content, type, no padding
    const size_t length = inner + 16;
    out[0] = 23;  // opaque_type: application_data
    out[1] = 0x03;
    out[2] = 0x03;  // legacy_record_version
    out[3] = uint8_t(length >> 8);
    out[4] = uint8_t(length);
    std::array<uint8_t, 12> nonce = iv_;
    for (int i = 0; i < 8; ++i)
        nonce[4 + i] ^= uint8_t(sequence_ >> (56 - 8 * i));
    uint8_t* body = out + kHeader;
    uint8_t* tag = body + inner;
    if (cipher_ == Cipher::aes_128_gcm) {
        IMB_AES128_GCM_INIT(m, &keys_->key, &keys_->context, nonce.data(), out, kHeader);
        IMB_AES128_GCM_ENC_UPDATE(m, &keys_->key, &keys_->context, body, plaintext.data(),
                                  plaintext.size());
        IMB_AES128_GCM_ENC_UPDATE(m, &keys_->key, &keys_->context, body + plaintext.size(), &type,
                                  1);
        IMB_AES128_GCM_ENC_FINALIZE(m, &keys_->key, &keys_->context, tag, 16);
    } else {
        IMB_AES256_GCM_INIT(m, &keys_->key, &keys_->context, nonce.data(), out, kHeader);
        IMB_AES256_GCM_ENC_UPDATE(m, &keys_->key, &keys_->context, body, plaintext.data(),
                                  plaintext.size());
        IMB_AES256_GCM_ENC_UPDATE(m, &keys_->key, &keys_->context, body + plaintext.size(), &type,
                                  1);
        IMB_AES256_GCM_ENC_FINALIZE(m, &keys_->key, &keys_->context, tag, 16);
    }
    ++sequence_;
    return kHeader + length;
}

std::optional<RecordProtection::Opened> RecordProtection::open(std::span<const uint8_t> record,
                                                               uint8_t* out) {
    if (!keyed_ || record.size() < kHeader + kTag + 1 || record.size() > kHeader + kMaxCiphertext ||
        sequence_ == UINT64_MAX)
        return std::nullopt;
    IMB_MGR* m = manager();
    const size_t inner = record.size() - kHeader - kTag;
    const uint8_t* body = record.data() + kHeader;
    std::array<uint8_t, 12> nonce = iv_;
    for (int i = 0; i < 8; ++i)
        nonce[4 + i] ^= uint8_t(sequence_ >> (56 - 8 * i));
    uint8_t tag[kTag];
    if (cipher_ == Cipher::aes_128_gcm) {
        IMB_AES128_GCM_INIT(m, &keys_->key, &keys_->context, nonce.data(), record.data(), kHeader);
        IMB_AES128_GCM_DEC_UPDATE(m, &keys_->key, &keys_->context, out, body, inner);
        IMB_AES128_GCM_DEC_FINALIZE(m, &keys_->key, &keys_->context, tag, kTag);
    } else {
        IMB_AES256_GCM_INIT(m, &keys_->key, &keys_->context, nonce.data(), record.data(), kHeader);
        IMB_AES256_GCM_DEC_UPDATE(m, &keys_->key, &keys_->context, out, body, inner);
        IMB_AES256_GCM_DEC_FINALIZE(m, &keys_->key, &keys_->context, tag, kTag);
    }
    // The received tag is read from `record` only now: with in-place opening `out` overlaps
    // the body, never the tag after it.
    const bool authentic = CRYPTO_memcmp(tag, body + inner, kTag) == 0;
    OPENSSL_cleanse(tag, sizeof tag);
    if (!authentic) return std::nullopt;
    size_t n = inner;  // the type is the last non-zero octet; zeros after it are padding
    while (n > 0 && out[n - 1] == 0)
        --n;
    if (n == 0) return std::nullopt;
    ++sequence_;
    return Opened{out[n - 1], n - 1};
}

#else  // no ipsec-mb: OpenSSL seals every record

struct RecordProtection::Keys {};
bool RecordProtection::available() {
    return false;
}
std::string RecordProtection::describe(bool wanted) {
    return wanted ? "OpenSSL (this build has no ipsec-mb)" : "OpenSSL (tls-sealer = openssl)";
}
RecordProtection::RecordProtection() = default;
RecordProtection::~RecordProtection() = default;
bool RecordProtection::set_key(Cipher, std::span<const uint8_t>, std::span<const uint8_t, 12>,
                               uint64_t) {
    return false;
}
size_t RecordProtection::seal(uint8_t, std::span<const uint8_t>, uint8_t*) {
    return 0;
}
std::optional<RecordProtection::Opened> RecordProtection::open(std::span<const uint8_t>, uint8_t*) {
    return std::nullopt;
}

#endif

namespace {

// HKDF-Expand-Label(secret, label, "", length) of RFC 8446 §7.1.
bool expand_label(const char* digest, std::span<const uint8_t> secret, const std::string& label,
                  uint8_t* out, size_t length) {
    const std::string full = "tls13 " + label;
    std::string info;
    info.push_back(char(length >> 8));
    info.push_back(char(length & 0xff));
    info.push_back(char(full.size()));
    info += full;
    info.push_back(0);  // empty context
    // Fetched once for the process (a fetch takes OpenSSL's provider locks; every connection
    // derives keys twice at its hand-over, and again at each KeyUpdate). Never freed.
    static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (kdf == nullptr) return false;
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == nullptr) return false;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                          secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end()};
    const bool ok = EVP_KDF_derive(ctx, out, length, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok;
}

}  // namespace

bool RecordProtection::set_secret(Cipher cipher, std::span<const uint8_t> secret,
                                  uint64_t sequence) {
    // The suite fixes the hash: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384.
    const bool aes128 = cipher == Cipher::aes_128_gcm;
    const char* digest = aes128 ? "SHA256" : "SHA384";
    bool ok = secret.size() == (aes128 ? 32u : 48u);
    std::array<uint8_t, 32> key{};
    std::array<uint8_t, 12> iv{};
    const size_t key_len = aes128 ? 16 : 32;
    ok = ok && expand_label(digest, secret, "key", key.data(), key_len) &&
         expand_label(digest, secret, "iv", iv.data(), iv.size()) &&
         set_key(cipher, std::span<const uint8_t>(key.data(), key_len), iv, sequence);
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(iv.data(), iv.size());
    if (!ok) keyed_ = false;  // never use a key the peer no longer expects
    return ok;
}

bool RecordProtection::update_from_secret(std::span<const uint8_t> secret) {
    if (!keyed_) return false;
    return set_secret(cipher_, secret, 0);
}

bool RecordProtection::next_secret(std::span<const uint8_t> secret, uint8_t* next) {
    if (secret.size() != 32 && secret.size() != 48) return false;
    return expand_label(secret.size() == 32 ? "SHA256" : "SHA384", secret, "traffic upd", next,
                        secret.size());
}

}  // namespace porthole::tls

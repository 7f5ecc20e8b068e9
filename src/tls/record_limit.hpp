// RecordLimit: how many TLS records have been sent under the current traffic key, and whether
// the key must change before the next one (AEAD usage limits). Pure code; TlsConnection asks it
// before every write and sends a TLS 1.3 KeyUpdate when it says so.
//
// Why: AES-GCM keeps its confidentiality margin only for so many encryptions under one key.
// RFC 8446 §5.5 allows 2^24.5 full-size records per key; QUIC (RFC 9001 §6.6) uses 2^23. A
// tunnel moving 6 Gbit/s sends ~46,000 full records a second and would pass 2^24.5 in under ten
// minutes. OpenSSL never updates the key by itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace porthole::tls {

inline constexpr uint64_t kDefaultKeyUpdateRecords = uint64_t(1) << 23;  // 8,388,608
inline constexpr uint64_t kMinKeyUpdateRecords = 16;                     // for tests
inline constexpr uint64_t kMaxKeyUpdateRecords = uint64_t(1) << 24;      // below 2^24.5
inline constexpr size_t kMaxRecordPlaintext = 16 * 1024;                 // RFC 8446 §5.1

class RecordLimit {
public:
    // `records`: records per key; clamped to [kMinKeyUpdateRecords, kMaxKeyUpdateRecords].
    explicit RecordLimit(uint64_t records = kDefaultKeyUpdateRecords)
        : limit_(records < kMinKeyUpdateRecords   ? kMinKeyUpdateRecords
                 : records > kMaxKeyUpdateRecords ? kMaxKeyUpdateRecords
                                                  : records) {}

    // `bytes` of application data were accepted by one write: that many records at least (a
    // record carries at most 16 KiB; a short record counts as a whole one).
    void sent(size_t bytes) {
        if (bytes > 0) count_ += (bytes + kMaxRecordPlaintext - 1) / kMaxRecordPlaintext;
    }
    // The key has carried its share: update it before the next record.
    [[nodiscard]] bool due() const { return count_ >= limit_; }
    // A new key is in use from the next record on.
    void renewed() {
        count_ = 0;
        ++updates_;
    }

    [[nodiscard]] uint64_t limit() const { return limit_; }
    [[nodiscard]] uint64_t count() const { return count_; }
    [[nodiscard]] uint64_t updates() const { return updates_; }

private:
    uint64_t limit_;
    uint64_t count_ = 0;
    uint64_t updates_ = 0;
};

}  // namespace porthole::tls

// RecordLimit: how many TLS records have been sent under the current traffic key, and whether
// the key must change before the next one (AEAD usage limits); and how much the peer has sent
// since we last asked it to renew its own key. Pure code; TlsConnection asks it before every
// write and sends a TLS 1.3 KeyUpdate when it says so.
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

    // The peer's side. A porthole peer renews its own key; any other TLS 1.3 peer might not, so
    // once it has sent a quarter more than the limit's worth of full records (by bytes: what an
    // AEAD's confidentiality bound counts) we ask it to (KeyUpdate with update_requested). A
    // peer that renews by itself is asked at most once per that amount: one extra KeyUpdate.
    void received(size_t bytes) { received_ += bytes; }
    [[nodiscard]] bool peer_due() const {
        const uint64_t full = limit_ * kMaxRecordPlaintext;
        return received_ >= full + full / 4;
    }
    void peer_asked() {
        received_ = 0;
        ++requests_;
    }
    [[nodiscard]] uint64_t requests() const { return requests_; }
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
    uint64_t received_ = 0;  // bytes the peer sent since we last asked it to renew its key
    uint64_t requests_ = 0;
};

}  // namespace porthole::tls

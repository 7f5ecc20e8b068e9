// RecordReader: the receiving side of a TLS 1.3 connection (AES-GCM) once porthole opens the
// peer's records itself, in place of SSL_read: recv() into one buffer, each record decrypted by
// record_protection.hpp straight into the caller's buffer (or in place, when the caller has less
// room than a record), the peer's KeyUpdates followed, close_notify and alerts reported.
//
// The hand-over from OpenSSL: OpenSSL 3.0 offers no receiving key to its kernel-TLS hook for
// TLS 1.3, so the reader takes the peer's traffic secret from OpenSSL's keylog callback
// (CLIENT_/SERVER_TRAFFIC_SECRET_0, and _N after each KeyUpdate OpenSSL processed itself) and
// counts the records OpenSSL reads under it (its message callback reports each record header).
// TlsConnection turns OpenSSL's read-ahead off while this may happen, so that OpenSSL never holds
// bytes it has not processed, and takes over at a record boundary: the server as soon as its
// handshake is done, the client once OpenSSL has read the server's first application data (so
// that the session tickets before it reached OpenSSL). From then on OpenSSL only writes.
//
// After the hand-over the reader alone parses what the peer sends, so it is strict: records
// must be application_data (0x17) with version 0x0303 and a length within RFC 8446 §5.2,
// must authenticate, and may carry application data, a KeyUpdate (alone at the record's end),
// NewSessionTicket (client side: not kept, the first ones went to OpenSSL) or an alert;
// anything else fails the connection with one line saying what arrived.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "tls/record_protection.hpp"

namespace porthole::tls {

class RecordReader {
public:
    enum class Status { ok, want_read, closed, failed };
    struct Read {
        Status status;
        size_t bytes = 0;
    };
    static constexpr size_t kBufferSize = 64 * 1024;  // one recv() brings several records

    // `fd`: the connection's socket (not owned; -1 in tests that append() bytes instead).
    RecordReader(int fd, bool is_server) : fd_(fd), is_server_(is_server) {}
    ~RecordReader();
    RecordReader(const RecordReader&) = delete;
    RecordReader& operator=(const RecordReader&) = delete;

    // Before the hand-over. The peer's traffic secret as OpenSSL's keylog reports it: the
    // first one (`initial`), or the next after a KeyUpdate OpenSSL read (records restart at 0).
    void peer_secret(std::span<const uint8_t> secret, bool initial);
    // OpenSSL read one record (its message callback saw the header).
    void record_seen() { ++seen_; }
    // The handshake is done: the records OpenSSL reads from now on are under the initial secret.
    void handshake_done() { seen_ = 0; }
    [[nodiscard]] bool has_secret() const { return secret_len_ > 0; }
    // Takes over: the peer's next record is number record_seen() since the secret took effect.
    // False (and nothing changes) when the key cannot be installed.
    bool start(RecordProtection::Cipher cipher);
    [[nodiscard]] bool active() const { return active_; }

    // Up to out.size() bytes of application data: ok with bytes > 0, want_read (nothing
    // complete yet), closed (close_notify, or TCP EOF), failed (error() says why).
    Read read(std::span<std::byte> out);
    // The peer asked for a KeyUpdate of ours (update_requested): true once, then cleared.
    bool take_update_request();
    [[nodiscard]] const std::string& error() const { return error_; }
    // The failure was the TCP connection's (a reset, an abort), not anything the peer sent.
    [[nodiscard]] bool transport_failed() const { return transport_failed_; }
    // The alert the failure calls for (RFC 8446 §6.2: bad_record_mac, record_overflow,
    // decode_error, unexpected_message, illegal_parameter), 0 when none is to be sent (the peer's
    // own alert, a transport failure).
    [[nodiscard]] int alert_to_send() const { return alert_; }
    [[nodiscard]] uint64_t records() const { return records_; }
    [[nodiscard]] uint64_t key_updates() const { return key_updates_; }
    // Frees the buffer while it holds nothing (an idle connection); it returns with the next
    // read.
    void release();
    // Bytes as if recv() had brought them (tests, fuzzing): false when the buffer is full.
    bool append(std::span<const uint8_t> bytes);

private:
    // Fails the connection: `alert` is the one to send the peer (0: none).
    Read fail(int alert, std::string why);
    // Handles one opened record's content; false with error_ set to fail the connection.
    bool handshake_messages(const uint8_t* p, size_t n);
    bool alert(const uint8_t* p, size_t n);
    bool ensure_buffer();
    // recv() into the buffer: >0 bytes, 0 EOF, -1 with errno.
    long fill();

    int fd_;
    bool is_server_;
    bool active_ = false;
    bool closed_ = false;
    bool failed_ = false;
    bool transport_failed_ = false;
    int alert_ = 0;
    bool update_requested_ = false;
    RecordProtection protection_;
    RecordProtection::Cipher cipher_ = RecordProtection::Cipher::aes_128_gcm;
    std::array<uint8_t, 48> secret_{};
    size_t secret_len_ = 0;
    uint64_t seen_ = 0;
    uint8_t* buf_ = nullptr;
    size_t head_ = 0;  // first byte of the next record
    size_t tail_ = 0;  // end of what was received
    // Application data opened in place that did not fit the caller's buffer: buf_[plain_, +n).
    size_t plain_ = 0;
    size_t plain_left_ = 0;
    uint64_t records_ = 0;
    uint64_t key_updates_ = 0;
    std::string error_;
};

}  // namespace porthole::tls

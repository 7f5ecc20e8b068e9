#include "tls/record_reader.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace porthole::tls {

namespace {
constexpr uint8_t kApplicationData = 23;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kAlert = 21;
constexpr uint8_t kNewSessionTicket = 4;
constexpr uint8_t kKeyUpdate = 24;
constexpr size_t kHeader = RecordProtection::kHeader;
}  // namespace

RecordReader::~RecordReader() {
    OPENSSL_cleanse(secret_.data(), secret_.size());
    std::free(buf_);
}

void RecordReader::peer_secret(std::span<const uint8_t> secret, bool initial) {
    if (active_) return;  // OpenSSL reads nothing after the hand-over
    if (secret.size() > secret_.size()) {
        secret_len_ = 0;  // unusable: the hand-over will not happen
        return;
    }
    std::memcpy(secret_.data(), secret.data(), secret.size());
    secret_len_ = secret.size();
    if (!initial) seen_ = 0;  // the KeyUpdate's record was the last under the old key
}

bool RecordReader::start(RecordProtection::Cipher cipher) {
    if (active_ || secret_len_ == 0) return false;
    if (!protection_.set_secret(cipher, {secret_.data(), secret_len_}, seen_)) return false;
    cipher_ = cipher;
    active_ = true;
    return true;
}

bool RecordReader::take_update_request() {
    const bool r = update_requested_;
    update_requested_ = false;
    return r;
}

bool RecordReader::ensure_buffer() {
    if (buf_ == nullptr) buf_ = static_cast<uint8_t*>(std::malloc(kBufferSize));
    return buf_ != nullptr;
}

void RecordReader::release() {
    if (buf_ == nullptr || tail_ > head_ || plain_left_ > 0) return;
    std::free(buf_);
    buf_ = nullptr;
    head_ = tail_ = 0;
}

bool RecordReader::append(std::span<const uint8_t> bytes) {
    if (!ensure_buffer()) return false;
    if (head_ > 0 && plain_left_ == 0) {
        std::memmove(buf_, buf_ + head_, tail_ - head_);
        tail_ -= head_;
        head_ = 0;
    }
    if (bytes.size() > kBufferSize - tail_) return false;
    std::memcpy(buf_ + tail_, bytes.data(), bytes.size());
    tail_ += bytes.size();
    return true;
}

long RecordReader::fill() {
    if (!ensure_buffer()) {
        errno = ENOMEM;
        return -1;
    }
    if (head_ > 0) {  // a partial record moves to the front (nothing opened in place is left)
        std::memmove(buf_, buf_ + head_, tail_ - head_);
        tail_ -= head_;
        head_ = 0;
    }
    if (fd_ < 0) {
        errno = EAGAIN;
        return -1;
    }
    for (;;) {
        const ssize_t n = ::recv(fd_, buf_ + tail_, kBufferSize - tail_, MSG_DONTWAIT);
        if (n > 0) tail_ += size_t(n);
        if (n >= 0) return long(n);
        if (errno != EINTR) return -1;
    }
}

RecordReader::Read RecordReader::fail(int alert, std::string why) {
    failed_ = true;
    alert_ = alert;
    error_ = std::move(why);
    return {Status::failed, 0};
}

bool RecordReader::alert(const uint8_t* p, size_t n) {
    if (n != 2) {
        error_ = fmt::format("the peer sent a malformed alert ({} bytes)", n);
        alert_ = SSL_AD_DECODE_ERROR;
        return false;
    }
    if (p[1] == SSL_AD_CLOSE_NOTIFY) {
        closed_ = true;
        return true;
    }
    if (p[1] == SSL_AD_USER_CANCELLED) return true;  // not an error; a close_notify follows
    std::string name = SSL_alert_desc_string_long(p[1]);
    for (char& c : name)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    error_ = fmt::format("the peer sent the alert '{}' ({})", name, p[1]);
    return false;
}

bool RecordReader::handshake_messages(const uint8_t* p, size_t n) {
    while (n > 0) {
        if (n < 4) {
            error_ = "the peer sent a handshake message cut by its record's end";
            alert_ = SSL_AD_DECODE_ERROR;
            return false;
        }
        const uint8_t type = p[0];
        const size_t len = size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3];
        if (len > n - 4) {
            error_ = "the peer sent a handshake message cut by its record's end";
            alert_ = SSL_AD_DECODE_ERROR;
            return false;
        }
        if (type == kKeyUpdate) {
            // RFC 8446 §4.6.3: one octet, 0 or 1; the message ends its record (§5.1).
            if (len != 1 || p[4] > 1 || n != 5) {
                error_ = "the peer sent a malformed KeyUpdate";
                alert_ = len != 1   ? SSL_AD_DECODE_ERROR
                         : p[4] > 1 ? SSL_AD_ILLEGAL_PARAMETER
                                    : SSL_AD_UNEXPECTED_MESSAGE;  // not at its record's end
                return false;
            }
            std::array<uint8_t, 48> next{};
            const bool ok =
                RecordProtection::next_secret({secret_.data(), secret_len_}, next.data()) &&
                protection_.set_secret(cipher_, {next.data(), secret_len_}, 0);
            std::memcpy(secret_.data(), next.data(), secret_len_);
            OPENSSL_cleanse(next.data(), next.size());
            if (!ok) {
                error_ = "cannot derive the peer's next TLS key after its KeyUpdate";
                alert_ = SSL_AD_INTERNAL_ERROR;
                return false;
            }
            ++key_updates_;
            if (p[4] == 1) update_requested_ = true;
            return true;
        }
        if (type == kNewSessionTicket && !is_server_) {
            // Tickets after the first application data are not kept (they came before it).
        } else {
            error_ = fmt::format("the peer sent an unexpected handshake message (type {})", type);
            alert_ = SSL_AD_UNEXPECTED_MESSAGE;
            return false;
        }
        p += 4 + len;
        n -= 4 + len;
    }
    return true;
}

RecordReader::Read RecordReader::read(std::span<std::byte> out) {
    if (failed_) return {Status::failed, 0};
    if (!active_) return fail(SSL_AD_INTERNAL_ERROR, "record reader used before the hand-over");
    auto* dst = reinterpret_cast<uint8_t*>(out.data());
    size_t done = 0;
    if (plain_left_ > 0) {
        const size_t n = std::min(out.size(), plain_left_);
        std::memcpy(dst, buf_ + plain_, n);
        plain_ += n;
        plain_left_ -= n;
        return {Status::ok, n};
    }
    for (;;) {
        while (!closed_ && tail_ - head_ >= kHeader && done < out.size()) {
            const uint8_t* h = buf_ + head_;
            const size_t length = size_t(h[3]) << 8 | h[4];
            if (h[0] != kApplicationData || h[1] != 3 || h[2] != 3)
                return fail(SSL_AD_UNEXPECTED_MESSAGE,
                            fmt::format("the peer sent a record of type {} version {}.{} where "
                                        "TLS 1.3 has only application_data 3.3",
                                        h[0], h[1], h[2]));
            if (length < RecordProtection::kTag + 1 || length > RecordProtection::kMaxCiphertext)
                return fail(
                    SSL_AD_RECORD_OVERFLOW,
                    fmt::format("the peer sent a record of {} bytes (TLS 1.3: {} to {})", length,
                                RecordProtection::kTag + 1, RecordProtection::kMaxCiphertext));
            if (tail_ - head_ < kHeader + length) break;
            const size_t inner = length - RecordProtection::kTag;
            const bool direct = out.size() - done >= inner;
            uint8_t* into = direct ? dst + done : buf_ + head_ + kHeader;
            auto opened = protection_.open({h, kHeader + length}, into);
            if (!opened)
                return fail(SSL_AD_BAD_RECORD_MAC,
                            fmt::format("record {} from the peer does not authenticate "
                                        "(bad_record_mac)",
                                        records_ + 1));
            const size_t at = head_ + kHeader;
            head_ += kHeader + length;
            ++records_;
            if (opened->length > RecordProtection::kMaxPlaintext)  // RFC 8446 §5.4
                return fail(SSL_AD_RECORD_OVERFLOW,
                            fmt::format("the peer sent a record with {} bytes of content (TLS 1.3: "
                                        "at most {})",
                                        opened->length, RecordProtection::kMaxPlaintext));
            if (opened->type == kApplicationData) {
                if (direct) {
                    done += opened->length;
                    continue;
                }
                const size_t n = std::min(out.size() - done, opened->length);
                std::memcpy(dst + done, buf_ + at, n);
                done += n;
                plain_ = at + n;
                plain_left_ = opened->length - n;
                return {Status::ok, done};
            }
            bool ok = false;
            if (opened->type == kHandshake)
                ok = handshake_messages(into, opened->length);
            else if (opened->type == kAlert)
                ok = alert(into, opened->length);
            else {
                error_ = fmt::format("the peer sent a record of content type {}", opened->type);
                alert_ = SSL_AD_UNEXPECTED_MESSAGE;
            }
            if (!ok) return fail(alert_, error_);
        }
        if (done > 0) return {Status::ok, done};
        if (closed_) return {Status::closed, 0};
        const long n = fill();
        if (n > 0) continue;
        if (n == 0) {
            closed_ = true;  // TCP EOF without close_notify: closed, as SSL_read reports it
            return {Status::closed, 0};
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {Status::want_read, 0};
        transport_failed_ = true;
        return fail(0, std::strerror(errno));
    }
}

}  // namespace porthole::tls

#include "tls/socket_bio.hpp"

#include <linux/tls.h>
#include <openssl/crypto.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tls/record_protection.hpp"

namespace porthole::tls {
namespace {

// OpenSSL 3.0's internal kTLS control codes (include/internal/bio.h); see the header.
constexpr int kCtrlSetKtls = 72;
constexpr int kCtrlSetKtlsTxCtrlMsg = 74;
constexpr int kCtrlClearKtlsTxCtrlMsg = 75;

struct State {
    int fd = -1;
    bool offer = false;    // may accept a sending key
    bool sealing = false;  // accepted one: writes are plaintext records to seal
    bool broken = false;   // a key could not be installed: refuse every write
    int record_type = 0;   // the next write's record type when not application data
    size_t capacity = 0;   // bytes gathered before a write sends them on its own
    uint8_t* buf = nullptr;
    size_t size = 0;  // allocated
    size_t head = 0;  // first unsent byte
    size_t tail = 0;  // end of what is queued
    uint64_t sealed = 0;
    RecordProtection sealer;

    [[nodiscard]] size_t pending() const { return tail - head; }

    // Sends what is queued until done or the socket is full. -1 with errno on an error.
    int drain() {
        while (head < tail) {
            const ssize_t n = ::send(fd, buf + head, tail - head, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            head += size_t(n);
        }
        head = tail = 0;
        return 0;
    }

    // Room for `need` more bytes at the tail: sends first when the buffer is past its
    // capacity, then moves the unsent rest to the front or grows. Never refuses: OpenSSL keeps a
    // pointer to the caller's buffer while a sealed write is pending, so writes always complete
    // here; the owner stops writing while the buffer is full (socket_bio_make_room()).
    bool reserve(size_t need) {
        if (tail + need > capacity && pending() > 0) {
            const int saved = errno;
            (void)drain();  // a full socket is fine: the bytes stay queued
            errno = saved;
        }
        if (tail + need <= size) return true;
        if (head > 0) {
            std::memmove(buf, buf + head, pending());
            tail -= head;
            head = 0;
            if (tail + need <= size) return true;
        }
        const size_t want = std::max(capacity, tail + need);
        auto* grown = static_cast<uint8_t*>(std::realloc(buf, want));
        if (grown == nullptr) return false;
        buf = grown;
        size = want;
        return true;
    }
};

State* state(BIO* b) {
    return static_cast<State*>(BIO_get_data(b));
}

int method_type();
BIO_METHOD* method();

// Our BIO in a chain (OpenSSL pushes its own buffering BIO on top during handshakes).
State* find(BIO* b) {
    const int type = method() != nullptr ? method_type() : -1;
    for (; b != nullptr; b = BIO_next(b))
        if (BIO_method_type(b) == type) return state(b);
    return nullptr;
}

int bio_write(BIO* b, const char* data, int len) {
    State* s = state(b);
    BIO_clear_retry_flags(b);
    if (s == nullptr || len < 0 || s->broken) return -1;
    const auto* in = reinterpret_cast<const uint8_t*>(data);
    if (!s->sealing) {
        if (!s->reserve(size_t(len))) return -1;
        std::memcpy(s->buf + s->tail, in, size_t(len));
        s->tail += size_t(len);
        return len;
    }
    // One record per write as OpenSSL sends them (at most 16 KiB); longer application data is
    // cut, a control record (handshake, alert) is never longer than one record.
    const uint8_t type = s->record_type != 0 ? uint8_t(s->record_type) : 23;
    s->record_type = 0;
    size_t done = 0;
    do {
        const size_t n = std::min(size_t(len) - done, RecordProtection::kMaxPlaintext);
        if (!s->reserve(n + RecordProtection::kOverhead)) return -1;
        const size_t out = s->sealer.seal(type, {in + done, n}, s->buf + s->tail);
        if (out == 0) {
            s->broken = true;
            return -1;
        }
        s->tail += out;
        ++s->sealed;
        done += n;
    } while (done < size_t(len));
    return len;
}

int bio_read(BIO* b, char* out, int len) {
    State* s = state(b);
    BIO_clear_retry_flags(b);
    if (s == nullptr || len <= 0) return 0;
    for (;;) {
        const ssize_t n = ::recv(s->fd, out, size_t(len), MSG_DONTWAIT);
        if (n > 0) return int(n);
        if (n == 0) {
            BIO_set_flags(b, BIO_FLAGS_IN_EOF);
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
        return -1;
    }
}

// The Linux kTLS key structure OpenSSL fills for the kernel; TLS 1.3 AES-GCM only.
long accept_key(State* s, const void* ptr) {
    const auto* info = static_cast<const tls_crypto_info*>(ptr);
    if (!s->offer || info == nullptr || info->version != TLS_1_3_VERSION) return 0;
    uint8_t iv[12];
    auto seq_of = [](const unsigned char* rec_seq) {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v = (v << 8) | rec_seq[i];
        return v;
    };
    bool ok = false;
    if (info->cipher_type == TLS_CIPHER_AES_GCM_128) {
        const auto* k = static_cast<const tls12_crypto_info_aes_gcm_128*>(ptr);
        std::memcpy(iv, k->salt, 4);
        std::memcpy(iv + 4, k->iv, 8);
        ok = s->sealer.set_key(RecordProtection::Cipher::aes_128_gcm, {k->key, sizeof k->key},
                               std::span<const uint8_t, 12>(iv, 12), seq_of(k->rec_seq));
    } else if (info->cipher_type == TLS_CIPHER_AES_GCM_256) {
        const auto* k = static_cast<const tls12_crypto_info_aes_gcm_256*>(ptr);
        std::memcpy(iv, k->salt, 4);
        std::memcpy(iv + 4, k->iv, 8);
        ok = s->sealer.set_key(RecordProtection::Cipher::aes_256_gcm, {k->key, sizeof k->key},
                               std::span<const uint8_t, 12>(iv, 12), seq_of(k->rec_seq));
    }
    OPENSSL_cleanse(iv, sizeof iv);
    if (!ok) return 0;
    s->sealing = true;
    return 1;
}

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
    State* s = state(b);
    if (s == nullptr) return 0;
    switch (cmd) {
        case BIO_CTRL_FLUSH:
            BIO_clear_retry_flags(b);
            if (s->drain() == 0) return 1;
            if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
            return -1;
        case BIO_CTRL_WPENDING:
            return long(s->pending());
        case BIO_CTRL_PENDING:
            return 0;
        case BIO_CTRL_EOF:
            return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
        case BIO_CTRL_GET_KTLS_SEND:
            return s->sealing ? 1 : 0;
        case BIO_CTRL_GET_KTLS_RECV:
            return 0;
        case kCtrlSetKtls:
            return num != 0 ? accept_key(s, ptr) : 0;  // sending keys only (num: is_tx)
        case kCtrlSetKtlsTxCtrlMsg:
            s->record_type = int(num);
            return 0;
        case kCtrlClearKtlsTxCtrlMsg:
            s->record_type = 0;
            return 0;
        case BIO_CTRL_DUP:
            return 1;
        default:
            return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_data(b, nullptr);
    BIO_set_init(b, 0);
    return 1;
}

int bio_destroy(BIO* b) {
    if (b == nullptr) return 0;
    if (State* s = state(b); s != nullptr) {
        std::free(s->buf);
        delete s;
    }
    BIO_set_data(b, nullptr);
    return 1;
}

int method_type() {
    static const int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
    return type;
}

BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* meth = BIO_meth_new(method_type(), "porthole socket");
        if (meth == nullptr) return meth;
        BIO_meth_set_write(meth, bio_write);
        BIO_meth_set_read(meth, bio_read);
        BIO_meth_set_ctrl(meth, bio_ctrl);
        BIO_meth_set_create(meth, bio_create);
        BIO_meth_set_destroy(meth, bio_destroy);
        return meth;
    }();
    return m;
}

}  // namespace

BIO* new_socket_bio(int fd, size_t send_buffer, bool seal) {
    BIO_METHOD* m = method();
    if (m == nullptr) return nullptr;
    BIO* b = BIO_new(m);
    if (b == nullptr) return nullptr;
    auto* s = new State;
    s->fd = fd;
    s->offer = seal && RecordProtection::available();
    s->capacity = send_buffer;
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    return b;
}

uint64_t socket_bio_sealed_records(BIO* b) {
    State* s = find(b);
    return s != nullptr ? s->sealed : 0;
}

bool set_sealing_secret(BIO* b, std::span<const uint8_t> secret) {
    State* s = find(b);
    if (s == nullptr || !s->sealing) return false;
    if (!s->sealer.update_from_secret(secret)) {
        s->broken = true;
        return false;
    }
    return true;
}

bool socket_bio_send_alert(BIO* b, uint8_t description) {
    State* s = find(b);
    if (s == nullptr || !s->sealing || s->broken) return false;
    const uint8_t alert[2] = {2, description};  // level fatal
    if (!s->reserve(sizeof alert + RecordProtection::kOverhead)) return false;
    const size_t out = s->sealer.seal(21, alert, s->buf + s->tail);
    if (out == 0) return false;
    s->tail += out;
    ++s->sealed;
    s->broken = true;  // nothing more after a fatal alert
    const int saved = errno;
    (void)s->drain();  // best effort: the connection is closed next
    errno = saved;
    return true;
}

bool socket_bio_make_room(BIO* b) {
    State* s = find(b);
    if (s == nullptr || s->pending() < s->capacity) return true;
    const int saved = errno;
    (void)s->drain();  // partial progress counts; an error shows at the next flush
    errno = saved;
    return s->pending() < s->capacity;
}

void socket_bio_release(BIO* b) {
    State* s = find(b);
    if (s == nullptr || s->pending() > 0 || s->buf == nullptr) return;
    std::free(s->buf);
    s->buf = nullptr;
    s->size = s->head = s->tail = 0;
}

}  // namespace porthole::tls

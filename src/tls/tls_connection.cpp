#include "tls/tls_connection.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>

#include "tls/openssl_error.hpp"
#include "tls/record_reader.hpp"
#include "tls/socket_bio.hpp"

namespace porthole::tls {

namespace {
constexpr long kWriteBufferLen = 256 * 1024;  // records gathered per send()
}  // namespace
namespace {

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct GeneralNamesDeleter {
    void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

// What the verify callback saw of the peer's certificate, kept in the SSL's ex_data so that a
// failed verification can say which certificate and why (the peer certificate is not kept by
// OpenSSL when verification fails).
struct PeerInfo {
    bool seen = false;  // a leaf certificate was offered
    std::string leaf_subject;
    std::string leaf_issuer;
    std::string leaf_names;  // "DNS:a, IP:1.2.3.4" or "CN=a"
    int error = X509_V_OK;   // first verification error
    int error_depth = 0;
    std::string error_subject;  // the certificate the error is about
    std::string error_issuer;
    std::string error_not_before;
    std::string error_not_after;
    bool handshake_done = false;  // handshake() has returned ok
    bool data_read = false;       // application data has been received (not just the handshake)
    std::unique_ptr<SSL_SESSION, SessionDeleter> ticket;  // client: the newest ticket received
    // Receiving with porthole's record reader (record_reader.hpp): present from the start where
    // it may take over, gone once it is clear it will not.
    std::unique_ptr<RecordReader> reader;
};

void free_peer_info(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<PeerInfo*>(ptr);
}

int peer_info_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_peer_info);
    return index;
}

PeerInfo* peer_info(const SSL* ssl) {
    return static_cast<PeerInfo*>(SSL_get_ex_data(ssl, peer_info_index()));
}

// "CN=Lab CA,O=Example": RFC 2253 order-reversed one line, UTF-8 kept as is.
std::string name_line(const X509_NAME* name) {
    if (name == nullptr) return "(none)";
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
    if (!bio) return "(unprintable)";
    if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
        return "(unprintable)";
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    if (len <= 0 || data == nullptr) return "(empty)";
    return std::string(data, size_t(len));
}

// The first CN of a name, UTF-8; empty when there is none.
std::string common_name(const X509_NAME* name) {
    if (name == nullptr) return {};
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return {};
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, s);
    if (len < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), size_t(len));
    OPENSSL_free(utf8);
    return out;
}

// "2025-01-31 12:00:00 UTC"
std::string time_line(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "(unknown date)";
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// The names a certificate is valid for: its DNS and IP SANs, or its CN when it has none.
std::string cert_names(X509* cert) {
    std::string out;
    std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> sans(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
        std::string item;
        if (gn->type == GEN_DNS) {
            const ASN1_STRING* s = gn->d.dNSName;
            item = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        size_t(ASN1_STRING_length(s)));
        } else if (gn->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* s = gn->d.iPAddress;
            char text[INET6_ADDRSTRLEN] = "?";
            int len = ASN1_STRING_length(s);
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text,
                          sizeof text);
            item = std::string("IP:") + text;
        } else {
            continue;
        }
        out += out.empty() ? item : ", " + item;
    }
    if (!out.empty()) return out;
    std::string cn = common_name(X509_get_subject_name(cert));
    return cn.empty() ? "no names" : "CN=" + cn;
}

// Records the leaf and the first error; keeps OpenSSL's verdict (never overrides a failure).
int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    PeerInfo* info = ssl != nullptr ? peer_info(ssl) : nullptr;
    if (info == nullptr) return preverify_ok;
    if (!info->seen) {
        if (X509* leaf = X509_STORE_CTX_get0_cert(store); leaf != nullptr) {
            info->seen = true;
            info->leaf_subject = name_line(X509_get_subject_name(leaf));
            info->leaf_issuer = name_line(X509_get_issuer_name(leaf));
            info->leaf_names = cert_names(leaf);
        }
    }
    if (preverify_ok == 0 && info->error == X509_V_OK) {
        info->error = X509_STORE_CTX_get_error(store);
        info->error_depth = X509_STORE_CTX_get_error_depth(store);
        if (X509* cert = X509_STORE_CTX_get_current_cert(store); cert != nullptr) {
            info->error_subject = name_line(X509_get_subject_name(cert));
            info->error_issuer = name_line(X509_get_issuer_name(cert));
            info->error_not_before = time_line(X509_get0_notBefore(cert));
            info->error_not_after = time_line(X509_get0_notAfter(cert));
        }
    }
    return preverify_ok;
}

bool is_unknown_ca(long v) {
    return v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

// Alerts that mean "your certificate is not acceptable to me".
bool is_certificate_alert(int alert) {
    switch (alert) {
        case SSL_AD_BAD_CERTIFICATE:
        case SSL_AD_UNSUPPORTED_CERTIFICATE:
        case SSL_AD_CERTIFICATE_REVOKED:
        case SSL_AD_CERTIFICATE_EXPIRED:
        case SSL_AD_CERTIFICATE_UNKNOWN:
        case SSL_AD_UNKNOWN_CA:
        case SSL_AD_ACCESS_DENIED:
        case SSL_AD_CERTIFICATE_REQUIRED:
            return true;
        default:
            return false;
    }
}

// "unknown ca", "certificate required", ...: OpenSSL's long alert name, lower case.
std::string alert_name(int alert) {
    if (alert == SSL_AD_CERTIFICATE_REQUIRED) return "certificate required";
    std::string name = SSL_alert_desc_string_long(alert);
    for (char& ch : name)
        ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return name;
}

bool is_not_tls(int reason) {
    switch (reason) {
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_UNKNOWN_PROTOCOL:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_RECORD_LENGTH_MISMATCH:
        case SSL_R_BAD_PACKET_LENGTH:
        case SSL_R_WRONG_SSL_VERSION:
            return true;
        default:
            return false;
    }
}

// The name the client verifies in the server certificate: a host name or an IP address.
std::string verified_name(SSL* ssl) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    std::string name;
    if (const char* host = X509_VERIFY_PARAM_get0_host(param, 0); host != nullptr) {
        name = host;
    } else if (char* ip = X509_VERIFY_PARAM_get1_ip_asc(param); ip != nullptr) {
        name = ip;
        OPENSSL_free(ip);
    }
    ERR_clear_error();
    return name;
}

// The root cause in the error queue: the first error from the SSL library, else the first one.
unsigned long first_error() {
    unsigned long first = 0;
    unsigned long first_ssl = 0;
    for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
        if (first == 0) first = e;
        if (first_ssl == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) first_ssl = e;
    }
    return first_ssl != 0 ? first_ssl : first;
}

// OpenSSL's message callback, set while the record reader may still take over: counts the
// records OpenSSL reads (one header each), so that the reader knows the next sequence number.
void count_read_records(int write_p, int, int content_type, const void*, size_t, SSL* ssl, void*) {
    if (write_p != 0 || content_type != SSL3_RT_HEADER) return;
    if (PeerInfo* info = peer_info(ssl); info != nullptr && info->reader)
        info->reader->record_seen();
}

// The connection will not hand receiving over: OpenSSL reads ahead again, counts no more.
void keep_openssl_reading(SSL* ssl, PeerInfo* info) {
    SSL_set_read_ahead(ssl, 1);
    SSL_set_msg_callback(ssl, nullptr);
    if (info != nullptr) info->reader.reset();
}

// The record protection of the session's cipher, when the reader can open it.
std::optional<RecordProtection::Cipher> openable_cipher(const SSL* ssl) {
    if (SSL_version(ssl) != TLS1_3_VERSION) return std::nullopt;
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
    const uint32_t id = c != nullptr ? SSL_CIPHER_get_id(c) : 0;
    if (id == TLS1_3_CK_AES_128_GCM_SHA256) return RecordProtection::Cipher::aes_128_gcm;
    if (id == TLS1_3_CK_AES_256_GCM_SHA384) return RecordProtection::Cipher::aes_256_gcm;
    return std::nullopt;
}

}  // namespace

Result<TlsConnection> TlsConnection::make(const TlsContext& ctx, int fd) {
    ERR_clear_error();
    SSL* raw = SSL_new(ctx.get());
    if (raw == nullptr) {
        return make_error("cannot create TLS connection: {}",
                          reason_text(first_error(), "out of memory"));
    }
    TlsConnection conn(raw, ctx.is_server(), ctx.key_update_records());
    auto* info = new PeerInfo;
    if (SSL_set_ex_data(raw, peer_info_index(), info) != 1) {
        delete info;
        ERR_clear_error();
        return make_error("cannot create TLS connection: ex_data");
    }
    // Keep the context's verify mode, add the callback that records what failed.
    SSL_set_verify(raw, SSL_get_verify_mode(raw), verify_callback);
    // Reads come straight from the socket (read-ahead fills 64 KiB per recv); writes gather in
    // the BIO's send buffer so that many records leave in one send() when the owner calls
    // flush(). Where the context allows it, the BIO also seals TLS 1.3 records (socket_bio.hpp).
    const bool seal = (SSL_CTX_get_options(ctx.get()) & SSL_OP_ENABLE_KTLS) != 0;
    BIO* bio = new_socket_bio(fd, kWriteBufferLen, seal);
    if (bio == nullptr) {
        ERR_clear_error();
        return make_error("cannot attach TLS to socket {}", fd);
    }
    SSL_set_bio(raw, bio, bio);  // one BIO both ways: the SSL holds its one reference
    if (seal) {
        // Receiving may be handed to porthole's record reader after the handshake: until then
        // OpenSSL reads record by record (no bytes it has not processed left in its buffer) and
        // reports each one, so that the reader knows where to start (record_reader.hpp).
        info->reader = std::make_unique<RecordReader>(fd, ctx.is_server());
        SSL_set_read_ahead(raw, 0);
        SSL_set_msg_callback(raw, count_read_records);
    }
    if (ctx.is_server()) {
        SSL_set_accept_state(raw);
    } else {
        SSL_set_connect_state(raw);
        // SNI carries DNS names only (RFC 6066 §3): not when the server is named by IP address.
        const std::string& name = ctx.server_name();
        unsigned char buf[16];
        bool is_ip = inet_pton(AF_INET, name.c_str(), buf) == 1 ||
                     inet_pton(AF_INET6, name.c_str(), buf) == 1;
        if (!name.empty() && !is_ip && SSL_set_tlsext_host_name(raw, name.c_str()) != 1) {
            ERR_clear_error();
            return make_error("server name '{}': cannot be sent as SNI", name);
        }
    }
    ERR_clear_error();
    return conn;
}

TlsConnection::~TlsConnection() {
    // OpenSSL drops a connection's session from the server's cache when the SSL is freed
    // without a close_notify sent (a "bad" session): that would void the UE's ticket exactly
    // when its connection was cut. Only a session that failed at the TLS layer is bad.
    SSL* s = ssl_.get();
    if (s != nullptr && is_server_ && !tls_failed_ && SSL_is_init_finished(s))
        SSL_set_shutdown(s, SSL_get_shutdown(s) | SSL_SENT_SHUTDOWN);
}

TlsStatus TlsConnection::handshake() {
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_.get());
    if (ret == 1) {
        PeerInfo* info = peer_info(ssl_.get());
        if (info != nullptr) info->handshake_done = true;
        if (info != nullptr && info->reader) {
            info->reader->handshake_done();
            if (!openable_cipher(ssl_.get()) || !info->reader->has_secret())
                keep_openssl_reading(ssl_.get(), info);
            else if (is_server_)
                take_over_reading();  // a client sends no tickets: nothing more for OpenSSL
        }
        ERR_clear_error();
        return TlsStatus::ok;
    }
    return classify(ret, "handshake");
}

void TlsConnection::take_over_reading() {
    SSL* s = ssl_.get();
    PeerInfo* info = peer_info(s);
    if (info == nullptr || !info->reader) return;
    auto cipher = openable_cipher(s);
    if (SSL_pending(s) > 0 || SSL_has_pending(s) == 1) return;  // not at a record boundary yet
    if (!cipher || !info->reader->start(*cipher)) return keep_openssl_reading(s, info);
    SSL_set_msg_callback(s, nullptr);
    (void)SSL_free_buffers(s);  // OpenSSL reads nothing more
    ERR_clear_error();
}

TlsIo TlsConnection::read(std::span<std::byte> buf) {
    if (buf.empty()) return {TlsStatus::ok, 0};
    PeerInfo* info = peer_info(ssl_.get());
    if (info != nullptr && info->reader && info->reader->active()) {
        auto r = info->reader->read(buf);
        if (info->reader->take_update_request()) peer_asked_update_ = true;
        switch (r.status) {
            case RecordReader::Status::ok:
                info->data_read = true;
                limit_.received(r.bytes);
                return {TlsStatus::ok, r.bytes};
            case RecordReader::Status::want_read:
                return {TlsStatus::want_read, 0};
            case RecordReader::Status::closed:
                return {TlsStatus::closed, 0};
            case RecordReader::Status::failed:
                // As with OpenSSL reading: a reset is the transport's failure, not the session's
                // (the ticket stays good).
                if (!info->reader->transport_failed()) tls_failed_ = true;
                error_ = fmt::format("TLS read: {}", info->reader->error());
                // The alert OpenSSL would have sent for the same mistake, under our sending key.
                if (int alert = info->reader->alert_to_send(); alert != 0)
                    (void)socket_bio_send_alert(SSL_get_wbio(ssl_.get()), uint8_t(alert));
                return {TlsStatus::failed, 0};
        }
    }
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
    if (ret == 1) {
        if (info != nullptr) {
            info->handshake_done = info->data_read = true;
            // The client hands receiving over after the server's first application data: the
            // session tickets come before it, and OpenSSL has kept them.
            if (info->reader) take_over_reading();
        }
        limit_.received(n);
        return {TlsStatus::ok, n};
    }
    return {classify(ret, "read"), 0};
}

TlsIo TlsConnection::write(std::span<const std::byte> buf) {
    if (buf.empty()) return {TlsStatus::ok, 0};
    // Only ever between two completed writes: a write that returned want_write is repeated
    // with the same bytes before the limit can be reached again.
    if (limit_.due() || limit_.peer_due() || peer_asked_update_) {
        if (TlsStatus s = renew_key(); s != TlsStatus::ok) return {s, 0};
    }
    // A full send buffer makes the write wait here, before OpenSSL has taken the bytes.
    if (!socket_bio_make_room(SSL_get_wbio(ssl_.get()))) {
        if (TlsStatus f = flush(); f != TlsStatus::ok) return {f, 0};
    }
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_write_ex(ssl_.get(), buf.data(), buf.size(), &n);
    if (ret == 1) {
        if (PeerInfo* info = peer_info(ssl_.get()); info != nullptr) info->handshake_done = true;
        limit_.sent(n);
        return {TlsStatus::ok, n};
    }
    return {classify(ret, "write"), 0};
}

TlsStatus TlsConnection::renew_key() {
    SSL* s = ssl_.get();
    if (SSL_version(s) != TLS1_3_VERSION) {
        error_ = fmt::format(
            "the TLS 1.2 session has {} under one key, its limit; TLS 1.2 cannot update keys, "
            "so the connection ends and a new one makes new keys (TLS 1.3 would update them in "
            "place)",
            limit_.due() ? fmt::format("sent {} records", limit_.count())
                         : std::string("received more than the records allowed"));
        return TlsStatus::failed;
    }
    ERR_clear_error();
    // Each side renews its own sending key on its own count (NOT_REQUESTED); the peer's OpenSSL
    // switches its receiving key when the KeyUpdate message arrives. REQUESTED also asks the
    // peer to renew its sending key, when it has sent too much without doing so.
    const bool ask = limit_.peer_due();
    if (SSL_key_update(s, ask ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
        error_ = fmt::format("cannot update the TLS key: {}", reason_text(first_error()));
        return TlsStatus::failed;
    }
    limit_.renewed();
    if (ask) limit_.peer_asked();
    peer_asked_update_ = false;  // answered (RFC 8446 §4.6.3), before any more application data
    return TlsStatus::ok;
}

void TlsConnection::shutdown() {
    SSL* s = ssl_.get();
    // Only a completed, healthy session gets a close_notify; after a fatal error OpenSSL sends
    // nothing more anyway.
    if (SSL_is_init_finished(s) && error_.empty()) {
        ERR_clear_error();
        (void)SSL_shutdown(s);
    }
    (void)flush();
    ERR_clear_error();
}

TlsStatus TlsConnection::flush() {
    BIO* w = SSL_get_wbio(ssl_.get());
    if (w == nullptr || BIO_wpending(w) == 0) return TlsStatus::ok;
    ERR_clear_error();
    errno = 0;
    if (BIO_flush(w) > 0) return TlsStatus::ok;
    if (BIO_should_retry(w)) return TlsStatus::want_write;
    int err = errno;
    ERR_clear_error();
    if (error_.empty())
        error_ = err != 0 ? fmt::format("send failed: {}", std::strerror(err))
                          : std::string("send failed");
    return TlsStatus::failed;
}

size_t TlsConnection::unflushed() const {
    BIO* w = SSL_get_wbio(ssl_.get());
    return w == nullptr ? 0 : size_t(BIO_wpending(w));
}

std::string TlsConnection::peer_identity() const {
    SSL* s = ssl_.get();
    X509* cert = SSL_get0_peer_certificate(s);
    if (cert == nullptr || SSL_get_verify_result(s) != X509_V_OK) return {};
    const X509_NAME* subject = X509_get_subject_name(cert);
    std::string cn = common_name(subject);
    return cn.empty() ? name_line(subject) : cn;
}

std::string TlsConnection::description() const {
    const char* cipher = SSL_get_cipher_name(ssl_.get());
    return fmt::format("{} {}{}", SSL_get_version(ssl_.get()),
                       cipher != nullptr ? cipher : "(none)", resumed() ? ", resumed" : "");
}

void TlsConnection::offer_ticket(const SessionTicket& ticket) {
    if (is_server_ || ticket.empty() || SSL_is_init_finished(ssl_.get())) return;
    if (ticket.server_name() != verified_name(ssl_.get())) return;
    // A copy: OpenSSL marks the session of a connection freed without close_notify (a cut
    // connection) as not resumable, and the ticket we hold must stay usable.
    ERR_clear_error();
    std::unique_ptr<SSL_SESSION, SessionDeleter> copy(SSL_SESSION_dup(ticket.get()));
    if (copy && SSL_set_session(ssl_.get(), copy.get()) == 1) ticket_offered_ = true;
    ERR_clear_error();
}

void TlsConnection::forget_session() {
    SSL* s = ssl_.get();
    if (SSL_SESSION* session = SSL_get_session(s); is_server_ && session != nullptr)
        (void)SSL_CTX_remove_session(SSL_get_SSL_CTX(s), session);
    ERR_clear_error();
}

bool TlsConnection::resumed() const {
    return SSL_is_init_finished(ssl_.get()) && SSL_session_reused(ssl_.get()) == 1;
}

SessionTicket TlsConnection::take_ticket() {
    PeerInfo* info = peer_info(ssl_.get());
    if (info == nullptr || !info->ticket) return {};
    return SessionTicket(info->ticket.release(), verified_name(ssl_.get()));
}

namespace detail {
int keep_new_session(SSL* ssl, SSL_SESSION* session) {
    PeerInfo* info = peer_info(ssl);
    // TLS 1.2 sessions are never resumed (no key exchange on resumption): not kept.
    if (info == nullptr || SSL_SESSION_get_protocol_version(session) != TLS1_3_VERSION ||
        SSL_SESSION_is_resumable(session) != 1)
        return 0;
    // A copy, not the connection's own session object: when the connection is freed without
    // close_notify (cut, reset: the very case resumption is for) OpenSSL marks its session as
    // not resumable.
    if (SSL_SESSION* copy = SSL_SESSION_dup(session); copy != nullptr)
        info->ticket.reset(copy);  // the newest replaces an older one
    ERR_clear_error();
    return 0;  // OpenSSL keeps (and frees) the session it passed
}
}  // namespace detail

TlsStatus TlsConnection::classify(int ret, const char* op) {
    const int saved_errno = errno;
    SSL* s = ssl_.get();
    const int code = SSL_get_error(s, ret);
    switch (code) {
        case SSL_ERROR_WANT_READ:
            ERR_clear_error();
            return TlsStatus::want_read;
        case SSL_ERROR_WANT_WRITE:
            ERR_clear_error();
            return TlsStatus::want_write;
        case SSL_ERROR_ZERO_RETURN: {
            ERR_clear_error();
            // A server context with tickets takes a bare EOF as close_notify
            // (SSL_OP_IGNORE_UNEXPECTED_EOF); during the handshake it still deserves a reason.
            const PeerInfo* pi = peer_info(s);
            if (pi == nullptr || !pi->handshake_done)
                error_ = fmt::format("{} closed the connection during the TLS handshake",
                                     is_server_ ? "the client" : "the concentrator");
            return TlsStatus::closed;
        }
        case SSL_ERROR_SYSCALL:
            // OpenSSL 3.0 runs a post-handshake message (our KeyUpdate) with its own buffering
            // BIO pushed on top of ours; when flushing it reaches our socket and that would
            // block, the retry flags stop at our BIO and SSL_get_error() says SYSCALL instead
            // of WANT_WRITE. Our BIO knows better: a write to repeat when the socket drains
            // (OpenSSL resumes the message where it stopped).
            if (ERR_peek_error() == 0 && SSL_want_write(s)) {
                BIO* w = SSL_get_wbio(s);
                if (w != nullptr && BIO_should_retry(w) && BIO_should_write(w))
                    return TlsStatus::want_write;
            }
            break;
        default:
            break;
    }
    const unsigned long err = first_error();  // also empties the queue
    const int reason = err != 0 ? ERR_GET_REASON(err) : 0;
    const PeerInfo* info = peer_info(s);
    // Not SSL_is_init_finished(): a fatal error puts OpenSSL back "in init".
    const bool in_handshake = info == nullptr || !info->handshake_done;
    const std::string peer = is_server_ ? "the client" : "the concentrator";

    // TCP EOF without close_notify: OpenSSL 3 reports it as SSL_R_UNEXPECTED_EOF_WHILE_READING,
    // older versions as SSL_ERROR_SYSCALL with nothing queued.
    const bool eof = (code == SSL_ERROR_SYSCALL && err == 0 && (ret == 0 || saved_errno == 0)) ||
                     (code == SSL_ERROR_SSL && ERR_GET_LIB(err) == ERR_LIB_SSL &&
                      reason == SSL_R_UNEXPECTED_EOF_WHILE_READING);
    // In TLS 1.3 the concentrator checks our certificate after our handshake is complete; if it
    // drops the connection without its alert reaching us, say what that probably means.
    const bool just_after_handshake =
        !is_server_ && !in_handshake && info != nullptr && !info->data_read;
    const char* hint = just_after_handshake
                           ? " (right after the handshake: our certificate may have been refused)"
                           : "";
    if (!eof && code == SSL_ERROR_SSL) tls_failed_ = true;
    if (eof) {
        if (in_handshake)
            error_ = fmt::format("{} closed the connection during the TLS handshake", peer);
        else if (just_after_handshake)
            error_ = fmt::format("{} closed the connection{}", peer, hint);
        return TlsStatus::closed;
    }
    if (code == SSL_ERROR_SYSCALL) {
        if (err == 0) {
            error_ = fmt::format("TLS {}: {}{}", op, std::strerror(saved_errno), hint);
        } else {
            error_ = fmt::format("TLS {}: {}{}", op, reason_text(err), hint);
        }
        return TlsStatus::failed;
    }
    if (code != SSL_ERROR_SSL || err == 0) {
        error_ = fmt::format("TLS {} failed (SSL error {})", op, code);
        return TlsStatus::failed;
    }

    if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(s);
        if (info != nullptr && info->error != X509_V_OK) v = info->error;
        const std::string why = X509_verify_cert_error_string(v);
        const bool leaf = info == nullptr || info->error_depth == 0;
        const std::string which =
            leaf ? std::string(is_server_ ? "client certificate" : "server certificate")
                 : fmt::format("CA certificate '{}' in the chain", info->error_subject);
        if (is_server_) {
            const std::string subject = info != nullptr ? info->leaf_subject : "?";
            const std::string issuer = info != nullptr ? info->leaf_issuer : "?";
            if (is_unknown_ca(v)) {
                error_ = fmt::format(
                    "client certificate rejected: not issued by the configured client CA "
                    "(subject: {}, issuer: {})",
                    subject, issuer);
            } else if (v == X509_V_ERR_CERT_REVOKED) {
                error_ = fmt::format(
                    "client certificate rejected: the {} is revoked (listed in the CRL; subject: "
                    "{}, issuer: {})",
                    which, subject, issuer);
            } else if (v == X509_V_ERR_UNABLE_TO_GET_CRL) {
                error_ = fmt::format(
                    "client certificate rejected: no CRL of its issuer is loaded (crl-file; "
                    "subject: {}, issuer: {})",
                    subject, issuer);
            } else if (v == X509_V_ERR_CERT_HAS_EXPIRED && info != nullptr) {
                error_ =
                    fmt::format("client certificate rejected: the {} expired on {} (subject: {})",
                                which, info->error_not_after, subject);
            } else if (v == X509_V_ERR_CERT_NOT_YET_VALID && info != nullptr) {
                error_ = fmt::format(
                    "client certificate rejected: the {} is not valid before {} (subject: {})",
                    which, info->error_not_before, subject);
            } else {
                error_ = fmt::format("client certificate rejected: {} (subject: {}, issuer: {})",
                                     why, subject, issuer);
            }
        } else {
            if (is_unknown_ca(v)) {
                const std::string issuer =
                    info != nullptr && !info->leaf_issuer.empty() ? info->leaf_issuer : "?";
                error_ = fmt::format(
                    "TLS verification failed: the server certificate is not issued by the "
                    "configured CA (issuer: {}; a TLS-intercepting middlebox?)",
                    issuer);
            } else if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
                X509_VERIFY_PARAM* param = SSL_get0_param(s);
                std::string name;
                if (const char* host = X509_VERIFY_PARAM_get0_host(param, 0); host != nullptr)
                    name = host;
                else if (char* ip = X509_VERIFY_PARAM_get1_ip_asc(param); ip != nullptr) {
                    name = ip;
                    OPENSSL_free(ip);
                }
                error_ = fmt::format(
                    "TLS verification failed: certificate does not match server name '{}' (it "
                    "names: {})",
                    name, info != nullptr ? info->leaf_names : "?");
            } else if (v == X509_V_ERR_CERT_HAS_EXPIRED && info != nullptr) {
                error_ = fmt::format("TLS verification failed: the {} expired on {}", which,
                                     info->error_not_after);
            } else if (v == X509_V_ERR_CERT_NOT_YET_VALID && info != nullptr) {
                error_ = fmt::format("TLS verification failed: the {} is not valid before {}",
                                     which, info->error_not_before);
            } else {
                error_ = fmt::format("TLS verification failed: {}", why);
            }
        }
        return TlsStatus::failed;
    }

    if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason > SSL_AD_REASON_OFFSET &&
        reason < SSL_AD_REASON_OFFSET + 256) {
        const int alert = reason - SSL_AD_REASON_OFFSET;
        const std::string name = alert_name(alert);
        if (!is_server_ && alert == SSL_AD_CERTIFICATE_REVOKED) {
            error_ = fmt::format(
                "authentication refused: the concentrator says our certificate is revoked; ask "
                "its operator for a new one (TLS alert '{}')",
                name);
        } else if (is_certificate_alert(alert)) {
            error_ = is_server_
                         ? fmt::format("the client rejected our certificate (TLS alert '{}')", name)
                         : fmt::format(
                               "authentication refused: the concentrator rejected our "
                               "certificate (TLS alert '{}')",
                               name);
        } else if (alert == SSL_AD_PROTOCOL_VERSION) {
            error_ = fmt::format(
                "{} refused our TLS version: it requires a newer version than we allow (TLS "
                "alert '{}')",
                peer, name);
        } else {
            error_ = fmt::format("{} aborted the TLS {} (TLS alert '{}')", peer, op, name);
        }
        return TlsStatus::failed;
    }

    if (ERR_GET_LIB(err) == ERR_LIB_SSL) {
        if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
            error_ = "client sent no certificate";
            return TlsStatus::failed;
        }
        if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW) {
            error_ = "peer offered only TLS versions older than allowed";
            return TlsStatus::failed;
        }
        if (in_handshake && is_not_tls(reason)) {
            error_ = fmt::format("peer does not speak TLS ({})", reason_text(err));
            return TlsStatus::failed;
        }
        if (reason == SSL_R_NO_SHARED_CIPHER) {
            error_ = "no TLS cipher suite in common with the peer";
            return TlsStatus::failed;
        }
    }
    error_ = fmt::format("TLS {} failed: {}", op, reason_text(err, "unknown error"));
    return TlsStatus::failed;
}

uint64_t TlsConnection::sealed_records() const {
    return socket_bio_sealed_records(SSL_get_wbio(ssl_.get()));
}

uint64_t TlsConnection::opened_records() const {
    const PeerInfo* info = peer_info(ssl_.get());
    return info != nullptr && info->reader ? info->reader->records() : 0;
}

uint64_t TlsConnection::peer_key_updates_opened() const {
    const PeerInfo* info = peer_info(ssl_.get());
    return info != nullptr && info->reader ? info->reader->key_updates() : 0;
}

void TlsConnection::release_buffers() {
    if (SSL_pending(ssl_.get()) == 0) (void)SSL_free_buffers(ssl_.get());
    socket_bio_release(SSL_get_wbio(ssl_.get()));
    if (PeerInfo* info = peer_info(ssl_.get()); info != nullptr && info->reader)
        info->reader->release();
    ERR_clear_error();
}

namespace detail {
void note_peer_secret(const SSL* ssl, std::span<const uint8_t> secret, bool initial) {
    if (PeerInfo* info = peer_info(ssl); info != nullptr && info->reader)
        info->reader->peer_secret(secret, initial);
}
}  // namespace detail

}  // namespace porthole::tls

#include "tls/tls_context.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/log.hpp"
#include "tls/openssl_error.hpp"
#include "tls/record_protection.hpp"
#include "tls/revocation_list.hpp"
#include "tls/socket_bio.hpp"
#include "tls/tls_connection.hpp"

namespace porthole::tls {
namespace {

// TLS 1.2 only (TLS 1.3 suites are set separately): forward secret ECDHE with AEAD ciphers.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr size_t kReadBufferLen = 64 * 1024;

using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

struct NameStackDeleter {
    void operator()(STACK_OF(X509_NAME) * s) const { sk_X509_NAME_pop_free(s, X509_NAME_free); }
};

// Checks that a configured file is set and readable, so that the error is "No such file or
// directory" and not OpenSSL's "system lib".
Result<void> check_readable(std::string_view what, const std::string& path) {
    if (path.empty()) return make_error("{}: no file configured", what);
    if (::access(path.c_str(), R_OK) != 0) {
        int err = errno;
        return Error{fmt::format("{} '{}': {}", what, path, std::strerror(err)), err};
    }
    return ok();
}

int to_openssl_version(TlsVersion v) {
    return v == TlsVersion::v1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

// Everything common to both sides: versions, groups, ciphers, modes, options.
Result<CtxPtr> new_ctx(const SSL_METHOD* method, TlsVersion min_version) {
    ERR_clear_error();
    CtxPtr ctx(SSL_CTX_new(method));
    if (!ctx) return make_error("cannot create TLS context: {}", openssl_reason());
    SSL_CTX* c = ctx.get();
    if (SSL_CTX_set_min_proto_version(c, to_openssl_version(min_version)) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1)
        return make_error("cannot set TLS versions: {}", openssl_reason());
    if (SSL_CTX_set1_groups_list(c, kGroups) != 1)
        return make_error("cannot set TLS groups '{}': {}", kGroups, openssl_reason());
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1)
        return make_error("cannot set TLS 1.2 ciphers: {}", openssl_reason());
    if (SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1)
        return make_error("cannot set TLS 1.3 cipher suites: {}", openssl_reason());
    // Buffers are not released after every record (SSL_MODE_RELEASE_BUFFERS costs an allocation
    // per record under load); owners call TlsConnection::release_buffers() when idle instead.
    // No auto-chaining: our chain is exactly the certificate file (leaf, then intermediates, as
    // web servers take it). Otherwise OpenSSL builds it again on every handshake by verifying
    // our own certificate against the peer-CA store: an ECDSA verification that cost the
    // concentrator ~10 % of a full handshake, for a chain it then usually cannot complete anyway.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_NO_AUTO_CHAIN);
    // Read ahead into a 64 KiB buffer: one recv() brings several records.
    SSL_CTX_set_read_ahead(c, 1);
    SSL_CTX_set_default_read_buffer_len(c, kReadBufferLen);
    // Never SSL_OP_ALLOW_NO_DHE_KEX: a resumed TLS 1.3 session runs a fresh ECDHE too (psk_dhe_ke),
    // so that it keeps forward secrecy. Tickets are set up per side below.
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(c, SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return ctx;
}

// Loads our certificate chain and key and checks that they belong together.
Result<void> load_identity(SSL_CTX* c, const std::string& cert_file, const std::string& key_file) {
    if (auto r = check_readable("certificate file", cert_file); !r) return r.error();
    if (auto r = check_readable("key file", key_file); !r) return r.error();
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1)
        return make_error("certificate file '{}': cannot load: {}", cert_file, openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        // OpenSSL checks the key against the certificate while loading it.
        const unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                               ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
            return make_error("key file '{}' does not match certificate file '{}' ({})", key_file,
                              cert_file, openssl_reason());
        return make_error("key file '{}': cannot load: {}", key_file, openssl_reason());
    }
    if (SSL_CTX_check_private_key(c) != 1)
        return make_error("key file '{}' does not match certificate file '{}' ({})", key_file,
                          cert_file, openssl_reason());
    return ok();
}

// Trust exactly the CA file given: no system default store.
Result<void> load_trust(SSL_CTX* c, std::string_view what, const std::string& ca_file) {
    if (auto r = check_readable(what, ca_file); !r) return r.error();
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(c, ca_file.c_str(), nullptr) != 1)
        return make_error("{} '{}': cannot load: {}", what, ca_file, openssl_reason());
    return ok();
}

// The client CAs' CRLs belong to the SSL_CTX (freed with it: connections made before a reload
// keep the old context alive, and with it the CRLs they were verified against).
void free_revocation_list(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<RevocationList*>(ptr);
}

int revocation_list_index() {
    static const int index =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_revocation_list);
    return index;
}

// Certificate verification with revocation: OpenSSL verifies the chain (signatures, dates,
// purpose; through the connection's verify callback, which records what failed), then the leaf
// is looked up in the CRLs loaded with the context (revocation_list.hpp: why not CRL_CHECK).
int verify_chain_and_revocation(X509_STORE_CTX* store, void* arg) {
    const int verified = X509_verify_cert(store);
    if (verified != 1) return verified;
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
    X509* leaf = sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : nullptr;
    X509* issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : nullptr;
    const auto status = static_cast<const RevocationList*>(arg)->check(leaf, issuer);
    if (status == RevocationList::Status::good) return 1;
    // As X509_verify_cert reports a failure: error, depth and certificate, then the callback.
    X509_STORE_CTX_set_error(store, status == RevocationList::Status::revoked
                                        ? X509_V_ERR_CERT_REVOKED
                                        : X509_V_ERR_UNABLE_TO_GET_CRL);
    X509_STORE_CTX_set_error_depth(store, 0);
    X509_STORE_CTX_set_current_cert(store, leaf);
    X509_STORE_CTX_verify_cb callback = X509_STORE_CTX_get_verify_cb(store);
    return callback != nullptr ? callback(0, store) : 0;
}

// Loads the client CAs' CRLs and checks every UE certificate against them (for the UE's own
// certificate: the CA is ours, a one-level hierarchy). Each CRL must be signed by a client CA:
// a CRL of another CA would make every UE fail with "unable to get certificate CRL".
Result<void> load_crl(SSL_CTX* c, const std::string& crl_file) {
    auto list = RevocationList::load(crl_file, SSL_CTX_get_cert_store(c));
    if (!list) return list.error();
    const int index = revocation_list_index();
    RevocationList* raw = list->get();
    if (index < 0 || SSL_CTX_set_ex_data(c, index, raw) != 1)
        return make_error("crl file '{}': cannot attach to the TLS context: {}", crl_file,
                          openssl_reason());
    (void)list->release();  // the SSL_CTX owns it now
    SSL_CTX_set_cert_verify_callback(c, verify_chain_and_revocation, raw);
    return ok();
}

// Called when a session enters this context's cache (after the ticket for it was sent). Only
// TLS 1.3 sessions of a verified client certificate stay: a TLS 1.2 resumption (by session ID)
// would skip the key exchange, and web visitors without a certificate must not push UEs'
// sessions out. A session never outlives the client certificate it holds: an expired
// certificate must come back through a full handshake and be refused there.
int on_session_cached(SSL* ssl, SSL_SESSION* session) {
    SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
    X509* peer = SSL_SESSION_get0_peer(session);
    bool keep = SSL_SESSION_get_protocol_version(session) == TLS1_3_VERSION && peer != nullptr;
    if (keep) {
        int days = 0, secs = 0;
        if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(peer)) != 1) {
            keep = false;
        } else {
            const long left = long(days) * 86400 + secs;
            if (left <= 0)
                keep = false;
            else if (left < SSL_SESSION_get_timeout(session))
                (void)SSL_SESSION_set_timeout(session, left);
        }
    }
    if (!keep) (void)SSL_CTX_remove_session(ctx, session);
    ERR_clear_error();
    return 0;  // the cache holds its own reference
}

// TLS 1.3 session tickets, stateful: the ticket is a random session ID, the session itself (the
// verified client certificate, the resumption secret) stays in this context's memory, so a
// resumption decodes nothing. (OpenSSL 3.0's stateless tickets serialize the session and decode
// the client certificate again both when issuing and when accepting a ticket: ~0.17 ms and
// ~0.3 ms of CPU, most of what resumption saves.) One ticket after each handshake, valid
// `lifetime`; 0 turns them off.
Result<void> set_tickets(SSL_CTX* c, std::chrono::seconds lifetime) {
    if (lifetime.count() <= 0) return ok();  // new_ctx left them off
    if (lifetime > kMaxTicketLifetime)
        return make_error("ticket lifetime {} s: at most {} s (7 days)", lifetime.count(),
                          kMaxTicketLifetime.count());
    // SSL_OP_NO_TICKET (set by new_ctx) is what makes TLS 1.3 tickets stateful; it also keeps
    // TLS 1.2 tickets off.
    SSL_CTX_set_num_tickets(c, 1);
    SSL_CTX_set_timeout(c, long(lifetime.count()));
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(c, long(kTicketCacheSize));
    SSL_CTX_sess_set_new_cb(c, on_session_cached);
    // A UE whose connection ends without close_notify (its socket closed, a reset) keeps its
    // session: OpenSSL would otherwise treat the EOF as a fatal error and drop the session from
    // the cache. (During the handshake an EOF is still an error.)
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ok();
}

// The keylog callback of a context whose connections seal their own records: after a TLS 1.3
// KeyUpdate, OpenSSL reports the new sending traffic secret here (it has just written the
// KeyUpdate message under the old key), and the connection's BIO derives the next key from it.
// Every other line (handshake secrets, the first traffic secrets, the peer's updates) is ignored.
// OpenSSL's keylog lines carry the TLS 1.3 traffic secrets: "LABEL CLIENT_RANDOM SECRET" (hex).
// Our own sending secret after a KeyUpdate (_N; the first key comes through the kTLS hook) goes
// to the BIO that seals; the peer's (_0, then _N after each KeyUpdate OpenSSL read) to the
// connection's record reader, which takes over receiving after the handshake.
void on_keylog(const SSL* ssl, const char* line) {
    const bool server = SSL_is_server(ssl) != 0;
    const std::string_view own = server ? "SERVER_TRAFFIC_SECRET_" : "CLIENT_TRAFFIC_SECRET_";
    const std::string_view peer = server ? "CLIENT_TRAFFIC_SECRET_" : "SERVER_TRAFFIC_SECRET_";
    std::string_view rest(line);
    const bool is_own = rest.substr(0, own.size()) == own;
    const bool is_peer = rest.substr(0, peer.size()) == peer;
    if (!is_own && !is_peer) return;
    rest.remove_prefix(own.size());
    const bool initial = rest.substr(0, 2) == "0 ";
    if (!initial && rest.substr(0, 2) != "N ") return;
    if (is_own && initial) return;  // the kTLS hook brought the first sending key
    rest.remove_prefix(2);
    const size_t space = rest.find(' ');  // after the client random
    uint8_t secret[64];
    size_t len = 0;
    bool ok = space != std::string_view::npos;
    if (ok) {
        const std::string_view hex = rest.substr(space + 1);
        ok = hex.size() % 2 == 0 && hex.size() / 2 <= sizeof secret;
        auto nibble = [](char c) {
            return c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        };
        for (size_t i = 0; ok && i + 1 < hex.size(); i += 2) {
            const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
            ok = hi >= 0 && lo >= 0;
            secret[len++] = uint8_t(hi << 4 | lo);
        }
    }
    // A line that cannot be read leaves no usable key: the BIO refuses to write, the reader
    // does not take over.
    const std::span<const uint8_t> value =
        ok ? std::span<const uint8_t>(secret, len) : std::span<const uint8_t>();
    if (is_own)
        (void)set_sealing_secret(SSL_get_wbio(ssl), value);
    else
        detail::note_peer_secret(ssl, value, initial);
    OPENSSL_cleanse(secret, sizeof secret);
}

// Offers TLS 1.3 sending keys to the connections' BIO (socket_bio.hpp) through OpenSSL's kTLS
// hook, when this build and CPU can seal records.
void enable_sealing(SSL_CTX* c, bool wanted) {
    if (!wanted || !RecordProtection::available()) return;
    SSL_CTX_set_options(c, SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_keylog_callback(c, on_keylog);
}

bool is_ip_literal(const std::string& name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

}  // namespace

// ALPN: the concentrator looks like an ordinary HTTPS server, so it agrees to http/1.1 when a
// client offers it (browsers, curl, and porthole clients all do) and to nothing else.
static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                       const unsigned char* in, unsigned int inlen, void*) {
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

Result<TlsContext> TlsContext::server(const ServerConfig& cfg) {
    auto ctx = new_ctx(TLS_server_method(), cfg.min_version);
    if (!ctx) return ctx.error();
    SSL_CTX* c = ctx->get();
    if (auto r = load_identity(c, cfg.cert_file, cfg.key_file); !r) return r.error();
    if (auto r = load_trust(c, "client CA file", cfg.client_ca_file); !r) return r.error();
    if (!cfg.crl_file.empty())
        if (auto r = load_crl(c, cfg.crl_file); !r) return r.error();

    // The CA names sent in CertificateRequest, so that a UE with several identities picks ours.
    ERR_clear_error();
    std::unique_ptr<STACK_OF(X509_NAME), NameStackDeleter> names(
        SSL_load_client_CA_file(cfg.client_ca_file.c_str()));
    if (!names)
        return make_error("client CA file '{}': no CA certificate in it: {}", cfg.client_ca_file,
                          openssl_reason());
    SSL_CTX_set_client_CA_list(c, names.release());  // takes ownership

    // A certificate is asked for, not required at the TLS layer, so that a browser or prober
    // without one sees an ordinary HTTPS server (the decoy page). The tunnel requires a verified
    // identity: the concentrator refuses a configuration request without one. A certificate
    // that is presented must verify against the client CA, or the handshake fails.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    static constexpr unsigned char kSidCtx[] = "portholed";
    SSL_CTX_set_session_id_context(c, kSidCtx, sizeof kSidCtx - 1);
    if (auto r = set_tickets(c, cfg.ticket_lifetime); !r) return r.error();
    ERR_clear_error();
    SSL_CTX_set_alpn_select_cb(ctx->get(), select_alpn, nullptr);
    enable_sealing(c, cfg.seal_records);
    return TlsContext(ctx->release(), true, std::string(), cfg.ticket_lifetime.count() > 0,
                      cfg.key_update_records);
}

Result<TlsContext> TlsContext::client(const ClientConfig& cfg) {
    if (cfg.server_name.empty()) return make_error("TLS client: no server name configured");
    auto ctx = new_ctx(TLS_client_method(), cfg.min_version);
    if (!ctx) return ctx.error();
    SSL_CTX* c = ctx->get();
    if (auto r = load_trust(c, "CA file", cfg.ca_file); !r) return r.error();
    if (auto r = load_identity(c, cfg.cert_file, cfg.key_file); !r) return r.error();

    // Verify the concentrator's certificate names server_name: an IP address against the
    // iPAddress SANs, a DNS name against the dNSName SANs (no partial wildcards).
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(c);
    ERR_clear_error();
    if (is_ip_literal(cfg.server_name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, cfg.server_name.c_str()) != 1)
            return make_error("server name '{}': invalid IP address", cfg.server_name);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, cfg.server_name.c_str(), cfg.server_name.size()) !=
            1)
            return make_error("server name '{}': invalid host name: {}", cfg.server_name,
                              openssl_reason());
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    ERR_clear_error();
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (SSL_CTX_set_alpn_protos(ctx->get(), kHttp11, sizeof kHttp11) != 0)
        return make_error("cannot set ALPN: {}", openssl_reason());
    // Tickets the concentrator sends are handed to the connection that received them
    // (TlsConnection::take_ticket()); OpenSSL's own client cache is not used. SSL_OP_NO_TICKET
    // stays set: it only stops the TLS 1.2 ticket extension, which is never resumed.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, detail::keep_new_session);
    enable_sealing(c, cfg.seal_records);
    return TlsContext(ctx->release(), false, cfg.server_name, false, cfg.key_update_records);
}

}  // namespace porthole::tls

// TlsConnection: one SSL* (owned) over a non-blocking TCP socket (not owned). The caller's event
// loop drives it: call handshake()/read()/write() again when the socket is ready as asked.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "base/result.hpp"
#include "tls/record_limit.hpp"
#include "tls/session_ticket.hpp"
#include "tls/tls_context.hpp"

namespace porthole::tls {

enum class TlsStatus {
    ok,          // progress made (handshake complete, or bytes moved)
    want_read,   // call again when the socket is readable
    want_write,  // call again when the socket is writable
    closed,      // peer closed the TLS session (close_notify or TCP EOF)
    failed,      // fatal; error() says why in one line
};

struct TlsIo {
    TlsStatus status;
    size_t bytes = 0;
};

struct SslDeleter {
    void operator()(SSL* s) const { SSL_free(s); }
};

class TlsConnection {
public:
    static Result<TlsConnection> make(const TlsContext& ctx, int fd);
    ~TlsConnection();
    TlsConnection(TlsConnection&&) noexcept = default;
    TlsConnection& operator=(TlsConnection&&) noexcept = default;

    TlsStatus handshake();
    // Reads decrypted bytes. ok with bytes > 0, or want_read/want_write/closed/failed.
    TlsIo read(std::span<std::byte> buf);
    // Writes; may accept fewer bytes than given (partial writes enabled). The same buffer
    // contents must be offered again after want_write (moving buffer allowed). Records are
    // gathered in a 256 KiB buffer: call flush() after a batch of writes.
    // Every context's key_update_records() records, the next write first sends a TLS 1.3
    // KeyUpdate and continues under the new key (the peer's OpenSSL follows by itself). TLS 1.2
    // has no KeyUpdate (and renegotiation is off): there the write fails instead, with an
    // error() that says so, and a reconnection makes new keys.
    TlsIo write(std::span<const std::byte> buf);
    // Sends the gathered records: ok (all sent), want_write (wait for the socket), failed.
    TlsStatus flush();
    [[nodiscard]] size_t unflushed() const;
    // Sends close_notify, best effort, never blocks.
    void shutdown();
    // Frees OpenSSL's record buffers while nothing is pending (an idle session); they come back
    // on the next read or write.
    void release_buffers();

    // One line: why the last operation failed. For certificate problems it says which
    // (unknown CA and the issuer seen, possibly a TLS-intercepting middlebox; host name
    // mismatch; expired/not yet valid; our own certificate refused by the peer).
    [[nodiscard]] const std::string& error() const { return error_; }
    // Server side after the handshake: the verified client certificate's subject CN (or the
    // whole subject when it has no CN). On a resumed session the certificate and the verify
    // result are those of the resumed session (checked at the full handshake that made it).
    [[nodiscard]] std::string peer_identity() const;
    // "TLSv1.3 TLS_AES_256_GCM_SHA384", with ", resumed" after a resumed handshake.
    [[nodiscard]] std::string description() const;

    // Resumption (TLS 1.3 tickets). Client: offer a ticket before the handshake (ignored when it
    // was issued for another server name); after it, resumed() says whether the concentrator
    // took it. Tickets arrive after the handshake, with the first reads: take_ticket() hands
    // over the newest one received so far (empty when none).
    void offer_ticket(const SessionTicket& ticket);
    [[nodiscard]] bool ticket_offered() const { return ticket_offered_; }
    [[nodiscard]] bool resumed() const;
    SessionTicket take_ticket();
    // The connection failed at the TLS layer (an alert, a bad record, verification), not just
    // by the transport (reset, EOF): a reason for a client to forget its ticket.
    [[nodiscard]] bool tls_failed() const { return tls_failed_; }
    // Server: drops this connection's session from the context's cache, so that its ticket is
    // not taken any more (the peer ended the session on purpose).
    void forget_session();
    [[nodiscard]] SSL* ssl() const { return ssl_.get(); }
    // KeyUpdates this connection has sent (its sending key changed that many times), and how
    // many of them also asked the peer to renew its key (it had sent 1.25 × the limit's worth of
    // full records without a KeyUpdate since we last asked; RecordLimit::peer_due()).
    [[nodiscard]] uint64_t key_updates() const { return limit_.updates(); }
    [[nodiscard]] uint64_t key_update_requests() const { return limit_.requests(); }
    // Records porthole sealed itself rather than OpenSSL (socket_bio.hpp; 0 when OpenSSL seals).
    [[nodiscard]] uint64_t sealed_records() const;
    // Records porthole's record reader opened (record_reader.hpp; 0 while OpenSSL receives).
    [[nodiscard]] uint64_t opened_records() const;
    // The peer's KeyUpdates the record reader followed (those OpenSSL read itself, before the
    // hand-over or without one, are not counted here).
    [[nodiscard]] uint64_t peer_key_updates_opened() const;

private:
    TlsConnection(SSL* ssl, bool is_server, uint64_t key_update_records)
        : ssl_(ssl), is_server_(is_server), limit_(key_update_records) {}
    TlsStatus classify(int ret, const char* op);
    // Schedules a KeyUpdate that the next SSL_write sends first: ok, or failed (TLS 1.2).
    TlsStatus renew_key();
    // Hands receiving to the record reader at a record boundary (or lets OpenSSL keep it).
    void take_over_reading();
    std::unique_ptr<SSL, SslDeleter> ssl_;
    bool is_server_ = false;
    bool ticket_offered_ = false;
    bool tls_failed_ = false;
    bool peer_asked_update_ = false;  // the peer's KeyUpdate asked for ours
    RecordLimit limit_;
    std::string error_;
};

namespace detail {
// The client context's new-session callback (SSL_CTX_sess_set_new_cb): keeps a TLS 1.3 ticket
// in the receiving connection, for take_ticket().
int keep_new_session(SSL* ssl, SSL_SESSION* session);
// The keylog callback (tls_context.cpp): the peer's traffic secret, for the record reader.
void note_peer_secret(const SSL* ssl, std::span<const uint8_t> secret, bool initial);
}  // namespace detail

}  // namespace porthole::tls

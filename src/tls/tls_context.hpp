// TlsContext: one configured SSL_CTX (owned), for the concentrator (server, mutual TLS) or for
// the UE client. Shared by every connection made from it.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include "base/result.hpp"
#include "tls/record_limit.hpp"

namespace porthole::tls {

enum class TlsVersion { v1_2, v1_3 };

inline constexpr std::chrono::seconds kDefaultTicketLifetime{3600};
inline constexpr std::chrono::seconds kMaxTicketLifetime{7 * 24 * 3600};  // RFC 8446 §4.6.1
// Sessions a server context keeps for resumption (~11 KB each once the connection has ended,
// with OpenSSL 3.0); beyond it the oldest are dropped and those UEs do a full handshake.
inline constexpr size_t kTicketCacheSize = 20480;

struct ServerConfig {
    std::string cert_file;       // PEM chain, leaf first
    std::string key_file;        // PEM private key
    std::string client_ca_file;  // CA(s) that issue UE certificates; a client cert is required
    TlsVersion min_version = TlsVersion::v1_3;
    std::string crl_file{};  // PEM CRL(s) of the client CA; empty: no revocation check
    // TLS 1.3 session tickets (resumption with PSK + ECDHE): how long one stays valid; 0: no
    // tickets, every connection does a full handshake. The sessions live in this context's
    // memory (a new context, as at a reload, knows none of them).
    std::chrono::seconds ticket_lifetime{kDefaultTicketLifetime};
    // Records each connection sends under one key before a TLS 1.3 KeyUpdate (record_limit.hpp).
    uint64_t key_update_records = kDefaultKeyUpdateRecords;
    // Seal and open TLS 1.3 AES-GCM records in porthole (record_protection.hpp, socket_bio.hpp,
    // record_reader.hpp) where it can; false: OpenSSL seals and opens every record.
    bool seal_records = true;
};

struct ClientConfig {
    std::string ca_file;    // CA that issued the concentrator's certificate
    std::string cert_file;  // this UE's certificate
    std::string key_file;
    std::string server_name;  // SNI and the name (or IP address) verified in the certificate
    TlsVersion min_version = TlsVersion::v1_3;
    uint64_t key_update_records = kDefaultKeyUpdateRecords;  // as ServerConfig's
    bool seal_records = true;                                // as ServerConfig's
};

struct CtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

class TlsContext {
public:
    // Errors name the file and what is wrong with it ("key does not match certificate", ...).
    static Result<TlsContext> server(const ServerConfig& cfg);
    static Result<TlsContext> client(const ClientConfig& cfg);

    [[nodiscard]] SSL_CTX* get() const { return ctx_.get(); }
    // Another owner of the same SSL_CTX (reference counted), for another thread's connections:
    // an SSL_CTX is safe to make connections from in several threads, and they share its session
    // cache, so a ticket issued by one event loop resumes on any other.
    [[nodiscard]] TlsContext share() const {
        SSL_CTX_up_ref(ctx_.get());
        return TlsContext(ctx_.get(), is_server_, server_name_, issues_tickets_,
                          key_update_records_);
    }
    [[nodiscard]] bool is_server() const { return is_server_; }
    [[nodiscard]] const std::string& server_name() const { return server_name_; }
    // Server: whether connections get session tickets (ticket_lifetime > 0).
    [[nodiscard]] bool issues_tickets() const { return issues_tickets_; }
    // Records a connection sends under one key before it updates the key (TLS 1.3 KeyUpdate;
    // a TLS 1.2 connection has no KeyUpdate and ends instead, see TlsConnection::write()).
    [[nodiscard]] uint64_t key_update_records() const { return key_update_records_; }

private:
    TlsContext(SSL_CTX* ctx, bool is_server, std::string server_name, bool issues_tickets,
               uint64_t key_update_records)
        : ctx_(ctx),
          is_server_(is_server),
          server_name_(std::move(server_name)),
          issues_tickets_(issues_tickets),
          key_update_records_(RecordLimit(key_update_records).limit()) {}
    std::unique_ptr<SSL_CTX, CtxDeleter> ctx_;
    bool is_server_ = false;
    std::string server_name_;
    bool issues_tickets_ = false;
    uint64_t key_update_records_ = kDefaultKeyUpdateRecords;
};

}  // namespace porthole::tls

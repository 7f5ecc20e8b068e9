// SessionTicket: a TLS 1.3 session the client received from the concentrator (its ticket and
// resumption secret), held in memory only and offered on the next connection to the same
// server name. Owns one SSL_SESSION reference.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <utility>

namespace porthole::tls {

struct SessionDeleter {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};

class SessionTicket {
public:
    SessionTicket() = default;
    // Takes the reference the caller holds.
    SessionTicket(SSL_SESSION* session, std::string server_name)
        : session_(session), server_name_(std::move(server_name)) {}

    [[nodiscard]] bool empty() const { return !session_; }
    [[nodiscard]] SSL_SESSION* get() const { return session_.get(); }
    // The name the ticket was issued under (SNI and the verified name): offered only to it.
    [[nodiscard]] const std::string& server_name() const { return server_name_; }
    void reset() {
        session_.reset();
        server_name_.clear();
    }

private:
    std::unique_ptr<SSL_SESSION, SessionDeleter> session_;
    std::string server_name_;
};

}  // namespace porthole::tls

// TLS 1.3 session resumption: tickets issued by the concentrator, kept by the client
// connection, offered again; refused after a reload (a new, empty session cache), with TLS 1.2,
// when expired, or when turned off. Real handshakes over a socketpair with run-time certificates.
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include "test_pki.hpp"
#include "test_tls_pair.hpp"
#include "tls/session_ticket.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"

using namespace porthole;
using namespace porthole::tls;

namespace {

struct Lab {
    test_pki::Pki pki;
    test_pki::Cert ca = pki.make_ca("Lab CA");
    test_pki::Cert server = pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab"});
    test_pki::Cert ue = pki.make_leaf(ca, "ue-0001", {});

    ServerConfig server_config(std::chrono::seconds lifetime = kDefaultTicketLifetime) const {
        ServerConfig c{server.cert_file, server.key_file, ca.cert_file};
        c.ticket_lifetime = lifetime;
        return c;
    }
    ClientConfig client_config(TlsVersion min = TlsVersion::v1_3) const {
        return ClientConfig{ca.cert_file, ue.cert_file, ue.key_file, "concentrator.lab", min};
    }
};

TlsContext must(Result<TlsContext> r) {
    if (!r) FAIL("context: " << r.error().message);
    return std::move(r).value();
}

// One connection between the two contexts on a socketpair, the client offering `ticket`.
struct Pair : test_tls::TlsPair {
    Pair(const TlsContext& client_ctx, const TlsContext& server_ctx,
         const SessionTicket& ticket = {}) {
        make(client_ctx, server_ctx);
        client->offer_ticket(ticket);
        handshake();
        CHECK(ERR_peek_error() == 0);
    }

    void require_established() const {
        REQUIRE_MESSAGE(client_status == TlsStatus::ok, client->error());
        REQUIRE_MESSAGE(server_status == TlsStatus::ok, server->error());
    }
    // One byte server -> client: the client's read also takes in the tickets sent before it.
    TlsStatus exchange() {
        const std::byte one[1] = {std::byte{42}};
        auto w = server->write(one);
        if (w.status != TlsStatus::ok) return w.status;
        if (server->flush() != TlsStatus::ok) return TlsStatus::failed;
        return client_read();
    }
    // Reads on the client until data, failure or closure.
    TlsStatus client_read() {
        std::byte buf[64];
        for (int i = 0; i < 50; ++i) {
            auto r = client->read(buf);
            if (r.status != TlsStatus::want_read) return r.status;
        }
        return TlsStatus::want_read;
    }
};

// A full handshake whose ticket the client keeps.
SessionTicket first_ticket(const TlsContext& client_ctx, const TlsContext& server_ctx) {
    Pair p(client_ctx, server_ctx);
    p.require_established();
    CHECK_FALSE(p.client->resumed());
    CHECK_FALSE(p.server->resumed());
    REQUIRE(p.exchange() == TlsStatus::ok);
    auto t = p.client->take_ticket();
    CHECK(p.client->take_ticket().empty());  // handed over once
    return t;
}

}  // namespace

TEST_CASE("tls resumption: a ticket resumes, with the identity of the full handshake") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    CHECK(server_ctx.issues_tickets());
    auto ticket = first_ticket(client_ctx, server_ctx);
    REQUIRE_FALSE(ticket.empty());
    CHECK(ticket.server_name() == "concentrator.lab");

    Pair again(client_ctx, server_ctx, ticket);
    again.require_established();
    CHECK(again.client->ticket_offered());
    CHECK(again.client->resumed());
    CHECK(again.server->resumed());
    CHECK(again.server->peer_identity() == "ue-0001");
    CHECK(again.client->peer_identity() == "concentrator.lab");
    CHECK(again.server->description().find("TLSv1.3") == 0);
    CHECK(again.server->description().find(", resumed") != std::string::npos);
    // Forward secrecy: the resumption ran an (EC)DHE exchange (psk_dhe_ke).
    int group = SSL_get_negotiated_group(again.server->ssl());
    CHECK(group != 0);
    // The resumed connection carries data and brings a fresh ticket.
    REQUIRE(again.exchange() == TlsStatus::ok);
    auto next = again.client->take_ticket();
    CHECK_FALSE(next.empty());
    Pair third(client_ctx, server_ctx, next);
    third.require_established();
    CHECK(third.server->resumed());
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls resumption: a new server context (reload) does not take old tickets") {
    Lab lab;
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    auto before = must(TlsContext::server(lab.server_config()));
    auto ticket = first_ticket(client_ctx, before);
    REQUIRE_FALSE(ticket.empty());

    SUBCASE("same configuration: full handshake, still accepted") {
        auto after = must(TlsContext::server(lab.server_config()));
        Pair p(client_ctx, after, ticket);
        p.require_established();
        CHECK(p.client->ticket_offered());
        CHECK_FALSE(p.client->resumed());
        CHECK_FALSE(p.server->resumed());
        CHECK(p.server->peer_identity() == "ue-0001");
    }
    SUBCASE("a new CRL revoking the UE: full handshake, refused") {
        auto cfg = lab.server_config();
        cfg.crl_file = lab.pki.make_crl(lab.ca, {&lab.ue}, "crl.pem");
        auto after = must(TlsContext::server(cfg));
        Pair p(client_ctx, after, ticket);
        CHECK(p.server_status == TlsStatus::failed);
        CHECK_MESSAGE(p.server->error().find("revoked") != std::string::npos, p.server->error());
        CHECK(p.server->tls_failed());
        if (p.client_status == TlsStatus::ok) CHECK(p.client_read() == TlsStatus::failed);
        CHECK(p.client->tls_failed());
        CHECK(p.client->error().find("revoked") != std::string::npos);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls resumption: off with ticket lifetime 0; bounded lifetime") {
    Lab lab;
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    auto off = must(TlsContext::server(lab.server_config(std::chrono::seconds(0))));
    CHECK_FALSE(off.issues_tickets());
    CHECK(first_ticket(client_ctx, off).empty());  // none issued

    // A ticket from another context is not taken either.
    auto on = must(TlsContext::server(lab.server_config()));
    auto ticket = first_ticket(client_ctx, on);
    REQUIRE_FALSE(ticket.empty());
    Pair p(client_ctx, off, ticket);
    p.require_established();
    CHECK_FALSE(p.server->resumed());

    auto too_long = TlsContext::server(lab.server_config(std::chrono::hours(24 * 8)));
    REQUIRE_FALSE(too_long.has_value());
    CHECK(too_long.error().message.find("at most 604800 s") != std::string::npos);
}

TEST_CASE("tls resumption: an expired ticket is not resumed") {
    Lab lab;
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    auto server_ctx = must(TlsContext::server(lab.server_config(std::chrono::seconds(1))));
    auto ticket = first_ticket(client_ctx, server_ctx);
    REQUIRE_FALSE(ticket.empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    Pair p(client_ctx, server_ctx, ticket);
    p.require_established();
    CHECK_FALSE(p.server->resumed());
    CHECK(p.server->peer_identity() == "ue-0001");
}

TEST_CASE("tls resumption: never with TLS 1.2; never to another server name") {
    Lab lab;
    SUBCASE("TLS 1.2: no ticket kept, nothing resumed") {
        auto cfg = lab.server_config();
        cfg.min_version = TlsVersion::v1_2;
        auto server_ctx = must(TlsContext::server(cfg));
        auto client_ctx = must(TlsContext::client(lab.client_config(TlsVersion::v1_2)));
        REQUIRE(SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION) == 1);
        // As a client that asks for TLS 1.2 tickets would (ours does not).
        SSL_CTX_clear_options(client_ctx.get(), SSL_OP_NO_TICKET);
        Pair p(client_ctx, server_ctx);
        p.require_established();
        CHECK(p.client->description().find("TLSv1.2") == 0);
        REQUIRE(p.exchange() == TlsStatus::ok);
        CHECK(p.client->take_ticket().empty());
        CHECK(SSL_CTX_sess_number(server_ctx.get()) == 0);  // the server keeps none either
        // Even a TLS 1.2 session offered by hand is not resumed.
        SSL_SESSION* s12 = SSL_get1_session(p.client->ssl());
        REQUIRE(s12 != nullptr);
        SessionTicket forced(s12, "concentrator.lab");
        Pair q(client_ctx, server_ctx, forced);
        q.require_established();
        CHECK_FALSE(q.server->resumed());
        CHECK(q.server->peer_identity() == "ue-0001");
    }
    SUBCASE("a ticket is offered only under the name it was issued for") {
        auto server_ctx = must(TlsContext::server(lab.server_config()));
        auto client_ctx = must(TlsContext::client(lab.client_config()));
        auto ticket = first_ticket(client_ctx, server_ctx);
        REQUIRE_FALSE(ticket.empty());
        SessionTicket renamed(SSL_SESSION_dup(ticket.get()), "other.lab");
        Pair p(client_ctx, server_ctx, renamed);
        p.require_established();
        CHECK_FALSE(p.client->ticket_offered());
        CHECK_FALSE(p.server->resumed());
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls resumption: a peer without a client certificate is not kept for resumption") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    SessionTicket ticket;
    {
        // The certificate must be gone before the handshake starts.
        test_tls::TlsPair p;
        p.make(client_ctx, server_ctx);
        SSL_certs_clear(p.client->ssl());
        p.handshake();
        REQUIRE(p.client_status == TlsStatus::ok);
        REQUIRE(p.server_status == TlsStatus::ok);
        CHECK(p.server->peer_identity().empty());
        std::byte buf[64];
        for (int i = 0; i < 10; ++i)
            (void)p.client->read(buf);
        ticket = p.client->take_ticket();  // a ticket may come, but the server keeps no session
    }
    CHECK(SSL_CTX_sess_number(server_ctx.get()) == 0);
    if (!ticket.empty()) {
        Pair p(client_ctx, server_ctx, ticket);
        p.require_established();
        CHECK_FALSE(p.server->resumed());
    }
    // A UE with a certificate is kept: one more session in the cache.
    const long before = SSL_CTX_sess_number(server_ctx.get());
    (void)first_ticket(client_ctx, server_ctx);
    CHECK(SSL_CTX_sess_number(server_ctx.get()) == before + 1);
}

TEST_CASE("tls resumption: a cut connection keeps its session, a CLOSE forgets it") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    SessionTicket ticket;
    {
        Pair p(client_ctx, server_ctx);
        p.require_established();
        REQUIRE(p.exchange() == TlsStatus::ok);
        ticket = p.client->take_ticket();
        // The UE's socket goes away without close_notify: the server reads a bare EOF.
        p.client.reset();
        ::shutdown(p.fds[0], SHUT_RDWR);
        std::byte buf[64];
        TlsIo r{TlsStatus::want_read, 0};
        for (int i = 0; i < 20 && r.status == TlsStatus::want_read; ++i)
            r = p.server->read(buf);
        CHECK(r.status == TlsStatus::closed);
        CHECK_FALSE(p.server->tls_failed());
    }
    REQUIRE_FALSE(ticket.empty());
    SessionTicket next;
    {
        Pair p(client_ctx, server_ctx, ticket);
        p.require_established();
        CHECK(p.server->resumed());
        REQUIRE(p.exchange() == TlsStatus::ok);
        next = p.client->take_ticket();
        p.server->forget_session();  // the UE said goodbye (CLOSE)
    }
    REQUIRE_FALSE(next.empty());
    Pair p(client_ctx, server_ctx, next);
    p.require_established();
    CHECK(p.client->ticket_offered());
    CHECK_FALSE(p.server->resumed());
}

// TLS shell tests: real handshakes between a client and a server TlsConnection over a
// non-blocking AF_UNIX socketpair, with certificates generated at run time (test_pki).
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "test_pki.hpp"
#include "test_tls_pair.hpp"
#include "test_wire.hpp"
#include "tls/record_protection.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"

using namespace porthole;
using namespace porthole::tls;
using porthole::test::Bytes;

namespace {

struct SocketPair {
    int client = -1;
    int server = -1;
    SocketPair() {
        // A broken pipe must be an EPIPE error, not a signal that kills the test binary.
        std::signal(SIGPIPE, SIG_IGN);
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        client = fds[0];
        server = fds[1];
    }
    ~SocketPair() {
        if (client >= 0) ::close(client);
        if (server >= 0) ::close(server);
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
};

// The usual lab: one CA for both sides, a concentrator certificate, a UE certificate.
struct Lab {
    test_pki::Pki pki;
    test_pki::Cert ca = pki.make_ca("Lab CA");
    test_pki::Cert server =
        pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab", "IP:198.18.2.2"});
    test_pki::Cert ue = pki.make_leaf(ca, "ue-0001", {"DNS:ue-0001.lab"});

    ServerConfig server_config(TlsVersion min = TlsVersion::v1_3) const {
        return ServerConfig{server.cert_file, server.key_file, ca.cert_file, min};
    }
    ClientConfig client_config(const std::string& name = "concentrator.lab",
                               TlsVersion min = TlsVersion::v1_3) const {
        return ClientConfig{ca.cert_file, ue.cert_file, ue.key_file, name, min};
    }
    // The same, presenting another certificate (and its key) than the lab's own.
    ServerConfig server_config_presenting(const test_pki::Cert& c) const {
        auto cfg = server_config();
        cfg.cert_file = c.cert_file;
        cfg.key_file = c.key_file;
        return cfg;
    }
    ClientConfig client_config_presenting(const test_pki::Cert& c,
                                          TlsVersion min = TlsVersion::v1_3) const {
        auto cfg = client_config("concentrator.lab", min);
        cfg.cert_file = c.cert_file;
        cfg.key_file = c.key_file;
        return cfg;
    }
};

TlsContext must(Result<TlsContext> r) {
    if (!r) FAIL("context: " << r.error().message);
    return std::move(r).value();
}

// A client context that offers TLS 1.2 and nothing newer.
TlsContext tls12_only_client(const ClientConfig& cfg) {
    auto ctx = must(TlsContext::client(cfg));
    REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION) == 1);
    return ctx;
}

using test_tls::terminal;

const char* name(TlsStatus s) {
    switch (s) {
        case TlsStatus::ok:
            return "ok";
        case TlsStatus::want_read:
            return "want_read";
        case TlsStatus::want_write:
            return "want_write";
        case TlsStatus::closed:
            return "closed";
        case TlsStatus::failed:
            return "failed";
    }
    return "?";
}

// A client and a server connection on a socketpair, driven in one thread.
struct Session : test_tls::TlsPair {
    std::optional<TlsContext> own_server_ctx, own_client_ctx;  // when made from configurations

    Session(const TlsContext& client_ctx, const TlsContext& server_ctx) {
        make(client_ctx, server_ctx);
    }
    // Contexts made from these configurations, and the handshake already run to its end.
    Session(const ClientConfig& client_cfg, const ServerConfig& server_cfg)
        : own_server_ctx(must(TlsContext::server(server_cfg))),
          own_client_ctx(must(TlsContext::client(client_cfg))) {
        make(*own_client_ctx, *own_server_ctx);
        handshake();
    }

    // Steps both handshakes until both are done/failed, or neither can progress any more.
    void handshake() {
        TlsPair::handshake();
        CHECK(ERR_peek_error() == 0);  // nothing left queued for the next connection to see
    }

    // Both handshakes succeeded; else the failing side's reason.
    void require_established() const {
        REQUIRE_MESSAGE(client_status == TlsStatus::ok, client->error());
        REQUIRE_MESSAGE(server_status == TlsStatus::ok, server->error());
    }

    // Reads on one side until data, failure or closure (the peer's alert may be queued).
    static TlsIo read_some(TlsConnection& c, Bytes& out) {
        std::byte buf[4096];
        TlsIo r{TlsStatus::want_read, 0};
        for (int i = 0; i < 50; ++i) {
            r = c.read(buf);
            if (r.status == TlsStatus::ok) {
                out.insert(out.end(), buf, buf + r.bytes);
                return r;
            }
            if (r.status == TlsStatus::failed || r.status == TlsStatus::closed) return r;
        }
        return r;
    }
};

Bytes bytes_of(std::string_view s) {
    Bytes v(s.size());
    std::memcpy(v.data(), s.data(), s.size());
    return v;
}

}  // namespace

TEST_CASE("tls: mutual handshake, identity, data both ways, 100 KiB with partial writes") {
    Lab lab;
    Session s(lab.client_config(), lab.server_config());
    s.require_established();

    CHECK(s.server->peer_identity() == "ue-0001");
    CHECK(s.client->peer_identity() == "concentrator.lab");
    CHECK(s.client->description().find("TLSv1.3") != std::string::npos);
    CHECK(s.server->description().find("TLSv1.3") != std::string::npos);
    const char* sni = SSL_get_servername(s.server->ssl(), TLSEXT_NAMETYPE_host_name);
    REQUIRE(sni != nullptr);
    CHECK(std::string(sni) == "concentrator.lab");

    // Server -> client.
    auto hello = bytes_of("hello from the concentrator");
    auto w = s.server->write(hello);
    REQUIRE(w.status == TlsStatus::ok);
    CHECK(w.bytes == hello.size());
    CHECK(s.server->unflushed() > 0);  // gathered, not yet sent
    REQUIRE(s.server->flush() == TlsStatus::ok);
    CHECK(s.server->unflushed() == 0);
    Bytes got;
    auto r = Session::read_some(*s.client, got);
    REQUIRE(r.status == TlsStatus::ok);
    CHECK(got == hello);

    // Client -> server: 100 KiB through a small socket buffer. OpenSSL reports a partial write
    // whenever a whole record (16 KiB) was taken; records are gathered and flush() reports
    // want_write while the socket buffer is full; both must happen here.
    int small = 24 * 1024;
    REQUIRE(::setsockopt(s.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    Bytes big(100 * 1024);
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = std::byte((i * 7 + i / 251) & 0xff);
    Bytes received;
    size_t sent = 0;
    bool partial = false;
    bool blocked = false;
    std::byte buf[16384];
    for (int i = 0; i < 100000 && received.size() < big.size(); ++i) {
        if (sent < big.size()) {
            auto rest = std::span<const std::byte>(big).subspan(sent);
            auto wr = s.client->write(rest);
            if (wr.status == TlsStatus::ok) {
                if (wr.bytes < rest.size()) partial = true;
                sent += wr.bytes;
            } else {
                REQUIRE_MESSAGE(wr.status == TlsStatus::want_write, name(wr.status));
                blocked = true;
            }
            auto fl = s.client->flush();
            REQUIRE_MESSAGE(fl != TlsStatus::failed, s.client->error());
            if (fl == TlsStatus::want_write) blocked = true;
        } else {
            REQUIRE(s.client->flush() != TlsStatus::failed);
        }
        if (sent < big.size() && !blocked) continue;  // let the socket buffer fill up first
        auto rd = s.server->read(buf);
        if (rd.status == TlsStatus::ok) {
            received.insert(received.end(), buf, buf + rd.bytes);
        } else {
            REQUIRE_MESSAGE(rd.status == TlsStatus::want_read, name(rd.status));
        }
    }
    CHECK(partial);
    CHECK(blocked);
    CHECK(sent == big.size());
    CHECK(received == big);

    // Orderly close: close_notify is seen as closed.
    s.client->shutdown();
    Bytes none;
    CHECK(Session::read_some(*s.server, none).status == TlsStatus::closed);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: TLS 1.2 only when configured, with an ECDHE AEAD cipher") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config(TlsVersion::v1_2)));
    auto client_ctx = tls12_only_client(lab.client_config("concentrator.lab", TlsVersion::v1_2));
    Session s(client_ctx, server_ctx);
    s.handshake();
    s.require_established();
    const std::string d = s.client->description();
    CHECK(d.find("TLSv1.2 ECDHE-ECDSA-") != std::string::npos);
    CHECK((d.find("GCM") != std::string::npos || d.find("CHACHA20") != std::string::npos));
    CHECK(s.server->peer_identity() == "ue-0001");
}

TEST_CASE("tls: server requiring TLS 1.3 refuses a TLS 1.2-only client") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto client_ctx = tls12_only_client(lab.client_config("concentrator.lab", TlsVersion::v1_2));
    Session s(client_ctx, server_ctx);
    s.handshake();
    REQUIRE(s.server_status == TlsStatus::failed);
    CHECK(s.server->error() == "peer offered only TLS versions older than allowed");
    REQUIRE(s.client_status == TlsStatus::failed);
    CHECK(s.client->error().find("TLS version") != std::string::npos);
    MESSAGE("client: " << s.client->error());
}

TEST_CASE("tls: client certificate from another CA is refused on both sides") {
    Lab lab;
    auto rogue = lab.pki.make_ca("Rogue CA");
    auto rogue_ue = lab.pki.make_leaf(rogue, "ue-rogue", {"DNS:ue-rogue.lab"});
    Session s(lab.client_config_presenting(rogue_ue), lab.server_config());
    REQUIRE(s.server_status == TlsStatus::failed);
    const std::string& se = s.server->error();
    CHECK(se.find("client certificate rejected: not issued by the configured client CA") == 0);
    CHECK(se.find("CN=ue-rogue") != std::string::npos);
    CHECK(se.find("CN=Rogue CA") != std::string::npos);
    CHECK(s.server->peer_identity().empty());

    // TLS 1.3: the client's handshake completes before the server checks its certificate; the
    // refusal arrives as an alert on the first read.
    if (s.client_status == TlsStatus::ok) {
        Bytes got;
        auto r = Session::read_some(*s.client, got);
        REQUIRE(r.status == TlsStatus::failed);
    } else {
        REQUIRE(s.client_status == TlsStatus::failed);
    }
    CHECK(s.client->error().rfind("authentication refused: ", 0) == 0);
    CHECK(s.client->error().find("unknown ca") != std::string::npos);
    CHECK(ERR_peek_error() == 0);
    MESSAGE("server: " << se << " | client: " << s.client->error());
}

TEST_CASE("tls: TLS 1.2 client certificate refusal surfaces in the client's handshake") {
    Lab lab;
    auto rogue = lab.pki.make_ca("Rogue CA");
    auto rogue_ue = lab.pki.make_leaf(rogue, "ue-rogue", {});
    auto server_ctx = must(TlsContext::server(lab.server_config(TlsVersion::v1_2)));
    auto client_ctx = tls12_only_client(lab.client_config_presenting(rogue_ue, TlsVersion::v1_2));
    Session s(client_ctx, server_ctx);
    s.handshake();
    REQUIRE(s.server_status == TlsStatus::failed);
    REQUIRE(s.client_status == TlsStatus::failed);
    CHECK(s.client->error().rfind("authentication refused: ", 0) == 0);
}

TEST_CASE("tls: a client without a certificate completes TLS but has no identity") {
    // Like any HTTPS server, the concentrator only asks for a certificate: a browser or prober
    // without one gets through TLS (and then the decoy page); the tunnel itself needs an
    // identity, which the concentrator checks before configuring anything.
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto client_ctx = must(TlsContext::client(lab.client_config()));
    Session s(client_ctx, server_ctx);
    SSL_certs_clear(s.client->ssl());
    s.handshake();
    s.require_established();
    CHECK(s.server->peer_identity().empty());
    CHECK(s.client->peer_identity() == "concentrator.lab");
}

TEST_CASE("tls: expired client certificate") {
    Lab lab;
    auto old_ue = lab.pki.make_leaf(lab.ca, "ue-old", {}, -2);
    Session s(lab.client_config_presenting(old_ue), lab.server_config());
    REQUIRE(s.server_status == TlsStatus::failed);
    CHECK(s.server->error().find(
              "client certificate rejected: the client certificate expired on") == 0);
    if (s.client_status == TlsStatus::ok) {
        Bytes got;
        REQUIRE(Session::read_some(*s.client, got).status == TlsStatus::failed);
    }
    CHECK(s.client->error().rfind("authentication refused: ", 0) == 0);
    MESSAGE("server: " << s.server->error() << " | client: " << s.client->error());
}

TEST_CASE("tls: server certificate from another CA (a TLS-intercepting middlebox)") {
    Lab lab;
    auto rogue = lab.pki.make_ca("Intercepting Proxy CA");
    auto fake = lab.pki.make_leaf(rogue, "concentrator.lab", {"DNS:concentrator.lab"});
    Session s(lab.client_config(), lab.server_config_presenting(fake));
    REQUIRE(s.client_status == TlsStatus::failed);
    const std::string& e = s.client->error();
    CHECK(e.find("TLS verification failed: the server certificate is not issued by the "
                 "configured CA") == 0);
    CHECK(e.find("Intercepting Proxy CA") != std::string::npos);
    CHECK(e.find("middlebox") != std::string::npos);
    REQUIRE(s.server_status == TlsStatus::failed);
    CHECK(s.server->error().find("the client rejected our certificate") == 0);
    MESSAGE("client: " << e << " | server: " << s.server->error());
}

TEST_CASE("tls: server chain including a foreign self-signed root") {
    Lab lab;
    auto rogue = lab.pki.make_ca("Rogue Root");
    auto fake = lab.pki.make_leaf(rogue, "concentrator.lab", {"DNS:concentrator.lab"});
    auto scfg = lab.server_config();
    scfg.cert_file = lab.pki.bundle("fake-chain.pem", {&fake, &rogue});
    scfg.key_file = fake.key_file;
    Session s(lab.client_config(), scfg);
    REQUIRE(s.client_status == TlsStatus::failed);
    CHECK(s.client->error().find("not issued by the configured CA (issuer: CN=Rogue Root") !=
          std::string::npos);
}

// Each side sends exactly the chain in its certificate file: with the intermediate CA in the
// file the peer (which trusts only the root) verifies it; with the leaf alone it cannot, because
// no chain is built from other stores (SSL_MODE_NO_AUTO_CHAIN).
TEST_CASE("tls: intermediate CAs travel in the certificate file, on both sides") {
    Lab lab;
    auto mid = lab.pki.make_intermediate(lab.ca, "Lab Issuing CA");
    auto srv = lab.pki.make_leaf(mid, "concentrator.lab", {"DNS:concentrator.lab"});
    auto ue = lab.pki.make_leaf(mid, "ue-7", {"DNS:ue-7.lab"});
    auto scfg = lab.server_config();
    scfg.cert_file = lab.pki.bundle("srv-chain.pem", {&srv, &mid});
    scfg.key_file = srv.key_file;
    auto ccfg = lab.client_config();
    ccfg.cert_file = lab.pki.bundle("ue-chain.pem", {&ue, &mid});
    ccfg.key_file = ue.key_file;
    {
        Session s(ccfg, scfg);
        s.require_established();
        CHECK(s.server->peer_identity() == "ue-7");
    }
    {
        auto leaf_only = scfg;
        leaf_only.cert_file = srv.cert_file;
        Session s(ccfg, leaf_only);
        CHECK(s.client_status == TlsStatus::failed);
    }
    {
        auto leaf_only = ccfg;
        leaf_only.cert_file = ue.cert_file;
        Session s(leaf_only, scfg);
        CHECK(s.server_status == TlsStatus::failed);
    }
}

TEST_CASE("tls: host name and IP address verification; SNI only for DNS names") {
    Lab lab;
    SUBCASE("wrong DNS name") {
        Session s(lab.client_config("other.lab"), lab.server_config());
        REQUIRE(s.client_status == TlsStatus::failed);
        const std::string& e = s.client->error();
        CHECK(e.find("TLS verification failed: certificate does not match server name "
                     "'other.lab'") == 0);
        CHECK(e.find("DNS:concentrator.lab, IP:198.18.2.2") != std::string::npos);
    }
    SUBCASE("matching IP address, no SNI") {
        Session s(lab.client_config("198.18.2.2"), lab.server_config());
        s.require_established();
        CHECK(SSL_get_servername(s.server->ssl(), TLSEXT_NAMETYPE_host_name) == nullptr);
    }
    SUBCASE("wrong IP address") {
        Session s(lab.client_config("198.18.2.3"), lab.server_config());
        REQUIRE(s.client_status == TlsStatus::failed);
        CHECK(s.client->error().find("does not match server name '198.18.2.3'") !=
              std::string::npos);
    }
}

TEST_CASE("tls: expired and not yet valid server certificates") {
    Lab lab;
    SUBCASE("expired") {
        auto old = lab.pki.make_leaf(lab.ca, "concentrator.lab", {"DNS:concentrator.lab"}, -3);
        Session s(lab.client_config(), lab.server_config_presenting(old));
        REQUIRE(s.client_status == TlsStatus::failed);
        CHECK(s.client->error().find(
                  "TLS verification failed: the server certificate expired on ") == 0);
        MESSAGE("client: " << s.client->error());
    }
    SUBCASE("not yet valid") {
        auto future =
            lab.pki.make_leaf(lab.ca, "concentrator.lab", {"DNS:concentrator.lab"}, 365, 2);
        Session s(lab.client_config(), lab.server_config_presenting(future));
        REQUIRE(s.client_status == TlsStatus::failed);
        CHECK(s.client->error().find("is not valid before") != std::string::npos);
    }
}

TEST_CASE("tls: a peer that does not speak TLS") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    SocketPair sp;
    auto server = TlsConnection::make(server_ctx, sp.server);
    REQUIRE(server.has_value());

    SUBCASE("HTTP request") {
        const char req[] = "GET / HTTP/1.1\r\n\r\n";
        REQUIRE(::write(sp.client, req, sizeof req - 1) == ssize_t(sizeof req - 1));
    }
    SUBCASE("SSH banner") {
        const char banner[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
        REQUIRE(::write(sp.client, banner, sizeof banner - 1) == ssize_t(sizeof banner - 1));
    }
    TlsStatus st = TlsStatus::want_read;
    for (int i = 0; i < 10 && !terminal(st); ++i)
        st = server->handshake();
    REQUIRE(st == TlsStatus::failed);
    CHECK(server->error().find("peer does not speak TLS") == 0);
    CHECK(ERR_peek_error() == 0);
    MESSAGE("server: " << server->error());
}

TEST_CASE("tls: TCP close during the handshake is 'closed' with a reason") {
    Lab lab;
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    SocketPair sp;
    auto server = TlsConnection::make(server_ctx, sp.server);
    REQUIRE(server.has_value());
    ::close(sp.client);
    sp.client = -1;
    CHECK(server->handshake() == TlsStatus::closed);
    CHECK(server->error() == "the client closed the connection during the TLS handshake");
}

TEST_CASE("tls: configuration errors name the file") {
    Lab lab;
    SUBCASE("missing certificate file") {
        auto cfg = lab.server_config();
        cfg.cert_file = lab.pki.dir() + "/nope.crt";
        auto r = TlsContext::server(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.cert_file) != std::string::npos);
        CHECK(r.error().message.find("No such file") != std::string::npos);
    }
    SUBCASE("missing client CA file") {
        auto cfg = lab.server_config();
        cfg.client_ca_file = lab.pki.dir() + "/nope-ca.crt";
        auto r = TlsContext::server(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.client_ca_file) != std::string::npos);
    }
    SUBCASE("key does not match the certificate") {
        auto cfg = lab.server_config();
        cfg.key_file = lab.ue.key_file;
        auto r = TlsContext::server(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.key_file) != std::string::npos);
        CHECK(r.error().message.find("does not match") != std::string::npos);
        MESSAGE(r.error().message);
    }
    SUBCASE("client: key does not match the certificate") {
        auto cfg = lab.client_config();
        cfg.key_file = lab.server.key_file;
        auto r = TlsContext::client(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.key_file) != std::string::npos);
    }
    SUBCASE("not a PEM certificate") {
        auto cfg = lab.client_config();
        cfg.cert_file = lab.pki.write_file("junk.crt", "this is not a certificate\n");
        auto r = TlsContext::client(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.cert_file) != std::string::npos);
        MESSAGE(r.error().message);
    }
    SUBCASE("missing CA file") {
        auto cfg = lab.client_config();
        cfg.ca_file = lab.pki.dir() + "/none.pem";
        auto r = TlsContext::client(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(cfg.ca_file) != std::string::npos);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: one connection's failure does not leak into the next one") {
    Lab lab;
    auto rogue = lab.pki.make_ca("Rogue CA");
    auto rogue_ue = lab.pki.make_leaf(rogue, "ue-rogue", {});
    auto server_ctx = must(TlsContext::server(lab.server_config()));
    auto bad_ctx = must(TlsContext::client(lab.client_config_presenting(rogue_ue)));
    auto good_ctx = must(TlsContext::client(lab.client_config()));

    Session bad(bad_ctx, server_ctx);
    Session good(good_ctx, server_ctx);
    // Interleave the two handshakes in the same thread.
    for (int i = 0; i < 200; ++i) {
        if (!terminal(bad.client_status)) bad.client_status = bad.client->handshake();
        if (!terminal(good.client_status)) good.client_status = good.client->handshake();
        if (!terminal(bad.server_status)) bad.server_status = bad.server->handshake();
        if (!terminal(good.server_status)) good.server_status = good.server->handshake();
    }
    CHECK(bad.server_status == TlsStatus::failed);
    REQUIRE_MESSAGE(good.server_status == TlsStatus::ok, good.server->error());
    REQUIRE_MESSAGE(good.client_status == TlsStatus::ok, good.client->error());
    CHECK(good.server->error().empty());
    CHECK(good.server->peer_identity() == "ue-0001");
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: client sees the concentrator drop the connection right after the handshake") {
    Lab lab;
    Session s(lab.client_config(), lab.server_config());
    s.require_established();
    s.server.reset();  // no close_notify: as if the connection was cut
    ::close(s.fds[1]);
    s.fds[1] = -1;
    Bytes got;
    CHECK(Session::read_some(*s.client, got).status == TlsStatus::closed);
    CHECK_MESSAGE(
        s.client->error().find("our certificate may have been refused") != std::string::npos,
        s.client->error());
}

TEST_CASE("tls: a revoked client certificate is refused; the CRL is checked at load") {
    Lab lab;
    auto revoked_ue = lab.pki.make_leaf(lab.ca, "ue-revoked", {});
    auto cfg = lab.server_config();
    cfg.crl_file = lab.pki.make_crl(lab.ca, {&revoked_ue}, "crl.pem");

    SUBCASE("the revoked UE is refused on both sides with a clear reason") {
        Session s(lab.client_config_presenting(revoked_ue), cfg);
        REQUIRE(s.server_status == TlsStatus::failed);
        CHECK(s.server->error().find("client certificate rejected: the client certificate is "
                                     "revoked") == 0);
        CHECK(s.server->error().find("CN=ue-revoked") != std::string::npos);
        if (s.client_status == TlsStatus::ok) {
            Bytes got;
            REQUIRE(Session::read_some(*s.client, got).status == TlsStatus::failed);
        }
        CHECK(s.client->error().rfind("authentication refused: ", 0) == 0);
        CHECK(s.client->error().find("revoked") != std::string::npos);
        MESSAGE("server: " << s.server->error() << " | client: " << s.client->error());
    }
    SUBCASE("a UE that is not in the CRL gets through") {
        Session s(lab.client_config(), cfg);
        s.require_established();
        CHECK(s.server->peer_identity() == "ue-0001");
    }
    SUBCASE("a CRL past its next update still applies") {
        cfg.crl_file = lab.pki.make_crl(lab.ca, {&revoked_ue}, "old-crl.pem", 0);
        Session good(lab.client_config(), cfg);
        good.require_established();
        Session bad(lab.client_config_presenting(revoked_ue), cfg);
        CHECK(bad.server_status == TlsStatus::failed);
        CHECK(bad.server->error().find("revoked") != std::string::npos);
    }
    SUBCASE("a UE of a second client CA that has no CRL loaded is refused") {
        auto second = lab.pki.make_ca("Second CA");
        auto second_ue = lab.pki.make_leaf(second, "ue-second", {});
        cfg.client_ca_file = lab.pki.bundle("two-cas.pem", {&lab.ca, &second});
        Session bad(lab.client_config_presenting(second_ue), cfg);
        CHECK(bad.server_status == TlsStatus::failed);
        CHECK_MESSAGE(
            bad.server->error().find("no CRL of its issuer is loaded") != std::string::npos,
            bad.server->error());
        CHECK(bad.server->error().find("CN=ue-second") != std::string::npos);
        Session good(lab.client_config(), cfg);
        good.require_established();
    }
    SUBCASE("a CRL of another CA is refused at load") {
        auto other = lab.pki.make_ca("Other CA");
        cfg.crl_file = lab.pki.make_crl(other, {}, "other-crl.pem");
        auto r = TlsContext::server(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("not issued by the client CA") != std::string::npos);
        CHECK(r.error().message.find(cfg.crl_file) != std::string::npos);
        MESSAGE(r.error().message);
    }
    SUBCASE("a file without a CRL, or none at all") {
        cfg.crl_file = lab.pki.write_file("junk-crl.pem", "nothing here\n");
        auto r = TlsContext::server(cfg);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("no CRL in it") != std::string::npos);
        cfg.crl_file = lab.pki.dir() + "/missing-crl.pem";
        auto m = TlsContext::server(cfg);
        REQUIRE_FALSE(m.has_value());
        CHECK(m.error().message.find("No such file") != std::string::npos);
    }
    SUBCASE("a new context with a new CRL refuses what the old one let in") {
        auto plain = must(TlsContext::server(lab.server_config()));
        auto fresh_cfg = lab.server_config();
        fresh_cfg.crl_file = cfg.crl_file;
        auto with_crl = must(TlsContext::server(fresh_cfg));
        auto client_ctx = must(TlsContext::client(lab.client_config_presenting(revoked_ue)));
        Session before(client_ctx, plain);
        before.handshake();
        before.require_established();
        Session after(client_ctx, with_crl);
        after.handshake();
        CHECK(after.server_status == TlsStatus::failed);
    }
    CHECK(ERR_peek_error() == 0);
}

namespace {

// Counts the KeyUpdate messages one SSL receives (the message callback sees every handshake
// message, decrypted).
int key_updates_received = 0;
void count_key_updates(int write_p, int, int content_type, const void* buf, size_t len, SSL*,
                       void*) {
    if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE)
        ++key_updates_received;
}

// Sends `records` records of `size` bytes from `from` to `to` (one write, one flush, one read
// round each) and returns what `to` received.
Bytes send_records(TlsConnection& from, TlsConnection& to, int records, size_t size,
                   TlsStatus* last_write = nullptr) {
    Bytes received;
    Bytes chunk(size);
    std::byte buf[16384];
    for (int i = 0; i < records; ++i) {
        for (size_t k = 0; k < size; ++k)
            chunk[k] = std::byte((i * 31 + k) & 0xff);
        auto w = from.write(chunk);
        if (last_write != nullptr) *last_write = w.status;
        if (w.status != TlsStatus::ok) break;
        REQUIRE(w.bytes == size);
        REQUIRE(from.flush() == TlsStatus::ok);
        for (int tries = 0; tries < 50; ++tries) {
            auto r = to.read(buf);
            if (r.status == TlsStatus::ok) {
                received.insert(received.end(), buf, buf + r.bytes);
                if (received.size() % size == 0) break;
                continue;
            }
            REQUIRE_MESSAGE(r.status == TlsStatus::want_read, to.error());
        }
    }
    return received;
}

Bytes expected_records(int records, size_t size) {
    Bytes v;
    for (int i = 0; i < records; ++i)
        for (size_t k = 0; k < size; ++k)
            v.push_back(std::byte((i * 31 + k) & 0xff));
    return v;
}

}  // namespace

TEST_CASE("tls: each side updates its sending key every key_update_records records (TLS 1.3)") {
    Lab lab;
    auto server_cfg = lab.server_config();
    auto client_cfg = lab.client_config();
    server_cfg.key_update_records = 16;
    client_cfg.key_update_records = 16;
    Session s(client_cfg, server_cfg);
    s.require_established();
    key_updates_received = 0;
    SSL_set_msg_callback(s.server->ssl(), count_key_updates);

    // 100 records up: new keys before records 17, 33, 49, 65, 81 and 97. Every record must
    // decrypt on the other side, so the server followed each change.
    CHECK(send_records(*s.client, *s.server, 100, 1000) == expected_records(100, 1000));
    CHECK(s.client->key_updates() == 6);
    // OpenSSL's message callback sees them where OpenSSL receives; porthole's record reader
    // counts them where it does.
    CHECK(key_updates_received + s.server->peer_key_updates_opened() == 6);
    CHECK(s.server->key_updates() == 0);  // receiving does not count: each side keeps its own

    // 40 records down: two updates of the server's own key.
    CHECK(send_records(*s.server, *s.client, 40, 3000) == expected_records(40, 3000));
    CHECK(s.server->key_updates() == 2);

    // Full-size records count one each, a write of many records counts them all.
    CHECK(send_records(*s.client, *s.server, 20, 16384) == expected_records(20, 16384));
    CHECK(s.client->key_updates() == 7);
    CHECK(key_updates_received + s.server->peer_key_updates_opened() == 7);
    // Where porthole seals records itself, it did so across all seven key changes.
    if (RecordProtection::available()) {
        CHECK(s.client->sealed_records() >= 120);
        CHECK(s.server->sealed_records() >= 40);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: records porthole seals and opens work with a peer where OpenSSL does, both ways") {
    CHECK(RecordProtection::describe(false) == "OpenSSL (tls-sealer = openssl)");
    MESSAGE(RecordProtection::describe(true));
    if (!RecordProtection::available()) {
        CHECK(RecordProtection::describe(true).rfind("OpenSSL (", 0) == 0);
        MESSAGE("built without ipsec-mb or no AES-NI: OpenSSL seals every record");
        return;
    }
    CHECK(RecordProtection::describe(true).rfind("porthole (ipsec-mb ", 0) == 0);
    Lab lab;
    struct Case {
        const char* name;
        bool client_seals, server_seals;
        const char* suites;
        bool sealed;  // whether porthole seals with this suite
    };
    const Case cases[] = {
        {"client seals, AES-128-GCM", true, false, "TLS_AES_128_GCM_SHA256", true},
        {"server seals, AES-128-GCM", false, true, "TLS_AES_128_GCM_SHA256", true},
        {"both seal, AES-256-GCM", true, true, "TLS_AES_256_GCM_SHA384", true},
        {"ChaCha20-Poly1305: OpenSSL seals", true, true, "TLS_CHACHA20_POLY1305_SHA256", false},
    };
    for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        auto server_cfg = lab.server_config();
        auto client_cfg = lab.client_config();
        server_cfg.seal_records = c.server_seals;
        client_cfg.seal_records = c.client_seals;
        server_cfg.key_update_records = client_cfg.key_update_records = 16;
        auto server_ctx = must(TlsContext::server(server_cfg));
        auto client_ctx = must(TlsContext::client(client_cfg));
        REQUIRE(SSL_CTX_set_ciphersuites(client_ctx.get(), c.suites) == 1);
        Session s(client_ctx, server_ctx);
        s.handshake();
        s.require_established();
        // Sizes from one octet to a full record, across key updates both ways.
        for (size_t size : {1u, 100u, 5000u, 16383u, 16384u}) {
            CAPTURE(size);
            CHECK(send_records(*s.client, *s.server, 20, size) == expected_records(20, size));
            CHECK(send_records(*s.server, *s.client, 20, size) == expected_records(20, size));
        }
        CHECK(s.client->key_updates() >= 5);
        CHECK(s.server->key_updates() >= 5);
        CHECK((s.client->sealed_records() > 0) == (c.client_seals && c.sealed));
        CHECK((s.server->sealed_records() > 0) == (c.server_seals && c.sealed));
        // The side that seals also opens what it receives (record_reader.hpp), following the
        // peer's key updates; the client once the server's first application data is in.
        CHECK((s.client->opened_records() > 0) == (c.client_seals && c.sealed));
        CHECK((s.server->opened_records() > 0) == (c.server_seals && c.sealed));
        if (c.server_seals && c.sealed) CHECK(s.server->peer_key_updates_opened() >= 5);
        if (c.client_seals && c.sealed) CHECK(s.client->peer_key_updates_opened() >= 4);
        // The end of the session, sealed the same way: the peer reads a clean close_notify.
        s.client->shutdown();
        std::byte buf[64];
        TlsIo r{TlsStatus::want_read, 0};
        for (int i = 0; i < 50 && r.status == TlsStatus::want_read; ++i)
            r = s.server->read(buf);
        CHECK(r.status == TlsStatus::closed);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: a record that does not authenticate fails the reader, and the peer hears why") {
    if (!RecordProtection::available()) return;
    Lab lab;
    Session s(lab.client_config(), lab.server_config());
    s.require_established();
    CHECK(send_records(*s.client, *s.server, 2, 100) == expected_records(2, 100));
    REQUIRE(s.server->opened_records() > 0);
    // A record of the right shape whose tag cannot verify, written past the client's TLS.
    std::vector<uint8_t> forged{23, 3, 3, 0, 40};
    forged.resize(5 + 40, 0xab);
    REQUIRE(::send(s.fds[0], forged.data(), forged.size(), 0) == ssize_t(forged.size()));
    std::byte buf[256];
    TlsIo r{TlsStatus::want_read, 0};
    for (int i = 0; i < 50 && r.status == TlsStatus::want_read; ++i)
        r = s.server->read(buf);
    CHECK(r.status == TlsStatus::failed);
    CHECK(s.server->error().find("does not authenticate (bad_record_mac)") != std::string::npos);
    CHECK(s.server->tls_failed());
    // The server sealed a bad_record_mac alert, as OpenSSL would have; the client reads it.
    for (int i = 0; i < 50 && (i == 0 || r.status == TlsStatus::want_read); ++i)
        r = s.client->read(buf);
    CHECK(r.status == TlsStatus::failed);
    CHECK_MESSAGE(s.client->error().find("bad record mac") != std::string::npos, s.client->error());
    ERR_clear_error();
}

TEST_CASE("tls: a TLS 1.2 session ends at its record limit, with a reason (no KeyUpdate)") {
    Lab lab;
    auto server_cfg = lab.server_config(TlsVersion::v1_2);
    auto client_cfg = lab.client_config("concentrator.lab", TlsVersion::v1_2);
    client_cfg.key_update_records = 16;
    auto server_ctx = must(TlsContext::server(server_cfg));
    auto client_ctx = tls12_only_client(client_cfg);
    Session s(client_ctx, server_ctx);
    s.handshake();
    s.require_established();
    TlsStatus last = TlsStatus::ok;
    auto got = send_records(*s.client, *s.server, 20, 500, &last);
    CHECK(got == expected_records(16, 500));  // the 16 before the limit all arrived
    CHECK(last == TlsStatus::failed);
    CHECK(s.client->error().find("TLS 1.2") != std::string::npos);
    CHECK(s.client->error().find("16 records") != std::string::npos);
    CHECK(s.client->key_updates() == 0);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: key updates while the socket is full (writes that block and are repeated)") {
    Lab lab;
    auto server_cfg = lab.server_config();
    auto client_cfg = lab.client_config();
    client_cfg.key_update_records = 16;
    Session s(client_cfg, server_cfg);
    s.require_established();
    int small = 24 * 1024;
    REQUIRE(::setsockopt(s.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    Bytes big(2 * 1024 * 1024);
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = std::byte((i * 13 + i / 509) & 0xff);
    Bytes received;
    size_t sent = 0;
    int blocked = 0;
    std::byte buf[16384];
    for (int i = 0; i < 1000000 && received.size() < big.size(); ++i) {
        if (sent < big.size()) {
            // Like SendLanes: at most one record per write, the same bytes again after a block.
            auto rest = std::span<const std::byte>(big).subspan(
                sent, std::min<size_t>(16384, big.size() - sent));
            auto wr = s.client->write(rest);
            if (wr.status == TlsStatus::ok) {
                sent += wr.bytes;
            } else {
                REQUIRE_MESSAGE(wr.status == TlsStatus::want_write,
                                name(wr.status) << ": " << s.client->error());
                ++blocked;
            }
            auto fl = s.client->flush();
            REQUIRE_MESSAGE(fl != TlsStatus::failed, s.client->error());
            if (i % 8 != 0) continue;  // the reader is slower: the socket and buffer fill up
        } else {
            REQUIRE(s.client->flush() != TlsStatus::failed);
        }
        auto rd = s.server->read(buf);
        if (rd.status == TlsStatus::ok) {
            received.insert(received.end(), buf, buf + rd.bytes);
        } else {
            REQUIRE_MESSAGE(rd.status == TlsStatus::want_read, name(rd.status)
                                                                   << ": " << s.server->error());
        }
    }
    CHECK(blocked > 0);
    CHECK(sent == big.size());
    REQUIRE(received.size() == big.size());
    size_t first_diff = 0;
    while (first_diff < big.size() && received[first_diff] == big[first_diff])
        ++first_diff;
    CHECK_MESSAGE(first_diff == big.size(), "first difference at byte " << first_diff);
    CHECK(s.client->key_updates() == (big.size() / 16384 - 1) / 16);
}

TEST_CASE("tls: a peer that does not renew its key is asked to (KeyUpdate, update_requested)") {
    Lab lab;
    auto server_cfg = lab.server_config();
    auto client_cfg = lab.client_config();
    server_cfg.key_update_records = 16;  // the server asks after 1.25 x 16 full records
    client_cfg.key_update_records = porthole::tls::kMaxKeyUpdateRecords;  // would renew too late
    Session s(client_cfg, server_cfg);
    s.require_established();
    key_updates_received = 0;
    SSL_set_msg_callback(s.server->ssl(), count_key_updates);

    // 19 full records: not yet 1.25 x 16 x 16 KiB (320 KiB) received.
    CHECK(send_records(*s.client, *s.server, 19, 16384) == expected_records(19, 16384));
    CHECK(send_records(*s.server, *s.client, 1, 100) == expected_records(1, 100));
    CHECK(s.server->key_update_requests() == 0);
    // Two more: the server's next write renews its key and asks the client to renew its own,
    // which the client's OpenSSL does before the client's next record.
    CHECK(send_records(*s.client, *s.server, 2, 16384) == expected_records(2, 16384));
    CHECK(send_records(*s.server, *s.client, 1, 100) == expected_records(1, 100));
    CHECK(s.server->key_updates() == 1);
    CHECK(s.server->key_update_requests() == 1);
    CHECK(key_updates_received + s.server->peer_key_updates_opened() == 0);
    CHECK(send_records(*s.client, *s.server, 3, 1000) == expected_records(3, 1000));
    // The client's answer, under its new key.
    CHECK(key_updates_received + s.server->peer_key_updates_opened() == 1);
    // Where OpenSSL receives it answers by itself (not our count); where porthole's record reader
    // receives, the client's next write answers.
    CHECK(s.client->key_updates() == (s.client->opened_records() > 0 ? 1u : 0u));
    CHECK(ERR_peek_error() == 0);
}

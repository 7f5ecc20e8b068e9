// HandshakePool: server handshakes lent to worker threads come back through the pool's eventfd,
// each exactly once and with its outcome: completed (the client's identity verified), failed
// (a certificate from another CA), timed out (a client that never speaks). Clients are driven
// in the test thread over non-blocking socketpairs.
#include <doctest/doctest.h>
#include <poll.h>

#include <chrono>
#include <map>
#include <optional>
#include <vector>

#include "concentrator/concentrator_options.hpp"
#include "concentrator/handshake_pool.hpp"
#include "test_pki.hpp"
#include "test_tls_pair.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"

using namespace porthole;
using concentrator::HandshakePool;
using tls::TlsStatus;

namespace {

struct Peer : test_tls::TlsPair {
    bool silent = false;  // the client never starts its handshake
};

}  // namespace

TEST_CASE("handshake pool: handshakes on worker threads come back once, with their outcome") {
    test_pki::Pki pki;
    auto ca = pki.make_ca("Lab CA");
    auto rogue = pki.make_ca("Rogue CA");
    auto srv = pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab"});
    auto ue = pki.make_leaf(ca, "ue-1", {});
    auto bad = pki.make_leaf(rogue, "ue-rogue", {});
    auto sctx = tls::TlsContext::server({srv.cert_file, srv.key_file, ca.cert_file});
    auto good_ctx =
        tls::TlsContext::client({ca.cert_file, ue.cert_file, ue.key_file, "concentrator.lab"});
    auto bad_ctx =
        tls::TlsContext::client({ca.cert_file, bad.cert_file, bad.key_file, "concentrator.lab"});
    REQUIRE(sctx.has_value());
    REQUIRE(good_ctx.has_value());
    REQUIRE(bad_ctx.has_value());

    auto pool = HandshakePool::create(2);
    REQUIRE(pool.has_value());
    auto& hp = **pool;
    CHECK(hp.workers() == 2);

    // 12 good clients, 3 with a foreign certificate, 2 silent ones.
    constexpr size_t kGood = 12, kBad = 3, kSilent = 2, kAll = kGood + kBad + kSilent;
    std::vector<std::unique_ptr<Peer>> peers;
    auto now = session::Clock::now();
    for (size_t i = 0; i < kAll; ++i) {
        auto p = std::make_unique<Peer>();
        const auto& cctx = i < kGood ? *good_ctx : *bad_ctx;
        p->make(cctx, *sctx);
        p->silent = i >= kGood + kBad;
        // Silent clients are lent with a short deadline; the others have plenty of time.
        auto deadline =
            now + (p->silent ? std::chrono::milliseconds(300) : std::chrono::seconds(20));
        hp.lend(session::SessionId(i + 1), p->fds[1], *p->server, deadline);
        peers.push_back(std::move(p));
    }
    CHECK(hp.in_flight() == kAll);

    std::map<session::SessionId, HandshakePool::Done> done;
    std::vector<HandshakePool::Done> batch;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (done.size() < kAll && std::chrono::steady_clock::now() < until) {
        // The clients' side, in this thread (the servers' side is on the workers).
        for (auto& p : peers)
            if (!p->silent && !test_tls::terminal(p->client_status))
                p->client_status = p->client->handshake();
        pollfd pfd{hp.done_fd(), POLLIN, 0};
        if (::poll(&pfd, 1, 5) == 1) {
            batch.clear();
            hp.take_done(batch);
            for (const auto& d : batch) {
                CHECK_MESSAGE(done.count(d.id) == 0, "handshake " << d.id << " came back twice");
                done[d.id] = d;
            }
        }
    }
    REQUIRE(done.size() == kAll);
    CHECK(hp.in_flight() == 0);
    for (size_t i = 0; i < kAll; ++i) {
        const auto& d = done[session::SessionId(i + 1)];
        auto& p = *peers[i];
        INFO("peer " << i);
        if (i < kGood) {
            CHECK(d.status == TlsStatus::ok);
            CHECK_FALSE(d.timed_out);
            CHECK(p.server->peer_identity() == "ue-1");  // the connection is usable back here
        } else if (i < kGood + kBad) {
            CHECK(d.status == TlsStatus::failed);
            CHECK_FALSE(d.timed_out);
            CHECK(p.server->error().find("certificate") != std::string::npos);
        } else {
            CHECK(d.timed_out);
        }
    }
}

TEST_CASE("handshake pool: stopping it with handshakes in flight leaves them to the owner") {
    test_pki::Pki pki;
    auto ca = pki.make_ca("Lab CA");
    auto srv = pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab"});
    auto sctx = tls::TlsContext::server({srv.cert_file, srv.key_file, ca.cert_file});
    REQUIRE(sctx.has_value());
    test_tls::TlsPair p;
    auto s = tls::TlsConnection::make(*sctx, p.fds[1]);
    REQUIRE(s.has_value());
    p.server.emplace(std::move(*s));
    {
        auto pool = HandshakePool::create(1);
        REQUIRE(pool.has_value());
        (*pool)->lend(1, p.fds[1], *p.server, session::Clock::now() + std::chrono::seconds(30));
    }  // joined here; the connection and its socket are still ours
    CHECK(p.server->handshake() == TlsStatus::want_read);
    CHECK_FALSE(HandshakePool::create(0).has_value());
}

TEST_CASE("handshake pool: default thread count by CPUs") {
    CHECK(concentrator::default_handshake_threads(1) == 0);
    CHECK(concentrator::default_handshake_threads(2) == 0);
    CHECK(concentrator::default_handshake_threads(3) == 0);
    CHECK(concentrator::default_handshake_threads(4) == 3);
    CHECK(concentrator::default_handshake_threads(64) == 16);
}

TEST_CASE("concentrator: default event loops by CPUs") {
    CHECK(concentrator::default_workers(0) == 1);  // hardware_concurrency() may not know
    CHECK(concentrator::default_workers(1) == 1);
    CHECK(concentrator::default_workers(2) == 2);
    CHECK(concentrator::default_workers(64) == 16);
}

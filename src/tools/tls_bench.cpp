// porthole-tlsbench: what one concentrator core pays for a TLS handshake, measured in isolation.
//
// The server side is portholed's own TLS code (TlsContext::server, TlsConnection) with its
// default configuration (TLS 1.3, mutual TLS, stateful tickets); the clients run in a child
// process, so the parent's CPU time (CLOCK_PROCESS_CPUTIME_ID) is the server's alone: accept,
// handshake, ticket, close. The transport is an abstract AF_UNIX socket, no network at all.
// Three phases:
//   full     --count connections, each presenting one of --identities freshly minted UE
//            certificates (ECDSA P-256, signed by the given CA), as first contacts do
//   resumed  --count connections offering the ticket of an earlier one (PSK + ECDHE)
//   floor    the public-key operations a full handshake needs on the server, timed alone:
//            two ECDSA P-256 verifications (the UE certificate, its CertificateVerify), one
//            signature, one X25519 key generation and derivation
// Prints one machine-readable line and a short table.
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <array>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.hpp"
#include "sim/cert_mint.hpp"
#include "tls/session_ticket.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"

namespace {

using namespace porthole;

double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

double monotonic_seconds() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

// Drives a handshake on a non-blocking socket to its end; false on failure or after 5 s.
bool finish_handshake(tls::TlsConnection& conn, int fd) {
    const double deadline = monotonic_seconds() + 5.0;
    for (;;) {
        const tls::TlsStatus st = conn.handshake();
        if (st == tls::TlsStatus::ok) return true;
        if (st != tls::TlsStatus::want_read && st != tls::TlsStatus::want_write) return false;
        if (monotonic_seconds() > deadline) return false;
        pollfd p{fd, short(st == tls::TlsStatus::want_write ? POLLOUT : POLLIN), 0};
        ::poll(&p, 1, 100);
    }
}

struct Endpoint {
    sockaddr_un addr{};
    socklen_t len = 0;
};

Endpoint abstract_endpoint() {
    Endpoint e;
    e.addr.sun_family = AF_UNIX;
    const std::string name = fmt::format("porthole-tlsbench-{}", ::getpid());
    std::memcpy(e.addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
    e.len = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return e;
}

struct Options {
    std::string ca_cert, ca_key, server_cert, server_key, crl;
    int count = 2000;
    int identities = 200;
    int bulk_mib = 0;
    bool openssl_seals = false;
};

// The client process: `count` full handshakes with minted identities, then `count` resumptions.
// Reads one byte (the server's close) after each, so the server's close is part of its turn.
int run_clients(const Options& o, const Endpoint& ep) {
    tls::ClientConfig cc;
    cc.ca_file = o.ca_cert;
    cc.server_name = "concentrator.lab";
    cc.cert_file = o.server_cert;  // replaced per connection by a minted identity
    cc.key_file = o.server_key;
    auto ctx = tls::TlsContext::client(cc);
    if (!ctx) return fmt::print(stderr, "tlsbench client: {}\n", ctx.error().message), 1;
    auto minter = sim::CertMinter::load(o.ca_cert, o.ca_key);
    if (!minter) return fmt::print(stderr, "tlsbench client: {}\n", minter.error().message), 1;
    std::vector<sim::ClientIdentity> ids;
    ids.reserve(size_t(o.identities));
    for (int i = 0; i < o.identities; ++i) {
        auto id = minter->mint(fmt::format("bench-ue-{}", i));
        if (!id) return fmt::print(stderr, "tlsbench client: {}\n", id.error().message), 1;
        ids.push_back(std::move(*id));
    }
    std::vector<tls::SessionTicket> tickets(size_t(o.count));
    for (int phase = 0; phase < 2; ++phase) {
        for (int i = 0; i < o.count; ++i) {
            Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (!fd ||
                ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0)
                return fmt::print(stderr, "tlsbench client: connect: {}\n", std::strerror(errno)),
                       1;
            auto conn = tls::TlsConnection::make(*ctx, fd.get());
            if (!conn) return fmt::print(stderr, "tlsbench client: {}\n", conn.error().message), 1;
            if (auto r = ids[size_t(i % o.identities)].apply(conn->ssl()); !r)
                return fmt::print(stderr, "tlsbench client: {}\n", r.error().message), 1;
            if (phase == 1) conn->offer_ticket(tickets[size_t(i)]);
            if (!finish_handshake(*conn, fd.get()))
                return fmt::print(stderr, "tlsbench client: handshake {}: {}\n", i, conn->error()),
                       1;
            // Until the server closes: the ticket arrives with these reads.
            std::array<std::byte, 4096> buf{};
            for (const double end = monotonic_seconds() + 5.0; monotonic_seconds() < end;) {
                const tls::TlsIo io = conn->read(buf);
                if (io.status == tls::TlsStatus::closed || io.status == tls::TlsStatus::failed)
                    break;
                pollfd p{fd.get(), POLLIN, 0};
                ::poll(&p, 1, 100);
            }
            if (phase == 0) tickets[size_t(i)] = conn->take_ticket();
            if (phase == 1 && !conn->resumed())
                return fmt::print(stderr, "tlsbench client: connection {} not resumed\n", i), 1;
        }
    }
    return 0;
}

// --bulk-mib: the cost of moving bytes through an established connection, server to client,
// with records sealed and opened by porthole or by OpenSSL (tls-sealer on both sides). Returns
// {sender CPU s, receiver CPU s}
// for `mib` MiB written in 16 KiB writes over an AF_UNIX socket pair; {-1, -1} on failure.
std::pair<double, double> bulk(const Options& o, const tls::ServerConfig& base, bool seal,
                               int mib) {
    tls::ServerConfig sc = base;
    sc.seal_records = seal;
    auto server = tls::TlsContext::server(sc);
    if (!server) return {-1, -1};
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return {-1, -1};
    const size_t total = size_t(mib) << 20;
    const pid_t child = ::fork();
    if (child < 0) return {-1, -1};
    if (child == 0) {  // the receiver
        ::close(sv[0]);
        tls::ClientConfig cc;
        cc.ca_file = o.ca_cert;
        cc.server_name = "concentrator.lab";
        cc.cert_file = o.server_cert;
        cc.key_file = o.server_key;
        cc.seal_records = seal;  // the receiving side: porthole opens the records, or OpenSSL
        auto ctx = tls::TlsContext::client(cc);
        auto minter = sim::CertMinter::load(o.ca_cert, o.ca_key);
        if (!ctx || !minter) ::_exit(1);
        auto id = minter->mint("bench-bulk");
        auto conn = tls::TlsConnection::make(*ctx, sv[1]);
        if (!id || !conn || !id->apply(conn->ssl()) || !finish_handshake(*conn, sv[1])) ::_exit(1);
        static std::array<std::byte, 65536> buf{};
        size_t got = 0;
        while (got < total) {
            const tls::TlsIo io = conn->read(buf);
            if (io.status == tls::TlsStatus::ok) {
                got += io.bytes;
                continue;
            }
            if (io.status != tls::TlsStatus::want_read) ::_exit(1);
            pollfd p{sv[1], POLLIN, 0};
            ::poll(&p, 1, 1000);
        }
        ::_exit(0);
    }
    ::close(sv[1]);
    Fd fd(sv[0]);
    auto conn = tls::TlsConnection::make(*server, fd.get());
    double sender = -1;
    if (conn && finish_handshake(*conn, fd.get())) {
        static std::array<std::byte, 16384> chunk{};
        size_t sent = 0;
        const double cpu0 = process_cpu_seconds();
        bool ok = true;
        while (ok && sent < total) {
            const tls::TlsIo io = conn->write(chunk);
            if (io.status == tls::TlsStatus::ok) {
                sent += io.bytes;
                if (conn->unflushed() < 256 * 1024) continue;
            } else if (io.status != tls::TlsStatus::want_write) {
                ok = false;
                break;
            }
            const tls::TlsStatus f = conn->flush();
            if (f == tls::TlsStatus::failed) ok = false;
            if (f == tls::TlsStatus::want_write) {
                pollfd p{fd.get(), POLLOUT, 0};
                ::poll(&p, 1, 1000);
            }
        }
        while (ok && conn->unflushed() > 0) {
            if (conn->flush() == tls::TlsStatus::failed) ok = false;
            pollfd p{fd.get(), POLLOUT, 0};
            ::poll(&p, 1, 100);
        }
        if (ok) sender = process_cpu_seconds() - cpu0;
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    rusage ru{};
    ::getrusage(RUSAGE_CHILDREN, &ru);
    static double children_before = 0;  // RUSAGE_CHILDREN accumulates over calls
    const double children = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                            double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    const double receiver = children - children_before;
    children_before = children;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sender < 0) return {-1, -1};
    return {sender, receiver};
}

struct PhaseResult {
    int done = 0;
    double cpu_s = 0;
    double wall_s = 0;
};

// The server side of one phase: accept, handshake, close, `count` times.
PhaseResult serve(const tls::TlsContext& ctx, int listener, int count) {
    PhaseResult r;
    const double cpu0 = process_cpu_seconds();
    const double wall0 = monotonic_seconds();
    for (int i = 0; i < count; ++i) {
        Fd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) break;
        auto conn = tls::TlsConnection::make(ctx, fd.get());
        if (!conn) break;
        if (finish_handshake(*conn, fd.get())) ++r.done;
        conn->shutdown();
    }
    r.cpu_s = process_cpu_seconds() - cpu0;
    r.wall_s = monotonic_seconds() - wall0;
    return r;
}

// Microseconds of CPU per call of f, over enough calls to take ~0.3 s.
template <typename F>
double time_op(F&& f) {
    int n = 0;
    const double cpu0 = process_cpu_seconds();
    double cpu = 0;
    while (cpu < 0.3) {
        for (int i = 0; i < 50; ++i)
            if (!f()) return -1;
        n += 50;
        cpu = process_cpu_seconds() - cpu0;
    }
    return cpu / n * 1e6;
}

struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct Floor {
    double verify_us = -1, sign_us = -1, x25519_us = -1;
    [[nodiscard]] double total_us() const { return 2 * verify_us + sign_us + x25519_us; }
};

// The public-key work of one full handshake on the server, each operation timed on its own.
Floor crypto_floor() {
    Floor f;
    sim::PkeyPtr p256(EVP_EC_gen("P-256"));
    if (!p256) return f;
    const unsigned char msg[64] = {1};
    std::vector<unsigned char> sig(size_t(EVP_PKEY_get_size(p256.get())));
    size_t siglen = 0;
    auto sign_once = [&] {
        MdCtx md(EVP_MD_CTX_new());
        siglen = sig.size();
        return md &&
               EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, p256.get()) == 1 &&
               EVP_DigestSign(md.get(), sig.data(), &siglen, msg, sizeof msg) == 1;
    };
    f.sign_us = time_op(sign_once);
    f.verify_us = time_op([&] {
        MdCtx md(EVP_MD_CTX_new());
        return md &&
               EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, p256.get()) == 1 &&
               EVP_DigestVerify(md.get(), sig.data(), siglen, msg, sizeof msg) == 1;
    });
    sim::PkeyPtr peer(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
    if (!peer) return f;
    f.x25519_us = time_op([&] {
        sim::PkeyPtr mine(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
        PkeyCtx ctx(mine ? EVP_PKEY_CTX_new(mine.get(), nullptr) : nullptr);
        unsigned char secret[32];
        size_t len = sizeof secret;
        return ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
               EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) == 1 &&
               EVP_PKEY_derive(ctx.get(), secret, &len) == 1;
    });
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"porthole-tlsbench: server CPU per TLS handshake (portholed's TLS code), alone"};
    app.add_option("--ca-cert", o.ca_cert, "CA certificate (PEM) that issues UE certificates")
        ->required();
    app.add_option("--ca-key", o.ca_key, "its key, to mint UE certificates")->required();
    app.add_option("--server-cert", o.server_cert, "concentrator certificate (PEM chain)")
        ->required();
    app.add_option("--server-key", o.server_key, "its key")->required();
    app.add_option("--crl", o.crl, "CRL(s) of the CA (PEM), as portholed's crl option")
        ->check(CLI::ExistingFile);
    app.add_option("--count", o.count, "handshakes per phase")->check(CLI::Range(1, 1000000));
    app.add_option("--identities", o.identities, "distinct UE certificates")
        ->check(CLI::Range(1, 100000));
    app.add_option("--bulk-mib", o.bulk_mib,
                   "instead of handshakes: MiB moved server to client, once with records sealed "
                   "and opened by openssl, once by porthole; prints CPU seconds per GB of both "
                   "sides")
        ->check(CLI::Range(1, 100000));
    app.add_flag("--openssl-seals", o.openssl_seals,
                 "handshakes: the server context as with tls-sealer = openssl");
    CLI11_PARSE(app, argc, argv);

    tls::ServerConfig sc;
    sc.cert_file = o.server_cert;
    sc.key_file = o.server_key;
    sc.client_ca_file = o.ca_cert;
    sc.crl_file = o.crl;
    sc.seal_records = !o.openssl_seals;
    auto server = tls::TlsContext::server(sc);
    if (!server) return fmt::print(stderr, "porthole-tlsbench: {}\n", server.error().message), 1;
    if (o.bulk_mib > 0) {
        const double gb = double(size_t(o.bulk_mib) << 20) / 1e9;
        fmt::print(
            "TLS cost of moving {} MiB server -> client in 16 KiB writes, records sealed "
            "and opened by (tls-sealer):\n",
            o.bulk_mib);
        std::string line = "tlsbench-bulk:";
        for (const bool seal : {false, true}) {
            const auto [sender, receiver] = bulk(o, sc, seal, o.bulk_mib);
            if (sender < 0)
                return fmt::print(stderr, "porthole-tlsbench: bulk transfer failed\n"), 1;
            const char* name = seal ? "porthole" : "openssl";
            fmt::print("  {:8}  sender {:.3f} CPU-s/GB, receiver {:.3f} CPU-s/GB\n", name,
                       sender / gb, receiver / gb);
            line += fmt::format(" {0}_sender_s_per_gb={1:.3f} {0}_receiver_s_per_gb={2:.3f}", name,
                                sender / gb, receiver / gb);
        }
        fmt::print("{}\n", line);
        return 0;
    }

    const Endpoint ep = abstract_endpoint();
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener ||
        ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0 ||
        ::listen(listener.get(), 64) != 0)
        return fmt::print(stderr, "porthole-tlsbench: listen: {}\n", std::strerror(errno)), 1;

    const pid_t child = ::fork();
    if (child < 0)
        return fmt::print(stderr, "porthole-tlsbench: fork: {}\n", std::strerror(errno)), 1;
    if (child == 0) {
        listener = Fd();
        ::_exit(run_clients(o, ep));
    }
    const PhaseResult full = serve(*server, listener.get(), o.count);
    const PhaseResult resumed =
        full.done == o.count ? serve(*server, listener.get(), o.count) : PhaseResult{};
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || full.done != o.count ||
        resumed.done != o.count) {
        fmt::print(stderr,
                   "porthole-tlsbench: failed: {} of {} full, {} of {} resumed handshakes\n",
                   full.done, o.count, resumed.done, o.count);
        return 1;
    }
    const Floor floor = crypto_floor();
    auto per_s = [](const PhaseResult& r) { return r.done / r.cpu_s; };
    fmt::print(
        "tlsbench: full={} full_cpu_us={:.1f} full_per_cpu_s={:.0f} resumed={} "
        "resumed_cpu_us={:.1f} "
        "resumed_per_cpu_s={:.0f} ecdsa_verify_us={:.1f} ecdsa_sign_us={:.1f} x25519_us={:.1f} "
        "floor_us={:.1f} floor_per_s={:.0f}\n",
        full.done, full.cpu_s / full.done * 1e6, per_s(full), resumed.done,
        resumed.cpu_s / resumed.done * 1e6, per_s(resumed), floor.verify_us, floor.sign_us,
        floor.x25519_us, floor.total_us(), 1e6 / floor.total_us());
    fmt::print("server CPU per handshake (one core, accept to close):\n");
    fmt::print("  full (mutual TLS, new UE certificate)  {:7.1f} us  = {:5.0f} per CPU-second\n",
               full.cpu_s / full.done * 1e6, per_s(full));
    fmt::print("  resumed (ticket, PSK + ECDHE)          {:7.1f} us  = {:5.0f} per CPU-second\n",
               resumed.cpu_s / resumed.done * 1e6, per_s(resumed));
    fmt::print(
        "  public-key floor of a full one         {:7.1f} us  = {:5.0f} per CPU-second "
        "(2 x P-256 verify {:.1f}, sign {:.1f}, X25519 {:.1f})\n",
        floor.total_us(), 1e6 / floor.total_us(), floor.verify_us, floor.sign_us, floor.x25519_us);
    return 0;
}

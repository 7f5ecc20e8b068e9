#include "concentrator/concentrator.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "base/log.hpp"
#include "control/control_server.hpp"
#include "control/metrics_server.hpp"
#include "control/report.hpp"
#include "net/tcp_socket.hpp"
#include "os/process_memory.hpp"
#include "os/systemd_notify.hpp"
#include "packet/ip_packet.hpp"
#include "session/lease_file.hpp"
#include "tls/record_protection.hpp"

namespace porthole::concentrator {

using packet::CloseReason;
using session::Clock;

namespace {
constexpr size_t kTunBatch = 256;  // packets read from the TUN device per wake-up
// A batch of at least this many events was busy enough to read the TUN device after it.
constexpr size_t kBusyBatch = 8;
// TLS handshake steps the event loop runs per turn when there are no handshake threads. A
// step costs up to ~0.7 ms (key exchange, signature, the UE's certificate), and a batch of 128
// of them held every connected UE's packets for ~90 ms during a reconnection storm.
constexpr size_t kHandshakeStepsPerTurn = 4;
constexpr size_t kAcceptBatch = 64;  // connections accepted per wake-up
// Times a connection asks other event loops to close its identity's previous session before it
// is configured regardless (each time, another connection of that identity came in between).
constexpr int kConfigAttempts = 4;
constexpr size_t kTunBufSize = 65536;
// Packets and tasks in flight to one event loop from the others: 32 super-packets.
constexpr size_t kInboxBytes = 2 * 1024 * 1024;
// How long the primary waits for another loop to run a control task (status, sessions, kick,
// reload, SIGUSR1) before it leaves that loop out. A loop turns at least every 0.5 s.
constexpr auto kLoopAnswerLimit = std::chrono::seconds(2);
// A loop that has not started a turn for this long gets no new connections.
constexpr auto kLoopStale = std::chrono::seconds(1);

void warn_if_forwarding_off(const ConcentratorOptions& opt) {
    auto check = [](const char* path, const char* name) {
        std::ifstream f(path);
        char c = '1';
        if (f >> c && c == '0')
            log::warn(
                "{} is off in this network namespace: UE traffic will not be forwarded to "
                "the operator network (sysctl -w {}=1)",
                name, name);
    };
    if (opt.pool4) check("/proc/sys/net/ipv4/ip_forward", "net.ipv4.ip_forward");
    if (opt.pool6) check("/proc/sys/net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding");
}
}  // namespace

Result<std::unique_ptr<Concentrator>> Concentrator::create(const ConcentratorOptions& opt) {
    if (!opt.pool4 && !opt.pool6) return make_error("no address pool configured (--pool/--pool6)");
    if (opt.max_envelope < size_t(opt.mtu) + packet::kHeaderSize)
        return make_error("max-envelope {} is smaller than mtu {} + 3", opt.max_envelope, opt.mtu);
    if (opt.workers == 0 || opt.workers > kMaxWorkers)
        return make_error("workers {}: must be 1 to {}", opt.workers, kMaxWorkers);
    if (opt.workers > 1 && opt.handshake_threads > 0)
        return make_error(
            "handshake-threads needs workers 1 (with more event loops, each runs its own "
            "handshakes)");

    auto tls = tls::TlsContext::server(server_tls_config(opt));
    if (!tls) return tls.error();
    auto loop = net::EventLoop::create();
    if (!loop) return loop.error();
    auto signals = net::SignalFd::create();
    if (!signals) return signals.error();
    const auto offload = opt.offload ? tun::TunDevice::Offload::on : tun::TunDevice::Offload::off;
    auto tun = opt.workers > 1 ? tun::TunDevice::create_multi_queue(opt.tun_name, offload)
                               : tun::TunDevice::create(opt.tun_name, offload);
    if (!tun) return tun.error();

    auto shared = std::make_shared<Shared>();
    std::unique_ptr<Concentrator> c(new Concentrator(opt, std::move(*loop), std::move(*signals),
                                                     std::move(*tun), std::move(*tls), shared, 0));
    if (opt.pool4) {
        auto p = session::AddressPool::create(*opt.pool4);
        if (!p) return p.error().context("pool");
        shared->pool4.emplace(std::move(*p));
    }
    if (opt.pool6) {
        auto p = session::AddressPool::create(*opt.pool6);
        if (!p) return p.error().context("pool6");
        shared->pool6.emplace(std::move(*p));
    }

    for (const auto& [identity, addr] : opt.static_addresses) {
        auto* pool = shared->pool_for(addr);
        if (!pool || !pool->reserve(identity, addr))
            return make_error(
                "static address {} for '{}': not in a pool, the pool's gateway, or "
                "already given to another identity",
                addr, identity);
    }
    for (auto* pool : shared->pools())
        if (pool) c->policy_.add_pool(pool->prefix(), pool->gateway());
    c->policy_.set_allow_ue_to_ue(opt.allow_ue_to_ue);
    if (auto r = c->load_leases(); !r) return r.error();
    if (!opt.decoy_dir.empty()) {
        std::string path = opt.decoy_dir + "/index.html";
        std::ifstream f(path, std::ios::binary);
        if (!f) return make_error("decoy-dir: cannot read {}", path);
        std::string page((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (page.size() > 1024 * 1024) return make_error("decoy-dir: {} is over 1 MiB", path);
        c->decoy_ = DecoyWeb(std::move(page));
    }

    auto nl = tun::Netlink::open();
    if (!nl) return nl.error();
    c->netlink_.emplace(std::move(*nl));
    int ifindex = c->tun_.ifindex();
    for (auto* pool : shared->pools()) {
        if (!pool) continue;
        auto h = c->netlink_->add_address(ifindex, pool->with_pool_length(pool->gateway()));
        if (!h) return h.error();
        c->addresses_.push_back(std::move(*h));
    }
    if (auto r = c->netlink_->set_link_up(ifindex, opt.mtu); !r) return r.error();
    if (c->tun_.offload()) {
        if (auto r = c->netlink_->set_gso_max_size(ifindex, packet::kTunGsoMaxSize); !r) {
            log::warn("{}; TUN offloads off", r.error().message);
            c->tun_.set_offload(false);
        }
    }

    // Our nftables table: a stale one from a crash goes first, in routed mode too.
    if (auto r = net::NatTable::remove(); !r)
        log::warn("removing stale nftables table: {}", r.error().message);
    if (!opt.nat_egress.empty()) {
        net::NatSpec spec{opt.nat_egress, {}};
        if (opt.pool4) spec.sources.push_back(shared->pool4->prefix());
        if (opt.pool6) spec.sources.push_back(shared->pool6->prefix());
        auto nat = net::NatTable::install(spec);
        if (!nat) return nat.error();
        c->nat_.emplace(std::move(*nat));
    }
    warn_if_forwarding_off(opt);

    if (opt.listen.empty()) return make_error("no listen address");
    for (const auto& ep : opt.listen) {
        auto lfd = net::listen_tcp(ep);
        if (!lfd) return lfd.error();
        auto l = std::make_unique<Listener>();
        l->self = c.get();
        l->fd = std::move(*lfd);
        l->local = ep;
        if (auto r = c->loop_.add(l->fd.get(), EPOLLIN, l.get()); !r) return r.error();
        c->listeners_.push_back(std::move(l));
    }
    if (auto r = c->loop_.add(c->tun_.fd(), EPOLLIN, &c->tun_h_); !r) return r.error();
    if (auto r = c->loop_.add(c->signals_->fd(), EPOLLIN, &c->signals_h_); !r) return r.error();
    Concentrator* self = c.get();
    if (!opt.control_socket.empty()) {
        control::ControlServerOptions co;
        co.path = opt.control_socket;
        co.group = opt.control_group;
        auto cs = control::ControlServer::create(
            c->loop_, co, [self](std::string_view req) { return self->handle_control(req); });
        if (!cs) return cs.error();
        c->control_ = std::move(*cs);
        log::info("control socket {}{}", opt.control_socket,
                  opt.control_group.empty() ? "" : fmt::format(" (group {})", opt.control_group));
    }
    if (opt.metrics_listen) {
        auto ms = control::MetricsServer::create(c->loop_, *opt.metrics_listen, [self] {
            return control::prometheus_text(self->status_report());
        });
        if (!ms) return ms.error();
        c->metrics_ = std::move(*ms);
        log::info("metrics on http://{}/metrics", *opt.metrics_listen);
    }
    if (opt.handshake_threads > 0) {
        // Started after the signals were blocked (SignalFd): the threads inherit the mask.
        auto pool = HandshakePool::create(opt.handshake_threads);
        if (!pool) return pool.error();
        c->handshake_pool_ = std::move(*pool);
        c->handshakes_done_h_.self = self;
        if (auto r = c->loop_.add(c->handshake_pool_->done_fd(), EPOLLIN, &c->handshakes_done_h_);
            !r)
            return r.error();
    }

    // The other event loops; their threads start in run().
    c->peers_.push_back(c.get());
    for (size_t i = 1; i < opt.workers; ++i) {
        auto w = create_worker(*c, i);
        if (!w) return w.error().context(fmt::format("event loop {}", i));
        c->peers_.push_back(w->get());
        c->workers_.push_back(std::move(*w));
    }
    if (c->peers_.size() > 1) {
        for (auto* l : c->peers_) {
            l->peers_ = c->peers_;
            auto inbox = WorkerInbox::create(kInboxBytes);
            if (!inbox) return inbox.error();
            l->inbox_ = std::move(*inbox);
            l->inbox_h_.self = l;
            if (auto r = l->loop_.add(l->inbox_->fd(), EPOLLIN, &l->inbox_h_); !r) return r.error();
        }
    }
    return c;
}

Result<std::unique_ptr<Concentrator>> Concentrator::create_worker(Concentrator& p, size_t index) {
    auto loop = net::EventLoop::create();
    if (!loop) return loop.error();
    auto tun = p.tun_.add_queue();
    if (!tun) return tun.error();
    std::unique_ptr<Concentrator> w(new Concentrator(
        p.opt_, std::move(*loop), std::nullopt, std::move(*tun), p.tls_.share(), p.shared_, index));
    w->policy_ = p.policy_;
    w->decoy_ = p.decoy_;
    if (auto r = w->loop_.add(w->tun_.fd(), EPOLLIN, &w->tun_h_); !r) return r.error();
    return w;
}

Concentrator::Concentrator(const ConcentratorOptions& opt, net::EventLoop loop,
                           std::optional<net::SignalFd> signals, tun::TunDevice tun,
                           tls::TlsContext tls, std::shared_ptr<Shared> shared, size_t index)
    : opt_(opt),
      loop_(std::move(loop)),
      signals_(std::move(signals)),
      tun_(std::move(tun)),
      tls_(std::move(tls)),
      shared_(std::move(shared)),
      index_(index),
      rx_buf_(new std::byte[kRxBufferSize]),
      tun_buf_(new std::byte[kTunBufSize]),
      segment_buf_(new std::byte[kTunBufSize]),
      next_id_(index + 1) {
    tun_h_.self = this;
    signals_h_.self = this;
}

Concentrator::~Concentrator() {
    if (threads_.empty()) return;  // never started, or joined by run()
    // run() failed: stop the other loops before their objects go.
    for (auto& w : workers_) {
        w->stop_requested_ = true;
        post_to(w->index_, [](Concentrator&) {});  // a wake-up
    }
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

Result<void> Concentrator::start_workers() {
    for (auto& w : workers_) {
        try {
            threads_.emplace_back([w = w.get()] {
                // top -H, ps -L and scripts/bench/scale.sh tell the loops apart by name.
                auto name = fmt::format("portholed:{}", w->index_);
                ::pthread_setname_np(::pthread_self(), name.c_str());
                w->run_worker();
            });
        } catch (const std::system_error& e) {
            return make_error("cannot start event loop {}: {}", w->index_, e.what());
        }
    }
    return ok();
}

void Concentrator::run_worker() {
    auto next_tick = Clock::now();
    while (!stop_requested_.load()) {
        if (auto r = turn(next_tick); !r) {
            // The service stops as a whole (systemd restarts it) rather than lose a core's UEs.
            log::error("event loop {}: {}; stopping", index_, r.error().message);
            ::kill(::getpid(), SIGTERM);
            break;
        }
    }
    close_all_and_linger();
    exited_ = true;
}

void Concentrator::post_to(size_t index, std::function<void(Concentrator&)> task) {
    if (index == index_) return task(*this);
    Concentrator* target = peers_[index];
    target->inbox_->post([target, task = std::move(task)] { task(*target); });
}

std::vector<size_t> Concentrator::on_every_loop(std::function<void(Concentrator&)> f, Late late) {
    auto fn = std::make_shared<std::function<void(Concentrator&)>>(std::move(f));
    (*fn)(*this);
    std::vector<size_t> missing;
    for (auto& w : workers_) {
        auto call = std::make_shared<LoopCall>(late);
        post_to(w->index_, [call, fn](Concentrator& self) { call->run([&] { (*fn)(self); }); });
        // A loop that has stopped (it failed; the process is stopping) runs no tasks any more:
        // its inbox is drained here, which is safe once its thread is done with it.
        auto drain_stopped = [loop = w.get()] {
            if (!loop->exited_.load()) return false;
            loop->on_inbox();
            return true;
        };
        if (!call->wait(kLoopAnswerLimit, drain_stopped)) {
            missing.push_back(w->index_);
            log::warn(
                "event loop {} did not answer within {} ms: left out (hung?)", w->index_,
                std::chrono::duration_cast<std::chrono::milliseconds>(kLoopAnswerLimit).count());
        }
    }
    return missing;
}

bool Concentrator::turning(size_t index, session::TimePoint now) const {
    const Concentrator* loop = peers_[index];
    if (loop == this) return true;
    return now - session::TimePoint(session::Clock::duration(loop->last_turn_.load())) <=
           kLoopStale;
}

void Concentrator::on_inbox() {
    std::span<std::byte> scratch(segment_buf_.get(), kTunBufSize);
    inbox_->drain(
        [this, scratch](std::span<std::byte> pkt, const packet::OffloadHeader& meta) {
            auto ip = packet::IpPacket::parse(pkt);
            auto id = ip ? table_.find(ip->destination()) : std::nullopt;
            UeConnection* conn = id ? find(*id) : nullptr;
            if (!conn || !conn->live()) return drops_.add(session::DropReason::no_session);
            if (!conn->queue_packet(pkt, meta, scratch))
                return drops_.add(session::DropReason::tx_queue_full);
            mark_dirty(*conn);
        },
        tasks_);
    flush_dirty();
    for (auto& t : tasks_)
        t();
    tasks_.clear();
}

void Concentrator::hand_off(const IpAddress& dst, std::span<const std::byte> pkt,
                            const packet::OffloadHeader& meta) {
    std::optional<session::SessionId> id;
    if (loops() > 1) {
        std::lock_guard lock(shared_->mu);
        id = shared_->owners.find(dst);
    }
    if (!id || owner_of(*id) == index_) return drops_.add(session::DropReason::no_session);
    if (!peers_[owner_of(*id)]->inbox_->push_packet(pkt, meta))
        return drops_.add(session::DropReason::tx_queue_full);
    ++handed_off_;
}

int Concentrator::run() {
    std::string pools;
    if (shared_->pool4) pools += fmt::format(" pool {}", shared_->pool4->prefix());
    if (shared_->pool6) pools += fmt::format(" pool6 {}", shared_->pool6->prefix());
    std::string where;
    for (const auto& l : listeners_)
        where += (where.empty() ? "" : " ") + l->local.to_string();
    if (auto r = start_workers(); !r) {
        log::error("{}", r.error().message);
        return 1;
    }
    log::info("listening on {} (tun {}{}, {}, mtu {}, {} event loop{})", where, tun_.name(), pools,
              opt_.nat_egress.empty() ? std::string("routed")
                                      : fmt::format("NAT via {}", opt_.nat_egress),
              opt_.mtu, loops(), loops() == 1 ? "" : "s");
    log::info("TLS records are sealed and opened by {}",
              tls::RecordProtection::describe(opt_.seal_records));
    os::systemd::notify_ready();  // listeners accept, the TUN device is up
    watchdog_ = os::systemd::watchdog_interval();
    auto next_tick = Clock::now();
    while (!stopping_) {
        if (auto r = turn(next_tick); !r) {
            log::error("event loop: {}", r.error().message);
            return 1;  // the destructor stops the other loops
        }
    }
    for (auto& l : listeners_)
        loop_.remove(l->fd.get());  // no new UEs while old ones leave
    listeners_.clear();
    stop_handshake_pool();
    os::systemd::notify_stopping();
    // From here nothing waits for the other loops (they are stopping): no more control requests,
    // metrics scrapes or signals.
    control_.reset();
    metrics_.reset();
    loop_.remove(signals_->fd());
    for (auto& w : workers_) {
        w->stop_requested_ = true;
        post_to(w->index_, [](Concentrator&) {});  // a wake-up
    }
    log::info("shutting down: closing {} session(s)", shared_->connections.load());
    close_all_and_linger();
    for (auto& t : threads_)
        t.join();
    threads_.clear();
    save_leases();
    session::DropCounters drops = drops_;
    uint64_t handed_off = handed_off_;
    for (auto& w : workers_) {
        drops.add(w->drops_);
        handed_off += w->handed_off_;
    }
    log::info(
        "stopped (drops: no_session {}, tun_write_failed {}, tx_queue_full {}; {} packets handed "
        "between {} event loop(s))",
        drops[session::DropReason::no_session], drops[session::DropReason::tun_write_failed],
        drops[session::DropReason::tx_queue_full], handed_off, loops());
    return 0;
}

Result<void> Concentrator::turn(session::TimePoint& next_tick) {
    auto now = Clock::now();
    last_turn_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    if (now >= next_tick) {
        tick(now);
        next_tick = now + std::chrono::milliseconds(500);
    }
    // Parked handshakes first, in arrival order, with this turn's budget; the rest of it
    // goes to handshakes that make progress in this turn's events.
    handshake_steps_left_ =
        handshake_pool_ ? std::numeric_limits<size_t>::max() : kHandshakeStepsPerTurn;
    while (handshake_steps_left_ > 0 && !parked_handshakes_.empty()) {
        auto id = parked_handshakes_.front();
        parked_handshakes_.pop_front();
        if (auto* c = find(id)) {
            --handshake_steps_left_;
            c->resume_handshake();
        }
    }
    auto wait = deferred_.empty() && parked_handshakes_.empty()
                    ? std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now)
                    : std::chrono::milliseconds(0);
    tun_read_ = false;
    if (auto r = loop_.run_once(std::max(wait, std::chrono::milliseconds(0))); !r) return r.error();
    // The TUN device's ring (txqueuelen packets) holds every UE's downstream traffic until
    // it is read, and epoll reports the device again only after all the other ready sockets:
    // with thousands of busy UEs that is dozens of batches later, and the ring overflows for
    // everyone. So after a busy batch that did not read it, it is read anyway.
    if (!tun_read_ && loop_.last_batch() >= kBusyBatch) read_tun();
    auto again = std::move(deferred_);
    deferred_.clear();
    for (auto id : again)
        if (auto* c = find(id)) c->resume();
    flush_dirty();  // sessions that received hairpinned UE-to-UE packets
    reap();
    return ok();
}

void Concentrator::close_all_and_linger() {
    for (auto& [id, c] : conns_)
        c->close(CloseReason::shutdown, "concentrator shutting down");
    // Give the CLOSE envelopes up to the linger time to reach the UEs.
    for (auto until = Clock::now() + std::chrono::seconds(2);
         !conns_.empty() && Clock::now() < until;) {
        (void)loop_.run_once(std::chrono::milliseconds(100));
        tick(Clock::now());
        reap();
    }
}

void Concentrator::accept_all(Listener& listener) {
    for (size_t i = 0; i < kAcceptBatch; ++i) {
        Endpoint peer;
        auto fd = net::accept_tcp(listener.fd.get(), peer);
        if (!fd) {
            log::warn("{}", fd.error().message);  // EMFILE and the like: try again next wake-up
            return;
        }
        if (!fd->valid()) return;
        if (shared_->connections.load() >= opt_.max_sessions) {
            log::warn("refusing {}: at the session limit ({})", peer, opt_.max_sessions);
            handshakes_.add(control::HandshakeResult::server_full);
            continue;  // fd closes here
        }
        ++shared_->connections;  // here, so that a burst handed to other loops cannot overshoot
        // The loops take new connections in turn; the handshake and the session run there.
        // A loop that has stopped turning (hung) is passed over; this one always turns.
        size_t to = next_loop_;
        const auto now = Clock::now();
        for (size_t tries = 0; tries < loops() && !turning(to, now); ++tries)
            to = (to + 1) % loops();
        if (!turning(to, now)) to = index_;
        next_loop_ = (to + 1) % loops();
        if (to == index_) {
            take_connection(std::move(*fd), peer);
            continue;
        }
        auto owned = std::make_shared<Fd>(std::move(*fd));  // closed if the task never runs
        post_to(to, [owned, peer](Concentrator& l) { l.take_connection(std::move(*owned), peer); });
    }
}

void Concentrator::take_connection(Fd fd, const Endpoint& peer) {
    net::set_nodelay(fd.get());
    auto tls = tls::TlsConnection::make(tls_, fd.get());
    if (!tls) {
        --shared_->connections;
        log::warn("refusing {}: {}", peer, tls.error().message);
        return;
    }
    auto id = next_id_;
    next_id_ += loops();
    int raw = fd.get();
    auto now = Clock::now();
    auto conn =
        std::make_unique<UeConnection>(*this, id, std::move(fd), peer, std::move(*tls), now);
    if (handshake_pool_) {
        // The socket joins this loop when the handshake comes back (take_handshakes).
        handshake_pool_->lend(id, raw, conn->lend_handshake(), now + opt_.handshake_timeout);
    } else if (auto r = loop_.add(raw, EPOLLIN, conn.get()); !r) {
        --shared_->connections;
        log::warn("refusing {}: {}", peer, r.error().message);
        return;
    }
    log::debug({{"sid", id}}, "session {}: accepted {} (event loop {})", id, peer, index_);
    conns_.emplace(id, std::move(conn));
}

void Concentrator::take_handshakes() {
    handshakes_done_.clear();
    handshake_pool_->take_done(handshakes_done_);
    for (const auto& d : handshakes_done_) {
        UeConnection* c = find(d.id);
        if (c == nullptr) continue;  // cannot happen: a lent connection is never reaped
        if (auto r = loop_.add(c->fd(), EPOLLIN, c); !r) {
            c->abandon_handshake();
            c->close(CloseReason::server_full, r.error().message);
            continue;
        }
        c->handshake_returned(d.status, d.timed_out);
    }
}

void Concentrator::stop_handshake_pool() {
    if (!handshake_pool_) return;
    loop_.remove(handshake_pool_->done_fd());
    handshake_pool_.reset();  // joins the threads; what they held is ours again
    for (auto& [id, c] : conns_)
        if (c->lent()) c->abandon_handshake();
}

void Concentrator::read_tun() {
    tun_read_ = true;
    std::span<std::byte> buf(tun_buf_.get(), kTunBufSize);
    std::span<std::byte> scratch(segment_buf_.get(), kTunBufSize);
    packet::OffloadHeader meta;
    // Bulk comes in trains: each packet is read straight into the queue of the session the last
    // one went to, and queued there without a copy when it is for that session too. Otherwise
    // (another session, real-time, a slow path) it is copied once, as from the shared buffer.
    constexpr size_t kMaxInPlace =
        packet::kMaxEnvelopeSize - packet::kHeaderSize - packet::kOffloadTrailerSize;
    UeConnection* last = find(last_down_);
    for (size_t i = 0; i < kTunBatch; ++i) {
        auto room = last ? last->tun_read_room(kMaxInPlace) : std::span<std::byte>();
        auto into = room.empty() ? buf : room.subspan(packet::kHeaderSize, kMaxInPlace);
        auto n = tun_.read(into, meta);
        if (!n) {
            log::warn("{}", n.error().message);
            break;
        }
        if (*n == 0) break;
        auto pkt = into.first(*n);
        auto ip = packet::IpPacket::parse(pkt);
        if (!ip) {
            drops_.add(session::DropReason::not_ip);
            continue;
        }
        auto id = table_.find(ip->destination());
        UeConnection* conn = id ? find(*id) : nullptr;
        if (!conn || !conn->live()) {
            if (id) {
                drops_.add(session::DropReason::no_session);
                continue;
            }
            hand_off(ip->destination(), pkt, meta);  // another loop's, or nobody's
            continue;
        }
        if (conn == last && !room.empty()) {
            if (conn->queue_in_place(pkt, meta)) {
                mark_dirty(*conn);
                continue;
            }
            std::memcpy(buf.data(), pkt.data(), pkt.size());  // the usual way reserves here too
            pkt = buf.first(pkt.size());
        }
        if (!conn->queue_packet(pkt, meta, scratch)) {
            drops_.add(session::DropReason::tx_queue_full);
            continue;
        }
        mark_dirty(*conn);
        if (conn != last) {
            last = conn;
            last_down_ = conn->id();
        }
    }
    flush_dirty();
}

void Concentrator::mark_dirty(UeConnection& conn) {
    if (conn.dirty()) return;
    conn.set_dirty(true);
    dirty_.push_back(&conn);
}

void Concentrator::flush_dirty() {
    for (auto* c : dirty_)
        c->flush();
    dirty_.clear();
}

void Concentrator::deliver_to_tun(const session::TunPacket& pkt) {
    if (!policy_.allowed(pkt.bytes)) return drops_.add(session::DropReason::ue_to_ue);
    if (policy_.allow_ue_to_ue()) {
        // Hairpin inside the concentrator: through the kernel the packet would come straight
        // back out of the same TUN device (and draw ICMP redirects).
        auto ip = packet::IpPacket::parse(pkt.bytes);
        if (ip && loops() > 1 && policy_.ue_address(ip->destination()) &&
            !table_.find(ip->destination()))
            return hand_off(ip->destination(), pkt.bytes, pkt.offload);
        if (auto id = ip ? table_.find(ip->destination()) : std::nullopt) {
            auto* other = find(*id);
            // The receive buffer is ours to modify (a checksum completed in place, at most).
            std::span<std::byte> bytes(const_cast<std::byte*>(pkt.bytes.data()), pkt.bytes.size());
            if (!other || !other->live() ||
                !other->queue_packet(bytes, pkt.offload, {segment_buf_.get(), kTunBufSize}))
                return drops_.add(session::DropReason::tx_queue_full);
            return mark_dirty(*other);
        }
    }
    if (!pkt.offload.plain() && !tun_.offload())
        return drops_.add(session::DropReason::tun_write_failed);  // a peer ignoring our caps
    if (auto r = tun_.write(pkt.bytes, pkt.offload); !r)
        drops_.add(session::DropReason::tun_write_failed);
}

void Concentrator::on_config_request(UeConnection& conn, const packet::ConfigRequest& req,
                                     int attempt) {
    const std::string& identity = conn.identity();
    // One live session per identity: a new connection replaces the old one cleanly. The check
    // and the allocation below happen under one lock, so that two connections of one identity on
    // two loops cannot both pass it; closing a session takes the lock, so it is released for that
    // and the check runs again (twice at most: the closed session has let go of the identity).
    std::unique_lock lock(shared_->mu);
    for (int round = 0; round < 2; ++round) {
        auto it = shared_->by_identity.find(identity);
        if (it == shared_->by_identity.end() || it->second == conn.id()) break;
        const session::SessionId old = it->second;
        if (owner_of(old) == index_) {
            lock.unlock();
            if (auto* o = find(old); o && o->live()) {
                ++replaced_;
                o->close(CloseReason::replaced, "a newer connection for this identity took over");
            }
            lock.lock();
            continue;
        }
        // Asked often enough (yet another connection of the identity took over each time):
        // configure this one anyway.
        if (attempt >= kConfigAttempts) break;
        lock.unlock();
        // The old session holds the identity's address on its own loop until it has closed
        // there; this one is configured once it has (or, failing that, when its turn comes back).
        post_to(owner_of(old), [old, id = conn.id(), back = index_, req,
                                attempt](Concentrator& there) {
            if (auto* o = there.find(old); o && o->live()) {
                ++there.replaced_;
                o->close(CloseReason::replaced, "a newer connection for this identity took over");
            }
            there.post_to(back, [id, req, attempt](Concentrator& here) {
                if (auto* c = here.find(id); c && c->awaiting_config())
                    here.on_config_request(*c, req, attempt + 1);
            });
        });
        return;
    }
    packet::ConfigAssign a;
    bool resumed = false;
    {
        auto& pool4 = shared_->pool4;
        auto& pool6 = shared_->pool6;
        if (pool4) {
            auto addr = pool4->allocate(identity);
            if (!addr) {
                lock.unlock();  // closing the connection takes it
                conn.count_handshake(control::HandshakeResult::pool_exhausted);
                return conn.refuse(CloseReason::pool_exhausted, "no free IPv4 address");
            }
            a.ipv4 = pool4->with_pool_length(*addr);
        }
        if (pool6) {
            auto addr = pool6->allocate(identity);
            if (!addr) {
                if (a.ipv4) pool4->release(a.ipv4->addr);
                lock.unlock();
                conn.count_handshake(control::HandshakeResult::pool_exhausted);
                return conn.refuse(CloseReason::pool_exhausted, "no free IPv6 address");
            }
            a.ipv6 = pool6->with_pool_length(*addr);
        }
        // The session token names this identity's lease; a UE that presents it is resuming.
        auto& token = shared_->tokens[identity];
        resumed = !req.session_token.empty() && req.session_token == token;
        if (token.empty()) {
            token.resize(16);
            RAND_bytes(reinterpret_cast<unsigned char*>(token.data()), int(token.size()));
        }
        a.session_token = token;
        shared_->leases_dirty = true;
        if (a.ipv4) shared_->owners.insert(a.ipv4->addr, conn.id());
        if (a.ipv6) shared_->owners.insert(a.ipv6->addr, conn.id());
        shared_->by_identity[identity] = conn.id();
        lock.unlock();
    }
    if (resumed) ++resumed_;
    conn.count_handshake(control::HandshakeResult::ok);
    a.routes = opt_.push_routes;
    a.dns = opt_.dns;
    a.dns_search = opt_.dns_search;
    a.mtu = opt_.mtu;
    a.keepalive_s = opt_.keepalive_s;
    if ((req.capabilities & packet::cap_offload) && tun_.offload() &&
        opt_.max_envelope >=
            packet::kTunGsoMaxSize + packet::kHeaderSize + packet::kOffloadTrailerSize)
        a.capabilities |= packet::cap_offload;
    if (a.ipv4) table_.insert(a.ipv4->addr, conn.id());
    if (a.ipv6) table_.insert(a.ipv6->addr, conn.id());
    log::info({{"sid", conn.id()}, {"identity", identity}}, "session {} [{}]: {}{}{}", conn.id(),
              identity, resumed ? "resumed" : "assigned", a.ipv4 ? fmt::format(" {}", *a.ipv4) : "",
              a.ipv6 ? fmt::format(" {}", *a.ipv6) : "");
    conn.assign(std::move(a));
}

void Concentrator::on_session_end(UeConnection& conn) {
    // Called from inside the connection: only unhook it here; it is destroyed in reap().
    const auto& a = conn.core().assignment();
    const bool assigned = conn.core().state() != session::ServerSession::State::awaiting_config;
    if (assigned) {
        if (a.ipv4) table_.erase(a.ipv4->addr, conn.id());
        if (a.ipv6) table_.erase(a.ipv6->addr, conn.id());
    }
    std::lock_guard lock(shared_->mu);
    if (assigned) {
        if (a.ipv4) {
            shared_->owners.erase(a.ipv4->addr, conn.id());
            if (shared_->pool4) shared_->pool4->release(a.ipv4->addr);
        }
        if (a.ipv6) {
            shared_->owners.erase(a.ipv6->addr, conn.id());
            if (shared_->pool6) shared_->pool6->release(a.ipv6->addr);
        }
    }
    if (auto it = shared_->by_identity.find(conn.identity());
        it != shared_->by_identity.end() && it->second == conn.id())
        shared_->by_identity.erase(it);
}

void Concentrator::reap() {
    // Only what finished during this pass: no walk over every session.
    for (auto id : dead_) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        // Its counters join those of the concentrator's past sessions.
        ended_traffic_.add(it->second->traffic());
        ended_key_updates_ += it->second->key_updates();
        const auto& d = it->second->core().drops();
        ended_drops_.add(d);
        conns_.erase(it);
        --shared_->connections;
        trim_due_ = true;
    }
    dead_.clear();
}

void Concentrator::tick(session::TimePoint now) {
    for (auto& [id, c] : conns_)
        c->on_timer(now);
    if (index_ != 0) {
        if (trim_due_) {
            ::malloc_trim(0);
            trim_due_ = false;
        }
        return;  // the rest is the primary's
    }
    save_leases();  // when they changed
    // Hand the pages of freed connections back to the system (at most once per tick): without
    // it, glibc keeps them and RSS stays at the high-water mark of connection churn.
    if (trim_due_) {
        ::malloc_trim(0);
        trim_due_ = false;
    }
    // systemd: keep-alive from the loop itself (a hung loop stops it), and the session count.
    // The other loops must have turned within half the watchdog interval too: a hung worker
    // stops the keep-alive as well, and systemd restarts the service.
    if (watchdog_ && now - watchdog_sent_ >= *watchdog_ / 2) {
        bool all_turning = true;
        for (const auto& w : workers_) {
            auto last = session::TimePoint(session::Clock::duration(w->last_turn_.load()));
            if (now - last > *watchdog_ / 2) {
                all_turning = false;
                log::warn(
                    "event loop {} has not turned for {} ms: no watchdog keep-alive", w->index_,
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count());
            }
        }
        if (all_turning) {
            os::systemd::notify_watchdog();
            watchdog_sent_ = now;
        }
    }
    size_t sessions = 0;
    {
        std::lock_guard lock(shared_->mu);
        sessions = shared_->by_identity.size();
    }
    if (!stopping_ && sessions != status_sessions_) {
        status_sessions_ = sessions;
        os::systemd::notify_status(fmt::format("{} session(s)", status_sessions_));
    }
}

Result<void> Concentrator::load_leases() {
    if (opt_.lease_file.empty()) return ok();
    std::ifstream f(opt_.lease_file);
    if (!f) {
        if (errno == ENOENT) return ok();  // first start
        return sys_error(fmt::format("lease file {}", opt_.lease_file), errno);
    }
    std::stringstream text;
    text << f.rdbuf();
    auto leases = session::parse_leases(text.str());
    if (!leases) return leases.error().context(opt_.lease_file);
    size_t restored = 0;
    std::lock_guard lock(shared_->mu);
    for (auto& l : *leases) {
        auto* pool = shared_->pool_for(l.address);
        if (pool && pool->remember(l.identity, l.address)) ++restored;
        if (!l.token.empty()) shared_->tokens[l.identity] = std::move(l.token);
    }
    log::info("restored {} lease(s) of {} from {}", restored, leases->size(), opt_.lease_file);
    return ok();
}

void Concentrator::save_leases() {
    std::vector<session::Lease> leases;
    {
        std::lock_guard lock(shared_->mu);
        if (!shared_->leases_dirty && !stopping_) return;
        shared_->leases_dirty = false;
        if (opt_.lease_file.empty()) return;
        auto& tokens = shared_->tokens;
        for (auto* pool : shared_->pools()) {
            if (!pool) continue;
            for (auto& [identity, addr] : pool->remembered()) {
                auto t = tokens.find(identity);
                leases.push_back(
                    {identity, addr, t == tokens.end() ? std::vector<std::byte>{} : t->second});
            }
        }
    }
    // Atomic replace: a crash leaves either the old file or the new one, never half of one.
    std::string text = session::format_leases(leases);
    std::string tmp = opt_.lease_file + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    bool good = fd.valid();
    for (size_t off = 0; good && off < text.size();) {
        ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
        if (n <= 0)
            good = false;
        else
            off += size_t(n);
    }
    good = good && ::fsync(fd.get()) == 0;
    fd.reset();
    if (!good || ::rename(tmp.c_str(), opt_.lease_file.c_str()) != 0) {
        log::warn("cannot write lease file {}: {}", opt_.lease_file, std::strerror(errno));
        ::unlink(tmp.c_str());
    }
}

void Concentrator::on_signal() {
    while (int sig = signals_->take()) {
        if (sig == SIGUSR1) {
            log_status();
            continue;
        }
        if (sig == SIGHUP) {
            log::info("SIGHUP: reloading the configuration");
            (void)reload_from_config();  // logs what changed, or why nothing did
            continue;
        }
        log::info("signal {}: stopping", sig);
        stopping_ = true;
    }
}

void Concentrator::log_status() {
    session::DropCounters total;
    size_t established = 0, connections = 0;
    uint64_t handed_off = 0;
    on_every_loop([&](Concentrator& l) {
        l.log_local_status(total, established);
        connections += l.conns_.size();
        handed_off += l.handed_off_;
    });
    std::string drops;
    for (size_t r = 0; r < size_t(session::DropReason::count_); ++r)
        drops += fmt::format(" {}={}", session::kDropReasonNames[r], total[session::DropReason(r)]);
    log::info("status: {} connection(s), {} session(s) established; drops:{}", connections,
              established, drops);
    if (loops() > 1)
        log::info("status: {} event loops; {} packets handed from one loop to another", loops(),
                  handed_off);
    auto mem = read_process_memory();
    log::info("status: memory: rss {} KiB, heap in use {} KiB, heap held {} KiB",
              mem.rss_bytes / 1024, mem.heap_in_use / 1024, mem.heap_held / 1024);
}

void Concentrator::log_local_status(session::DropCounters& total, size_t& established) const {
    total.add(drops_);
    for (auto& [id, c] : conns_) {
        if (!c->established()) continue;
        ++established;
        const auto& d = c->core().drops();
        total.add(d);
        const auto& a = c->core().assignment();
        log::info({{"sid", id}, {"identity", c->identity()}},
                  "status: session {} [{}] {}{} from {}: received {} packets, spoofed {}", id,
                  c->identity(), a.ipv4 ? a.ipv4->addr.to_string() : "",
                  a.ipv6 ? fmt::format(" {}", a.ipv6->addr) : "", c->peer(),
                  c->core().packets_received(), d[session::DropReason::spoofed_source]);
    }
}

UeConnection* Concentrator::find(session::SessionId id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
}

}  // namespace porthole::concentrator

namespace porthole::concentrator {

control::StatusReport Concentrator::local_report() const {
    control::StatusReport r;
    r.connections = conns_.size();
    r.handshakes = handshakes_;
    r.traffic = ended_traffic_;
    r.key_updates = ended_key_updates_;
    r.drops = drops_;
    r.drops.add(ended_drops_);
    for (const auto& [id, c] : conns_) {
        if (c->established() && c->live()) ++r.sessions;
        r.traffic.add(c->traffic());
        r.key_updates += c->key_updates();
        const auto& d = c->core().drops();
        r.drops.add(d);
    }
    r.resumed = resumed_;
    r.replaced = replaced_;
    r.kicked = kicked_;
    r.queue_delay = queue_delay_;
    r.handed_off = handed_off_;
    return r;
}

control::StatusReport Concentrator::status_report() {
    control::StatusReport r;
    auto missing =
        on_every_loop([&r](Concentrator& l) { control::add_report(r, l.local_report()); });
    r.unresponsive_loops.assign(missing.begin(), missing.end());
    r.version = std::string(control::porthole_version());
    r.start_unix =
        std::chrono::duration_cast<std::chrono::seconds>(started_wall_.time_since_epoch()).count();
    r.uptime_s =
        uint64_t(std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count());
    r.max_sessions = opt_.max_sessions;
    r.event_loops = loops();
    return r;
}

std::vector<control::SessionInfo> Concentrator::session_infos(std::vector<uint64_t>& missing) {
    std::vector<control::SessionInfo> out;
    out.reserve(shared_->connections.load());
    auto late = on_every_loop([&out](Concentrator& l) { l.local_session_infos(out); });
    missing.assign(late.begin(), late.end());
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.id < y.id; });
    return out;
}

void Concentrator::local_session_infos(std::vector<control::SessionInfo>& out) const {
    auto now = Clock::now();
    auto wall = std::chrono::system_clock::now();
    for (const auto& [id, c] : conns_) {
        if (c->dead()) continue;
        control::SessionInfo s;
        s.id = id;
        s.identity = c->identity();
        s.state = c->state_name();
        const auto& a = c->core().assignment();
        if (c->core().state() != session::ServerSession::State::awaiting_config) {
            if (a.ipv4) s.inner4 = a.ipv4->addr.to_string();
            if (a.ipv6) s.inner6 = a.ipv6->addr.to_string();
        }
        s.outer = c->peer().to_string();
        auto age = std::chrono::duration_cast<std::chrono::seconds>(now - c->accepted());
        s.connected_s = uint64_t(std::max<int64_t>(0, age.count()));
        s.since_unix =
            std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count() -
            int64_t(s.connected_s);
        s.traffic = c->traffic();
        s.drops = c->core().drops();
        s.rtt_us = c->rtt_us();
        s.queue_delay_us = c->queue_delay_us();
        s.queued_bytes = c->queued_bytes();
        out.push_back(std::move(s));
    }
}

std::string Concentrator::handle_control(std::string_view request) {
    // Fields are separated by tabs when the line has one (identities may contain spaces),
    // else by spaces.
    char sep = request.find('\t') != std::string_view::npos ? '\t' : ' ';
    std::vector<std::string_view> words;
    for (size_t pos = 0; pos <= request.size();) {
        size_t end = std::min(request.find(sep, pos), request.size());
        if (end > pos) words.push_back(request.substr(pos, end - pos));
        pos = end + 1;
    }
    std::string_view cmd = words.empty() ? std::string_view() : words[0];
    if (cmd == "status" && words.size() == 1) return control::status_json(status_report());
    if (cmd == "sessions" && words.size() == 1) {
        std::vector<uint64_t> missing;
        auto infos = session_infos(missing);
        return control::sessions_json(infos, missing);
    }
    if (cmd == "kick" && (words.size() == 2 || words.size() == 3)) {
        std::string identity(words[1]);
        std::optional<session::SessionId> id;
        {
            std::lock_guard lock(shared_->mu);
            if (auto it = shared_->by_identity.find(identity); it != shared_->by_identity.end())
                id = it->second;
        }
        std::string reason =
            words.size() == 3 ? std::string(words[2]) : std::string("disconnected by the operator");
        bool kicked = false;
        if (id) {
            // On the session's own loop; the answer waits for it.
            auto kick = [&, id = *id](Concentrator& l) {
                auto* conn = l.find(id);
                if (!conn || !conn->live()) return;
                log::info({{"sid", id}, {"identity", identity}},
                          "session {} [{}]: kicked by the operator ({})", id, identity, reason);
                ++l.kicked_;
                conn->close(CloseReason::admin, reason);
                kicked = true;
            };
            auto missing = on_every_loop([&](Concentrator& l) {
                if (l.index_ == owner_of(*id)) kick(l);
            });
            if (!missing.empty())
                return control::error_json(
                    fmt::format("session {} [{}]: its event loop ({}) is not answering; try again",
                                *id, identity, owner_of(*id)));
        }
        if (!kicked)
            return control::error_json(fmt::format("no session for identity '{}'", identity));
        return control::ok_json(fmt::format("kicked session {} [{}]", *id, identity));
    }
    if (cmd == "reload" && words.size() == 1) {
        auto r = reload_from_config();
        if (!r) return control::error_json(r.error().message);
        return control::ok_json(*r);
    }
    return control::error_json(
        "unknown request (expected: status, sessions, kick IDENTITY [REASON], reload)");
}

}  // namespace porthole::concentrator

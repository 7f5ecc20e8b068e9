#include "client/tunnel_client.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <random>

#include "base/log.hpp"
#include "client/http_proxy.hpp"
#include "client/icmp_refusal.hpp"
#include "client/network_plan.hpp"
#include "net/tcp_socket.hpp"
#include "os/privileges.hpp"
#include "packet/envelope.hpp"
#include "packet/ip_packet.hpp"
#include "session/lane.hpp"
#include "tls/record_protection.hpp"

namespace porthole::client {

using packet::CloseReason;
using session::Clock;

namespace {
constexpr size_t kRxBufferSize = 64 * 1024;
constexpr size_t kTunBatch = 256;
constexpr size_t kRealtimeQueue = 64 * 1024;
constexpr size_t kReadBudget = 1024 * 1024;

Result<Endpoint> resolve(const std::string& host, uint16_t port) {
    if (auto a = IpAddress::parse(host)) return Endpoint{*a, port};
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
        return make_error("cannot resolve concentrator '{}': {}", host, ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    Endpoint e = net::sockaddr_to_endpoint(res->ai_addr);
    e.port = port;
    return e;
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

TunnelClient::TunnelClient(ClientOptions options)
    : opt_(std::move(options)),
      core_options_{packet::kMaxEnvelopeSize, {}, opt_.connect_timeout, opt_.dead_after_missed},
      core_(core_options_),
      backoff_(session::seconds(1), opt_.reconnect_max),
      lanes_(kRealtimeQueue, opt_.queue_bytes),
      rx_buf_(new std::byte[kRxBufferSize]),
      scratch_(new std::byte[kRxBufferSize]) {
    socket_h_.self = tun_h_.self = signal_h_.self = this;
    socket_h_.fn = &TunnelClient::on_socket;
    tun_h_.fn = &TunnelClient::on_tun;
    signal_h_.fn = &TunnelClient::on_signal;
}

TunnelClient::~TunnelClient() {
    // DNS first (while the link exists), then routes (reverse order of addition), then the TUN
    // device (its addresses go with it).
    dns_.reset();
    status_server_.reset();
    while (!applied_.empty())
        applied_.pop_back();
}

Result<void> TunnelClient::run() {
    state_since_ = unix_now();
    auto sig = net::SignalFd::create();
    if (!sig) return sig.error();
    signals_.emplace(std::move(*sig));
    auto loop = net::EventLoop::create();
    if (!loop) return loop.error();
    loop_.emplace(std::move(*loop));
    if (auto r = loop_->add(signals_->fd(), EPOLLIN, &signal_h_); !r) return r;

    server_label_ = opt_.server_host.find(':') != std::string::npos
                        ? fmt::format("[{}]:{}", opt_.server_host, opt_.server_port)
                        : fmt::format("{}:{}", opt_.server_host, opt_.server_port);
    // The TCP peer: the concentrator, or the proxy that reaches it for us (then the
    // concentrator's name is resolved by the proxy, not here).
    auto ep = opt_.proxy ? resolve(opt_.proxy->host, opt_.proxy->port)
                         : resolve(opt_.server_host, opt_.server_port);
    if (!ep) return ep.error();
    peer_ = *ep;
    if (opt_.server_name.empty()) opt_.server_name = opt_.server_host;

    auto ctx =
        tls::TlsContext::client({opt_.ca_file, opt_.cert_file, opt_.key_file, opt_.server_name,
                                 opt_.tls_min, opt_.key_update_records, opt_.seal_records});
    if (!ctx) return ctx.error();
    tls_ctx_.emplace(std::move(*ctx));
    log::info("TLS records are sealed and opened by {}",
              tls::RecordProtection::describe(opt_.seal_records));

    // What a previous run that crashed left changed (DNS) is undone before anything else.
    os::DnsPlace place{opt_.state_dir, opt_.tun_name};
    if (auto r = os::make_state_dir(opt_.state_dir); !r) return r.error();
    auto stale = os::recover_stale_dns(place);
    if (!stale) return stale.error();
    if (*stale) log::warn("{}", **stale);
    if (auto r = open_status_socket(); !r) return r;

    auto tun = tun::TunDevice::create(
        opt_.tun_name, opt_.offload ? tun::TunDevice::Offload::on : tun::TunDevice::Offload::off);
    if (!tun) return tun.error();
    tun_.emplace(std::move(*tun));
    if (auto r = loop_->add(tun_->fd(), EPOLLIN, &tun_h_); !r) return r;
    auto nl = tun::Netlink::open();
    if (!nl) return nl.error();
    netlink_.emplace(std::move(*nl));
    // Learn the path to the concentrator (or proxy) before any tunnel route exists.
    auto route = netlink_->route_to(peer_.addr);
    if (!route)
        return route.error().context(fmt::format("no route to the {} {}", peer_kind(), peer_.addr));
    to_server_ = *route;

    std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (;;) {
        auto r = run_session();
        // The dead connection goes now, not at the next attempt: a socket that saw EOF or an
        // error stays readable, and the wait below would spin on it (a core for the whole
        // back-off).
        drop_connection();
        if (stop_) return ok();
        if (r) r = make_error("session ended");  // forward() only returns ok on a signal
        last_error_ = r.error().message;
        if (!ever_up_ || fatal_) return r;
        set_state("reconnecting");
        ++reconnects_;
        auto delay = backoff_.next(uniform(rng));
        log::warn(
            "connection lost: {}; reconnecting in {:.1f} s (the tunnel device and routes stay)",
            r.error().message, std::chrono::duration<double>(delay).count());
        if (sleep_or_signal(delay)) return ok();
    }
}

void TunnelClient::drop_connection() {
    keep_ticket();
    if (tls_) ended_key_updates_ += tls_->key_updates();
    tls_.reset();
    if (socket_) loop_->remove(socket_.get());
    socket_.reset();
}

Result<void> TunnelClient::run_session() {
    // Fresh per-connection state. Whatever was queued for the old connection is dropped: its
    // head envelope may be half-sent, and its packets are stale by now.
    drop_connection();
    lanes_.clear();
    failure_.reset();
    fatal_ = false;
    socket_out_ = false;
    core_options_.request.session_token = session_token_;
    if (tun_->offload() || tun_offload_capable_) {
        tun_offload_capable_ = true;
        core_options_.request.capabilities |= packet::cap_offload;
    }
    core_ = session::ClientSession(core_options_);

    if (auto r = connect(); !r || stop_) return r;
    if (auto r = configure(); !r || stop_) return r;
    const auto& a = core_.assignment();
    session_token_ = a.session_token;
    // Super-packets only if the concentrator takes them too; else the kernel segments for us.
    bool offload = tun_offload_capable_ && (a.capabilities & packet::cap_offload);
    if (tun_offload_capable_ && !tun_->set_offload(offload))
        log::warn("cannot switch TUN offloads {}", offload ? "on" : "off");
    log::debug("TUN offloads {}", tun_->offload() ? "on" : "off");
    if (applied_assignment_ && !(*applied_assignment_ == a)) {
        log::info("the concentrator assigned a different configuration: re-applying it");
        while (!applied_.empty())
            applied_.pop_back();
        applied_assignment_.reset();
    }
    if (!applied_assignment_) {
        if (auto r = apply_network(); !r) {
            fatal_ = true;
            return r;
        }
        applied_assignment_ = a;
        apply_dns();
        drop_privileges();
    } else {
        log::info(
            "tunnel up again: {} with the same configuration ({}; {} packets dropped "
            "while down)",
            tun_->name(), tls_->description(), dropped_while_down_);
        dropped_while_down_ = 0;
    }
    ever_up_ = true;
    set_state("up");
    up_since_ = state_since_;
    backoff_.reset();
    // A black-holed path shows as unacknowledged data: give up on it in the keep-alive's time.
    net::set_user_timeout(socket_.get(), std::chrono::seconds(a.keepalive_s ? a.keepalive_s : 20) *
                                             opt_.dead_after_missed);
    return forward();
}

bool TunnelClient::sleep_or_signal(session::Duration d) {
    // The loop keeps serving the status socket and draining the TUN device meanwhile.
    auto deadline = Clock::now() + d;
    while (!stop_) {
        auto now = Clock::now();
        if (now >= deadline) return false;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        if (auto r = loop_->run_once(std::chrono::milliseconds(ms + 1)); !r) return false;
    }
    return true;
}

TunnelClient::Wait TunnelClient::wait_socket(bool for_write, session::TimePoint deadline) {
    (void)loop_->modify(socket_.get(), EPOLLIN | (for_write ? EPOLLOUT : 0u), &socket_h_);
    socket_out_ = for_write;
    socket_ready_ = false;
    for (;;) {
        if (stop_) return Wait::signal;
        if (socket_ready_) return Wait::ready;
        auto now = Clock::now();
        if (now >= deadline) return Wait::timeout;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        if (auto r = loop_->run_once(std::chrono::milliseconds(ms + 1)); !r) return Wait::timeout;
    }
}

void TunnelClient::discard_tun() {
    // Between connections the routes still lead into the TUN device. Its packets are dropped
    // (and counted) rather than left to queue there: delivered after a reconnect they would
    // only be stale, and the apps' own retransmissions do better.
    std::byte buf[2048];
    for (int i = 0; i < 1024; ++i) {
        auto n = tun_->read(buf);
        if (!n || *n == 0) return;
        ++dropped_while_down_;
    }
}

const char* TunnelClient::peer_kind() const {
    return opt_.proxy ? "proxy" : "concentrator";
}

Result<void> TunnelClient::connect() {
    auto fd = net::connect_tcp(peer_, opt_.connect_timeout);
    if (!fd) {
        auto msg = fd.error().message;
        return make_error("cannot reach the {} {}: {}", peer_kind(), peer_,
                          msg.substr(msg.find(": ") + 2));
    }
    socket_ = std::move(*fd);
    if (auto r = loop_->add(socket_.get(), EPOLLIN, &socket_h_); !r) return r;
    socket_out_ = false;
    lanes_.attach(socket_.get());
    if (opt_.proxy) {
        if (auto r = proxy_connect(); !r || stop_) return r;
    }
    auto tls = tls::TlsConnection::make(*tls_ctx_, socket_.get());
    if (!tls) return tls.error();
    tls_.emplace(std::move(*tls));
    tls_->offer_ticket(ticket_);

    auto deadline = Clock::now() + opt_.connect_timeout;
    for (;;) {
        auto st = tls_->handshake();
        if (st == tls::TlsStatus::ok) break;
        if (st == tls::TlsStatus::failed) return make_error("{}", tls_->error());
        if (st == tls::TlsStatus::closed)
            return make_error("the concentrator {} closed the connection during the TLS handshake",
                              server_label_);
        auto w = wait_socket(st == tls::TlsStatus::want_write, deadline);
        if (w == Wait::signal) {
            stop_ = true;
            return ok();
        }
        if (w == Wait::timeout)
            return make_error("TLS handshake with {} timed out after {} s", server_label_,
                              opt_.connect_timeout.count());
    }
    if (tls_->ticket_offered() && !tls_->resumed()) {
        log::debug("the concentrator did not take our session ticket: full handshake");
        ticket_.reset();
    }
    log::debug("TLS up with {} ({})", server_label_, tls_->description());
    return ok();
}

void TunnelClient::keep_ticket() {
    if (!tls_) return;
    // After a TLS failure (an alert: refused, revoked; a bad record) start afresh; a connection
    // that was only cut or reset keeps its ticket, which is what makes the reconnect cheap.
    if (tls_->tls_failed()) {
        ticket_.reset();
        return;
    }
    if (auto t = tls_->take_ticket(); !t.empty()) ticket_ = std::move(t);
}

Result<void> TunnelClient::proxy_connect() {
    const auto& proxy = *opt_.proxy;
    auto deadline = Clock::now() + opt_.connect_timeout;
    std::string req = connect_request(proxy, opt_.server_host, opt_.server_port);
    for (size_t off = 0; off < req.size();) {
        ssize_t n = ::send(socket_.get(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += size_t(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return sys_error(fmt::format("proxy {}", proxy.where()), errno);
        auto w = wait_socket(true, deadline);
        if (w == Wait::signal) {
            stop_ = true;
            return ok();
        }
        if (w == Wait::timeout) return make_error("proxy {} did not answer", proxy.where());
    }
    // Read the reply head byte-exactly: nothing of the tunnel may be consumed here.
    std::string rx;
    for (;;) {
        char buf[512];
        ssize_t n = ::recv(socket_.get(), buf, sizeof buf, MSG_PEEK);
        if (n == 0) return make_error("proxy {} closed the connection", proxy.where());
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return sys_error(fmt::format("proxy {}", proxy.where()), errno);
            auto w = wait_socket(false, deadline);
            if (w == Wait::signal) {
                stop_ = true;
                return ok();
            }
            if (w == Wait::timeout)
                return make_error("proxy {} did not answer within {} s", proxy.where(),
                                  opt_.connect_timeout.count());
            continue;
        }
        std::string_view peeked(buf, size_t(n));
        auto reply = parse_proxy_reply(rx + std::string(peeked));
        if (!reply) return reply.error().context(fmt::format("proxy {}", proxy.where()));
        size_t take = size_t(n);
        if (*reply) take = (*reply)->header_bytes - rx.size();  // up to the end of the head
        rx.append(buf, take);
        (void)::recv(socket_.get(), buf, take, 0);  // consume what was peeked and used
        if (!*reply) continue;
        if ((*reply)->status / 100 != 2)
            return make_error("proxy {} refused the tunnel: {}", proxy.where(),
                              describe_refusal(**reply));
        log::debug("proxy {}: {} {}", proxy.where(), (*reply)->status, (*reply)->reason);
        return ok();
    }
}

Result<void> TunnelClient::configure() {
    out_.clear();
    core_.start(Clock::now(), out_);
    lanes_.realtime().append(out_.to_peer);
    auto deadline = Clock::now() + opt_.connect_timeout;
    while (!core_.established()) {
        flush();
        if (failure_) return *failure_;
        auto r = tls_->read({rx_buf_.get(), kRxBufferSize});
        if (r.status == tls::TlsStatus::ok) {
            out_.clear();
            core_.on_bytes({rx_buf_.get(), r.bytes}, Clock::now(), out_);
            lanes_.realtime().append(out_.to_peer);
            if (out_.closed)
                fatal_ = out_.closed->reason != CloseReason::pool_exhausted &&
                         out_.closed->reason != CloseReason::server_full &&
                         out_.closed->reason != CloseReason::shutdown;
            if (out_.closed)
                return make_error("the concentrator refused the session: {}",
                                  packet::describe(*out_.closed));
            continue;
        }
        if (r.status == tls::TlsStatus::failed || r.status == tls::TlsStatus::closed)
            fatal_ = tls_->error().rfind("authentication refused", 0) == 0;
        if (r.status == tls::TlsStatus::failed) return make_error("{}", tls_->error());
        if (r.status == tls::TlsStatus::closed)
            return make_error("{}", tls_->error().empty()
                                        ? "the concentrator closed the connection before "
                                          "assigning an address"
                                        : tls_->error());
        auto w = wait_socket(r.status == tls::TlsStatus::want_write || !lanes_.idle(), deadline);
        if (w == Wait::signal) {
            stop_ = true;
            return ok();
        }
        if (w == Wait::timeout)
            return make_error("no configuration from the concentrator within {} s",
                              opt_.connect_timeout.count());
    }
    flush();
    return ok();
}

Result<void> TunnelClient::apply_network() {
    const auto& a = core_.assignment();
    plan_ = plan_network(a, tun_->ifindex(), *to_server_);
    const auto& plan = plan_;
    for (const auto& p : plan.addresses) {
        auto h = netlink_->add_address(tun_->ifindex(), p);
        if (!h) return h.error();
        applied_.push_back(std::move(*h));
    }
    if (auto r = netlink_->set_link_up(tun_->ifindex(), plan.mtu); !r) return r.error();
    if (tun_offload_capable_) {
        if (auto r = netlink_->set_gso_max_size(tun_->ifindex(), packet::kTunGsoMaxSize); !r) {
            log::warn("{}; TUN offloads off", r.error().message);
            tun_->set_offload(false);
            tun_offload_capable_ = false;
        }
    }
    for (const auto& route : plan.routes) {
        auto h = netlink_->add_route(route);
        if (!h) {
            // The pin to the concentrator may exist already (a host route of the admin's).
            if (route.ifindex != tun_->ifindex() && h.error().code == EEXIST) continue;
            return h.error();
        }
        applied_.push_back(std::move(*h));
    }
    for (const auto& route : plan.guard_routes) {
        auto h = netlink_->add_route(route);
        if (!h) {
            // A host without that family (IPv6 disabled) has nothing to leak.
            log::debug("guard route {} not added: {}", route.dst, h.error().message);
            continue;
        }
        applied_.push_back(std::move(*h));
    }
    std::string addrs;
    for (const auto& p : plan.addresses)
        addrs += fmt::format(" {}", p);
    log::info("tunnel up: {}{} mtu {}, {}{} via {}{} ({})", tun_->name(), addrs, plan.mtu,
              plan.full_tunnel ? "full tunnel" : fmt::format("{} route(s)", plan.routes.size()),
              plan.blocks_v4   ? " (IPv4 refused: no IPv4 address)"
              : plan.blocks_v6 ? " (IPv6 refused: no IPv6 address)"
                               : "",
              server_label_,
              opt_.proxy ? fmt::format(" through proxy {}", opt_.proxy->where()) : "",
              tls_->description());
    return ok();
}

Result<void> TunnelClient::forward() {
    (void)loop_->modify(socket_.get(), EPOLLIN, &socket_h_);
    socket_out_ = false;
    forwarding_ = true;
    struct Off {
        bool& f;
        ~Off() { f = false; }
    } off{forwarding_};
    read_records();  // anything that arrived with the assignment
    while (!stop_ && !failure_) {
        auto now = Clock::now();
        auto deadline = core_.next_deadline();
        if (now >= deadline) {
            out_.clear();
            core_.on_timer(now, out_);
            handle_output();
            flush();
            continue;
        }
        auto wait = std::min<int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1,
            1000);
        if (auto r = loop_->run_once(std::chrono::milliseconds(wait)); !r) return r;
    }
    if (failure_) return *failure_;
    // Stopped by a signal: tell the concentrator, best effort, without waiting.
    out_.clear();
    core_.close(CloseReason::normal, "UE disconnected", out_);
    lanes_.realtime().append(out_.to_peer);
    flush();
    tls_->shutdown();
    log::info(
        "disconnected; removing routes and {} (not sent: {} with a foreign source, {} bulk "
        "over the queue bound, {} real-time over its bound)",
        tun_->name(), dropped_foreign_source_, dropped_bulk_full_, dropped_realtime_full_);
    return ok();
}

void TunnelClient::on_signal(uint32_t) {
    while (int sig = signals_->take()) {
        if (sig == SIGHUP) continue;
        stop_ = true;
    }
}

void TunnelClient::on_socket(uint32_t events) {
    if (!forwarding_) {
        socket_ready_ = true;
        return;
    }
    if (events & EPOLLOUT) flush();
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_records();
}

void TunnelClient::on_tun(uint32_t) {
    if (!forwarding_) return discard_tun();
    read_tun();
    flush();
}

void TunnelClient::read_tun() {
    // Room for the largest packet the device may hand over: a 64 KiB super-packet with offloads.
    size_t max_packet = tun_->offload() ? packet::kMaxEnvelopeSize - packet::kHeaderSize -
                                              packet::kOffloadTrailerSize
                                        : core_.assignment().mtu;
    size_t room = packet::kHeaderSize + max_packet + packet::kOffloadTrailerSize;
    packet::OffloadHeader meta;
    auto& bulk = lanes_.bulk();
    for (size_t i = 0; i < kTunBatch; ++i) {
        // The device is always read: left there, a voice packet would wait behind bulk in the
        // kernel's queue. When bulk is at its bound (~50 ms of the path's rate), bulk packets are
        // read into scratch and dropped; the sending applications' congestion control slows down.
        bool bulk_room = lanes_.admit_bulk(room) && bulk.free_space() >= room;
        auto space = bulk_room ? bulk.reserve(room) : std::span<std::byte>(scratch_.get(), room);
        auto n = tun_->read(space.subspan(packet::kHeaderSize, max_packet), meta);
        if (!n) return fail(n.error());
        if (*n == 0) return;
        // Only our own addresses may speak through the tunnel (the kernel also emits link-local
        // and router-solicitation packets on the device, which the concentrator would drop).
        auto pkt = space.subspan(packet::kHeaderSize, *n);
        if (!source_ours(pkt) || !packet::IpPacket::parse(pkt)) {
            refuse(pkt);
            continue;
        }
        // Only super-packets need their metadata carried; a single packet whose checksum the
        // kernel left partial (CHECKSUM_PARTIAL, common for local UDP) is completed here, so it
        // travels as a plain type 1 envelope and can be classified as real-time.
        if (!meta.gso()) {
            packet::complete_checksum(meta, pkt);
            meta = {};
        }
        bool plain = meta.plain();
        if (plain) packet::write_header(space.data(), uint8_t(packet::EnvelopeType::ip_packet), *n);
        if (plain && session::classify(pkt, lane_policy_) == session::Lane::realtime) {
            // Voice, video, probes: ahead of all bulk (copied: small by definition).
            if (!lanes_.realtime().append(space.first(packet::kHeaderSize + *n))) {
                ++dropped_realtime_full_;
            } else {
                ++packets_up_;
                bytes_up_ += *n;
            }
            continue;
        }
        if (!bulk_room) {
            ++dropped_bulk_full_;
            continue;
        }
        ++packets_up_;
        bytes_up_ += *n;
        if (plain) {
            bulk.commit(packet::kHeaderSize + *n);
        } else if (size_t segs = lanes_.piece_segments(*n, meta.gso_size); segs != 0) {
            // A slow path: the super-packet goes as smaller ones (send_lanes.hpp). Its bytes
            // sit in the reservation the pieces are built in, so they move to scratch first.
            std::memcpy(scratch_.get(), pkt.data(), pkt.size());
            if (!lanes_.queue_pieces({scratch_.get(), pkt.size()}, meta, segs))
                ++dropped_bulk_full_;
        } else {  // offloads are only on when the concentrator takes type 0x90
            bulk.commit(packet::frame_packet(space.data(), meta, *n));
        }
    }
}

bool TunnelClient::source_ours(std::span<const std::byte> pkt) const {
    const auto& a = core_.assignment();
    return (a.ipv4 && packet::source_is(pkt, a.ipv4->addr)) ||
           (a.ipv6 && packet::source_is(pkt, a.ipv6->addr));
}

void TunnelClient::read_records() {
    size_t total = 0;
    while (!failure_ && total < kReadBudget) {
        // The rest of an envelope that spans TLS records is read straight into the decoder.
        auto room = core_.receive_room();
        auto r =
            tls_->read(room.empty() ? std::span<std::byte>(rx_buf_.get(), kRxBufferSize) : room);
        if (r.status == tls::TlsStatus::ok) {
            total += r.bytes;
            out_.clear();
            auto now = Clock::now();
            if (room.empty())
                core_.on_bytes({rx_buf_.get(), r.bytes}, now, out_);
            else
                core_.on_received_in_place(r.bytes, now, out_);
            if (out_.peer_timestamp_us) lanes_.on_peer_timestamp(now, *out_.peer_timestamp_us);
            handle_output();
            continue;
        }
        if (r.status == tls::TlsStatus::want_read) break;
        if (r.status == tls::TlsStatus::want_write) {
            set_socket_events(true);
            break;
        }
        if (r.status == tls::TlsStatus::closed)
            return fail(make_error("{}", tls_->error().empty()
                                             ? "the concentrator closed the connection"
                                             : tls_->error()));
        return fail(make_error("{}", tls_->error()));
    }
    flush();
}

void TunnelClient::handle_output() {
    for (const auto& pkt : out_.to_tun) {
        if (!pkt.offload.plain() && !tun_->offload()) continue;  // we did not offer offloads
        if (auto r = tun_->write(pkt.bytes, pkt.offload); !r) {
            log::debug("TUN write: {}", r.error().message);
            continue;
        }
        ++packets_down_;
        bytes_down_ += pkt.bytes.size();
    }
    if (!out_.to_peer.empty()) lanes_.realtime().append(out_.to_peer);  // control goes first
    if (out_.closed) {
        using R = CloseReason;
        auto why = out_.closed->reason;
        // These say "do not come back": someone else took our identity, the operator kicked
        // us, or we are not allowed in. Everything else (shutdown, dead peer, ...) is retried.
        if (out_.closed_by_peer && (why == R::auth_failed || why == R::replaced ||
                                    why == R::admin || why == R::unsupported_version))
            fatal_ = true;
        if (out_.closed_by_peer)
            fail(make_error("the concentrator closed the session: {}",
                            packet::describe(*out_.closed)));
        else
            fail(make_error("session ended: {}", packet::describe(*out_.closed)));
        flush();
    }
}

void TunnelClient::flush() {
    if (!tls_) return;
    bool had_data = !lanes_.idle();
    auto st = lanes_.flush(*tls_, Clock::now());
    if (st == tunnel::SendLanes::Status::failed) {
        if (!failure_)
            fail(make_error("{}",
                            tls_->error().empty() ? std::string("send failed") : tls_->error()));
        return;
    }
    if (had_data) core_.on_data_sent(Clock::now());
    set_socket_events(st == tunnel::SendLanes::Status::blocked);
}

void TunnelClient::set_socket_events(bool want_out) {
    if (!loop_ || want_out == socket_out_) return;
    socket_out_ = want_out;
    (void)loop_->modify(socket_.get(), EPOLLIN | (want_out ? EPOLLOUT : 0u), &socket_h_);
}

void TunnelClient::fail(Error e) {
    if (!failure_) failure_ = std::move(e);
}

void TunnelClient::apply_dns() {
    const auto& a = core_.assignment();
    dns_.reset();
    if (plan_.dns_servers.empty() && a.dns_search.empty()) {
        dns_note_ = "none assigned";
        return;
    }
    if (opt_.dns == os::DnsMode::off) {
        dns_note_ = "not applied (--dns off)";
        log::info("DNS: the concentrator assigned DNS settings; not applied (--dns off)");
        return;
    }
    os::DnsSettings settings{plan_.dns_servers, a.dns_search, plan_.full_tunnel};
    auto d =
        os::DnsConfig::apply(opt_.dns, {opt_.state_dir, tun_->name()}, tun_->ifindex(), settings);
    if (!d) {
        dns_note_ = fmt::format("not applied: {}", d.error().message);
        log::warn("DNS settings not applied: {}", d.error().message);
        return;
    }
    dns_.emplace(std::move(*d));
    std::string servers;
    for (const auto& x : settings.servers)
        servers += fmt::format(" {}", x);
    std::string search;
    for (const auto& x : settings.search)
        search += " " + x;
    dns_note_ = fmt::format("{}: servers{}{}", dns_->describe(), servers.empty() ? " -" : servers,
                            search.empty() ? "" : ", search" + search);
    log::info("DNS applied via {}", dns_note_);
}

void TunnelClient::drop_privileges() {
    if (!opt_.drop_privileges || privileges_dropped_ || ::geteuid() != 0) return;
    // Routes on reconnect (the concentrator's pin) and at exit, resolved's per-link settings:
    // CAP_NET_ADMIN. resolv.conf and the state files are root's own files: uid 0 stays.
    static constexpr std::array<cap_value_t, 1> keep{CAP_NET_ADMIN};
    if (auto r = os::drop_privileges("", keep); !r) {
        log::warn("{}; continuing with full privileges", r.error().message);
        return;
    }
    privileges_dropped_ = true;
    log::info("privileges dropped: {}", os::describe_credentials());
}

Result<void> TunnelClient::open_status_socket() {
    control::ControlServerOptions o;
    o.path = fmt::format("{}/{}.sock", opt_.state_dir, opt_.tun_name);
    o.owner_name = "porthole";
    o.mode = 0600;
    if (opt_.status_gid) {
        // The user who ran sudo may ask without sudo: their group gets rw on the socket.
        if (const group* g = ::getgrgid(*opt_.status_gid); g != nullptr) {
            o.group = g->gr_name;
            o.mode = 0660;
        }
    }
    o.max_clients = 4;
    o.max_reply = 64 * 1024;
    auto server = control::ControlServer::create(*loop_, o, [this](std::string_view req) {
        if (req == "status" || req == "status json") return to_json(status());
        return std::string("{\"error\":\"unknown request; try 'status'\"}\n");
    });
    if (!server) {
        // The tunnel matters more than its status: run without the socket.
        log::warn("no status socket: {}", server.error().message);
        return ok();
    }
    status_server_ = std::move(*server);
    log::debug("status socket {}", status_server_->path());
    return ok();
}

ClientStatus TunnelClient::status() const {
    ClientStatus s;
    s.state = state_;
    s.server = opt_.proxy ? fmt::format("{} through proxy {}", server_label_, opt_.proxy->where())
                          : server_label_;
    s.tun = tun_ ? tun_->name() : opt_.tun_name;
    if (applied_assignment_) {
        for (const auto& p : plan_.addresses)
            s.addresses.push_back(fmt::format("{}", p));
        s.mode =
            plan_.full_tunnel ? "full tunnel" : fmt::format("{} route(s)", plan_.routes.size());
    }
    s.since_unix = state_since_;
    s.up_since_unix = std::string_view(state_) == "up" ? up_since_ : 0;
    s.pid = uint64_t(::getpid());
    s.bytes_up = bytes_up_;
    s.packets_up = packets_up_;
    s.bytes_down = bytes_down_;
    s.packets_down = packets_down_;
    s.reconnects = reconnects_;
    s.key_updates = ended_key_updates_ + (tls_ ? tls_->key_updates() : 0);
    s.records_sealed = tls_ ? tls_->sealed_records() : 0;
    s.records_opened = tls_ ? tls_->opened_records() : 0;
    s.refused = refused_;
    s.last_error = last_error_;
    if (auto rtt = core_.last_rtt())
        s.rtt_ms = std::chrono::duration<double, std::milli>(*rtt).count();
    s.dns = dns_note_;
    return s;
}

void TunnelClient::set_state(const char* state) {
    if (std::string_view(state) == state_) return;
    state_ = state;
    state_since_ = unix_now();
}

void TunnelClient::refuse(std::span<const std::byte> pkt) {
    // Full tunnel, and the packet's family has no address: it was routed here only so that it
    // cannot go around the tunnel. Tell the sender at once rather than let it time out.
    auto ip = packet::IpPacket::parse(pkt);
    bool blocked = ip && (ip->family() == IpFamily::v4 ? plan_.blocks_v4 : plan_.blocks_v6);
    if (!blocked) {
        ++dropped_foreign_source_;
        return;
    }
    std::array<std::byte, kMaxRefusalSize> reply;
    size_t n = make_refusal(pkt, reply);
    if (n == 0 || !tun_->write(std::span<const std::byte>(reply.data(), n))) {
        ++dropped_foreign_source_;
        return;
    }
    if (refused_++ == 0)
        log::info("refusing {} traffic: the concentrator assigned no {} address (first: to {})",
                  ip->family() == IpFamily::v4 ? "IPv4" : "IPv6",
                  ip->family() == IpFamily::v4 ? "IPv4" : "IPv6", ip->destination());
}

}  // namespace porthole::client

// Concentrator: portholed's shell. Terminates TLS for many UEs on one event loop, assigns inner
// addresses, and forwards between the sessions and its own TUN device (routed, or NATed through
// an nftables table it owns). TLS handshakes may run on handshake threads (HandshakePool): a
// connection lent to one is left alone by this loop until it comes back.
//
// Data path, UE -> operator network:
//   1. the UE's socket is readable; UeConnection reads TLS records into the loop's rx buffer;
//   2. ServerSession decodes envelopes in place and checks each packet's inner source;
//   3. each packet is written to the TUN device (drops counted).
// Operator network -> UE:
//   1. the TUN device is readable (or a busy batch of UE events has just been handled); up to
//      kTunBatch packets are read, each straight into the bulk queue of the session the
//      previous one went to (else into one shared buffer);
//   2. each packet's destination selects its session (SessionTable);
//   3. the packet is framed into that session's bounded send queue, in place when it was read
//      there (else copied once; dropped when the queue is full);
//   4. after the batch every touched session flushes: many envelopes per TLS record.
//
// One event loop per core (--workers N): each loop is a Concentrator. The first, the primary,
// runs in the main thread and also owns what exists once per process: the TUN device and its
// addresses, NAT, signals, the control socket, metrics, the lease file, systemd; the others run
// in threads of their own. Every loop has its own TUN queue (a multi-queue device). The primary
// accepts and hands each new connection to the loops in turn, and a loop keeps the connections
// it was given, with their counters, to itself: a session lives and dies on one loop. The loops
// share `Shared`, under its mutex, touched when a session is configured or ends and never per
// packet: the address pools, who holds which identity and inner address, session tokens. The kernel
// sends the replies of a flow to the TUN queue that wrote its packets, so downstream traffic mostly
// arrives on the loop that owns its session; what does not (flows the operator network starts,
// UE-to-UE) is handed to the owner through its WorkerInbox, as are control tasks.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "concentrator/concentrator_options.hpp"
#include "concentrator/decoy_web.hpp"
#include "concentrator/handshake_pool.hpp"
#include "concentrator/loop_call.hpp"
#include "concentrator/ue_connection.hpp"
#include "concentrator/worker_inbox.hpp"
#include "control/stats.hpp"
#include "net/event_loop.hpp"
#include "net/nat_table.hpp"
#include "session/address_pool.hpp"
#include "session/drop_reason.hpp"
#include "session/forward_policy.hpp"
#include "session/lane.hpp"
#include "session/session_table.hpp"
#include "tls/tls_context.hpp"
#include "tun/netlink.hpp"
#include "tun/tun_device.hpp"

namespace porthole::control {
class ControlServer;
class MetricsServer;
}  // namespace porthole::control

namespace porthole::concentrator {

class Concentrator {
public:
    // Sets everything up (TUN, addresses, NAT, TLS, listener); errors are one line each.
    static Result<std::unique_ptr<Concentrator>> create(const ConcentratorOptions& options);
    ~Concentrator();

    // Runs until SIGINT/SIGTERM (the primary: the worker loops too). Returns the process exit
    // code.
    int run();

    // Where a reload gets fresh options (portholed: parse the command line and --config again).
    using ReloadSource = std::function<Result<ConcentratorOptions>()>;
    void set_reload_source(ReloadSource source) { reload_source_ = std::move(source); }
    // Applies what can change while running (certificates, CRL, pool growth, limits, pushed
    // settings, decoy) without dropping sessions; returns a one-line summary of what changed.
    // A bad new configuration is refused with one line and nothing changes.
    Result<std::string> reload(const ConcentratorOptions& fresh);
    // SIGHUP and `portholectl reload`: runs the reload source, then reload(fresh).
    Result<std::string> reload_from_config();

    // --- used by UeConnection ---
    net::EventLoop& loop() { return loop_; }
    std::span<std::byte> rx_buffer() { return {rx_buf_.get(), kRxBufferSize}; }
    // A packet a UE sent (source already checked): to the TUN device, or straight to another
    // UE's session when UE-to-UE traffic is allowed; dropped when the policy forbids it.
    void deliver_to_tun(const session::TunPacket& packet);
    // A session queued packets outside a TUN batch: flush it after this event-loop pass.
    void mark_dirty(UeConnection& conn);
    // attempt: how many times another loop was asked to close the identity's previous session.
    void on_config_request(UeConnection& conn, const packet::ConfigRequest& req, int attempt = 0);
    void on_session_end(UeConnection& conn);
    // The connection is finished: destroy it after this event-loop pass.
    void on_dead(UeConnection& conn) { dead_.push_back(conn.id()); }
    void defer(UeConnection& conn) { deferred_.push_back(conn.id()); }
    // Handshake steps in the event loop are budgeted per turn (kHandshakeStepsPerTurn): false
    // when this turn's are spent; the connection then parks until a later turn resumes it.
    bool take_handshake_step() {
        if (handshake_steps_left_ == 0) return false;
        --handshake_steps_left_;
        return true;
    }
    void park_handshake(UeConnection& conn) { parked_handshakes_.push_back(conn.id()); }
    [[nodiscard]] const ConcentratorOptions& options() const { return opt_; }
    [[nodiscard]] const tls::TlsContext& tls() const { return tls_; }
    session::DropCounters& drops() { return drops_; }
    [[nodiscard]] const DecoyWeb& decoy() const { return decoy_; }
    [[nodiscard]] const session::LanePolicy& lane_policy() const { return lane_policy_; }
    // Statistics (portholectl, metrics): how handshakes ended, send-queue delay samples.
    void count_handshake(control::HandshakeResult r) { handshakes_.add(r); }
    void count_tls_handshake(bool resumed) { handshakes_.add_tls(resumed); }
    control::DelayHistogram& queue_delay() { return queue_delay_; }

    // --- the operator's view (src/control; docs/operations.md) ---
    // One control-socket request line -> one JSON reply: status, sessions, kick, reload.
    // The primary answers for every loop (it asks the workers and waits).
    std::string handle_control(std::string_view request);
    [[nodiscard]] control::StatusReport status_report();
    // Every loop's sessions; `missing` gets the loops that did not answer in time.
    [[nodiscard]] std::vector<control::SessionInfo> session_infos(std::vector<uint64_t>& missing);
    // Event loops (1 + worker threads).
    [[nodiscard]] size_t loops() const { return peers_.size(); }

    static constexpr size_t kRxBufferSize = 64 * 1024;

private:
    struct Listener final : net::EventHandler {  // the primary's
        Concentrator* self = nullptr;
        Fd fd;
        Endpoint local;
        void on_event(uint32_t) override { self->accept_all(*this); }
    };
    struct TunReader final : net::EventHandler {
        Concentrator* self;
        void on_event(uint32_t) override { self->read_tun(); }
    };
    struct Signals final : net::EventHandler {
        Concentrator* self;
        void on_event(uint32_t) override { self->on_signal(); }
    };
    struct HandshakesDone final : net::EventHandler {
        Concentrator* self;
        void on_event(uint32_t) override { self->take_handshakes(); }
    };
    struct InboxReader final : net::EventHandler {
        Concentrator* self;
        void on_event(uint32_t) override { self->on_inbox(); }
    };
    // What every loop shares, under mu. Never held while calling into a connection (closing one
    // takes it) or while waiting for another loop.
    struct Shared {
        std::mutex mu;
        std::optional<session::AddressPool> pool4, pool6;
        session::SessionTable owners;  // inner address -> session, on any loop
        std::unordered_map<std::string, session::SessionId> by_identity;
        std::unordered_map<std::string, std::vector<std::byte>> tokens;  // identity -> token
        bool leases_dirty = false;
        std::atomic<size_t> connections{0};  // every loop's, against max-sessions
        // The pool for an address of this family (nullptr: none), and both (absent: nullptr).
        session::AddressPool* pool_for(const IpAddress& a) {
            auto& p = a.is_v4() ? pool4 : pool6;
            return p ? &*p : nullptr;
        }
        std::array<session::AddressPool*, 2> pools() {
            return {pool4 ? &*pool4 : nullptr, pool6 ? &*pool6 : nullptr};
        }
    };

    Concentrator(const ConcentratorOptions& opt, net::EventLoop loop,
                 std::optional<net::SignalFd> signals, tun::TunDevice tun, tls::TlsContext tls,
                 std::shared_ptr<Shared> shared, size_t index);
    // Worker loop `index` (>= 1) of `primary`: its own event loop, TUN queue and listener dups.
    static Result<std::unique_ptr<Concentrator>> create_worker(Concentrator& primary, size_t index);
    Result<void> start_workers();
    void run_worker();  // a worker thread's body
    // One turn of the event loop (timers, parked handshakes, events, deferred work, reaping).
    Result<void> turn(session::TimePoint& next_tick);
    void close_all_and_linger();
    void on_inbox();
    // Session ids carry their loop: loop i gives i+1, i+1+N, i+1+2N, ...
    [[nodiscard]] size_t owner_of(session::SessionId id) const { return (id - 1) % peers_.size(); }
    // Runs task on loop `index` (here and now when that is this loop).
    void post_to(size_t index, std::function<void(Concentrator&)> task);
    // Primary: runs f here, then on every other loop in turn, waiting for each at most
    // kLoopAnswerLimit (a loop that has stopped running has its inbox drained by the caller).
    // A loop that has not run f by then is left out: f is cancelled there, so it may refer to
    // the caller's stack (with Late::still_run it runs when that loop turns again, and then must
    // own everything it uses). Returns the loops that did not answer in time: a hung loop
    // cannot freeze the control plane, the primary's UEs or its watchdog keep-alives.
    using Late = LoopCall::Late;
    std::vector<size_t> on_every_loop(std::function<void(Concentrator&)> f,
                                      Late late = Late::cancel);
    // Whether loop `index` started a turn within kLoopStale (the primary deals new connections
    // only to loops that do).
    [[nodiscard]] bool turning(size_t index, session::TimePoint now) const;
    // A packet for a session that is not on this loop: to its owner, if any has it.
    void hand_off(const IpAddress& dst, std::span<const std::byte> pkt,
                  const packet::OffloadHeader& meta);
    // This loop's part of the status report (everything but the process-wide fields).
    [[nodiscard]] control::StatusReport local_report() const;
    void local_session_infos(std::vector<control::SessionInfo>& out) const;
    void log_local_status(session::DropCounters& total, size_t& established) const;
    // A reload's result, carried to a worker.
    struct Adopted {
        tls::TlsContext tls;
        DecoyWeb decoy;
        session::ForwardPolicy policy;
        ConcentratorOptions opt;
    };
    void adopt(const Adopted& reloaded);
    void accept_all(Listener& listener);
    // A connection accepted by the primary, for this loop: TLS, then the session, live here.
    void take_connection(Fd fd, const Endpoint& peer);
    void read_tun();
    void on_signal();
    void take_handshakes();  // handshakes back from the HandshakePool
    void stop_handshake_pool();
    void log_status();  // SIGUSR1: sessions and drop counters to the log (every loop's)
    void tick(session::TimePoint now);
    void reap();
    void flush_dirty();
    Result<void> load_leases();
    void save_leases();
    UeConnection* find(session::SessionId id);

    ConcentratorOptions opt_;
    net::EventLoop loop_;
    std::optional<net::SignalFd> signals_;  // the primary's
    tun::TunDevice tun_;                    // this loop's queue of the device
    tls::TlsContext tls_;
    std::shared_ptr<Shared> shared_;
    size_t index_ = 0;                  // 0: the primary
    std::vector<Concentrator*> peers_;  // every loop, by index (this one included)
    std::optional<tun::Netlink> netlink_;
    std::vector<tun::NetlinkHandle> addresses_;
    std::optional<net::NatTable> nat_;
    session::SessionTable table_;  // this loop's sessions' inner addresses
    std::unordered_map<session::SessionId, std::unique_ptr<UeConnection>> conns_;
    session::ForwardPolicy policy_;
    DecoyWeb decoy_;
    session::LanePolicy lane_policy_;
    std::vector<session::SessionId> dead_;  // finished, to be destroyed by reap()
    bool trim_due_ = false;                 // connections were freed since the last trim
    std::vector<session::SessionId> deferred_;
    std::deque<session::SessionId> parked_handshakes_;  // in arrival order
    size_t handshake_steps_left_ = 0;
    std::vector<UeConnection*> dirty_;
    std::unique_ptr<std::byte[]> rx_buf_;
    std::unique_ptr<std::byte[]> tun_buf_;
    std::unique_ptr<std::byte[]> segment_buf_;  // segments cut for UEs without offloads
    session::SessionId next_id_ = 1;
    size_t next_loop_ = 0;              // the primary: the loop that takes the next connection
    session::SessionId last_down_ = 0;  // where the last TUN packet went (read_tun)
    bool tun_read_ = false;             // read_tun() ran in this turn of the loop
    session::DropCounters drops_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    TunReader tun_h_;
    Signals signals_h_;
    bool stopping_ = false;
    std::atomic<bool> stop_requested_{false};  // a worker: the primary is stopping
    std::atomic<bool> exited_{false};          // a worker: its thread is done with this object
    // When this loop last started a turn (Clock ticks): the primary's watchdog check.
    std::atomic<session::Clock::rep> last_turn_{session::Clock::now().time_since_epoch().count()};
    std::unique_ptr<WorkerInbox> inbox_;  // with more than one loop
    InboxReader inbox_h_;
    std::vector<WorkerInbox::Task> tasks_;  // reused by on_inbox()
    uint64_t handed_off_ = 0;               // packets passed to another loop
    ReloadSource reload_source_;
    std::optional<std::chrono::microseconds> watchdog_;  // systemd WatchdogSec=, when set
    session::TimePoint watchdog_sent_{};
    size_t status_sessions_ = SIZE_MAX;  // the count last shown by `systemctl status`
    // Statistics: counters of ended connections are added here when they are reaped.
    control::HandshakeCounters handshakes_;
    control::Traffic ended_traffic_;
    uint64_t ended_key_updates_ = 0;
    session::DropCounters ended_drops_;
    uint64_t resumed_ = 0, replaced_ = 0, kicked_ = 0;
    control::DelayHistogram queue_delay_;
    std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();
    session::TimePoint started_ = session::Clock::now();
    std::unique_ptr<control::ControlServer> control_;  // destroyed before the loop
    std::unique_ptr<control::MetricsServer> metrics_;
    size_t handshakes_failed_ = 0;
    // Declared last: destroyed (its threads joined) before the connections it may hold.
    HandshakesDone handshakes_done_h_;
    std::vector<HandshakePool::Done> handshakes_done_;  // reused
    std::unique_ptr<HandshakePool> handshake_pool_;     // none: handshakes in the event loop
    // The primary's: the other loops and their threads (joined in run(), or by the destructor
    // after a failed start).
    std::vector<std::unique_ptr<Concentrator>> workers_;
    std::vector<std::thread> threads_;
};

}  // namespace porthole::concentrator

// TunnelClient: the UE client's shell. Connects to the concentrator over TLS on TCP, runs the
// ClientSession core, applies the assigned network configuration through netlink and forwards
// packets between the TUN device and the session until told to stop.
//
// Data path, UE -> concentrator:
//   1. the TUN device is readable; up to kTunBatch packets (64 KiB super-packets with offloads)
//      are read straight into the bulk queue behind a reserved envelope header (no copy);
//   2. each plain packet is classified: real-time ones (voice, video, probes) move to the
//      real-time lane; bulk beyond the queue's bound (~50 ms of the path's rate) is dropped;
//   3. SendLanes writes real-time first, then bulk within the socket's pacing budget, as TLS
//      records of up to 16 KiB gathered into one send() (tunnel/send_lanes.hpp).
// Concentrator -> UE:
//   1. the socket is readable; TLS records are decrypted into one receive buffer;
//   2. ClientSession decodes envelopes in place; each IP packet is written to the TUN device.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "base/fd.hpp"
#include "base/ip_address.hpp"
#include "base/result.hpp"
#include "client/client_options.hpp"
#include "client/client_status.hpp"
#include "client/network_plan.hpp"
#include "control/control_server.hpp"
#include "net/event_loop.hpp"
#include "os/dns_config.hpp"
#include "session/backoff.hpp"
#include "session/client_session.hpp"
#include "session/lane.hpp"
#include "tls/tls_connection.hpp"
#include "tls/tls_context.hpp"
#include "tun/netlink.hpp"
#include "tun/tun_device.hpp"
#include "tunnel/send_lanes.hpp"

namespace porthole::client {

class TunnelClient {
public:
    explicit TunnelClient(ClientOptions options);
    ~TunnelClient();
    // Runs until a signal (Ok) or a failure (the Error is the one line to show the user).
    Result<void> run();

private:
    struct Handler final : net::EventHandler {
        TunnelClient* self = nullptr;
        void (TunnelClient::*fn)(uint32_t) = nullptr;
        void on_event(uint32_t ev) override { (self->*fn)(ev); }
    };

    // One connection: connect, configure, (re)apply the network, forward until it ends.
    Result<void> run_session();
    // Ends the current connection: keeps its ticket, closes the socket (out of the loop).
    void drop_connection();
    // Sleeps for d unless a signal comes first (then true).
    bool sleep_or_signal(session::Duration d);
    Result<void> connect();
    Result<void> proxy_connect();
    [[nodiscard]] const char* peer_kind() const;
    Result<void> configure();
    Result<void> apply_network();
    void apply_dns();
    void drop_privileges();
    Result<void> open_status_socket();
    [[nodiscard]] ClientStatus status() const;
    void set_state(const char* state);
    void refuse(std::span<const std::byte> packet);
    Result<void> forward();
    // Waits for the socket (read, or write too) or a signal, until deadline.
    enum class Wait { ready, signal, timeout };
    Wait wait_socket(bool for_write, session::TimePoint deadline);
    void discard_tun();
    void on_socket(uint32_t events);
    void on_tun(uint32_t events);
    void on_signal(uint32_t events);
    void read_tun();
    void read_records();
    [[nodiscard]] bool source_ours(std::span<const std::byte> packet) const;
    void handle_output();
    void flush();
    void set_socket_events(bool want_out);
    void fail(Error e);
    void keep_ticket();

    ClientOptions opt_;
    Endpoint peer_;             // where the TCP connection goes: concentrator or proxy
    std::string server_label_;  // the concentrator as the user named it, for messages
    std::optional<tls::TlsContext> tls_ctx_;
    std::optional<tun::TunDevice> tun_;
    std::optional<tun::Netlink> netlink_;
    std::vector<tun::NetlinkHandle> applied_;  // removed in reverse order on destruction
    NetworkPlan plan_;                         // of the applied assignment
    std::optional<os::DnsConfig> dns_;         // restored before the routes go
    std::string dns_note_;                     // for status: how DNS was applied, or why not
    bool privileges_dropped_ = false;
    std::optional<tun::RouteSpec> to_server_;
    Fd socket_;
    std::optional<tls::TlsConnection> tls_;
    // The newest TLS 1.3 session ticket, offered on the next reconnect (memory only).
    tls::SessionTicket ticket_;
    std::optional<net::SignalFd> signals_;
    std::optional<net::EventLoop> loop_;  // one for the whole run (status socket included)
    std::unique_ptr<control::ControlServer> status_server_;
    session::ClientSession::Options core_options_;
    session::ClientSession core_;
    session::Backoff backoff_;
    std::vector<std::byte> session_token_;
    std::optional<packet::ConfigAssign> applied_assignment_;
    bool ever_up_ = false;
    bool fatal_ = false;                // the last failure is not worth a reconnect
    bool tun_offload_capable_ = false;  // the device accepted offloads at creation
    session::ClientOutput out_;
    tunnel::SendLanes lanes_;
    session::LanePolicy lane_policy_;
    std::unique_ptr<std::byte[]> rx_buf_;
    std::unique_ptr<std::byte[]> scratch_;  // a TUN packet that will not be queued
    Handler socket_h_, tun_h_, signal_h_;
    bool socket_out_ = false;
    bool socket_ready_ = false;  // the socket had an event while not forwarding (wait_socket)
    bool forwarding_ = false;
    bool stop_ = false;
    const char* state_ = "connecting";
    int64_t state_since_ = 0, up_since_ = 0;  // unix seconds
    uint64_t reconnects_ = 0;
    uint64_t ended_key_updates_ = 0;  // TLS KeyUpdates sent on earlier connections
    std::string last_error_;
    uint64_t bytes_up_ = 0, packets_up_ = 0, bytes_down_ = 0, packets_down_ = 0;
    uint64_t refused_ = 0;  // answered "administratively prohibited" (family without address)
    uint64_t dropped_foreign_source_ = 0;
    uint64_t dropped_while_down_ = 0;
    uint64_t dropped_realtime_full_ = 0;
    uint64_t dropped_bulk_full_ = 0;
    std::optional<Error> failure_;
};

}  // namespace porthole::client

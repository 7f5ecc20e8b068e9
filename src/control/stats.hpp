// Statistics of a running concentrator, as plain data: counters the data path increments
// (integers in fixed arrays, no allocation) and the snapshots portholectl and the metrics
// endpoint are built from (src/control/report.hpp formats them).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session/drop_reason.hpp"

namespace porthole::control {

// The project version (CMake's PROJECT_VERSION).
std::string_view porthole_version();

// How a connection's way to a tunnel session ended: ok, or why not.
enum class HandshakeResult : uint8_t {
    ok,              // configuration assigned: a tunnel session
    cert_rejected,   // client certificate not issued by the client CA, expired, revoked, ...
    no_certificate,  // TLS up without a client certificate, then asked for the tunnel
    not_tls,         // the peer does not speak TLS (a scanner, plain HTTP on 443)
    tls_error,       // any other TLS handshake failure
    timeout,         // no TLS handshake within handshake-timeout
    peer_closed,     // the peer went away during the handshake
    decoy,           // a web visitor: served the decoy page
    no_config,       // TLS up, but no configuration exchange (closed, timed out, bad envelope)
    pool_exhausted,  // no free inner address
    server_full,     // at max-sessions: refused on accept
    count_
};

inline constexpr std::array<std::string_view, size_t(HandshakeResult::count_)>
    kHandshakeResultNames = {"ok",        "cert_rejected",  "no_certificate", "not_tls",
                             "tls_error", "timeout",        "peer_closed",    "decoy",
                             "no_config", "pool_exhausted", "server_full"};

// Sorts a server-side TLS handshake error (tls::TlsConnection::error()) into a result.
HandshakeResult classify_tls_failure(std::string_view error);

class HandshakeCounters {
public:
    void add(HandshakeResult r) { n_[size_t(r)] += 1; }
    [[nodiscard]] uint64_t operator[](HandshakeResult r) const { return n_[size_t(r)]; }
    [[nodiscard]] uint64_t failed() const;
    // Completed TLS handshakes (any peer, before the tunnel is asked for): full ones (client
    // certificate sent and verified) and resumed ones (TLS 1.3 ticket, PSK with ECDHE).
    void add_tls(bool resumed) { (resumed ? tls_resumed_ : tls_full_) += 1; }
    void add(const HandshakeCounters& o) {
        for (size_t i = 0; i < n_.size(); ++i)
            n_[i] += o.n_[i];
        tls_full_ += o.tls_full_;
        tls_resumed_ += o.tls_resumed_;
    }
    [[nodiscard]] uint64_t tls_full() const { return tls_full_; }
    [[nodiscard]] uint64_t tls_resumed() const { return tls_resumed_; }

private:
    std::array<uint64_t, size_t(HandshakeResult::count_)> n_{};
    uint64_t tls_full_ = 0, tls_resumed_ = 0;
};

// Tunnelled traffic. up: UE -> network (written to the TUN device or hairpinned);
// down: network -> UE (queued for the UE's socket).
struct Traffic {
    uint64_t packets_up = 0, bytes_up = 0;
    uint64_t packets_down = 0, bytes_down = 0;
    void add(const Traffic& o) {
        packets_up += o.packets_up;
        bytes_up += o.bytes_up;
        packets_down += o.packets_down;
        bytes_down += o.bytes_down;
    }
};

// Time packets wait in a session's send queue before they are written to the socket, in fixed
// buckets (upper bounds in microseconds, Prometheus "le" semantics: a sample equal to a bound
// counts in that bucket). record() is a short loop over 14 integers.
class DelayHistogram {
public:
    static constexpr std::array<uint64_t, 14> kBoundsUs = {
        50,     100,    250,    500,     1'000,   2'500,   5'000,
        10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000};
    static constexpr size_t kBuckets = kBoundsUs.size() + 1;  // the last one is +Inf

    void record(uint64_t us) {
        size_t i = 0;
        while (i < kBoundsUs.size() && us > kBoundsUs[i])
            ++i;
        ++counts_[i];
        ++count_;
        sum_us_ += us;
    }
    void add(const DelayHistogram& o) {
        for (size_t i = 0; i < kBuckets; ++i)
            counts_[i] += o.counts_[i];
        count_ += o.count_;
        sum_us_ += o.sum_us_;
    }
    // Samples in bucket i alone (not cumulative).
    [[nodiscard]] uint64_t bucket(size_t i) const { return counts_[i]; }
    // Samples <= kBoundsUs[i] (i == kBoundsUs.size(): all), as Prometheus wants.
    [[nodiscard]] uint64_t cumulative(size_t i) const;
    [[nodiscard]] uint64_t count() const { return count_; }
    [[nodiscard]] uint64_t sum_us() const { return sum_us_; }
    // The bucket bound under which the given fraction of samples lies (an upper estimate);
    // nullopt when empty or when it lies in +Inf.
    [[nodiscard]] std::optional<uint64_t> quantile_bound_us(double q) const;

private:
    std::array<uint64_t, kBuckets> counts_{};
    uint64_t count_ = 0, sum_us_ = 0;
};

// One session (or a connection still in its handshake), as portholectl shows it.
struct SessionInfo {
    uint64_t id = 0;
    std::string identity;        // the client certificate's CN; empty during the handshake
    std::string state;           // "handshake", "configuring", "established", "closing"
    std::string inner4, inner6;  // assigned addresses, empty when none
    std::string outer;           // the UE's address:port as the concentrator sees it
    int64_t since_unix = 0;      // accepted (seconds since the epoch)
    uint64_t connected_s = 0;
    Traffic traffic;
    session::DropCounters drops;
    std::optional<uint64_t> rtt_us;  // the outer TCP connection's smoothed RTT (TCP_INFO)
    uint64_t queue_delay_us = 0;     // send-queue delay, moving average of the samples
    uint64_t queued_bytes = 0;       // in its send queues now
};

// The whole concentrator.
struct StatusReport {
    std::string version;
    int64_t start_unix = 0;
    uint64_t uptime_s = 0;
    uint64_t sessions = 0;     // established tunnel sessions
    uint64_t connections = 0;  // every connection, including handshakes and closing ones
    uint64_t max_sessions = 0;
    HandshakeCounters handshakes;
    uint64_t key_updates = 0;  // TLS KeyUpdates sent to UEs (each session's key renewals)
    Traffic traffic;           // since start, including ended sessions
    session::DropCounters drops;
    uint64_t resumed = 0;   // sessions that presented their session token (a reconnect)
    uint64_t replaced = 0;  // sessions ended because a newer connection took the identity
    uint64_t kicked = 0;    // sessions ended by `portholectl kick`
    DelayHistogram queue_delay;
    uint64_t event_loops = 1;
    uint64_t handed_off = 0;  // packets one event loop passed to another (docs/architecture.md)
    // Event loops that did not answer this report in time (hung?): their counters are missing.
    std::vector<uint64_t> unresponsive_loops;
};

// Adds the counters of `part` (one event loop's) to `total`; the process-wide fields (version,
// start, uptime, max_sessions) are left alone.
void add_report(StatusReport& total, const StatusReport& part);

}  // namespace porthole::control

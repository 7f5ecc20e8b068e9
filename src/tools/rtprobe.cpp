// porthole-rtprobe: an RTP-like UDP probe for one-way delay, jitter and loss.
//
//   porthole-rtprobe --send DST:PORT [--rate 50] [--size 172] [--seconds N] [--dscp 46]
//   porthole-rtprobe --recv ADDR:PORT [--seconds N] [--trace FILE]
//
// The sender sends --rate datagrams per second of --size octets (UDP payload; 172 = a 12-octet RTP
// header + 20 ms of G.711), paced on absolute CLOCK_MONOTONIC deadlines, then three end markers.
// Each datagram starts with a real RTP header (V=2, PT 0, 16-bit sequence, 8 kHz timestamp, SSRC)
// followed by the probe fields, all big-endian:
//
//   0  RTP header (12)     12 "RTPB"          16 seq (u32)        20 flags (u32, 1 = end marker)
//   24 send time (u64, CLOCK_REALTIME ns)     32 sent so far (u32: seq + 1; in an end marker the
//                                                total)
//
// The receiver timestamps arrivals with the kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME;
// the clock namespaces share), so one-way delay = receive time - send time needs no clock sync on
// one machine. It stops after --seconds, or 0.5 s after the first end marker, and prints
//
//   rtprobe: sent=S received=R lost=L p50_ms= p99_ms= max_ms= jitter_ms= min_ms= dup= reordered=
//
// sent = the end marker's total, else the highest "sent so far" seen (trailing losses without an
// end marker are then invisible); lost = sent - distinct sequence numbers received. p50/p99 by
// nearest rank. jitter_ms is the RFC 3550 section 6.4.1 interarrival jitter (J += (|D| - J) / 16
// over the transit times, in arrival order), its final value. A human-readable line follows, and
// when packets were lost, "rtprobe: lost seq 12,40-42,..." (the first 20 ranges).
// The sender prints "rtprobe: sender sent=S send_errors=E seconds=T".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.hpp"

namespace {

using porthole::Fd;

constexpr size_t kRtpHeader = 12;
constexpr size_t kMinSize = 36;
constexpr size_t kMaxSize = 1472;
constexpr std::array<char, 4> kMagic = {'R', 'T', 'P', 'B'};
constexpr uint32_t kFlagEnd = 1;
constexpr int kEndMarkers = 3;
constexpr int64_t kLingerNs = 500'000'000;  // receiver: wait this long after an end marker

int64_t now_ns(clockid_t clk) {
    timespec ts{};
    clock_gettime(clk, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}
void put64(uint8_t* p, uint64_t v) {
    put32(p, static_cast<uint32_t>(v >> 32));
    put32(p + 4, static_cast<uint32_t>(v));
}
uint32_t get32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t get64(const uint8_t* p) {
    return (uint64_t{get32(p)} << 32) | get32(p + 4);
}

// A socket address parsed from "A.B.C.D:PORT" or "[V6]:PORT".
struct Endpoint {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

std::optional<Endpoint> parse_endpoint(const std::string& s) {
    std::string host, port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find("]:");
        if (close == std::string::npos) return std::nullopt;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string::npos || s.find(':') != colon) return std::nullopt;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    char* end = nullptr;
    unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p == 0 || p > 65535) return std::nullopt;
    Endpoint e;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&e.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.ss);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(p));
        e.len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(p));
        e.len = sizeof(sockaddr_in6);
    } else {
        return std::nullopt;
    }
    return e;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "rtprobe: error: %s\n", what.c_str());
    std::exit(1);
}
[[noreturn]] void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

Fd udp_socket(int family) {
    Fd fd{::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (!fd) die_errno("socket");
    return fd;
}

// ---------------------------------------------------------------- sender
struct SendOptions {
    Endpoint dst;
    unsigned rate = 50;
    size_t size = 172;
    double seconds = 10;
    int dscp = -1;
};

void fill_packet(std::vector<uint8_t>& buf, uint32_t seq, uint32_t flags, uint32_t sent,
                 uint32_t ssrc) {
    uint8_t* p = buf.data();
    p[0] = 0x80;                               // V=2, no padding/extension/CSRC
    p[1] = (flags & kFlagEnd) ? 0x80 : 0x00;   // marker bit on end markers, PT 0 (PCMU)
    put16(p + 2, static_cast<uint16_t>(seq));  // RTP sequence (wraps)
    put32(p + 4, seq * 160);                   // 8 kHz, 20 ms per packet
    put32(p + 8, ssrc);
    std::memcpy(p + kRtpHeader, kMagic.data(), kMagic.size());
    put32(p + 16, seq);
    put32(p + 20, flags);
    put64(p + 24, static_cast<uint64_t>(now_ns(CLOCK_REALTIME)));
    put32(p + 32, sent);
}

int run_sender(const SendOptions& o) {
    Fd fd = udp_socket(o.dst.family());
    if (o.dscp >= 0) {
        int tos = o.dscp << 2;
        int rc = o.dst.family() == AF_INET
                     ? ::setsockopt(fd.get(), IPPROTO_IP, IP_TOS, &tos, sizeof tos)
                     : ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
        if (rc != 0) die_errno("setsockopt DSCP");
    }
    std::vector<uint8_t> buf(o.size, 0);
    const auto ssrc = static_cast<uint32_t>(now_ns(CLOCK_REALTIME) ^ ::getpid());
    const auto count = static_cast<uint32_t>(std::llround(o.seconds * o.rate));
    const int64_t interval = 1'000'000'000 / o.rate;
    const int64_t start = now_ns(CLOCK_MONOTONIC);
    uint32_t errors = 0;

    auto sleep_until = [](int64_t deadline) {
        timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                    static_cast<long>(deadline % 1'000'000'000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    };
    auto send_one = [&]() {
        if (::sendto(fd.get(), buf.data(), buf.size(), 0, o.dst.sa(), o.dst.len) < 0) ++errors;
    };

    for (uint32_t seq = 0; seq < count; ++seq) {
        sleep_until(start + int64_t{seq} * interval);
        fill_packet(buf, seq, 0, seq + 1, ssrc);
        send_one();
    }
    for (int i = 0; i < kEndMarkers; ++i) {
        sleep_until(start + int64_t{count + static_cast<uint32_t>(i)} * interval);
        fill_packet(buf, count, kFlagEnd, count, ssrc);
        send_one();
    }
    double secs = static_cast<double>(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
    std::printf("rtprobe: sender sent=%u send_errors=%u seconds=%.2f\n", count, errors, secs);
    return 0;
}

// ---------------------------------------------------------------- receiver
struct RecvOptions {
    Endpoint bind;
    double seconds = 15;
    std::string trace;  // file for one line per received packet, empty: none
};

struct Stats {
    uint32_t sent = 0;  // best knowledge of the sender's total
    bool end_seen = false;
    uint64_t received = 0, dup = 0, reordered = 0;
    std::vector<bool> seen;
    std::vector<double> delay_ms;
    std::vector<std::pair<uint32_t, int64_t>> seq_sent_ns;  // parallel to delay_ms (trace)
    std::optional<double> last_transit_ms;
    double jitter_ms = 0;
    uint32_t highest = 0;
    bool any = false;

    void add(uint32_t seq, uint32_t flags, uint32_t sent_so_far, int64_t sent_ns, int64_t recv_ns) {
        if (flags & kFlagEnd) {
            sent = sent_so_far;
            end_seen = true;
            return;
        }
        if (!end_seen) sent = std::max(sent, sent_so_far);
        if (seq >= seen.size()) seen.resize(size_t{seq} + 1024, false);
        if (seen[seq]) {
            ++dup;
            return;
        }
        seen[seq] = true;
        ++received;
        if (any && seq < highest) ++reordered;
        highest = any ? std::max(highest, seq) : seq;
        any = true;
        double transit = static_cast<double>(recv_ns - sent_ns) / 1e6;
        delay_ms.push_back(transit);
        seq_sent_ns.emplace_back(seq, sent_ns);
        if (last_transit_ms) jitter_ms += (std::fabs(transit - *last_transit_ms) - jitter_ms) / 16;
        last_transit_ms = transit;
    }
};

double nearest_rank(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return NAN;
    auto k = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<size_t>(k, 1, sorted.size()) - 1];
}

// --trace: "seq send_time_s delay_ms" per received packet in arrival order; send time in seconds
// of CLOCK_REALTIME, so traces of both directions and other samplers line up.
void write_trace(const std::string& path, const Stats& st) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) die_errno("open --trace " + path);
    for (size_t i = 0; i < st.delay_ms.size(); ++i)
        std::fprintf(f, "%u %.6f %.3f\n", st.seq_sent_ns[i].first,
                     static_cast<double>(st.seq_sent_ns[i].second) / 1e9, st.delay_ms[i]);
    if (std::fclose(f) != 0) die_errno("write --trace " + path);
}

int run_receiver(const RecvOptions& o) {
    Fd fd = udp_socket(o.bind.family());
    int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
        die_errno("setsockopt SO_TIMESTAMPNS");
    int rcvbuf = 1 << 20;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (::bind(fd.get(), o.bind.sa(), o.bind.len) != 0) die_errno("bind");

    Stats st;
    std::array<uint8_t, 2048> buf{};
    std::array<char, CMSG_SPACE(sizeof(timespec))> ctrl{};
    const int64_t deadline = now_ns(CLOCK_MONOTONIC) + static_cast<int64_t>(o.seconds * 1e9);
    int64_t end_deadline = INT64_MAX;
    uint64_t foreign = 0;

    for (;;) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        int64_t stop = std::min(deadline, end_deadline);
        if (now >= stop) break;
        pollfd pfd{fd.get(), POLLIN, 0};
        int wait_ms = static_cast<int>(std::min<int64_t>((stop - now) / 1'000'000 + 1, 1000));
        int n = ::poll(&pfd, 1, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            die_errno("poll");
        }
        if (n == 0) continue;
        for (;;) {
            iovec iov{buf.data(), buf.size()};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl.data();
            msg.msg_controllen = ctrl.size();
            ssize_t len = ::recvmsg(fd.get(), &msg, MSG_DONTWAIT);
            if (len < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                die_errno("recvmsg");
            }
            int64_t recv_ns = now_ns(CLOCK_REALTIME);
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    timespec ts{};
                    std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    recv_ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
                }
            }
            const uint8_t* p = buf.data();
            if (static_cast<size_t>(len) < kMinSize ||
                std::memcmp(p + kRtpHeader, kMagic.data(), kMagic.size()) != 0) {
                ++foreign;
                continue;
            }
            uint32_t flags = get32(p + 20);
            st.add(get32(p + 16), flags, get32(p + 32), static_cast<int64_t>(get64(p + 24)),
                   recv_ns);
            if ((flags & kFlagEnd) && end_deadline == INT64_MAX)
                end_deadline = now_ns(CLOCK_MONOTONIC) + kLingerNs;
        }
    }

    if (!o.trace.empty()) write_trace(o.trace, st);
    std::vector<double> sorted = st.delay_ms;
    std::sort(sorted.begin(), sorted.end());
    uint64_t lost = st.sent > st.received ? st.sent - st.received : 0;
    double p50 = nearest_rank(sorted, 0.50), p99 = nearest_rank(sorted, 0.99);
    double mx = sorted.empty() ? NAN : sorted.back();
    double mn = sorted.empty() ? NAN : sorted.front();
    std::printf(
        "rtprobe: sent=%u received=%llu lost=%llu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
        "jitter_ms=%.3f min_ms=%.3f dup=%llu reordered=%llu end_seen=%d\n",
        st.sent, static_cast<unsigned long long>(st.received),
        static_cast<unsigned long long>(lost), p50, p99, mx, st.jitter_ms, mn,
        static_cast<unsigned long long>(st.dup), static_cast<unsigned long long>(st.reordered),
        st.end_seen ? 1 : 0);
    double loss_pct = st.sent ? 100.0 * static_cast<double>(lost) / st.sent : 0.0;
    std::printf(
        "%llu of %u packets (%.1f%% lost); one-way delay median %.2f ms, p99 %.2f ms, max %.2f "
        "ms; jitter %.2f ms%s\n",
        static_cast<unsigned long long>(st.received), st.sent, loss_pct, p50, p99, mx, st.jitter_ms,
        foreign ? " (foreign datagrams ignored)" : "");
    if (lost > 0) {
        // Where the losses were, as sequence ranges (the first 20).
        std::string ranges;
        int shown = 0;
        for (uint32_t i = 0; i < st.sent && shown < 20;) {
            if (i < st.seen.size() && st.seen[i]) {
                ++i;
                continue;
            }
            uint32_t j = i;
            while (j + 1 < st.sent && !(j + 1 < st.seen.size() && st.seen[j + 1]))
                ++j;
            ranges += (ranges.empty() ? "" : ",") + std::to_string(i);
            if (j > i) ranges += "-" + std::to_string(j);
            ++shown;
            i = j + 1;
        }
        std::printf("rtprobe: lost seq %s%s\n", ranges.c_str(), shown == 20 ? ",..." : "");
    }
    return st.received > 0 ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "porthole-rtprobe: RTP-like UDP probe; the receiver reports one-way delay (p50/p99/max), "
        "RFC 3550 jitter and loss. Sender and receiver must share a clock (same machine)."};
    std::string send_to, recv_on;
    SendOptions so;
    RecvOptions ro;
    double seconds = 10;
    auto* s = app.add_option("--send", send_to, "Send to DST:PORT ([V6]:PORT for IPv6)");
    auto* r = app.add_option("--recv", recv_on, "Receive on ADDR:PORT ([V6]:PORT for IPv6)");
    s->excludes(r);
    app.add_option("--rate", so.rate, "Packets per second")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000));
    app.add_option("--size", so.size, "UDP payload octets")
        ->capture_default_str()
        ->check(CLI::Range(kMinSize, kMaxSize));
    app.add_option("--seconds", seconds,
                   "Sender: seconds of sending; receiver: longest time to listen")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
    app.add_option("--dscp", so.dscp, "DSCP to set on the sender's packets (46 = EF)")
        ->check(CLI::Range(0, 63));
    app.add_option("--trace", ro.trace,
                   "Receiver: write 'seq send_time_s delay_ms' per packet to this file")
        ->needs(r);
    CLI11_PARSE(app, argc, argv);

    if (!send_to.empty()) {
        auto e = parse_endpoint(send_to);
        if (!e) die("bad --send address '" + send_to + "' (want A.B.C.D:PORT or [V6]:PORT)");
        so.dst = *e;
        so.seconds = seconds;
        return run_sender(so);
    }
    if (!recv_on.empty()) {
        auto e = parse_endpoint(recv_on);
        if (!e) die("bad --recv address '" + recv_on + "' (want A.B.C.D:PORT or [V6]:PORT)");
        ro.bind = *e;
        ro.seconds = seconds;
        return run_receiver(ro);
    }
    std::fprintf(stderr, "rtprobe: error: one of --send or --recv is required (see --help)\n");
    return 1;
}

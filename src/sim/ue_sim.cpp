// porthole-uesim: many simulated UEs in one process, one epoll loop, against one portholed.
// See src/sim/README.md. Output: human summary lines, then one machine-readable line
//   uesim: sessions=N connected=C assigned_distinct=D handshake_per_s=X probes_sent=S replies=R
//          misdelivered=M failures=F ...
// Exit 0 only when the run met its expectations; else 1 with "uesim: FAIL: <reason>".
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "base/log.hpp"
#include "net/event_loop.hpp"
#include "sim/cert_mint.hpp"
#include "sim/sim_session.hpp"
#include "sim/uesim_options.hpp"
#include "tls/tls_context.hpp"

using namespace porthole;
using namespace porthole::sim;
using session::Clock;
using session::TimePoint;
using std::chrono::milliseconds;

namespace {

template <class... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
    fmt::print(stdout, "uesim: {}\n", fmt::format(f, std::forward<Args>(args)...));
    std::fflush(stdout);
}

double seconds_between(TimePoint a, TimePoint b) {
    return std::chrono::duration<double>(b - a).count();
}

// Makes room for `need` descriptors (raising the hard limit too when we may).
Result<void> raise_nofile(rlim_t need) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return sys_error("getrlimit", errno);
    if (lim.rlim_cur >= need) return ok();
    if (lim.rlim_max < need) lim.rlim_max = need;
    lim.rlim_cur = need;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        int err = errno;
        return sys_error(fmt::format("cannot raise RLIMIT_NOFILE to {}", need), err);
    }
    return ok();
}

struct SignalWatch final : net::EventHandler {
    net::SignalFd* sig = nullptr;
    bool stop = false;
    void on_event(uint32_t) override {
        while (sig->take() != 0)
            stop = true;
    }
};

class Runner {
public:
    Runner(const UesimOptions& o, net::EventLoop& loop, const tls::TlsContext& tls,
           std::vector<ClientIdentity>& ids, SignalWatch& signals)
        : o_(o),
          loop_(loop),
          signals_(signals),
          rx_(new std::byte[64 * 1024]),
          env_{
              loop,      tls,      {rx_.get(), 64 * 1024},
              counters_, o.server, std::chrono::duration_cast<session::Duration>(o.connect_timeout),
              o.resume},
          t0_(Clock::now()),
          hard_deadline_(t0_ + std::chrono::seconds(o.duration_s)) {
        const unsigned n = o.churn_s > 0 ? o.churn_parallel : o.sessions;
        for (unsigned i = 0; i < n; ++i)
            sessions_.push_back(
                std::make_unique<SimSession>(env_, i, ids[ids.size() == 1 ? 0 : i]));
    }

    int run() { return o_.churn_s > 0 ? run_churn() : run_sessions(); }

private:
    // One loop turn: wait for I/O (at most `wait`), then timers every 50 ms.
    bool turn(milliseconds wait = milliseconds(20)) {
        if (auto r = loop_.run_once(wait); !r) {
            reason_ = r.error().message;
            return false;
        }
        auto now = Clock::now();
        if (now - last_tick_ >= milliseconds(50)) {
            last_tick_ = now;
            for (auto& s : sessions_)
                s->on_timer(now);
        }
        if (signals_.stop) {
            if (reason_.empty()) reason_ = "interrupted by a signal";
            return false;
        }
        if (now >= hard_deadline_) {
            if (reason_.empty()) reason_ = fmt::format("--duration {} s exceeded", o_.duration_s);
            return false;
        }
        return true;
    }

    // Starts connections at --connect-rate; true when every slot in `todo` has been started.
    bool pace(size_t& next, size_t count, TimePoint since) {
        auto allowed = size_t(seconds_between(since, Clock::now()) * o_.connect_rate) + 1;
        while (next < count && started_ < allowed) {
            sessions_[next]->start(Clock::now());
            if (!first_start_) first_start_ = Clock::now();
            ++next;
            ++started_;
        }
        return next >= count;
    }

    // Starts every session at --connect-rate from `since` and turns the loop until none is
    // still connecting, in its handshake or configuring. False when the run was stopped.
    bool connect_all(TimePoint since) {
        const size_t n = sessions_.size();
        size_t next = 0;
        started_ = 0;
        first_start_.reset();
        bool alive = true;
        while (alive) {
            bool all_started = pace(next, n, since);
            if (all_started && std::none_of(sessions_.begin(), sessions_.end(), [](auto& s) {
                    return s->phase() == SimSession::Phase::connecting ||
                           s->phase() == SimSession::Phase::handshake ||
                           s->phase() == SimSession::Phase::configuring;
                }))
                break;
            alive = turn();
        }
        return alive;
    }

    // --resume: every session's connection is cut (closed without CLOSE or close_notify, as a
    // lost one) and connects again offering the ticket of its first connection; configuration
    // runs again as on any connection.
    bool resume_phase() {
        const size_t n = sessions_.size();
        say("resuming: cutting {} connection(s), then reconnecting each with its session ticket",
            n);
        for (auto& s : sessions_)
            s->cut();
        // Let the concentrator see the connections end before the reconnections come in.
        bool alive = true;
        const auto until = Clock::now() + std::chrono::seconds(1);
        while (alive && Clock::now() < until)
            alive = turn();
        if (!alive) return false;
        cpu_resume0_ = process_cpu_s();
        const TimePoint since = Clock::now();
        alive = connect_all(since);
        cpu_resume1_ = process_cpu_s();
        TimePoint last_cfg = since;
        for (auto& s : sessions_) {
            if (auto t = s->configured_at()) {
                ++reconnected_;
                if (s->resumed()) ++resumed_;
                last_cfg = std::max(last_cfg, *t);
            }
        }
        resume_s_ = first_start_ ? seconds_between(*first_start_, last_cfg) : 0.0;
        say("reconnected {} of {} in {:.2f} s ({} resumed TLS handshakes)", reconnected_, n,
            resume_s_, resumed_);
        collect_addresses();
        report_errors();
        return alive;
    }

    // CPU seconds (user + system) --cpu-pid has used so far, from /proc/PID/stat.
    std::optional<double> process_cpu_s() const {
        if (o_.cpu_pid <= 0) return std::nullopt;
        std::ifstream f(fmt::format("/proc/{}/stat", o_.cpu_pid));
        std::string line;
        if (!std::getline(f, line)) return std::nullopt;
        auto paren = line.rfind(')');  // the command name may hold spaces
        if (paren == std::string::npos) return std::nullopt;
        std::istringstream rest(line.substr(paren + 1));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
            if (i == 14) utime = std::stoull(field);
            if (i == 15) stime = std::stoull(field);
        }
        return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
    }

    int run_sessions() {
        const size_t n = sessions_.size();
        say("{} session(s) to {} ({}), connect rate {}/s", n, o_.server,
            o_.shared_identity() ? fmt::format("one shared identity '{}'", sessions_[0]->identity())
                                 : fmt::format("minted identities {}-0..{}-{}", o_.identity_prefix,
                                               o_.identity_prefix, n - 1),
            o_.connect_rate);
        // 1. Connect everything.
        cpu_connect0_ = process_cpu_s();
        bool alive = connect_all(t0_);
        cpu_connect1_ = process_cpu_s();
        TimePoint last_cfg = t0_;
        for (auto& s : sessions_) {
            if (s->tls_done()) ++handshakes_;
            if (auto t = s->configured_at()) {
                ++connected_;
                last_cfg = std::max(last_cfg, *t);
            }
        }
        connect_s_ = first_start_ ? seconds_between(*first_start_, last_cfg) : 0.0;
        say("connected {} of {} in {:.2f} s ({} TLS handshakes)", connected_, n, connect_s_,
            handshakes_);
        collect_addresses();
        if (alive && connected_ == n) say("all {} sessions up", n);
        report_errors();

        // 1b. Close and reconnect each with its ticket.
        if (alive && o_.resume) alive = resume_phase();

        // Shared identity: the concentrator closes every older session ("replaced").
        if (alive && o_.shared_identity()) {
            auto until = Clock::now() + std::chrono::seconds(2);
            while ((alive = turn()) && Clock::now() < until &&
                   std::count_if(sessions_.begin(), sessions_.end(),
                                 [](auto& s) { return s->established(); }) > 1) {
            }
        }

        // 2. Probes.
        if (alive && (o_.probe_dst || o_.ue_to_ue)) alive = probe_phase();

        // 3. Hold.
        if (alive && o_.hold_s > 0) {
            say("holding for {} s", o_.hold_s);
            auto until = Clock::now() + std::chrono::seconds(o_.hold_s);
            while ((alive = turn()) && Clock::now() < until) {
            }
        }
        for (auto& s : sessions_) {
            if (s->established()) ++still_up_;
            if (auto rtt = s->keepalive_rtt()) max_rtt_ = std::max(max_rtt_, *rtt);
        }

        // 4. Close, politely, bounded.
        close_all();
        return report(alive);
    }

    bool probe_phase() {
        std::vector<SimSession*> up;
        for (auto& s : sessions_)
            if (s->established() && s->address()) up.push_back(s.get());
        if (up.empty()) return true;
        const IpAddress foreign = IpAddress::v4(0xc0000201);  // 192.0.2.1, TEST-NET-1
        say("probing: {} session(s) x {} echo(s){}{}{}", up.size(), o_.probes,
            o_.probe_dst ? fmt::format(" to {}", *o_.probe_dst) : std::string(),
            o_.spoof ? ", plus as many with forged sources" : "",
            o_.ue_to_ue ? ", plus as many to the next session's address" : "");
        const TimePoint begin = Clock::now();
        unsigned sent_rounds = 0;
        size_t next = 0;  // the next session to probe in this round
        bool alive = true;
        while (alive && sent_rounds < o_.probes) {
            // Each round is spread evenly over the probe interval, as UEs that are not
            // synchronised would send: session i of N probes at i/N of the interval.
            using Seconds = std::chrono::duration<double>;
            const double into_round =
                Seconds(Clock::now() - (begin + o_.probe_interval * sent_rounds)) /
                Seconds(o_.probe_interval);
            const size_t due =
                into_round < 0 ? 0
                               : std::min(up.size(), size_t(double(up.size()) * into_round) + 1);
            for (size_t i = next; i < due; ++i) {
                SimSession* s = up[i];
                const IpAddress& me = *s->address();
                if (o_.probe_dst && s->send_echo(me, *o_.probe_dst, ProbeKind::probe, sent_rounds))
                    ++probes_sent_;
                if (o_.spoof) {
                    // Alternate: another session's address, then one outside the pool.
                    const IpAddress& other = *up[(i + 1) % up.size()]->address();
                    const IpAddress& src = sent_rounds % 2 == 0 && up.size() > 1 ? other : foreign;
                    if (s->send_echo(src, *o_.probe_dst, ProbeKind::spoof, sent_rounds))
                        ++spoof_sent_;
                }
                if (o_.ue_to_ue && up.size() > 1) {
                    const IpAddress& peer = *up[(i + 1) % up.size()]->address();
                    if (s->send_echo(me, peer, ProbeKind::ue2ue, sent_rounds)) ++ue2ue_sent_;
                }
            }
            next = std::max(next, due);
            if (next == up.size()) ++sent_rounds, next = 0;
            alive = turn(milliseconds(1));
        }
        // Wait for replies: until all expected ones are in, or the full wait when some kind
        // is expected to stay silent (spoofing, isolated UE-to-UE).
        const bool wait_full = o_.spoof || (o_.ue_to_ue && !o_.expect_ue_to_ue);
        const auto until = Clock::now() + o_.probe_wait;
        while (alive && Clock::now() < until) {
            uint64_t replies = 0;
            for (auto* s : up)
                replies += s->probe_replies();
            bool probes_in = replies >= probes_sent_;
            bool u2u_in =
                !o_.ue_to_ue || !o_.expect_ue_to_ue || counters_.ue2ue_replies >= ue2ue_sent_;
            if (!wait_full && probes_in && u2u_in) break;
            alive = turn();
        }
        for (auto& s : sessions_)
            replies_ += s->probe_replies();
        if (o_.probe_dst)
            say("probes: sent {}, replies {} within {} ms", probes_sent_, replies_,
                std::chrono::duration_cast<milliseconds>(Clock::now() - begin).count());
        if (o_.spoof)
            say("spoofed: sent {}, replies {} (expected 0)", spoof_sent_, counters_.spoof_replies);
        if (o_.ue_to_ue)
            say("ue-to-ue: sent {}, arrived at the target {}, replies back {} (expected: {})",
                ue2ue_sent_, counters_.ue2ue_arrived, counters_.ue2ue_replies,
                o_.expect_ue_to_ue ? "all" : "none");
        return alive;
    }

    int run_churn() {
        const size_t k = sessions_.size();
        say("churn: {} parallel session(s) to {} for {} s, connect rate {}/s{}", k, o_.server,
            o_.churn_s, o_.connect_rate, o_.churn_probe ? ", one probe per cycle" : "");
        const TimePoint end = t0_ + std::chrono::seconds(o_.churn_s);
        // Per slot: the cycle's state (counted as connected, probe sent at), harvested when done.
        std::vector<bool> counted(k, false), probing(k, false), failed(k, false),
            harvested(k, true);
        std::vector<TimePoint> probe_sent(k);
        std::set<IpAddress> addrs;
        std::vector<size_t> idle;
        for (size_t i = k; i-- > 0;)
            idle.push_back(i);
        bool alive = true;
        TimePoint last_report = t0_;
        while (alive) {
            const auto now = Clock::now();
            const bool churning = now < end;
            for (size_t i = 0; i < k; ++i) {
                SimSession& s = *sessions_[i];
                if (s.established()) {
                    if (!counted[i]) {
                        counted[i] = true;
                        ++handshakes_;
                        if (s.address()) addrs.insert(*s.address());
                    }
                    if (o_.churn_probe && churning && !probing[i]) {
                        probing[i] = true;
                        probe_sent[i] = now;
                        if (s.send_echo(*s.address(), *o_.probe_dst, ProbeKind::probe, 0))
                            ++probes_sent_;
                        continue;
                    }
                    if (probing[i]) {
                        if (s.probe_replies() == 0 && now - probe_sent[i] < o_.probe_wait) continue;
                        if (s.probe_replies() == 0) {
                            record_failure(fmt::format("probe from {} unanswered", *s.address()));
                            failed[i] = true;
                        }
                        replies_ += s.probe_replies();
                    }
                    s.close(now);
                } else if (s.done() && !harvested[i]) {
                    harvested[i] = true;
                    if (!s.error().empty())
                        record_failure(s.error());
                    else if (s.server_close())
                        record_failure(fmt::format("concentrator closed: {}",
                                                   packet::describe(*s.server_close())));
                    else if (counted[i] && !failed[i])
                        ++cycles_;
                    idle.push_back(i);
                }
            }
            if (churning) {
                auto allowed = size_t(seconds_between(t0_, now) * o_.connect_rate) + 1;
                while (!idle.empty() && started_ < allowed) {
                    size_t i = idle.back();
                    idle.pop_back();
                    counted[i] = probing[i] = failed[i] = harvested[i] = false;
                    sessions_[i]->start(now);
                    if (!first_start_) first_start_ = now;
                    ++started_;
                }
            } else if (std::none_of(sessions_.begin(), sessions_.end(),
                                    [](auto& s) { return s->active(); }) &&
                       idle.size() == k) {
                break;
            }
            if (now - last_report >= std::chrono::seconds(10)) {
                last_report = now;
                say("churn: {:.0f} s, {} cycles, {} failures", seconds_between(t0_, now), cycles_,
                    failures_);
            }
            alive = turn(milliseconds(5));
        }
        churn_elapsed_ = seconds_between(t0_, Clock::now());
        assigned_distinct_ = addrs.size();
        connected_ = handshakes_;
        close_all();
        return report(alive);
    }

    void record_failure(const std::string& why) {
        ++failures_;
        ++errors_[why];
    }

    void collect_addresses() {
        std::set<IpAddress> distinct;
        for (auto& s : sessions_)
            if (s->address()) distinct.insert(*s->address());
        assigned_distinct_ = distinct.size();
    }

    void report_errors() {
        for (auto& s : sessions_)
            if (!s->error().empty()) record_failure(s->error());
    }

    void close_all() {
        auto now = Clock::now();
        for (auto& s : sessions_)
            s->close(now);
        auto until = now + std::chrono::seconds(3);
        while (Clock::now() < until && std::any_of(sessions_.begin(), sessions_.end(),
                                                   [](auto& s) { return s->active(); })) {
            if (auto r = loop_.run_once(milliseconds(20)); !r) break;
            for (auto& s : sessions_)
                s->on_timer(Clock::now());
        }
        for (auto& s : sessions_)
            s->abort("still open at exit");
    }

    int report(bool alive) {
        const size_t n = o_.churn_s > 0 ? sessions_.size() : sessions_.size();
        const bool churn = o_.churn_s > 0;
        double hs_per_s = 0;
        if (churn)
            hs_per_s = churn_elapsed_ > 0 ? double(handshakes_) / churn_elapsed_ : 0;
        else
            hs_per_s = connect_s_ > 0 ? double(connected_) / connect_s_ : 0;
        size_t replaced = 0, other_close = 0;
        if (!churn) {
            for (auto& s : sessions_) {
                if (!s->server_close()) continue;
                if (s->server_close()->reason == packet::CloseReason::replaced)
                    ++replaced;
                else {
                    ++other_close;
                    record_failure(fmt::format("concentrator closed: {}",
                                               packet::describe(*s->server_close())));
                }
            }
        }
        for (const auto& [why, count] : errors_)
            say("  failure: {} x {}", count, why);
        for (const auto& [kind, count] : counters_.other_kinds)
            say("  other packet received: {} x {}", count, kind);

        std::string line = fmt::format(
            "sessions={} connected={} assigned_distinct={} handshake_per_s={:.1f} probes_sent={} "
            "replies={} misdelivered={} failures={}",
            churn ? size_t(o_.churn_parallel) : n, connected_, assigned_distinct_, hs_per_s,
            probes_sent_, replies_, counters_.misdelivered, failures_);
        if (!churn) line += fmt::format(" connect_s={:.2f} still_up={}", connect_s_, still_up_);
        if (o_.shared_identity()) line += fmt::format(" replaced={}", replaced);
        if (o_.spoof)
            line += fmt::format(" spoof_sent={} spoof_replies={}", spoof_sent_,
                                counters_.spoof_replies);
        if (o_.ue_to_ue)
            line += fmt::format(" ue2ue_sent={} ue2ue_arrived={} ue2ue_replies={}", ue2ue_sent_,
                                counters_.ue2ue_arrived, counters_.ue2ue_replies);
        if (churn)
            line += fmt::format(" cycles={} cycles_per_s={:.1f} churn_s={:.1f}", cycles_,
                                churn_elapsed_ > 0 ? double(cycles_) / churn_elapsed_ : 0.0,
                                churn_elapsed_);
        if (o_.resume)
            line += fmt::format(" reconnected={} resumed={} resume_per_s={:.1f} resume_s={:.2f}",
                                reconnected_, resumed_,
                                resume_s_ > 0 ? double(reconnected_) / resume_s_ : 0.0, resume_s_);
        if (cpu_connect0_ && cpu_connect1_) {
            const double cpu = *cpu_connect1_ - *cpu_connect0_;
            line += fmt::format(" connect_cpu_s={:.2f} full_per_cpu_s={:.0f}", cpu,
                                cpu > 0 ? double(connected_) / cpu : 0.0);
        }
        if (cpu_resume0_ && cpu_resume1_) {
            const double cpu = *cpu_resume1_ - *cpu_resume0_;
            line += fmt::format(" resume_cpu_s={:.2f} resumed_per_cpu_s={:.0f}", cpu,
                                cpu > 0 ? double(resumed_) / cpu : 0.0);
        }
        if (o_.hold_s > 0)
            line += max_rtt_.count() > 0
                        ? fmt::format(" keepalive_rtt_max_ms={:.2f}",
                                      std::chrono::duration<double, std::milli>(max_rtt_).count())
                        : std::string(" keepalive_rtt_max_ms=none");
        line += fmt::format(" foreign_replies={} other_rx={}", counters_.foreign_replies,
                            counters_.other_rx);
        say("{}", line);

        // Expectations, first unmet one wins.
        std::string why = reason_;
        auto expect = [&](bool cond, std::string text) {
            if (why.empty() && !cond) why = std::move(text);
        };
        if (churn) {
            expect(cycles_ > 0, "no churn cycle completed");
            expect(failures_ == 0, fmt::format("{} churn cycle(s) failed", failures_));
        } else {
            expect(connected_ == n,
                   fmt::format("{} of {} sessions did not connect", n - connected_, n));
            if (o_.shared_identity()) {
                expect(
                    assigned_distinct_ == 1,
                    fmt::format("a shared identity got {} distinct addresses", assigned_distinct_));
                expect(
                    replaced + 1 == n && still_up_ == 1,
                    fmt::format("shared identity: {} replaced and {} still up (expected {} and 1)",
                                replaced, still_up_, n - 1));
            } else {
                expect(assigned_distinct_ == n,
                       fmt::format("only {} distinct addresses for {} sessions", assigned_distinct_,
                                   n));
                expect(still_up_ == n, fmt::format("{} session(s) ended early", n - still_up_));
            }
            if (o_.resume) {
                expect(reconnected_ == n,
                       fmt::format("{} of {} sessions did not reconnect", n - reconnected_, n));
                expect(resumed_ == reconnected_,
                       fmt::format("{} of {} reconnections were full TLS handshakes, not resumed",
                                   reconnected_ - resumed_, reconnected_));
            }
            expect(failures_ == 0, fmt::format("{} failure(s)", failures_));
            if (o_.probe_dst)
                expect(replies_ == probes_sent_ && probes_sent_ > 0,
                       fmt::format("{} of {} probes unanswered", probes_sent_ - replies_,
                                   probes_sent_));
            if (o_.spoof)
                expect(counters_.spoof_replies == 0,
                       fmt::format("{} replies to forged-source probes (anti-spoofing broken)",
                                   counters_.spoof_replies));
            if (o_.ue_to_ue && o_.expect_ue_to_ue)
                expect(counters_.ue2ue_replies == ue2ue_sent_ && ue2ue_sent_ > 0,
                       fmt::format("UE-to-UE: {} of {} answered", counters_.ue2ue_replies,
                                   ue2ue_sent_));
            if (o_.ue_to_ue && !o_.expect_ue_to_ue)
                expect(counters_.ue2ue_arrived == 0 && counters_.ue2ue_replies == 0,
                       fmt::format("UE-to-UE not isolated: {} request(s) reached another UE",
                                   counters_.ue2ue_arrived));
        }
        expect(counters_.misdelivered == 0,
               fmt::format("{} packet(s) delivered to the wrong session", counters_.misdelivered));
        expect(counters_.foreign_replies == 0,
               fmt::format("{} probe reply(ies) on the wrong session", counters_.foreign_replies));
        if (!alive && why.empty()) why = "stopped early";
        if (!why.empty()) {
            say("FAIL: {}", why);
            return 1;
        }
        say("PASS");
        return 0;
    }

    const UesimOptions& o_;
    net::EventLoop& loop_;
    SignalWatch& signals_;
    std::unique_ptr<std::byte[]> rx_;
    SimCounters counters_;
    SimEnv env_;
    std::vector<std::unique_ptr<SimSession>> sessions_;
    TimePoint t0_, hard_deadline_, last_tick_{};
    std::optional<TimePoint> first_start_;
    size_t started_ = 0, handshakes_ = 0, connected_ = 0, assigned_distinct_ = 0, still_up_ = 0;
    size_t reconnected_ = 0, resumed_ = 0;
    double connect_s_ = 0, churn_elapsed_ = 0, resume_s_ = 0;
    std::optional<double> cpu_connect0_, cpu_connect1_, cpu_resume0_, cpu_resume1_;
    uint64_t probes_sent_ = 0, replies_ = 0, spoof_sent_ = 0, ue2ue_sent_ = 0;
    uint64_t cycles_ = 0, failures_ = 0;
    session::Duration max_rtt_{0};
    std::map<std::string, uint64_t> errors_;
    std::string reason_;
};

int fail(std::string_view msg) {
    fmt::print(stderr, "uesim: error: {}\n", msg);
    fmt::print(stdout, "uesim: FAIL: {}\n", msg);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    auto opt = parse_options(argc, argv);
    if (!opt) return opt.error().message.empty() ? 0 : fail(opt.error().message);
    const UesimOptions& o = *opt;
    std::signal(SIGPIPE, SIG_IGN);
    log::set_level(log::Level::warn);

    const unsigned slots = o.churn_s > 0 ? o.churn_parallel : o.sessions;
    if (auto r = raise_nofile(rlim_t(slots) + 64); !r) return fail(r.error().message);

    // Identities first (minting is the slow part for large N), then the TLS context: with
    // minted identities it is made with the CA's own pair, which every session overrides.
    std::vector<ClientIdentity> ids;
    std::string ctx_cert = o.cert_file, ctx_key = o.key_file;
    if (o.shared_identity()) {
        auto id = load_identity(o.cert_file, o.key_file);
        if (!id) return fail(id.error().message);
        ids.push_back(std::move(*id));
    } else {
        auto minter = CertMinter::load(o.mint_ca_cert, o.mint_ca_key);
        if (!minter) return fail(minter.error().message);
        auto t = Clock::now();
        for (unsigned i = 0; i < slots; ++i) {
            auto id = minter->mint(fmt::format("{}-{}", o.identity_prefix, i));
            if (!id) return fail(id.error().message);
            ids.push_back(std::move(*id));
        }
        say("minted {} client certificate(s) in {:.2f} s", slots, seconds_between(t, Clock::now()));
        ctx_cert = o.mint_ca_cert;
        ctx_key = o.mint_ca_key;
    }
    auto tls = tls::TlsContext::client({o.ca_file, ctx_cert, ctx_key, o.server_name});
    if (!tls) return fail(tls.error().message);
    auto loop = net::EventLoop::create();
    if (!loop) return fail(loop.error().message);
    auto sig = net::SignalFd::create();
    if (!sig) return fail(sig.error().message);
    SignalWatch watch;
    watch.sig = &*sig;
    if (auto r = loop->add(sig->fd(), EPOLLIN, &watch); !r) return fail(r.error().message);

    Runner runner(o, *loop, *tls, ids, watch);
    return runner.run();
}

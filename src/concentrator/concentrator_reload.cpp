// Concentrator::reload: applies a fresh configuration to the running concentrator without
// dropping sessions (SIGHUP, `portholectl reload`). Everything that can fail is built to the
// side first; only then is it swapped in, so a refused reload changes nothing.
#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include "base/log.hpp"
#include "concentrator/concentrator.hpp"
#include "os/systemd_notify.hpp"
#include "packet/envelope.hpp"

namespace porthole::concentrator {
namespace {

std::string endpoints(const std::vector<Endpoint>& v) {
    std::string out;
    for (const auto& e : v) {
        // Appends, not `sep + e.to_string()`: g++ 12 -O3 warns (-Wrestrict) on that temporary.
        if (!out.empty()) out += ',';
        out += e.to_string();
    }
    return out;
}

template <class T>
std::string joined(const std::vector<T>& v) {
    std::string out = fmt::format("{}", fmt::join(v, ","));
    return out.empty() ? "none" : out;
}

// tls-sealer's value, as written in the configuration.
const char* sealer_name(bool seal_records) {
    return seal_records ? "porthole" : "openssl";
}

std::string statics(const ConcentratorOptions& o) {
    std::string out;
    for (const auto& [identity, addr] : o.static_addresses) {
        if (!out.empty()) out += ',';
        out += identity;
        out += '=';
        out += addr.to_string();
    }
    return out;
}

// The pool for `want`, carrying over what `old` holds: addresses in use stay with their
// sessions, remembered leases stay remembered. A pool may only grow at its end (same first
// address, so the gateway does not move); anything else needs a restart.
Result<std::optional<session::AddressPool>> rebuilt_pool(
    const char* name, const std::optional<session::AddressPool>& old,
    const std::optional<Prefix>& want, const ConcentratorOptions& fresh, bool v4) {
    if (!old && !want) return std::optional<session::AddressPool>();
    if (!old || !want)
        return make_error("{} {}: adding or removing a pool needs a restart", name,
                          old ? "removed" : "added");
    const Prefix now = old->prefix();
    const Prefix next = want->network();
    if (next != now && (next.len > now.len || next.addr != now.addr))
        return make_error(
            "{} {} -> {}: a pool can only grow to a shorter prefix with the same first address "
            "(shrinking or moving it needs a restart)",
            name, now, next);
    auto pool = session::AddressPool::create(next);
    if (!pool) return pool.error().context(name);
    for (const auto& [identity, addr] : fresh.static_addresses) {
        if (addr.is_v4() != v4) continue;
        if (!pool->reserve(identity, addr))
            return make_error(
                "static address {} for '{}': not in the pool, the pool's gateway, or already "
                "given to another identity",
                addr, identity);
    }
    for (const auto& [identity, addr] : old->remembered()) {
        if (!old->in_use(addr)) {
            (void)pool->remember(identity, addr);  // a new static reservation may take it
            continue;
        }
        if (!pool->allocate_exact(identity, addr))
            return make_error(
                "static address {}: reserved for another identity, but '{}' holds it now "
                "(kick that session first)",
                addr, identity);
    }
    return std::optional<session::AddressPool>(std::move(*pool));
}

}  // namespace

Result<std::string> Concentrator::reload_from_config() {
    if (!reload_source_) return make_error("reload refused: no configuration source");
    os::systemd::notify_reloading();
    auto fresh = reload_source_();
    auto r = fresh ? reload(*fresh) : Result<std::string>(fresh.error().context("reload refused"));
    os::systemd::notify_ready();
    if (r)
        log::info("reload: {}", *r);
    else
        log::warn("{}; the running configuration is unchanged", r.error().message);
    return r;
}

Result<std::string> Concentrator::reload(const ConcentratorOptions& fresh) {
    auto refuse = [](const Error& e) { return e.context("reload refused"); };
    std::vector<std::string> changed;
    std::vector<std::string> need_restart;

    // --- build everything that can fail, to the side ---
    if (fresh.max_envelope < size_t(opt_.mtu) + packet::kHeaderSize)
        return refuse(
            make_error("max-envelope {} is smaller than mtu {} + 3", fresh.max_envelope, opt_.mtu));
    // A new context starts with an empty session cache: tickets issued before the reload are
    // not taken any more, so every UE's certificate is checked again (against a new CRL too).
    auto tls = tls::TlsContext::server(server_tls_config(fresh));
    if (!tls) return refuse(tls.error());

    std::optional<DecoyWeb> decoy;
    if (!fresh.decoy_dir.empty()) {
        std::string path = fresh.decoy_dir + "/index.html";
        std::ifstream f(path, std::ios::binary);
        if (!f) return refuse(make_error("decoy-dir: cannot read {}", path));
        std::string page((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (page.size() > 1024 * 1024)
            return refuse(make_error("decoy-dir: {} is over 1 MiB", path));
        decoy.emplace(std::move(page));
    } else if (!opt_.decoy_dir.empty()) {
        decoy.emplace();
    }

    // The pools are rebuilt from what they hold now, and swapped in, with no loop allocating or
    // releasing in between.
    std::unique_lock pools_lock(shared_->mu);
    const bool statics_changed = statics(fresh) != statics(opt_);
    std::optional<session::AddressPool> pool4, pool6;
    bool grow4 = false, grow6 = false;
    if (statics_changed || fresh.pool4 != opt_.pool4) {
        auto p = rebuilt_pool("pool", shared_->pool4, fresh.pool4, fresh, true);
        if (!p) return refuse(p.error());
        pool4 = std::move(*p);
        grow4 = pool4 && pool4->prefix() != shared_->pool4->prefix();
    }
    if (statics_changed || fresh.pool6 != opt_.pool6) {
        auto p = rebuilt_pool("pool6", shared_->pool6, fresh.pool6, fresh, false);
        if (!p) return refuse(p.error());
        pool6 = std::move(*p);
        grow6 = pool6 && pool6->prefix() != shared_->pool6->prefix();
    }

    // --- kernel state for grown pools: the TUN's address (the on-link route) and NAT ---
    // addresses_ holds the IPv4 pool's address first, then the IPv6 pool's.
    if (grow4 || grow6) {
        struct Growth {
            const session::AddressPool* after;
            const session::AddressPool* before;
            size_t slot;
        };
        std::vector<Growth> grown;
        if (grow4) grown.push_back({&*pool4, &*shared_->pool4, 0});
        if (grow6)
            grown.push_back({&*pool6, &*shared_->pool6, shared_->pool4 ? size_t(1) : size_t(0)});
        std::vector<tun::NetlinkHandle> added;  // destroyed (addresses deleted) on failure
        for (const auto& g : grown) {
            // IPv4 holds both lengths of the gateway address side by side for a moment; IPv6
            // knows an address once, so its old length goes first (and comes back on failure).
            const bool v6 = !g.after->prefix().addr.is_v4();
            const Prefix before = g.before->with_pool_length(g.before->gateway());
            if (v6) addresses_[g.slot] = tun::NetlinkHandle();
            auto h = netlink_->add_address(tun_.ifindex(),
                                           g.after->with_pool_length(g.after->gateway()));
            if (!h) {
                if (v6)
                    if (auto back = netlink_->add_address(tun_.ifindex(), before))
                        addresses_[g.slot] = std::move(*back);
                return refuse(h.error());
            }
            added.push_back(std::move(*h));
        }
        if (nat_) {
            auto spec_for = [](const session::AddressPool* p4, const session::AddressPool* p6,
                               const std::string& egress) {
                net::NatSpec spec{egress, {}};
                if (p4) spec.sources.push_back(p4->prefix());
                if (p6) spec.sources.push_back(p6->prefix());
                return spec;
            };
            const auto* old4 = shared_->pool4 ? &*shared_->pool4 : nullptr;
            const auto* old6 = shared_->pool6 ? &*shared_->pool6 : nullptr;
            nat_.reset();  // deletes our table; established flows keep their conntrack entries
            auto nat = net::NatTable::install(
                spec_for(pool4 ? &*pool4 : old4, pool6 ? &*pool6 : old6, opt_.nat_egress));
            if (!nat) {
                if (auto back = net::NatTable::install(spec_for(old4, old6, opt_.nat_egress)))
                    nat_.emplace(std::move(*back));
                else
                    log::error("reload: NAT table lost: {}", back.error().message);
                return refuse(nat.error());
            }
            nat_.emplace(std::move(*nat));
        }
        for (size_t i = 0; i < grown.size(); ++i)
            addresses_[grown[i].slot] = std::move(added[i]);  // the old length's address goes
    }

    // --- from here on nothing fails: swap in ---
    tls_ = std::move(*tls);  // new connections; open ones keep the SSL_CTX they were made with
    changed.push_back(fresh.crl_file.empty()
                          ? "TLS certificates re-read, old session tickets dropped"
                          : "TLS certificates and CRL re-read, old session tickets dropped");
    if (fresh.crl_file != opt_.crl_file)
        changed.push_back(fmt::format("crl {} -> {}",
                                      opt_.crl_file.empty() ? "none" : opt_.crl_file,
                                      fresh.crl_file.empty() ? "none" : fresh.crl_file));
    if (fresh.tls_min != opt_.tls_min)
        changed.push_back(
            fmt::format("tls-min {}", fresh.tls_min == tls::TlsVersion::v1_2 ? "1.2" : "1.3"));
    if (pool4) {
        if (grow4)
            changed.push_back(
                fmt::format("pool {} -> {}", shared_->pool4->prefix(), pool4->prefix()));
        shared_->pool4 = std::move(pool4);
    }
    if (pool6) {
        if (grow6)
            changed.push_back(
                fmt::format("pool6 {} -> {}", shared_->pool6->prefix(), pool6->prefix()));
        shared_->pool6 = std::move(pool6);
    }
    if (statics_changed) changed.push_back("static addresses");
    if (decoy) decoy_ = std::move(*decoy);
    if (fresh.decoy_dir != opt_.decoy_dir) changed.push_back("decoy-dir");

    session::ForwardPolicy policy;
    for (auto* pool : shared_->pools())
        if (pool) policy.add_pool(pool->prefix(), pool->gateway());
    policy.set_allow_ue_to_ue(fresh.allow_ue_to_ue);
    policy_ = std::move(policy);
    pools_lock.unlock();

    ConcentratorOptions next = fresh;
    auto note = [&changed](const char* name, const auto& before, const auto& after) {
        if (before != after) changed.push_back(fmt::format("{} {} -> {}", name, before, after));
    };
    note("max-sessions", opt_.max_sessions, fresh.max_sessions);
    note("handshake-timeout", opt_.handshake_timeout.count(), fresh.handshake_timeout.count());
    note("ticket-lifetime", opt_.ticket_lifetime.count(), fresh.ticket_lifetime.count());
    note("key-update-records", opt_.key_update_records, fresh.key_update_records);
    note("tls-sealer", sealer_name(opt_.seal_records), sealer_name(fresh.seal_records));
    note("keepalive", opt_.keepalive_s, fresh.keepalive_s);
    note("dead-after-missed", opt_.dead_after_missed, fresh.dead_after_missed);
    note("session-queue-bytes", opt_.session_queue_bytes, fresh.session_queue_bytes);
    note("max-envelope", opt_.max_envelope, fresh.max_envelope);
    note("dns", joined(opt_.dns), joined(fresh.dns));
    note("dns-search", joined(opt_.dns_search), joined(fresh.dns_search));
    note("push-route", joined(opt_.push_routes), joined(fresh.push_routes));
    note("allow-ue-to-ue", opt_.allow_ue_to_ue, fresh.allow_ue_to_ue);
    note("log-level", log::level_name(opt_.log_level), log::level_name(fresh.log_level));
    log::set_level(fresh.log_level);

    // What only a restart can change: keep the running value, say so.
    auto fixed = [&need_restart](const char* name, const auto& before, auto& keep) {
        if (before != keep) {
            need_restart.push_back(name);
            keep = before;
        }
    };
    if (endpoints(opt_.listen) != endpoints(fresh.listen)) {
        need_restart.push_back("listen");
        next.listen = opt_.listen;
    }
    fixed("tun-name", opt_.tun_name, next.tun_name);
    fixed("handshake-threads", opt_.handshake_threads, next.handshake_threads);
    fixed("workers", opt_.workers, next.workers);
    fixed("mtu", opt_.mtu, next.mtu);
    fixed("nat-egress", opt_.nat_egress, next.nat_egress);
    fixed("no-offload", opt_.offload, next.offload);
    fixed("lease-file", opt_.lease_file, next.lease_file);
    fixed("user", opt_.user, next.user);
    fixed("control-socket", opt_.control_socket, next.control_socket);
    fixed("control-group", opt_.control_group, next.control_group);
    auto metrics = [](const std::optional<Endpoint>& e) {
        return e ? e->to_string() : std::string("none");
    };
    if (metrics(opt_.metrics_listen) != metrics(fresh.metrics_listen)) {
        need_restart.push_back("metrics-listen");
        next.metrics_listen = opt_.metrics_listen;
    }
    opt_ = std::move(next);
    // The other event loops take the same, each in its own thread. A copy travels with the
    // task: a loop that does not answer in time (hung?) takes it when it turns again.
    auto copy = std::make_shared<const Adopted>(Adopted{tls_.share(), decoy_, policy_, opt_});
    auto late = on_every_loop(
        [copy, this](Concentrator& l) {
            if (&l != this) l.adopt(*copy);
        },
        Late::still_run);

    std::string summary = fmt::format("{}", changed.front());
    for (size_t i = 1; i < changed.size(); ++i)
        summary += "; " + changed[i];
    for (size_t loop : late)
        summary += fmt::format(
            "; event loop {} is not answering: it takes the new configuration "
            "when it turns again",
            loop);
    if (!need_restart.empty()) {
        std::string names;
        for (const auto& n : need_restart)
            names += (names.empty() ? "" : ", ") + n;
        summary += fmt::format("; {} changed: needs a restart (the running value stays)", names);
    }
    return summary;
}

void Concentrator::adopt(const Adopted& reloaded) {
    tls_ = reloaded.tls.share();
    decoy_ = reloaded.decoy;
    policy_ = reloaded.policy;
    opt_ = reloaded.opt;
}

}  // namespace porthole::concentrator

#include "os/dns_config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <utility>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "os/resolved_link.hpp"

namespace porthole::os {
namespace {

Result<std::optional<std::string>> read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::optional<std::string>{};
        return sys_error(fmt::format("read {}", path), errno);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(fmt::format("read {}", path), errno);
        if (n == 0) break;
        out.append(buf, size_t(n));
        if (out.size() > 1024 * 1024) return make_error("read {}: larger than 1 MiB", path);
    }
    return std::optional<std::string>(std::move(out));
}

// Writes the whole content into path, in place (O_TRUNC, never a rename), and syncs it.
Result<void> write_in_place(const std::string& path, std::string_view content, mode_t mode) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) return sys_error(fmt::format("write {}", path), errno);
    for (size_t off = 0; off < content.size();) {
        ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(fmt::format("write {}", path), errno);
        off += size_t(n);
    }
    if (::fsync(fd.get()) < 0) return sys_error(fmt::format("fsync {}", path), errno);
    return ok();
}

bool porthole_alive(pid_t pid) {
    if (pid == ::getpid()) return false;  // our own old record (pid reuse across a reboot)
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream comm(fmt::format("/proc/{}/comm", pid));
    std::string name;
    std::getline(comm, name);
    return name == "porthole";
}

void remove_quietly(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        log::warn("cannot remove {}: {}", path, std::strerror(errno));
}

// Undoes what `s` records. Returns one line for the log.
std::string undo(const DnsState& s, const DnsPlace& place) {
    if (s.method == DnsMethod::resolved) {
        auto r = resolved_revert(s.ifindex);
        remove_quietly(place.state_file());
        if (!r)
            return fmt::format("systemd-resolved settings of {} not reverted: {}", s.tun,
                               r.error().message);
        return fmt::format("reverted the systemd-resolved settings of {} (ifindex {})", s.tun,
                           s.ifindex);
    }
    auto backup = read_file(s.backup);
    auto current = read_file(s.target);
    if (!backup || !current) {
        auto& e = !backup ? backup.error() : current.error();
        return fmt::format("{} not restored: {} (state kept in {})", s.target, e.message,
                           place.state_file());
    }
    if (!*backup && s.original_present)
        return fmt::format("{} not restored: its copy {} is missing (state kept in {})", s.target,
                           s.backup, place.state_file());
    std::string result;
    if (!*current || content_fingerprint(**current) != s.written) {
        // Someone (a DHCP client, NetworkManager, the user) wrote it since: theirs is newer.
        result = fmt::format(
            "{} was changed since porthole wrote it: left as is (the original "
            "is kept in {})",
            s.target, s.backup);
        remove_quietly(place.state_file());
        return result;
    }
    if (s.original_present) {
        if (auto w = write_in_place(s.target, **backup, 0644); !w)
            return fmt::format("{} not restored: {} (state kept in {})", s.target,
                               w.error().message, place.state_file());
        result = fmt::format("restored {}", s.target);
    } else {
        remove_quietly(s.target);
        result = fmt::format("removed {} (there was none before)", s.target);
    }
    remove_quietly(s.backup);
    remove_quietly(place.state_file());
    return result;
}

}  // namespace

Result<DnsMode> parse_dns_mode(std::string_view t) {
    if (t == "auto") return DnsMode::automatic;
    if (t == "resolved") return DnsMode::resolved;
    if (t == "resolv-conf") return DnsMode::resolv_conf;
    if (t == "off") return DnsMode::off;
    return make_error("dns: '{}' is not one of auto, resolved, resolv-conf, off", t);
}

std::string_view to_string(DnsMode m) {
    switch (m) {
        case DnsMode::automatic:
            return "auto";
        case DnsMode::resolved:
            return "resolved";
        case DnsMode::resolv_conf:
            return "resolv-conf";
        case DnsMode::off:
            return "off";
    }
    return "?";
}

Result<void> make_state_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return ok();
    return sys_error(fmt::format("state directory {}", dir), errno);
}

Result<std::optional<std::string>> recover_stale_dns(const DnsPlace& place) {
    auto text = read_file(place.state_file());
    if (!text) return text.error();
    if (!*text) return std::optional<std::string>{};
    auto s = parse_state(**text);
    if (!s)
        return make_error("state file {} is damaged ({}); check DNS settings and remove it",
                          place.state_file(), s.error().message);
    if (porthole_alive(s->pid))
        return make_error(
            "porthole (pid {}) is running for {} with state {}: use another --tun-name or "
            "--state-dir",
            s->pid, s->tun, place.state_file());
    return std::optional<std::string>(
        fmt::format("found DNS settings left by porthole pid {} (no longer running): {}", s->pid,
                    undo(*s, place)));
}

Result<DnsConfig> DnsConfig::apply(DnsMode mode, const DnsPlace& place, int ifindex,
                                   const DnsSettings& settings) {
    if (mode == DnsMode::off) return make_error("dns: off");
    bool use_resolved =
        mode == DnsMode::resolved || (mode == DnsMode::automatic && resolved_running());
    if (auto d = make_state_dir(place.state_dir); !d) return d.error();
    DnsState st;
    st.pid = ::getpid();
    st.tun = place.tun;
    st.ifindex = ifindex;
    if (use_resolved) {
        st.method = DnsMethod::resolved;
        if (auto w = write_in_place(place.state_file(), format_state(st), 0644); !w)
            return w.error();
        if (auto r = resolved_apply(ifindex, settings); !r) {
            (void)resolved_revert(ifindex);
            remove_quietly(place.state_file());
            return r.error();
        }
        return DnsConfig(place, std::move(st), settings);
    }

    st.method = DnsMethod::resolv_conf;
    st.target = place.resolv_conf;
    st.backup = place.backup_file();
    auto original = read_file(st.target);
    if (!original) return original.error();
    st.original_present = original->has_value();
    std::string ours = render_resolv_conf(settings, original->value_or(""),
                                          fmt::format("{} (pid {})", place.tun, st.pid));
    st.written = content_fingerprint(ours);
    // Order matters for crash safety: the copy, then the record, then the change.
    if (auto w = write_in_place(st.backup, original->value_or(""), 0644); !w) return w.error();
    if (auto w = write_in_place(place.state_file(), format_state(st), 0644); !w) {
        remove_quietly(st.backup);
        return w.error();
    }
    if (auto w = write_in_place(st.target, ours, 0644); !w) {
        if (original->has_value()) (void)write_in_place(st.target, **original, 0644);
        remove_quietly(place.state_file());
        remove_quietly(st.backup);
        return w.error();
    }
    return DnsConfig(place, std::move(st), settings);
}

DnsConfig::DnsConfig(DnsConfig&& o) noexcept
    : place_(std::move(o.place_)),
      state_(std::move(o.state_)),
      settings_(std::move(o.settings_)),
      active_(std::exchange(o.active_, false)) {}

DnsConfig& DnsConfig::operator=(DnsConfig&& o) noexcept {
    if (this != &o) {
        restore();
        place_ = std::move(o.place_);
        state_ = std::move(o.state_);
        settings_ = std::move(o.settings_);
        active_ = std::exchange(o.active_, false);
    }
    return *this;
}

DnsConfig::~DnsConfig() {
    restore();
}

void DnsConfig::restore() {
    if (!active_) return;
    active_ = false;
    log::info("DNS: {}", undo(state_, place_));
}

std::string DnsConfig::describe() const {
    if (state_.method == DnsMethod::resolved)
        return fmt::format("systemd-resolved for {}{}", state_.tun,
                           settings_.full_tunnel && !settings_.servers.empty()
                               ? " (all names: ~., default route)"
                               : " (its search domains only)");
    return fmt::format("{} (original kept in {})", state_.target, state_.backup);
}

}  // namespace porthole::os

#include "os/dns_state.hpp"

#include <fmt/format.h>

#include <charconv>

namespace porthole::os {
namespace {

template <class T>
bool to_number(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string_view to_string(DnsMethod m) {
    return m == DnsMethod::resolved ? "resolved" : "resolv-conf";
}

std::string format_state(const DnsState& s) {
    std::string out = fmt::format(
        "# porthole: DNS settings applied for {}; removed when they are undone\n"
        "pid={}\ntun={}\nifindex={}\nmethod={}\n",
        s.tun, s.pid, s.tun, s.ifindex, to_string(s.method));
    if (s.method == DnsMethod::resolv_conf)
        out += fmt::format("target={}\nbackup={}\noriginal={}\nwritten={}\n", s.target, s.backup,
                           s.original_present ? "present" : "absent", s.written);
    return out;
}

Result<DnsState> parse_state(std::string_view text) {
    DnsState s;
    bool have_pid = false, have_method = false;
    int n = 0;
    while (!text.empty()) {
        ++n;
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.empty() || line[0] == '#') continue;
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) return make_error("line {}: not key=value", n);
        auto key = line.substr(0, eq), value = line.substr(eq + 1);
        if (key == "pid") {
            if (!to_number(value, s.pid) || s.pid <= 0)
                return make_error("line {}: bad pid '{}'", n, value);
            have_pid = true;
        } else if (key == "tun") {
            s.tun = value;
        } else if (key == "ifindex") {
            if (!to_number(value, s.ifindex) || s.ifindex < 0)
                return make_error("line {}: bad ifindex '{}'", n, value);
        } else if (key == "method") {
            if (value == "resolved")
                s.method = DnsMethod::resolved;
            else if (value == "resolv-conf")
                s.method = DnsMethod::resolv_conf;
            else
                return make_error("line {}: unknown method '{}'", n, value);
            have_method = true;
        } else if (key == "target") {
            s.target = value;
        } else if (key == "backup") {
            s.backup = value;
        } else if (key == "original") {
            if (value != "present" && value != "absent")
                return make_error("line {}: bad original '{}'", n, value);
            s.original_present = value == "present";
        } else if (key == "written") {
            s.written = value;
        }
    }
    if (!have_pid) return make_error("no pid");
    if (!have_method) return make_error("no method");
    if (s.method == DnsMethod::resolv_conf && (s.target.empty() || s.backup.empty()))
        return make_error("resolv-conf without target or backup");
    if (s.method == DnsMethod::resolved && s.ifindex <= 0)
        return make_error("resolved without ifindex");
    return s;
}

}  // namespace porthole::os

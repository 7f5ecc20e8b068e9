#include "os/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

namespace porthole::os {
namespace {

struct CapDeleter {
    void operator()(void* p) const { cap_free(p); }
};
using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapDeleter>;
using CapText = std::unique_ptr<char, CapDeleter>;

Error fail(std::string_view what, int err) {
    return sys_error(fmt::format("drop privileges: {}", what), err);
}

std::string cap_name(cap_value_t c) {
    CapText name(cap_to_name(c));
    return name ? std::string(name.get()) : fmt::format("capability {}", c);
}

bool has_flag(cap_t caps, cap_value_t c, cap_flag_t flag) {
    cap_flag_value_t v = CAP_CLEAR;
    return cap_get_flag(caps, c, flag, &v) == 0 && v == CAP_SET;
}

// One past the highest capability this kernel knows.
cap_value_t last_cap() {
    return cap_value_t(cap_max_bits());
}

struct Account {
    uid_t uid;
    gid_t gid;
    std::string name;
};

Result<Account> look_up(const std::string& user) {
    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? size_t(size) : 16384);
    passwd pw{};
    passwd* found = nullptr;
    int err = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (err != 0) return fail(fmt::format("looking up user '{}'", user), err);
    if (found == nullptr) return make_error("drop privileges: user '{}' does not exist", user);
    return Account{pw.pw_uid, pw.pw_gid, pw.pw_name};
}

// Root -> the account, with the permitted set kept across setuid (effective is cleared).
Result<void> switch_user(const Account& a) {
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail("PR_SET_KEEPCAPS", errno);
    if (::initgroups(a.name.c_str(), a.gid) != 0)
        return fail(fmt::format("setting the groups of '{}'", a.name), errno);
    if (::setresgid(a.gid, a.gid, a.gid) != 0) return fail(fmt::format("setgid {}", a.gid), errno);
    if (::setresuid(a.uid, a.uid, a.uid) != 0) return fail(fmt::format("setuid {}", a.uid), errno);
    if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return fail("PR_SET_KEEPCAPS", errno);
    return ok();
}

}  // namespace

Result<void> drop_privileges(const std::string& user, std::span<const cap_value_t> keep) {
    CapPtr current(cap_get_proc());
    if (!current) return fail("reading capabilities", errno);
    for (auto c : keep)
        if (!has_flag(current.get(), c, CAP_PERMITTED))
            return make_error(
                "drop privileges: {} is not held (run as root, or give it with systemd's "
                "AmbientCapabilities=)",
                cap_name(c));

    if (!user.empty() && ::geteuid() == 0) {
        auto account = look_up(user);
        if (!account) return account.error();
        if (account->uid != 0)
            if (auto r = switch_user(*account); !r) return r.error();
    }

    // Raise every permitted capability to effective: dropping from the bounding set needs
    // CAP_SETPCAP (held when we were root; not under systemd's User= with only ambient caps).
    CapPtr all(cap_get_proc());
    if (!all) return fail("reading capabilities", errno);
    for (cap_value_t c = 0; c < last_cap(); ++c)
        if (has_flag(all.get(), c, CAP_PERMITTED))
            cap_set_flag(all.get(), CAP_EFFECTIVE, 1, &c, CAP_SET);
    if (cap_set_proc(all.get()) != 0) return fail("raising capabilities", errno);

    if (has_flag(all.get(), CAP_SETPCAP, CAP_EFFECTIVE)) {
        for (cap_value_t c = 0; c < last_cap(); ++c) {
            if (std::find(keep.begin(), keep.end(), c) != keep.end()) continue;
            if (!CAP_IS_SUPPORTED(c) || cap_get_bound(c) != 1) continue;
            if (cap_drop_bound(c) != 0)
                return fail(fmt::format("dropping {} from the bounding set", cap_name(c)), errno);
        }
    }
    if (cap_reset_ambient() != 0 && errno != EINVAL)
        return fail("clearing the ambient capabilities", errno);

    CapPtr reduced(cap_init());
    if (!reduced) return fail("cap_init", errno);
    if (!keep.empty()) {
        for (auto flag : {CAP_PERMITTED, CAP_EFFECTIVE, CAP_INHERITABLE})
            if (cap_set_flag(reduced.get(), flag, int(keep.size()), keep.data(), CAP_SET) != 0)
                return fail("building the capability set", errno);
    }
    if (cap_set_proc(reduced.get()) != 0) return fail("setting capabilities", errno);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("PR_SET_NO_NEW_PRIVS", errno);
    return ok();
}

std::string describe_credentials() {
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    std::string user = std::to_string(uid);
    if (const passwd* pw = ::getpwuid(uid)) user = fmt::format("{}({})", uid, pw->pw_name);
    std::string grp = std::to_string(gid);
    if (const struct group* gr = ::getgrgid(gid)) grp = fmt::format("{}({})", gid, gr->gr_name);
    std::string caps = "none";
    if (CapPtr c{cap_get_proc()}) {
        std::string held;
        for (cap_value_t v = 0; v < last_cap(); ++v)
            if (has_flag(c.get(), v, CAP_EFFECTIVE)) {
                if (!held.empty()) held += ',';  // no `sep + name` temporary: g++ 12 -O3 -Wrestrict
                held += cap_name(v);
            }
        if (!held.empty()) caps = held;
    }
    return fmt::format("uid={} gid={} caps={}", user, grp, caps);
}

}  // namespace porthole::os

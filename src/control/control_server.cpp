#include "control/control_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "control/one_shot_server.hpp"

namespace porthole::control {

struct ControlServer::Impl {
    std::string path;
    std::unique_ptr<OneShotServer> server;
    Handler handler;
    ~Impl() {
        server.reset();
        if (!path.empty()) ::unlink(path.c_str());  // best effort (we may have dropped rights)
    }
};

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sun.sun_path)
        return make_error("control socket path '{}' is empty or longer than {} bytes", path,
                          sizeof sun.sun_path - 1);
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    return sun;
}

Result<gid_t> group_id(const std::string& name) {
    if (name.empty()) return ::getegid();
    errno = 0;
    struct group* g = ::getgrnam(name.c_str());
    if (g == nullptr)
        return errno != 0 ? sys_error(fmt::format("control group '{}'", name), errno)
                          : make_error("control group '{}' does not exist", name);
    return g->gr_gid;
}

// The parent directory, created 0750 with the control group when missing.
Result<void> ensure_parent(const std::string& path, gid_t gid) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return ok();
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0750) == 0) {
        if (::chown(dir.c_str(), uid_t(-1), gid) < 0)
            return sys_error(fmt::format("control socket directory {}: chown", dir), errno);
        return ok();
    }
    if (errno == EEXIST) return ok();
    return sys_error(fmt::format("control socket directory {}", dir), errno);
}

// Replaces a stale socket file; refuses when a live server answers there.
Result<void> clear_stale(const std::string& path, const sockaddr_un& sun,
                         const std::string& owner) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return ok();
        return sys_error(fmt::format("control socket {}", path), errno);
    }
    if (!S_ISSOCK(st.st_mode))
        return make_error("control socket {} exists and is not a socket", path);
    // Non-blocking: a live server with a full backlog answers EAGAIN instead of holding us.
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) return sys_error("socket(AF_UNIX)", errno);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0 ||
        errno == EAGAIN)
        return make_error("control socket {} is in use by another {}", path, owner);
    if (errno != ECONNREFUSED && errno != ENOENT)
        return sys_error(fmt::format("control socket {}", path), errno);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
        return sys_error(fmt::format("removing stale control socket {}", path), errno);
    log::debug("control socket {}: replaced a stale socket file", path);
    return ok();
}

// A request as it may appear in the log: printable ASCII, at most 80 characters.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, std::min<size_t>(text.size(), 80)))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

std::string peer_description(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return "unknown peer";
    return fmt::format("pid {} uid {} gid {}", cred.pid, cred.uid, cred.gid);
}

}  // namespace

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

const std::string& ControlServer::path() const {
    return impl_->path;
}
size_t ControlServer::connections() const {
    return impl_->server->connections();
}

Result<std::unique_ptr<ControlServer>> ControlServer::create(net::EventLoop& loop,
                                                             ControlServerOptions o,
                                                             Handler handler) {
    auto sun = unix_address(o.path);
    if (!sun) return sun.error();
    auto gid = group_id(o.group);
    if (!gid) return gid.error();
    if (auto r = ensure_parent(o.path, *gid); !r) return r.error();
    if (auto r = clear_stale(o.path, *sun, o.owner_name); !r) return r.error();

    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket(AF_UNIX)", errno);
    // The file is created with the final mode's permissions at most (no window where others
    // could connect), then given its group and exact mode.
    mode_t old = ::umask(0777 & ~o.mode);
    int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*sun), sizeof *sun);
    int err = errno;
    ::umask(old);
    if (rc < 0) return sys_error(fmt::format("control socket {}", o.path), err);

    auto impl = std::make_unique<Impl>();
    impl->path = o.path;  // from here on the destructor removes the file
    impl->handler = std::move(handler);
    if (::chown(o.path.c_str(), uid_t(-1), *gid) < 0)
        return sys_error(fmt::format("control socket {}: chown", o.path), errno);
    if (::chmod(o.path.c_str(), o.mode) < 0)
        return sys_error(fmt::format("control socket {}: chmod", o.path), errno);
    if (::listen(fd.get(), 16) < 0)
        return sys_error(fmt::format("control socket {}: listen", o.path), errno);

    OneShotServer::Limits limits{o.max_request, o.max_reply, o.max_clients, o.timeout};
    Impl* raw = impl.get();
    auto server = OneShotServer::create(
        loop, std::move(fd), OneShotServer::Framing::line, limits,
        [raw](const OneShotServer::Request& req) -> std::string {
            if (req.too_long) {
                log::warn("control socket: request over the size limit from {}; refused",
                          peer_description(req.fd));
                return "{\"error\":\"request too long\"}\n";
            }
            log::debug("control socket: '{}' from {}", printable(req.text),
                       peer_description(req.fd));
            return raw->handler(req.text);
        });
    if (!server) return server.error();
    impl->server = std::move(*server);
    return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

}  // namespace porthole::control

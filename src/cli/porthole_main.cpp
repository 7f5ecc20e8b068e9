// porthole: the UE client. `porthole connect ...` brings the tunnel up until Ctrl-C/SIGTERM;
// `porthole status` asks the running client how it is doing. The command line (and connect's
// --config file) is parsed in client_command_line.cpp.
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "cli/client_command_line.hpp"
#include "client/client_status.hpp"
#include "client/tunnel_client.hpp"
#include "control/control_client.hpp"

using namespace porthole;

namespace {

int fail(std::string_view msg) {
    return cli::fail("porthole", msg);
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a peer's reset must be an error return, not a kill
    auto cl = cli::parse_client_command_line(std::vector<std::string>(argv, argv + argc));
    if (!cl) return fail(cl.error().message);
    if (!cl->exit_text.empty()) {
        std::cout << cl->exit_text << std::flush;
        return 0;
    }

    if (cl->command == cli::ClientCommandLine::Command::status) {
        auto reply = control::control_request(cl->status_socket, "status", std::chrono::seconds(5),
                                              "porthole");
        if (!reply) return fail(reply.error().message);
        if (cl->status_json) {
            std::cout << *reply << std::flush;
            return 0;
        }
        std::string error;
        auto st = client::from_json(*reply, error);
        if (!st) return fail(error);
        std::cout << client::to_text(*st, int64_t(std::time(nullptr))) << std::flush;
        return 0;
    }

    log::set_level(cl->log_level);
    client::ClientOptions o = std::move(cl->options);
    // Under sudo, the invoking user's group may read the status without sudo.
    if (const char* g = std::getenv("SUDO_GID"); g != nullptr && ::geteuid() == 0) {
        gid_t gid = 0;
        std::string_view text(g);
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), gid);
        if (ec == std::errc() && p == text.data() + text.size() && gid != 0) o.status_gid = gid;
    }

    if (::geteuid() != 0)
        log::debug("not running as root: creating the TUN device needs CAP_NET_ADMIN");
    client::TunnelClient tunnel(std::move(o));
    if (auto r = tunnel.run(); !r) return fail(r.error().message);
    return 0;
}

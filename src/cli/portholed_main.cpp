// portholed: the concentrator. Every option is a flag and a key of the same name in --config
// (src/cli/concentrator_command_line.cpp).
#include <malloc.h>

#include <csignal>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "cli/concentrator_command_line.hpp"
#include "concentrator/concentrator.hpp"
#include "os/privileges.hpp"

using namespace porthole;

int main(int argc, char** argv) {
    // Every connection allocates large buffers (the 256 KiB TLS write buffer, send queues that
    // grow to their bound). glibc serves them with mmap but raises its mmap threshold each time
    // such a block is freed, so after the first disconnects they come from the heap, which
    // connection churn then fragments. A fixed threshold keeps them mmapped: untouched pages
    // cost nothing and a closed connection returns its memory at once (docs/performance.md).
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    std::signal(SIGPIPE, SIG_IGN);  // a peer's reset must be an error return, not a kill
    const std::vector<std::string> args(argv, argv + argc);
    auto cl = cli::parse_concentrator_command_line(args);
    if (!cl) return cli::fail("portholed", cl.error().message);
    if (!cl->exit_text.empty()) {
        fmt::print("{}", cl->exit_text);
        return 0;
    }
    log::set_level(cl->log_level);

    auto c = concentrator::Concentrator::create(cl->options);
    if (!c) return cli::fail("portholed", c.error().message);
    // A reload (SIGHUP, portholectl reload) parses the same command line and --config again.
    (*c)->set_reload_source([args]() -> Result<concentrator::ConcentratorOptions> {
        auto again = cli::parse_concentrator_command_line(args);
        if (!again) return again.error();
        return std::move(again->options);
    });

    // TUN, addresses, NAT, listeners, control socket and lease file are set up: from here on
    // only CAP_NET_ADMIN is needed (addresses and the nftables table are removed at exit).
    static constexpr cap_value_t kKeep[] = {CAP_NET_ADMIN};
    if (auto r = os::drop_privileges(cl->options.user, kKeep); !r)
        return cli::fail("portholed", r.error().message);
    log::info("running as {}", os::describe_credentials());
    return (*c)->run();
}

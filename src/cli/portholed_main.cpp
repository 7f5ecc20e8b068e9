// portholed: the concentrator. Every option is a flag and a key of the same name in --config
// (src/cli/concentrator_command_line.cpp).
#include <csignal>

#include "base/log.hpp"
#include "cli/cli_parsing.hpp"
#include "cli/concentrator_command_line.hpp"
#include "concentrator/concentrator.hpp"

using namespace porthole;

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a peer's reset must be an error return, not a kill
    std::vector<std::string> args(argv, argv + argc);
    auto cl = cli::parse_concentrator_command_line(args);
    if (!cl) return cli::fail("portholed", cl.error().message);
    if (!cl->exit_text.empty()) {
        fmt::print("{}", cl->exit_text);
        return 0;
    }
    log::set_level(cl->log_level);

    auto c = concentrator::Concentrator::create(cl->options);
    if (!c) return cli::fail("portholed", c.error().message);
    return (*c)->run();
}

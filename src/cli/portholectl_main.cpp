// portholectl: the operator's command for a running portholed, over its control socket
// (src/control, docs/operations.md). Prints readable tables, or the raw JSON with --json.
#include <CLI/CLI.hpp>
#include <csignal>

#include "cli/cli_parsing.hpp"
#include "control/control_client.hpp"
#include "control/report.hpp"

using namespace porthole;

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"portholectl: status and control of a running portholed"};
    app.set_version_flag("--version", std::string(PORTHOLE_VERSION));
    app.require_subcommand(1);
    std::string socket = "/run/porthole/portholed.sock";
    bool json = false;
    unsigned timeout_s = 10;
    app.add_option("--socket", socket, "portholed's control socket (its control-socket setting)")
        ->capture_default_str();
    app.add_flag("--json", json, "Print the daemon's JSON reply as it is");
    app.add_option("--timeout", timeout_s, "Seconds to wait for the reply")
        ->capture_default_str()
        ->check(CLI::Range(1, 600));

    app.add_subcommand("status", "Uptime, sessions, handshakes, traffic, drops, queue delay");
    app.add_subcommand("sessions", "One line per session: identity, addresses, bytes, RTT");
    auto* kick = app.add_subcommand(
        "kick", "End IDENTITY's session (the UE is told: closed by the operator)");
    std::string identity, reason;
    kick->add_option("IDENTITY", identity, "The UE's identity (client certificate CN)")->required();
    kick->add_option("REASON", reason, "Text the UE shows (default: disconnected by the operator)");
    app.add_subcommand("reload", "Re-read the configuration (as SIGHUP)");
    // --json and --socket may follow the subcommand too.
    for (auto* sub : app.get_subcommands({}))
        sub->fallthrough();

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return cli::fail("portholectl", e.what());
    }

    std::string cmd = app.get_subcommands().front()->get_name();
    std::string request = cmd;
    if (cmd == "kick") {
        if (identity.find_first_of("\t\n\r") != std::string::npos ||
            reason.find_first_of("\t\n\r") != std::string::npos)
            return cli::fail("portholectl",
                             "kick: IDENTITY and REASON may not contain tabs or line breaks");
        request = "kick\t" + identity + (reason.empty() ? "" : "\t" + reason);
    }
    auto reply = control::control_request(socket, request, std::chrono::seconds(timeout_s));
    if (!reply) return cli::fail("portholectl", reply.error().message);
    if (json) {
        fmt::print("{}", *reply);
        // The reply is printed either way; the exit code still says whether it was an error.
        return control::reply_error(*reply) ? 1 : 0;
    }
    if (auto e = control::reply_error(*reply)) return cli::fail("portholectl", *e);
    Result<std::string> text = cmd == "status"     ? control::status_table(*reply)
                               : cmd == "sessions" ? control::sessions_table(*reply)
                                                   : control::message_text(*reply);
    if (!text) return cli::fail("portholectl", fmt::format("{}: {}", cmd, text.error().message));
    fmt::print("{}", *text);
    return 0;
}

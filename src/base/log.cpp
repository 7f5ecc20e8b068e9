#include "base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

namespace porthole::log {
namespace {
std::atomic<Level> g_level{Level::info};
constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level l) {
    g_level.store(l, std::memory_order_relaxed);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}

bool parse_level(std::string_view text, Level& out) {
    for (size_t i = 0; i < std::size(kNames); ++i)
        if (text == kNames[i]) {
            out = Level(i);
            return true;
        }
    return false;
}

void write(Level l, std::string_view line) {
    std::string out = fmt::format("{}: {}\n", kNames[size_t(l)], line);
    // One write() per line so that concurrent writers never interleave within a line.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace porthole::log

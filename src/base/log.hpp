// Log: one line per event to stderr (the journal under systemd), filtered by level.
// Never pass secrets (keys, credentials, tokens) to these functions.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace porthole::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
[[nodiscard]] Level level();
[[nodiscard]] bool parse_level(std::string_view text, Level& out);
void write(Level level, std::string_view line);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::warn) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace porthole::log

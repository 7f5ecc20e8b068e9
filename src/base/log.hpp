// Log: one line per event to stderr (the journal under systemd), filtered by level.
// Never pass secrets (keys, credentials, tokens) to these functions.
//
// A line is a human message followed by key=value fields that a program can pick out:
//   log::info({{"sid", id}, {"identity", name}}, "session {} ended: {}", id, why);
//   -> "session 7 ended: peer closed sid=7 identity=ue1"
// Every line about a session carries sid= (and identity= once it is known); see log::Fields.
// Under systemd (stderr is the journal stream named by $JOURNAL_STREAM) a line starts with its
// sd-daemon priority ("<6>") and has no timestamp (the journal adds one); elsewhere it starts
// with a UTC timestamp and the level name.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>

namespace porthole::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Style { plain, journal };

void set_level(Level level);
[[nodiscard]] Level level();
[[nodiscard]] bool parse_level(std::string_view text, Level& out);
[[nodiscard]] std::string_view level_name(Level level);
// The style is picked from the environment on first use; tests may force one.
void set_style(Style style);
[[nodiscard]] Style style_from_environment();
void write(Level level, std::string_view line);

// The whole line as written (with its newline): control characters in `line` are escaped so
// that one event is always one line.
[[nodiscard]] std::string format_line(Level level, std::string_view line, Style style,
                                      std::chrono::system_clock::time_point when);

// One key=value field; the value is formatted with fmt ("{}").
struct Field {
    template <class T>
    Field(std::string_view k, const T& v) : key(k), value(fmt::format("{}", v)) {}
    std::string_view key;
    std::string value;
};

// Fields rendered once (" sid=7 identity=ue1"): empty values are left out, a value with spaces,
// quotes, '=' or control characters is quoted with C-style escapes.
class Fields {
public:
    Fields() = default;
    Fields(std::initializer_list<Field> fields);  // NOLINT(google-explicit-constructor)
    Fields& add(const Field& field);
    [[nodiscard]] const std::string& text() const { return text_; }

private:
    std::string text_;
};

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

// The same with fields after the message.
template <class... Args>
void debug(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::debug)
        write(Level::debug, fmt::format(f, std::forward<Args>(args)...) + fields.text());
}
template <class... Args>
void info(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::info)
        write(Level::info, fmt::format(f, std::forward<Args>(args)...) + fields.text());
}
template <class... Args>
void warn(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::warn)
        write(Level::warn, fmt::format(f, std::forward<Args>(args)...) + fields.text());
}
template <class... Args>
void error(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...) + fields.text());
}

}  // namespace porthole::log

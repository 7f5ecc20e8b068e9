#include "base/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <string>

namespace porthole::log {
namespace {
std::atomic<Level> g_level{Level::info};
// -1: not decided yet (read from the environment on first write).
std::atomic<int> g_style{-1};
constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
// sd-daemon(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR.
constexpr std::string_view kPriorities[] = {"<7>", "<6>", "<4>", "<3>"};

void append_escaped(std::string& out, char c) {
    switch (c) {
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
}

bool is_control(char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

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

std::string_view level_name(Level l) {
    return kNames[size_t(l)];
}

void set_style(Style s) {
    g_style.store(int(s), std::memory_order_relaxed);
}

Style style_from_environment() {
    // $JOURNAL_STREAM is "device:inode" of the journal's stream; it counts only while stderr
    // is still that stream (not when a child's stderr was redirected elsewhere).
    const char* js = std::getenv("JOURNAL_STREAM");
    if (js == nullptr) return Style::plain;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return Style::plain;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return Style::plain;
    return (st.st_dev == dev && st.st_ino == ino) ? Style::journal : Style::plain;
}

std::string format_line(Level l, std::string_view line, Style style,
                        std::chrono::system_clock::time_point when) {
    std::string out;
    out.reserve(line.size() + 40);
    if (style == Style::journal) {
        out += kPriorities[size_t(l)];
    } else {
        auto t = std::chrono::system_clock::to_time_t(when);
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() %
            1000;
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        out += fmt::format("{}.{:03}Z {}: ", stamp, ms, kNames[size_t(l)]);
    }
    for (char c : line) {
        if (is_control(c))
            append_escaped(out, c);
        else
            out += c;
    }
    out += '\n';
    return out;
}

void write(Level l, std::string_view line) {
    int s = g_style.load(std::memory_order_relaxed);
    if (s < 0) {
        s = int(style_from_environment());
        g_style.store(s, std::memory_order_relaxed);
    }
    std::string out = format_line(l, line, Style(s), std::chrono::system_clock::now());
    // One write() per line so that concurrent writers never interleave within a line.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

Fields::Fields(std::initializer_list<Field> fields) {
    for (const auto& f : fields)
        add(f);
}

Fields& Fields::add(const Field& f) {
    if (f.value.empty()) return *this;
    bool quote = false;
    for (char c : f.value)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || is_control(c)) quote = true;
    text_ += ' ';
    text_ += f.key;
    text_ += '=';
    if (!quote) {
        text_ += f.value;
        return *this;
    }
    text_ += '"';
    for (char c : f.value) {
        if (c == '"' || c == '\\') {
            text_ += '\\';
            text_ += c;
        } else if (is_control(c)) {
            append_escaped(text_, c);
        } else {
            text_ += c;
        }
    }
    text_ += '"';
    return *this;
}

}  // namespace porthole::log

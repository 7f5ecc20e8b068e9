#include "session/lease_file.hpp"

namespace porthole::session {
namespace {

constexpr std::string_view kHeader = "# porthole leases v1";

std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

Result<std::string> unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (++i == s.size()) return make_error("dangling backslash in identity");
        switch (s[i]) {
            case '\\':
                out += '\\';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case 'n':
                out += '\n';
                break;
            default:
                return make_error("unknown escape '\\{}' in identity", s[i]);
        }
    }
    return out;
}

std::string hex(const std::vector<std::byte>& b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto x : b) {
        out += digits[unsigned(x) >> 4];
        out += digits[unsigned(x) & 15];
    }
    return out;
}

Result<std::vector<std::byte>> unhex(std::string_view s) {
    std::vector<std::byte> out;
    if (s == "-") return out;
    if (s.size() % 2 != 0 || s.size() > 128) return make_error("bad token '{}'", s);
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (size_t i = 0; i < s.size(); i += 2) {
        int hi = val(s[i]), lo = val(s[i + 1]);
        if (hi < 0 || lo < 0) return make_error("bad token '{}'", s);
        out.push_back(std::byte(hi << 4 | lo));
    }
    return out;
}

}  // namespace

std::string format_leases(const std::vector<Lease>& leases) {
    std::string out(kHeader);
    out += '\n';
    for (const auto& l : leases)
        out += fmt::format("{} {} {}\n", l.address.to_string(),
                           l.token.empty() ? std::string("-") : hex(l.token), escape(l.identity));
    return out;
}

Result<std::vector<Lease>> parse_leases(std::string_view text) {
    std::vector<Lease> out;
    size_t line_no = 0;
    bool header = false;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++line_no;
        if (!header) {
            if (line != kHeader) return make_error("lease file: not a porthole v1 lease file");
            header = true;
            continue;
        }
        if (line.empty()) continue;
        auto sp1 = line.find(' ');
        auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos)
            return make_error("lease file line {}: expected '<address> <token> <identity>'",
                              line_no);
        auto addr = IpAddress::parse(line.substr(0, sp1));
        if (!addr) return addr.error().context(fmt::format("lease file line {}", line_no));
        auto token = unhex(line.substr(sp1 + 1, sp2 - sp1 - 1));
        if (!token) return token.error().context(fmt::format("lease file line {}", line_no));
        auto id = unescape(line.substr(sp2 + 1));
        if (!id || id->empty()) return make_error("lease file line {}: bad identity", line_no);
        out.push_back({std::move(*id), *addr, std::move(*token)});
    }
    if (!header) return make_error("lease file: empty");
    return out;
}

}  // namespace porthole::session

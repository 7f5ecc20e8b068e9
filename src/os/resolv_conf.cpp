#include "os/resolv_conf.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace porthole::os {
namespace {

struct Parsed {
    std::vector<std::string> servers, search, kept;
};

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t')
            ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

Parsed parse(std::string_view text) {
    Parsed p;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        auto w = words(line);
        if (w.empty() || w[0][0] == '#' || w[0][0] == ';') continue;
        if (w[0] == "nameserver" && w.size() >= 2) {
            p.servers.emplace_back(w[1]);
        } else if (w[0] == "search" || w[0] == "domain") {
            if (w[0] == "search") p.search.clear();  // the last search/domain line wins
            if (w[0] == "domain") p.search.clear();
            for (size_t i = 1; i < w.size(); ++i)
                p.search.emplace_back(w[i]);
        } else if (w[0] == "options" || w[0] == "sortlist") {
            p.kept.emplace_back(line);
        }
    }
    return p;
}

void add_unique(std::vector<std::string>& v, std::string s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

}  // namespace

std::string render_resolv_conf(const DnsSettings& s, std::string_view original,
                               std::string_view who) {
    auto orig = parse(original);
    std::vector<std::string> servers, search;
    for (const auto& a : s.servers)
        add_unique(servers, fmt::format("{}", a));
    if (!s.full_tunnel || s.servers.empty())
        for (auto& o : orig.servers)
            add_unique(servers, o);
    if (servers.size() > kMaxResolvNameservers) servers.resize(kMaxResolvNameservers);
    for (const auto& d : s.search)
        add_unique(search, d);
    if (!s.full_tunnel)
        for (auto& o : orig.search)
            add_unique(search, o);

    std::string out = fmt::format(
        "# Written by porthole for {}: the tunnel's DNS settings.\n"
        "# The original file is restored when porthole exits (or, after a crash, when it starts "
        "again).\n",
        who);
    for (const auto& n : servers)
        out += fmt::format("nameserver {}\n", n);
    if (!search.empty()) out += fmt::format("search {}\n", fmt::join(search, " "));
    for (const auto& k : orig.kept)
        out += fmt::format("{}\n", k);
    return out;
}

std::string content_fingerprint(std::string_view content) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : content) {
        h ^= uint8_t(c);
        h *= 0x100000001b3ull;
    }
    return fmt::format("{:016x}", h);
}

}  // namespace porthole::os

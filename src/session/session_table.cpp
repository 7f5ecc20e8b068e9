#include "session/session_table.hpp"

namespace porthole::session {

size_t IpAddressHash::operator()(const IpAddress& a) const noexcept {
    // FNV-1a over the address bytes and family: cheap, and enough for addresses we assign.
    uint64_t h = 1469598103934665603ull ^ uint64_t(a.family());
    for (uint8_t b : a.bytes())
        h = (h ^ b) * 1099511628211ull;
    return size_t(h);
}

bool SessionTable::insert(const IpAddress& addr, SessionId id) {
    return map_.try_emplace(addr, id).second;
}

void SessionTable::erase(const IpAddress& addr, SessionId id) {
    if (auto it = map_.find(addr); it != map_.end() && it->second == id) map_.erase(it);
}

std::optional<SessionId> SessionTable::find(const IpAddress& addr) const {
    if (auto it = map_.find(addr); it != map_.end()) return it->second;
    return std::nullopt;
}

}  // namespace porthole::session

// SessionTable: which session owns an inner address, for routing packets read from the
// concentrator's TUN device to their session. Pure code.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "base/ip_address.hpp"

namespace porthole::session {

using SessionId = uint64_t;

struct IpAddressHash {
    size_t operator()(const IpAddress& a) const noexcept;
};

class SessionTable {
public:
    // False when addr is already owned by another session (the caller must not double-assign).
    bool insert(const IpAddress& addr, SessionId id);
    // Removes addr only if id owns it (a replaced session cannot remove its successor's entry).
    void erase(const IpAddress& addr, SessionId id);
    [[nodiscard]] std::optional<SessionId> find(const IpAddress& addr) const;
    [[nodiscard]] size_t size() const { return map_.size(); }

private:
    std::unordered_map<IpAddress, SessionId, IpAddressHash> map_;
};

}  // namespace porthole::session

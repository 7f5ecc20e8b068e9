// DropReason: why a packet or envelope was not delivered, with a counter per reason.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace porthole::session {

enum class DropReason : uint8_t {
    spoofed_source,    // inner source is not the session's own address
    before_config,     // IP packet before the configuration exchange finished
    no_session,        // TUN packet for an address no session holds
    tx_queue_full,     // the session's send queue was at its bound
    tun_write_failed,  // the TUN device refused the packet (queue full, ...)
    not_ip,            // TUN gave us something that is not an IP packet
    ue_to_ue,          // a UE addressed another UE while isolation is on
    count_
};

inline constexpr std::array<std::string_view, size_t(DropReason::count_)> kDropReasonNames = {
    "spoofed_source",   "before_config", "no_session", "tx_queue_full",
    "tun_write_failed", "not_ip",        "ue_to_ue"};

class DropCounters {
public:
    void add(DropReason r, uint64_t n = 1) { n_[size_t(r)] += n; }
    // Every reason's count of `other` (another session's, another event loop's).
    void add(const DropCounters& other) {
        for (size_t i = 0; i < n_.size(); ++i)
            n_[i] += other.n_[i];
    }
    [[nodiscard]] uint64_t operator[](DropReason r) const { return n_[size_t(r)]; }
    [[nodiscard]] uint64_t total() const {
        uint64_t t = 0;
        for (auto x : n_)
            t += x;
        return t;
    }

private:
    std::array<uint64_t, size_t(DropReason::count_)> n_{};
};

}  // namespace porthole::session

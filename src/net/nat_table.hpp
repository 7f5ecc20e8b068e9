// NatTable: the concentrator's nftables table ("inet porthole"), installed through libnftables.
// All our nftables objects live in this one table, so cleanup after a crash is "delete that
// table": install() first deletes a stale one, the destructor deletes the live one.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::net {

struct NatSpec {
    std::string egress_iface;     // masquerade traffic leaving through this interface
    std::vector<Prefix> sources;  // ...when its source is in one of these (the pools)
};

class NatTable {
public:
    static constexpr const char* kTableName = "porthole";

    // Pure: the nft script install() runs (tested without touching the kernel).
    static std::string ruleset(const NatSpec& spec);
    // Deletes a stale table of ours if one exists, then adds the ruleset.
    static Result<NatTable> install(const NatSpec& spec);
    // Deletes the table if it exists (used at startup after a crash, and by the destructor).
    static Result<void> remove();

    NatTable(NatTable&& o) noexcept : active_(std::exchange(o.active_, false)) {}
    NatTable& operator=(NatTable&&) = delete;
    NatTable(const NatTable&) = delete;
    ~NatTable();

private:
    NatTable() = default;
    bool active_ = true;
};

}  // namespace porthole::net

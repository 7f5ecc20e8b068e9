// AddressPool: hands out inner addresses from one IPv4 or IPv6 prefix. Pure code.
//
// The first host address is the concentrator's own (the TUN device's, the UEs' gateway); UEs get
// the following ones (IPv4: up to the address before broadcast). Allocation is sticky: an identity
// that had an address gets the same one back while nobody else holds it, and new identities are
// given addresses no other identity remembers before any remembered one is reused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::session {

class AddressPool {
public:
    // max_size bounds the pool (an IPv6 /64 is carved into at most max_size /128s).
    static Result<AddressPool> create(const Prefix& prefix, uint32_t max_size = 1u << 20);

    [[nodiscard]] const Prefix& prefix() const { return prefix_; }
    [[nodiscard]] IpAddress gateway() const { return prefix_.addr.plus(1); }
    // The address as a prefix of the pool's length (what the UE configures on its TUN).
    [[nodiscard]] Prefix with_pool_length(const IpAddress& a) const { return {a, prefix_.len}; }

    // nullopt when every address is in use.
    std::optional<IpAddress> allocate(std::string_view identity);
    // Gives identity exactly addr if it belongs to the pool and is free.
    bool allocate_exact(std::string_view identity, const IpAddress& addr);
    void release(const IpAddress& addr);

    // Restores what an earlier run remembered: identity last held addr (not in use now).
    bool remember(std::string_view identity, const IpAddress& addr);
    // A static address: only identity is ever given addr. False if addr is outside the pool or
    // already reserved for someone else.
    bool reserve(std::string_view identity, const IpAddress& addr);
    // identity -> address it holds or last held (for the lease file).
    [[nodiscard]] std::vector<std::pair<std::string, IpAddress>> remembered() const;

    [[nodiscard]] bool contains(const IpAddress& a) const;
    [[nodiscard]] bool in_use(const IpAddress& a) const;
    [[nodiscard]] uint32_t capacity() const { return size_; }
    [[nodiscard]] uint32_t used() const { return used_count_; }

private:
    AddressPool(Prefix p, uint32_t size)
        : prefix_(p), size_(size), used_((size + 63) / 64, 0), owner_(size) {}
    [[nodiscard]] IpAddress address_of(uint32_t index) const {
        return prefix_.addr.plus(2 + uint64_t(index));
    }
    [[nodiscard]] std::optional<uint32_t> index_of(const IpAddress& a) const;
    [[nodiscard]] bool used_at(uint32_t i) const { return (used_[i / 64] >> (i % 64)) & 1; }
    void take(uint32_t i, std::string_view identity);

    Prefix prefix_;
    uint32_t size_;
    uint32_t used_count_ = 0;
    uint32_t cursor_ = 0;
    std::vector<uint64_t> used_;
    std::vector<std::string> owner_;  // identity that last held each index ("" = never held)
    std::unordered_map<std::string, uint32_t> remembered_;  // identity -> index it last held
    std::unordered_map<uint32_t, std::string> reserved_;    // static addresses: index -> identity
};

}  // namespace porthole::session

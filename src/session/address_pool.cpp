#include "session/address_pool.hpp"

#include <algorithm>

namespace porthole::session {

Result<AddressPool> AddressPool::create(const Prefix& prefix, uint32_t max_size) {
    Prefix p = prefix.network();
    unsigned host_bits = p.addr.bits() - p.len;
    // Reserved: network address and the gateway; IPv4 also loses its broadcast address.
    uint64_t hosts = host_bits >= 40 ? (uint64_t(1) << 40) : (uint64_t(1) << host_bits);
    uint64_t reserved = p.addr.is_v4() ? 3 : 2;
    if (hosts <= reserved)
        return make_error("pool {} is too small (it needs room for the gateway and a UE)", p);
    uint64_t usable = std::min<uint64_t>(hosts - reserved, max_size);
    if (usable == 0) return make_error("pool {} has no room", p);
    return AddressPool(p, uint32_t(usable));
}

std::optional<uint32_t> AddressPool::index_of(const IpAddress& a) const {
    if (!prefix_.contains(a)) return std::nullopt;
    // Offset of a from the network address, over the low 64 bits (pools are at most 2^40 long).
    auto ab = a.bytes(), nb = prefix_.addr.bytes();
    uint64_t off = 0;
    size_t n = ab.size(), low = n > 8 ? n - 8 : 0;
    for (size_t i = 0; i < low; ++i)
        if (ab[i] != nb[i]) return std::nullopt;  // host bits above the low 64: beyond any pool
    for (size_t i = low; i < n; ++i)
        off = off << 8 | uint64_t(ab[i] - nb[i]);
    // Subtracting byte-wise is exact here because a and the network share every bit above the
    // host part, so no borrow can occur.
    if (off < 2 || off - 2 >= size_) return std::nullopt;
    return uint32_t(off - 2);
}

bool AddressPool::contains(const IpAddress& a) const {
    return index_of(a).has_value();
}

bool AddressPool::in_use(const IpAddress& a) const {
    auto i = index_of(a);
    return i && used_at(*i);
}

void AddressPool::take(uint32_t i, std::string_view identity) {
    used_[i / 64] |= uint64_t(1) << (i % 64);
    ++used_count_;
    if (owner_[i] != identity) {
        if (!owner_[i].empty()) remembered_.erase(owner_[i]);
        owner_[i] = std::string(identity);
    }
    auto [it, inserted] = remembered_.try_emplace(std::string(identity), i);
    if (!inserted && it->second != i) {
        if (owner_[it->second] == identity) owner_[it->second].clear();
        it->second = i;
    }
}

std::optional<IpAddress> AddressPool::allocate(std::string_view identity) {
    if (used_count_ == size_) return std::nullopt;
    for (const auto& [index, owner] : reserved_) {
        if (owner != identity) continue;
        if (used_at(index)) return std::nullopt;  // its static address is busy (old session)
        take(index, identity);
        return address_of(index);
    }
    if (auto it = remembered_.find(std::string(identity)); it != remembered_.end()) {
        if (!used_at(it->second)) {
            take(it->second, identity);
            return address_of(it->second);
        }
    }
    // First pass: free and remembered by nobody. Second pass: any free index.
    for (int pass = 0; pass < 2; ++pass) {
        for (uint32_t n = 0; n < size_; ++n) {
            uint32_t i = (cursor_ + n) % size_;
            if (used_at(i) || (pass == 0 && !owner_[i].empty()) || reserved_.count(i)) continue;
            cursor_ = (i + 1) % size_;
            take(i, identity);
            return address_of(i);
        }
    }
    return std::nullopt;
}

bool AddressPool::allocate_exact(std::string_view identity, const IpAddress& addr) {
    auto i = index_of(addr);
    if (!i || used_at(*i)) return false;
    if (auto r = reserved_.find(*i); r != reserved_.end() && r->second != identity) return false;
    take(*i, identity);
    return true;
}

bool AddressPool::remember(std::string_view identity, const IpAddress& addr) {
    auto i = index_of(addr);
    if (!i || used_at(*i) || identity.empty()) return false;
    if (auto r = reserved_.find(*i); r != reserved_.end() && r->second != identity) return false;
    if (!owner_[*i].empty()) remembered_.erase(owner_[*i]);
    if (auto it = remembered_.find(std::string(identity)); it != remembered_.end())
        owner_[it->second].clear();
    owner_[*i] = std::string(identity);
    remembered_[std::string(identity)] = *i;
    return true;
}

bool AddressPool::reserve(std::string_view identity, const IpAddress& addr) {
    auto i = index_of(addr);
    if (!i) return false;
    if (auto r = reserved_.find(*i); r != reserved_.end()) return r->second == identity;
    for (const auto& [index, owner] : reserved_)
        if (owner == identity) return false;  // one static address per identity and family
    reserved_.emplace(*i, std::string(identity));
    return true;
}

std::vector<std::pair<std::string, IpAddress>> AddressPool::remembered() const {
    std::vector<std::pair<std::string, IpAddress>> out;
    out.reserve(remembered_.size());
    for (const auto& [identity, index] : remembered_)
        out.emplace_back(identity, address_of(index));
    return out;
}

void AddressPool::release(const IpAddress& addr) {
    auto i = index_of(addr);
    if (!i || !used_at(*i)) return;
    used_[*i / 64] &= ~(uint64_t(1) << (*i % 64));
    --used_count_;
}

}  // namespace porthole::session

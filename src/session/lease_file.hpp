// LeaseFile: the text form of the concentrator's remembered leases (identity -> address, session
// token), so UEs keep their inner addresses across concentrator restarts. Pure code: the
// concentrator writes the text atomically (temporary file, fsync, rename) and reads it at start.
//
// Format, one lease per line after a version line:
//   # porthole leases v1
//   <address> <token as hex, or -> <identity>
// The identity is last, so it may contain spaces; backslash, tab, CR and LF in it are escaped as
// \\, \t, \r, \n.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip_address.hpp"
#include "base/result.hpp"

namespace porthole::session {

struct Lease {
    std::string identity;
    IpAddress address;
    std::vector<std::byte> token;
    friend bool operator==(const Lease&, const Lease&) = default;
};

std::string format_leases(const std::vector<Lease>& leases);
// Errors name the line ("lease file line 7: bad address 'x'").
Result<std::vector<Lease>> parse_leases(std::string_view text);

}  // namespace porthole::session

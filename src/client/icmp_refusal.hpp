// IcmpRefusal: the answer the UE client gives, on its own TUN device, to a packet the tunnel
// cannot carry — in full tunnel mode, a packet of a family the concentrator assigned no address
// for (it is routed into the device so that it cannot leak around the tunnel). Instead of a
// silent drop, which leaves applications waiting for their timeouts, the sender gets "destination
// unreachable, administratively prohibited" (ICMP type 3 code 13, ICMPv6 type 1 code 1) and
// fails at once (connect(): EHOSTUNREACH / EACCES; happy eyeballs falls back to the other family).
// Pure code.
#pragma once

#include <cstddef>
#include <span>

namespace porthole::client {

// The largest refusal: IPv6's minimum MTU (IPv4 refusals are at most 576 octets).
inline constexpr size_t kMaxRefusalSize = 1280;

// Writes into `out` (at least kMaxRefusalSize octets) the refusal for `packet` (one whole IPv4 or
// IPv6 packet read from the TUN device), from the packet's destination to its source, quoting as
// much of it as fits. Returns its size, or 0 when no error may be sent for this packet (RFC 1122
// / RFC 4443): it is not a valid IP packet, an ICMP error itself, a non-first IPv4 fragment, or
// to or from a multicast, broadcast or unspecified address.
size_t make_refusal(std::span<const std::byte> packet, std::span<std::byte> out);

}  // namespace porthole::client

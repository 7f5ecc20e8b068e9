#include "control/stats.hpp"

#include <algorithm>
#include <cmath>

namespace porthole::control {

std::string_view porthole_version() {
    return PORTHOLE_VERSION;
}

HandshakeResult classify_tls_failure(std::string_view e) {
    auto has = [&](std::string_view s) { return e.find(s) != std::string_view::npos; };
    if (has("client certificate rejected")) return HandshakeResult::cert_rejected;
    if (has("client sent no certificate")) return HandshakeResult::no_certificate;
    if (has("does not speak TLS")) return HandshakeResult::not_tls;
    if (has("closed the connection")) return HandshakeResult::peer_closed;
    return HandshakeResult::tls_error;
}

uint64_t HandshakeCounters::failed() const {
    uint64_t t = 0;
    for (size_t i = 0; i < n_.size(); ++i)
        if (HandshakeResult(i) != HandshakeResult::ok &&
            HandshakeResult(i) != HandshakeResult::decoy)
            t += n_[i];
    return t;
}

uint64_t DelayHistogram::cumulative(size_t i) const {
    uint64_t t = 0;
    for (size_t k = 0; k <= i && k < kBuckets; ++k)
        t += counts_[k];
    return t;
}

std::optional<uint64_t> DelayHistogram::quantile_bound_us(double q) const {
    if (count_ == 0) return std::nullopt;
    auto want = uint64_t(std::ceil(q * double(count_)));
    want = std::clamp<uint64_t>(want, 1, count_);
    uint64_t t = 0;
    for (size_t i = 0; i < kBoundsUs.size(); ++i) {
        t += counts_[i];
        if (t >= want) return kBoundsUs[i];
    }
    return std::nullopt;
}

void add_report(StatusReport& total, const StatusReport& part) {
    total.sessions += part.sessions;
    total.connections += part.connections;
    total.handshakes.add(part.handshakes);
    total.key_updates += part.key_updates;
    total.traffic.add(part.traffic);
    total.drops.add(part.drops);
    total.resumed += part.resumed;
    total.replaced += part.replaced;
    total.kicked += part.kicked;
    total.queue_delay.add(part.queue_delay);
    total.handed_off += part.handed_off;
}

}  // namespace porthole::control

// ClientStatus: what `porthole status` shows about the running client, and its two renderings
// (text for people, JSON for scripts). Pure code; TunnelClient fills it in and serves it on
// `<state-dir>/<tun>.sock`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace porthole::client {

struct ClientStatus {
    std::string state;  // connecting, up, reconnecting
    std::string server;
    std::string tun;
    std::vector<std::string> addresses;  // inner, with prefix length
    std::string mode;                    // "full tunnel" or "N route(s)"
    int64_t since_unix = 0;              // when `state` began (seconds since the epoch)
    int64_t up_since_unix = 0;           // when the current session came up (0: not up)
    uint64_t pid = 0;
    uint64_t bytes_up = 0, packets_up = 0, bytes_down = 0, packets_down = 0;
    uint64_t reconnects = 0;
    uint64_t key_updates = 0;  // TLS KeyUpdates sent (the sending key renewed), all connections
    // TLS records porthole sealed and opened itself on the current connection (0: OpenSSL did).
    uint64_t records_sealed = 0, records_opened = 0;
    uint64_t refused = 0;  // packets answered "administratively prohibited" (no address)
    std::string last_error;
    std::optional<double> rtt_ms;  // from the last keep-alive
    std::string dns;               // how the tunnel's DNS settings were applied, or why not
};

// One JSON object, ending in '\n'.
[[nodiscard]] std::string to_json(const ClientStatus& s);
// A few aligned "key: value" lines; `now_unix` for the "(5 min ago)" parts.
[[nodiscard]] std::string to_text(const ClientStatus& s, int64_t now_unix);
// Parses what to_json wrote (for `porthole status` without --json). Errors: one line.
[[nodiscard]] std::optional<ClientStatus> from_json(const std::string& text, std::string& error);

}  // namespace porthole::client

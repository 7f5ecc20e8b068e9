// DecoyWeb: what the concentrator says to a peer that speaks HTTP after the TLS handshake (a
// browser, a prober, a censor's scanner): an ordinary web page, nothing that reveals a tunnel.
// Pure code; UeConnection does the I/O.
//
// A porthole UE always opens with a CONFIG_REQUEST envelope (type 0x80); an HTTP request starts
// with an upper-case method name. The first byte decides, so no tunnel traffic is ever delayed.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace porthole::concentrator {

class DecoyWeb {
public:
    // index_html: the page served at "/" (a built-in one when empty).
    explicit DecoyWeb(std::string index_html = {});

    // True when the first byte of a session is the start of an HTTP method.
    [[nodiscard]] static bool looks_like_http(std::span<const std::byte> first_bytes);

    static constexpr size_t kMaxRequestHead = 8 * 1024;

    // The whole response for the request head received so far, or "" while the head is still
    // incomplete (and shorter than kMaxRequestHead; a longer one gets 431).
    [[nodiscard]] std::string respond(std::string_view request_head) const;

private:
    std::string index_;
};

}  // namespace porthole::concentrator

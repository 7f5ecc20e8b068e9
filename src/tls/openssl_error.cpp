#include "tls/openssl_error.hpp"

#include <fmt/format.h>
#include <openssl/err.h>

namespace porthole::tls {

std::string reason_text(unsigned long code, const char* fallback) {
    if (code == 0) return fallback;
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) return reason;
    return fmt::format("OpenSSL error {:#x}", code);
}

std::string openssl_reason() {
    unsigned long first = ERR_get_error();
    ERR_clear_error();
    return reason_text(first);
}

}  // namespace porthole::tls

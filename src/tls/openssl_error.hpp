// OpenSSL's error queue as text, for the one-line errors of src/tls (internal to this module).
#pragma once

#include <string>

namespace porthole::tls {

// The reason string of an error code; never null: `fallback` for code 0, the number for a code
// OpenSSL has no string for.
std::string reason_text(unsigned long code, const char* fallback = "unknown OpenSSL error");

// The first error in the queue (the root cause) as text, then empties the queue so nothing leaks
// into a later report.
std::string openssl_reason();

}  // namespace porthole::tls

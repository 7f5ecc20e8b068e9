// Formatting of the concentrator's statistics (pure): the JSON documents the control socket
// returns, the Prometheus text page, and the readable tables portholectl prints from the JSON.
// The JSON fields are documented in docs/operations.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "control/stats.hpp"

namespace porthole::control {

// {"version":..., "uptime_s":..., "sessions":..., "handshakes":{...}, ...} + '\n'
std::string status_json(const StatusReport& report);
// {"sessions":[{...}, ...]} + '\n'; with "unresponsive_loops":[N, ...] when some event loops did
// not answer (their sessions are missing from the list).
std::string sessions_json(const std::vector<SessionInfo>& sessions,
                          const std::vector<uint64_t>& unresponsive_loops = {});
// {"error":"TEXT"} + '\n'
std::string error_json(std::string_view text);
// {"ok":true, "message":"TEXT"} + '\n'
std::string ok_json(std::string_view text);

// Prometheus text exposition format 0.0.4, every metric with # HELP and # TYPE.
std::string prometheus_text(const StatusReport& report);

// portholectl's readable output from the JSON documents above. An {"error":...} document, or
// one that is not what was expected, is an error.
Result<std::string> status_table(std::string_view json);
Result<std::string> sessions_table(std::string_view json);
// The text of an {"error":...} reply; nullopt for any other reply.
std::optional<std::string> reply_error(std::string_view json);
// "kick"/"reload" replies: the message, or the error.
Result<std::string> message_text(std::string_view json);

// 3723 -> "1h02m03s", 62 -> "1m02s", 5 -> "5s"; 90061 -> "1d01h01m"
std::string format_duration(uint64_t seconds);
// 999 -> "999 B", 1536 -> "1.5 KiB", 1073741824 -> "1.0 GiB"
std::string format_bytes(uint64_t bytes);
// microseconds: 850 -> "850 us", 1250 -> "1.25 ms", 12000 -> "12 ms", 1500000 -> "1.5 s"
std::string format_us(uint64_t us);

}  // namespace porthole::control

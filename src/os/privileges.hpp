// Privileges: give up root and every capability the process does not need once it is set up.
#pragma once

#include <sys/capability.h>

#include <span>
#include <string>

#include "base/result.hpp"

namespace porthole::os {

// Reduces the process to the capabilities in `keep`:
// - `user` non-empty and running as root: switches gid, supplementary groups and uid to that user,
//   keeping the capabilities in `keep` across the switch (PR_SET_KEEPCAPS);
// - `user` empty (or already not root, e.g. systemd User= with AmbientCapabilities=): keeps the uid
//   and only reduces capabilities;
// then permitted/effective/inheritable become exactly `keep`, the ambient set is cleared, every
// other capability leaves the bounding set, and PR_SET_NO_NEW_PRIVS is set.
// A capability in `keep` the process does not hold is an error. Errors are one line
// ("drop privileges: user 'x' does not exist").
Result<void> drop_privileges(const std::string& user, std::span<const cap_value_t> keep);

// One line for the log: "uid=998(porthole) gid=998 caps=cap_net_admin".
[[nodiscard]] std::string describe_credentials();

}  // namespace porthole::os

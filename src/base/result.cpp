#include "base/result.hpp"

#include <cstring>

namespace porthole {

Error sys_error(std::string_view what, int err) {
    return Error{fmt::format("{}: {}", what, std::strerror(err)), err};
}

}  // namespace porthole

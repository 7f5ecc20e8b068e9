// ProcessMemory: how much memory this process holds, as the kernel (RSS) and the allocator (heap
// in use by live allocations, heap held from the system) see it. A leak shows as a growing
// heap_in_use; a growing RSS with a steady heap_in_use is allocator retention (fragmentation).
#pragma once

#include <cstddef>

namespace porthole {

struct ProcessMemory {
    size_t rss_bytes = 0;    // resident set (/proc/self/statm)
    size_t heap_in_use = 0;  // bytes in live malloc allocations, mmapped ones included
    size_t heap_held = 0;    // bytes malloc holds from the system (in use + free)
};

[[nodiscard]] ProcessMemory read_process_memory();

}  // namespace porthole

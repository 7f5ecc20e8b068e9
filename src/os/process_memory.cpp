#include "os/process_memory.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

namespace porthole {

ProcessMemory read_process_memory() {
    ProcessMemory m;
    if (FILE* f = std::fopen("/proc/self/statm", "re"); f != nullptr) {
        unsigned long size = 0, resident = 0;
        if (std::fscanf(f, "%lu %lu", &size, &resident) == 2)
            m.rss_bytes = resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
        std::fclose(f);
    }
    struct mallinfo2 mi = ::mallinfo2();
    m.heap_in_use = mi.uordblks + mi.hblkhd;
    m.heap_held = mi.arena + mi.hblkhd;
    return m;
}

}  // namespace porthole

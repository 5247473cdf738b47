// librados' shared library builds its table of about 2,000 configuration options in static initialisers
// that run on the main thread's stack before main(), in frames of about a megabyte. Those stack pages would
// stay resident for the life of the process (1 MiB of every gateway, ~10 % of its own memory when idle).
// This constructor runs after the shared libraries' initialisers (the loader runs a program's own last)
// and gives the pages below its frame back to the kernel; the stack still grows on demand as before.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/// Space kept below this frame, for the rest of start-up.
#define MGW_STACK_KEEP (64 * 1024)

/// The bounds of the main thread's stack mapping, from /proc/self/maps; 0 and 0 if not found.
static void mgw_stack_bounds(uintptr_t *low, uintptr_t *high) {
    char buffer[16384];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    *low = 0;
    *high = 0;
    if (fd < 0) return;
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buffer + used, sizeof(buffer) - 1 - used);
        if (n <= 0) break;
        used += (size_t)n;
        buffer[used] = '\0';
        char *line = buffer;
        char *end;
        while ((end = strchr(line, '\n')) != NULL) {
            *end = '\0';
            if (strstr(line, "[stack]") != NULL) {
                char *dash;
                *low = (uintptr_t)strtoull(line, &dash, 16);
                *high = (uintptr_t)strtoull(dash + 1, NULL, 16);
            }
            line = end + 1;
        }
        used = strlen(line);
        memmove(buffer, line, used);
    }
    close(fd);
}

__attribute__((constructor)) static void mgw_release_startup_stack(void) {
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t low, high;
    mgw_stack_bounds(&low, &high);
    // only on the main thread's stack (where the loader runs constructors), and only below this frame
    if (low == 0 || here >= high || here < low + MGW_STACK_KEEP) return;
    uintptr_t end = (here - MGW_STACK_KEEP) & ~(page - 1);
    if (end > low) madvise((void *)low, end - low, MADV_DONTNEED);
}

/* wal_fd.h - for the tests that replace fdatasync(2) (test_store.c, the e2e shim
 * tests/e2e/shim/failsync.c): whether fd is open on a SQLite WAL, a file named *-wal. Header
 * only, so that the shim needs nothing else. */
#ifndef TASSA_TESTS_WAL_FD_H
#define TASSA_TESTS_WAL_FD_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static inline bool wal_fd(int fd)
{
    char link[64], target[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    return n > 4 && !memcmp(target + n - 4, "-wal", 4);
}

#endif

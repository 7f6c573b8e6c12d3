/* failsync.c - an LD_PRELOAD shim for the end-to-end tests: once the file named by
 * TASSA_TEST_FAILSYNC exists, every fdatasync(2) of a SQLite WAL (a file named *-wal) fails with
 * EIO, as a failing disk's would; every other call is the real one. Never part of tassa. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int fdatasync(int fd)
{
    const char *flag = getenv("TASSA_TEST_FAILSYNC");
    if (flag && access(flag, F_OK) == 0) {
        char link[64], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 4 && !memcmp(target + n - 4, "-wal", 4)) {
            errno = EIO;
            return -1;
        }
    }
    return (int)syscall(SYS_fdatasync, fd);
}

/* failsync.c - an LD_PRELOAD shim for the end-to-end tests: once the file named by
 * TASSA_TEST_FAILSYNC exists, every fdatasync(2) of a SQLite WAL (a file named *-wal) fails with
 * EIO, as a failing disk's would; every other call is the real one. Never part of tassa. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../wal_fd.h"

int fdatasync(int fd)
{
    const char *flag = getenv("TASSA_TEST_FAILSYNC");
    if (flag && access(flag, F_OK) == 0 && wal_fd(fd)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

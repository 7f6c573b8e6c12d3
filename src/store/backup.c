/* backup.c - a consistent copy of a live data file with SQLite's online backup API.
 *
 * The copy is made in one step (sqlite3_backup_step(-1)), i.e. inside one read transaction
 * of a separate read-only connection: in WAL mode the server keeps writing meanwhile, and the
 * copy is the database as of the last commit before the step began, so it holds every write
 * acknowledged by then (tassa acknowledges only after the commit). The copy is written to
 * FILE.tmp, checked, synced and renamed, so FILE is either absent or complete.
 *
 * Layer: store.
 */
#include "store/store.h"
#include "store/store_impl.h"

#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsyncs path (a file or a directory). */
static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

tassa_err store_backup(const char *src, const char *dst, bool force, errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    sqlite3 *from = NULL, *to = NULL;
    char tmp[PATH_MAX], real_src[PATH_MAX], real_dst[PATH_MAX];
    struct stat st;
    if (pg_is_url(src)) /* never echo the URL: it may hold a password */
        return err_set(em, TASSA_EINVAL, "a PostgreSQL store is backed up with pg_dump");
    if (stat(src, &st) || !S_ISREG(st.st_mode))
        return err_set(em, TASSA_ENOTFOUND, "no data file at %s", src);
    if (realpath(src, real_src) && realpath(dst, real_dst) && !strcmp(real_src, real_dst))
        return err_set(em, TASSA_EINVAL, "the backup must not be the data file itself");
    if (!force && !access(dst, F_OK))
        return err_set(em, TASSA_ECONFLICT, "%s exists (add --force to replace it)", dst);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= (int)sizeof tmp)
        return err_set(em, TASSA_EINVAL, "backup path too long");
    unlink(tmp);
    if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        err = err_set(em, TASSA_ESTORE, "cannot open %s: %s", src,
                      from ? sqlite3_errmsg(from) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(from, 10000);
    if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        err = err_set(em, TASSA_ESTORE, "cannot create %s: %s", tmp,
                      to ? sqlite3_errmsg(to) : "out of memory");
        goto out;
    }
    sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
    if (!b) {
        err = err_set(em, TASSA_ESTORE, "cannot start the backup: %s", sqlite3_errmsg(to));
        goto out;
    }
    int rc;
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(50);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        err = err_set(em, TASSA_ESTORE, "backup failed: %s", sqlite3_errstr(rc));
        goto out;
    }
    /* One file, no -wal beside it: a copy that can be moved or restored on its own. */
    sqlite3_stmt *q = NULL;
    if (sqlite3_exec(to, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(to, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(q, 0), "ok")) {
        sqlite3_finalize(q);
        err = err_set(em, TASSA_ESTORE, "the copy failed its check: %s", sqlite3_errmsg(to));
        goto out;
    }
    sqlite3_finalize(q);
    sqlite3_close(to);
    to = NULL;
    if (sync_path(tmp) || rename(tmp, dst)) {
        err = err_set(em, TASSA_ESTORE, "cannot write %s", dst);
        goto out;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    sync_path(slash ? dir : ".");
out:
    if (to)
        sqlite3_close(to);
    if (from)
        sqlite3_close(from);
    if (err)
        unlink(tmp);
    return err;
}

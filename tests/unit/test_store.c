/* test_store.c - the store's portable query layer on a real SQLite data file, and the same
 * cases on a real PostgreSQL database when TASSA_TEST_PG_URL is set (ctest's
 * unit_test_store_pg sets it through tools/pg_scratch.sh, which starts a throw-away cluster). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "../wal_fd.h"

typedef struct {
    char path[512]; /* the data file, or the PostgreSQL URL */
    bool pg;
    store_t *s;
} fx_t;

/* The PostgreSQL database of this run, or NULL (SQLite). */
static const char *pg_url;

static const char *PG_SCHEMA = "DROP TABLE IF EXISTS items; CREATE TABLE items (id TEXT PRIMARY "
                               "KEY, n BIGINT, note TEXT, raw BYTEA, score DOUBLE PRECISION);"
                               "CREATE INDEX IF NOT EXISTS items_n ON items (n);";

static const char *SCHEMA = "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, n INTEGER, "
                            "note TEXT, raw BLOB, score REAL);"
                            "CREATE INDEX IF NOT EXISTS items_n ON items (n);";

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (pg_url) {
        f->pg = true;
        snprintf(f->path, sizeof f->path, "%s", pg_url);
    } else {
        snprintf(f->path, sizeof f->path, "/tmp/tassa-store-XXXXXX");
        int fd = mkstemp(f->path);
        if (fd < 0)
            return -1;
        close(fd);
    }
    errmsg_t em = {{0}};
    f->s = store_open(f->path, &em);
    if (!f->s)
        fprintf(stderr, "store_open: %s\n", em.text);
    if (!f->s || store_schema(f->s, f->pg ? PG_SCHEMA : SCHEMA, &em) != TASSA_OK)
        return -1;
    *state = f;
    return 0;
}

/* The WAL syncs of this process (see fdatasync below). */
static atomic_int wal_syncs;
static atomic_bool fail_wal_syncs; /* set: every WAL sync fails with EIO, as a failing disk's */
static atomic_bool hold_wal_syncs; /* set: a WAL sync waits until it is cleared (a slow disk) */
static atomic_int held_wal_syncs;  /* WAL syncs waiting in hold_wal_syncs now */

static int teardown(void **state)
{
    fx_t *f = *state;
    atomic_store(&hold_wal_syncs, false); /* a failed test may have left a sync held */
    atomic_store(&fail_wal_syncs, false);
    store_close(f->s);
    if (f->pg) {
        free(f);
        return 0;
    }
    char side[600];
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    free(f);
    return 0;
}

/* Inserts one row (lock held); returns what store_step gave. */
static int insert(store_t *s, const char *id, int64_t n, const char *note)
{
    store_stmt_t *st = store_prepare(s, "INSERT INTO items (id, n, note) VALUES (?, ?, ?)");
    assert_non_null(st);
    assert_int_equal(store_bind_text(st, 1, id), TASSA_OK);
    assert_int_equal(store_bind_int64(st, 2, n), TASSA_OK);
    assert_int_equal(store_bind_text(st, 3, note), TASSA_OK);
    int rc = store_step(st);
    store_release(s, st);
    return rc;
}

/* The number of rows in items (lock held). */
static int64_t count_items(store_t *s)
{
    store_stmt_t *st = store_prepare(s, "SELECT count(*) FROM items");
    assert_non_null(st);
    assert_int_equal(store_step(st), STORE_ROW);
    int64_t n = store_col_int64(st, 0);
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(s, st);
    return n;
}

/* Closes f's store and opens its file again. */
static void reopen(fx_t *f)
{
    store_close(f->s);
    errmsg_t em = {{0}};
    f->s = store_open(f->path, &em);
    assert_non_null(f->s);
}

/* Every bound type comes back with its type: text, integer, NULL, blob, real. */
static void binds_and_columns_round_trip(void **state)
{
    fx_t *f = *state;
    const unsigned char raw[] = {0, 1, 2, 0xff, 0};
    store_lock(f->s);
    store_stmt_t *st =
        store_prepare(f->s, "INSERT INTO items (id, n, note, raw, score) VALUES (?, ?, ?, ?, 2.5)");
    assert_non_null(st);
    assert_int_equal(store_bind_text(st, 1, "a"), TASSA_OK);
    assert_int_equal(store_bind_int64(st, 2, INT64_C(1) << 40), TASSA_OK);
    assert_int_equal(store_bind_null(st, 3), TASSA_OK);
    assert_int_equal(store_bind_blob(st, 4, raw, sizeof raw), TASSA_OK);
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    assert_int_equal(store_changes(f->s), 1);

    st = store_prepare(f->s, "SELECT id, n, note, raw, score, length(raw) FROM items WHERE id = ?");
    assert_non_null(st);
    store_bind_text(st, 1, "a");
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "a");
    assert_int_equal(store_col_bytes(st, 0), 1);
    assert_false(store_col_is_null(st, 0));
    assert_true(store_col_int64(st, 1) == INT64_C(1) << 40);
    assert_true(store_col_is_null(st, 2));
    assert_null(store_col_text(st, 2));
    assert_int_equal(store_col_int64(st, 2), 0);
    assert_int_equal(store_col_bytes(st, 2), 0);
    assert_int_equal(store_col_bytes(st, 3), sizeof raw);
    assert_memory_equal(store_col_blob(st, 3), raw, sizeof raw);
    assert_true(store_col_double(st, 4) == 2.5);
    assert_int_equal(store_col_int64(st, 5), sizeof raw);
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* store_bind_text(NULL) binds SQL NULL; store_bind_text_copy keeps its own copy. */
static void text_binds_borrow_or_copy(void **state)
{
    fx_t *f = *state;
    char buf[16];
    store_lock(f->s);
    store_stmt_t *st = store_prepare(f->s, "INSERT INTO items (id, note) VALUES (?, ?)");
    assert_non_null(st);
    snprintf(buf, sizeof buf, "first");
    assert_int_equal(store_bind_text_copy(st, 1, buf), TASSA_OK);
    assert_int_equal(store_bind_text(st, 2, NULL), TASSA_OK);
    snprintf(buf, sizeof buf, "changed");
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    st = store_prepare(f->s, "SELECT id, note IS NULL FROM items");
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "first");
    assert_int_equal(store_col_int64(st, 1), 1);
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* A refused constraint is TASSA_ECONFLICT and changes nothing; store_changes counts rows. */
static void constraint_and_changes(void **state)
{
    fx_t *f = *state;
    store_lock(f->s);
    assert_int_equal(insert(f->s, "x", 1, "one"), STORE_DONE);
    assert_int_equal(insert(f->s, "y", 1, "two"), STORE_DONE);
    assert_int_equal(insert(f->s, "z", 2, "three"), STORE_DONE);
    assert_int_equal(insert(f->s, "x", 9, "dup"), TASSA_ECONFLICT);
    assert_int_equal(count_items(f->s), 3);

    store_stmt_t *st = store_prepare(f->s, "UPDATE items SET note = 'n' WHERE n = ?");
    assert_non_null(st);
    store_bind_int64(st, 1, 1);
    assert_int_equal(store_step(st), STORE_DONE);
    assert_int_equal(store_changes(f->s), 2);
    /* reset: the same statement runs again with a new bind */
    store_reset(st);
    store_bind_int64(st, 1, 7);
    assert_int_equal(store_step(st), STORE_DONE);
    assert_int_equal(store_changes(f->s), 0);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    /* the refused write undid only itself: the group transaction committed the rest */
    store_lock(f->s);
    assert_int_equal(count_items(f->s), 3);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* ?N names a parameter more than once; a ? inside quotes is text, not a parameter. */
static void numbered_and_quoted_placeholders(void **state)
{
    fx_t *f = *state;
    store_lock(f->s);
    store_stmt_t *st = store_prepare(f->s, "INSERT INTO items (id, n, note) VALUES (?1, ?2, ?1)");
    assert_non_null(st);
    assert_int_equal(store_bind_text(st, 1, "twice"), TASSA_OK);
    assert_int_equal(store_bind_int64(st, 2, -7), TASSA_OK);
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    st = store_prepare(f->s, "SELECT note, n, '?' FROM items WHERE id = ? AND note <> 'a?b'");
    assert_non_null(st);
    assert_int_equal(store_bind_text(st, 1, "twice"), TASSA_OK);
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "twice");
    assert_true(store_col_int64(st, 1) == -7);
    assert_string_equal(store_col_text(st, 2), "?");
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* Several threads writing at once: every write is committed (group commit) and counted. */
typedef struct {
    store_t *s;
    int base;
    int failures;
} writer_t;

static void *write_rows(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d-%d", w->base, i);
        store_lock(w->s);
        store_stmt_t *st = store_prepare(w->s, "INSERT INTO items (id, n) VALUES (?, ?)");
        if (!st || store_bind_text_copy(st, 1, id) || store_bind_int64(st, 2, i) ||
            store_step(st) != STORE_DONE)
            w->failures++;
        store_release(w->s, st);
        if (store_unlock(w->s) != TASSA_OK)
            w->failures++;
    }
    return NULL;
}

static void concurrent_writers_all_commit(void **state)
{
    fx_t *f = *state;
    pthread_t t[4];
    writer_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_t){.s = f->s, .base = i};
        assert_int_equal(pthread_create(&t[i], NULL, write_rows, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    reopen(f); /* the rows are durable, not only in the connection */
    store_lock(f->s);
    assert_int_equal(count_items(f->s), 80);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* An unreachable PostgreSQL database fails store_open with one line naming the host and port,
 * never the password. Needs no server. */
static void unreachable_database_is_one_clear_line(void **state)
{
    (void)state;
    errmsg_t em = {{0}};
    store_t *s = store_open("postgres://tassa:s3cret-pw@127.0.0.1:1/tassa?connect_timeout=5", &em);
    assert_null(s);
    assert_non_null(strstr(em.text, "PostgreSQL"));
    assert_non_null(strstr(em.text, "127.0.0.1"));
    assert_non_null(strstr(em.text, "port 1"));
    assert_null(strstr(em.text, "s3cret-pw"));
    assert_null(strchr(em.text, '\n'));
    /* no data file named after the URL, and no claim on one */
    int claim = store_claim("postgres://tassa@127.0.0.1:1/tassa", &em);
    assert_true(claim >= 0);
    store_claim_release(claim);
    assert_int_equal(access("postgres://tassa@127.0.0.1:1/tassa.lock", F_OK), -1);
}

/* store_where names the data without the password: the path, or user@host:port/db. */
static void where_never_shows_the_password(void **state)
{
    fx_t *f = *state;
    if (!f->pg) {
        assert_string_equal(store_where(f->s), f->path);
        return;
    }
    const char *at = strchr(f->path + strlen("postgres://"), '@'); /* postgres://tassa@... */
    assert_non_null(at);
    char url[600];
    snprintf(url, sizeof url, "%.*s:pw-h1dden%s", (int)(at - f->path), f->path, at);
    errmsg_t em = {{0}};
    store_t *s = store_open(url, &em); /* trust authentication ignores the password */
    assert_non_null(s);
    assert_null(strstr(store_where(s), "pw-h1dden"));
    assert_non_null(strstr(store_where(s), "tassa@127.0.0.1:"));
    store_close(s);
}

/* Runs "$TASSA_TEST_PG_SCRATCH VERB $TASSA_TEST_PG_DIR" (stop or restart the server). */
static int scratch(const char *verb)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s'", getenv("TASSA_TEST_PG_SCRATCH"), verb,
             getenv("TASSA_TEST_PG_DIR"));
    return system(cmd);
}

/* A lost connection (the server stops) answers TASSA_ESTORE, never a hang or a silent success;
 * once the server is back the store reconnects by itself and nothing committed is lost. */
static void lost_connection_fails_then_reconnects(void **state)
{
    fx_t *f = *state;
    if (!f->pg)
        return; /* PostgreSQL only: a SQLite file cannot go away like this */
    store_lock(f->s);
    assert_int_equal(insert(f->s, "before", 1, NULL), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    assert_int_equal(scratch("stop"), 0);

    store_lock(f->s);
    store_stmt_t *st = store_prepare(f->s, "INSERT INTO items (id, n) VALUES ('during', 2)");
    int rc = st ? store_step(st) : TASSA_ESTORE;
    store_release(f->s, st);
    tassa_err durable = store_unlock(f->s);
    assert_true(rc == TASSA_ESTORE || durable == TASSA_ESTORE);

    assert_int_equal(scratch("restart"), 0);
    bool back = false;
    for (int i = 0; i < 200 && !back; i++) { /* back-off is at most 8 s */
        store_lock(f->s);
        back = store_exec(f->s, "SELECT 1", NULL) == TASSA_OK;
        store_unlock(f->s);
        if (!back)
            usleep(100 * 1000);
    }
    assert_true(back);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "after", 3, NULL), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_lock(f->s);
    st = store_prepare(f->s, "SELECT id FROM items ORDER BY n");
    assert_non_null(st);
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "before");
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "after");
    assert_int_equal(store_step(st), STORE_DONE);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* Bad SQL fails cleanly: NULL from store_prepare, TASSA_ESTORE with a detail from store_exec,
 * TASSA_ESTORE for a bind out of range. */
static void failures_are_reported(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    store_lock(f->s);
    assert_null(store_prepare(f->s, "SELEC nonsense"));
    assert_int_equal(store_exec(f->s, "SELECT * FROM no_such_table", &em), TASSA_ESTORE);
    assert_non_null(strstr(em.text, "no_such_table"));
    assert_non_null(strstr(store_errmsg(f->s), "no_such_table"));
    assert_int_equal(store_exec(f->s, "SELECT 1; SELECT 2", NULL), TASSA_OK);
    store_stmt_t *st = store_prepare(f->s, "SELECT ?");
    assert_non_null(st);
    assert_int_equal(store_bind_int64(st, 2, 1), TASSA_ESTORE);
    store_release(f->s, st);
    store_release(f->s, NULL);
    store_reset(NULL);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* A released statement is kept and handed out again; one still in use is not shared. */
static void statements_are_cached_not_shared(void **state)
{
    fx_t *f = *state;
    const char *sql = "SELECT n FROM items WHERE id = ?";
    store_lock(f->s);
    assert_int_equal(insert(f->s, "k", 5, NULL), STORE_DONE);
    store_stmt_t *a = store_prepare(f->s, sql);
    assert_non_null(a);
    store_bind_text(a, 1, "k");
    assert_int_equal(store_step(a), STORE_ROW);
    store_stmt_t *b = store_prepare(f->s, sql); /* a is still in use */
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    store_bind_text(b, 1, "k");
    assert_int_equal(store_step(b), STORE_ROW);
    assert_int_equal(store_col_int64(b, 0), 5);
    store_release(f->s, b);
    assert_int_equal(store_col_int64(a, 0), 5);
    store_release(f->s, a);
    store_stmt_t *c = store_prepare(f->s, sql);
    if (!f->pg) /* PostgreSQL caches the server-side statement, not the handle */
        assert_ptr_equal(c, a);
    /* it comes back reset, with its binds cleared */
    assert_int_equal(store_step(c), STORE_DONE);
    store_release(f->s, c);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* Rows written under the lock are in the file once store_unlock returns; a rolled back
 * operation leaves nothing. */
static void writes_survive_reopening(void **state)
{
    fx_t *f = *state;
    store_lock(f->s);
    assert_int_equal(insert(f->s, "kept", 1, "yes"), STORE_DONE);
    assert_int_equal(store_begin(f->s), TASSA_OK);
    assert_int_equal(insert(f->s, "undone", 2, "no"), STORE_DONE);
    store_rollback(f->s);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    reopen(f);
    store_lock(f->s);
    assert_int_equal(count_items(f->s), 1);
    store_stmt_t *st = store_prepare(f->s, "SELECT note FROM items WHERE id = 'kept'");
    assert_int_equal(store_step(st), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "yes");
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* Sleeps ms milliseconds. */
static void pause_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* fdatasync(2) calls on a SQLite WAL (a file named *-wal) made in this process. This
 * definition takes the place of libc's for the whole test binary (the store's calls and
 * SQLite's alike) and does the real call itself; the counters and switches are above. */

int fdatasync(int fd)
{
    if (wal_fd(fd)) {
        atomic_fetch_add(&held_wal_syncs, 1);
        while (atomic_load(&hold_wal_syncs))
            usleep(1000);
        atomic_fetch_sub(&held_wal_syncs, 1);
        if (atomic_load(&fail_wal_syncs)) {
            errno = EIO;
            return -1;
        }
        atomic_fetch_add(&wal_syncs, 1);
    }
    return (int)syscall(SYS_fdatasync, fd);
}

/* What store_unlock_async's done saw of the WAL syncs. */
typedef struct {
    atomic_int syncs_at_done;
    atomic_bool done;
} sync_seen_t;

static void note_syncs(void *ctx, tassa_err err)
{
    sync_seen_t *seen = ctx;
    assert_int_equal(err, TASSA_OK);
    atomic_store(&seen->syncs_at_done, atomic_load(&wal_syncs));
    atomic_store(&seen->done, true);
}

/* store_unlock_async's done for a write that must fail. */
static void note_failure(void *ctx, tassa_err err)
{
    sync_seen_t *seen = ctx;
    assert_int_equal(err, TASSA_ESTORE);
    atomic_store(&seen->done, true);
}

/* Waits (at most 5 s) until seen's done has run. */
static void wait_seen(sync_seen_t *seen)
{
    for (int i = 0; i < 500 && !atomic_load(&seen->done); i++)
        pause_ms(10);
    assert_true(atomic_load(&seen->done));
}

/* Inserts id with n in a section ended by store_unlock_async with done (note_syncs or
 * note_failure) and seen, and waits (at most 5 s) until done has run. */
static void insert_async(store_t *s, const char *id, int64_t n, store_done_fn done,
                         sync_seen_t *seen)
{
    store_waiter_t w;
    store_lock(s);
    assert_int_equal(insert(s, id, n, "async"), STORE_DONE);
    store_unlock_async(s, &w, done, seen);
    wait_seen(seen);
}

/* SQLite: a write is acknowledged (store_unlock returns, store_unlock_async's done runs) only
 * after the WAL holding it was synced to disk, though the commit's fsync runs outside the
 * store lock. A kill -9 cannot tell (the page cache survives it); a power cut could. */
static void acknowledged_writes_are_synced(void **state)
{
    fx_t *f = *state;
    if (f->pg)
        skip(); /* PostgreSQL's COMMIT returns once its own WAL is flushed */
    int before = atomic_load(&wal_syncs);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "synced", 1, "x"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    assert_true(atomic_load(&wal_syncs) > before);

    sync_seen_t seen = {0};
    before = atomic_load(&wal_syncs);
    insert_async(f->s, "synced-async", 2, note_syncs, &seen);
    assert_true(atomic_load(&seen.syncs_at_done) > before);
}

/* A read-only section of another thread and what its store_unlock returned. */
typedef struct {
    store_t *s;
    int64_t count;
    tassa_err err;
    atomic_bool done;
} reader_t;

static void *read_count(void *arg)
{
    reader_t *r = arg;
    store_lock(r->s);
    r->count = count_items(r->s);
    r->err = store_unlock(r->s);
    atomic_store(&r->done, true);
    return NULL;
}

/* Inserts id in a section of a thread of its own, whose store_unlock then waits for the WAL
 * sync that hold_wal_syncs holds; returns once that sync has begun. */
static void *insert_blocking(void *arg)
{
    static atomic_int n;
    char id[32];
    snprintf(id, sizeof id, "held-%d", atomic_fetch_add(&n, 1));
    store_t *s = arg;
    store_lock(s);
    insert(s, id, 1, "x");
    store_unlock(s);
    return NULL;
}

static void start_held_write(store_t *s, pthread_t *writer)
{
    atomic_store(&hold_wal_syncs, true);
    assert_int_equal(pthread_create(writer, NULL, insert_blocking, s), 0);
    for (int i = 0; i < 500 && atomic_load(&held_wal_syncs) == 0; i++)
        pause_ms(10);
    assert_int_equal(atomic_load(&held_wal_syncs), 1);
}

/* SQLite: a section that only reads, while the last batch is committed but its WAL sync still
 * runs (outside the lock), may read that batch: its store_unlock (and store_unlock_async's
 * done) waits for the sync, so nothing it answers can be lost to a power cut; when the sync
 * fails, the reader hears so. Before, it returned at once, with rows not yet on disk. */
static void a_read_of_an_unsynced_batch_waits_for_its_sync(void **state)
{
    fx_t *f = *state;
    if (f->pg)
        skip(); /* PostgreSQL's COMMIT returns once its own WAL is flushed */
    for (int failing = 0; failing < 2; failing++) {
        pthread_t writer, rt;
        start_held_write(f->s, &writer);
        atomic_store(&fail_wal_syncs, failing);
        reader_t r = {.s = f->s, .count = -1};
        assert_int_equal(pthread_create(&rt, NULL, read_count, &r), 0);
        sync_seen_t seen = {0};
        store_waiter_t w;
        store_lock(f->s);
        assert_int_equal(count_items(f->s), failing + 1); /* the held row is visible */
        store_unlock_async(f->s, &w, failing ? note_failure : note_syncs, &seen);
        pause_ms(100);
        assert_false(atomic_load(&r.done)); /* the reader waits for the sync */
        assert_false(atomic_load(&seen.done));
        atomic_store(&hold_wal_syncs, false);
        pthread_join(rt, NULL);
        pthread_join(writer, NULL);
        wait_seen(&seen);
        assert_int_equal(r.count, failing + 1);
        assert_int_equal(r.err, failing ? TASSA_ESTORE : TASSA_OK);
        atomic_store(&fail_wal_syncs, false);
    }
}

/* SQLite: a failed WAL sync fails its write, and every later write too (the store stops
 * making changes durable, as PostgreSQL does), even once the disk works again; reads go on,
 * and a store opened again takes writes. */
static void a_failed_wal_sync_refuses_writes_until_reopened(void **state)
{
    fx_t *f = *state;
    if (f->pg)
        skip();
    atomic_store(&fail_wal_syncs, true);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "unsynced", 1, "x"), STORE_DONE);
    tassa_err first = store_unlock(f->s);
    atomic_store(&fail_wal_syncs, false);
    assert_int_equal(first, TASSA_ESTORE);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "after", 2, "y"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_ESTORE);
    sync_seen_t seen = {0};
    insert_async(f->s, "after-async", 3, note_failure, &seen);
    store_lock(f->s); /* reads still answer */
    assert_true(count_items(f->s) >= 0);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    reopen(f);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "reopened", 4, "w"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* Deferred durability (store_defer_begin): store_unlock returns at once, and the done of
 * store_defer_end runs once every write made meanwhile is durable: on SQLite after a WAL sync
 * that followed them. A later section of the same thread reads the earlier one's rows. */
static void deferred_writes_are_acknowledged_once_durable(void **state)
{
    fx_t *f = *state;
    int before = atomic_load(&wal_syncs);
    sync_seen_t seen = {0};
    store_waiter_t w;
    store_defer_begin(f->s);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "deferred-1", 1, "x"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_lock(f->s);
    assert_int_equal(store_begin(f->s), TASSA_OK);
    assert_int_equal(count_items(f->s), 1);
    assert_int_equal(insert(f->s, "deferred-2", 2, "y"), STORE_DONE);
    assert_int_equal(store_commit(f->s), TASSA_OK);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_defer_end(f->s, &w, note_syncs, &seen);
    wait_seen(&seen);
    if (!f->pg)
        assert_true(atomic_load(&seen.syncs_at_done) > before);
    /* the thread waits as usual again */
    store_lock(f->s);
    assert_int_equal(insert(f->s, "after", 3, "z"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_lock(f->s);
    assert_int_equal(count_items(f->s), 3);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

/* SQLite: a deferred write whose sync fails is reported by store_defer_end's done, though its
 * store_unlock answered TASSA_OK (it did not wait), and the thread's next transaction is
 * refused (store_begin) rather than made after a lost one. */
static void a_lost_deferred_write_is_reported_and_stops_the_next(void **state)
{
    fx_t *f = *state;
    if (f->pg)
        skip();
    sync_seen_t seen = {0};
    store_waiter_t w;
    atomic_store(&fail_wal_syncs, true);
    store_defer_begin(f->s);
    store_lock(f->s);
    assert_int_equal(insert(f->s, "lost", 1, "x"), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK); /* not waited for */
    store_lock(f->s);                               /* waits for the first: it failed */
    tassa_err begun = store_begin(f->s);
    if (!begun)
        store_rollback(f->s);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_defer_end(f->s, &w, note_failure, &seen);
    atomic_store(&fail_wal_syncs, false);
    assert_int_equal(begun, TASSA_ESTORE);
    wait_seen(&seen);
    reopen(f); /* the store refuses writes until opened again */
}

/* The size of the file at path in bytes (0 when absent). */
static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* SQLite: checkpoints still happen now that they run on their own connection and thread: a
 * few MiB written in many commits reach the data file while the store stays open, and the
 * WAL is reused rather than growing with everything ever written. */
static void checkpoints_move_the_wal_into_the_data_file(void **state)
{
    fx_t *f = *state;
    if (f->pg)
        skip();
    char note[8192];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    long long start = file_size(f->path);
    for (int i = 0; i < 2000; i++) { /* 16 MiB of notes in 2000 commits */
        char id[32];
        snprintf(id, sizeof id, "big-%d", i);
        store_lock(f->s);
        assert_int_equal(insert(f->s, id, i, note), STORE_DONE);
        assert_int_equal(store_unlock(f->s), TASSA_OK);
    }
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    for (int i = 0; i < 500 && file_size(f->path) - start < 8 * 1024 * 1024; i++)
        pause_ms(10);
    assert_true(file_size(f->path) - start >= 8 * 1024 * 1024);
    assert_true(file_size(wal) < 8 * 1024 * 1024); /* about 4 MiB here; 18 when never reused */
}

/* What store_unlock_async's done saw, for async_unlock_settles_after_commit. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int calls, failures;
    bool inline_call; /* a call ran on the thread that unlocked */
    pthread_t unlocker;
    store_waiter_t w[40];
} async_log_t;

static void async_done(void *ctx, tassa_err err)
{
    async_log_t *a = ctx;
    pthread_mutex_lock(&a->m);
    a->calls++;
    a->failures += err != TASSA_OK;
    a->inline_call |= pthread_equal(pthread_self(), a->unlocker) != 0;
    pthread_cond_broadcast(&a->c);
    pthread_mutex_unlock(&a->m);
}

/* store_unlock_async: a read-only section settles at once on the caller's thread; every write
 * section's done runs exactly once, and by then its row is committed (another connection to
 * the same data sees it). */
static void async_unlock_settles_after_commit(void **state)
{
    fx_t *f = *state;
    async_log_t a = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
    a.unlocker = pthread_self();

    store_lock(f->s);
    assert_int_equal(count_items(f->s), 0);
    store_unlock_async(f->s, &a.w[0], async_done, &a);
    assert_int_equal(a.calls, 1); /* nothing to wait for: ran before returning */
    assert_true(a.inline_call);
    a.calls = 0;
    a.inline_call = false;

    int n = (int)(sizeof a.w / sizeof *a.w);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i);
        store_lock(f->s);
        assert_int_equal(insert(f->s, id, i, "async"), STORE_DONE);
        store_unlock_async(f->s, &a.w[i], async_done, &a);
    }
    pthread_mutex_lock(&a.m);
    while (a.calls < n)
        pthread_cond_wait(&a.c, &a.m);
    pthread_mutex_unlock(&a.m);
    assert_int_equal(a.failures, 0);

    errmsg_t em = {{0}};
    store_t *other = store_open(f->path, &em);
    assert_non_null(other);
    store_lock(other);
    assert_int_equal(count_items(other), n);
    assert_int_equal(store_unlock(other), TASSA_OK);
    store_close(other);
    assert_int_equal(a.calls, n);
}

/* A lease belongs to one process at a time, and passes to another when its holder's session
 * ends (here: the store is closed, as when a node dies) within a few seconds. SQLite: the file
 * claim is the lease, always held. */
static void leases_are_exclusive_and_pass_on(void **state)
{
    fx_t *f = *state;
    if (!f->pg) {
        assert_true(store_lease_hold(f->s, "workspace"));
        return;
    }
    errmsg_t em = {{0}};
    store_t *other = store_open(f->path, &em);
    assert_non_null(other);
    bool first = false;
    for (int i = 0; i < 50 && !first; i++) { /* the session thread tries once a second */
        first = store_lease_hold(f->s, "workspace");
        if (!first)
            pause_ms(100);
    }
    assert_true(first);
    for (int i = 0; i < 15; i++) { /* 1.5 s: the other node tries and fails */
        assert_false(store_lease_hold(other, "workspace"));
        pause_ms(100);
    }
    const char *names[4];
    char buf[128];
    assert_int_equal(store_leases(f->s, names, 4, buf, sizeof buf), 1);
    assert_string_equal(names[0], "workspace");
    assert_int_equal(store_leases(other, names, 4, buf, sizeof buf), 0);
    store_close(f->s); /* the holder goes away */
    f->s = NULL;
    bool taken = false;
    for (int i = 0; i < 50 && !taken; i++) {
        taken = store_lease_hold(other, "workspace");
        if (!taken)
            pause_ms(100);
    }
    assert_true(taken);
    f->s = other;
}

typedef struct {
    pthread_mutex_t mu;
    char got[8][32];
    int n, resets;
} heard_t;

static void hear(void *ctx, const char *payload)
{
    heard_t *h = ctx;
    pthread_mutex_lock(&h->mu);
    if (!payload)
        h->resets++;
    else if (h->n < 8)
        snprintf(h->got[h->n++], sizeof h->got[0], "%s", payload);
    pthread_mutex_unlock(&h->mu);
}

static int heard(heard_t *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* A notification reaches another process when its transaction commits, in commit order, and
 * never when the operation that sent it was rolled back. SQLite: nobody else to tell, nothing
 * is called. */
static void notifications_follow_commits(void **state)
{
    fx_t *f = *state;
    heard_t h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    errmsg_t em = {{0}};
    store_t *other = f->pg ? store_open(f->path, &em) : f->s;
    assert_non_null(other);
    assert_int_equal(store_listen(other, "tassa_test", hear, &h), TASSA_OK);
    assert_int_equal(store_listen(other, "bad channel!", hear, &h),
                     f->pg ? TASSA_EINVAL : TASSA_OK);
    for (int i = 0; f->pg && i < 100; i++) { /* listening starts with a reset */
        pthread_mutex_lock(&h.mu);
        int r = h.resets;
        pthread_mutex_unlock(&h.mu);
        if (r)
            break;
        pause_ms(50);
    }
    store_lock(f->s);
    assert_int_equal(store_begin(f->s), TASSA_OK);
    assert_int_equal(store_notify(f->s, "tassa_test", "undone"), TASSA_OK);
    store_rollback(f->s);
    assert_int_equal(store_notify(f->s, "tassa_test", "one"), TASSA_OK);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    store_lock(f->s);
    assert_int_equal(store_notify(f->s, "tassa_test", "two"), TASSA_OK);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    for (int i = 0; f->pg && i < 100 && heard(&h) < 2; i++)
        pause_ms(50);
    store_unlisten(other, hear, &h);
    assert_int_equal(heard(&h), f->pg ? 2 : 0);
    if (f->pg) {
        assert_string_equal(h.got[0], "one");
        assert_string_equal(h.got[1], "two");
        store_close(other);
    }
}

typedef struct {
    store_t *s;
    int rounds;
    int failed;
} rmw_t;

/* Reads n of row "c", then writes n + 1, in one critical section. */
static void *read_modify_write(void *arg)
{
    rmw_t *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        store_lock(w->s);
        store_stmt_t *st = store_prepare(w->s, "SELECT n FROM items WHERE id = 'c'");
        int64_t n = st && store_step(st) == STORE_ROW ? store_col_int64(st, 0) : -1;
        store_release(w->s, st);
        st = store_prepare(w->s, "UPDATE items SET n = ? WHERE id = 'c'");
        store_bind_int64(st, 1, n + 1);
        if (n < 0 || store_step(st) != STORE_DONE)
            w->failed++;
        store_release(w->s, st);
        if (store_unlock(w->s))
            w->failed++;
    }
    return NULL;
}

/* Two processes' critical sections never interleave: read-modify-write cycles from two stores
 * on one database lose no update (under PostgreSQL's READ COMMITTED alone they would). */
static void stores_on_one_database_serialize(void **state)
{
    fx_t *f = *state;
    if (!f->pg)
        return; /* one process per SQLite file */
    store_lock(f->s);
    assert_int_equal(insert(f->s, "c", 0, NULL), STORE_DONE);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
    errmsg_t em = {{0}};
    store_t *other = store_open(f->path, &em);
    assert_non_null(other);
    rmw_t w[4] = {{f->s, 100, 0}, {other, 100, 0}, {f->s, 100, 0}, {other, 100, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_modify_write, &w[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    store_close(other);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].failed, 0);
    store_lock(f->s);
    store_stmt_t *st = store_prepare(f->s, "SELECT n FROM items WHERE id = 'c'");
    assert_int_equal(store_step(st), STORE_ROW);
    assert_int_equal(store_col_int64(st, 0), 400);
    store_release(f->s, st);
    assert_int_equal(store_unlock(f->s), TASSA_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(numbered_and_quoted_placeholders, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers_all_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_writes_are_acknowledged_once_durable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_lost_deferred_write_is_reported_and_stops_the_next, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(async_unlock_settles_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(where_never_shows_the_password, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_connection_fails_then_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(binds_and_columns_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(text_binds_borrow_or_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(constraint_and_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(failures_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(statements_are_cached_not_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_survive_reopening, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_are_exclusive_and_pass_on, setup, teardown),
        cmocka_unit_test_setup_teardown(notifications_follow_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(stores_on_one_database_serialize, setup, teardown),
        cmocka_unit_test_setup_teardown(acknowledged_writes_are_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(checkpoints_move_the_wal_into_the_data_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_failed_wal_sync_refuses_writes_until_reopened, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_read_of_an_unsynced_batch_waits_for_its_sync, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests_name("store on SQLite", tests, NULL, NULL);
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(unreachable_database_is_one_clear_line),
    };
    failed += cmocka_run_group_tests_name("store without a server", plain, NULL, NULL);
    pg_url = getenv("TASSA_TEST_PG_URL");
    if (pg_url && *pg_url)
        failed += cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
    return failed;
}

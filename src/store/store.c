/* store.c - the SQLite data file: open, WAL, schema, transactions, meta values. */
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct store {
    sqlite3 *db;
    pthread_mutex_t lock;
};

store_t *store_open(const char *path, errmsg_t *em)
{
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "cannot open data file %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    /* WAL + synchronous=FULL: a committed transaction is on disk before we answer. */
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                      "PRAGMA foreign_keys=ON; "
                      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "data file %s is not usable: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    if (s->db)
        sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void store_lock(store_t *s)
{
    pthread_mutex_lock(&s->lock);
}

void store_unlock(store_t *s)
{
    pthread_mutex_unlock(&s->lock);
}

sqlite3 *store_db(store_t *s)
{
    return s->db;
}

tassa_err store_schema(store_t *s, const char *sql, errmsg_t *em)
{
    char *msg = NULL;
    store_lock(s);
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    store_unlock(s);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "schema: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

tassa_err store_begin(store_t *s)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_error("event=store_begin_failed err=\"%s\"", sqlite3_errmsg(s->db));
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

tassa_err store_commit(store_t *s)
{
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_error("event=store_commit_failed err=\"%s\"", sqlite3_errmsg(s->db));
        store_rollback(s);
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

void store_rollback(store_t *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *store_prepare(store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("event=store_prepare_failed err=\"%s\"", sqlite3_errmsg(s->db));
        return NULL;
    }
    return st;
}

tassa_err store_meta_get(store_t *s, const char *key, char **out)
{
    tassa_err err = TASSA_ENOTFOUND;
    *out = NULL;
    store_lock(s);
    sqlite3_stmt *st = store_prepare(s, "SELECT value FROM meta WHERE key = ?");
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = strdup((const char *)sqlite3_column_text(st, 0));
        err = *out ? TASSA_OK : TASSA_ENOMEM;
    }
out:
    sqlite3_finalize(st);
    store_unlock(s);
    return err;
}

tassa_err store_meta_set(store_t *s, const char *key, const char *value)
{
    tassa_err err = TASSA_OK;
    store_lock(s);
    sqlite3_stmt *st = store_prepare(
        s, "INSERT INTO meta (key, value) VALUES (?, ?) "
           "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        err = TASSA_ESTORE;
out:
    sqlite3_finalize(st);
    store_unlock(s);
    return err;
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

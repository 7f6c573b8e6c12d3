/* migrate.c - versioned schema migrations on the portable query layer.
 *
 * Only the public store.h operations are used here, so the same code and the same SQL run on
 * every store implementation.
 *
 * Layer: store.
 */
#include "store/migrate.h"

#include <stdbool.h>
#include <stdio.h>

static const char *TABLE = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "  module TEXT NOT NULL, version INTEGER NOT NULL,"
                           "  PRIMARY KEY (module, version));";

/* The highest recorded version of module, 0 when none, or a negative tassa_err (lock held). */
static int64_t version_locked(store_t *s, const char *module)
{
    store_stmt_t *st = store_prepare(
        s, "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE module = ?");
    if (!st)
        return TASSA_ESTORE;
    int64_t v = TASSA_ESTORE;
    if (store_bind_text(st, 1, module) == TASSA_OK && store_step(st) == STORE_ROW)
        v = store_col_int64(st, 0);
    store_release(s, st);
    return v;
}

/* True when the probe query of a step runs (lock held, inside no savepoint). A failing probe
 * is undone by its own savepoint, which a PostgreSQL store needs after an error. */
static bool probe_locked(store_t *s, const char *sql)
{
    if (store_begin(s))
        return false;
    store_stmt_t *st = store_prepare_quiet(s, sql);
    int rc = st ? store_step(st) : TASSA_ESTORE;
    store_release(s, st);
    store_rollback(s);
    return rc >= 0;
}

/* Applies step version v (1-based) of module and records it, all or nothing (lock held). */
static tassa_err apply_locked(store_t *s, const char *module, int64_t v, const migrate_step_t *step,
                              errmsg_t *em)
{
    bool present = step->applied_if && probe_locked(s, step->applied_if);
    if (store_begin(s))
        return err_set(em, TASSA_ESTORE, "migration %s %lld: cannot begin", module, (long long)v);
    errmsg_t why = {{0}};
    tassa_err err = present ? TASSA_OK : store_exec(s, step->sql, &why);
    if (!err) {
        store_stmt_t *st =
            store_prepare(s, "INSERT INTO schema_migrations (module, version) VALUES (?, ?)");
        err = st ? TASSA_OK : TASSA_ESTORE;
        if (!err)
            err = store_bind_text(st, 1, module);
        if (!err)
            err = store_bind_int64(st, 2, v);
        if (!err)
            err = store_step(st) == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
        if (err)
            snprintf(why.text, sizeof why.text, "%s", store_errmsg(s));
        store_release(s, st);
    }
    if (!err)
        err = store_commit(s);
    if (err) {
        store_rollback(s);
        return err_set(em, TASSA_ESTORE, "migration %s %lld: %s", module, (long long)v, why.text);
    }
    return TASSA_OK;
}

int64_t store_migrate_version(store_t *s, const char *module)
{
    store_lock(s);
    int64_t v = store_exec(s, TABLE, NULL) ? TASSA_ESTORE : version_locked(s, module);
    store_unlock(s);
    return v;
}

tassa_err store_migrate(store_t *s, const char *module, const migrate_step_t *steps, size_t n,
                        errmsg_t *em)
{
    if (store_schema(s, TABLE, em))
        return TASSA_ESTORE;
    for (;;) {
        store_lock(s);
        int64_t v = version_locked(s, module);
        tassa_err err = TASSA_OK;
        bool done = true;
        if (v < 0)
            err = err_set(em, TASSA_ESTORE, "cannot read the %s schema version", module);
        else if ((uint64_t)v > n)
            err = err_set(em, TASSA_ESTORE,
                          "the data file holds %s schema version %lld, newer than this tassa (%zu)",
                          module, (long long)v, n);
        else if ((uint64_t)v < n) {
            err = apply_locked(s, module, v + 1, &steps[v], em);
            done = false;
        }
        tassa_err durable = store_unlock(s);
        if (err)
            return err;
        if (durable)
            return err_set(em, TASSA_ESTORE, "migration %s: commit failed", module);
        if (done)
            return TASSA_OK;
    }
}

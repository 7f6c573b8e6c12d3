/* migrate.h - versioned schema migrations, built only on the store's public query layer, so
 * they run on any store.
 *
 * Each engine module declares its ordered list of steps; step i (from 0) is version i + 1.
 * The table schema_migrations (module, version) records what a data file holds. Version 1 of
 * each module is the schema tassa had before versioned migrations, written with CREATE ... IF
 * NOT EXISTS, so a data file from before this table existed takes it as a no-op.
 *
 * Layer: store.
 */
#ifndef TASSA_MIGRATE_H
#define TASSA_MIGRATE_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

/* One migration step. sql: the change (one or more statements, no parameters). applied_if:
 * NULL, or a query that runs without error exactly when the change is already in the data
 * file (such as "SELECT acl_column FROM t LIMIT 0"); it lets a file written before
 * schema_migrations existed, which already holds a later change, record that step instead of
 * failing on it. */
typedef struct {
    const char *sql;
    const char *applied_if;
} migrate_step_t;

/* Applies the steps of module (a short name such as "sync") that the data file lacks, in order,
 * each in its own transaction together with its schema_migrations row, so a crash leaves
 * either the whole step or none of it. Takes the store lock for each step (the caller must not
 * hold it). TASSA_OK when the file is at version n (already, or now); TASSA_ESTORE with a
 * detail in em when a step fails (earlier steps stay applied), or when the file records a
 * version above n (written by a newer tassa). Main thread, at start-up. */
tassa_err store_migrate(store_t *s, const char *module, const migrate_step_t *steps, size_t n,
                        errmsg_t *em);

/* The version of module recorded in the data file (0 when none), or a negative tassa_err.
 * Creates schema_migrations when missing. Takes the store lock. */
int64_t store_migrate_version(store_t *s, const char *module);

#endif

/* test_migrate.c - versioned migrations (store/migrate.c) on real SQLite data files: the
 * generic runner, and the Sync, TaskRouter and outbox schemas on files written by earlier
 * versions of tassa (built here by SQL, with the CREATE TABLE text those versions had). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapters/callback_outbox.h"
#include "engine/sync/documents.h"
#include "engine/taskrouter/engine.h"
#include "store/migrate.h"
#include "store/store.h"

#define ACCOUNT "AC00000000000000000000000000000000"
#define SVC     "IS0123456789abcdef0123456789abcdef"
#define DOC     "ET0123456789abcdef0123456789abcdef"

typedef struct {
    char path[64];
    store_t *s;
} fx_t;

static void unlink_all(const char *path)
{
    char side[96];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/tassa-migrate-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0)
        return -1;
    close(fd);
    errmsg_t em = {{0}};
    if (!(f->s = store_open(f->path, &em)))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    unlink_all(f->path);
    free(f);
    return 0;
}

/* Closes and reopens the data file, as a restart does. */
static void reopen(fx_t *f)
{
    errmsg_t em = {{0}};
    store_close(f->s);
    assert_non_null(f->s = store_open(f->path, &em));
}

/* Runs SQL text with the lock held; asserts success. */
static void exec_ok(store_t *s, const char *sql)
{
    errmsg_t em = {{0}};
    store_lock(s);
    tassa_err err = store_exec(s, sql, &em);
    assert_int_equal(store_unlock(s), TASSA_OK);
    if (err)
        fail_msg("%s: %s", sql, em.text);
}

/* The first column of the first row of sql as an integer, -1 when there is no row. */
static int64_t query_int(store_t *s, const char *sql)
{
    store_lock(s);
    store_stmt_t *st = store_prepare(s, sql);
    int64_t v = st && store_step(st) == STORE_ROW ? store_col_int64(st, 0) : -1;
    store_release(s, st);
    store_unlock(s); /* before any assertion: a failed one must not leave the lock held */
    if (!st)
        fail_msg("cannot prepare %s", sql);
    return v;
}

/* The first column of the first row of sql as a malloc'd text, NULL when there is no row. */
static char *query_text(store_t *s, const char *sql)
{
    store_lock(s);
    store_stmt_t *st = store_prepare(s, sql);
    char *v = NULL;
    if (st && store_step(st) == STORE_ROW && store_col_text(st, 0))
        v = strdup(store_col_text(st, 0));
    store_release(s, st);
    store_unlock(s);
    if (!st)
        fail_msg("cannot prepare %s", sql);
    return v;
}

static const migrate_step_t STEPS[] = {
    {"CREATE TABLE IF NOT EXISTS m_items (id TEXT PRIMARY KEY);", NULL},
    {"ALTER TABLE m_items ADD COLUMN n INTEGER NOT NULL DEFAULT 7;",
     "SELECT n FROM m_items LIMIT 0"},
    {"CREATE INDEX IF NOT EXISTS m_items_n ON m_items (n);", NULL},
};

/* A new file gets every step, in order, each recorded once; running again changes nothing. */
static void test_applies_in_order_once(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    assert_int_equal(store_migrate_version(f->s, "items"), 0);
    assert_int_equal(store_migrate(f->s, "items", STEPS, 2, &em), TASSA_OK);
    assert_int_equal(store_migrate_version(f->s, "items"), 2);
    exec_ok(f->s, "INSERT INTO m_items (id) VALUES ('a')");
    assert_int_equal(query_int(f->s, "SELECT n FROM m_items WHERE id = 'a'"), 7);
    /* A later release adds step 3; steps 1 and 2 do not run again. */
    reopen(f);
    assert_int_equal(store_migrate(f->s, "items", STEPS, 3, &em), TASSA_OK);
    assert_int_equal(store_migrate_version(f->s, "items"), 3);
    assert_int_equal(store_migrate(f->s, "items", STEPS, 3, &em), TASSA_OK);
    assert_int_equal(
        query_int(f->s, "SELECT count(*) FROM schema_migrations WHERE module = 'items'"), 3);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM m_items"), 1);
    /* Modules are independent. */
    assert_int_equal(store_migrate_version(f->s, "other"), 0);
}

/* A file written before schema_migrations, which already holds step 2's change, records
 * step 2 without running it (running it would fail: duplicate column). */
static void test_probe_records_present_change(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    exec_ok(f->s, "CREATE TABLE m_items (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 7);"
                  "INSERT INTO m_items (id, n) VALUES ('old', 3);");
    assert_int_equal(store_migrate(f->s, "items", STEPS, 3, &em), TASSA_OK);
    assert_int_equal(store_migrate_version(f->s, "items"), 3);
    assert_int_equal(query_int(f->s, "SELECT n FROM m_items WHERE id = 'old'"), 3);
}

/* A failing step leaves nothing of itself and is not recorded; the steps before it stay. */
static void test_failing_step_is_undone(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    static const migrate_step_t bad[] = {
        {"CREATE TABLE m_a (x INTEGER);", NULL},
        {"CREATE TABLE m_b (x INTEGER); CREATE TABLE m_a (x INTEGER);", NULL},
    };
    assert_int_equal(store_migrate(f->s, "bad", bad, 2, &em), TASSA_ESTORE);
    assert_non_null(strstr(em.text, "migration bad 2"));
    assert_int_equal(store_migrate_version(f->s, "bad"), 1);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name = 'm_b'"), 0);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name = 'm_a'"), 1);
}

/* A file from a newer tassa (a version this one does not know) is refused, unchanged. */
static void test_newer_file_refused(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    assert_int_equal(store_migrate(f->s, "items", STEPS, 3, &em), TASSA_OK);
    assert_int_equal(store_migrate(f->s, "items", STEPS, 2, &em), TASSA_ESTORE);
    assert_non_null(strstr(em.text, "newer"));
    assert_int_equal(store_migrate_version(f->s, "items"), 3);
}

/* The Sync schema of the release before access control (git 21951b0^), with data. */
static const char *SYNC_PRE_ACL =
    "CREATE TABLE IF NOT EXISTS sync_services ("
    "  sid TEXT PRIMARY KEY, unique_name TEXT, friendly_name TEXT,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sync_documents ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL, unique_name TEXT,"
    "  data TEXT NOT NULL, revision INTEGER NOT NULL,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
    "  date_expires INTEGER, created_by TEXT NOT NULL,"
    "  UNIQUE (service_sid, unique_name));"
    "INSERT INTO sync_services VALUES ('" SVC "', 'old', 'old', 1000, 1000);"
    "INSERT INTO sync_documents (sid, service_sid, unique_name, data, revision, date_created,"
    "  date_updated, date_expires, created_by)"
    "  VALUES ('" DOC "', '" SVC "', 'doc', '{\"a\":1}', 4, 1000, 2000, NULL, 'system');";

/* The Sync schema of the release before versioned migrations (main before this change). */
static const char *SYNC_CURRENT =
    "CREATE TABLE IF NOT EXISTS sync_services ("
    "  sid TEXT PRIMARY KEY, unique_name TEXT, friendly_name TEXT,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
    "  acl_enabled INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE IF NOT EXISTS sync_permissions ("
    "  document_sid TEXT NOT NULL, identity TEXT NOT NULL, service_sid TEXT NOT NULL,"
    "  read INTEGER NOT NULL, write INTEGER NOT NULL, manage INTEGER NOT NULL,"
    "  PRIMARY KEY (document_sid, identity));"
    "CREATE TABLE IF NOT EXISTS sync_documents ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL, unique_name TEXT,"
    "  data TEXT NOT NULL, revision INTEGER NOT NULL,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
    "  date_expires INTEGER, created_by TEXT NOT NULL,"
    "  UNIQUE (service_sid, unique_name));"
    "INSERT INTO sync_services VALUES ('" SVC "', 'old', 'old', 1000, 1000, 0);"
    "INSERT INTO sync_permissions VALUES ('" DOC "', 'alice', '" SVC "', 1, 0, 0);"
    "INSERT INTO sync_documents (sid, service_sid, unique_name, data, revision, date_created,"
    "  date_updated, date_expires, created_by)"
    "  VALUES ('" DOC "', '" SVC "', 'doc', '{\"a\":1}', 4, 1000, 2000, NULL, 'system');";

/* Opens the Sync engine on f's file, and reads the old document through it. */
static void open_sync_and_read_doc(fx_t *f)
{
    errmsg_t em = {{0}};
    sync_engine_t *e = sync_engine_new(f->s, ACCOUNT, NULL, &em);
    if (!e)
        fail_msg("sync_engine_new: %s", em.text);
    sync_doc_t d = {0};
    assert_int_equal(sync_doc_fetch(e, SVC, "doc", &d, &em), TASSA_OK);
    assert_string_equal(d.sid, DOC);
    assert_int_equal(d.revision, 4);
    assert_non_null(strstr(d.data, "\"a\""));
    sync_doc_clear(&d);
    sync_engine_free(e);
}

/* A data file from before access control opens: acl_enabled is added (on), the document is
 * intact, and the file is at the current Sync version. */
static void test_sync_pre_acl_file_migrates(void **state)
{
    fx_t *f = *state;
    exec_ok(f->s, SYNC_PRE_ACL);
    open_sync_and_read_doc(f);
    assert_int_equal(store_migrate_version(f->s, "sync"), 3);
    assert_int_equal(query_int(f->s, "SELECT acl_enabled FROM sync_services WHERE sid = '" SVC "'"),
                     1);
    /* version 3: the change log of a shared store, empty on SQLite */
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM sync_changes"), 0);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM sync_permissions"), 0);
    char *data = query_text(f->s, "SELECT data FROM sync_documents WHERE sid = '" DOC "'");
    assert_string_equal(data, "{\"a\":1}");
    free(data);
    /* Again after a restart: nothing changes. */
    reopen(f);
    open_sync_and_read_doc(f);
    assert_int_equal(store_migrate_version(f->s, "sync"), 3);
    assert_int_equal(
        query_int(f->s, "SELECT count(*) FROM schema_migrations WHERE module = 'sync'"), 3);
}

/* A data file of the release before versioned migrations opens unchanged: its acl_enabled (off
 * here) and permissions are kept, and the versions are recorded. */
static void test_sync_current_file_opens_unchanged(void **state)
{
    fx_t *f = *state;
    exec_ok(f->s, SYNC_CURRENT);
    open_sync_and_read_doc(f);
    assert_int_equal(store_migrate_version(f->s, "sync"), 3);
    assert_int_equal(query_int(f->s, "SELECT acl_enabled FROM sync_services WHERE sid = '" SVC "'"),
                     0);
    assert_int_equal(query_int(f->s, "SELECT read FROM sync_permissions WHERE identity = 'alice'"),
                     1);
    assert_int_equal(query_int(f->s, "SELECT revision FROM sync_documents"), 4);
}

/* TaskRouter and the outbox on a file written before versioned migrations: the workspace and
 * a queued callback survive, and each module is recorded at its version. */
static void test_taskrouter_and_outbox_existing_file(void **state)
{
    fx_t *f = *state;
    errmsg_t em = {{0}};
    tr_engine_t *tr = tr_engine_new(f->s, ACCOUNT, &em);
    assert_non_null(tr);
    tr_engine_free(tr);
    outbox_t *o = outbox_new(f->s, "token", 1000, &em);
    assert_non_null(o);
    outbox_free(o);
    /* Make the file look like one of the previous release: no schema_migrations. */
    exec_ok(f->s, "DROP TABLE schema_migrations;"
                  "INSERT INTO callback_outbox (url, body, next_at, created)"
                  "  VALUES ('http://127.0.0.1:1/', 'x=1', 0, 0);");
    char *ws = query_text(f->s, "SELECT sid FROM tr_workspace");
    assert_non_null(ws);
    reopen(f);
    tr = tr_engine_new(f->s, ACCOUNT, &em);
    if (!tr)
        fail_msg("engine: %s", em.text);
    assert_non_null(o = outbox_new(f->s, "token", 1000, &em));
    assert_int_equal(store_migrate_version(f->s, "taskrouter"),
                     10); /* 10: several events of a task in one row */
    /* the outbox's step 2 (claimed_by, one row per event) is already in this file */
    assert_int_equal(store_migrate_version(f->s, "outbox"), 2);
    char *ws2 = query_text(f->s, "SELECT sid FROM tr_workspace");
    assert_string_equal(ws, ws2);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM tr_workspace"), 1);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM callback_outbox"), 1);
    free(ws);
    free(ws2);
    outbox_free(o);
    tr_engine_free(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_applies_in_order_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_records_present_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_step_is_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_pre_acl_file_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_current_file_opens_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taskrouter_and_outbox_existing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

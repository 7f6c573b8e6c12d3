/* db.c - terse SQL helpers of the TaskRouter engine (prepare, bind, rows as JSON objects).
 *
 * Layer: engine. */
#include "engine/taskrouter/db.h"

#include <string.h>

#include "base/log.h"

sqlite3_stmt *db_vquery(store_t *s, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *st = store_prepare(s, sql);
    if (!st)
        return NULL;
    for (int i = 0; types && types[i]; i++) {
        int rc = SQLITE_OK;
        switch (types[i]) {
        case 's': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int)); break;
        default: rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) {
            log_error("event=tr_bind_failed index=%d sql=\"%.80s\"", i + 1, sql);
            store_release(s, st);
            return NULL;
        }
    }
    return st;
}

sqlite3_stmt *db_query(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    return st;
}

tassa_err db_exec(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    if (!st)
        return TASSA_ESTORE;
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_error("event=tr_exec_failed err=\"%s\" sql=\"%.80s\"",
                  sqlite3_errmsg(sqlite3_db_handle(st)), sql);
    store_release(s, st);
    return rc == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
}

json_t *db_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);
    for (int i = 0; o && i < n; i++) {
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: v = json_null(); break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(st, i),
                             (size_t)sqlite3_column_bytes(st, i));
        }
        if (!v || json_object_set_new(o, sqlite3_column_name(st, i), v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *db_one(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    json_t *row = NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        row = db_row(st);
    store_release(s, st);
    return row;
}

json_t *db_all(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    json_t *arr = json_array();
    while (arr && st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *row = db_row(st);
        if (!row || json_array_append_new(arr, row)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_release(s, st);
    return arr;
}

int64_t db_int(store_t *s, int64_t def, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    int64_t v = def;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    store_release(s, st);
    return v;
}

const char *row_str(const json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

int64_t row_int(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    if (json_is_true(v))
        return 1;
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

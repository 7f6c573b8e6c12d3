/* documents.c - Sync services and documents on the SQLite store.
 *
 * Every call is one short transaction under the store lock. Expired documents are invisible
 * to every query (expiry is a WHERE clause, so it needs no timer and survives restarts) and
 * are purged when a create needs their unique name or by sync_doc_list's sweep. */
#include "engine/sync/documents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timefmt.h"
#include "metrics.h"

struct sync_engine {
    store_t *store;
    char account_sid[SID_LEN + 1];
    char default_service[SID_LEN + 1];
    sync_listener_fn listener;
    void *listener_ctx;
};

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS sync_services ("
    "  sid TEXT PRIMARY KEY, unique_name TEXT, friendly_name TEXT,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sync_documents ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL, unique_name TEXT,"
    "  data TEXT NOT NULL, revision INTEGER NOT NULL,"
    "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
    "  date_expires INTEGER, created_by TEXT NOT NULL,"
    "  UNIQUE (service_sid, unique_name));";

#define DOC_COLUMNS                                                                                \
    "sid, service_sid, unique_name, data, revision, date_created, date_updated, "                  \
    "date_expires, created_by"
#define LIVE "(date_expires IS NULL OR date_expires > ?)"

/* Inserts a service row when it is missing (lock held by the caller). */
static tassa_err ensure_service(store_t *s, const char *sid, const char *name)
{
    sqlite3_stmt *st = store_prepare(
        s, "INSERT OR IGNORE INTO sync_services (sid, unique_name, friendly_name, date_created,"
           " date_updated) VALUES (?, ?, ?, ?, ?)");
    if (!st)
        return TASSA_ESTORE;
    int64_t now = store_now_ms();
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now);
    int rc = sqlite3_step(st);
    store_release(s, st);
    return rc == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
}

sync_engine_t *sync_engine_new(store_t *s, const char *account_sid, const char *configured_service,
                               errmsg_t *em)
{
    sync_engine_t *e = calloc(1, sizeof *e);
    char *def = NULL;
    if (!e) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    e->store = s;
    snprintf(e->account_sid, sizeof e->account_sid, "%s", account_sid ? account_sid : "");
    if (store_schema(s, SCHEMA, em))
        goto fail;
    if (store_meta_get(s, "sync_default_service", &def) == TASSA_OK) {
        snprintf(e->default_service, sizeof e->default_service, "%s", def);
    } else {
        if (sid_new("IS", e->default_service) ||
            store_meta_set(s, "sync_default_service", e->default_service)) {
            err_set(em, TASSA_ESTORE, "cannot create the default Sync service");
            goto fail;
        }
    }
    store_lock(s);
    tassa_err err = ensure_service(s, e->default_service, "default");
    if (!err && configured_service && sid_valid(configured_service, "IS"))
        err = ensure_service(s, configured_service, configured_service);
    store_unlock(s);
    if (err) {
        err_set(em, err, "cannot create the Sync services");
        goto fail;
    }
    free(def);
    return e;
fail:
    free(def);
    free(e);
    return NULL;
}

void sync_engine_free(sync_engine_t *e)
{
    free(e);
}

void sync_engine_set_listener(sync_engine_t *e, sync_listener_fn fn, void *ctx)
{
    e->listener = fn;
    e->listener_ctx = ctx;
}

/* Resolves the service with the lock held. */
static tassa_err resolve_locked(sync_engine_t *e, const char *id, char out[SID_LEN + 1])
{
    if (!strcmp(id, "default")) {
        memcpy(out, e->default_service, SID_LEN + 1);
        return TASSA_OK;
    }
    sqlite3_stmt *st =
        store_prepare(e->store, "SELECT sid FROM sync_services WHERE sid = ? OR unique_name = ?");
    if (!st)
        return TASSA_ESTORE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    tassa_err err = TASSA_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, SID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
        err = TASSA_OK;
    }
    store_release(e->store, st);
    return err;
}

tassa_err sync_service_resolve(sync_engine_t *e, const char *id, char out[SID_LEN + 1])
{
    store_lock(e->store);
    tassa_err err = resolve_locked(e, id, out);
    store_unlock(e->store);
    return err;
}

json_t *sync_service_json(sync_engine_t *e, const char *id, const char *base_url)
{
    json_t *j = NULL;
    store_lock(e->store);
    sqlite3_stmt *st = store_prepare(
        e->store, "SELECT sid, unique_name, friendly_name, date_created, date_updated "
                  "FROM sync_services WHERE sid = ? OR unique_name = ? OR "
                  "(? = 'default' AND sid = ?)");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->default_service, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *sid = (const char *)sqlite3_column_text(st, 0);
        char created[TIMEFMT_LEN], updated[TIMEFMT_LEN], url[512], docs[560];
        timefmt_iso(sqlite3_column_int64(st, 3), created);
        timefmt_iso(sqlite3_column_int64(st, 4), updated);
        snprintf(url, sizeof url, "%s/v1/Services/%s", base_url, sid);
        snprintf(docs, sizeof docs, "%s/Documents", url);
        j = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:{s:s}, s:b, s:b, s:b, s:i, "
                      "s:n, s:b}",
                      "sid", sid, "account_sid", e->account_sid, "unique_name",
                      (const char *)sqlite3_column_text(st, 1), "friendly_name",
                      (const char *)sqlite3_column_text(st, 2), "date_created", created,
                      "date_updated", updated, "url", url, "links", "documents", docs,
                      "reachability_webhooks_enabled", 0, "acl_enabled", 0,
                      "reachability_debouncing_enabled", 0, "reachability_debouncing_window", 5000,
                      "webhook_url", "webhooks_from_rest_enabled", 0);
    }
out:
    store_release(e->store, st);
    store_unlock(e->store);
    return j;
}

/* Validates Data: a JSON object whose compact form fits in 16 KiB. Returns the compact text
 * (malloc'd) or NULL with the error in *err and em. */
static char *normalise_data(const char *data, tassa_err *err, errmsg_t *em)
{
    json_error_t jerr;
    json_t *j = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        *err = err_set(em, TASSA_EINVAL, "Data is not valid JSON (line %d column %d: %s)",
                       jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *err = err_set(em, TASSA_EINVAL, "Data must be a JSON object");
        return NULL;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        *err = err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    if (strlen(text) > SYNC_DOC_MAX_DATA) {
        *err = err_set(em, TASSA_EDOCTOOBIG, "Data is %zu bytes; a document holds at most %d",
                       strlen(text), SYNC_DOC_MAX_DATA);
        free(text);
        return NULL;
    }
    return text;
}

/* Checks a unique name: 1..320 characters, no control characters, not shaped like a SID. */
static tassa_err check_unique_name(const char *name, errmsg_t *em)
{
    size_t len = strlen(name);
    if (len == 0 || len > SYNC_UNIQUE_NAME_MAX)
        return err_set(em, TASSA_EINVAL, "UniqueName must be 1 to %d characters",
                       SYNC_UNIQUE_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return err_set(em, TASSA_EINVAL, "UniqueName contains a control character");
    }
    if (sid_valid(name, "ET"))
        return err_set(em, TASSA_EINVAL, "UniqueName must not look like a document SID");
    return TASSA_OK;
}

/* Reads the current row into d (lock held). */
static void row_to_doc(sqlite3_stmt *st, sync_doc_t *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->sid, sizeof d->sid, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(d->service_sid, sizeof d->service_sid, "%s", (const char *)sqlite3_column_text(st, 1));
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        d->unique_name = strdup((const char *)sqlite3_column_text(st, 2));
    d->data = strdup((const char *)sqlite3_column_text(st, 3));
    d->revision = sqlite3_column_int64(st, 4);
    d->created_ms = sqlite3_column_int64(st, 5);
    d->updated_ms = sqlite3_column_int64(st, 6);
    d->expires_ms = sqlite3_column_type(st, 7) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 7);
    snprintf(d->created_by, sizeof d->created_by, "%s", (const char *)sqlite3_column_text(st, 8));
}

/* Finds a live document by SID or unique name (lock held). */
static tassa_err find_locked(sync_engine_t *e, const char *service, const char *id, sync_doc_t *out)
{
    sqlite3_stmt *st = store_prepare(e->store, "SELECT " DOC_COLUMNS " FROM sync_documents "
                                               "WHERE service_sid = ? AND (sid = ? OR "
                                               "unique_name = ?) AND " LIVE);
    if (!st)
        return TASSA_ESTORE;
    sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, store_now_ms());
    tassa_err err = TASSA_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        row_to_doc(st, out);
        err = out->data ? TASSA_OK : TASSA_ENOMEM;
    }
    store_release(e->store, st);
    return err;
}

static tassa_err not_found(errmsg_t *em, const char *service, const char *id)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Services/%.40s/Documents/%.80s was not found", service,
                   id);
}

static void notify(sync_engine_t *e, const sync_doc_t *d, bool deleted)
{
    metrics_add(M_DOCS_WRITTEN, 1, NULL);
    if (e->listener)
        e->listener(e->listener_ctx, d, deleted);
}

/* Inserts a new document (lock held, inside a savepoint): frees an expired holder of the name,
 * then fills out (taking over text on success). TASSA_EDUPNAME when the name is taken. */
static tassa_err insert_locked(sync_engine_t *e, const char *svc, const char *unique_name,
                               char **text, long ttl, const char *created_by, sync_doc_t *out,
                               errmsg_t *em)
{
    int64_t now = store_now_ms();
    sqlite3_stmt *st;
    if (unique_name) {
        /* An expired document no longer holds its name. */
        st = store_prepare(e->store, "DELETE FROM sync_documents WHERE service_sid = ? AND "
                                     "unique_name = ? AND date_expires <= ?");
        if (!st)
            return TASSA_ESTORE;
        sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, unique_name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_step(st);
        store_release(e->store, st);
    }
    memset(out, 0, sizeof *out);
    if (sid_new("ET", out->sid))
        return TASSA_EINTERNAL;
    snprintf(out->service_sid, sizeof out->service_sid, "%s", svc);
    out->created_ms = out->updated_ms = now;
    out->expires_ms = ttl ? now + ttl * 1000 : 0;
    snprintf(out->created_by, sizeof out->created_by, "%s", created_by ? created_by : "system");
    st = store_prepare(e->store, "INSERT INTO sync_documents (" DOC_COLUMNS
                                 ") VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)");
    if (!st)
        return TASSA_ESTORE;
    sqlite3_bind_text(st, 1, out->sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, svc, -1, SQLITE_STATIC);
    if (unique_name)
        sqlite3_bind_text(st, 3, unique_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, *text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now);
    if (out->expires_ms)
        sqlite3_bind_int64(st, 7, out->expires_ms);
    sqlite3_bind_text(st, 8, out->created_by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    store_release(e->store, st);
    if (rc == SQLITE_CONSTRAINT)
        return err_set(em, TASSA_EDUPNAME, "Unique name already exists: %.80s", unique_name);
    if (rc != SQLITE_DONE)
        return TASSA_ESTORE;
    if (unique_name && !(out->unique_name = strdup(unique_name)))
        return TASSA_ENOMEM;
    out->data = *text;
    *text = NULL;
    return TASSA_OK;
}

/* Writes doc's next revision (lock held, inside a savepoint): text (taken over) replaces the
 * data when not NULL, ttl as for sync_doc_update. */
static tassa_err update_locked(sync_engine_t *e, sync_doc_t *doc, char **text, long ttl)
{
    int64_t now = store_now_ms();
    if (*text) {
        free(doc->data);
        doc->data = *text;
        *text = NULL;
    }
    if (ttl >= 0)
        doc->expires_ms = ttl ? now + ttl * 1000 : 0;
    doc->revision++;
    doc->updated_ms = now;
    sqlite3_stmt *st = store_prepare(e->store, "UPDATE sync_documents SET data = ?, revision = ?,"
                                               " date_updated = ?, date_expires = ? WHERE sid = ?");
    if (!st)
        return TASSA_ESTORE;
    sqlite3_bind_text(st, 1, doc->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, doc->revision);
    sqlite3_bind_int64(st, 3, now);
    if (doc->expires_ms)
        sqlite3_bind_int64(st, 4, doc->expires_ms);
    sqlite3_bind_text(st, 5, doc->sid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    store_release(e->store, st);
    return rc == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
}

/* Ends a write: releases or rolls back the savepoint, unlocks (waiting for the group commit)
 * and tells the listener. Returns the first error. */
static tassa_err finish_write(sync_engine_t *e, tassa_err err, const sync_doc_t *doc)
{
    if (err)
        store_rollback(e->store);
    else
        err = store_commit(e->store);
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable; /* the group commit failed: nothing was stored */
    if (!err && doc)
        notify(e, doc, false);
    return err;
}

tassa_err sync_doc_create(sync_engine_t *e, const char *service, const char *unique_name,
                          const char *data, long ttl, const char *created_by, sync_doc_t *out,
                          errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    memset(out, 0, sizeof *out);
    if (unique_name && (err = check_unique_name(unique_name, em)))
        return err;
    if (ttl < 0 || ttl > 31536000)
        return err_set(em, TASSA_EINVAL, "Ttl must be from 0 to 31536000 seconds");
    char *text = normalise_data(data ? data : "{}", &err, em);
    if (!text)
        return err;
    char svc[SID_LEN + 1];
    store_lock(e->store);
    if ((err = resolve_locked(e, service, svc))) {
        store_unlock(e->store);
        free(text);
        return err_set(em, err, "The requested resource /Services/%.40s was not found", service);
    }
    err = store_begin(e->store);
    if (!err)
        err = insert_locked(e, svc, unique_name, &text, ttl, created_by, out, em);
    err = finish_write(e, err, err ? NULL : out);
    free(text);
    if (err)
        sync_doc_clear(out);
    return err;
}

tassa_err sync_doc_fetch(sync_engine_t *e, const char *service, const char *id, sync_doc_t *out,
                         errmsg_t *em)
{
    char svc[SID_LEN + 1];
    memset(out, 0, sizeof *out);
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = find_locked(e, svc, id, out);
    store_unlock(e->store);
    if (err == TASSA_ENOTFOUND)
        return not_found(em, service, id);
    return err;
}

tassa_err sync_doc_update(sync_engine_t *e, const char *service, const char *id, const char *data,
                          long ttl, const char *if_match, sync_doc_t *out, errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    char *text = NULL;
    char svc[SID_LEN + 1];
    memset(out, 0, sizeof *out);
    if (ttl < -1 || ttl > 31536000)
        return err_set(em, TASSA_EINVAL, "Ttl must be from 0 to 31536000 seconds");
    if (data && !(text = normalise_data(data, &err, em)))
        return err;
    store_lock(e->store);
    if ((err = resolve_locked(e, service, svc))) {
        store_unlock(e->store);
        free(text);
        return err;
    }
    err = store_begin(e->store);
    if (!err && (err = find_locked(e, svc, id, out)) == TASSA_ENOTFOUND)
        err = not_found(em, service, id);
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)out->revision);
    if (!err && if_match && strcmp(if_match, rev) != 0)
        err = err_set(em, TASSA_EREVISION,
                      "The revision of the Document (%s) does not match the expected revision "
                      "(%.30s)",
                      rev, if_match);
    if (!err)
        err = update_locked(e, out, &text, ttl);
    err = finish_write(e, err, err ? NULL : out);
    free(text);
    if (err)
        sync_doc_clear(out);
    return err;
}

tassa_err sync_doc_apply(sync_engine_t *e, const char *service, const char *name, sync_apply_fn fn,
                         void *ctx, bool *changed, char *reason, size_t reason_len, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    char *text = NULL;
    json_t *current = NULL, *next = NULL;
    *changed = false;
    tassa_err err = check_unique_name(name, em);
    if (err)
        return err;
    store_lock(e->store);
    if ((err = resolve_locked(e, service, svc)) || (err = store_begin(e->store))) {
        store_unlock(e->store);
        return err;
    }
    err = find_locked(e, svc, name, &doc);
    bool exists = err == TASSA_OK;
    if (err == TASSA_ENOTFOUND)
        err = TASSA_OK;
    if (!err && exists && !(current = json_loads(doc.data, 0, NULL)))
        err = err_set(em, TASSA_ESTORE, "stored data of %.80s is not JSON", name);
    if (!err)
        next = fn(ctx, current, reason, reason_len);
    if (!err && next) {
        text = json_dumps(next, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text || !json_is_object(next))
            err = err_set(em, TASSA_EINVAL, "document data must be a JSON object");
        else if (strlen(text) > SYNC_DOC_MAX_DATA)
            err = err_set(em, TASSA_EDOCTOOBIG, "Data is %zu bytes; a document holds at most %d",
                          strlen(text), SYNC_DOC_MAX_DATA);
    }
    if (!err && next) {
        err = exists ? update_locked(e, &doc, &text, -1)
                     : insert_locked(e, svc, name, &text, 0, "system", &doc, em);
        *changed = err == TASSA_OK;
    }
    /* Unchanged documents still wait in store_unlock when they read uncommitted data. */
    err = finish_write(e, err, *changed ? &doc : NULL);
    if (err)
        *changed = false;
    json_decref(current);
    json_decref(next);
    free(text);
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_doc_delete(sync_engine_t *e, const char *service, const char *id,
                          const char *if_match, errmsg_t *em)
{
    sync_doc_t doc = {0};
    char svc[SID_LEN + 1];
    tassa_err err;
    store_lock(e->store);
    if ((err = resolve_locked(e, service, svc)) || (err = find_locked(e, svc, id, &doc))) {
        store_unlock(e->store);
        return err == TASSA_ENOTFOUND ? not_found(em, service, id) : err;
    }
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)doc.revision);
    if (if_match && strcmp(if_match, rev) != 0) {
        store_unlock(e->store);
        sync_doc_clear(&doc);
        return err_set(em, TASSA_EREVISION,
                       "The revision of the Document (%s) does not match "
                       "the expected revision (%.30s)",
                       rev, if_match);
    }
    sqlite3_stmt *st = store_prepare(e->store, "DELETE FROM sync_documents WHERE sid = ?");
    if (st) {
        sqlite3_bind_text(st, 1, doc.sid, -1, SQLITE_STATIC);
        err = sqlite3_step(st) == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
        store_release(e->store, st);
    } else {
        err = TASSA_ESTORE;
    }
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    if (!err)
        notify(e, &doc, true);
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_doc_list(sync_engine_t *e, const char *service, long page, long page_size,
                        sync_doc_t **docs, size_t *n, bool *more, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    *docs = NULL;
    *n = 0;
    *more = false;
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (err) {
        store_unlock(e->store);
        return err_set(em, err, "The requested resource /Services/%.40s was not found", service);
    }
    sqlite3_stmt *st =
        store_prepare(e->store, "SELECT " DOC_COLUMNS " FROM sync_documents "
                                "WHERE service_sid = ? AND " LIVE " ORDER BY seq LIMIT ? OFFSET ?");
    sync_doc_t *arr = calloc((size_t)page_size + 1, sizeof *arr);
    if (!st || !arr) {
        err = st ? TASSA_ENOMEM : TASSA_ESTORE;
        goto out;
    }
    sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, store_now_ms());
    sqlite3_bind_int64(st, 3, page_size + 1);
    sqlite3_bind_int64(st, 4, page * page_size);
    size_t count = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (count == (size_t)page_size) {
            *more = true;
            break;
        }
        row_to_doc(st, &arr[count]);
        count++;
    }
    *docs = arr;
    *n = count;
    arr = NULL;
out:
    store_release(e->store, st);
    store_unlock(e->store);
    free(arr);
    return err;
}

void sync_doc_clear(sync_doc_t *d)
{
    if (!d)
        return;
    free(d->unique_name);
    free(d->data);
    d->unique_name = d->data = NULL;
}

void sync_doc_list_free(sync_doc_t *docs, size_t n)
{
    for (size_t i = 0; docs && i < n; i++)
        sync_doc_clear(&docs[i]);
    free(docs);
}

tassa_err sync_doc_copy(sync_doc_t *dst, const sync_doc_t *src)
{
    *dst = *src;
    dst->unique_name = src->unique_name ? strdup(src->unique_name) : NULL;
    dst->data = src->data ? strdup(src->data) : NULL;
    if ((src->unique_name && !dst->unique_name) || (src->data && !dst->data)) {
        sync_doc_clear(dst);
        return TASSA_ENOMEM;
    }
    return TASSA_OK;
}

json_t *sync_doc_json(const sync_doc_t *d, const char *account_sid, const char *base_url)
{
    char created[TIMEFMT_LEN], updated[TIMEFMT_LEN], expires[TIMEFMT_LEN];
    char url[512], perms[560], rev[24];
    timefmt_iso(d->created_ms, created);
    timefmt_iso(d->updated_ms, updated);
    if (d->expires_ms)
        timefmt_iso(d->expires_ms, expires);
    snprintf(url, sizeof url, "%s/v1/Services/%s/Documents/%s", base_url, d->service_sid, d->sid);
    snprintf(perms, sizeof perms, "%s/Permissions", url);
    snprintf(rev, sizeof rev, "%lld", (long long)d->revision);
    json_t *data = json_loads(d->data ? d->data : "{}", 0, NULL);
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:{s:s}, s:s, s:o?, s:s?, s:s, s:s, s:s}", "sid",
                     d->sid, "unique_name", d->unique_name, "account_sid", account_sid,
                     "service_sid", d->service_sid, "url", url, "links", "permissions", perms,
                     "revision", rev, "data", data, "date_expires", d->expires_ms ? expires : NULL,
                     "date_created", created, "date_updated", updated, "created_by", d->created_by);
}

/* store_pg.c - the PostgreSQL back end of the store (libpq): one connection, prepared
 * statements cached per SQL text, text parameters and results.
 *
 * store.c drives it exactly as it drives SQLite: the group transaction (BEGIN ... COMMIT by the
 * committer thread), SAVEPOINT op for store_begin, and the query layer. PostgreSQL aborts the
 * whole transaction on any failed statement, where SQLite fails only that statement; so every
 * statement inside a transaction runs under its own savepoint (tassa_stmt) and a failure rolls
 * back to it: a refused write undoes only itself, as on SQLite.
 *
 * Lost connection: every call then fails with TASSA_ESTORE (the open group transaction is gone,
 * and its waiters get TASSA_ESTORE); pg_ensure, called at each store_lock, reconnects with
 * back-off (0.25 s doubling to 8 s) and prepares statements again on the new connection.
 *
 * Layer: store.
 */
#include "store/store_impl.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "base/log.h"
#include "store/store.h"

#define PG_CACHE  512
#define BYTEA_OID 17

typedef struct {
    char *sql;      /* the text given to store_prepare (key) */
    char *pgsql;    /* with $N placeholders */
    int nparams;    /* highest $N */
    bool read_only; /* a SELECT: runs without a savepoint of its own */
    uint64_t gen;   /* connection generation it was prepared on (0 = never) */
    char name[16];
} pg_entry_t;

struct tassa_pg {
    PGconn *conn;
    uint64_t gen; /* bumped at each (re)connection: prepared statements are per connection */
    int64_t total, last;
    double retry_at, backoff; /* reconnect no sooner than retry_at (monotonic seconds) */
    char err[512];
    /* Savepoint commands of store_begin/commit not sent yet (static texts): they go out with
     * the next command, in the same round trip (see pg_control). */
    const char *deferred[8];
    int ndeferred;
    pg_entry_t cache[PG_CACHE];
};

struct pg_stmt {
    pg_conn_t *c;
    pg_entry_t *e;
    pg_entry_t own; /* when the cache is full: prepared unnamed, every time */
    const char **vals;
    int *lens, *fmts;
    char **owned;
    PGresult *res;
    int row, rows;
    bool ran, done;
    unsigned char **decoded; /* bytea columns of the current row, unescaped */
    size_t *declen;
};

bool pg_is_url(const char *where)
{
    return where &&
           (strncmp(where, "postgres://", 11) == 0 || strncmp(where, "postgresql://", 13) == 0);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies libpq's message into c->err on one line (a message may span several lines). */
static void set_err(pg_conn_t *c, const char *msg)
{
    snprintf(c->err, sizeof c->err, "%s", msg && *msg ? msg : "unknown PostgreSQL error");
    size_t n = strlen(c->err);
    while (n && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
        c->err[--n] = '\0';
    for (char *p = c->err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation ... already exists, skipping" and the like */
}

static void pg_session_setup(PGconn *conn);

/* Connects to url with tassa's defaults (a 5 s connect timeout, TCP keepalives) and session
 * settings. NULL only when out of memory; check PQstatus. */
static PGconn *pg_connect(const char *url)
{
    /* Defaults first: the URL's own settings, expanded from dbname, override them. */
    const char *keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "dbname",          NULL};
    const char *vals[] = {"5", "5", "2", "3", url, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        pg_session_setup(conn);
    return conn;
}

static void pg_session_setup(PGconn *conn)
{
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    /* Never hang: a node that stops mid-transaction loses it after 10 s, and a lock that
     * another node keeps longer than 5 s fails the statement (TASSA_ESTORE, 503) instead of
     * holding the request. */
    PGresult *r = PQexec(conn, "SET lock_timeout = 5000; SET idle_in_transaction_session_timeout"
                               " = 10000; SET statement_timeout = 15000");
    PQclear(r);
}

/* Describes why conn is not connected, on one line, naming host and port, never the URL (it
 * may hold the password). */
static void connect_error(pg_conn_t *c, PGconn *conn, errmsg_t *em)
{
    set_err(c, conn ? PQerrorMessage(conn) : "out of memory");
    const char *host = conn ? PQhost(conn) : NULL, *port = conn ? PQport(conn) : NULL;
    err_set(em, TASSA_ESTORE, "cannot connect to PostgreSQL at host %s port %s: %s",
            host && *host ? host : "(default)", port && *port ? port : "(default)", c->err);
}

pg_conn_t *pg_open(const char *url, errmsg_t *em)
{
    pg_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    c->conn = pg_connect(url);
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        connect_error(c, c->conn, em);
        pg_close(c);
        return NULL;
    }
    c->gen = 1;
    c->backoff = 0.25;
    return c;
}

tassa_err pg_begin(pg_conn_t *c)
{
    c->ndeferred = 0; /* (a new transaction: nothing of an old one is pending) */
    /* one round trip: the simple query protocol runs both and answers the last one's result */
    PGresult *r = PQexec(c->conn, "BEGIN; SELECT pg_advisory_xact_lock(" PG_GLOBAL_LOCK ")");
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        set_err(c, PQerrorMessage(c->conn));
    PQclear(r);
    if (!ok && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        PQclear(PQexec(c->conn, "ROLLBACK"));
    return ok ? TASSA_OK : TASSA_ESTORE;
}

void pg_close(pg_conn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < PG_CACHE; i++) {
        free(c->cache[i].sql);
        free(c->cache[i].pgsql);
    }
    PQfinish(c->conn);
    free(c);
}

bool pg_ensure(pg_conn_t *c)
{
    if (PQstatus(c->conn) == CONNECTION_OK)
        return true;
    double now = mono_now();
    if (now < c->retry_at)
        return false;
    PQreset(c->conn);
    if (PQstatus(c->conn) == CONNECTION_OK) {
        pg_session_setup(c->conn);
        c->ndeferred = 0;
        c->gen++;
        c->backoff = 0.25;
        log_info("event=store_reconnected");
        return true;
    }
    set_err(c, PQerrorMessage(c->conn));
    log_error("event=store_reconnect_failed retry_s=%.2f err=\"%s\"", c->backoff, c->err);
    c->retry_at = now + c->backoff;
    if (c->backoff < 8)
        c->backoff *= 2;
    return false;
}

static bool in_txn(pg_conn_t *c)
{
    return PQtransactionStatus(c->conn) == PQTRANS_INTRANS;
}

/* Runs sql after the deferred commands, in one simple-query round trip. */
static tassa_err run_control(pg_conn_t *c, const char *sql)
{
    char text[512];
    size_t n = 0;
    for (int i = 0; i < c->ndeferred; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s; ", c->deferred[i]);
    c->ndeferred = 0;
    snprintf(text + n, sizeof text - n, "%s", sql);
    PGresult *r = PQexec(c->conn, text);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        set_err(c, PQerrorMessage(c->conn));
    PQclear(r);
    return ok ? TASSA_OK : TASSA_ESTORE;
}

tassa_err pg_control(pg_conn_t *c, const char *sql)
{
    /* store_begin/commit's savepoint commands wait for the next command (a round trip each
     * saved); one that turns out not to matter is dropped. */
    if (!strcmp(sql, "SAVEPOINT op") || !strcmp(sql, "RELEASE op")) {
        if (!in_txn(c)) { /* no transaction (BEGIN failed, the connection is gone): say so now */
            set_err(c, PQstatus(c->conn) == CONNECTION_OK ? "no open transaction"
                                                          : "connection to PostgreSQL lost");
            return TASSA_ESTORE;
        }
        if (c->ndeferred == (int)(sizeof c->deferred / sizeof c->deferred[0]) &&
            run_control(c, "SELECT 1"))
            return TASSA_ESTORE;
        c->deferred[c->ndeferred++] = !strcmp(sql, "RELEASE op") ? "RELEASE op" : "SAVEPOINT op";
        return TASSA_OK;
    }
    if (!strcmp(sql, "ROLLBACK TO op; RELEASE op") && c->ndeferred &&
        !strcmp(c->deferred[c->ndeferred - 1], "SAVEPOINT op")) {
        c->ndeferred--; /* nothing ran since the savepoint: nothing to undo */
        return TASSA_OK;
    }
    if (!strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK"))
        c->ndeferred = 0; /* savepoints end with the transaction anyway */
    return run_control(c, sql);
}

/* Rows changed by a finished command: INSERT/UPDATE/DELETE/MERGE only (as sqlite3_changes). */
static int64_t changed(PGresult *r)
{
    const char *status = PQcmdStatus(r);
    if (strncmp(status, "INSERT", 6) && strncmp(status, "UPDATE", 6) &&
        strncmp(status, "DELETE", 6) && strncmp(status, "MERGE", 5))
        return 0;
    return strtoll(PQcmdTuples(r), NULL, 10);
}

tassa_err pg_exec(pg_conn_t *c, const char *sql, errmsg_t *em)
{
    if (c->ndeferred && run_control(c, "SELECT 1")) {
        err_set(em, TASSA_ESTORE, "%s", c->err);
        return TASSA_ESTORE;
    }
    bool inner = in_txn(c);
    if (inner && pg_control(c, "SAVEPOINT tassa_stmt")) {
        err_set(em, TASSA_ESTORE, "%s", c->err);
        return TASSA_ESTORE;
    }
    tassa_err err = TASSA_OK;
    int np;
    char *text = pg_rewrite(sql, &np);
    if (!text) {
        set_err(c, "out of memory");
        err = TASSA_ESTORE;
    } else if (!PQsendQuery(c->conn, text)) {
        set_err(c, PQerrorMessage(c->conn));
        err = TASSA_ESTORE;
    } else {
        PGresult *r;
        while ((r = PQgetResult(c->conn))) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                c->last = changed(r);
                c->total += c->last;
            } else if (!err) {
                set_err(c, PQresultErrorMessage(r));
                err = TASSA_ESTORE;
            }
            PQclear(r);
        }
    }
    free(text);
    if (err)
        err_set(em, TASSA_ESTORE, "%s", c->err);
    if (inner && PQstatus(c->conn) == CONNECTION_OK)
        pg_control(c, err ? "ROLLBACK TO SAVEPOINT tassa_stmt; RELEASE SAVEPOINT tassa_stmt"
                          : "RELEASE SAVEPOINT tassa_stmt");
    return err;
}

bool pg_lost(pg_conn_t *c)
{
    return PQstatus(c->conn) != CONNECTION_OK;
}

int64_t pg_total_changes(pg_conn_t *c)
{
    return c->total;
}

int64_t pg_changes(pg_conn_t *c)
{
    return c->last;
}

const char *pg_errmsg(pg_conn_t *c)
{
    return c->err;
}

/* Is c part of an SQL word (identifier or keyword)? */
static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Does the word w start at p, standing alone? */
static bool word_at(const char *p, const char *w)
{
    size_t n = strlen(w);
    return strncmp(p, w, n) == 0 && !word_char(p[n]);
}

/* SQLite's words and their PostgreSQL spelling (see pg_rewrite): integers are 64-bit in
 * SQLite, so INTEGER is BIGINT; a 64-bit AUTOINCREMENT key is BIGSERIAL. */
static const struct {
    const char *sqlite, *pg;
} WORDS[] = {
    {"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
    {"INTEGER", "BIGINT"},
    {"BLOB", "BYTEA"},
    {"REAL", "DOUBLE PRECISION"},
};

char *pg_rewrite(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 4 + 16); /* "?" -> "$NNN", BLOB -> BYTEA, REAL -> DOUBLE PRECISION */
    if (!out)
        return NULL;
    char *o = out;
    int next = 0, max = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        bool word_start = p == sql || !word_char(p[-1]);
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
        } else if (*p == '?') {
            int k;
            if (p[1] >= '0' && p[1] <= '9') {
                k = 0;
                while (p[1] >= '0' && p[1] <= '9' && k < 100000)
                    k = k * 10 + (*++p - '0');
            } else {
                k = ++next;
            }
            if (k > max)
                max = k;
            o += sprintf(o, "$%d", k);
        } else if (word_start && word_at(p, "INDEXED")) {
            /* "INDEXED BY name": a SQLite planner hint; PostgreSQL plans on its own */
            const char *q = p + 7;
            while (*q == ' ')
                q++;
            if (word_at(q, "BY")) {
                q += 2;
                while (*q == ' ')
                    q++;
                while (word_char(*q))
                    q++;
                p = q - 1;
            } else {
                *o++ = *p;
            }
        } else {
            size_t i = 0;
            while (word_start && i < sizeof WORDS / sizeof WORDS[0] && !word_at(p, WORDS[i].sqlite))
                i++;
            if (word_start && i < sizeof WORDS / sizeof WORDS[0]) {
                o += sprintf(o, "%s", WORDS[i].pg);
                p += strlen(WORDS[i].sqlite) - 1;
            } else {
                *o++ = *p;
            }
        }
    }
    *o = '\0';
    *nparams = max;
    return out;
}

static size_t sql_hash(const char *sql)
{
    size_t h = 5381;
    for (; *sql; sql++)
        h = h * 33 + (unsigned char)*sql;
    return h;
}

/* PQprepare of e on the connection, under a savepoint inside a transaction (a failed prepare
 * would abort the transaction otherwise). */
static bool server_prepare(pg_conn_t *c, pg_entry_t *e)
{
    bool inner = in_txn(c);
    if (inner && pg_control(c, "SAVEPOINT tassa_stmt"))
        return false;
    PGresult *r = PQprepare(c->conn, e->name, e->pgsql, e->nparams, NULL);
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        set_err(c, PQerrorMessage(c->conn));
    PQclear(r);
    if (inner && PQstatus(c->conn) == CONNECTION_OK)
        pg_control(c, ok ? "RELEASE SAVEPOINT tassa_stmt"
                         : "ROLLBACK TO SAVEPOINT tassa_stmt; RELEASE SAVEPOINT tassa_stmt");
    return ok;
}

/* Is sql a plain read (SELECT ... without FOR UPDATE)? A read that fails (only a timeout or a
 * lost connection can, once prepared) aborts the group transaction, whose writers then all get
 * TASSA_ESTORE: nothing is lost silently, and reads skip a savepoint's cost. */
static bool reads_only(const char *sql)
{
    while (*sql == ' ' || *sql == '\n')
        sql++;
    return strncmp(sql, "SELECT ", 7) == 0 && !strstr(sql, "FOR UPDATE") &&
           !strstr(sql, "pg_notify");
}

pg_stmt_t *pg_prepare(pg_conn_t *c, const char *sql, bool quiet)
{
    pg_stmt_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->c = c;
    size_t h = sql_hash(sql);
    for (int probe = 0; probe < 16 && !st->e; probe++) {
        size_t i = (h + (size_t)probe) % PG_CACHE;
        pg_entry_t *e = &c->cache[i];
        if (e->sql && strcmp(e->sql, sql) == 0) {
            st->e = e;
        } else if (!e->sql) {
            e->pgsql = pg_rewrite(sql, &e->nparams);
            e->read_only = reads_only(sql);
            e->sql = e->pgsql ? strdup(sql) : NULL;
            if (!e->sql) {
                free(e->pgsql);
                e->pgsql = NULL;
                break;
            }
            snprintf(e->name, sizeof e->name, "tassa_%zu", i);
            st->e = e;
        }
    }
    if (!st->e) {
        st->own.pgsql = pg_rewrite(sql, &st->own.nparams);
        st->own.read_only = reads_only(sql);
        if (!st->own.pgsql) {
            free(st);
            return NULL;
        }
        st->e = &st->own;
    }
    /* Prepare now, so that bad SQL fails at store_prepare as on SQLite. */
    if (st->e->gen != c->gen) {
        if (!server_prepare(c, st->e)) {
            if (!quiet)
                log_error("event=store_prepare_failed err=\"%s\"", c->err);
            pg_release(st);
            return NULL;
        }
        if (st->e != &st->own)
            st->e->gen = c->gen;
    }
    int np = st->e->nparams > 0 ? st->e->nparams : 1;
    st->vals = calloc((size_t)np, sizeof *st->vals);
    st->lens = calloc((size_t)np, sizeof *st->lens);
    st->fmts = calloc((size_t)np, sizeof *st->fmts);
    st->owned = calloc((size_t)np, sizeof *st->owned);
    if (!st->vals || !st->lens || !st->fmts || !st->owned) {
        pg_release(st);
        return NULL;
    }
    return st;
}

static void drop_decoded(pg_stmt_t *st)
{
    if (!st->decoded || !st->res)
        return;
    int n = PQnfields(st->res);
    for (int i = 0; i < n; i++) {
        PQfreemem(st->decoded[i]);
        st->decoded[i] = NULL;
    }
}

static void drop_result(pg_stmt_t *st)
{
    drop_decoded(st);
    free(st->decoded);
    free(st->declen);
    st->decoded = NULL;
    st->declen = NULL;
    PQclear(st->res);
    st->res = NULL;
    st->ran = st->done = false;
    st->row = st->rows = 0;
}

void pg_reset(pg_stmt_t *st)
{
    if (!st)
        return;
    drop_result(st);
    for (int i = 0; i < st->e->nparams; i++) {
        free(st->owned[i]);
        st->owned[i] = NULL;
        st->vals[i] = NULL;
        st->lens[i] = st->fmts[i] = 0;
    }
}

void pg_release(pg_stmt_t *st)
{
    if (!st)
        return;
    if (st->vals)
        pg_reset(st);
    else
        drop_result(st);
    free(st->vals);
    free(st->lens);
    free(st->fmts);
    free(st->owned);
    free(st->own.pgsql);
    free(st);
}

tassa_err pg_bind(pg_stmt_t *st, int i, const char *v, size_t n, bool binary, bool copy)
{
    if (i < 1 || i > st->e->nparams || n > INT32_MAX) {
        set_err(st->c, "bind index out of range");
        log_error("event=store_bind_failed index=%d err=\"out of range\"", i);
        return TASSA_ESTORE;
    }
    int k = i - 1;
    free(st->owned[k]);
    st->owned[k] = NULL;
    if (v && copy) {
        if (!(st->owned[k] = malloc(n + 1)))
            return TASSA_ESTORE;
        memcpy(st->owned[k], v, n);
        st->owned[k][n] = '\0';
        v = st->owned[k];
    }
    st->vals[k] = v ? v : NULL;
    if (v && binary && n == 0)
        st->vals[k] = ""; /* a zero-length value, not NULL */
    st->lens[k] = (int)n;
    st->fmts[k] = binary ? 1 : 0;
    return TASSA_OK;
}

/* Runs st's statement in one round trip (libpq's pipeline mode) after the deferred savepoint
 * commands, and with guard between SAVEPOINT tassa_stmt and its RELEASE: the statement's own
 * result, or NULL when the connection failed. When the statement fails, the RELEASE is
 * skipped by the server (the pipeline aborts) and the caller rolls back to the savepoint. */
static PGresult *run_pipelined(pg_conn_t *c, pg_stmt_t *st, bool guard)
{
    PGconn *conn = c->conn;
    if (!PQenterPipelineMode(conn))
        return NULL;
    PGresult *mine = NULL;
    bool sent = true;
    int at = c->ndeferred + (guard ? 1 : 0); /* the statement's place in the pipeline */
    for (int i = 0; sent && i < c->ndeferred; i++)
        sent = PQsendQueryParams(conn, c->deferred[i], 0, NULL, NULL, NULL, NULL, 0);
    c->ndeferred = 0;
    sent = sent && (!guard ||
                    PQsendQueryParams(conn, "SAVEPOINT tassa_stmt", 0, NULL, NULL, NULL, NULL, 0));
    sent = sent &&
           PQsendQueryPrepared(conn, st->e->name, st->e->nparams, st->vals, st->lens, st->fmts, 0);
    sent = sent && (!guard || PQsendQueryParams(conn, "RELEASE SAVEPOINT tassa_stmt", 0, NULL, NULL,
                                                NULL, NULL, 0));
    sent = sent && PQpipelineSync(conn);
    if (!sent) {
        set_err(c, PQerrorMessage(conn));
        PQexitPipelineMode(conn);
        return NULL;
    }
    /* Three results, each followed by NULL, then the sync: read up to the sync, whatever
     * failed, so that the connection leaves pipeline mode idle. */
    int query = 0;
    for (;;) {
        PGresult *r = PQgetResult(conn);
        if (!r) {
            if (PQstatus(conn) != CONNECTION_OK)
                break;
            query++;
            continue;
        }
        ExecStatusType t = PQresultStatus(r);
        if (t == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (query == at && !mine) {
            mine = r;
            continue;
        }
        if (query < at && t != PGRES_COMMAND_OK)
            set_err(c, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQexitPipelineMode(conn);
    return mine;
}

int pg_step(pg_stmt_t *st)
{
    pg_conn_t *c = st->c;
    if (st->ran) {
        if (st->done)
            return STORE_DONE;
        drop_decoded(st);
        if (++st->row < st->rows)
            return STORE_ROW;
        st->done = true;
        return STORE_DONE;
    }
    st->ran = true;
    if (PQstatus(c->conn) != CONNECTION_OK) {
        set_err(c, "connection to PostgreSQL lost");
        st->done = true;
        return TASSA_ESTORE;
    }
    if (st->e->gen != c->gen && st->e != &st->own) { /* reconnected since prepare */
        if (!server_prepare(c, st->e)) {
            st->done = true;
            return TASSA_ESTORE;
        }
        st->e->gen = c->gen;
    }
    /* A write inside the group transaction runs under its own savepoint, so that a refused
     * write undoes only itself; a read needs none (see run_pipelined). */
    bool guard = in_txn(c) && !st->e->read_only;
    st->res = guard || c->ndeferred ? run_pipelined(c, st, guard)
                                    : PQexecPrepared(c->conn, st->e->name, st->e->nparams, st->vals,
                                                     st->lens, st->fmts, 0);
    ExecStatusType status = st->res ? PQresultStatus(st->res) : PGRES_FATAL_ERROR;
    int rc;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        c->last = changed(st->res);
        c->total += c->last;
        st->rows = status == PGRES_TUPLES_OK ? PQntuples(st->res) : 0;
        st->row = 0;
        int nf = PQnfields(st->res);
        st->decoded = calloc((size_t)(nf > 0 ? nf : 1), sizeof *st->decoded);
        st->declen = calloc((size_t)(nf > 0 ? nf : 1), sizeof *st->declen);
        if (!st->decoded || !st->declen) {
            rc = TASSA_ESTORE;
        } else if (st->rows > 0) {
            rc = STORE_ROW;
        } else {
            st->done = true;
            rc = STORE_DONE;
        }
    } else {
        const char *state = st->res ? PQresultErrorField(st->res, PG_DIAG_SQLSTATE) : NULL;
        set_err(c, st->res ? PQresultErrorMessage(st->res) : PQerrorMessage(c->conn));
        rc = state && strncmp(state, "23", 2) == 0 ? TASSA_ECONFLICT : TASSA_ESTORE;
        st->done = true;
    }
    if (guard && rc < 0 && PQstatus(c->conn) == CONNECTION_OK)
        pg_control(c, "ROLLBACK TO SAVEPOINT tassa_stmt; RELEASE SAVEPOINT tassa_stmt");
    return rc;
}

static bool has_row(pg_stmt_t *st, int i)
{
    return st->res && !st->done && st->row < st->rows && i >= 0 && i < PQnfields(st->res);
}

const char *pg_col_text(pg_stmt_t *st, int i)
{
    if (!has_row(st, i) || PQgetisnull(st->res, st->row, i))
        return NULL;
    return PQgetvalue(st->res, st->row, i);
}

bool pg_col_is_null(pg_stmt_t *st, int i)
{
    return !has_row(st, i) || PQgetisnull(st->res, st->row, i);
}

/* The bytes of a bytea column, unescaped once per row. */
static const unsigned char *bytea(pg_stmt_t *st, int i, size_t *n)
{
    if (!st->decoded[i])
        st->decoded[i] =
            PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, i), &st->declen[i]);
    *n = st->decoded[i] ? st->declen[i] : 0;
    return st->decoded[i];
}

const void *pg_col_blob(pg_stmt_t *st, int i)
{
    if (pg_col_is_null(st, i))
        return NULL;
    size_t n;
    const void *p;
    if (PQftype(st->res, i) == BYTEA_OID) {
        p = bytea(st, i, &n);
    } else {
        p = PQgetvalue(st->res, st->row, i);
        n = (size_t)PQgetlength(st->res, st->row, i);
    }
    return n ? p : NULL;
}

size_t pg_col_bytes(pg_stmt_t *st, int i)
{
    if (pg_col_is_null(st, i))
        return 0;
    if (PQftype(st->res, i) == BYTEA_OID) {
        size_t n;
        bytea(st, i, &n);
        return n;
    }
    return (size_t)PQgetlength(st->res, st->row, i);
}

void pg_describe(pg_conn_t *c, char *out, size_t n)
{
    snprintf(out, n, "postgres://%s@%s:%s/%s", PQuser(c->conn), PQhost(c->conn), PQport(c->conn),
             PQdb(c->conn));
}

void pg_lib_version(char *out, size_t n)
{
    int v = PQlibVersion();
    snprintf(out, n, "libpq %d.%d", v / 10000, v % 10000);
}

/* The session thread ---------------------------------------------------------------------
 *
 * A second connection, owned by one thread, for what lives as long as a session: leases
 * (session advisory locks, released by PostgreSQL when the session ends, so when a node dies)
 * and LISTEN. Callers never wait on it: pg_session_lease answers from the last state the
 * thread saw. */

#define SESSION_MAX_LEASES    8
#define SESSION_MAX_LISTENERS 8
#define SESSION_TICK_MS       250
#define SESSION_LEASE_TRY_S   1.0

typedef struct {
    char name[64];
    uint32_t key;
    bool held; /* under mu */
} lease_t;

typedef struct {
    char channel[64];
    pg_notify_fn fn;
    void *ctx;
} listener_t;

struct pg_session {
    char *url;
    pthread_t thread;
    pthread_mutex_t mu;    /* guards leases, nleases, listeners, nlisteners, stop */
    pthread_mutex_t cb_mu; /* held while listeners are called; unlisten waits on it */
    lease_t leases[SESSION_MAX_LEASES];
    int nleases;
    listener_t listeners[SESSION_MAX_LISTENERS];
    int nlisteners;
    bool stop;
    bool reachable; /* under mu: the session connection is up */
};

/* Runs sql (no parameters) on conn; true when it succeeded. *value gets the first column of
 * the first row when not NULL ("" when none). */
static bool session_query(PGconn *conn, const char *sql, char *value, size_t n)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (value && n) {
        value[0] = '\0';
        if (ok && st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
            snprintf(value, n, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return ok;
}

/* Marks every lease lost (the session ended) and logs the ones that were held. */
static void leases_lost(pg_session_t *ps)
{
    pthread_mutex_lock(&ps->mu);
    for (int i = 0; i < ps->nleases; i++) {
        if (ps->leases[i].held)
            log_warn("event=lease_lost lease=%s", ps->leases[i].name);
        ps->leases[i].held = false;
    }
    ps->reachable = false;
    pthread_mutex_unlock(&ps->mu);
}

/* Tries every lease not held yet (pg_try_advisory_lock never waits). */
static void leases_try(pg_session_t *ps, PGconn *conn)
{
    pthread_mutex_lock(&ps->mu);
    int n = ps->nleases;
    pthread_mutex_unlock(&ps->mu);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ps->mu);
        bool held = ps->leases[i].held;
        uint32_t key = ps->leases[i].key;
        pthread_mutex_unlock(&ps->mu);
        if (held)
            continue;
        char sql[96], v[8];
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LEASE_CLASS,
                 (int32_t)key);
        if (session_query(conn, sql, v, sizeof v) && strcmp(v, "t") == 0) {
            pthread_mutex_lock(&ps->mu);
            ps->leases[i].held = true;
            log_info("event=lease_taken lease=%s", ps->leases[i].name);
            pthread_mutex_unlock(&ps->mu);
        }
    }
}

/* LISTENs to every registered channel on a new session; true when all succeeded. */
static bool listen_all(pg_session_t *ps, PGconn *conn)
{
    pthread_mutex_lock(&ps->mu);
    int n = ps->nlisteners;
    pthread_mutex_unlock(&ps->mu);
    for (int i = 0; i < n; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "LISTEN \"%s\"", ps->listeners[i].channel);
        if (!session_query(conn, sql, NULL, 0))
            return false;
    }
    return true;
}

/* Calls the listeners of channel (or all of them with payload NULL: notifications may have
 * been missed), holding cb_mu only, so that pg_session_unlisten can wait for a call to end. */
static void dispatch(pg_session_t *ps, const char *channel, const char *payload)
{
    pthread_mutex_lock(&ps->cb_mu);
    pthread_mutex_lock(&ps->mu);
    int n = ps->nlisteners;
    pthread_mutex_unlock(&ps->mu);
    for (int i = 0; i < n; i++)
        if (ps->listeners[i].fn && (!channel || strcmp(ps->listeners[i].channel, channel) == 0))
            ps->listeners[i].fn(ps->listeners[i].ctx, payload);
    pthread_mutex_unlock(&ps->cb_mu);
}

static bool session_stopping(pg_session_t *ps)
{
    pthread_mutex_lock(&ps->mu);
    bool stop = ps->stop;
    pthread_mutex_unlock(&ps->mu);
    return stop;
}

static void *session_main(void *arg)
{
    pg_session_t *ps = arg;
    PGconn *conn = NULL;
    double backoff = 0.25, retry_at = 0, last_try = 0;
    int listened = -1; /* listeners LISTENed on this session */
    while (!session_stopping(ps)) {
        double now = mono_now();
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            if (conn) {
                PQfinish(conn);
                conn = NULL;
                leases_lost(ps);
                log_error("event=store_session_lost");
            }
            if (now < retry_at) {
                struct timespec pause = {0, SESSION_TICK_MS * 1000000L};
                nanosleep(&pause, NULL);
                continue;
            }
            conn = pg_connect(ps->url);
            if (!conn || PQstatus(conn) != CONNECTION_OK) {
                retry_at = now + backoff;
                if (backoff < 8)
                    backoff *= 2;
                continue;
            }
            backoff = 0.25;
            listened = -1;
            pthread_mutex_lock(&ps->mu);
            ps->reachable = true;
            pthread_mutex_unlock(&ps->mu);
            last_try = 0;
        }
        pthread_mutex_lock(&ps->mu);
        int nl = ps->nlisteners;
        pthread_mutex_unlock(&ps->mu);
        if (listened != nl) {
            if (!listen_all(ps, conn)) {
                PQfinish(conn);
                conn = NULL;
                leases_lost(ps);
                continue;
            }
            listened = nl;
            dispatch(ps, NULL, NULL); /* a new session: what came before it may be missed */
        }
        if (now - last_try >= SESSION_LEASE_TRY_S) {
            last_try = now;
            /* a query also proves the session (and so the held leases) still alive */
            if (!session_query(conn, "SELECT 1", NULL, 0))
                continue; /* PQstatus tells on the next round */
            leases_try(ps, conn);
        }
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (pfd.fd >= 0 && poll(&pfd, 1, SESSION_TICK_MS) > 0 && !PQconsumeInput(conn))
            continue;
        PGnotify *nt;
        while ((nt = PQnotifies(conn))) {
            dispatch(ps, nt->relname, nt->extra ? nt->extra : "");
            PQfreemem(nt);
        }
    }
    PQfinish(conn);
    return NULL;
}

pg_session_t *pg_session_new(const char *url)
{
    pg_session_t *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->url = strdup(url))) {
        free(ps);
        return NULL;
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_mutex_init(&ps->cb_mu, NULL);
    if (pthread_create(&ps->thread, NULL, session_main, ps) != 0) {
        free(ps->url);
        free(ps);
        return NULL;
    }
    return ps;
}

void pg_session_free(pg_session_t *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&ps->mu);
    ps->stop = true;
    pthread_mutex_unlock(&ps->mu);
    pthread_join(ps->thread, NULL);
    pthread_mutex_destroy(&ps->mu);
    pthread_mutex_destroy(&ps->cb_mu);
    free(ps->url);
    free(ps);
}

bool pg_session_lease(pg_session_t *ps, const char *name)
{
    pthread_mutex_lock(&ps->mu);
    bool held = false;
    int i = 0;
    while (i < ps->nleases && strcmp(ps->leases[i].name, name) != 0)
        i++;
    if (i < ps->nleases) {
        held = ps->leases[i].held;
    } else if (i < SESSION_MAX_LEASES && strlen(name) < sizeof ps->leases[i].name) {
        snprintf(ps->leases[i].name, sizeof ps->leases[i].name, "%s", name);
        ps->leases[i].key = (uint32_t)hash_str(HASH_SEED, name);
        ps->nleases++;
    } else {
        log_error("event=lease_refused lease=%s err=\"too many leases or name too long\"", name);
    }
    pthread_mutex_unlock(&ps->mu);
    return held;
}

size_t pg_session_leases(pg_session_t *ps, const char **names, size_t max, char *buf, size_t n)
{
    size_t k = 0, used = 0;
    pthread_mutex_lock(&ps->mu);
    for (int i = 0; i < ps->nleases && k < max; i++) {
        size_t len = strlen(ps->leases[i].name) + 1;
        if (!ps->leases[i].held || used + len > n)
            continue;
        memcpy(buf + used, ps->leases[i].name, len);
        names[k++] = buf + used;
        used += len;
    }
    pthread_mutex_unlock(&ps->mu);
    return k;
}

bool pg_session_reachable(pg_session_t *ps)
{
    pthread_mutex_lock(&ps->mu);
    bool up = ps->reachable;
    pthread_mutex_unlock(&ps->mu);
    return up;
}

tassa_err pg_session_listen(pg_session_t *ps, const char *channel, pg_notify_fn fn, void *ctx)
{
    tassa_err err = TASSA_OK;
    pthread_mutex_lock(&ps->mu);
    bool ok_name = *channel && strlen(channel) < sizeof ps->listeners[0].channel;
    for (const char *p = channel; ok_name && *p; p++)
        ok_name = word_char(*p);
    if (!ok_name || ps->nlisteners >= SESSION_MAX_LISTENERS) {
        err = TASSA_EINVAL;
    } else {
        listener_t *l = &ps->listeners[ps->nlisteners];
        snprintf(l->channel, sizeof l->channel, "%s", channel);
        l->fn = fn;
        l->ctx = ctx;
        ps->nlisteners++; /* the thread LISTENs on its next round */
    }
    pthread_mutex_unlock(&ps->mu);
    return err;
}

void pg_session_unlisten(pg_session_t *ps, pg_notify_fn fn, void *ctx)
{
    pthread_mutex_lock(&ps->cb_mu); /* no call of fn is running, none starts */
    pthread_mutex_lock(&ps->mu);
    for (int i = 0; i < ps->nlisteners; i++)
        if (ps->listeners[i].fn == fn && ps->listeners[i].ctx == ctx)
            ps->listeners[i].fn = NULL; /* the slot stays: its LISTEN is harmless */
    pthread_mutex_unlock(&ps->mu);
    pthread_mutex_unlock(&ps->cb_mu);
}

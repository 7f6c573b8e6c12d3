/* test_sync_feed.c - how the Sync engine hands its changes to the listener: on one SQLite
 * file, and, when TASSA_TEST_PG_URL is set (ctest's unit_test_sync_feed_pg, through
 * tools/pg_scratch.sh), on two stores of one PostgreSQL database, as two nodes: each node's
 * feeder hands its listener every change of both nodes, in order, once; a watch starts exactly
 * between two changes; a stale If-Match is refused whichever node wrote last; concurrent
 * read-modify-writes (sync_doc_apply, blocking and asynchronous) lose no increment; an
 * asynchronous write reports after its delivery. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "engine/sync/documents.h"

#define ACCOUNT "AC00000000000000000000000000000000"
#define MAX_EV  4096

/* What one node's listener heard: document changes as (sid, revision). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    char sid[MAX_EV][SID_LEN + 1];
    int64_t rev[MAX_EV];
    int n;
} heard_t;

typedef struct {
    char path[512];
    bool pg;
    int nodes; /* 2 on PostgreSQL, 1 on SQLite (a file has one process) */
    store_t *store[2];
    sync_engine_t *sync[2];
    heard_t heard[2];
} fx_t;

static const char *pg_url;

static void hear(void *ctx, const sync_change_t *ch)
{
    heard_t *h = ctx;
    if (ch->kind != SYNC_CHANGE_DOC)
        return;
    pthread_mutex_lock(&h->mu);
    if (h->n < MAX_EV) {
        memcpy(h->sid[h->n], ch->doc.sid, sizeof h->sid[0]);
        h->rev[h->n++] = ch->doc.revision;
    }
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
}

/* The revisions h heard of document sid, in order, into out (at most max); returns how many.
 * h->mu held. */
static int revisions_locked(heard_t *h, const char *sid, int64_t *out, int max)
{
    int k = 0;
    for (int i = 0; i < h->n && k < max; i++) {
        if (!strcmp(h->sid[i], sid))
            out[k++] = h->rev[i];
    }
    return k;
}

/* Waits (at most 20 s, on the listener's condition) until h heard revision rev of sid. */
static bool wait_for(heard_t *h, const char *sid, int64_t rev)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    bool found = false;
    pthread_mutex_lock(&h->mu);
    while (!found) {
        for (int i = h->n - 1; i >= 0 && !found; i--)
            found = !strcmp(h->sid[i], sid) && h->rev[i] >= rev;
        if (!found && pthread_cond_timedwait(&h->cond, &h->mu, &until))
            break;
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->pg = pg_url != NULL;
    f->nodes = f->pg ? 2 : 1;
    if (f->pg) {
        snprintf(f->path, sizeof f->path, "%s", pg_url);
    } else {
        snprintf(f->path, sizeof f->path, "/tmp/tassa-feed-XXXXXX");
        int fd = mkstemp(f->path);
        if (fd < 0)
            return -1;
        close(fd);
    }
    for (int i = 0; i < f->nodes; i++) {
        errmsg_t em = {{0}};
        pthread_mutex_init(&f->heard[i].mu, NULL);
        pthread_cond_init(&f->heard[i].cond, NULL);
        if (!(f->store[i] = store_open(f->path, &em)) ||
            !(f->sync[i] = sync_engine_new(f->store[i], ACCOUNT, NULL, &em)) ||
            sync_engine_set_listener(f->sync[i], hear, &f->heard[i])) {
            fprintf(stderr, "node %d: %s\n", i, em.text);
            return -1;
        }
        assert_int_equal(store_shared(f->store[i]), f->pg);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < f->nodes; i++) {
        sync_engine_set_listener(f->sync[i], NULL, NULL);
        sync_engine_free(f->sync[i]);
        store_close(f->store[i]);
    }
    if (!f->pg) {
        char side[600];
        unlink(f->path);
        snprintf(side, sizeof side, "%s-wal", f->path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", f->path);
        unlink(side);
    }
    free(f);
    return 0;
}

/* A document with a name unique to this run (the PostgreSQL database outlives a test). */
static void new_doc(fx_t *f, const char *prefix, sync_doc_t *out)
{
    char name[64];
    errmsg_t em = {{0}};
    snprintf(name, sizeof name, "%s-%ld-%d", prefix, (long)getpid(), rand());
    assert_int_equal(sync_doc_create(f->sync[0], "default", name, "{\"n\":0}", 0, NULL, out, &em),
                     TASSA_OK);
}

typedef struct {
    sync_engine_t *e;
    const char *sid;
    int rounds, failed;
    volatile bool *stop; /* when not NULL: write until it is set */
} writer_t;

static void *write_loop(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; w->stop ? !*w->stop : i < w->rounds; i++) {
        sync_doc_t d = {0};
        errmsg_t em = {{0}};
        if (sync_doc_update(w->e, "default", w->sid, "{\"n\":1}", -1, NULL, &d, &em))
            w->failed++;
        sync_doc_clear(&d);
    }
    return NULL;
}

/* Writers on every node at once: each node's listener hears every revision once, in order. */
static void every_node_hears_every_change_in_order(void **state)
{
    fx_t *f = *state;
    sync_doc_t doc = {0};
    new_doc(f, "feed", &doc);
    enum { PER = 25, THREADS = 2 };
    pthread_t t[2 * THREADS];
    writer_t w[2 * THREADS];
    int n = 0;
    for (int node = 0; node < f->nodes; node++) {
        for (int k = 0; k < THREADS; k++, n++) {
            w[n] = (writer_t){.e = f->sync[node], .sid = doc.sid, .rounds = PER};
            assert_int_equal(pthread_create(&t[n], NULL, write_loop, &w[n]), 0);
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    int64_t last = (int64_t)n * PER;
    for (int node = 0; node < f->nodes; node++) {
        heard_t *h = &f->heard[node];
        assert_true(wait_for(h, doc.sid, last));
        int64_t revs[MAX_EV];
        pthread_mutex_lock(&h->mu);
        int k = revisions_locked(h, doc.sid, revs, MAX_EV);
        pthread_mutex_unlock(&h->mu);
        assert_int_equal(k, last + 1); /* the create, then every update once */
        for (int i = 0; i < k; i++)
            assert_int_equal(revs[i], i);
    }
    sync_doc_clear(&doc);
}

typedef struct {
    heard_t *h;
    const char *sid;
    int64_t read, heard_last; /* the watch's revision; the listener's last one at that time */
} watch_seen_t;

static void on_watch(void *ctx, const sync_doc_t *doc, const sync_doc_t *history, size_t n)
{
    watch_seen_t *s = ctx;
    (void)history;
    (void)n;
    int64_t revs[MAX_EV];
    s->read = doc->revision;
    pthread_mutex_lock(&s->h->mu);
    int k = revisions_locked(s->h, s->sid, revs, MAX_EV);
    pthread_mutex_unlock(&s->h->mu);
    s->heard_last = k ? revs[k - 1] : -1;
}

/* While another node writes, a watch on this node runs exactly after the listener heard the
 * revision it read and before the next one. */
static void watch_starts_between_two_changes(void **state)
{
    fx_t *f = *state;
    sync_doc_t doc = {0};
    new_doc(f, "watch", &doc);
    volatile bool stop = false;
    writer_t w = {.e = f->sync[0], .sid = doc.sid, .stop = &stop};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_loop, &w), 0);
    sync_engine_t *watcher = f->sync[f->nodes - 1];
    heard_t *h = &f->heard[f->nodes - 1];
    int64_t prev = -1;
    int moved = 0;
    for (int i = 0; i < 40 || (moved < 3 && i < 20000); i++) {
        watch_seen_t s = {.h = h, .sid = doc.sid};
        errmsg_t em = {{0}};
        assert_int_equal(sync_doc_watch(watcher, "default", doc.sid, -1, on_watch, &s, &em),
                         TASSA_OK);
        assert_int_equal(s.heard_last, s.read);
        moved += s.read > prev;
        prev = s.read;
    }
    stop = true;
    pthread_join(t, NULL);
    assert_int_equal(w.failed, 0);
    assert_true(moved >= 3); /* the writer really ran meanwhile */
    sync_doc_clear(&doc);
}

/* A write with the revision another node already replaced is refused and changes nothing. */
static void stale_if_match_is_refused_on_every_node(void **state)
{
    fx_t *f = *state;
    sync_doc_t doc = {0}, d = {0};
    errmsg_t em = {{0}};
    new_doc(f, "cas", &doc);
    sync_engine_t *a = f->sync[0], *b = f->sync[f->nodes - 1];
    assert_int_equal(sync_doc_update(a, "default", doc.sid, "{\"n\":1}", -1, "0", &d, &em),
                     TASSA_OK);
    sync_doc_clear(&d);
    assert_int_equal(sync_doc_update(b, "default", doc.sid, "{\"n\":2}", -1, "0", &d, &em),
                     TASSA_EREVISION);
    assert_int_equal(sync_doc_delete(b, "default", doc.sid, "0", &em), TASSA_EREVISION);
    assert_int_equal(sync_doc_fetch(b, "default", doc.sid, &d, &em), TASSA_OK);
    assert_int_equal(d.revision, 1);
    assert_string_equal(d.data, "{\"n\":1}");
    sync_doc_clear(&d);
    sync_doc_clear(&doc);
}

/* The merge of the counter: {"n": n + 1}. May run more than once per apply (a lost race). */
static json_t *increment(void *ctx, const json_t *current, char *reason, size_t reason_len)
{
    (void)ctx;
    (void)reason;
    (void)reason_len;
    json_int_t n = current ? json_integer_value(json_object_get(current, "n")) : 0;
    return json_pack("{s:I}", "n", (json_int_t)(n + 1));
}

/* An asynchronous write's report, waited for on a condition. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done, changed;
    tassa_err err;
    int64_t revision;
    heard_t *h; /* when set: whether h had heard revision when done ran */
    bool heard_first;
    const char *sid;
} report_t;

static void on_done(void *ctx, tassa_err err, const sync_doc_t *doc, bool changed,
                    const errmsg_t *em)
{
    report_t *r = ctx;
    (void)em;
    if (r->h && doc) {
        int64_t revs[MAX_EV];
        pthread_mutex_lock(&r->h->mu);
        int k = revisions_locked(r->h, doc->sid, revs, MAX_EV);
        pthread_mutex_unlock(&r->h->mu);
        r->heard_first = k && revs[k - 1] >= doc->revision;
    }
    pthread_mutex_lock(&r->mu);
    r->err = err;
    r->changed = changed;
    r->revision = doc ? doc->revision : -1;
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void report_wait(report_t *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cond, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

typedef struct {
    sync_engine_t *e;
    const char *name;
    int rounds, failed;
    bool async;
} applier_t;

/* One apply on document name of service, blocking or asynchronous (then waited for). */
static tassa_err apply_once(sync_engine_t *e, const char *service, const char *name,
                            sync_merge_fn fn, bool async, bool *changed, char *reason,
                            size_t reason_len)
{
    if (!async) {
        errmsg_t em = {{0}};
        return sync_doc_apply(e, service, name, fn, NULL, changed, reason, reason_len, &em);
    }
    report_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sync_doc_apply_async(e, service, name, fn, NULL, reason, reason_len, on_done, &r);
    report_wait(&r);
    *changed = r.changed;
    return r.err;
}

static void *apply_loop(void *arg)
{
    applier_t *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        char reason[64];
        bool changed = false;
        tassa_err err = apply_once(a->e, "default", a->name, increment, a->async, &changed, reason,
                                   sizeof reason);
        if (err || !changed)
            a->failed++;
    }
    return NULL;
}

/* The merge runs outside the store lock, so appliers race between their read and their write
 * (on PostgreSQL across two nodes too): the compare-and-set and the retry lose no increment,
 * blocking and asynchronous alike, and the listener hears every revision once, in order. */
static void concurrent_applies_lose_no_increment(void **state)
{
    fx_t *f = *state;
    char name[64];
    snprintf(name, sizeof name, "apply-%ld-%d", (long)getpid(), rand());
    enum { PER = 30, THREADS = 2 };
    pthread_t t[2 * THREADS];
    applier_t a[2 * THREADS];
    int n = 0;
    for (int node = 0; node < f->nodes; node++) {
        for (int k = 0; k < THREADS; k++, n++) {
            a[n] = (applier_t){.e = f->sync[node], .name = name, .rounds = PER, .async = k % 2};
            assert_int_equal(pthread_create(&t[n], NULL, apply_loop, &a[n]), 0);
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failed, 0);
    }
    sync_doc_t d = {0};
    errmsg_t em = {{0}};
    assert_int_equal(sync_doc_fetch(f->sync[0], "default", name, &d, &em), TASSA_OK);
    char want[32];
    snprintf(want, sizeof want, "{\"n\":%d}", n * PER);
    assert_string_equal(d.data, want);
    assert_int_equal(d.revision, n * PER - 1); /* the first apply created it at revision 0 */
    for (int node = 0; node < f->nodes; node++) {
        heard_t *h = &f->heard[node];
        assert_true(wait_for(h, d.sid, d.revision));
        int64_t revs[MAX_EV];
        pthread_mutex_lock(&h->mu);
        int k = revisions_locked(h, d.sid, revs, MAX_EV);
        pthread_mutex_unlock(&h->mu);
        assert_int_equal(k, n * PER);
        for (int i = 0; i < k; i++)
            assert_int_equal(revs[i], i);
    }
    sync_doc_clear(&d);
}

/* A merge that writes only over an existing document. */
static json_t *only_existing(void *ctx, const json_t *current, char *reason, size_t reason_len)
{
    if (!current) {
        snprintf(reason, reason_len, "absent");
        return NULL;
    }
    return increment(ctx, current, reason, reason_len);
}

static void assert_data(sync_engine_t *e, const char *name, const char *data, int64_t revision)
{
    sync_doc_t d = {0};
    errmsg_t em = {{0}};
    assert_int_equal(sync_doc_fetch(e, "default", name, &d, &em), TASSA_OK);
    assert_string_equal(d.data, data);
    assert_int_equal(d.revision, revision);
    sync_doc_clear(&d);
}

/* An apply on a name the engine has not seen merges what is stored, whoever made it (a REST
 * create, another node), rather than creating it anew; one on a deleted document creates it
 * again; a merge that declines a new document creates nothing and says why; an unknown service
 * is refused. Blocking and asynchronous alike. */
static void apply_merges_documents_it_did_not_make(void **state)
{
    fx_t *f = *state;
    for (int async = 0; async < 2; async++) {
        char name[64], reason[64];
        bool changed = false;
        errmsg_t em = {{0}};
        sync_doc_t d = {0};
        snprintf(name, sizeof name, "seen-%d-%ld-%d", async, (long)getpid(), rand());
        assert_int_equal(
            sync_doc_create(f->sync[0], "default", name, "{\"n\":5}", 0, NULL, &d, &em), TASSA_OK);
        sync_doc_clear(&d);
        assert_int_equal(apply_once(f->sync[0], "default", name, increment, async, &changed, reason,
                                    sizeof reason),
                         TASSA_OK);
        assert_true(changed);
        assert_data(f->sync[0], name, "{\"n\":6}", 1);
        /* the last node has not seen it either (on SQLite: the same node, now knowing it) */
        sync_engine_t *other = f->sync[f->nodes - 1];
        assert_int_equal(
            apply_once(other, "default", name, increment, async, &changed, reason, sizeof reason),
            TASSA_OK);
        assert_data(f->sync[0], name, "{\"n\":7}", 2);
        assert_int_equal(sync_doc_delete(f->sync[0], "default", name, NULL, &em), TASSA_OK);
        assert_int_equal(
            apply_once(other, "default", name, increment, async, &changed, reason, sizeof reason),
            TASSA_OK);
        assert_true(changed);
        assert_data(f->sync[0], name, "{\"n\":1}", 0);

        snprintf(name, sizeof name, "absent-%d-%ld-%d", async, (long)getpid(), rand());
        reason[0] = '\0';
        assert_int_equal(apply_once(f->sync[0], "default", name, only_existing, async, &changed,
                                    reason, sizeof reason),
                         TASSA_OK);
        assert_false(changed);
        assert_string_equal(reason, "absent");
        assert_int_equal(sync_doc_fetch(f->sync[0], "default", name, &d, &em), TASSA_ENOTFOUND);

        /* a service that does not exist is final, and nothing is written anywhere */
        em = (errmsg_t){{0}};
        changed = true;
        assert_int_equal(apply_once(f->sync[0], "no-such-service", name, increment, async, &changed,
                                    reason, sizeof reason),
                         TASSA_ENOTFOUND);
        assert_false(changed);
        assert_int_equal(sync_doc_fetch(f->sync[0], "default", name, &d, &em), TASSA_ENOTFOUND);
    }
}

/* An apply on a name whose holder has expired creates the document anew, and the expired
 * holder's permissions do not pass to it: the insert finds the name taken, frees it and
 * inserts again. */
static void apply_creates_over_an_expired_holder(void **state)
{
    fx_t *f = *state;
    char names[2][64];
    errmsg_t em = {{0}};
    for (int async = 0; async < 2; async++) {
        sync_doc_t d = {0};
        sync_perm_t p = {0};
        snprintf(names[async], sizeof names[async], "expired-%d-%ld-%d", async, (long)getpid(),
                 rand());
        assert_int_equal(
            sync_doc_create(f->sync[0], "default", names[async], "{\"n\":5}", 1, NULL, &d, &em),
            TASSA_OK);
        sync_doc_clear(&d);
        assert_int_equal(
            sync_perm_set(f->sync[0], "default", names[async], "bob", true, true, false, &p, &em),
            TASSA_OK);
        sync_perm_clear(&p);
    }
    usleep(1200 * 1000); /* Ttl is in whole seconds */
    for (int async = 0; async < 2; async++) {
        char reason[64];
        bool changed = false;
        sync_perm_t p = {0};
        sync_engine_t *other = f->sync[f->nodes - 1];
        assert_int_equal(apply_once(other, "default", names[async], increment, async, &changed,
                                    reason, sizeof reason),
                         TASSA_OK);
        assert_true(changed);
        assert_data(f->sync[0], names[async], "{\"n\":1}", 0);
        assert_int_equal(sync_perm_fetch(f->sync[0], "default", names[async], "bob", &p, &em),
                         TASSA_ENOTFOUND);
    }
}

/* An asynchronous update reports once, after the listener heard its revision (on one store:
 * the settle thread delivers before it reports); its refusals report too. */
static void async_update_reports_after_delivery(void **state)
{
    fx_t *f = *state;
    sync_doc_t doc = {0};
    new_doc(f, "async", &doc);
    report_t r = {.mu = PTHREAD_MUTEX_INITIALIZER,
                  .cond = PTHREAD_COND_INITIALIZER,
                  .h = f->pg ? NULL : &f->heard[0]};
    sync_doc_update_async(f->sync[0], "default", doc.sid, "{\"n\":7}", -1, "0", on_done, &r);
    report_wait(&r);
    assert_int_equal(r.err, TASSA_OK);
    assert_true(r.changed);
    assert_int_equal(r.revision, 1);
    if (!f->pg)
        assert_true(r.heard_first);
    report_t stale = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sync_doc_update_async(f->sync[0], "default", doc.sid, "{\"n\":8}", -1, "0", on_done, &stale);
    report_wait(&stale);
    assert_int_equal(stale.err, TASSA_EREVISION);
    assert_false(stale.changed);
    report_t bad = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sync_doc_update_async(f->sync[0], "default", doc.sid, "[1]", -1, NULL, on_done, &bad);
    report_wait(&bad);
    assert_int_equal(bad.err, TASSA_EINVAL);
    sync_doc_t d = {0};
    errmsg_t em = {{0}};
    assert_int_equal(sync_doc_fetch(f->sync[0], "default", doc.sid, &d, &em), TASSA_OK);
    assert_string_equal(d.data, "{\"n\":7}");
    sync_doc_clear(&d);
    sync_doc_clear(&doc);
}

int main(void)
{
    log_set_level(LOG_WARN);
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_node_hears_every_change_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(watch_starts_between_two_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_if_match_is_refused_on_every_node, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_applies_lose_no_increment, setup, teardown),
        cmocka_unit_test_setup_teardown(apply_merges_documents_it_did_not_make, setup, teardown),
        cmocka_unit_test_setup_teardown(apply_creates_over_an_expired_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(async_update_reports_after_delivery, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("sync feed on SQLite", tests, NULL, NULL);
    pg_url = getenv("TASSA_TEST_PG_URL");
    if (pg_url && *pg_url)
        failed +=
            cmocka_run_group_tests_name("sync feed on two PostgreSQL nodes", tests, NULL, NULL);
    else
        pg_url = NULL;
    return failed;
}

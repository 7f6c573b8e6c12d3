/* test_hub.c - the live-update hub on its own: a real Sync engine on a real SQLite file, a
 * fake sink (no sockets) and a hand-driven clock (hub_tick, no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth/access_token.h"
#include "base/log.h"
#include "engine/live/hub.h"
#include "engine/sync/documents.h"

#define ACCOUNT "AC00000000000000000000000000000000"
#define SECRET  "hub-test-secret"
#define BEAT_MS 1000

/* The hub's clock: moved by hand. */
static int64_t fake_now = 1000000;

static int64_t clock_now(void)
{
    return fake_now;
}

/* A transport that only counts what the hub asked of it. */
typedef struct {
    int parks, wakes, aborts;
    bool parked, gone;
} sink_t;

static void sink_park(void *p)
{
    sink_t *s = p;
    assert_false(s->parked); /* one park until its wake */
    s->parked = true;
    s->parks++;
}

static void sink_wake(void *p)
{
    sink_t *s = p;
    assert_true(s->parked); /* a wake always follows its park */
    s->parked = false;
    s->wakes++;
}

static void sink_abort(void *p)
{
    ((sink_t *)p)->aborts++;
}

static bool sink_gone(void *p)
{
    return ((sink_t *)p)->gone;
}

static const hub_sink_ops_t OPS = {.transport = "test",
                                   .park = sink_park,
                                   .wake = sink_wake,
                                   .abort = sink_abort,
                                   .gone = sink_gone};

typedef struct {
    char dir[64], path[96];
    store_t *store;
    sync_engine_t *sync;
    config_t config;
    hub_t *hub;
    char svc[SID_LEN + 1];
} fx_t;

static int setup(void **state)
{
    errmsg_t em = {{0}};
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_hub_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/tassa.db", f->dir);
    assert_non_null(f->store = store_open(f->path, &em));
    assert_non_null(f->sync = sync_engine_new(f->store, ACCOUNT, "default", &em));
    assert_int_equal(sync_service_resolve(f->sync, "default", f->svc), TASSA_OK);
    assert_int_equal(sync_service_set_acl(f->sync, "default", false, &em), TASSA_OK);
    f->config.account_sid = ACCOUNT;
    f->config.api_secret = SECRET;
    f->config.max_streams = 100;
    f->config.max_streams_per_identity = 50;
    hub_deps_t deps = {
        .config = &f->config, .sync = f->sync, .heartbeat_ms = BEAT_MS, .now_ms = clock_now};
    assert_non_null(f->hub = hub_new(&deps));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    hub_free(f->hub);
    sync_engine_free(f->sync);
    store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static hub_grant_t grant(const fx_t *f, const char *identity, int64_t expires_ms)
{
    hub_grant_t g = {.identity = strdup(identity), .expires_ms = expires_ms};
    memcpy(g.service_sid, f->svc, sizeof g.service_sid);
    return g;
}

/* Creates document name with data {"n":n}; returns its revision. */
static int64_t create(fx_t *f, const char *name, int n)
{
    char data[32];
    sync_doc_t d;
    snprintf(data, sizeof data, "{\"n\":%d}", n);
    assert_int_equal(sync_doc_create(f->sync, "default", name, data, 0, "test", &d, NULL), 0);
    int64_t rev = d.revision;
    sync_doc_clear(&d);
    return rev;
}

/* Sets document name's data to {"n":n}; returns the new revision. */
static int64_t update(fx_t *f, const char *name, int n)
{
    char data[32];
    sync_doc_t d;
    snprintf(data, sizeof data, "{\"n\":%d}", n);
    assert_int_equal(sync_doc_update(f->sync, "default", name, data, -1, NULL, &d, NULL), 0);
    int64_t rev = d.revision;
    sync_doc_clear(&d);
    return rev;
}

static hub_sub_t *sub_doc(fx_t *f, const char *identity, const char *doc, int64_t last,
                          sink_t *sink)
{
    hub_grant_t g = grant(f, identity, 0);
    hub_sub_t *s = NULL;
    errmsg_t em = {{0}};
    tassa_err err = hub_subscribe_doc(f->hub, &g, doc, last, "http://x", &OPS, sink, &s, &em);
    if (err)
        fail_msg("subscribe: %s", em.text);
    hub_grant_clear(&g);
    return s;
}

static hub_sub_t *sub_svc(fx_t *f, const char *identity, int64_t last, sink_t *sink)
{
    hub_grant_t g = grant(f, identity, 0);
    hub_sub_t *s = NULL;
    assert_int_equal(hub_subscribe_service(f->hub, &g, last, "http://x", &OPS, sink, &s, NULL),
                     TASSA_OK);
    hub_grant_clear(&g);
    return s;
}

/* Takes the next event and checks its kind and id; returns whether its data holds want
 * (when want is not NULL). */
static bool expect(hub_sub_t *s, hub_event_kind_t kind, int64_t id, const char *want)
{
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, false, &m), HUB_NEXT_EVENT);
    assert_int_equal(m->kind, kind);
    assert_int_equal(m->id, id);
    assert_int_equal(strlen(m->data), m->data_len);
    bool ok = !want || strstr(m->data, want);
    hub_msg_release(m);
    return ok;
}

/* Takes the next event, checks its kind and returns its id. */
static int64_t expect_kind(hub_sub_t *s, hub_event_kind_t kind)
{
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, false, &m), HUB_NEXT_EVENT);
    assert_int_equal(m->kind, kind);
    int64_t id = m->id;
    hub_msg_release(m);
    return id;
}

static void expect_next(hub_sub_t *s, hub_next_t want)
{
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, false, &m), want);
    assert_null(m);
}

/* Drains s: the ids of its update events must be from..to, consecutive. */
static void expect_updates(hub_sub_t *s, int64_t from, int64_t to)
{
    for (int64_t id = from; id <= to; id++)
        assert_true(expect(s, HUB_EV_UPDATE, id, NULL));
    expect_next(s, HUB_NEXT_EMPTY);
}

static void test_snapshot_then_updates_in_order(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *s = sub_doc(f, "alice", "d", -1, &k);
    assert_true(expect(s, HUB_EV_SNAPSHOT, r0, "\"data\":{\"n\":0}"));
    for (int i = 1; i <= 5; i++)
        assert_int_equal(update(f, "d", i), r0 + i);
    for (int i = 1; i <= 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"data\":{\"n\":%d}", i);
        assert_true(expect(s, HUB_EV_UPDATE, r0 + i, want));
    }
    /* Empty: parked only when the transport may wait, and woken once by the next event. */
    expect_next(s, HUB_NEXT_EMPTY);
    assert_int_equal(k.parks, 0);
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, true, &m), HUB_NEXT_EMPTY);
    assert_int_equal(k.parks, 1);
    update(f, "d", 6);
    update(f, "d", 7);
    assert_int_equal(k.wakes, 1);
    expect_updates(s, r0 + 6, r0 + 7);
    assert_int_equal(hub_count(f->hub), 1);
    hub_sub_close(s);
    assert_int_equal(hub_count(f->hub), 0);
}

static void test_resume_replays_the_ring_or_snapshots(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *keep = sub_doc(f, "alice", "d", -1, &k); /* keeps the document watched */
    for (int i = 1; i <= 10; i++)
        update(f, "d", i);
    hub_sub_t *s = sub_doc(f, "alice", "d", r0 + 3, &k);
    expect_updates(s, r0 + 4, r0 + 10); /* exactly the missing ones */
    hub_sub_close(s);
    s = sub_doc(f, "alice", "d", r0 + 10, &k); /* current: nothing to send */
    expect_next(s, HUB_NEXT_EMPTY);
    hub_sub_close(s);
    s = sub_doc(f, "alice", "d", r0 + 99, &k); /* unknown to this process */
    assert_true(expect(s, HUB_EV_SNAPSHOT, r0 + 10, "\"n\":10"));
    hub_sub_close(s);
    hub_sub_close(keep);
    /* Past the ring: an explicit snapshot, never a gap. The entry keeps its ring while idle. */
    for (int i = 11; i <= 10 + HUB_RING_EVENTS + 5; i++)
        update(f, "d", i);
    int64_t now = r0 + 10 + HUB_RING_EVENTS + 5;
    s = sub_doc(f, "alice", "d", r0 + 1, &k);
    assert_true(expect(s, HUB_EV_SNAPSHOT, now, NULL));
    expect_next(s, HUB_NEXT_EMPTY);
    hub_sub_close(s);
    s = sub_doc(f, "alice", "d", now - HUB_RING_EVENTS, &k); /* the oldest it can replay */
    expect_updates(s, now - HUB_RING_EVENTS + 1, now);
    hub_sub_close(s);
}

static void test_slow_subscriber_is_dropped_and_resumes(void **state)
{
    fx_t *f = *state;
    sink_t slow_k = {0}, fast_k = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *slow = sub_doc(f, "alice", "d", -1, &slow_k);
    hub_sub_t *fast = sub_doc(f, "bob", "d", -1, &fast_k);
    assert_true(expect(fast, HUB_EV_SNAPSHOT, r0, NULL));
    /* The snapshot is a start event, outside the bound: 64 live events fit, the 65th drops. */
    for (int i = 1; i <= HUB_QUEUE_EVENTS; i++) {
        update(f, "d", i);
        assert_true(expect(fast, HUB_EV_UPDATE, r0 + i, NULL));
    }
    assert_int_equal(slow_k.aborts, 0);
    update(f, "d", HUB_QUEUE_EVENTS + 1);
    assert_int_equal(slow_k.aborts, 1);
    expect_next(slow, HUB_NEXT_ABORT);
    update(f, "d", HUB_QUEUE_EVENTS + 2); /* no more fan-out to it */
    assert_int_equal(slow_k.aborts, 1);
    expect_next(slow, HUB_NEXT_ABORT);
    expect_updates(fast, r0 + HUB_QUEUE_EVENTS + 1, r0 + HUB_QUEUE_EVENTS + 2);
    hub_sub_close(slow);
    /* It reconnects from the last event it had: the whole backlog is replayed (a replay is
     * not held to the live bound), then live events follow. */
    slow = sub_doc(f, "alice", "d", r0, &slow_k);
    update(f, "d", 1000);
    expect_updates(slow, r0 + 1, r0 + HUB_QUEUE_EVENTS + 3);
    assert_int_equal(slow_k.aborts, 1);
    hub_sub_close(slow);
    hub_sub_close(fast);
}

static void test_limits_per_identity_and_server(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    errmsg_t em = {{0}};
    hub_sub_t *s[4] = {0}, *extra = NULL;
    f->config.max_streams = 3;
    f->config.max_streams_per_identity = 2;
    create(f, "d", 0);
    s[0] = sub_doc(f, "alice", "d", -1, &k);
    s[1] = sub_svc(f, "alice", -1, &k);
    hub_grant_t alice = grant(f, "alice", 0), carol = grant(f, "carol", 0);
    assert_int_equal(hub_subscribe_doc(f->hub, &alice, "d", -1, "", &OPS, &k, &extra, &em),
                     TASSA_ELIMIT);
    assert_null(extra);
    assert_non_null(strstr(em.text, "for this identity (limit 2)"));
    s[2] = sub_svc(f, "bob", -1, &k);
    memset(&em, 0, sizeof em);
    assert_int_equal(hub_subscribe_service(f->hub, &carol, -1, "", &OPS, &k, &extra, &em),
                     TASSA_ELIMIT);
    assert_non_null(strstr(em.text, "on this server (limit 3)"));
    assert_int_equal(hub_count(f->hub), 3);
    hub_sub_close(s[0]); /* a closed stream frees its slot, for anyone */
    assert_int_equal(hub_subscribe_service(f->hub, &carol, -1, "", &OPS, &k, &s[3], NULL),
                     TASSA_OK);
    assert_int_equal(hub_count(f->hub), 3);
    for (int i = 1; i < 4; i++)
        hub_sub_close(s[i]);
    assert_int_equal(hub_count(f->hub), 0);
    hub_grant_clear(&alice);
    hub_grant_clear(&carol);
}

static void test_token_expiry_ends_the_stream(void **state)
{
    fx_t *f = *state;
    sink_t k = {0}, k2 = {0};
    hub_sub_t *s = NULL, *s2 = NULL;
    int64_t r0 = create(f, "d", 0);
    /* Both expire before the first heartbeat (BEAT_MS), which would wake them too. */
    hub_grant_t g = grant(f, "alice", fake_now + 500), g2 = grant(f, "bob", fake_now + 800);
    assert_int_equal(hub_subscribe_doc(f->hub, &g, "d", r0, "", &OPS, &k, &s, NULL), TASSA_OK);
    assert_int_equal(hub_subscribe_doc(f->hub, &g2, "d", r0, "", &OPS, &k2, &s2, NULL), TASSA_OK);
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, true, &m), HUB_NEXT_EMPTY);
    fake_now += 499;
    hub_tick(f->hub);
    assert_int_equal(k.wakes, 0);
    fake_now += 1;
    hub_tick(f->hub); /* at exp, without waiting for a heartbeat */
    assert_int_equal(k.wakes, 1);
    assert_true(expect(s, HUB_EV_TOKEN_EXPIRED, -1, "\"code\":20104"));
    expect_next(s, HUB_NEXT_END);
    update(f, "d", 1); /* nothing more reaches it */
    expect_next(s, HUB_NEXT_END);
    expect_updates(s2, r0 + 1, r0 + 1);
    /* A live event after exp ends the stream even before the timer runs. */
    fake_now += 300;
    update(f, "d", 2);
    assert_true(expect(s2, HUB_EV_TOKEN_EXPIRED, -1, NULL));
    expect_next(s2, HUB_NEXT_END);
    hub_sub_close(s);
    hub_sub_close(s2);
    hub_grant_clear(&g);
    hub_grant_clear(&g2);
}

static void test_heartbeat_pings_idle_and_drops_gone(void **state)
{
    fx_t *f = *state;
    sink_t idle = {0}, busy = {0}, gone = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *a = sub_doc(f, "a", "d", r0, &idle);
    hub_sub_t *b = sub_doc(f, "b", "d", r0, &busy);
    hub_sub_t *c = sub_doc(f, "c", "d", r0, &gone);
    update(f, "d", 1); /* b keeps it queued: no ping for b */
    assert_true(expect(a, HUB_EV_UPDATE, r0 + 1, NULL));
    assert_true(expect(c, HUB_EV_UPDATE, r0 + 1, NULL));
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(c, true, &m), HUB_NEXT_EMPTY);
    gone.gone = true;
    fake_now += BEAT_MS - 1;
    hub_tick(f->hub);
    expect_next(a, HUB_NEXT_EMPTY);
    assert_int_equal(gone.aborts, 0);
    fake_now += 1;
    hub_tick(f->hub);
    assert_true(expect(a, HUB_EV_PING, -1, ""));
    expect_next(a, HUB_NEXT_EMPTY);
    expect_updates(b, r0 + 1, r0 + 1);
    assert_int_equal(gone.aborts, 1); /* parked, and its peer hung up */
    assert_int_equal(gone.wakes, 1);
    expect_next(c, HUB_NEXT_ABORT);
    hub_sub_close(a);
    hub_sub_close(b);
    hub_sub_close(c);
}

static void test_acl_filters_and_ends_streams(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    errmsg_t em = {{0}}, em2 = {{0}};
    hub_sub_t *s = NULL;
    int64_t r0 = create(f, "d", 0);
    assert_int_equal(sync_service_set_acl(f->sync, "default", true, NULL), TASSA_OK);
    hub_grant_t alice = grant(f, "alice", 0);
    /* No read: 403, and the same answer for a document that does not exist. */
    assert_int_equal(hub_subscribe_doc(f->hub, &alice, "d", -1, "", &OPS, &k, &s, &em),
                     TASSA_EFORBIDDEN);
    assert_int_equal(hub_subscribe_doc(f->hub, &alice, "nope", -1, "", &OPS, &k, &s, &em2),
                     TASSA_EFORBIDDEN);
    assert_string_equal(em.text, em2.text);
    assert_null(s);
    assert_int_equal(hub_count(f->hub), 0);
    sync_perm_t p;
    assert_int_equal(sync_perm_set(f->sync, "default", "d", "alice", true, false, false, &p, NULL),
                     TASSA_OK);
    sync_perm_clear(&p);
    hub_sub_t *doc = sub_doc(f, "alice", "d", -1, &k);
    hub_sub_t *sa = sub_svc(f, "alice", -1, &k), *sb = sub_svc(f, "bob", -1, &k);
    assert_true(expect(doc, HUB_EV_SNAPSHOT, r0, NULL));
    int64_t seq = expect_kind(sa, HUB_EV_READY);
    assert_int_equal(expect_kind(sb, HUB_EV_READY), seq);
    update(f, "d", 1);
    assert_true(expect(sa, HUB_EV_UPDATE, seq + 1, "\"n\":1"));
    expect_next(sb, HUB_NEXT_EMPTY); /* bob may not read d */
    /* Revoked: alice's document stream ends at once (what was queued is dropped); a
     * service replay keeps the filter. */
    assert_int_equal(sync_perm_set(f->sync, "default", "d", "alice", false, false, false, &p, NULL),
                     TASSA_OK);
    sync_perm_clear(&p);
    assert_true(expect(doc, HUB_EV_ACCESS_CHANGED, -1, "\"code\":20403"));
    expect_next(doc, HUB_NEXT_END);
    hub_sub_close(doc);
    hub_sub_t *rb = sub_svc(f, "bob", seq, &k);
    expect_next(rb, HUB_NEXT_EMPTY);
    hub_sub_t *ra = sub_svc(f, "alice", seq, &k);
    assert_true(expect(ra, HUB_EV_UPDATE, seq + 1, NULL));
    expect_next(ra, HUB_NEXT_EMPTY);
    hub_sub_close(ra);
    hub_sub_close(rb);
    hub_sub_close(sa);
    hub_sub_close(sb);
    hub_grant_clear(&alice);
}

static void test_access_changed(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    int64_t r0 = create(f, "d", 0);
    assert_int_equal(sync_service_set_acl(f->sync, "default", true, NULL), TASSA_OK);
    sync_perm_t p;
    assert_int_equal(sync_perm_set(f->sync, "default", "d", "alice", true, false, false, &p, NULL),
                     TASSA_OK);
    sync_perm_clear(&p);
    hub_sub_t *s = sub_doc(f, "alice", "d", r0, &k);
    assert_int_equal(sync_perm_set(f->sync, "default", "d", "alice", false, false, false, &p, NULL),
                     TASSA_OK);
    sync_perm_clear(&p);
    assert_true(expect(s, HUB_EV_ACCESS_CHANGED, -1, "\"code\":20403"));
    expect_next(s, HUB_NEXT_END);
    hub_sub_close(s);
    /* ACL switched on ends every document stream of the service. */
    assert_int_equal(sync_service_set_acl(f->sync, "default", false, NULL), TASSA_OK);
    s = sub_doc(f, "bob", "d", r0, &k);
    hub_sub_t *svc = sub_svc(f, "bob", -1, &k);
    assert_int_equal(sync_service_set_acl(f->sync, "default", true, NULL), TASSA_OK);
    assert_true(expect(s, HUB_EV_ACCESS_CHANGED, -1, NULL));
    expect_next(s, HUB_NEXT_END);
    expect_kind(svc, HUB_EV_READY); /* a service stream is filtered, not ended */
    expect_next(svc, HUB_NEXT_EMPTY);
    hub_sub_close(s);
    hub_sub_close(svc);
}

static void test_service_stream_sequence_and_resume(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    hub_sub_t *s = sub_svc(f, "alice", -1, &k);
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, false, &m), HUB_NEXT_EVENT);
    assert_int_equal(m->kind, HUB_EV_READY);
    int64_t seq = m->id;
    char want[128];
    snprintf(want, sizeof want, "{\"service_sid\":\"%s\",\"seq\":%lld}", f->svc, (long long)seq);
    assert_string_equal(m->data, want);
    assert_false(m->terminal);
    hub_msg_release(m);
    create(f, "a", 0);
    create(f, "b", 0);
    update(f, "a", 1);
    sync_doc_delete(f->sync, "default", "b", NULL, NULL);
    assert_true(expect(s, HUB_EV_UPDATE, seq + 1, "\"unique_name\":\"a\""));
    assert_true(expect(s, HUB_EV_UPDATE, seq + 2, "\"unique_name\":\"b\""));
    assert_true(expect(s, HUB_EV_UPDATE, seq + 3, "\"n\":1"));
    assert_int_equal(hub_sub_next(s, false, &m), HUB_NEXT_EVENT);
    assert_int_equal(m->kind, HUB_EV_DELETED);
    assert_int_equal(m->id, seq + 4);
    assert_false(m->terminal); /* a service stream goes on */
    hub_msg_release(m);
    expect_next(s, HUB_NEXT_EMPTY);
    hub_sub_t *r = sub_svc(f, "alice", seq + 2, &k);
    assert_true(expect(r, HUB_EV_UPDATE, seq + 3, NULL));
    assert_true(expect(r, HUB_EV_DELETED, seq + 4, NULL));
    expect_next(r, HUB_NEXT_EMPTY);
    hub_sub_close(r);
    r = sub_svc(f, "alice", seq + 4, &k); /* current */
    expect_next(r, HUB_NEXT_EMPTY);
    hub_sub_close(r);
    r = sub_svc(f, "alice", 5, &k); /* older than the ring (another process's ids) */
    assert_true(expect(r, HUB_EV_RESET, seq + 4, NULL));
    expect_next(r, HUB_NEXT_EMPTY);
    hub_sub_close(r);
    hub_sub_close(s);
}

/* Past the service ring: a resume from before what it evicted gets RESET, one from the newest
 * evicted id replays the whole ring (ids need not be consecutive: see the ring's evicted). */
static void test_service_resume_past_the_ring(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    hub_sub_t *s = sub_svc(f, "alice", -1, &k);
    int64_t seq = expect_kind(s, HUB_EV_READY);
    hub_sub_close(s); /* the service's entry and ring stay */
    create(f, "a", 0);
    for (int i = 1; i < HUB_RING_EVENTS + 5; i++)
        update(f, "a", i);
    int64_t now = seq + HUB_RING_EVENTS + 5; /* the create and the updates */
    hub_sub_t *r = sub_svc(f, "alice", now - HUB_RING_EVENTS - 1, &k); /* one evicted too many */
    assert_true(expect(r, HUB_EV_RESET, now, NULL));
    expect_next(r, HUB_NEXT_EMPTY);
    hub_sub_close(r);
    r = sub_svc(f, "alice", now - HUB_RING_EVENTS, &k); /* the newest evicted: all of the ring */
    for (int64_t id = now - HUB_RING_EVENTS + 1; id <= now; id++)
        assert_true(expect(r, HUB_EV_UPDATE, id, NULL));
    expect_next(r, HUB_NEXT_EMPTY);
    hub_sub_close(r);
}

static void test_deleted_document_ends_its_stream(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *s = sub_doc(f, "alice", "d", r0, &k);
    assert_int_equal(sync_doc_delete(f->sync, "default", "d", NULL, NULL), TASSA_OK);
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(s, false, &m), HUB_NEXT_EVENT);
    assert_int_equal(m->kind, HUB_EV_DELETED);
    assert_true(m->terminal);
    hub_msg_release(m);
    expect_next(s, HUB_NEXT_END);
    hub_sub_close(s);
    hub_sub_t *none = NULL;
    hub_grant_t g = grant(f, "alice", 0);
    assert_int_equal(hub_subscribe_doc(f->hub, &g, "d", -1, "", &OPS, &k, &none, NULL),
                     TASSA_ENOTFOUND);
    assert_int_equal(hub_count(f->hub), 0);
    hub_grant_clear(&g);
}

static void test_stop_sends_reconnect_and_refuses(void **state)
{
    fx_t *f = *state;
    sink_t k1 = {0}, k2 = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *a = sub_doc(f, "alice", "d", r0, &k1);
    hub_sub_t *b = sub_svc(f, "bob", -1, &k2);
    const hub_msg_t *m = NULL;
    assert_int_equal(hub_sub_next(a, true, &m), HUB_NEXT_EMPTY);
    hub_stop(f->hub);
    hub_stop(f->hub); /* idempotent: one reconnect each */
    assert_int_equal(k1.wakes, 1);
    assert_true(expect(a, HUB_EV_RECONNECT, -1, "{\"reason\":\"draining\"}"));
    expect_next(a, HUB_NEXT_END);
    assert_int_equal(hub_sub_next(b, false, &m), HUB_NEXT_EVENT); /* ready */
    hub_msg_release(m);
    assert_true(expect(b, HUB_EV_RECONNECT, -1, NULL));
    expect_next(b, HUB_NEXT_END);
    hub_grant_t g = grant(f, "carol", 0);
    hub_sub_t *c = NULL;
    assert_int_equal(hub_subscribe_service(f->hub, &g, -1, "", &OPS, &k1, &c, NULL),
                     TASSA_EUNAVAIL);
    hub_grant_clear(&g);
    hub_sub_close(a);
    hub_sub_close(b);
}

static void test_authorise_checks_the_token(void **state)
{
    fx_t *f = *state;
    hub_grant_t g;
    errmsg_t em = {{0}};
    access_token_opts_t o = {.account_sid = ACCOUNT,
                             .api_key = "SK00000000000000000000000000000000",
                             .api_secret = SECRET,
                             .identity = "alice",
                             .sync_service_sid = "default",
                             .ttl = 600,
                             .now = time(NULL)};
    char *token = access_token_sync(&o);
    assert_non_null(token);
    assert_int_equal(hub_authorise(f->hub, token, f->svc, &g, &em), TASSA_OK);
    assert_string_equal(g.identity, "alice");
    assert_string_equal(g.service_sid, f->svc);
    /* The deadline is the token's exp on the hub's clock (10 s of slack for a slow machine). */
    assert_true(g.expires_ms > fake_now + 590000 && g.expires_ms <= fake_now + 600001);
    hub_grant_clear(&g);
    assert_int_equal(hub_authorise(f->hub, token, "IS0123456789abcdef0123456789abcdef", &g, &em),
                     TASSA_ENOTFOUND);
    assert_null(g.identity);
    free(token);
    o.sync_service_sid = "IS0123456789abcdef0123456789abcdef";
    token = access_token_sync(&o);
    assert_int_equal(hub_authorise(f->hub, token, "default", &g, &em), TASSA_EFORBIDDEN);
    free(token);
    o.api_secret = "another secret";
    token = access_token_sync(&o);
    assert_int_equal(hub_authorise(f->hub, token, "default", &g, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "Invalid sync token");
    free(token);
}

typedef struct {
    fx_t *f;
    int from;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < 15; i++)
        update(w->f, "d", w->from + i);
    return NULL;
}

/* Concurrent writers: every revision reaches the subscriber, in order, with no gap, and the
 * ring holds the same sequence. */
static void test_concurrent_writers_keep_revision_order(void **state)
{
    fx_t *f = *state;
    sink_t k = {0};
    int64_t r0 = create(f, "d", 0);
    hub_sub_t *s = sub_doc(f, "alice", "d", r0, &k);
    pthread_t t[4];
    writer_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_t){.f = f, .from = i * 100};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    expect_updates(s, r0 + 1, r0 + 60);
    hub_sub_t *r = sub_doc(f, "bob", "d", r0, &k);
    expect_updates(r, r0 + 1, r0 + 60);
    hub_sub_close(r);
    hub_sub_close(s);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_then_updates_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_replays_the_ring_or_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber_is_dropped_and_resumes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_limits_per_identity_and_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expiry_ends_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_pings_idle_and_drops_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_filters_and_ends_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_stream_sequence_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_resume_past_the_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_document_ends_its_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_sends_reconnect_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorise_checks_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_keep_revision_order, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_update_sync_doc.c - updateSyncDoc never loses a write: create-or-update by unique name
 * with If-Match, and a re-read and re-applied change after each race (412 on update, 409 on
 * create, 404 on an update of a document deleted meanwhile), against an in-memory back end
 * whose races are deterministic (fake_backend.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_backend.h"
#include "helpers/update_sync_doc.h"

/* The change under test: increment "n" (0 when absent) and remember who wrote last. */
typedef struct {
    int calls;
    bool refuse; /* leave the document as it is */
} counter_t;

static json_t *increment(void *ctx, const json_t *current, char *reason, size_t reason_len)
{
    counter_t *c = ctx;
    c->calls++;
    if (c->refuse) {
        snprintf(reason, reason_len, "nothing to do");
        return NULL;
    }
    json_int_t n = json_integer_value(json_object_get(current, "n"));
    return json_pack("{s:I, s:s}", "n", n + 1, "by", "us");
}

/* A rival that increments too (a concurrent event of the same kind). */
static void rival_increments(fake_t *f, const char *name)
{
    json_t *cur = fake_data(f, name, NULL);
    json_t *next = json_pack("{s:I, s:s}", "n", json_integer_value(json_object_get(cur, "n")) + 1,
                             "by", "rival");
    fake_put(f, name, next);
    json_decref(next);
    json_decref(cur);
}

static void rival_deletes(fake_t *f, const char *name)
{
    fake_delete(f, name);
}

static json_int_t n_of(fake_t *f, const char *name)
{
    json_t *d = fake_data(f, name, NULL);
    json_int_t n = json_integer_value(json_object_get(d, "n"));
    json_decref(d);
    return n;
}

static void creates_an_absent_document(void **state)
{
    fake_t *f = fake_new();
    counter_t c = {0};
    bool changed = false;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    assert_true(changed);
    assert_int_equal(n_of(f, "doc"), 1);
    assert_int_equal(f->creates, 1);
    assert_int_equal(f->updates, 0);
    backend_free(&f->b);
}

static void updates_with_the_revision_it_read(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 41);
    fake_put(f, "doc", start);
    counter_t c = {0};
    bool changed = false;
    long before, after;
    json_decref(fake_data(f, "doc", &before));
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    json_decref(fake_data(f, "doc", &after));
    assert_true(changed);
    assert_int_equal(n_of(f, "doc"), 42);
    assert_int_equal(after, before + 1);
    assert_int_equal(f->creates, 0);
    assert_int_equal(f->updates, 1);
    json_decref(start);
    backend_free(&f->b);
}

/* 412: a rival wrote between our read and our write, three times running. Every rival write
 * and ours survive, and the change was recomputed on the data each time. */
static void a_lost_update_race_rereads_and_reapplies(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 10);
    fake_put(f, "doc", start);
    f->rival = rival_increments;
    f->races = 3;
    counter_t c = {0};
    bool changed = false;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    assert_true(changed);
    assert_int_equal(n_of(f, "doc"), 10 + 3 + 1);
    assert_int_equal(c.calls, 4);
    assert_int_equal(f->fetches, 4);
    json_t *d = fake_data(f, "doc", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "by")), "us");
    json_decref(d);
    json_decref(start);
    backend_free(&f->b);
}

/* 409: the document did not exist when read, but a rival created it before our create. */
static void a_lost_create_race_updates_instead(void **state)
{
    fake_t *f = fake_new();
    f->rival = rival_increments;
    f->races = 1;
    counter_t c = {0};
    bool changed = false;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    assert_true(changed);
    assert_int_equal(n_of(f, "doc"), 2); /* the rival's 1, then ours */
    assert_int_equal(f->creates, 1);
    assert_int_equal(f->updates, 1);
    assert_int_equal(c.calls, 2);
    backend_free(&f->b);
}

/* 404 on update: the document was deleted meanwhile; the next round creates it. */
static void a_document_deleted_meanwhile_is_created_again(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 5);
    fake_put(f, "doc", start);
    f->rival = rival_deletes;
    f->races = 1;
    counter_t c = {0};
    bool changed = false;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    assert_true(changed);
    assert_int_equal(n_of(f, "doc"), 1); /* recomputed from "absent" */
    assert_int_equal(f->updates, 1);
    assert_int_equal(f->creates, 1);
    json_decref(start);
    backend_free(&f->b);
}

/* A rival that always wins: TASSA_ECONFLICT after UPDATE_SYNC_DOC_ATTEMPTS, and none of our
 * writes landed (every rival's did). */
static void endless_races_give_up_with_conflict(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 0);
    fake_put(f, "doc", start);
    f->rival = rival_increments;
    f->races = 1000;
    counter_t c = {0};
    bool changed = true;
    errmsg_t em = {{0}};
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, &em),
                     TASSA_ECONFLICT);
    assert_false(changed);
    assert_int_equal(c.calls, UPDATE_SYNC_DOC_ATTEMPTS);
    assert_int_equal(n_of(f, "doc"), UPDATE_SYNC_DOC_ATTEMPTS);
    json_t *d = fake_data(f, "doc", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "by")), "rival");
    json_decref(d);
    assert_non_null(strstr(em.text, "kept changing"));
    json_decref(start);
    backend_free(&f->b);
}

static void a_merge_that_declines_writes_nothing(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 7);
    fake_put(f, "doc", start);
    counter_t c = {.refuse = true};
    bool changed = true;
    char reason[64] = "x";
    long before, after;
    json_decref(fake_data(f, "doc", &before));
    assert_int_equal(
        update_sync_doc(&f->b, "doc", increment, &c, &changed, reason, sizeof reason, NULL),
        TASSA_OK);
    json_decref(fake_data(f, "doc", &after));
    assert_false(changed);
    assert_string_equal(reason, "nothing to do");
    assert_int_equal(after, before);
    assert_int_equal(f->updates + f->creates, 0);
    json_decref(start);
    backend_free(&f->b);
}

/* A 404 on create means the service itself is missing: final, not a race. */
static void a_missing_service_is_final(void **state)
{
    fake_t *f = fake_new();
    f->service_missing = true;
    counter_t c = {0};
    bool changed = true;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_ENOTFOUND);
    assert_false(changed);
    assert_int_equal(f->creates, 1);
    backend_free(&f->b);
}

static void back_end_errors_pass_through(void **state)
{
    fake_t *f = fake_new();
    f->fail_fetch = TASSA_EUPSTREAM;
    f->fail_fetch_times = 1;
    counter_t c = {0};
    bool changed = true;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_EUPSTREAM);
    assert_false(changed);
    assert_int_equal(c.calls, 0);
    assert_null(fake_data(f, "doc", NULL));
    backend_free(&f->b);
}

/* A back end with an atomic read-modify-write gets the merge itself: no fetch, no retry. */
static int applies;
static tassa_err atomic_apply(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                              bool *changed, char *reason, size_t reason_len, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    applies++;
    json_t *cur = fake_data(f, name, NULL);
    json_t *next = merge(ctx, cur, reason, reason_len);
    if (next)
        fake_put(f, name, next);
    *changed = next != NULL;
    json_decref(next);
    json_decref(cur);
    return TASSA_OK;
}

static void an_atomic_back_end_applies_in_one_step(void **state)
{
    fake_t *f = fake_new();
    f->ops.doc_apply = atomic_apply;
    applies = 0;
    counter_t c = {0};
    bool changed = false;
    assert_int_equal(update_sync_doc(&f->b, "doc", increment, &c, &changed, NULL, 0, NULL),
                     TASSA_OK);
    assert_true(changed);
    assert_int_equal(applies, 1);
    assert_int_equal(f->fetches + f->creates + f->updates, 0);
    assert_int_equal(n_of(f, "doc"), 1);
    backend_free(&f->b);
}

/* The seed's plain form also survives a race: the document ends equal to the data given. */
static void set_replaces_the_data_even_after_a_race(void **state)
{
    fake_t *f = fake_new();
    json_t *start = json_pack("{s:i}", "n", 1), *want = json_pack("{s:s}", "status", "new");
    fake_put(f, "doc", start);
    f->rival = rival_increments;
    f->races = 2;
    assert_int_equal(update_sync_doc_set(&f->b, "doc", want, NULL), TASSA_OK);
    json_t *d = fake_data(f, "doc", NULL);
    assert_true(json_equal(d, want));
    json_decref(d);
    json_decref(start);
    json_decref(want);
    backend_free(&f->b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creates_an_absent_document),
        cmocka_unit_test(updates_with_the_revision_it_read),
        cmocka_unit_test(a_lost_update_race_rereads_and_reapplies),
        cmocka_unit_test(a_lost_create_race_updates_instead),
        cmocka_unit_test(a_document_deleted_meanwhile_is_created_again),
        cmocka_unit_test(endless_races_give_up_with_conflict),
        cmocka_unit_test(a_merge_that_declines_writes_nothing),
        cmocka_unit_test(a_missing_service_is_final),
        cmocka_unit_test(back_end_errors_pass_through),
        cmocka_unit_test(an_atomic_back_end_applies_in_one_step),
        cmocka_unit_test(set_replaces_the_data_even_after_a_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_sync_doc.c - libFuzzer driver for Sync document input: the unique name and the `Data`
 * of create and update (src/engine/sync/documents.c), on a real engine over an in-memory
 * SQLite store made once per process.
 *
 * Input: unique name, Data, Data of an update, separated by '\n' (each cut at a NUL, as the
 * form decoder's C strings are). Invariants:
 *   - a refused create stores nothing: the name still answers 404;
 *   - an accepted document is fetched back by SID and by unique name with the same revision
 *     and data, its data is a compact JSON object of at most 16 KiB equal to the input's, and
 *     its REST JSON renders (the 500 of issue 9 defect 3 is a failure here);
 *   - an update either changes nothing or bumps the revision by one with the new data;
 *   - a delete leaves a clean 404, so every iteration starts from an empty service. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sync/documents.h"
#include "fuzz_common.h"
#include "base/log.h"

static sync_engine_t *engine;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    errmsg_t em = {{0}};
    store_t *s;

    log_set_level(LOG_ERROR);
    s = store_open(":memory:", &em);
    engine = s ? sync_engine_new(s, "AC00000000000000000000000000000000", "default", &em) : NULL;
    if (!engine) {
        fprintf(stderr, "cannot make the engine: %s\n", em.text);
        abort();
    }
    return 0; /* the store lives as long as the process */
}

/* The input's JSON as an object, for comparisons; NULL when it is not one. */
static json_t *as_object(const char *text)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void check_same_data(const sync_doc_t *d, const char *input)
{
    json_t *got = json_loads(d->data, 0, NULL), *want = as_object(input ? input : "{}");
    char *compact = got ? json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    FUZZ_CHECK(json_is_object(got), "stored data is not an object: %s", d->data);
    FUZZ_CHECK(strlen(d->data) <= SYNC_DOC_MAX_DATA, "stored data of %zu bytes", strlen(d->data));
    FUZZ_CHECK(compact && !strcmp(compact, d->data), "stored data is not compact");
    FUZZ_CHECK(want && json_equal(got, want), "stored data differs from the input");
    free(compact);
    json_decref(got);
    json_decref(want);
}

static void check_fetch(const char *id, const sync_doc_t *d)
{
    sync_doc_t f;
    errmsg_t em = {{0}};
    tassa_err err = sync_doc_fetch(engine, "default", id, &f, &em);

    FUZZ_CHECK(err == TASSA_OK, "stored document not fetched by %s: %s", id, em.text);
    FUZZ_CHECK(!strcmp(f.sid, d->sid) && f.revision == d->revision && !strcmp(f.data, d->data),
               "fetched document differs");
    json_t *j = sync_doc_json(&f, "AC00000000000000000000000000000000", "http://localhost");
    FUZZ_CHECK(FUZZ_KNOWN_UTF8_NAMES || json_is_object(j),
               "stored document does not render (500 forever)");
    json_decref(j);
    sync_doc_clear(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[3];
    size_t lens[3];
    char *copy = fuzz_split(data, size, '\n', 3, parts, lens);
    const char *name, *body;
    sync_doc_t d = {0}, u = {0}, f;
    errmsg_t em = {{0}};
    tassa_err err;

    if (!copy)
        return 0;
    name = lens[0] ? parts[0] : NULL;
    body = lens[1] ? parts[1] : NULL;
    err = sync_doc_create(engine, "default", name, body, 0, "system", &d, &em);
    if (err) {
        FUZZ_CHECK(err != TASSA_OK && err != TASSA_ENOMEM && err != TASSA_ESTORE,
                   "create failed with %d: %s", err, em.text);
        FUZZ_CHECK(err == TASSA_EINVAL || err == TASSA_EDOCTOOBIG || err == TASSA_EDUPNAME,
                   "unexpected error %d: %s", err, em.text);
        if (name && err != TASSA_EDUPNAME) {
            FUZZ_CHECK(sync_doc_fetch(engine, "default", name, &f, NULL) == TASSA_ENOTFOUND,
                       "a refused create left a document under its name");
        }
        goto out;
    }
    FUZZ_CHECK(d.revision >= 0, "revision %lld", (long long)d.revision);
    FUZZ_CHECK(!name || (d.unique_name && !strcmp(d.unique_name, name)), "unique name changed");
    check_same_data(&d, body);
    check_fetch(d.sid, &d);
    if (name)
        check_fetch(name, &d);
    err = sync_doc_update(engine, "default", d.sid, lens[2] ? parts[2] : NULL, -1, NULL, &u, &em);
    if (err == TASSA_OK) {
        FUZZ_CHECK(u.revision == d.revision + 1, "update moved the revision %lld -> %lld",
                   (long long)d.revision, (long long)u.revision);
        check_same_data(&u, lens[2] ? parts[2] : body);
        check_fetch(d.sid, &u);
    } else {
        FUZZ_CHECK(err == TASSA_EINVAL || err == TASSA_EDOCTOOBIG, "update error %d: %s", err,
                   em.text);
        check_fetch(d.sid, &d);
    }
    FUZZ_CHECK(sync_doc_delete(engine, "default", d.sid, NULL, &em) == TASSA_OK, "delete: %s",
               em.text);
    FUZZ_CHECK(sync_doc_fetch(engine, "default", d.sid, &f, NULL) == TASSA_ENOTFOUND,
               "deleted document still there");
    if (name)
        FUZZ_CHECK(sync_doc_fetch(engine, "default", name, &f, NULL) == TASSA_ENOTFOUND,
                   "deleted document still found by name");
out:
    sync_doc_clear(&d);
    sync_doc_clear(&u);
    free(copy);
    return 0;
}

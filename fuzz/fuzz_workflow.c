/* fuzz_workflow.c - libFuzzer driver for the workflow Configuration document
 * (tr_wfconf_parse in src/engine/taskrouter/wfconf.c, without an engine: no queue lookup).
 *
 * Input: the Configuration text (cut at the first NUL, as the form decoder hands it over).
 * Invariants for an accepted configuration: the default filter names a TaskQueue SID, every
 * filter has 1 to 100 targets that name TaskQueue SIDs, priorities and timeouts are -1 (unset)
 * or 0..2^31-1, every expression reports a source, tr_wfconf_target finds exactly the targets
 * that exist, and parsing the configuration's own compact JSON again gives the same shape.
 * A refused one comes with a detail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/wfconf.h"
#include "fuzz_common.h"

static void check_target(const tr_target_t *t)
{
    FUZZ_CHECK(sid_valid(t->queue, "WQ"), "target queue %s is not a TaskQueue SID", t->queue);
    FUZZ_CHECK(t->priority >= -1 && t->priority <= 2147483647, "priority %ld", t->priority);
    FUZZ_CHECK(t->timeout >= -1 && t->timeout <= 2147483647, "timeout %ld", t->timeout);
    FUZZ_CHECK(t->expr == NULL || expr_source(t->expr) != NULL, "expression without source");
}

static void check_conf(const tr_wfconf_t *c)
{
    FUZZ_CHECK(c->n_filters <= 1000, "%zu filters", c->n_filters);
    check_target(&c->def);
    FUZZ_CHECK(tr_wfconf_target(c, -1, 0) == &c->def, "default target not found");
    FUZZ_CHECK(tr_wfconf_target(c, -1, 1) == NULL, "a second default target");
    FUZZ_CHECK(tr_wfconf_target(c, (long)c->n_filters, 0) == NULL, "filter past the end");
    for (size_t i = 0; i < c->n_filters; i++) {
        const tr_filter_t *f = &c->filters[i];
        FUZZ_CHECK(f->expr != NULL && expr_source(f->expr) != NULL, "filter without expression");
        FUZZ_CHECK(f->n_targets >= 1 && f->n_targets <= 100, "%zu targets", f->n_targets);
        for (size_t j = 0; j < f->n_targets; j++) {
            check_target(&f->targets[j]);
            FUZZ_CHECK(tr_wfconf_target(c, (long)i, (long)j) == &f->targets[j], "target lost");
        }
        FUZZ_CHECK(tr_wfconf_target(c, (long)i, (long)f->n_targets) == NULL, "target past end");
        FUZZ_CHECK(tr_wfconf_target(c, (long)i, -1) == NULL, "negative target");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    tr_wfconf_t *c = NULL, *again = NULL;
    tassa_err err = TASSA_OK, err2 = TASSA_OK;
    errmsg_t em = {{0}};
    json_t *doc = NULL;
    char *compact = NULL;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    c = tr_wfconf_parse(NULL, text, &err, &em);
    if (!c) {
        FUZZ_CHECK(err != TASSA_OK, "NULL configuration without an error");
        FUZZ_CHECK(err == TASSA_ENOMEM || em.text[0] != '\0', "refusal without a detail");
        goto out;
    }
    FUZZ_CHECK(err == TASSA_OK, "configuration with error %d", err);
    check_conf(c);
    /* The same document in another spelling parses to the same shape. */
    doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    compact = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (compact) {
        again = tr_wfconf_parse(NULL, compact, &err2, NULL);
        FUZZ_CHECK(again != NULL, "compact form of an accepted configuration refused");
        FUZZ_CHECK(again->n_filters == c->n_filters, "filter count changed");
        FUZZ_CHECK(!strcmp(again->def.queue, c->def.queue), "default queue changed");
        for (size_t i = 0; i < c->n_filters; i++) {
            FUZZ_CHECK(again->filters[i].n_targets == c->filters[i].n_targets, "targets changed");
            FUZZ_CHECK(
                !strcmp(expr_source(again->filters[i].expr), expr_source(c->filters[i].expr)),
                "expression changed");
        }
    }
out:
    free(compact);
    json_decref(doc);
    tr_wfconf_free(again);
    tr_wfconf_free(c);
    free(text);
    return 0;
}

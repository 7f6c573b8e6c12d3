/* fuzz_expr.c - libFuzzer driver for the TaskRouter expression parser and evaluator.
 *
 * Each input is treated as expression text (cut at the first NUL, as a C caller would see
 * it), parsed, evaluated against a small fixed task/worker pair in every context shape
 * (subject only, task and worker prefixes) and freed. A rejected input must come with a
 * message naming a position; an accepted one must report its source unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/expr.h"

static const char *task_text =
    "{\"language\":\"en\",\"skill_rating\":5.5,\"level\":3,\"skills\":[\"support\",\"sales\"],"
    "\"langs\":[\"en\",\"fr\"],\"vip\":true,\"nothing\":null,\"a\":{\"b\":{\"c\":[1,2.5,\"x\"]}},"
    "\"do_not_contact\":[\"WK1\"]}";
static const char *worker_text =
    "{\"sid\":\"WK1\",\"friendly_name\":\"Alice\",\"activity_name\":\"Available\","
    "\"activity_sid\":\"WA1\",\"languages\":[\"en\"],\"level\":-2}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    json_t *task = json_loads(task_text, 0, NULL);
    json_t *worker = json_loads(worker_text, 0, NULL);
    errmsg_t em = {{0}};
    expr_t *e = NULL;

    if (src == NULL || task == NULL || worker == NULL)
        goto out;
    memcpy(src, data, size);
    src[size] = '\0';
    e = expr_parse(src, &em);
    if (e == NULL) {
        if (strstr(em.text, " at position ") == NULL && strcmp(em.text, "out of memory") != 0)
            abort(); /* every syntax error names a position */
        goto out;
    }
    if (strcmp(expr_source(e), src) != 0)
        abort();
    {
        expr_ctx_t subject_only = {.subject = task};
        expr_ctx_t routing = {.subject = worker, .task = task, .worker = worker};
        expr_ctx_t empty = {0};
        volatile bool r;

        r = expr_eval(e, &subject_only);
        r = expr_eval(e, &routing);
        r = expr_eval(e, &empty);
        r = expr_eval(e, NULL);
        (void)r;
    }
out:
    expr_free(e);
    json_decref(task);
    json_decref(worker);
    free(src);
    return 0;
}

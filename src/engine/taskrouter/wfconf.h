/* wfconf.h - a workflow Configuration document, parsed: the task_routing filters, their
 * targets and the default_filter, each with its expressions compiled.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_WFCONF_H
#define TASSA_TR_WFCONF_H

#include <stdatomic.h>
#include <stddef.h>

#include "base/err.h"
#include "base/sid.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/expr.h"

typedef struct {
    char queue[SID_LEN + 1];
    long priority, timeout; /* -1 when the target sets none */
    expr_t *expr;           /* NULL when the target sets none */
} tr_target_t;
typedef struct {
    char *name; /* filter_friendly_name, or NULL */
    expr_t *expr;
    tr_target_t *targets;
    size_t n_targets;
} tr_filter_t;
typedef struct tr_wfconf {
    tr_filter_t *filters;
    size_t n_filters;
    tr_target_t def;     /* default_filter */
    _Atomic size_t refs; /* tr_wfconf_free frees it when the last one goes */
} tr_wfconf_t;

/* Parses and checks a workflow Configuration (shape, expressions, queue SIDs existing when e is
 * not NULL, lock held). NULL with a detail in em (error TASSA_EINVAL or TASSA_EEXPR in *err,
 * TASSA_ENOMEM without detail). The caller frees the result with tr_wfconf_free. */
tr_wfconf_t *tr_wfconf_parse(tr_engine_t *e, const char *text, tassa_err *err, errmsg_t *em);

/* The parsed configuration of workflow wf_sid (lock held), or NULL when there is no such
 * workflow (wf_sid NULL included), its configuration no longer parses, or on OOM. The caller
 * frees it with tr_wfconf_free. The engine keeps the last one parsed (e->wf_cached), and gives
 * it again, shared, while the workflow's stored Configuration is the same text; so routing a
 * task reads the workflow's row but parses its configuration once per change. */
tr_wfconf_t *tr_wfconf_load(tr_engine_t *e, const char *wf_sid);

/* Lets c go: frees it when no one else holds it (the engine's cache, another caller). Accepts
 * NULL. Any thread. */
void tr_wfconf_free(tr_wfconf_t *c);

/* The target of a task at (filter_index, target_index): filter_index -1 is the default
 * filter. NULL when out of range. Borrowed from c. */
const tr_target_t *tr_wfconf_target(const tr_wfconf_t *c, long filter, long target);

#endif

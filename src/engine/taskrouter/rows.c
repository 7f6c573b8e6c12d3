/* rows.c - the rows of the TaskRouter tables as the engine reads them, with the names
 * they join, and the views expressions see of them.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/rows.h"

json_t *tr_load_workspace(tr_engine_t *e)
{
    return db_one(e->store,
                  "SELECT ws.*, da.friendly_name AS default_activity_name,"
                  " ta.friendly_name AS timeout_activity_name FROM tr_workspace ws"
                  " LEFT JOIN tr_activities da ON da.sid = ws.default_activity_sid"
                  " LEFT JOIN tr_activities ta ON ta.sid = ws.timeout_activity_sid"
                  " WHERE ws.sid = ?",
                  "s", e->ws_sid);
}

json_t *tr_load_activity(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, "SELECT * FROM tr_activities WHERE sid = ?", "s", sid);
}

json_t *tr_load_worker(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_WORKER_SELECT "WHERE w.sid = ?", "s", sid);
}

json_t *tr_load_queue(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_QUEUE_SELECT "WHERE q.sid = ?", "s", sid);
}

json_t *tr_load_workflow(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, "SELECT * FROM tr_workflows WHERE sid = ?", "s", sid);
}

json_t *tr_load_task(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_TASK_SELECT "WHERE t.sid = ?", "s", sid);
}

json_t *tr_load_reservation(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_RES_SELECT "WHERE r.sid = ?", "s", sid);
}

json_t *tr_parse_attributes(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

json_t *tr_worker_subject(const json_t *row)
{
    json_t *s = tr_parse_attributes(row_str(row, "attributes"));
    if (!s)
        return NULL;
    static const char *const keys[] = {"sid", "friendly_name", "activity_sid", "activity_name"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = row_str(row, keys[i]);
        json_object_set_new(s, keys[i], v ? json_string(v) : json_null());
    }
    return s;
}

bool tr_worker_in_queue(const json_t *subject, const expr_t *q_expr)
{
    return expr_eval(q_expr, &(expr_ctx_t){.subject = subject, .worker = subject});
}

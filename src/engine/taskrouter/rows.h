/* rows.h - the rows of the TaskRouter tables as typed structs, with the names they join, and
 * the view the expressions see of a worker.
 *
 * Each resource has a struct (tr_worker_t ...), a SELECT head that lists its columns in the
 * struct's order (TR_WORKER_SELECT ..., ending before WHERE), a loader by SID and a reader of
 * the current row of a statement that ran its SELECT head. The column list and the struct
 * are tied in rows.c by one table per resource, so that a field that does not exist is a
 * compile error. Text fields are malloc'd copies (NULL for SQL NULL); integer fields that may
 * be NULL read as -1. tr_*_clear frees a row's text and zeroes it (a zeroed row is empty).
 *
 * Not for use outside engine/taskrouter. Everything here needs the store lock held.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_ROWS_H
#define TASSA_TR_ROWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/expr.h"

typedef struct {
    char *sid, *friendly_name, *event_callback_url, *events_filter, *prioritize_queue_order;
    char *default_activity_sid, *default_activity_name, *timeout_activity_sid;
    char *timeout_activity_name;
    bool multi_task_enabled;
    int64_t date_created, date_updated;
} tr_workspace_t;

typedef struct {
    char *sid, *friendly_name;
    bool available;
    int64_t date_created, date_updated;
} tr_activity_t;

typedef struct {
    char *sid, *friendly_name, *attributes, *activity_sid;
    char *activity_name; /* joined */
    bool available;      /* the activity's */
    int64_t date_created, date_updated, date_status_changed, idle_since;
} tr_worker_t;

typedef struct {
    char *sid, *friendly_name, *target_workers, *task_order;
    char *reservation_activity_sid, *reservation_activity_name; /* name joined */
    char *assignment_activity_sid, *assignment_activity_name;   /* name joined */
    int64_t max_reserved_workers, date_created, date_updated;
} tr_queue_t;

typedef struct {
    char *sid, *friendly_name, *configuration, *assignment_callback_url;
    char *fallback_assignment_callback_url;
    int64_t task_reservation_timeout, date_created, date_updated;
} tr_workflow_t;

typedef struct {
    char *sid, *attributes, *status, *reason, *channel, *workflow_sid, *queue_sid, *filter_name;
    char *queue_name, *task_order, *workflow_name; /* joined */
    int64_t seq, priority, timeout, filter_index, target_index;
    int64_t queue_entered_ms, target_deadline, ttl_deadline; /* -1 when unset */
    int64_t date_created, date_updated;
} tr_task_t;

typedef struct {
    char *sid, *task_sid, *worker_sid, *status;
    char *worker_name; /* joined */
    int64_t deadline;  /* -1 when unset */
    int64_t date_created, date_updated;
} tr_reservation_t;

typedef struct {
    char *sid, *event_type, *resource_type, *resource_sid, *description, *task_sid;
    char *worker_sid, *reservation_sid, *queue_sid, *workflow_sid;
    char *params;                  /* the whole parameter set (JSON object text) once read */
    int64_t seq, date_ms, wait_ms; /* wait_ms -1 when unset */
    char *base;                    /* the task's parameter set it was stored against, or NULL */
    char *members; /* the events after this one in its row (record.c's groups), or NULL */
} tr_event_t;

/* The SELECT heads, in each struct's column order. */
#define TR_WORKSPACE_SELECT                                                                        \
    "SELECT ws.sid, ws.friendly_name, ws.event_callback_url, ws.events_filter,"                    \
    " ws.prioritize_queue_order, ws.default_activity_sid, da.friendly_name,"                       \
    " ws.timeout_activity_sid, ta.friendly_name, ws.multi_task_enabled, ws.date_created,"          \
    " ws.date_updated FROM tr_workspace ws"                                                        \
    " LEFT JOIN tr_activities da ON da.sid = ws.default_activity_sid"                              \
    " LEFT JOIN tr_activities ta ON ta.sid = ws.timeout_activity_sid "
#define TR_ACTIVITY_SELECT                                                                         \
    "SELECT sid, friendly_name, available, date_created, date_updated FROM tr_activities "
#define TR_WORKER_SELECT                                                                           \
    "SELECT w.sid, w.friendly_name, w.attributes, w.activity_sid, a.friendly_name, a.available,"   \
    " w.date_created, w.date_updated, w.date_status_changed, w.idle_since"                         \
    " FROM tr_workers w LEFT JOIN tr_activities a ON a.sid = w.activity_sid "
#define TR_WORKER_NCOLS 10 /* a column after TR_WORKER_SELECT's is at this index */
#define TR_QUEUE_SELECT                                                                            \
    "SELECT q.sid, q.friendly_name, q.target_workers, q.task_order,"                               \
    " q.reservation_activity_sid, ra.friendly_name, q.assignment_activity_sid, aa.friendly_name,"  \
    " q.max_reserved_workers, q.date_created, q.date_updated FROM tr_queues q"                     \
    " LEFT JOIN tr_activities ra ON ra.sid = q.reservation_activity_sid"                           \
    " LEFT JOIN tr_activities aa ON aa.sid = q.assignment_activity_sid "
#define TR_WORKFLOW_SELECT                                                                         \
    "SELECT sid, friendly_name, configuration, assignment_callback_url,"                           \
    " fallback_assignment_callback_url, task_reservation_timeout, date_created, date_updated"      \
    " FROM tr_workflows "
#define TR_TASK_SELECT                                                                             \
    "SELECT t.sid, t.attributes, t.status, t.reason, t.channel, t.workflow_sid, t.queue_sid,"      \
    " t.filter_name, q.friendly_name, q.task_order, wf.friendly_name, t.seq, t.priority,"          \
    " t.timeout, t.filter_index, t.target_index, t.queue_entered_ms, t.target_deadline,"           \
    " t.ttl_deadline, t.date_created, t.date_updated FROM tr_tasks t"                              \
    " LEFT JOIN tr_queues q ON q.sid = t.queue_sid"                                                \
    " LEFT JOIN tr_workflows wf ON wf.sid = t.workflow_sid "
#define TR_RES_SELECT                                                                              \
    "SELECT r.sid, r.task_sid, r.worker_sid, r.status, w.friendly_name, r.deadline,"               \
    " r.date_created, r.date_updated FROM tr_reservations r"                                       \
    " LEFT JOIN tr_workers w ON w.sid = r.worker_sid "
/* An event's params are its whole parameter set (base_id NULL), or what differs from its
 * task's parameter set in tr_event_bases (record.c); reading the row merges them. A row with
 * base_id 0 holds the set itself (a new task's first row): it reads as an empty delta against
 * its params, and so do its members' deltas. */
#define TR_EVENT_SELECT                                                                            \
    "SELECT ev.sid, ev.event_type, ev.resource_type, ev.resource_sid, ev.description,"             \
    " ev.task_sid, ev.worker_sid, ev.reservation_sid, ev.queue_sid, ev.workflow_sid,"              \
    " CASE WHEN ev.base_id = 0 THEN '{}' ELSE ev.params END, ev.seq, ev.date_ms, ev.wait_ms,"      \
    " CASE WHEN ev.base_id = 0 THEN ev.params ELSE b.params END, ev.members FROM tr_events ev"     \
    " LEFT JOIN tr_event_bases b ON b.id = ev.base_id "

/* Status lists as SQL IN lists (the waiting ones are base/task_order.h's TASK_WAITING_SQL):
 * a task not yet finished; a reservation that holds its worker (one task per worker); a
 * reservation whose worker has the task. */
#define TR_TASK_OPEN_SQL    "('pending', 'reserved', 'assigned', 'wrapping')"
#define TR_RES_HOLDING_SQL  "('pending', 'accepted', 'wrapping')"
#define TR_RES_ASSIGNED_SQL "('accepted', 'wrapping')"

/* The engine's queue order over TR_TASK_SELECT's t and q (for ORDER BY): priority, then time in
 * the queue (LIFO queues: newest first), then creation. */
#define TR_QUEUE_ORDER_SQL                                                                         \
    "t.priority DESC, CASE WHEN q.task_order = 'LIFO' THEN -t.queue_entered_ms"                    \
    " ELSE t.queue_entered_ms END, t.seq"

/* Event rows stored against a task's parameter set (record.c): the parameters that are
 * columns of the row (Sid, EventType, ResourceType, ResourceSid, EventDescription, Timestamp,
 * TimestampMs); tr_event_column_key says whether k is one. */
#define TR_EVENT_COLUMN_N 7
extern const char *const TR_EVENT_COLUMN_KEYS[TR_EVENT_COLUMN_N];
bool tr_event_column_key(const char *k);
/* The description ev_new gives an event without one ("Type Sid type"), malloc'd; NULL on
 * OOM. Any thread. */
char *tr_event_default_description(const char *rtype, const char *rsid, const char *type);
/* The whole parameter set of the event row r (its columns) from base and delta (JSON texts,
 * record.h's ev_delta), as compact JSON text (malloc'd); NULL on OOM or unparsable text.
 * tr_event_row_merge merges an event row this way. Any thread. */
char *tr_event_merge(const char *base, const char *delta, const tr_event_t *r);

/* A row type: how the rows of one SELECT head are read and freed (rows.c). */
typedef struct tr_rowtype tr_rowtype_t;
extern const tr_rowtype_t TR_WORKSPACE_ROW, TR_ACTIVITY_ROW, TR_WORKER_ROW, TR_QUEUE_ROW,
    TR_WORKFLOW_ROW, TR_TASK_ROW, TR_RES_ROW;
/* Event rows read as stored: params may still be a delta against base (no JSON is parsed
 * while the store lock is held); tr_event_row_merge then gives the whole set, in any
 * thread. */
extern const tr_rowtype_t TR_EVENT_RAW_ROW;
/* Replaces r's params with the whole parameter set when it is a delta against r->base, and
 * frees base. False on OOM or unparsable text. Any thread. */
bool tr_event_row_merge(tr_event_t *r);

/* One row of tr_events may hold several events of one task (record.c's groups, ev_group_begin):
 * the row's own event, then its members, each a line "EventType\tdelta\n" in the members
 * column. A member shares the row's columns but its type and resource (tr_event_resource) and
 * its SID: the row's SID, which ends in 0, with its last digit the member's number (1-15).
 *
 * tr_event_count: how many events raw row r holds (1 + its members). tr_event_nth fills out
 * (empty) with event k of raw row r (0: the row's own) as a raw row (TR_EVENT_RAW_ROW's form:
 * params still a delta against base), its description filled; false on OOM or k out of range.
 * tr_event_group_sid: the SID of the row that holds member sid (a copy with last digit 0,
 * into head) and the member's number; 0 when sid cannot be a member's. Any thread. */
#define TR_EVENT_MEMBERS_MAX 15
size_t tr_event_count(const tr_event_t *r);
bool tr_event_nth(const tr_event_t *r, size_t k, tr_event_t *out);
size_t tr_event_group_sid(const char *sid, char head[SID_LEN + 1]);
/* Sets the last digit of sid (SID_LEN long) to that of event k of its row (0: the row's own). */
void tr_event_member_sid(char sid[SID_LEN + 1], size_t k);
/* The resource type an event type reports on: Reservation, TaskQueue, Workflow or Task. */
const char *tr_event_resource_type(const char *event_type);
/* The sid of the resource of type rtype (tr_event_resource_type) among an event's task, queue,
 * workflow and reservation sids (borrowed; any may be NULL). */
const char *tr_event_resource_sid(const char *rtype, const char *task_sid, const char *queue_sid,
                                  const char *workflow_sid, const char *reservation_sid);

/* Reads the current row of st (a statement of type's SELECT head) into row, which must be
 * empty (zeroed or cleared). False on OOM (row left empty). */
bool rows_read(const tr_rowtype_t *type, store_stmt_t *st, void *row);

/* Frees the text of row and zeroes it. Accepts an empty row. */
void rows_clear(const tr_rowtype_t *type, void *row);

/* Appends an empty (zeroed) row of type to the *n rows of the array *rows (capacity *cap; all
 * three 0/NULL to begin), growing it by doubling; the new row, or NULL on OOM (then nothing
 * changed). The caller frees them with rows_free (or each with rows_clear, then the array with
 * free). rows_all, tr_list and tr_event_list grow their arrays with it. */
void *rows_push(const tr_rowtype_t *type, void **rows, size_t *n, size_t *cap);

/* The first row of sql (type's SELECT head and a tail, bound as db_query) into row (empty on
 * entry). False when there is none, on failure or on OOM (row left empty). */
bool rows_one(tr_engine_t *e, const tr_rowtype_t *type, void *row, const char *sql,
              const char *types, ...);

/* Every row of sql into *rows, a new array of *n rows of type that the caller frees with
 * rows_free. TASSA_ESTORE or TASSA_ENOMEM (then *rows NULL, *n 0). */
tassa_err rows_all(tr_engine_t *e, const tr_rowtype_t *type, void **rows, size_t *n,
                   const char *sql, const char *types, ...);

/* Clears and frees an array from rows_all. Accepts NULL. */
void rows_free(const tr_rowtype_t *type, void *rows, size_t n);

/* The row sid of type into row (empty on entry). False when absent or on failure. */
bool rows_load(tr_engine_t *e, const tr_rowtype_t *type, const char *sid, void *row);

/* Loaders: the row sid (or the engine's workspace) into *out, which must be empty. False when
 * absent or on failure (then *out is empty). */
bool tr_workspace_load(tr_engine_t *e, tr_workspace_t *out);
bool tr_activity_load(tr_engine_t *e, const char *sid, tr_activity_t *out);
bool tr_worker_load(tr_engine_t *e, const char *sid, tr_worker_t *out);
bool tr_queue_load(tr_engine_t *e, const char *sid, tr_queue_t *out);
bool tr_workflow_load(tr_engine_t *e, const char *sid, tr_workflow_t *out);
bool tr_task_load(tr_engine_t *e, const char *sid, tr_task_t *out);
bool tr_reservation_load(tr_engine_t *e, const char *sid, tr_reservation_t *out);

/* Lists the rows of sql (a SELECT head of type and a tail, bound as db_query) that pred
 * accepts (NULL: all), skipping offset of them and rendering at most limit with render into
 * *items (a new array); *more tells whether another accepted row follows. Callbacks get the
 * row as a pointer to type's struct. Takes the store lock: call without it. pred runs under
 * the lock (keep it to column tests; an expression filter parses there, the one exception);
 * the page's rows are kept and render runs after the lock, so it must not touch the store. */
typedef bool (*tr_pred_fn)(void *ctx, const void *row);
typedef json_t *(*tr_render_fn)(void *ctx, const void *row);
tassa_err tr_list(tr_engine_t *e, const tr_rowtype_t *type, tr_pred_fn pred, tr_render_fn render,
                  void *ctx, long offset, long limit, json_t **items, bool *more, const char *sql,
                  const char *types, ...);

/* Parses a task's attributes text into a new object (an empty one if it does not parse or
 * text is NULL). NULL on OOM. */
json_t *tr_parse_attributes(const char *text);

/* The subject an expression sees for a worker: its attributes plus sid, friendly_name,
 * activity_sid, activity_name. New reference (an empty object when the attributes are not an
 * object); NULL on OOM. */
json_t *tr_worker_subject(const tr_worker_t *w);

/* True when a worker, seen as subject (tr_worker_subject), is eligible for a queue whose
 * parsed TargetWorkers is q_expr (borrowed). */
bool tr_worker_in_queue(const json_t *subject, const expr_t *q_expr);

/* The common fetch: loads the row sid of type under the store lock (call without it) and
 * renders it with render(ctx, row) into *out; the 404 (`what` names the collection) when
 * absent, TASSA_ENOMEM when render fails. */
tassa_err tr_fetch(tr_engine_t *e, const tr_rowtype_t *type, tr_render_fn render, void *ctx,
                   const char *what, const char *sid, json_t **out, errmsg_t *em);

/* The largest render context tr_render_locked keeps. */
#define TR_RENDER_CTX_MAX 64

/* The answer of a write (lock held, the row sid of type just written), rendered into *out once
 * the section has ended: loads the row now and keeps it with render and a copy of ctx
 * (ctx_size bytes, at most TR_RENDER_CTX_MAX; what it points to must outlive the section);
 * tr_txn_end_out renders it after the commit, outside the store lock (tr_txn_later). Nothing when
 * out is NULL. TASSA_ENOMEM when it cannot. One per thread: a later call replaces an earlier one.
 */
tassa_err tr_render_locked(tr_engine_t *e, const tr_rowtype_t *type, tr_render_fn render, void *ctx,
                           size_t ctx_size, const char *sid, json_t **out);

#endif

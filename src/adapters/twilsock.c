/* twilsock.c - Sync over twilsock V3.0 (twilio-sync's transport) on the embedded engine.
 *
 * Design. Each WebSocket connection is a session (sess_t), touched only on the WebSocket I/O
 * thread (http/ws.h), so it needs no lock. An accepted init subscribes the session to the live
 * hub's service stream (one hub subscription per connection, whatever the number of documents):
 * the hub filters by ACL, bounds the queue and ends the stream at the token's exp; the session
 * keeps the set of documents the client subscribed to and turns the hub's events for them into
 * twilsock notifications. The hub's wake only calls ws_wake; the events are taken in on_wake,
 * which runs after the on_message that caused them, so a writer's reply always goes out before
 * the notifications of its write.
 *
 * Replay: an establish reads the document and, when the client's last_event_id is older,
 * sends it as one document_updated before subscription_established. A session remembers the
 * last id it sent per document and never sends an older or equal one, so an event that raced
 * with that read is not sent twice. A hub RESET (a resume older than the ring, after a token
 * update) re-reads every subscribed document the same way.
 *
 * Layer: adapters.
 */
#include "adapters/twilsock.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access_token.h"
#include "auth/verify_token.h"
#include "base/log.h"
#include "base/params.h"
#include "base/sid.h"
#include "base/timefmt.h"

#define MAGIC            "TWILSOCK V3.0 "
#define INIT_DEADLINE_MS 10000 /* an init must come this soon after the upgrade */
#define EXPIRY_LEAD_S    180   /* token_about_to_expire this long before exp (Twilio's) */
#define DELIVERY_MS      5000  /* estimated_delivery_in_ms of the subscription answer */
#define MAX_BATCH        100   /* max_batch_size */
#define CODE_DOC_GONE    54100 /* Twilio Sync: document not found */
#define CODE_FORBIDDEN   54007 /* Twilio Sync: access forbidden for identity */
#define CODE_UNSUPPORTED 20501

struct twilsock {
    twilsock_deps_t deps;
    ws_handler_t handler;
};

typedef struct {
    char sid[SID_LEN + 1];
    int64_t last; /* the last event id the client has (sent, or given by it) */
} sub_doc_t;

typedef struct {
    twilsock_t *t;
    ws_conn_t *conn;
    int64_t opened_ms;
    bool ready, closing;
    hub_grant_t g;
    int64_t exp_s, iat_s; /* the token's exp and iat (wall clock seconds) */
    bool warned, expired;
    hub_sub_t *sub;
    int64_t last_seq; /* the last service stream sequence number seen */
    sub_doc_t *docs;
    size_t ndocs, cap;
    char base[300]; /* "http://host:port" of the client's cdsUri, for descriptor URLs */
} sess_t;

/* ---- frames ---- */

tassa_err twilsock_parse(const uint8_t *buf, size_t len, twilsock_frame_t *out, errmsg_t *em)
{
    memset(out, 0, sizeof *out);
    size_t mlen = sizeof MAGIC - 1;
    if (!buf || len < mlen || memcmp(buf, MAGIC, mlen) != 0)
        return err_set(em, TASSA_EINVAL, "not a TWILSOCK V3.0 frame");
    size_t p = mlen, hlen = 0, digits = 0;
    while (p < len && buf[p] >= '0' && buf[p] <= '9' && digits < 9) {
        hlen = hlen * 10 + (size_t)(buf[p] - '0');
        p++;
        digits++;
    }
    if (!digits || p + 2 > len || buf[p] != '\r' || buf[p + 1] != '\n')
        return err_set(em, TASSA_EINVAL, "bad TWILSOCK header length");
    if (hlen == 0 || hlen > TWILSOCK_MAX_HEADER)
        return err_set(em, TASSA_EINVAL, "TWILSOCK header length out of range");
    p += 2;
    if (hlen > len - p)
        return err_set(em, TASSA_EINVAL, "TWILSOCK header cut short");
    json_error_t je;
    json_t *h = json_loadb((const char *)buf + p, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h || !json_is_object(h) || !json_is_string(json_object_get(h, "method"))) {
        json_decref(h);
        return err_set(em, TASSA_EINVAL, "TWILSOCK header is not a JSON object with a method");
    }
    p += hlen;
    const json_t *ps = json_object_get(h, "payload_size"); /* borrowed */
    json_int_t psize = 0;
    if (ps) {
        if (!json_is_integer(ps) || json_integer_value(ps) < 0) {
            json_decref(h);
            return err_set(em, TASSA_EINVAL, "payload_size must be a non-negative integer");
        }
        psize = json_integer_value(ps);
    }
    if (psize > 0) {
        if (len - p < 2 || buf[p] != '\r' || buf[p + 1] != '\n' ||
            (uint64_t)psize > (uint64_t)(len - p - 2)) {
            json_decref(h);
            return err_set(em, TASSA_EINVAL, "TWILSOCK payload cut short");
        }
        out->payload = buf + p + 2;
        out->payload_len = (size_t)psize;
    }
    out->header = h;
    return TASSA_OK;
}

uint8_t *twilsock_build(const json_t *header, const void *payload, size_t payload_len,
                        size_t *out_len)
{
    *out_len = 0;
    if (!json_is_object(header))
        return NULL;
    json_t *h = json_copy((json_t *)header); /* shallow: a new object, borrowed members */
    if (!h || json_object_set_new(h, "payload_size", json_integer((json_int_t)payload_len))) {
        json_decref(h);
        return NULL;
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text)
        return NULL;
    size_t hl = strlen(text);
    char head[40];
    int n = snprintf(head, sizeof head, MAGIC "%zu\r\n", hl);
    size_t total = (size_t)n + hl + 2 + payload_len;
    uint8_t *out = malloc(total);
    if (out) {
        memcpy(out, head, (size_t)n);
        memcpy(out + n, text, hl);
        memcpy(out + n + hl, "\r\n", 2);
        if (payload_len)
            memcpy(out + n + hl + 2, payload, payload_len);
        *out_len = total;
    }
    free(text);
    return out;
}

/* ---- sending ---- */

/* Sends hdr (stolen) with payload as one binary message. */
static void send_frame(sess_t *s, json_t *hdr, const void *payload, size_t len)
{
    size_t n;
    uint8_t *f = hdr ? twilsock_build(hdr, payload, len, &n) : NULL;
    json_decref(hdr);
    if (f && ws_send(s->conn, true, f, n) == TASSA_ELIMIT)
        log_info("event=twilsock_dropped reason=slow_client");
    free(f);
}

/* Sends hdr (stolen) with body (stolen, may be NULL) as its JSON payload. */
static void send_json(sess_t *s, json_t *hdr, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (hdr && text)
        json_object_set_new(hdr, "payload_type", json_string("application/json"));
    send_frame(s, hdr, text, text ? strlen(text) : 0);
    free(text);
}

static json_t *new_id(void)
{
    char hex[33];
    if (sid_random_hex(hex, 16))
        return json_string("TM00000000000000000000000000000000");
    char id[36];
    snprintf(id, sizeof id, "TM%s", hex);
    return json_string(id);
}

/* A twilsock-level reply to request id: status code/text, the SDK's error fields, extra
 * header fields (stolen, may be NULL) and a JSON payload (stolen, may be NULL). */
static void reply_status_body(sess_t *s, const char *id, int code, const char *status,
                              const char *description, int error_code, json_t *extra, json_t *body)
{
    json_t *st = json_pack("{s:i, s:s}", "code", code, "status", status);
    if (st && description)
        json_object_set_new(st, "description", json_string(description));
    if (st && error_code)
        json_object_set_new(st, "errorCode", json_integer(error_code));
    json_t *h = json_pack("{s:s, s:s, s:o}", "method", "reply", "id", id ? id : "", "status", st);
    if (h && extra)
        json_object_update(h, extra);
    json_decref(extra);
    send_json(s, h, body);
}

static void reply_status(sess_t *s, const char *id, int code, const char *status,
                         const char *description, int error_code, json_t *extra)
{
    reply_status_body(s, id, code, status, description, error_code, extra, NULL);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return code < 400 ? "OK" : "Internal Server Error";
    }
}

/* The reply to an upstream request: twilsock status 200, the HTTP answer in http_status. */
static void reply_http(sess_t *s, const char *id, int code, json_t *body)
{
    json_t *h =
        json_pack("{s:s, s:s, s:{s:i, s:s}, s:{s:i, s:s}, s:{s:s}}", "method", "reply", "id", id,
                  "status", "code", 200, "status", "OK", "http_status", "code", code, "status",
                  reason_phrase(code), "http_headers", "Content-Type", "application/json");
    send_json(s, h, body);
}

/* Twilio's error body for an upstream request. */
static void reply_error(sess_t *s, const char *id, int status, int code, const char *message)
{
    reply_http(s, id, status,
               json_pack("{s:i, s:i, s:s, s:s}", "status", status, "code", code, "message", message,
                         "more_info", "https://www.twilio.com/docs/errors"));
}

static void reply_err(sess_t *s, const char *id, tassa_err err, const errmsg_t *em)
{
    int status = tassa_err_status(err), code = tassa_err_code(err);
    if (err == TASSA_ENOTFOUND)
        code = CODE_DOC_GONE;
    else if (err == TASSA_EFORBIDDEN)
        code = CODE_FORBIDDEN;
    reply_error(s, id, status, code, err_text(em, err));
}

static void notify(sess_t *s, const char *message_type, json_t *payload)
{
    json_t *h = json_pack("{s:s, s:o, s:s}", "method", "notification", "id", new_id(),
                          "message_type", message_type);
    send_json(s, h, payload);
}

/* ---- documents ---- */

static json_t *descriptor(const sess_t *s, const sync_doc_t *d)
{
    char url[420], rev[24], created[TIMEFMT_LEN], updated[TIMEFMT_LEN], expires[TIMEFMT_LEN];
    snprintf(url, sizeof url, "%s/v3/Documents/%s", s->base, d->sid);
    snprintf(rev, sizeof rev, "%lld", (long long)d->revision);
    timefmt_iso(d->created_ms, created);
    timefmt_iso(d->updated_ms, updated);
    if (d->expires_ms)
        timefmt_iso(d->expires_ms, expires);
    json_t *data = json_loads(d->data ? d->data : "{}", 0, NULL);
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:s?, s:s}", "sid", d->sid,
                     "unique_name", d->unique_name, "service_sid", d->service_sid, "url", url,
                     "revision", rev, "last_event_id", (json_int_t)d->revision, "data",
                     data ? data : json_object(), "date_created", created, "date_updated", updated,
                     "date_expires", d->expires_ms ? expires : NULL, "created_by", d->created_by);
}

static sub_doc_t *sub_find(sess_t *s, const char *sid)
{
    for (size_t i = 0; i < s->ndocs; i++)
        if (strcmp(s->docs[i].sid, sid) == 0)
            return &s->docs[i];
    return NULL;
}

static void sub_remove(sess_t *s, const char *sid)
{
    sub_doc_t *d = sub_find(s, sid);
    if (d)
        *d = s->docs[--s->ndocs];
}

static void send_updated(sess_t *s, sub_doc_t *sd, const char *sid, int64_t rev, json_t *data,
                         const char *date)
{
    char r[24];
    snprintf(r, sizeof r, "%lld", (long long)rev);
    sd->last = rev;
    notify(s, "com.twilio.rtd.cds.document",
           json_pack("{s:s, s:{s:I, s:s, s:s, s:O, s:s}}", "event_type", "document_updated",
                     "event", "id", (json_int_t)rev, "document_sid", sid, "document_revision", r,
                     "document_data", data, "date_created", date));
}

static void send_removed(sess_t *s, const char *sid, int64_t id)
{
    char now[TIMEFMT_LEN];
    timefmt_iso((int64_t)time(NULL) * 1000, now);
    notify(s, "com.twilio.rtd.cds.document",
           json_pack("{s:s, s:{s:I, s:s, s:s}}", "event_type", "document_removed", "event", "id",
                     (json_int_t)id, "document_sid", sid, "date_created", now));
    sub_remove(s, sid);
}

/* Re-reads subscribed document sd and sends what the client lacks: its state when newer than
 * sd->last, or (tell_removed) its removal. Returns false when it is gone (sd is then
 * removed). */
static bool catch_up(sess_t *s, sub_doc_t *sd, bool tell_removed)
{
    sync_doc_t d;
    errmsg_t em = {{0}};
    char sid[SID_LEN + 1];
    memcpy(sid, sd->sid, sizeof sid);
    if (sync_doc_fetch(s->t->deps.sync, s->g.service_sid, sid, &d, &em)) {
        if (tell_removed)
            send_removed(s, sid, sd->last + 1);
        else
            sub_remove(s, sid);
        return false;
    }
    if (d.revision > sd->last) {
        json_t *data = json_loads(d.data ? d.data : "{}", 0, NULL);
        char updated[TIMEFMT_LEN];
        timefmt_iso(d.updated_ms, updated);
        if (data)
            send_updated(s, sd, d.sid, d.revision, data, updated);
        json_decref(data);
    }
    sync_doc_clear(&d);
    return true;
}

/* Is the service's ACL on? */
static bool acl_on(sess_t *s)
{
    json_t *svc = sync_service_json(s->t->deps.sync, s->g.service_sid, "http://localhost");
    bool on = !svc || json_is_true(json_object_get(svc, "acl_enabled"));
    json_decref(svc);
    return on;
}

/* May the session's identity do `need` ('r' read, 'w' write, 'm' manage) on doc_id? */
static tassa_err acl_check(sess_t *s, const char *doc_id, char need, errmsg_t *em)
{
    if (!acl_on(s))
        return TASSA_OK;
    bool ok = false;
    if (need == 'r') {
        if (sync_acl_can_read(s->t->deps.sync, s->g.service_sid, doc_id, s->g.identity, &ok))
            ok = false;
    } else {
        sync_perm_t p;
        if (!sync_perm_fetch(s->t->deps.sync, s->g.service_sid, doc_id, s->g.identity, &p, NULL)) {
            ok = need == 'w' ? p.write : p.manage;
            sync_perm_clear(&p);
        }
    }
    if (ok)
        return TASSA_OK;
    return err_set(em, TASSA_EFORBIDDEN, "The identity %.100s may not %s this document",
                   s->g.identity,
                   need == 'r'   ? "read"
                   : need == 'w' ? "write"
                                 : "delete");
}

/* Decodes a percent-encoded path segment into out (n bytes); false when malformed, not
 * UTF-8, or holding a NUL or '/'. */
static bool decode_segment(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        int ch = (unsigned char)*p;
        if (ch == '/')
            return false;
        if (ch == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return false;
            char hx[3] = {p[1], p[2], 0};
            ch = (int)strtol(hx, NULL, 16);
            p += 2;
        }
        if (ch == 0 || o + 1 >= n)
            return false;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return o > 0 && params_utf8_valid(out, o);
}

/* The value of header name of an upstream request (case-insensitive), or NULL. Borrowed. */
static const char *req_header(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (strcasecmp(k, name) == 0 && json_is_string(v))
            return json_string_value(v);
    }
    return NULL;
}

/* If-Match without the quotes an ETag may have, into buf; NULL when absent. */
static const char *if_match(const json_t *headers, char *buf, size_t n)
{
    const char *v = req_header(headers, "If-Match");
    if (!v)
        return NULL;
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    snprintf(buf, n, "%.*s", (int)len, v);
    return buf;
}

/* Reads the body's "data" (an object, as compact text into *data, malloc'd; NULL when
 * absent) and "ttl" (-1 when absent). */
static tassa_err read_doc_body(const json_t *body, char **data, long *ttl, errmsg_t *em)
{
    *data = NULL;
    *ttl = -1;
    const json_t *d = json_object_get(body, "data"), *t = json_object_get(body, "ttl");
    if (t && !json_is_null(t)) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 31536000)
            return err_set(em, TASSA_EINVAL, "ttl must be a number of seconds up to 31536000");
        *ttl = (long)json_integer_value(t);
    }
    if (d && !json_is_null(d)) {
        if (!json_is_object(d))
            return err_set(em, TASSA_EINVAL, "data must be a JSON object");
        if (!(*data = json_dumps(d, JSON_COMPACT)))
            return TASSA_ENOMEM;
    }
    return TASSA_OK;
}

static void doc_get(sess_t *s, const char *id, const char *doc_id)
{
    errmsg_t em = {{0}};
    sync_doc_t d;
    tassa_err err = acl_check(s, doc_id, 'r', &em);
    if (!err)
        err = sync_doc_fetch(s->t->deps.sync, s->g.service_sid, doc_id, &d, &em);
    if (err) {
        reply_err(s, id, err, &em);
        return;
    }
    reply_http(s, id, 200, descriptor(s, &d));
    sync_doc_clear(&d);
}

static void doc_create(sess_t *s, const char *id, const json_t *body)
{
    errmsg_t em = {{0}};
    sync_doc_t d;
    char *data = NULL;
    long ttl;
    const json_t *un = json_object_get(body, "unique_name");
    tassa_err err = read_doc_body(body, &data, &ttl, &em);
    if (!err && un && !json_is_null(un) && !json_is_string(un))
        err = err_set(&em, TASSA_EINVAL, "unique_name must be a string");
    if (!err && acl_on(s))
        err = err_set(&em, TASSA_EFORBIDDEN,
                      "With the service's ACL on, documents are created with account "
                      "credentials (REST), not with a sync token");
    if (!err)
        err = sync_doc_create(s->t->deps.sync, s->g.service_sid, json_string_value(un), data,
                              ttl < 0 ? 0 : ttl, s->g.identity, &d, &em);
    free(data);
    if (err) {
        reply_err(s, id, err, &em);
        return;
    }
    reply_http(s, id, 201, descriptor(s, &d));
    sync_doc_clear(&d);
}

static void doc_update(sess_t *s, const char *id, const char *doc_id, const json_t *headers,
                       const json_t *body)
{
    errmsg_t em = {{0}};
    sync_doc_t d;
    char *data = NULL, im[32];
    long ttl;
    tassa_err err = read_doc_body(body, &data, &ttl, &em);
    if (!err)
        err = acl_check(s, doc_id, 'w', &em);
    if (!err)
        err = sync_doc_update(s->t->deps.sync, s->g.service_sid, doc_id, data, ttl,
                              if_match(headers, im, sizeof im), &d, &em);
    free(data);
    if (err) {
        reply_err(s, id, err, &em);
        return;
    }
    reply_http(s, id, 200, descriptor(s, &d));
    sync_doc_clear(&d);
}

static void doc_delete(sess_t *s, const char *id, const char *doc_id, const json_t *headers)
{
    errmsg_t em = {{0}};
    char im[32];
    tassa_err err = acl_check(s, doc_id, 'm', &em);
    if (!err)
        err = sync_doc_delete(s->t->deps.sync, s->g.service_sid, doc_id,
                              if_match(headers, im, sizeof im), &em);
    if (err) {
        reply_err(s, id, err, &em);
        return;
    }
    reply_http(s, id, 204, NULL);
}

/* POST /v4/Subscriptions: answered, then the replays and confirmations. */
static void subscriptions(sess_t *s, const char *id, const json_t *body)
{
    const char *action = json_string_value(json_object_get(body, "action"));
    const json_t *corr = json_object_get(body, "correlation_id"); /* borrowed */
    const json_t *reqs = json_object_get(body, "requests");
    if (!action || (strcmp(action, "establish") && strcmp(action, "cancel")) ||
        !json_is_array(reqs) || json_array_size(reqs) > MAX_BATCH) {
        reply_error(s, id, 400, 20001,
                    "a subscription request needs action establish or cancel and at most "
                    "100 requests");
        return;
    }
    reply_http(s, id, 202,
               json_pack("{s:i, s:i}", "estimated_delivery_in_ms", DELIVERY_MS, "max_batch_size",
                         MAX_BATCH));
    bool establish = strcmp(action, "establish") == 0;
    size_t i;
    const json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *sid = json_string_value(json_object_get(r, "object_sid"));
        const char *type = json_string_value(json_object_get(r, "object_type"));
        if (!sid || !sid_valid(sid, "ET"))
            continue;
        if (!establish) {
            sub_remove(s, sid);
            continue;
        }
        int status = 0, code = 0;
        const char *msg = NULL;
        errmsg_t em = {{0}};
        sub_doc_t *sd = sub_find(s, sid);
        if (!type || strcmp(type, "document") != 0) {
            status = 501, code = CODE_UNSUPPORTED;
            msg = "Only documents are supported by tassa (no lists, maps or streams)";
        } else if (acl_check(s, sid, 'r', &em)) {
            status = 403, code = CODE_FORBIDDEN, msg = err_text(&em, TASSA_EFORBIDDEN);
        } else if (!sd && s->ndocs == TWILSOCK_MAX_SUBS) {
            status = 429, code = 20429, msg = "Too many subscriptions on one connection";
        } else if (!sd) {
            if (s->ndocs == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 8;
                sub_doc_t *n = realloc(s->docs, cap * sizeof *n);
                if (!n) {
                    status = 500, code = 20500, msg = "Out of memory";
                } else {
                    s->docs = n;
                    s->cap = cap;
                }
            }
            if (!status) {
                sd = &s->docs[s->ndocs++];
                snprintf(sd->sid, sizeof sd->sid, "%s", sid);
            }
        }
        if (sd && !status) {
            const json_t *le = json_object_get(r, "last_event_id");
            sd->last = json_is_integer(le) ? json_integer_value(le) : -1;
        }
        if (sd && !status && !catch_up(s, sd, false)) {
            /* gone (deleted while the client was away): the SDK emits `removed` */
            status = 404, code = CODE_DOC_GONE, msg = "The document does not exist";
        } else if (sd && !status) {
            json_t *ev = json_pack("{s:s, s:O?, s:i, s:{s:s, s:s, s:s, s:I}}", "event_type",
                                   "subscription_established", "correlation_id", corr,
                                   "event_protocol_version", 4, "event", "object_sid", sid,
                                   "object_type", "document", "replay_status", "completed",
                                   "last_event_id", (json_int_t)sd->last);
            notify(s, "twilio.sync.event", ev);
            continue;
        }
        notify(s, "twilio.sync.event",
               json_pack("{s:s, s:O?, s:i, s:{s:s, s:s, s:{s:i, s:i, s:s}}}", "event_type",
                         "subscription_failed", "correlation_id", corr, "event_protocol_version", 4,
                         "event", "object_sid", sid, "object_type", type ? type : "document",
                         "error", "status", status, "code", code, "message", msg));
    }
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* An upstream `message`: the CDS request in http_request, the body in the payload. */
static void upstream(sess_t *s, const char *id, const json_t *hdr, const uint8_t *payload,
                     size_t plen)
{
    const json_t *req = json_object_get(hdr, "http_request");
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    const char *host = json_string_value(json_object_get(req, "host"));
    const json_t *headers = json_object_get(req, "headers");
    if (!method || !path) {
        reply_error(s, id, 400, 20001, "http_request needs a method and a path");
        return;
    }
    const config_t *c = s->t->deps.config;
    if (c->public_url)
        snprintf(s->base, sizeof s->base, "%.290s", c->public_url);
    else if (host && *host && strlen(host) < 256 && !strpbrk(host, "/?#\\ \"<>"))
        snprintf(s->base, sizeof s->base, "http://%s", host);
    json_t *body = NULL;
    bool is_delete = strcmp(method, "DELETE") == 0;
    if (plen && !is_delete) { /* a DELETE carries `data_sync`, not JSON (spec 2.3) */
        body = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            reply_error(s, id, 400, 20001, "the request body is not a JSON object");
            return;
        }
    }
    if (!body)
        body = json_object();
    char doc[SYNC_UNIQUE_NAME_MAX * 4 + 1];
    const char *rest = has_prefix(path, "/v3/Documents") ? path + 13 : NULL;
    if (strcmp(path, "/v4/Subscriptions") == 0) {
        if (strcmp(method, "POST") == 0)
            subscriptions(s, id, body);
        else
            reply_error(s, id, 405, 20004, "Method not allowed");
    } else if (rest && (!*rest || !strcmp(rest, "/"))) {
        if (strcmp(method, "POST") == 0)
            doc_create(s, id, body);
        else
            reply_error(s, id, 405, 20004, "Method not allowed");
    } else if (rest && rest[0] == '/') {
        if (!decode_segment(rest + 1, doc, sizeof doc))
            reply_error(s, id, 404, CODE_DOC_GONE, "The requested document was not found");
        else if (strcmp(method, "GET") == 0)
            doc_get(s, id, doc);
        else if (strcmp(method, "POST") == 0)
            doc_update(s, id, doc, headers, body);
        else if (is_delete)
            doc_delete(s, id, doc, headers);
        else
            reply_error(s, id, 405, 20004, "Method not allowed");
    } else if (has_prefix(path, "/v3/Lists") || has_prefix(path, "/v3/Maps") ||
               has_prefix(path, "/v3/Streams") || has_prefix(path, "/v3/Insights")) {
        reply_error(s, id, 501, CODE_UNSUPPORTED,
                    "Sync lists, maps and streams are not supported by tassa; use documents");
    } else {
        reply_error(s, id, 404, 20404, "The requested resource was not found");
    }
    json_decref(body);
}

/* ---- the live hub ---- */

static void sink_park(void *sink)
{
    (void)sink; /* the I/O thread waits anyway; wake follows */
}

static void sink_wake(void *sink)
{
    sess_t *s = sink;
    ws_wake(s->conn);
}

static const hub_sink_ops_t SINK = {
    .transport = "twilsock",
    .park = sink_park,
    .wake = sink_wake,
    .abort = sink_wake, /* hub_sub_next then says HUB_NEXT_ABORT */
    .gone = NULL,
};

/* Tells the client its token expired (close 410) and ends the connection. */
static void expire(sess_t *s)
{
    if (s->expired)
        return;
    s->expired = true;
    json_t *h =
        json_pack("{s:s, s:o, s:{s:i, s:s, s:s}}", "method", "close", "id", new_id(), "status",
                  "code", 410, "status", "TOKEN_EXPIRED", "description", "Token expired");
    send_frame(s, h, NULL, 0);
    ws_close(s->conn, 1000, "token expired");
}

/* A change of some document of the service: sent when the client subscribed to it. */
static void on_change(sess_t *s, const hub_msg_t *m)
{
    /* every change of the service passes here: parse only those naming a subscribed SID */
    bool named = false;
    for (size_t i = 0; i < s->ndocs && !named; i++)
        named = memmem(m->data, m->data_len, s->docs[i].sid, SID_LEN) != NULL;
    if (!named)
        return;
    json_t *j = json_loadb(m->data, m->data_len, 0, NULL);
    const char *sid = json_string_value(json_object_get(j, "sid"));
    sub_doc_t *sd = sid ? sub_find(s, sid) : NULL;
    if (sd) {
        const char *rev = json_string_value(json_object_get(j, "revision"));
        long r = -1;
        if (m->kind == HUB_EV_DELETED)
            send_removed(s, sid, sd->last + 1);
        else if (rev && params_parse_long(rev, 0, LONG_MAX, &r) && r > sd->last) {
            const char *date = json_string_value(json_object_get(j, "date_updated"));
            send_updated(s, sd, sid, r, json_object_get(j, "data"), date ? date : "");
        }
    }
    json_decref(j);
}

static tassa_err hub_join(sess_t *s, const hub_grant_t *g, int64_t last_seq, errmsg_t *em);

/* Takes the queued hub events, at most a batch per call (then it wakes itself again, so that
 * other connections get their turn). */
static void drain_hub(sess_t *s)
{
    for (int budget = 0; s->sub; budget++) {
        if (budget == 256) {
            ws_wake(s->conn);
            return;
        }
        const hub_msg_t *m;
        hub_next_t n = hub_sub_next(s->sub, true, &m);
        if (n == HUB_NEXT_EMPTY)
            return;
        if (n == HUB_NEXT_ABORT) {
            /* The hub dropped the subscription (its queue overflowed while this thread was
             * busy): the client's own queue is bounded by the WebSocket layer, so resume
             * from the last sequence number (a replay, or RESET and a re-read). */
            errmsg_t em = {{0}};
            log_info("event=twilsock_resubscribe reason=hub_queue_overflow last_seq=%lld",
                     (long long)s->last_seq);
            hub_sub_close(s->sub); /* first: its slot counts against the identity's limit */
            s->sub = NULL;
            if (hub_join(s, &s->g, s->last_seq, &em)) {
                ws_close(s->conn, 1011, "live updates lost");
                return;
            }
            continue;
        }
        if (n != HUB_NEXT_EVENT) {
            hub_sub_close(s->sub);
            s->sub = NULL;
            return;
        }
        if (m->id >= 0)
            s->last_seq = m->id;
        switch (m->kind) {
        case HUB_EV_UPDATE:
        case HUB_EV_DELETED: on_change(s, m); break;
        case HUB_EV_RESET:
            for (size_t i = 0; i < s->ndocs;)
                if (catch_up(s, &s->docs[i], true))
                    i++;
            break;
        case HUB_EV_TOKEN_EXPIRED: expire(s); break;
        case HUB_EV_RECONNECT: ws_close(s->conn, 1001, "server stopping"); break;
        default: break;
        }
        hub_msg_release(m);
    }
}

/* ---- tokens ---- */

/* exp and iat of a token (0 when absent); the signature is checked elsewhere. */
static void token_times(const char *token, int64_t *exp, int64_t *iat)
{
    json_t *h = NULL, *c = NULL;
    *exp = *iat = 0;
    if (!verify_token_jws_unpack(token, &h, &c, NULL)) {
        if (json_is_number(json_object_get(c, "exp")))
            *exp = (int64_t)json_number_value(json_object_get(c, "exp"));
        if (json_is_number(json_object_get(c, "iat")))
            *iat = (int64_t)json_number_value(json_object_get(c, "iat"));
    }
    json_decref(h);
    json_decref(c);
}

/* Checks token: on TASSA_OK fills g (a hub grant); else sets the reply's code, status text,
 * description and SDK errorCode. */
static tassa_err check_token(sess_t *s, const char *token, hub_grant_t *g, int *code,
                             const char **status, const char **desc, int *error_code)
{
    const config_t *c = s->t->deps.config;
    char *identity = NULL, *service = NULL;
    errmsg_t em = {{0}};
    time_t now = time(NULL);
    memset(g, 0, sizeof *g);
    *code = 401, *status = "UNAUTHORIZED", *desc = "Invalid Access Token", *error_code = 20101;
    if (!token || !*token)
        return TASSA_EUNAUTH;
    tassa_err err = access_token_verify(token, c->api_secret, now, &identity, &service, &em);
    if (err) {
        int64_t exp, iat;
        token_times(token, &exp, &iat);
        char *i2 = NULL, *s2 = NULL;
        /* expired, and valid otherwise (the same check just before its exp): 20104 */
        if (exp > 0 && exp <= (int64_t)now &&
            !access_token_verify(token, c->api_secret, (time_t)exp - 1, &i2, &s2, NULL)) {
            *desc = "Access Token expired or expiration date invalid";
            *error_code = 20104;
        }
        free(i2);
        free(s2);
        log_info("event=twilsock_refused reason=\"%s\"", err_text(&em, err));
        return err;
    }
    err = hub_authorise(s->t->deps.hub, token, service, g, &em);
    free(identity);
    free(service);
    if (err == TASSA_ENOMEM) {
        *code = 500, *status = "INTERNAL_SERVER_ERROR", *desc = "Out of memory", *error_code = 0;
    } else if (err && err != TASSA_EUNAUTH) {
        *code = 403, *status = "FORBIDDEN", *desc = err_text(&em, err), *error_code = 20103;
    }
    return err;
}

/* Opens the hub subscription for grant g from last_seq (-1: new); on success it replaces the
 * old one. */
static tassa_err hub_join(sess_t *s, const hub_grant_t *g, int64_t last_seq, errmsg_t *em)
{
    hub_sub_t *sub = NULL;
    tassa_err err =
        hub_subscribe_service(s->t->deps.hub, g, last_seq, "http://localhost", &SINK, s, &sub, em);
    if (err)
        return err;
    hub_sub_close(s->sub);
    s->sub = sub;
    return TASSA_OK;
}

static void on_init(sess_t *s, const char *id, const json_t *hdr)
{
    if (s->ready) {
        reply_status(s, id, 400, "BAD_REQUEST", "Already initialised", 0, NULL);
        return;
    }
    int code, ecode;
    const char *status, *desc;
    hub_grant_t g;
    const char *token = json_string_value(json_object_get(hdr, "token"));
    if (check_token(s, token, &g, &code, &status, &desc, &ecode)) {
        reply_status(s, id, code, status, desc, ecode, NULL);
        s->closing = true; /* the client sends close and goes; on_tick closes it otherwise */
        return;
    }
    errmsg_t em = {{0}};
    tassa_err err = ws_set_identity(s->conn, g.identity);
    if (!err)
        err = hub_join(s, &g, -1, &em);
    if (err) {
        bool limit = err == TASSA_ELIMIT;
        /* the SDK retries after reconnect_min_ms of the payload's backoff_policy (spec 1.6) */
        reply_status_body(s, id, limit ? 429 : 503, limit ? "TOO_MANY_REQUESTS" : "UNAVAILABLE",
                          limit ? "Too many connections for this identity" : err_text(&em, err), 0,
                          NULL, json_pack("{s:{s:i}}", "backoff_policy", "reconnect_min_ms", 5000));
        hub_grant_clear(&g);
        s->closing = true;
        return;
    }
    s->g = g;
    token_times(token, &s->exp_s, &s->iat_s);
    s->ready = true;
    char hex[33], ct[40];
    if (sid_random_hex(hex, 16))
        snprintf(hex, sizeof hex, "0");
    snprintf(ct, sizeof ct, "CT%s", hex);
    reply_status(s, id, 200, "OK", NULL, 0, json_pack("{s:s}", "continuation_token", ct));
    drain_hub(s);
}

static void on_update(sess_t *s, const char *id, const json_t *hdr)
{
    int code, ecode;
    const char *status, *desc;
    hub_grant_t g;
    errmsg_t em = {{0}};
    const char *token = json_string_value(json_object_get(hdr, "token"));
    tassa_err err = check_token(s, token, &g, &code, &status, &desc, &ecode);
    if (!err && strcmp(g.identity, s->g.identity) != 0) {
        hub_grant_clear(&g);
        err = TASSA_EUNAUTH;
        code = 401, status = "UNAUTHORIZED", ecode = 20101;
        desc = "The new token is for another identity";
    }
    if (err) {
        reply_status(s, id, code, status, desc, ecode, NULL);
        return;
    }
    /* the hub ends a stream at its token's exp: move to a subscription with the new one */
    drain_hub(s);
    if ((err = hub_join(s, &g, s->last_seq, &em))) {
        hub_grant_clear(&g);
        reply_status(s, id, 503, "UNAVAILABLE", err_text(&em, err), 0, NULL);
        return;
    }
    hub_grant_clear(&s->g);
    s->g = g;
    token_times(token, &s->exp_s, &s->iat_s);
    s->warned = false;
    reply_status(s, id, 200, "OK", NULL, 0, NULL);
    drain_hub(s);
}

/* ---- WebSocket callbacks (I/O thread) ---- */

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void ts_open(void *ctx, ws_conn_t *c)
{
    sess_t *s = calloc(1, sizeof *s);
    if (!s) {
        ws_close(c, 1011, "out of memory");
        return;
    }
    s->t = ctx;
    s->conn = c;
    s->opened_ms = mono_ms();
    s->last_seq = -1;
    snprintf(s->base, sizeof s->base, "http://localhost");
    ws_conn_set_data(c, s);
}

static void ts_message(void *ctx, ws_conn_t *c, bool binary, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)binary; /* twilio-sync sends binary; text is accepted too */
    sess_t *s = ws_conn_data(c);
    if (!s)
        return;
    twilsock_frame_t f;
    errmsg_t em = {{0}};
    if (twilsock_parse(data, len, &f, &em)) {
        log_info("event=twilsock_bad_frame reason=\"%s\"", err_text(&em, TASSA_EINVAL));
        ws_close(c, 1002, "not a twilsock frame");
        return;
    }
    const char *method = json_string_value(json_object_get(f.header, "method"));
    const char *id = json_string_value(json_object_get(f.header, "id"));
    if (s->closing && strcmp(method, "close") != 0) {
        /* refused at init: only its close is awaited */
    } else if (!strcmp(method, "reply") || !strcmp(method, "telemetry.v1")) {
        /* acknowledgements; telemetry is not asked for */
    } else if (!strcmp(method, "close")) {
        ws_close(c, 1000, NULL);
    } else if (!id) {
        ws_close(c, 1002, "a twilsock request needs an id");
    } else if (!strcmp(method, "init")) {
        on_init(s, id, f.header);
    } else if (!s->ready) {
        reply_status(s, id, 401, "UNAUTHORIZED", "init first", 20101, NULL);
        ws_close(c, 1008, "init first");
    } else if (!strcmp(method, "update")) {
        on_update(s, id, f.header);
    } else if (!strcmp(method, "message")) {
        upstream(s, id, f.header, f.payload, f.payload_len);
    } else {
        reply_status(s, id, 400, "BAD_REQUEST", "Unknown method", 0, NULL);
    }
    json_decref(f.header);
}

static void ts_wake(void *ctx, ws_conn_t *c)
{
    (void)ctx;
    sess_t *s = ws_conn_data(c);
    if (s)
        drain_hub(s);
}

static void ts_tick(void *ctx, ws_conn_t *c, int64_t now_ms)
{
    (void)ctx;
    sess_t *s = ws_conn_data(c);
    if (!s)
        return;
    if (!s->ready) {
        if (now_ms - s->opened_ms >= INIT_DEADLINE_MS)
            ws_close(c, 1008, s->closing ? "refused" : "no init");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    if (!s->exp_s || s->expired)
        return;
    if (now >= s->exp_s) {
        expire(s);
        return;
    }
    int64_t life = s->exp_s - (s->iat_s ? s->iat_s : now);
    int64_t lead = life < 2 * EXPIRY_LEAD_S ? life / 2 : EXPIRY_LEAD_S;
    if (!s->warned && now >= s->exp_s - lead) {
        s->warned = true;
        json_t *h = json_pack("{s:s, s:o, s:s}", "method", "client_update", "id", new_id(),
                              "client_update_type", "token_about_to_expire");
        send_frame(s, h, NULL, 0);
    }
}

static void ts_close(void *ctx, ws_conn_t *c)
{
    (void)ctx;
    sess_t *s = ws_conn_data(c);
    if (!s)
        return;
    hub_sub_close(s->sub); /* no sink callback after this: no ws_wake on a freed connection */
    hub_grant_clear(&s->g);
    free(s->docs);
    free(s);
    ws_conn_set_data(c, NULL);
}

twilsock_t *twilsock_new(const twilsock_deps_t *deps)
{
    twilsock_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->deps = *deps;
    t->handler = (ws_handler_t){.on_open = ts_open,
                                .on_message = ts_message,
                                .on_wake = ts_wake,
                                .on_tick = ts_tick,
                                .on_close = ts_close};
    return t;
}

tassa_err twilsock_register(twilsock_t *t, http_server_t *http)
{
    return ws_route(t->deps.ws, http, "/v3/wsconnect", &t->handler, t);
}

void twilsock_free(twilsock_t *t)
{
    free(t);
}

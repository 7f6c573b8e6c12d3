/* test_twilio_rest.c - the twilio back end against a scripted HTTP server in-process.
 *
 * A libmicrohttpd daemon on a free port answers each request with the next scripted reply
 * (status, body, Retry-After) and records what it received (raw URI, method, form body,
 * If-Match, Authorization), so that each test checks both sides: what the back end sent and
 * how it read the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/twilio_rest.h"

#define WS         "WS0123456789abcdef0123456789abcdef"
#define MAX_SCRIPT 8

typedef struct {
    int status;
    const char *body;
    const char *retry_after;
} reply_t;

typedef struct {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    reply_t script[MAX_SCRIPT];
    int nscript, next;
    int requests;
    char uri[MAX_SCRIPT][512]; /* raw URI of each request, in order */
    char method[8], body[2048], if_match[64], auth[256];
} mock_t;

typedef struct {
    char uri[512];
    char body[2048];
    size_t len;
    bool started;
} req_t;

/* Keeps the raw URI (before any unescaping) as the request's state. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    req_t *r = calloc(1, sizeof *r);
    if (r)
        snprintf(r->uri, sizeof r->uri, "%s", uri);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    free(*req_cls);
    *req_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    mock_t *m = cls;
    req_t *r = *req_cls;
    if (!r->started) {
        r->started = true;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (r->len + n >= sizeof r->body)
            n = sizeof r->body - 1 - r->len;
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    const char *im = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Match");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&m->lock);
    if (m->requests < MAX_SCRIPT)
        snprintf(m->uri[m->requests], sizeof m->uri[0], "%s", r->uri);
    m->requests++;
    snprintf(m->method, sizeof m->method, "%s", method);
    snprintf(m->body, sizeof m->body, "%.*s", (int)r->len, r->body);
    snprintf(m->if_match, sizeof m->if_match, "%s", im ? im : "");
    snprintf(m->auth, sizeof m->auth, "%s", auth ? auth : "");
    reply_t rep = {200, "{}", NULL};
    if (m->next < m->nscript)
        rep = m->script[m->next++];
    pthread_mutex_unlock(&m->lock);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(rep.body), (void *)rep.body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (rep.retry_after)
        MHD_add_response_header(resp, "Retry-After", rep.retry_after);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)rep.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void script(mock_t *m, int status, const char *body, const char *retry_after)
{
    assert_true(m->nscript < MAX_SCRIPT);
    m->script[m->nscript++] = (reply_t){status, body, retry_after};
}

typedef struct {
    mock_t mock;
    char url[64];
    config_t config;
    backend_t *b;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mock.lock, NULL);
    f->mock.daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, &f->mock, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                         MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    assert_non_null(f->mock.daemon);
    f->mock.port = MHD_get_daemon_info(f->mock.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/", f->mock.port);
    f->config = (config_t){.account_sid = "AC0123456789abcdef0123456789abcdef",
                           .api_key = "SK0123456789abcdef0123456789abcdef",
                           .api_secret = "s3cret",
                           .workspace_sid = WS,
                           .sync_service_sid = "default",
                           .taskrouter_url = f->url,
                           .sync_url = f->url,
                           .http_timeout_ms = 2000,
                           .http_retries = 3};
    errmsg_t em = {{0}};
    f->b = backend_twilio_new(&f->config, &em);
    assert_non_null(f->b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    backend_free(f->b);
    MHD_stop_daemon(f->mock.daemon);
    pthread_mutex_destroy(&f->mock.lock);
    free(f);
    return 0;
}

static void refuses_missing_settings(void **state)
{
    fixture_t *f = *state;
    errmsg_t em = {{0}};
    config_t c = f->config;
    c.api_secret = NULL;
    assert_null(backend_twilio_new(&c, &em));
    assert_non_null(strstr(em.text, "API_SECRET"));
    c = f->config;
    c.sync_url = "ftp://sync.example.com";
    assert_null(backend_twilio_new(&c, &em));
    assert_non_null(strstr(em.text, "TWILIO_SYNC_URL"));
    c = f->config;
    c.http_timeout_ms = 0;
    assert_null(backend_twilio_new(&c, &em));
    assert_non_null(strstr(em.text, "TASSA_HTTP_TIMEOUT_MS"));
    assert_null(backend_twilio_new(NULL, NULL));
}

static void fetch_escapes_the_name_and_authenticates(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 200, "{\"unique_name\":\"a b/c?\",\"revision\":\"7\",\"data\":{\"x\":1}}",
           NULL);
    json_t *doc = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->doc_fetch(f->b, "a b/c?", &doc, &em), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "revision")), "7");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "data"), "x")), 1);
    json_decref(doc);
    assert_string_equal(f->mock.uri[0], "/v1/Services/default/Documents/a%20b%2Fc%3F");
    assert_string_equal(f->mock.method, "GET");
    /* base64("SK0123456789abcdef0123456789abcdef:s3cret") */
    assert_string_equal(f->mock.auth,
                        "Basic U0swMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpzM2NyZXQ=");
}

static void missing_document_is_enotfound_with_twilios_message(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 404,
           "{\"code\":20404,\"message\":\"The requested resource /Documents/x was not found\","
           "\"more_info\":\"https://www.twilio.com/docs/errors/20404\",\"status\":404}",
           NULL);
    json_t *doc = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->doc_fetch(f->b, "x", &doc, &em), TASSA_ENOTFOUND);
    assert_null(doc);
    assert_string_equal(em.text,
                        "twilio 404 20404: The requested resource /Documents/x was not found");
    assert_int_equal(f->mock.requests, 1); /* a 404 is final */
}

static void create_posts_a_form_and_maps_409(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 201, "{\"unique_name\":\"t&1\",\"revision\":\"0\",\"data\":{\"a\":\"b c\"}}",
           NULL);
    script(&f->mock, 409,
           "{\"code\":54301,\"message\":\"Unique name already exists\",\"status\":409}", NULL);
    json_t *data = json_pack("{s:s}", "a", "b c");
    json_t *doc = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->doc_create(f->b, "t&1", data, &doc, &em), TASSA_OK);
    assert_string_equal(f->mock.method, "POST");
    assert_string_equal(f->mock.uri[0], "/v1/Services/default/Documents");
    assert_string_equal(f->mock.body, "UniqueName=t%261&Data=%7B%22a%22%3A%22b%20c%22%7D");
    json_decref(doc);
    doc = NULL;
    assert_int_equal(f->b->ops->doc_create(f->b, "t&1", data, &doc, &em), TASSA_EDUPNAME);
    assert_null(doc);
    assert_non_null(strstr(em.text, "twilio 409 54301"));
    json_decref(data);
}

static void update_sends_if_match_and_maps_412(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 412,
           "{\"code\":54103,\"message\":\"Document revision mismatch\",\"status\":412}", NULL);
    json_t *data = json_pack("{s:i}", "n", 2);
    json_t *doc = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->doc_update(f->b, "doc", data, "3", &doc, &em), TASSA_EREVISION);
    assert_string_equal(f->mock.if_match, "3");
    assert_string_equal(f->mock.body, "Data=%7B%22n%22%3A2%7D");
    assert_int_equal(f->mock.requests, 1); /* never retried blindly: the caller re-reads */
    assert_int_equal(f->b->ops->doc_update(f->b, "doc", data, "3\r\nX: y", &doc, &em),
                     TASSA_EINVAL);
    json_decref(data);
}

static void retries_5xx_and_429_then_succeeds(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 503, "{\"code\":20503,\"message\":\"Service Unavailable\",\"status\":503}",
           NULL);
    script(&f->mock, 429, "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}", "0");
    script(&f->mock, 200, "{\"sid\":\"WT1\"}", NULL);
    json_t *task = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->task_fetch(f->b, "WT1", &task, &em), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(task, "sid")), "WT1");
    assert_string_equal(em.text, ""); /* no stale detail from the failed attempts */
    json_decref(task);
    assert_int_equal(f->mock.requests, 3);
    assert_string_equal(f->mock.uri[2], "/v1/Workspaces/" WS "/Tasks/WT1");
}

static void gives_up_after_the_retries(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 4; i++)
        script(&f->mock, 429, "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}",
               "0");
    json_t *task = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->task_fetch(f->b, "WT1", &task, &em), TASSA_ELIMIT);
    assert_int_equal(f->mock.requests, 4);
    assert_string_equal(em.text, "twilio 429 20429: Too Many Requests");
}

static void other_4xx_are_not_retried(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 400, "{\"code\":20001,\"message\":\"Invalid PageSize\",\"status\":400}", NULL);
    json_t *workers = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->workers_list(f->b, &workers, &em), TASSA_EINVAL);
    assert_int_equal(f->mock.requests, 1);
    assert_string_equal(em.text, "twilio 400 20001: Invalid PageSize");
}

static void lists_follow_next_page_url_on_the_configured_host(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 200,
           "{\"tasks\":[{\"sid\":\"WT1\"}],\"meta\":{\"key\":\"tasks\",\"next_page_url\":"
           "\"https://taskrouter.twilio.com/v1/Workspaces/" WS
           "/Tasks?AssignmentStatus=pending&PageSize=1000&Page=1&PageToken=PT1\"}}",
           NULL);
    script(&f->mock, 200,
           "{\"tasks\":[{\"sid\":\"WT2\"},{\"sid\":\"WT3\"}],\"meta\":{\"key\":\"tasks\","
           "\"next_page_url\":null}}",
           NULL);
    static const char *const statuses[] = {"pending"};
    json_t *tasks = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->tasks_list(f->b, statuses, 1, &tasks, &em), TASSA_OK);
    assert_int_equal(json_array_size(tasks), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 2), "sid")), "WT3");
    json_decref(tasks);
    assert_string_equal(f->mock.uri[0],
                        "/v1/Workspaces/" WS "/Tasks?AssignmentStatus=pending&PageSize=1000");
    assert_string_equal(f->mock.uri[1],
                        "/v1/Workspaces/" WS "/Tasks?AssignmentStatus=pending&PageSize=1000&Page=1&"
                        "PageToken=PT1");
}

static void queue_stats_reads_both_resources(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 200, "{\"total_available_workers\":2}", NULL);
    script(&f->mock, 200, "{\"reservations_accepted\":9}", NULL);
    json_t *rt = NULL, *cu = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->queue_stats(f->b, "WQ1", 15, &rt, &cu, &em), TASSA_OK);
    assert_int_equal(json_integer_value(json_object_get(rt, "total_available_workers")), 2);
    assert_int_equal(json_integer_value(json_object_get(cu, "reservations_accepted")), 9);
    assert_string_equal(f->mock.uri[0], "/v1/Workspaces/" WS "/TaskQueues/WQ1/RealTimeStatistics");
    assert_string_equal(f->mock.uri[1],
                        "/v1/Workspaces/" WS "/TaskQueues/WQ1/CumulativeStatistics?Minutes=15");
    json_decref(rt);
    json_decref(cu);
}

static void invalid_json_is_an_upstream_error(void **state)
{
    fixture_t *f = *state;
    script(&f->mock, 200, "<html>oops</html>", NULL);
    json_t *task = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(f->b->ops->task_fetch(f->b, "WT1", &task, &em), TASSA_EUPSTREAM);
    assert_null(task);
    assert_non_null(strstr(em.text, "invalid JSON"));
}

static void unreachable_host_is_an_upstream_error(void **state)
{
    fixture_t *f = *state;
    config_t c = f->config;
    c.sync_url = "http://127.0.0.1:1";
    c.http_retries = 1;
    errmsg_t em = {{0}};
    backend_t *b = backend_twilio_new(&c, &em);
    assert_non_null(b);
    json_t *doc = NULL;
    assert_int_equal(b->ops->doc_fetch(b, "x", &doc, &em), TASSA_EUPSTREAM);
    assert_non_null(strstr(em.text, "failed after 2 attempts"));
    backend_free(b);
}

/* A raw HTTP/1.1 server that keeps connections open: it sends its scripted replies byte for
 * byte (MHD cannot send a folded header) and counts the connections it accepted. */
typedef struct {
    int listen_fd, port;
    const char *replies[4];
    int nreplies, accepted;
    pthread_t thread;
} raw_t;

static void *raw_serve(void *arg)
{
    raw_t *r = arg;
    struct pollfd fds[8] = {{.fd = r->listen_fd, .events = POLLIN}};
    static char buf[8][4096]; /* one server thread per test, tests run one at a time */
    size_t got[8] = {0};
    int nfds = 1, served = 0;
    while (served < r->nreplies && poll(fds, (nfds_t)nfds, 5000) > 0) {
        for (int i = nfds - 1; i >= 0; i--) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (i == 0) {
                int fd = accept(r->listen_fd, NULL, NULL);
                if (fd >= 0 && nfds < 8) {
                    fds[nfds] = (struct pollfd){.fd = fd, .events = POLLIN};
                    got[nfds++] = 0;
                    r->accepted++;
                }
                continue;
            }
            ssize_t n = recv(fds[i].fd, buf[i] + got[i], sizeof buf[i] - 1 - got[i], 0);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i] = fds[--nfds];
                got[i] = got[nfds];
                memcpy(buf[i], buf[nfds], got[i]);
                continue;
            }
            got[i] += (size_t)n;
            buf[i][got[i]] = '\0';
            if (strstr(buf[i], "\r\n\r\n")) { /* one GET, no body: answer it */
                const char *rep = r->replies[served++];
                (void)!send(fds[i].fd, rep, strlen(rep), MSG_NOSIGNAL);
                got[i] = 0;
            }
        }
    }
    for (int i = 1; i < nfds; i++)
        close(fds[i].fd);
    return NULL;
}

static void raw_start(raw_t *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->listen_fd >= 0);
    assert_int_equal(bind(r->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->listen_fd, 8), 0);
    assert_int_equal(getsockname(r->listen_fd, (struct sockaddr *)&a, &alen), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->thread, NULL, raw_serve, r), 0);
}

#define RAW_OK "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

/* Finding T1: a reply whose first header line is folded (obs-fold), arriving after an earlier
 * reply, made libcurl 7.88.1 read freed memory when the easy handle was reused (ASan reports
 * it in make test-asan). Now every request has a fresh easy handle, and the connection is
 * still kept: three requests, one connection. */
static void folded_header_after_a_reply_is_survived_and_connections_kept(void **state)
{
    fixture_t *f = *state;
    raw_t r = {
        .replies = {RAW_OK, "HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 2\r\n\r\n{}", RAW_OK},
        .nreplies = 3};
    raw_start(&r);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    config_t c = f->config;
    c.sync_url = url;
    c.http_retries = 0;
    errmsg_t em = {{0}};
    backend_t *b = backend_twilio_new(&c, &em);
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        json_t *doc = NULL;
        tassa_err err = b->ops->doc_fetch(b, "x", &doc, &em);
        if (i != 1) { /* the plain replies are read as they are */
            assert_int_equal(err, TASSA_OK);
            assert_true(json_is_object(doc));
        } else { /* the folded one: a result or an error, never both, and no crash */
            assert_true(err == TASSA_OK ? doc != NULL : doc == NULL);
        }
        json_decref(doc);
    }
    pthread_join(r.thread, NULL);
    close(r.listen_fd);
    backend_free(b);
    /* a refused fold may cost its connection; the plain ones share theirs */
    assert_true(r.accepted >= 1 && r.accepted <= 2);
}

/* Sequential requests reuse one kept-alive connection (the multi handle's cache). */
static void sequential_requests_share_one_connection(void **state)
{
    fixture_t *f = *state;
    raw_t r = {.replies = {RAW_OK, RAW_OK, RAW_OK}, .nreplies = 3};
    raw_start(&r);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    config_t c = f->config;
    c.sync_url = url;
    errmsg_t em = {{0}};
    backend_t *b = backend_twilio_new(&c, &em);
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        json_t *doc = NULL;
        assert_int_equal(b->ops->doc_fetch(b, "x", &doc, &em), TASSA_OK);
        json_decref(doc);
    }
    pthread_join(r.thread, NULL);
    close(r.listen_fd);
    backend_free(b);
    assert_int_equal(r.accepted, 1);
}

static long retry_after(const char *line)
{
    return twilio_rest_retry_after_ms(line, strlen(line));
}

/* Retry-After is delay-seconds, digits only (issue 9 defect 10): no sign, no inner space, no
 * trailing text; an HTTP date is ignored on purpose; more digits than a long are the cap. */
static void retry_after_is_strict(void **state)
{
    (void)state;
    assert_int_equal(retry_after("Retry-After: 2\r\n"), 2000);
    assert_int_equal(retry_after("retry-after:0\r\n"), 0);
    assert_int_equal(retry_after("Retry-After: \t1 \r\n"), 1000);
    assert_int_equal(retry_after("Retry-After: 120\r\n"), 3000);
    assert_int_equal(retry_after("Retry-After: 99999999999999999999999999999999999\r\n"), 3000);
    assert_int_equal(retry_after("Retry-After: +2\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: -1\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: -0\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: 2 s\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: 0x10\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: 1 2\r\n"), -1);
    assert_int_equal(retry_after("Retry-After: \r\n"), -1);
    assert_int_equal(retry_after("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"), -1);
    assert_int_equal(retry_after("Retry-After-X: 2\r\n"), -1);
    assert_int_equal(retry_after("X-Retry-After: 2\r\n"), -1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refuses_missing_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(fetch_escapes_the_name_and_authenticates, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_document_is_enotfound_with_twilios_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(create_posts_a_form_and_maps_409, setup, teardown),
        cmocka_unit_test_setup_teardown(update_sends_if_match_and_maps_412, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_5xx_and_429_then_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(gives_up_after_the_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(other_4xx_are_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_follow_next_page_url_on_the_configured_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(queue_stats_reads_both_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_json_is_an_upstream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(unreachable_host_is_an_upstream_error, setup, teardown),
        cmocka_unit_test(retry_after_is_strict),
        cmocka_unit_test_setup_teardown(
            folded_header_after_a_reply_is_survived_and_connections_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(sequential_requests_share_one_connection, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

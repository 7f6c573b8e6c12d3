/* test_metrics.c - the metrics registry: counting from many threads, histograms, label
 * escaping, and the text it renders. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/metrics.h"

#define THREADS 4
#define PER     20000

static void *count_many(void *arg)
{
    for (int i = 0; i < PER; i++) {
        metrics_add(M_HTTP_REQUESTS, 1, "method", "GET", "route", "/x", "status", "200", NULL);
        metrics_add(M_COMMIT_BATCH, (double)(i % 3 + 1), NULL);
    }
    return arg;
}

static void counts_from_threads_add_up(void **state)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(metrics_get(M_HTTP_REQUESTS, "method", "GET", "route", "/x", "status", "200",
                            NULL) == THREADS * PER);
    assert_true(metrics_get(M_COMMIT_BATCH, NULL) == THREADS * PER);
    assert_true(
        metrics_get(M_HTTP_REQUESTS, "method", "GET", "route", "/y", "status", "200", NULL) == 0);
}

static void render_is_prometheus_text(void **state)
{
    metrics_add(M_STREAM_CLIENTS, 2, "transport", "sse", NULL);
    metrics_add(M_STREAM_CLIENTS, -1, "transport", "sse", NULL);
    metrics_add(M_ROUTER_EVENTS, 1, "type", "a\"b\\c\nd", "outcome", "ok", NULL);
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# TYPE tassa_http_requests_total counter\n"));
    assert_non_null(strstr(text, "tassa_http_requests_total{method=\"GET\",route=\"/x\","
                                 "status=\"200\"} 80000\n"));
    assert_non_null(strstr(text, "tassa_stream_clients{transport=\"sse\"} 1\n"));
    /* escaped as the format says: \" \\ \n */
    assert_non_null(strstr(text, "type=\"a\\\"b\\\\c\\nd\""));
    /* batches of 1, 2 and 3 writers in equal thirds: cumulative buckets */
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_bucket{le=\"1\"} 26668\n"));
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_bucket{le=\"2\"} 53336\n"));
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_bucket{le=\"4\"} 80000\n"));
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_bucket{le=\"+Inf\"} 80000\n"));
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_sum 159996\n"));
    assert_non_null(strstr(text, "tassa_store_commit_batch_size_count 80000\n"));
    /* an unlabelled counter never touched still shows */
    assert_non_null(strstr(text, "\ntassa_outbox_delivery_failures_total 0\n"));
    assert_true(text[len - 1] == '\n');
    free(text);
}

/* Labels longer than a series holds (256 bytes) are cut, each pair still closed by its
 * quote, and a pair whose key no longer fits is left out whole. */
static void long_labels_are_cut_whole(void **state)
{
    (void)state;
    char v[400], want[512];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    metrics_add(M_ROUTER_EVENTS, 1, "type", v, "outcome", "long", NULL);
    metrics_add(M_ROUTER_EVENTS, 1, "type", v + 199, "outcome", "fits", NULL); /* 200 x */
    char *text = metrics_render(NULL);
    assert_non_null(text);
    /* the 399 x are cut to 247 (with type=" and the quote, 254 bytes), outcome is left out */
    snprintf(want, sizeof want, "{type=\"%.247s\"} 1\n", v);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "{type=\"%.200s\",outcome=\"fits\"} 1\n", v);
    assert_non_null(strstr(text, want));
    free(text);
}

static void a_full_table_drops_and_counts(void **state)
{
    char v[16];
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(v, sizeof v, "%d", i);
        metrics_add(M_STREAM_DROPPED, 1, "reason", v, NULL);
    }
    char *text = metrics_render(NULL);
    assert_non_null(text);
    const char *d = strstr(text, "\ntassa_metrics_series_dropped_total ");
    assert_non_null(d);
    assert_true(atol(d + strlen("\ntassa_metrics_series_dropped_total ")) > 0);
    free(text);
    /* existing series still count */
    double before = metrics_get(M_STREAM_CLIENTS, "transport", "sse", NULL);
    metrics_add(M_STREAM_CLIENTS, 1, "transport", "sse", NULL);
    assert_true(metrics_get(M_STREAM_CLIENTS, "transport", "sse", NULL) == before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_from_threads_add_up),
        cmocka_unit_test(render_is_prometheus_text),
        cmocka_unit_test(long_labels_are_cut_whole),
        cmocka_unit_test(a_full_table_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

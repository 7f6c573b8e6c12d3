/* metrics.c - the lock-free-to-count metrics registry behind /metrics (see metrics.h).
 *
 * Layer: base. */
#include "base/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double METRICS_BUCKETS_SECONDS[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, NAN};
static const double METRICS_BUCKETS_BATCH[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, NAN};

typedef enum { T_counter, T_gauge, T_histogram } mtype_t;

static const struct {
    const char *name, *help;
    mtype_t type;
    const double *buckets; /* NAN-terminated */
} FAMILIES[] = {
#define METRICS_ROW(id, name, type, buckets, help) {name, help, T_##type, buckets},
    METRICS(METRICS_ROW)
#undef METRICS_ROW
};

#define LABELS_MAX 256

typedef struct {
    _Atomic(int) id; /* metric id + 1; 0 = empty slot. Written once, after labels. */
    char labels[LABELS_MAX];
    _Atomic(double) value; /* counter, gauge, or a histogram's sum */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t buckets[METRICS_MAX_BUCKETS];
} series_t;

/* The registry: process-wide by design (metrics.h). Slots are claimed under reg_lock and
 * never freed; readers probe without it. */
static series_t table[METRICS_MAX_SERIES];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int nseries;                  /* guarded by reg_lock */
static atomic_uint_fast64_t dropped; /* observations lost to a full table */

/* Appends `name="value"` pairs from ap into out (escaping \, " and newlines). */
static void format_labels(char *out, size_t n, va_list ap)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        if (!v)
            v = "";
        size_t klen = strlen(k);
        if (used + 1 + klen + 4 > n) /* ',' key '="', the closing '"' and the NUL */
            break;
        if (used)
            out[used++] = ',';
        memcpy(out + used, k, klen);
        used += klen;
        out[used++] = '=';
        out[used++] = '"';
        for (; *v && used + 3 < n; v++) {
            if (*v == '\\' || *v == '"') {
                out[used++] = '\\';
                out[used++] = *v;
            } else if (*v == '\n') {
                out[used++] = '\\';
                out[used++] = 'n';
            } else {
                out[used++] = *v;
            }
        }
        out[used++] = '"';
        out[used] = '\0';
    }
}

static uint64_t hash(int id, const char *labels)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)id;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* The series of (id, labels) if it exists. Slots are never freed and a new one is the first
 * empty slot of its probe sequence, so the probe may stop at the first empty slot. */
static series_t *series_find(int id, const char *labels, uint64_t h)
{
    for (size_t i = 0; i < METRICS_MAX_SERIES; i++) {
        series_t *s = &table[(h + i) % METRICS_MAX_SERIES];
        int sid = atomic_load_explicit(&s->id, memory_order_acquire);
        if (sid == 0)
            return NULL;
        if (sid == id + 1 && !strcmp(s->labels, labels))
            return s;
    }
    return NULL;
}

/* The series of (id, labels), made when absent if create; NULL when the table is full (the
 * observation is then counted as dropped). */
static series_t *series_get(int id, const char *labels, bool create)
{
    uint64_t h = hash(id, labels);
    series_t *s = series_find(id, labels, h);
    if (s || !create)
        return s;
    pthread_mutex_lock(&reg_lock);
    s = series_find(id, labels, h);
    for (size_t i = 0; !s && i < METRICS_MAX_SERIES && nseries < METRICS_MAX_SERIES * 3 / 4; i++) {
        series_t *slot = &table[(h + i) % METRICS_MAX_SERIES];
        if (atomic_load(&slot->id) == 0) {
            snprintf(slot->labels, sizeof slot->labels, "%s", labels);
            atomic_store_explicit(&slot->id, id + 1, memory_order_release);
            nseries++;
            s = slot;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    if (!s)
        atomic_fetch_add(&dropped, 1);
    return s;
}

static void add_value(_Atomic(double) *slot, double v)
{
    double old = atomic_load(slot);
    while (!atomic_compare_exchange_weak(slot, &old, old + v))
        ;
}

static void observe(series_t *s, const double *buckets, double v)
{
    for (size_t i = 0; i < METRICS_MAX_BUCKETS && !isnan(buckets[i]); i++) {
        if (v <= buckets[i]) {
            atomic_fetch_add(&s->buckets[i], 1);
            break; /* cumulated at render time */
        }
    }
    add_value(&s->value, v);
    atomic_fetch_add(&s->count, 1);
}

/* The series of id with the labels of ap (name, value, ..., NULL), created when new. */
static series_t *series_of(metric_id_t id, va_list ap)
{
    char labels[LABELS_MAX];
    format_labels(labels, sizeof labels, ap);
    return series_get((int)id, labels, true);
}

void metrics_add(metric_id_t id, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series_t *s = series_of(id, ap);
    va_end(ap);
    if (!s)
        return;
    if (FAMILIES[id].type == T_histogram)
        observe(s, FAMILIES[id].buckets, v);
    else
        add_value(&s->value, v);
}

void metrics_set(metric_id_t id, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series_t *s = series_of(id, ap);
    va_end(ap);
    if (s)
        atomic_store(&s->value, v);
}

void metrics_zero(metric_id_t id)
{
    for (size_t i = 0; i < METRICS_MAX_SERIES; i++) {
        if (atomic_load(&table[i].id) == (int)id + 1)
            atomic_store(&table[i].value, 0);
    }
}

double metrics_get(metric_id_t id, ...)
{
    char labels[LABELS_MAX];
    va_list ap;
    va_start(ap, id);
    format_labels(labels, sizeof labels, ap);
    va_end(ap);
    series_t *s = series_get((int)id, labels, false);
    if (!s)
        return 0;
    return FAMILIES[id].type == T_histogram ? (double)atomic_load(&s->count)
                                            : atomic_load(&s->value);
}

void metrics_http(const char *method, const char *route, int status, long us)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST", "PUT",
                                          "DELETE", "OPTIONS", "PATCH"};
    const char *m = "other";
    for (size_t i = 0; method && i < sizeof methods / sizeof methods[0]; i++) {
        if (!strcmp(method, methods[i]))
            m = methods[i];
    }
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    const char *r = route ? route : "unmatched";
    metrics_add(M_HTTP_REQUESTS, 1, "method", m, "route", r, "status", code, NULL);
    metrics_add(M_HTTP_SECONDS, (double)us / 1e6, "method", m, "route", r, NULL);
}

/* Prints a number as Prometheus expects (integers without a fraction). */
static void num(FILE *f, double v)
{
    if (v == (double)(long long)v && fabs(v) < 1e15)
        fprintf(f, "%lld", (long long)v);
    else
        fprintf(f, "%.9g", v);
}

static void bucket_line(FILE *f, const char *name, const char *labels, const char *le, uint64_t n)
{
    fprintf(f, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", le,
            (unsigned long long)n);
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    for (int id = 0; id < M_COUNT; id++) {
        const char *name = FAMILIES[id].name;
        mtype_t type = FAMILIES[id].type;
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, FAMILIES[id].help, name,
                type == T_counter ? "counter"
                : type == T_gauge ? "gauge"
                                  : "histogram");
        bool any = false;
        for (size_t i = 0; i < METRICS_MAX_SERIES; i++) {
            series_t *s = &table[i];
            if (atomic_load_explicit(&s->id, memory_order_acquire) != id + 1)
                continue;
            any = true;
            if (type != T_histogram) {
                fprintf(f, "%s%s%s%s ", name, *s->labels ? "{" : "", s->labels,
                        *s->labels ? "}" : "");
                num(f, atomic_load(&s->value));
                fputc('\n', f);
                continue;
            }
            /* count first: a concurrent observation may then show in +Inf but not yet in
             * _count, never the other way round; buckets stay monotonic */
            uint64_t count = atomic_load(&s->count);
            uint64_t cum = 0;
            const double *b = FAMILIES[id].buckets;
            for (size_t k = 0; k < METRICS_MAX_BUCKETS && !isnan(b[k]); k++) {
                cum += atomic_load(&s->buckets[k]);
                char le[32];
                snprintf(le, sizeof le, "%g", b[k]);
                bucket_line(f, name, s->labels, le, cum < count ? cum : count);
            }
            bucket_line(f, name, s->labels, "+Inf", count);
            fprintf(f, "%s_sum%s%s%s ", name, *s->labels ? "{" : "", s->labels,
                    *s->labels ? "}" : "");
            num(f, atomic_load(&s->value));
            fprintf(f, "\n%s_count%s%s%s %llu\n", name, *s->labels ? "{" : "", s->labels,
                    *s->labels ? "}" : "", (unsigned long long)count);
        }
        if (id == M_SERIES_DROPPED)
            fprintf(f, "%s %llu\n", name, (unsigned long long)atomic_load(&dropped));
        else if (!any && type != T_histogram)
            fprintf(f, "%s 0\n", name);
    }
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}

/* workpool.c - a fixed pool of threads running a bounded FIFO of jobs.
 *
 * Layer: base. */
#include "base/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    struct job *next;
    workpool_fn fn;
    void *ctx;
} job_t;

struct workpool {
    pthread_mutex_t lock; /* guards head, tail, queued, stopping */
    pthread_cond_t work;  /* a job was queued, or stopping */
    job_t *head, *tail;
    size_t queued, max_queued;
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

static void *run(void *arg)
{
    workpool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        job_t *j = p->head;
        if (!j)
            break; /* stopping with nothing left */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->ctx);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

workpool_t *workpool_new(int threads, size_t max_queued, const char *name)
{
    workpool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (threads < 1)
        threads = 1;
    p->max_queued = max_queued;
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, run, p) != 0)
            break;
        if (name)
            pthread_setname_np(p->threads[i], name);
        p->nthreads++;
    }
    if (!p->nthreads) {
        workpool_free(p);
        return NULL;
    }
    return p;
}

tassa_err workpool_submit(workpool_t *p, workpool_fn fn, void *ctx)
{
    job_t *j = malloc(sizeof *j);
    if (!j)
        return TASSA_ENOMEM;
    *j = (job_t){.fn = fn, .ctx = ctx};
    pthread_mutex_lock(&p->lock);
    tassa_err err = p->stopping                  ? TASSA_EUNAVAIL
                    : p->queued >= p->max_queued ? TASSA_ELIMIT
                                                 : TASSA_OK;
    if (!err) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    if (err)
        free(j);
    return err;
}

void workpool_free(workpool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

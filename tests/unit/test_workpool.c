/* test_workpool.c - the pool of blocking-work threads: every job runs once, several at once;
 * a full queue refuses at once; freeing runs what was queued. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/workpool.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int ran, running, max_running;
    bool release; /* blocked jobs wait for it */
} board_t;

static board_t board;

static void board_reset(void)
{
    pthread_mutex_lock(&board.mu);
    board.ran = board.running = board.max_running = 0;
    board.release = false;
    pthread_mutex_unlock(&board.mu);
}

/* Counts itself running, waits for release, then counts itself done. */
static void blocked_job(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&board.mu);
    board.running++;
    if (board.running > board.max_running)
        board.max_running = board.running;
    pthread_cond_broadcast(&board.cond);
    while (!board.release)
        pthread_cond_wait(&board.cond, &board.mu);
    board.running--;
    board.ran++;
    pthread_cond_broadcast(&board.cond);
    pthread_mutex_unlock(&board.mu);
}

static void wait_running(int n)
{
    pthread_mutex_lock(&board.mu);
    while (board.running < n)
        pthread_cond_wait(&board.cond, &board.mu);
    pthread_mutex_unlock(&board.mu);
}

static void let_go(void)
{
    pthread_mutex_lock(&board.mu);
    board.release = true;
    pthread_cond_broadcast(&board.cond);
    pthread_mutex_unlock(&board.mu);
}

/* Four threads run four blocked jobs at once; the rest wait in the queue and run after. */
static void jobs_run_in_parallel_and_all_run(void **state)
{
    (void)state;
    board_reset();
    workpool_t *p = workpool_new(4, 100, "test-pool");
    assert_non_null(p);
    for (int i = 0; i < 20; i++)
        assert_int_equal(workpool_submit(p, blocked_job, NULL), TASSA_OK);
    wait_running(4);
    let_go();
    workpool_free(p); /* runs what is queued, then joins */
    assert_int_equal(board.ran, 20);
    assert_int_equal(board.max_running, 4);
}

/* With every thread blocked and the queue full, a submit is refused at once. */
static void a_full_queue_refuses(void **state)
{
    (void)state;
    board_reset();
    workpool_t *p = workpool_new(2, 3, NULL);
    assert_non_null(p);
    assert_int_equal(workpool_submit(p, blocked_job, NULL), TASSA_OK);
    assert_int_equal(workpool_submit(p, blocked_job, NULL), TASSA_OK);
    wait_running(2); /* both threads hold a job: the queue is empty */
    for (int i = 0; i < 3; i++)
        assert_int_equal(workpool_submit(p, blocked_job, NULL), TASSA_OK);
    assert_int_equal(workpool_submit(p, blocked_job, NULL), TASSA_ELIMIT);
    let_go();
    workpool_free(p);
    assert_int_equal(board.ran, 5); /* the refused one never ran */
}

int main(void)
{
    pthread_mutex_init(&board.mu, NULL);
    pthread_cond_init(&board.cond, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_run_in_parallel_and_all_run),
        cmocka_unit_test(a_full_queue_refuses),
    };
    return cmocka_run_group_tests_name("workpool", tests, NULL, NULL);
}

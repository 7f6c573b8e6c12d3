/* test_sid.c - SIDs: their form, their order in time and their random part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/sid.h"

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every SID has Twilio's form; one made a few milliseconds later sorts after it; its first 12
 * digits are the wall clock in milliseconds. */
static void sids_have_the_form_and_grow_with_time(void **state)
{
    (void)state;
    char prev[SID_LEN + 1] = "", sid[SID_LEN + 1];
    for (int i = 0; i < 20; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_REALTIME, &t0);
        assert_int_equal(sid_new("WT", sid), TASSA_OK);
        clock_gettime(CLOCK_REALTIME, &t1);
        assert_true(sid_valid(sid, "WT"));
        assert_int_equal(strlen(sid), SID_LEN);
        char digits[13];
        memcpy(digits, sid + 2, 12);
        digits[12] = '\0';
        long long ms = strtoll(digits, NULL, 16);
        assert_true(ms >= (long long)t0.tv_sec * 1000 + t0.tv_nsec / 1000000);
        assert_true(ms <= (long long)t1.tv_sec * 1000 + t1.tv_nsec / 1000000);
        if (*prev)
            assert_true(strcmp(prev, sid) < 0);
        memcpy(prev, sid, sizeof sid);
        nanosleep(&(struct timespec){0, 2000000}, NULL); /* 2 ms */
    }
}

/* SIDs made in the same millisecond differ in their random 80 bits: 10,000 of them, all
 * distinct, with every hex digit seen in the random part. */
static void sids_of_one_moment_are_distinct(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*sids)[SID_LEN + 1] = calloc(N, sizeof *sids);
    assert_non_null(sids);
    int seen[16] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(sid_new("EV", sids[i]), TASSA_OK);
        for (const char *p = sids[i] + 14; *p; p++)
            seen[*p <= '9' ? *p - '0' : *p - 'a' + 10]++;
    }
    qsort(sids, N, sizeof *sids, cmp);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(sids[i - 1], sids[i]) != 0);
    for (int d = 0; d < 16; d++)
        assert_true(seen[d] > 0);
    free(sids);
}

/* A forked child's next SID does not repeat its parent's next one: the random bits buffered
 * in the parent before the fork are not the child's too. */
static void a_forked_child_does_not_repeat_its_parents_sids(void **state)
{
    (void)state;
    char sid[SID_LEN + 1], mine[SID_LEN + 1], theirs[SID_LEN + 1] = "";
    assert_int_equal(sid_new("WT", sid), TASSA_OK); /* the parent's buffer is filled */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char child[SID_LEN + 1] = "";
        int ok = sid_new("WT", child) == TASSA_OK;
        _exit(ok && write(fds[1], child, sizeof child) == (ssize_t)sizeof child ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], theirs, sizeof theirs), (ssize_t)sizeof theirs);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sid_new("WT", mine), TASSA_OK);
    assert_true(sid_valid(theirs, "WT"));
    assert_string_not_equal(mine + 14, theirs + 14); /* the random parts */
}

/* More SIDs than one buffer holds, over several refills: all distinct and well formed. */
static void sids_stay_distinct_across_refills(void **state)
{
    (void)state;
    enum { N = 1234 };
    char(*sids)[SID_LEN + 1] = calloc(N, sizeof *sids);
    assert_non_null(sids);
    for (int i = 0; i < N; i++) {
        assert_int_equal(sid_new("ET", sids[i]), TASSA_OK);
        assert_true(sid_valid(sids[i], "ET"));
        memmove(sids[i], sids[i] + 14, 21); /* the random part only */
    }
    qsort(sids, N, sizeof *sids, cmp);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(sids[i - 1], sids[i]) != 0);
    free(sids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sids_have_the_form_and_grow_with_time),
        cmocka_unit_test(sids_of_one_moment_are_distinct),
        cmocka_unit_test(a_forked_child_does_not_repeat_its_parents_sids),
        cmocka_unit_test(sids_stay_distinct_across_refills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

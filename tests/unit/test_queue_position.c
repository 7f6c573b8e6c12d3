/* test_queue_position.c - the estimated wait of a queued customer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "functions/get_queue_position.h"

static json_t *cumulative(int accepted, int acceptance_time)
{
    return json_pack("{s:i, s:i}", "reservations_accepted", accepted, "avg_task_acceptance_time",
                     acceptance_time);
}

static void no_history_is_unknown(void **state)
{
    json_t *cum = cumulative(0, 0), *rt = json_pack("{s:i}", "total_available_workers", 3);
    assert_int_equal(get_queue_position_estimate(1, cum, rt, 15), -1);
    assert_int_equal(get_queue_position_estimate(1, NULL, NULL, 15), -1);
    json_decref(cum);
    json_decref(rt);
}

static void free_tellers_take_the_first_at_once(void **state)
{
    json_t *cum = cumulative(30, 12), *rt = json_pack("{s:i}", "total_available_workers", 2);
    assert_int_equal(get_queue_position_estimate(1, cum, rt, 15), 12);
    assert_int_equal(get_queue_position_estimate(2, cum, rt, 15), 12);
    /* 30 accepted in 15 minutes = one every 30 s; third in line waits for one more. */
    assert_int_equal(get_queue_position_estimate(3, cum, rt, 15), 30);
    /* sixth: 4 more at 30 s = 120 s by rate, but 6 x 12 s by the waits seen: 72 */
    assert_int_equal(get_queue_position_estimate(6, cum, rt, 15), 72);
    json_decref(cum);
    json_decref(rt);
}

static void little_history_is_capped_by_the_waits_seen(void **state)
{
    /* one task accepted in 15 minutes after a 3 s wait: not 15 minutes per place */
    json_t *cum = cumulative(1, 3), *rt = json_pack("{s:i}", "total_available_workers", 0);
    assert_int_equal(get_queue_position_estimate(1, cum, rt, 15), 3);
    assert_int_equal(get_queue_position_estimate(2, cum, rt, 15), 6);
    json_decref(cum);
    json_decref(rt);
}

static void the_wait_grows_with_the_position(void **state)
{
    json_t *cum = cumulative(90, 50), *rt = json_pack("{s:i}", "total_available_workers", 0);
    long prev = -1;
    for (long p = 1; p <= 10; p++) {
        long e = get_queue_position_estimate(p, cum, rt, 15);
        assert_true(e > prev);
        assert_int_equal(e, p * 10); /* 90 in 900 s: one every 10 s */
        prev = e;
    }
    json_decref(cum);
    json_decref(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_history_is_unknown),
        cmocka_unit_test(free_tellers_take_the_first_at_once),
        cmocka_unit_test(little_history_is_capped_by_the_waits_seen),
        cmocka_unit_test(the_wait_grows_with_the_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

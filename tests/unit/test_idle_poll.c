/*
 * test_idle_poll.c - how the worker's poll window adapts (daemon/idle_poll.c): from
 * nothing it opens at IDLE_POLL_FIRST_US once a wake came soon after the worker slept,
 * doubles while wakes keep coming that soon, never past IDLE_POLL_MAX_US, and halves on
 * each long sleep until it is nothing again.
 */
#include <check.h>

#include "sockrpcd.h"

START_TEST(a_short_sleep_opens_and_doubles_the_window)
{
	ck_assert_uint_eq(idle_poll_next_window(0, 10), IDLE_POLL_FIRST_US);
	ck_assert_uint_eq(idle_poll_next_window(IDLE_POLL_FIRST_US, 1), 2 * IDLE_POLL_FIRST_US);
	ck_assert_uint_eq(idle_poll_next_window(0, IDLE_POLL_MAX_US), IDLE_POLL_FIRST_US);
}
END_TEST

START_TEST(the_window_never_passes_its_cap)
{
	unsigned w = 0;

	for (int i = 0; i < 20; i++) {
		w = idle_poll_next_window(w, 5);
		ck_assert_uint_le(w, IDLE_POLL_MAX_US);
	}
	ck_assert_uint_eq(w, IDLE_POLL_MAX_US);
}
END_TEST

START_TEST(long_sleeps_close_the_window)
{
	unsigned w = IDLE_POLL_MAX_US;
	int steps = 0;

	ck_assert_uint_eq(idle_poll_next_window(0, IDLE_POLL_MAX_US + 1), 0);
	while (w > 0 && steps < 20) {
		unsigned next = idle_poll_next_window(w, 1000000);

		ck_assert_uint_lt(next, w);
		w = next;
		steps++;
	}
	ck_assert_uint_eq(w, 0);
	ck_assert_int_le(steps, 4); /* 50 -> 25 -> 12 -> 6, below 8: none */
}
END_TEST

Suite *
idle_poll_suite(void)
{
	Suite *s = suite_create("idle_poll");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, a_short_sleep_opens_and_doubles_the_window);
	tcase_add_test(tc, the_window_never_passes_its_cap);
	tcase_add_test(tc, long_sleeps_close_the_window);
	suite_add_tcase(s, tc);
	return s;
}

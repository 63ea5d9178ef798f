/*
 * test_buffer_pool.c - the client's pool of large buffers (client/buffer_pool.c): blocks
 * come back for reuse, and a full pool keeps the larger block, so that the short replies
 * a transfer begins with cannot crowd out the large ones for good.
 */
#include <check.h>
#include <string.h>

#include "frame.h"
#include "internal.h"

#define KIB 1024u

static sr_client c;

static void
pool_up(void)
{
	memset(&c, 0, sizeof(c));
	c.max_frame = SR_MAX_FRAME;
	cl_pool_init(&c);
}

static void
pool_down(void)
{
	cl_pool_destroy(&c);
}

static int
times_pooled(const void *p)
{
	int n = 0;

	for (int i = 0; i < POOL_BLOCKS; i++)
		n += c.pool[i] == p;
	return n;
}

START_TEST(freed_block_is_handed_out_again)
{
	void *p = cl_pool_alloc(&c, 100 * KIB);

	cl_pool_free(&c, p);
	ck_assert_int_eq(times_pooled(p), 1);
	ck_assert_ptr_eq(cl_pool_alloc(&c, 128 * KIB), p); /* rounded up to 128 KiB */
	ck_assert_int_eq(times_pooled(p), 0);
	cl_pool_free(&c, p);
}
END_TEST

START_TEST(small_blocks_are_not_pooled)
{
	void *p = cl_pool_alloc(&c, 1000);

	cl_pool_free(&c, p);
	ck_assert_int_eq(times_pooled(p), 0);
}
END_TEST

START_TEST(full_pool_keeps_the_larger_block)
{
	void *small[POOL_BLOCKS], *frames[POOL_BLOCKS], *big, *smaller;

	smaller = cl_pool_alloc(&c, 64 * KIB); /* held for the end */
	for (int i = 0; i < POOL_BLOCKS; i++)
		small[i] = cl_pool_alloc(&c, 64 * KIB);
	for (int i = 0; i < POOL_BLOCKS; i++)
		cl_pool_free(&c, small[i]);
	big = cl_pool_alloc(&c, 1024 * KIB); /* no pooled block is large enough */
	for (int i = 0; i < POOL_BLOCKS; i++)
		ck_assert_int_eq(times_pooled(small[i]), 1);
	cl_pool_free(&c, big);
	ck_assert_int_eq(times_pooled(big), 1);
	ck_assert_ptr_eq(cl_pool_alloc(&c, 1024 * KIB), big);
	cl_pool_free(&c, big);

	/* A block smaller than every pooled one is freed, not swapped in. */
	for (int i = 0; i < POOL_BLOCKS; i++)
		frames[i] = cl_pool_alloc(&c, 1024 * KIB + 1); /* a whole frame each */
	for (int i = 0; i < POOL_BLOCKS; i++)
		cl_pool_free(&c, frames[i]);
	for (int i = 0; i < POOL_BLOCKS; i++)
		ck_assert_int_eq(times_pooled(frames[i]), 1);
	cl_pool_free(&c, smaller);
	ck_assert_int_eq(times_pooled(smaller), 0);
}
END_TEST

Suite *
buffer_pool_suite(void)
{
	Suite *s = suite_create("buffer_pool");
	TCase *tc = tcase_create("pool");

	tcase_add_checked_fixture(tc, pool_up, pool_down);
	tcase_add_test(tc, freed_block_is_handed_out_again);
	tcase_add_test(tc, small_blocks_are_not_pooled);
	tcase_add_test(tc, full_pool_keeps_the_larger_block);
	suite_add_tcase(s, tc);
	return s;
}

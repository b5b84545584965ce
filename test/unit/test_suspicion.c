/* Lifeguard suspicion timer: the timeout formula against hand-computed
 * values (memberlist LAN: SuspicionMult 4, SuspicionMaxTimeoutMult 6,
 * ProbeInterval 1 s) and the timer's reaction to confirmations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "suspicion.h"

#define S 1000000000LL
#define MS 1000000LL

static void test_timeout_min(void **state)
{
	(void)state;
	/* max(1, log10(n)) * 4 s: n <= 10 gives the floor of 4 s. */
	assert_int_equal(suspicion_timeout_min(4, 0, S), 4 * S);
	assert_int_equal(suspicion_timeout_min(4, 1, S), 4 * S);
	assert_int_equal(suspicion_timeout_min(4, 3, S), 4 * S);
	assert_int_equal(suspicion_timeout_min(4, 10, S), 4 * S);
	/* log10(20) = 1.30103 -> truncated to 1.301 -> 5.204 s */
	assert_int_equal(suspicion_timeout_min(4, 20, S), 5204 * MS);
	/* log10(50) = 1.69897 -> 1.698 -> 6.792 s */
	assert_int_equal(suspicion_timeout_min(4, 50, S), 6792 * MS);
	assert_int_equal(suspicion_timeout_min(4, 100, S), 8 * S);
	assert_int_equal(suspicion_timeout_min(4, 1000, S), 12 * S);
	/* WAN: mult 6, 5 s interval, n = 3 -> 30 s */
	assert_int_equal(suspicion_timeout_min(6, 3, 5 * S), 30 * S);
}

static void test_k(void **state)
{
	(void)state;
	/* k = mult - 2, or 0 when n - 2 < k (self and suspect excluded). */
	assert_int_equal(suspicion_k(4, 2), 0);
	assert_int_equal(suspicion_k(4, 3), 0);
	assert_int_equal(suspicion_k(4, 4), 2);
	assert_int_equal(suspicion_k(4, 20), 2);
	assert_int_equal(suspicion_k(6, 5), 0);
	assert_int_equal(suspicion_k(6, 6), 4);
}

static void test_remaining(void **state)
{
	(void)state;
	/* n = 20: min 5.204 s, max 31.224 s, k = 2.
	 * c=1: 31.224 - ln2/ln3 * 26.02 = 31.224 - 16.4168 = 14.807 s */
	assert_int_equal(suspicion_remaining(0, 2, 0, 5204 * MS, 31224 * MS),
			 31224 * MS);
	assert_int_equal(suspicion_remaining(1, 2, 0, 5204 * MS, 31224 * MS),
			 14807 * MS);
	assert_int_equal(suspicion_remaining(2, 2, 0, 5204 * MS, 31224 * MS),
			 5204 * MS);
	/* n = 50: min 6.792 s, max 40.752 s.
	 * c=1: 40.752 - 0.63093 * 33.96 = 40.752 - 21.4264 = 19.325 s */
	assert_int_equal(suspicion_remaining(1, 2, 0, 6792 * MS, 40752 * MS),
			 19325 * MS);
	assert_int_equal(suspicion_remaining(2, 2, 0, 6792 * MS, 40752 * MS),
			 6792 * MS);
	/* n = 3 (< 10): min 4 s, max 24 s; with k = 2 (were it allowed)
	 * c=1: 24 - 0.63093 * 20 = 11.381 s */
	assert_int_equal(suspicion_remaining(1, 2, 0, 4 * S, 24 * S),
			 11381 * MS);
	/* Elapsed time is subtracted, and may make it negative. */
	assert_int_equal(suspicion_remaining(1, 2, 3 * S, 4 * S, 24 * S),
			 8381 * MS);
	assert_int_equal(suspicion_remaining(2, 2, 5 * S, 4 * S, 24 * S),
			 -1 * S);
}

static void test_timer_n20(void **state)
{
	(void)state;
	struct suspicion sp;
	int64_t t0 = 100 * S;
	int64_t min = suspicion_timeout_min(4, 20, S);
	int k = suspicion_k(4, 20);
	assert_int_equal(suspicion_start(&sp, "accuser", k, min, 6 * min, t0),
			 0);
	/* k >= 1: starts at max. */
	assert_int_equal(sp.deadline, t0 + 31224 * MS);
	/* The accuser and repeats never count. */
	assert_int_equal(suspicion_confirm(&sp, "accuser", t0 + S), 0);
	assert_int_equal(suspicion_confirm(&sp, "b", t0 + S), 1);
	assert_int_equal(sp.deadline, t0 + 14807 * MS);
	assert_int_equal(suspicion_confirm(&sp, "b", t0 + 2 * S), 0);
	assert_false(suspicion_expired(&sp, t0 + 14807 * MS - 1));
	assert_int_equal(suspicion_confirm(&sp, "c", t0 + 2 * S), 1);
	assert_int_equal(sp.deadline, t0 + 5204 * MS);
	/* Only k confirmations are counted. */
	assert_int_equal(suspicion_confirm(&sp, "d", t0 + 3 * S), 0);
	assert_int_equal(sp.n, 2);
	assert_false(suspicion_expired(&sp, t0 + 5204 * MS - 1));
	assert_true(suspicion_expired(&sp, t0 + 5204 * MS));
	suspicion_clear(&sp);
	suspicion_clear(NULL);
}

static void test_timer_k0(void **state)
{
	(void)state;
	struct suspicion sp;
	int64_t min = suspicion_timeout_min(4, 3, S);
	assert_int_equal(suspicion_start(&sp, "a", suspicion_k(4, 3), min,
					 6 * min, 0), 0);
	/* k < 1: the timer is min and confirmations change nothing. */
	assert_int_equal(sp.deadline, 4 * S);
	assert_int_equal(suspicion_confirm(&sp, "b", S), 0);
	assert_int_equal(sp.deadline, 4 * S);
	suspicion_clear(&sp);
}

static void test_timer_fires_at_once(void **state)
{
	(void)state;
	struct suspicion sp;
	/* n = 10: min 4 s, max 24 s, k 2. */
	assert_int_equal(suspicion_start(&sp, "a", 2, 4 * S, 24 * S, 0), 0);
	assert_int_equal(suspicion_confirm(&sp, "b", 10 * S), 1);
	assert_int_equal(sp.deadline, 11381 * MS);
	/* Second confirmation at 11 s: timeout 4 s already passed. */
	assert_int_equal(suspicion_confirm(&sp, "c", 11 * S), 1);
	assert_int_equal(sp.deadline, 11 * S);
	assert_true(suspicion_expired(&sp, 11 * S));
	suspicion_clear(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_min),
		cmocka_unit_test(test_k),
		cmocka_unit_test(test_remaining),
		cmocka_unit_test(test_timer_n20),
		cmocka_unit_test(test_timer_k0),
		cmocka_unit_test(test_timer_fires_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

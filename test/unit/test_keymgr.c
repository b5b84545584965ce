/* Unit tests for manager/keymgr.c: rings made around an existing gossip
 * key, the order of use (primary = the middle of three), rotation keeping
 * three keys and promoting the previous newest, gossip_keys following the
 * ring (primary last), and when a rotation is due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "manager/keymgr.h"
#include "pb.h"
#include "util.h"

#define NOW (1700000000LL * 1000000000LL)
#define HOUR (3600LL * 1000000000LL)

static Swarm__Cluster *cluster_with_gossip_key(uint8_t fill)
{
	Swarm__Cluster *cl = xmalloc(sizeof(*cl));
	swarm__cluster__init(cl);
	cl->gossip_keys = xcalloc(1, sizeof(*cl->gossip_keys));
	cl->gossip_keys[0].data = xmalloc(KEYMGR_KEY_LEN);
	memset(cl->gossip_keys[0].data, fill, KEYMGR_KEY_LEN);
	cl->gossip_keys[0].len = KEYMGR_KEY_LEN;
	cl->n_gossip_keys = 1;
	return cl;
}

static bool key_is(const ProtobufCBinaryData *k, const uint8_t *data)
{
	return k->len == KEYMGR_KEY_LEN && memcmp(k->data, data, KEYMGR_KEY_LEN) == 0;
}

static void test_ensure_keeps_gossip_primary(void **unused)
{
	(void)unused;
	Swarm__Cluster *cl = cluster_with_gossip_key(0xab);
	uint8_t old[KEYMGR_KEY_LEN];
	memset(old, 0xab, sizeof(old));
	assert_true(keymgr_ensure(cl, NOW));
	assert_false(keymgr_ensure(cl, NOW));             /* idempotent */
	const Swarm__NetworkKey *ring[4];
	assert_int_equal(keymgr_ring(cl, KEYMGR_GOSSIP, ring, 4), 3);
	assert_int_equal(keymgr_ring(cl, KEYMGR_DATAPATH, ring + 0, 4), 3);
	assert_int_equal(keymgr_ring(cl, KEYMGR_GOSSIP, ring, 4), 3);
	/* the existing key is still the one nodes send with */
	assert_true(key_is(&ring[0]->key, old));
	assert_int_equal(cl->n_gossip_keys, 3);
	assert_true(key_is(&cl->gossip_keys[2], old)); /* primary last */
	/* lamport times: the primary is the middle one */
	assert_true(ring[1]->lamport_time < ring[0]->lamport_time);
	assert_true(ring[0]->lamport_time < ring[2]->lamport_time);
	/* keys differ from each other and between subsystems */
	const Swarm__NetworkKey *dp[3];
	keymgr_ring(cl, KEYMGR_DATAPATH, dp, 3);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			assert_memory_not_equal(ring[i]->key.data, dp[j]->key.data, KEYMGR_KEY_LEN);
			if (i != j)
				assert_memory_not_equal(ring[i]->key.data, ring[j]->key.data, KEYMGR_KEY_LEN);
		}
	pb_free(cl);
}

static void test_rotate(void **unused)
{
	(void)unused;
	Swarm__Cluster *cl = cluster_with_gossip_key(0x11);
	keymgr_ensure(cl, NOW);
	const Swarm__NetworkKey *before[3], *after[3];
	keymgr_ring(cl, KEYMGR_DATAPATH, before, 3);
	uint8_t newest[KEYMGR_KEY_LEN], primary[KEYMGR_KEY_LEN];
	memcpy(newest, before[2]->key.data, KEYMGR_KEY_LEN);
	memcpy(primary, before[0]->key.data, KEYMGR_KEY_LEN);
	uint64_t clock = cl->key_clock;
	keymgr_rotate(cl, NOW + HOUR);
	assert_int_equal(cl->key_clock, clock + 1);
	assert_int_equal(cl->n_network_keys, 6);
	assert_int_equal(keymgr_ring(cl, KEYMGR_DATAPATH, after, 3), 3);
	/* the previous newest sends now; the previous primary is still
	 * received with; the new key is received with only */
	assert_memory_equal(after[0]->key.data, newest, KEYMGR_KEY_LEN);
	assert_memory_equal(after[1]->key.data, primary, KEYMGR_KEY_LEN);
	assert_int_equal(after[2]->lamport_time, clock + 1);
	assert_int_equal(after[2]->created_at, NOW + HOUR);
	/* three rotations later none of the first ring is left */
	for (int i = 0; i < 3; i++)
		keymgr_rotate(cl, NOW + (2 + i) * HOUR);
	keymgr_ring(cl, KEYMGR_GOSSIP, after, 3);
	for (int i = 0; i < 3; i++)
		assert_true(after[i]->lamport_time > clock);
	assert_int_equal(cl->n_gossip_keys, 3);
	assert_true(key_is(&cl->gossip_keys[2], after[0]->key.data));
	pb_free(cl);
}

static void test_due(void **unused)
{
	(void)unused;
	Swarm__Cluster *cl = cluster_with_gossip_key(0x22);
	assert_int_equal(keymgr_next_rotation(cl), 0);
	keymgr_ensure(cl, NOW);
	assert_int_equal(keymgr_interval(cl), KEYMGR_DEFAULT_INTERVAL_NS);
	assert_int_equal(keymgr_next_rotation(cl), NOW + KEYMGR_DEFAULT_INTERVAL_NS);
	cl->key_rotation_interval_ns = HOUR;
	assert_int_equal(keymgr_next_rotation(cl), NOW + HOUR);
	keymgr_rotate(cl, NOW + 2 * HOUR);
	assert_int_equal(keymgr_next_rotation(cl), NOW + 3 * HOUR);
	pb_free(cl);
}

/* A ring of one or two keys (a cluster stored by hand): the order rule
 * still gives one primary. */
static void test_short_ring_order(void **unused)
{
	(void)unused;
	Swarm__Cluster *cl = xmalloc(sizeof(*cl));
	swarm__cluster__init(cl);
	cl->network_keys = xcalloc(3, sizeof(*cl->network_keys));
	for (int i = 0; i < 2; i++) {
		Swarm__NetworkKey *k = xmalloc(sizeof(*k));
		swarm__network_key__init(k);
		pb_set_str(&k->subsystem, KEYMGR_DATAPATH);
		k->lamport_time = 10 - (uint64_t)i;   /* stored newest first */
		cl->network_keys[cl->n_network_keys++] = k;
	}
	const Swarm__NetworkKey *ring[3];
	assert_int_equal(keymgr_ring(cl, KEYMGR_DATAPATH, ring, 3), 2);
	assert_int_equal(ring[0]->lamport_time, 10);   /* sorted, first two swapped */
	assert_int_equal(ring[1]->lamport_time, 9);
	assert_int_equal(keymgr_ring(cl, KEYMGR_GOSSIP, ring, 3), 0);
	pb_free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ensure_keeps_gossip_primary),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_short_ring_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

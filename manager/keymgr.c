/* The cluster's network key rings (see keymgr.h). */
#include "keymgr.h"

#include "netkeys.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const char *const keymgr_subsystems[] = { KEYMGR_GOSSIP, KEYMGR_DATAPATH };
#define KEYMGR_N_SUBSYSTEMS (sizeof(keymgr_subsystems) / sizeof(keymgr_subsystems[0]))

static void keymgr_push(Swarm__Cluster *cl, const char *subsystem, const uint8_t *key,
			uint64_t ltime, int64_t now)
{
	Swarm__NetworkKey *k = xmalloc(sizeof(*k));
	swarm__network_key__init(k);
	pb_set_str(&k->subsystem, subsystem);
	k->key.data = xmalloc(KEYMGR_KEY_LEN);
	k->key.len = KEYMGR_KEY_LEN;
	if (key)
		memcpy(k->key.data, key, KEYMGR_KEY_LEN);
	else
		random_bytes(k->key.data, KEYMGR_KEY_LEN);
	k->lamport_time = ltime;
	k->created_at = now;
	PB_PTRV_ADD(cl, network_keys, k);
}

static size_t keymgr_count(const Swarm__Cluster *cl, const char *subsystem)
{
	size_t n = 0;
	for (size_t i = 0; i < cl->n_network_keys; i++)
		n += strcmp(cl->network_keys[i]->subsystem, subsystem) == 0;
	return n;
}

size_t keymgr_ring(const Swarm__Cluster *cl, const char *subsystem,
		   const Swarm__NetworkKey **out, size_t max)
{
	return netkeys_order(cl->network_keys, cl->n_network_keys, subsystem, out, max);
}

/* gossip_keys (what netd takes: received with all, sent with the last)
 * from the gossip ring. */
static void keymgr_gossip_compat(Swarm__Cluster *cl)
{
	const Swarm__NetworkKey *ring[KEYMGR_RING_SIZE + 1];
	size_t n = keymgr_ring(cl, KEYMGR_GOSSIP, ring, KEYMGR_RING_SIZE + 1);
	for (size_t i = 0; i < cl->n_gossip_keys; i++)
		free(cl->gossip_keys[i].data);
	free(cl->gossip_keys);
	cl->gossip_keys = xcalloc(n + 1, sizeof(*cl->gossip_keys));
	cl->n_gossip_keys = n;
	/* primary (ring[0]) last */
	for (size_t i = 0; i < n; i++) {
		const Swarm__NetworkKey *k = ring[(i + 1) % n];
		cl->gossip_keys[i].data = xmalloc(k->key.len);
		memcpy(cl->gossip_keys[i].data, k->key.data, k->key.len);
		cl->gossip_keys[i].len = k->key.len;
	}
}

bool keymgr_ensure(Swarm__Cluster *cl, int64_t now)
{
	bool changed = false;
	for (size_t s = 0; s < KEYMGR_N_SUBSYSTEMS; s++) {
		const char *sub = keymgr_subsystems[s];
		if (keymgr_count(cl, sub) > 0)
			continue;
		/* An existing gossip key keeps being the primary: the middle
		 * of three, by Lamport time. */
		const uint8_t *old = !strcmp(sub, KEYMGR_GOSSIP) && cl->n_gossip_keys &&
				     cl->gossip_keys[cl->n_gossip_keys - 1].len == KEYMGR_KEY_LEN
				     ? cl->gossip_keys[cl->n_gossip_keys - 1].data : NULL;
		for (int i = 0; i < KEYMGR_RING_SIZE; i++)
			keymgr_push(cl, sub, i == 1 ? old : NULL, ++cl->key_clock, now);
		changed = true;
	}
	if (changed)
		keymgr_gossip_compat(cl);
	return changed;
}

void keymgr_rotate(Swarm__Cluster *cl, int64_t now)
{
	keymgr_ensure(cl, now);
	uint64_t t = ++cl->key_clock;
	for (size_t s = 0; s < KEYMGR_N_SUBSYSTEMS; s++) {
		const char *sub = keymgr_subsystems[s];
		keymgr_push(cl, sub, NULL, t, now);
		while (keymgr_count(cl, sub) > KEYMGR_RING_SIZE) {
			size_t oldest = SIZE_MAX;
			for (size_t i = 0; i < cl->n_network_keys; i++)
				if (!strcmp(cl->network_keys[i]->subsystem, sub) &&
				    (oldest == SIZE_MAX ||
				     cl->network_keys[i]->lamport_time < cl->network_keys[oldest]->lamport_time))
					oldest = i;
			pb_free(cl->network_keys[oldest]);
			memmove(&cl->network_keys[oldest], &cl->network_keys[oldest + 1],
				(cl->n_network_keys - oldest - 1) * sizeof(*cl->network_keys));
			cl->n_network_keys--;
		}
	}
	keymgr_gossip_compat(cl);
}

int64_t keymgr_interval(const Swarm__Cluster *cl)
{
	return cl->key_rotation_interval_ns > 0 ? cl->key_rotation_interval_ns
						: KEYMGR_DEFAULT_INTERVAL_NS;
}

int64_t keymgr_next_rotation(const Swarm__Cluster *cl)
{
	int64_t newest = 0;
	bool any = false;
	for (size_t i = 0; i < cl->n_network_keys; i++) {
		any = true;
		if (cl->network_keys[i]->created_at > newest)
			newest = cl->network_keys[i]->created_at;
	}
	return any ? newest + keymgr_interval(cl) : 0;
}

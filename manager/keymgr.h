/* The cluster's network key rings (swarmkit's keymanager): one ring of
 * KEYMGR_RING_SIZE AES keys per subsystem (gossip, data path), each key
 * tagged with a Lamport time from the cluster's key clock. Pure functions
 * on the cluster object; the manager commits what they change and pushes
 * the rings to every node.
 *
 * Order of use (as Docker's agents do it): sort a ring by Lamport time
 * and swap the first two. The first is the primary (the key nodes send
 * with); the rest are received with. With three keys the primary is the
 * middle one: the newest key reaches every node one whole rotation period
 * before anyone sends with it, so a rotation drops nothing. A rotation
 * adds a new newest key and drops the oldest: the old newest becomes the
 * primary, the old primary is still received with.
 *
 * Rotation is due one interval (default 12 h) after the newest key was
 * made; `swarm update --rotate-network-keys` rotates at once. Nonce and
 * counter exhaustion is the data path's business: it derives per-epoch
 * keys from a ring key and re-keys by volume (netd). */
#ifndef SWARM_KEYMGR_H
#define SWARM_KEYMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

#define KEYMGR_RING_SIZE 3
#define KEYMGR_KEY_LEN 16
#define KEYMGR_DEFAULT_INTERVAL_NS (12LL * 3600 * 1000000000LL)
#define KEYMGR_GOSSIP "gossip"
#define KEYMGR_DATAPATH "datapath"

/* Gives every subsystem a full ring. The gossip ring is built around the
 * cluster's existing gossip key (the middle, so it stays the primary).
 * Returns whether cl changed. */
bool keymgr_ensure(Swarm__Cluster *cl, int64_t now);

/* Adds a new key to every ring and drops each ring's oldest beyond
 * KEYMGR_RING_SIZE; gossip_keys follows. */
void keymgr_rotate(Swarm__Cluster *cl, int64_t now);

/* The rotation interval in force (ns). */
int64_t keymgr_interval(const Swarm__Cluster *cl);
/* When the next rotation is due (wall ns); 0 when the rings are missing. */
int64_t keymgr_next_rotation(const Swarm__Cluster *cl);

/* The keys of subsystem in order of use (primary first, see above and
 * lib/netkeys.h): up to max pointers into cl into out; returns how many. */
size_t keymgr_ring(const Swarm__Cluster *cl, const char *subsystem,
		   const Swarm__NetworkKey **out, size_t max);

#endif

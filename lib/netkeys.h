/* The order in which a node uses a ring of network keys (the manager's
 * keymgr.h, Docker's agent.go getKeys): sorted by Lamport time, then the
 * first two swapped. The first is the primary (sent with), the others are
 * received with; with three keys the primary is the middle one, so the
 * newest reaches every node a whole rotation before anyone sends with it.
 * Shared by the manager (gossip_keys) and the agent (netd's data-path
 * ring). */
#ifndef SWARM_NETKEYS_H
#define SWARM_NETKEYS_H

#include <stddef.h>

#include "objects.pb-c.h"

/* The keys of subsystem among keys[0..n) in order of use: up to max
 * pointers into out; returns how many. */
size_t netkeys_order(Swarm__NetworkKey *const *keys, size_t n, const char *subsystem,
		     const Swarm__NetworkKey **out, size_t max);

#endif

/* The allocator: network subnets and gateways from the default address pool
 * (or the user's subnet), VNIs from 4096 up, one VIP per service per attached
 * network (and on ingress when it publishes ingress-mode ports), one address
 * per task per network, one address per node on every network it needs one
 * on (ingress always), and published ports (explicit 1-65535, automatic from
 * 30000-32767). Exhaustion is an error with a clear message, never silent.
 *
 * It works on mutable copies of store objects; the caller commits them.
 * Pure apart from its own bookkeeping; no I/O. */
#ifndef SWARM_ALLOCATOR_H
#define SWARM_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>
#include "objects.pb-c.h"

struct allocator;

/* pools: CIDRs (default "10.0.0.0/8" when n_pools is 0), mask_len: size of
 * automatic subnets (default 24 when 0). NULL on invalid pools. */
struct allocator *allocator_new(const char *const *pools, size_t n_pools, unsigned mask_len);
void allocator_free(struct allocator *a);

/* Restart: records what objects loaded from the store already hold, so no
 * address, subnet, VNI or port is handed out twice. Call for every network
 * first, then services, tasks and nodes. */
int allocator_restore_network(struct allocator *a, const Swarm__Network *n);
void allocator_restore_service(struct allocator *a, const Swarm__Service *svc);
void allocator_restore_task(struct allocator *a, const Swarm__Task *t);
void allocator_restore_node(struct allocator *a, const Swarm__Node *n);

/* Fills n->subnet, n->gateway and n->vni from n->spec. -EEXIST (subnet
 * overlaps another network), -EINVAL (bad CIDR or gateway outside it),
 * -ENOSPC (pool or VNIs exhausted); err gets a one-line reason. */
int allocator_network(struct allocator *a, Swarm__Network *n, char *err, size_t errlen);
void allocator_release_network(struct allocator *a, const Swarm__Network *n);

/* Fills svc->vips (for the given attached networks, and ingress when
 * ingress-mode ports are published and ingress is non-NULL) and svc->ports
 * (published ports allocated, keeping ones it already has). Frees VIPs and
 * ports the new spec no longer needs. On error nothing is changed or held.
 * -EADDRINUSE (port taken), -ENOSPC, -EINVAL. */
int allocator_service(struct allocator *a, Swarm__Service *svc,
		      const Swarm__Network *const *nets, size_t n_nets,
		      const Swarm__Network *ingress, char *err, size_t errlen);
void allocator_release_service(struct allocator *a, const Swarm__Service *svc);

/* Fills t->networks: one address per network (the networks in order; MAC
 * derived from the address 02:42:<ip bytes>). -ENOSPC with err when a
 * network is full: nothing is held then. */
int allocator_task(struct allocator *a, Swarm__Task *t,
		   const Swarm__Network *const *nets, size_t n_nets, char *err, size_t errlen);
void allocator_release_task(struct allocator *a, const Swarm__Task *t);

/* Makes sure node n has an address on net (node->attachments). Returns 1 when
 * it added one, 0 when it had one, negative on exhaustion. */
int allocator_node_attach(struct allocator *a, Swarm__Node *n, const Swarm__Network *net,
			  char *err, size_t errlen);
void allocator_release_node(struct allocator *a, const Swarm__Node *n);
/* Drops node n's address on net (no task of n left on it). */
void allocator_node_detach(struct allocator *a, Swarm__Node *n, const char *network_id);

#endif

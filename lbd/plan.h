/* What swarm-lbd wants balanced where, worked out from netd's endpoint
 * records alone (pure: no kernel, no clock), so that it can be tested
 * record by record.
 *
 * Placement (why this way):
 *   - VIPs are balanced inside each task sandbox (nat output: a connection
 *     to a VIP is DNAT-ed round robin to a serving task before it leaves
 *     the container). No extra hop and no source NAT: the backend sees
 *     the client task's own address, and answers it directly over the
 *     overlay. The cost is one small table per sandbox, which lbd keeps
 *     per namespace with one chain per service, so a backend change is
 *     one batch per sandbox of the service's networks. Docker's
 *     load-balancer namespace per network needs source NAT and an extra
 *     hop for every connection.
 *   - The routing mesh needs a namespace on ingress that clients from
 *     outside can reach: the node's ingress sandbox (made by the agent,
 *     attached by netd to ingress with the node's own ingress address and
 *     to the gateway bridge). The node's namespace DNATs each published
 *     port to that sandbox's gateway-bridge address (the client's address
 *     kept); the sandbox DNATs it round robin to the service's tasks on
 *     ingress and masquerades it to its ingress address, since the tasks'
 *     default route is their own gateway leg, not the sandbox. So a task
 *     reached through the mesh sees the ingress sandbox's address
 *     (Docker's #25526 remains for the mesh).
 *   - mode=host ports: the node's namespace DNATs the port to the task's
 *     gateway-bridge address, without source NAT (the task's default route
 *     comes back through the node), so the task sees the client's address.
 *
 * Only serving endpoints are backends (running, healthy, not told to
 * stop): a task told to stop takes no new connection while its
 * established ones go on until it exits. */
#ifndef SWARM_LBD_PLAN_H
#define SWARM_LBD_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "lb.h"

struct strmap;

/* Service ids in the node's namespace. */
#define LBD_MESH_ID "mesh"          /* every ingress published port -> ingress sandbox */
#define LBD_HOST_PREFIX "host-"     /* "host-<task id>": a task's mode=host ports */

/* One namespace and what lbd wants there. */
struct lbd_plan_ns {
	char *netns;            /* netns file; NULL = the node's (lbd's own) namespace */
	bool keep_source;       /* see lb_config.keep_source */
	bool ingress;           /* the node's ingress sandbox */
	struct lb_state want;
};

struct lbd_plan {
	struct lbd_plan_ns *ns; /* ns[0] is always the node's namespace */
	size_t n;
	unsigned conflicts;     /* services left out: a VIP or port held twice */
};

/* Builds the plan from recs (endpoint id -> const Swarm__EndpointRecord *,
 * as netd streams them: this node's own sandboxes carry netns and
 * gateway_ip). *out is overwritten. */
void lbd_plan_build(const struct strmap *recs, struct lbd_plan *out);
void lbd_plan_free(struct lbd_plan *p);

#endif

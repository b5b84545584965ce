/* The scheduler: a filter pipeline (ready, availability, resources,
 * constraints, host-mode port conflicts, nodes that rejected the task) and
 * swarmkit's spread order (fewest tasks of this service, then fewest tasks
 * overall). Pure: it sees objects, decides, and changes nothing itself.
 *
 * Use: sched_new, sched_add_node for every node, sched_add_task for every
 * task that occupies a node (assigned, not terminated), then place pending
 * tasks; each placement is accounted so the next one sees it. */
#ifndef SWARM_SCHEDULER_H
#define SWARM_SCHEDULER_H

#include <stddef.h>
#include "objects.pb-c.h"

struct scheduler;

struct scheduler *sched_new(void);
void sched_free(struct scheduler *s);

/* The node object must outlive the scheduler. */
void sched_add_node(struct scheduler *s, const Swarm__Node *n);
/* A task already on a node (node_id set): counts toward spread, reserved
 * resources and host ports. Tasks on unknown nodes are ignored. */
void sched_add_task(struct scheduler *s, const Swarm__Task *t);

/* Places n tasks that share one spec (same service and spec version).
 * out[i] gets the chosen node id (borrowed from the node object) or NULL;
 * when any is NULL, why gets a Docker-style explanation
 * ("no suitable node (insufficient resources on 2 nodes; 1 node not available
 * for new tasks)"). Returns how many were placed. A task that comes with
 * node_id set (global mode) is only checked against that node and, when it
 * passes, accounted there (do not also sched_add_task it). */
size_t sched_place(struct scheduler *s, const Swarm__Task *const *tasks, size_t n,
		   const char **out, char *why, size_t whylen);

#endif

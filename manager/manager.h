/* The manager's shared context and the reconcile cycle.
 *
 * Desired state flows in through admin requests and agent reports, each
 * committed to the store; every commit schedules one reconcile pass
 * (mgr_tick) that runs the orchestrator, the allocator and the scheduler over
 * the store and commits their decisions in one transaction; then the
 * dispatcher pushes changed assignments to the agents. */
#ifndef SWARM_MANAGER_H
#define SWARM_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "store.h"
#include "allocator.h"
#include "objects.pb-c.h"
#include "admin.pb-c.h"

struct dispatcher;

/* Rolling-update pacing of one service. */
struct upd_pace {
	char *service_id;
	int64_t last_batch_ns;     /* when the last batch was started */
};

struct mgr {
	struct ev_loop *loop;          /* NULL in benchmarks and unit tests */
	struct store *store;
	struct allocator *alloc;
	struct dispatcher *disp;       /* NULL without a network side */
	char *state_dir;
	char *run_dir;
	int64_t heartbeat_period_ns;   /* agents heartbeat this often */
	int64_t down_grace_ns;         /* a closed session is Down after this */
	uint32_t history_limit;        /* terminated tasks kept per slot */
	ev_timer tick_timer;           /* debounced reconcile */
	bool tick_pending;
	int64_t next_wakeup_ns;        /* earliest delayed restart/update step */
	/* Node ids whose assignment set may have changed since the last push. */
	struct strmap *dirty;          /* node id -> (void *)1 */
	/* Per-service rolling-update pacing, in memory only: losing it on a
	 * restart only shortens one update delay. */
	struct upd_pace *paces;
	size_t n_paces;
	/* Where the last reconcile pass spent its time (monotonic ns):
	 * orchestrate, allocate, schedule, commit. For metrics and benchmarks. */
	int64_t tick_ns[4];
	/* Called after `init` created the cluster: starts the network side. */
	int (*on_cluster_ready)(struct mgr *m);
};

/* Creates the context over an open store; allocations already in the store
 * are restored into the allocator. NULL on error. */
struct mgr *mgr_new(struct ev_loop *loop, struct store *store, const char *state_dir,
		    const char *run_dir);
void mgr_free(struct mgr *m);

/* Rebuilds the allocator from the cluster's pools and the store. */
int mgr_reset_allocator(struct mgr *m);

/* Asks for a reconcile pass soon (debounced). Safe to call often. */
void mgr_schedule_tick(struct mgr *m);
/* One reconcile pass at time now (wall ns). Returns the number of store
 * actions committed, or -errno. */
int mgr_tick(struct mgr *m, int64_t now);

/* Marks a node's assignments as changed (NULL/empty ignored). */
void mgr_node_dirty(struct mgr *m, const char *node_id);
/* Whether a node's assignments changed since the last push. */
bool mgr_node_is_dirty(const struct mgr *m, const char *node_id);
/* Forgets every mark (after a push). */
void mgr_dirty_clear(struct mgr *m);

/* The network key rings (keymgr.h): made when missing, rotated when due
 * or when force, with interval_ns (> 0) as the new rotation interval; a
 * change is committed and pushed to every node. 0, or -errno (store). */
int mgr_keys_update(struct mgr *m, int64_t now, bool force, int64_t interval_ns);

/* Handles one admin request; fills resp (error or result). Never leaves a
 * refused request half-applied. */
void admin_handle(struct mgr *m, const Swarm__AdminRequest *req, Swarm__AdminResponse *resp);

/* Resolves a user-given reference (id, name, or unique id prefix).
 * Returns NULL and sets err on none or several. */
const Swarm__Service *mgr_find_service(struct mgr *m, const char *ref, char *err, size_t errlen);
const Swarm__Network *mgr_find_network(struct mgr *m, const char *ref, char *err, size_t errlen);
const Swarm__Node *mgr_find_node(struct mgr *m, const char *ref, char *err, size_t errlen);
const Swarm__Network *mgr_ingress(struct mgr *m);

/* Task state helpers. */
bool task_terminal(const Swarm__Task *t);   /* status past RUNNING */
const char *task_state_name(int state);      /* "running" */

#endif

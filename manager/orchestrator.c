/* The reconcile pass: orchestrator (replicated and global services, restart
 * policy, rolling updates, history), allocator and scheduler, committed as
 * one store transaction.
 *
 * Tasks are grouped per service and per "key": the slot number of a
 * replicated service, or the node id of a global one. A key's *live* tasks
 * are those desired RUNNING that have not terminated. Rules per key:
 *  - a live task on a node that is gone, Down or draining is shut down;
 *  - a task that terminated while desired RUNNING is shut down (desired
 *    SHUTDOWN) and the restart policy decides whether it is replaced, using
 *    its end time for the restart delay;
 *  - a key with no live task gets a new one, unless a task of that key is
 *    still stopping on a Ready node (stop-first semantics);
 *  - tasks of an older spec version are replaced by the rolling update,
 *    paced by parallelism and delay, stop-first or start-first. */
#include "manager.h"
#include "constraint.h"
#include "log.h"
#include "pb.h"
#include "scheduler.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

/* Everything one pass decides, before it is committed. */
struct tick {
	struct mgr *m;
	int64_t now;
	struct store_tx *tx;
	struct strmap *touched;    /* task id -> Swarm__Task* (owned, to put) */
	Swarm__Task **fresh;       /* new tasks (also in touched) */
	size_t n_fresh, cap_fresh;
	struct strmap *nodes_mod;  /* node id -> Swarm__Node* (owned, to put) */
	size_t actions;
	int64_t wakeup;            /* earliest time a delayed step is due */
	/* The spec new tasks copy, packed once per service per pass:
	 * unpacking it is cheaper than a deep copy for every task. */
	const Swarm__Service *spec_of;
	uint8_t *spec_buf;
	size_t spec_len;
};

bool task_terminal(const Swarm__Task *t)
{
	return t->status && t->status->state > SWARM__TASK_STATE__TASK_RUNNING;
}

static int task_state(const Swarm__Task *t)
{
	return t->status ? t->status->state : 0;
}

const char *task_state_name(int st)
{
	switch (st) {
	case SWARM__TASK_STATE__TASK_NEW: return "new";
	case SWARM__TASK_STATE__TASK_PENDING: return "pending";
	case SWARM__TASK_STATE__TASK_ASSIGNED: return "assigned";
	case SWARM__TASK_STATE__TASK_ACCEPTED: return "accepted";
	case SWARM__TASK_STATE__TASK_PREPARING: return "preparing";
	case SWARM__TASK_STATE__TASK_READY: return "ready";
	case SWARM__TASK_STATE__TASK_STARTING: return "starting";
	case SWARM__TASK_STATE__TASK_RUNNING: return "running";
	case SWARM__TASK_STATE__TASK_COMPLETE: return "complete";
	case SWARM__TASK_STATE__TASK_SHUTDOWN: return "shutdown";
	case SWARM__TASK_STATE__TASK_FAILED: return "failed";
	case SWARM__TASK_STATE__TASK_REJECTED: return "rejected";
	case SWARM__TASK_STATE__TASK_REMOVE: return "remove";
	case SWARM__TASK_STATE__TASK_ORPHANED: return "orphaned";
	default: return "unknown";
	}
}

static void wake_at(struct tick *tk, int64_t when)
{
	if (when > tk->now && (!tk->wakeup || when < tk->wakeup))
		tk->wakeup = when;
}

/* The mutable copy of a task for this pass (made on first use). */
static Swarm__Task *touch_task(struct tick *tk, const Swarm__Task *t)
{
	Swarm__Task *c = strmap_get(tk->touched, t->id);
	if (c)
		return c;
	c = pb_dup(t);
	strmap_put(tk->touched, c->id, c);
	return c;
}

static const Swarm__Task *cur_task(struct tick *tk, const Swarm__Task *t)
{
	const Swarm__Task *c = strmap_get(tk->touched, t->id);
	return c ? c : t;
}

static Swarm__Node *touch_node(struct tick *tk, const Swarm__Node *n)
{
	Swarm__Node *c = strmap_get(tk->nodes_mod, n->id);
	if (c)
		return c;
	c = pb_dup(n);
	strmap_put(tk->nodes_mod, c->id, c);
	return c;
}

static void shutdown_task(struct tick *tk, const Swarm__Task *t)
{
	if (cur_task(tk, t)->desired_state > SWARM__TASK_STATE__TASK_RUNNING)
		return;
	Swarm__Task *c = touch_task(tk, t);
	c->desired_state = SWARM__TASK_STATE__TASK_SHUTDOWN;
}

static Swarm__TaskStatus *status_new(int state, const char *msg, int64_t now)
{
	Swarm__TaskStatus *st = xmalloc(sizeof(*st));
	swarm__task_status__init(st);
	st->state = state;
	pb_set_str(&st->message, msg);
	st->timestamp = now;
	return st;
}

static Swarm__Task *new_task(struct tick *tk, const Swarm__Service *svc, uint64_t slot,
			     const char *node_id, const Swarm__Task *prev)
{
	Swarm__Task *t = xmalloc(sizeof(*t));
	swarm__task__init(t);
	char id[26];
	id_random(id);
	pb_set_str(&t->id, id);
	pb_set_str(&t->service_id, svc->id);
	pb_set_str(&t->service_name, svc->spec->name);
	t->slot = slot;
	pb_set_str(&t->node_id, node_id);
	if (tk->spec_of != svc) {
		free(tk->spec_buf);
		tk->spec_buf = pb_pack(svc->spec, &tk->spec_len);
		tk->spec_of = svc;
	}
	t->spec = swarm__service_spec__unpack(NULL, tk->spec_len, tk->spec_buf);
	if (!t->spec)
		abort();
	t->spec_version = svc->spec_version;
	t->desired_state = SWARM__TASK_STATE__TASK_RUNNING;
	t->status = status_new(SWARM__TASK_STATE__TASK_NEW, "created", tk->now);
	t->created_at = t->updated_at = tk->now;
	char *name = node_id ? xasprintf("%s.%s.%s", svc->spec->name, node_id, id)
			     : xasprintf("%s.%llu.%s", svc->spec->name, (unsigned long long)slot, id);
	pb_set_str(&t->name, name);
	free(name);
	for (size_t i = 0; i < svc->n_ports; i++)
		PB_PTRV_ADD(t, ports, pb_dup(svc->ports[i]));
	/* A replacement for a rejected task avoids the nodes that rejected
	 * this spec. */
	if (prev && prev->spec_version == svc->spec_version) {
		for (size_t i = 0; i < prev->n_rejected_nodes; i++)
			PB_STRV_ADD(t, rejected_nodes, prev->rejected_nodes[i]);
		if (task_state(prev) == SWARM__TASK_STATE__TASK_REJECTED && prev->node_id[0])
			PB_STRV_ADD(t, rejected_nodes, prev->node_id);
	}
	strmap_put(tk->touched, t->id, t);
	if (tk->n_fresh == tk->cap_fresh) {
		tk->cap_fresh = tk->cap_fresh ? tk->cap_fresh * 2 : 64;
		tk->fresh = xrealloc(tk->fresh, tk->cap_fresh * sizeof(*tk->fresh));
	}
	tk->fresh[tk->n_fresh++] = t;
	return t;
}

static bool node_usable(const Swarm__Node *n)
{
	return n && n->state != SWARM__NODE_STATE__NODE_DOWN &&
	       strcmp(n->availability, "drain") != 0;
}

static struct upd_pace *pace_for(struct mgr *m, const char *service_id)
{
	for (size_t i = 0; i < m->n_paces; i++)
		if (strcmp(m->paces[i].service_id, service_id) == 0)
			return &m->paces[i];
	m->paces = xrealloc(m->paces, (m->n_paces + 1) * sizeof(*m->paces));
	struct upd_pace *p = &m->paces[m->n_paces++];
	p->service_id = xstrdup(service_id);
	p->last_batch_ns = 0;
	return p;
}

/* Whether a key whose last task ended this way gets a replacement, and
 * when. Returns true when a replacement is due now. */
static bool restart_due(struct tick *tk, const Swarm__Service *svc, const Swarm__Task *last,
			size_t failures)
{
	int st = task_state(last);
	/* Tasks stopped by the orchestrator (shutdown, node lost, drain,
	 * update) are always replaced: the policy governs only tasks that
	 * ended on their own. */
	if (st != SWARM__TASK_STATE__TASK_COMPLETE && st != SWARM__TASK_STATE__TASK_FAILED &&
	    st != SWARM__TASK_STATE__TASK_REJECTED)
		return true;
	const Swarm__RestartPolicy *rp = svc->spec->restart;
	const char *cond = rp && rp->condition[0] ? rp->condition : "any";
	if (strcmp(cond, "none") == 0)
		return false;
	if (strcmp(cond, "on-failure") == 0 && st == SWARM__TASK_STATE__TASK_COMPLETE)
		return false;
	if (rp && rp->max_attempts && failures >= rp->max_attempts)
		return false;
	int64_t delay = rp && rp->delay_ns ? rp->delay_ns : 5 * NS_PER_S;
	if (rp && rp->delay_ns < 0)
		delay = 0;
	int64_t due = (last->status ? last->status->timestamp : 0) + delay;
	if (due > tk->now) {
		wake_at(tk, due);
		return false;
	}
	return true;
}

/* Tasks of one key of one service, sorted by creation. */
struct keygroup {
	const Swarm__Task **t;
	size_t n;
};

/* Reconciles one key. Returns 1 when the key is up to date, 0 when it
 * still runs an old spec and can be updated, 2 when an update step is in
 * flight there. */
static int reconcile_key(struct tick *tk, const Swarm__Service *svc, struct keygroup *g,
			 uint64_t slot, const char *node_id, bool wanted)
{
	const Swarm__Task *live[16];
	size_t n_live = 0;
	const Swarm__Task *last_ended = NULL;
	size_t failures = 0;
	bool stopping = false;

	for (size_t i = 0; i < g->n; i++) {
		const Swarm__Task *t = cur_task(tk, g->t[i]);
		const Swarm__Node *n = t->node_id[0] ? store_node(tk->m->store, t->node_id) : NULL;
		if (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING && !task_terminal(t)) {
			if (!wanted || (t->node_id[0] && !node_usable(n))) {
				shutdown_task(tk, t);
				continue;
			}
			if (n_live < ARRAY_SIZE(live))
				live[n_live++] = t;
			continue;
		}
		if (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING && task_terminal(t))
			shutdown_task(tk, t); /* ended on its own: handled below */
		if (!task_terminal(t) && n && n->state == SWARM__NODE_STATE__NODE_READY)
			stopping = true;
		if (task_terminal(t)) {
			if (!last_ended || t->status->timestamp >= last_ended->status->timestamp)
				last_ended = t;
			int st = task_state(t);
			if (t->spec_version == svc->spec_version &&
			    (st == SWARM__TASK_STATE__TASK_FAILED || st == SWARM__TASK_STATE__TASK_REJECTED))
				failures++;
		}
	}
	if (!wanted)
		return 1;

	if (n_live == 0) {
		if (stopping)
			return 2;
		if (last_ended && !restart_due(tk, svc, last_ended, failures))
			return 1;
		new_task(tk, svc, slot, node_id, last_ended);
		return 1;
	}

	/* Newest task of the current spec wins; start-first leaves an old one
	 * running until the new one runs. */
	const Swarm__Task *current = NULL;
	for (size_t i = 0; i < n_live; i++)
		if (live[i]->spec_version == svc->spec_version)
			current = live[i];
	if (current) {
		bool running = task_state(current) == SWARM__TASK_STATE__TASK_RUNNING;
		for (size_t i = 0; i < n_live; i++) {
			if (live[i] == current)
				continue;
			if (live[i]->spec_version == svc->spec_version || running)
				shutdown_task(tk, live[i]);
		}
		return running ? 1 : 2;
	}
	return 0; /* only old-spec tasks live: the update may replace them */
}

/* Runs the rolling update for the keys that still run an old spec. */
static void rolling_update(struct tick *tk, const Swarm__Service *svc,
			   struct keygroup **stale, uint64_t *stale_slot, const char **stale_node,
			   size_t n_stale, size_t inflight)
{
	const Swarm__UpdateConfig *uc = svc->spec->update;
	uint64_t par = uc ? uc->parallelism : 1;
	if (par == 0)
		par = n_stale + inflight;
	if (strcmp(svc->update_state, "paused") == 0 || n_stale == 0)
		return;
	struct upd_pace *pace = pace_for(tk->m, svc->id);
	int64_t delay = uc ? uc->delay_ns : 0;
	if (inflight == 0 && pace->last_batch_ns && tk->now < pace->last_batch_ns + delay) {
		wake_at(tk, pace->last_batch_ns + delay);
		return;
	}
	if (inflight >= par)
		return;
	bool start_first = uc && strcmp(uc->order, "start-first") == 0;
	size_t todo = par - inflight;
	for (size_t i = 0; i < n_stale && todo > 0; i++, todo--) {
		struct keygroup *g = stale[i];
		if (start_first) {
			const Swarm__Task *prev = NULL;
			for (size_t j = 0; j < g->n; j++)
				prev = g->t[j];
			new_task(tk, svc, stale_slot[i], stale_node[i], prev);
		} else {
			for (size_t j = 0; j < g->n; j++) {
				const Swarm__Task *t = cur_task(tk, g->t[j]);
				if (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING && !task_terminal(t))
					shutdown_task(tk, t);
			}
		}
	}
	pace->last_batch_ns = tk->now;
}

static int cmp_task_key(const void *a, const void *b)
{
	const Swarm__Task *x = *(const Swarm__Task *const *)a, *y = *(const Swarm__Task *const *)b;
	int c = strcmp(x->service_id, y->service_id);
	if (c)
		return c;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	c = strcmp(x->node_id, y->node_id);
	if (c)
		return c;
	return x->created_at < y->created_at ? -1 : x->created_at > y->created_at;
}

static bool node_matches(const Swarm__Service *svc, const Swarm__Node *n)
{
	for (size_t i = 0; i < svc->spec->n_constraints; i++) {
		struct constraint c;
		char err[128];
		if (constraint_parse(svc->spec->constraints[i], &c, err, sizeof(err)) < 0 ||
		    !constraint_match(&c, n))
			return false;
	}
	return true;
}

/* Keeps at most history_limit ended tasks per key (desired SHUTDOWN and
 * terminated, or on a node that is gone). */
static void prune_history(struct tick *tk, struct keygroup *g)
{
	size_t ended = 0;
	for (size_t i = g->n; i-- > 0;) {
		const Swarm__Task *t = cur_task(tk, g->t[i]);
		if (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING)
			continue;
		bool gone = !t->node_id[0] || !store_node(tk->m->store, t->node_id);
		if (!task_terminal(t) && !gone)
			continue;
		if (++ended > tk->m->history_limit) {
			Swarm__Task *c = strmap_del(tk->touched, t->id);
			pb_free(c);
			store_tx_delete(tk->tx, "task", t->id);
			allocator_release_task(tk->m->alloc, g->t[i]);
			mgr_node_dirty(tk->m, t->node_id);
			tk->actions++;
		}
	}
}

static void orchestrate_service(struct tick *tk, const Swarm__Service *svc,
				const Swarm__Task **tasks, size_t n)
{
	bool global = strcmp(svc->spec->mode, "global") == 0;
	struct keygroup *groups = xcalloc(n + 1, sizeof(*groups));
	size_t ng = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && (global ? !strcmp(tasks[j]->node_id, tasks[i]->node_id)
				       : tasks[j]->slot == tasks[i]->slot))
			j++;
		groups[ng].t = &tasks[i];
		groups[ng].n = j - i;
		ng++;
		i = j;
	}

	struct keygroup **stale = xcalloc(ng + 1, sizeof(*stale));
	uint64_t *stale_slot = xcalloc(ng + 1, sizeof(*stale_slot));
	const char **stale_node = xcalloc(ng + 1, sizeof(*stale_node));
	size_t n_stale = 0, inflight = 0;
	bool any_failed_current = false;
	const char *failed_name = NULL;

	for (size_t gi = 0; gi < ng; gi++)
		for (size_t k = 0; k < groups[gi].n; k++) {
			const Swarm__Task *t = groups[gi].t[k];
			if (t->spec_version == svc->spec_version &&
			    task_state(t) == SWARM__TASK_STATE__TASK_FAILED &&
			    t->status->timestamp >= svc->update_started_at && svc->update_started_at) {
				any_failed_current = true;
				failed_name = t->name;
			}
		}

	if (!global) {
		uint64_t replicas = svc->spec->replicas;
		size_t gi = 0;
		uint64_t max_slot = replicas;
		for (size_t i = 0; i < ng; i++)
			if (groups[i].t[0]->slot > max_slot)
				max_slot = groups[i].t[0]->slot;
		struct keygroup empty = { NULL, 0 };
		for (uint64_t slot = 1; slot <= max_slot; slot++) {
			struct keygroup *g = &empty;
			while (gi < ng && groups[gi].t[0]->slot < slot)
				gi++;
			if (gi < ng && groups[gi].t[0]->slot == slot)
				g = &groups[gi];
			int r = reconcile_key(tk, svc, g, slot, NULL, slot <= replicas);
			if (r == 0) {
				stale[n_stale] = g;
				stale_slot[n_stale] = slot;
				stale_node[n_stale++] = NULL;
			} else if (r == 2) {
				inflight++;
			}
			if (g->n)
				prune_history(tk, g);
		}
	} else {
		const Swarm__Node *const *nodes;
		size_t nn = store_nodes(tk->m->store, &nodes);
		struct strmap *seen = strmap_new();
		for (size_t i = 0; i < ng; i++)
			strmap_put(seen, groups[i].t[0]->node_id, &groups[i]);
		for (size_t i = 0; i < nn; i++) {
			const Swarm__Node *nd = nodes[i];
			struct keygroup *g = strmap_get(seen, nd->id);
			bool wanted = nd->state == SWARM__NODE_STATE__NODE_READY &&
				      strcmp(nd->availability, "drain") != 0 && node_matches(svc, nd);
			/* Paused nodes keep what they run but take nothing new. */
			if (wanted && strcmp(nd->availability, "pause") == 0 && !g)
				wanted = false;
			if (!wanted && nd->state == SWARM__NODE_STATE__NODE_DOWN)
				continue; /* nothing to do until it comes back */
			struct keygroup empty = { NULL, 0 };
			int r = reconcile_key(tk, svc, g ? g : &empty, 0, nd->id, wanted);
			if (r == 0) {
				stale[n_stale] = g;
				stale_slot[n_stale] = 0;
				stale_node[n_stale++] = nd->id;
			} else if (r == 2) {
				inflight++;
			}
			if (g) {
				prune_history(tk, g);
				strmap_del(seen, nd->id);
			}
		}
		/* Tasks on nodes that no longer exist. */
		size_t pos = 0;
		const char *key;
		void *val;
		while (strmap_next(seen, &pos, &key, &val)) {
			struct keygroup *g = val;
			reconcile_key(tk, svc, g, 0, NULL, false);
			prune_history(tk, g);
		}
		strmap_free(seen);
	}

	/* Update bookkeeping on the service itself. */
	Swarm__Service *sc = NULL;
	const char *state = svc->update_state;
	bool updating = !strcmp(state, "updating") || !strcmp(state, "rollback_started");
	if (updating && any_failed_current) {
		const char *action = svc->spec->update && svc->spec->update->failure_action[0]
					     ? svc->spec->update->failure_action : "pause";
		if (!strcmp(state, "updating") && !strcmp(action, "rollback") && svc->previous_spec) {
			sc = pb_dup(svc);
			Swarm__ServiceSpec *tmp = sc->spec;
			sc->spec = sc->previous_spec;
			sc->previous_spec = tmp;
			sc->spec_version++;
			pb_set_str(&sc->update_state, "rollback_started");
			char *msg = xasprintf("update rolled back due to failure of task %s", failed_name);
			pb_set_str(&sc->update_message, msg);
			free(msg);
			sc->update_started_at = tk->now;
		} else if (strcmp(action, "continue") != 0) {
			sc = pb_dup(svc);
			pb_set_str(&sc->update_state, "paused");
			char *msg = xasprintf("update paused due to failure or early termination of task %s",
					      failed_name);
			pb_set_str(&sc->update_message, msg);
			free(msg);
		}
	} else if (updating && n_stale == 0 && inflight == 0) {
		sc = pb_dup(svc);
		bool rb = !strcmp(state, "rollback_started");
		pb_set_str(&sc->update_state, rb ? "rollback_completed" : "completed");
		pb_set_str(&sc->update_message, rb ? "rollback completed" : "update completed");
	} else if (!sc) {
		rolling_update(tk, svc, stale, stale_slot, stale_node, n_stale, inflight);
	}
	if (sc) {
		sc->updated_at = tk->now;
		store_tx_put_service(tk->tx, sc);
		tk->actions++;
	}
	free(stale);
	free(stale_slot);
	free(stale_node);
	free(groups);
}

/* Networks a task of svc attaches to: ingress first when it publishes
 * ingress-mode ports, then the service's networks in order. */
static size_t task_networks(struct tick *tk, const Swarm__Task *t,
			    const Swarm__Network **out, size_t max)
{
	size_t n = 0;
	const Swarm__ServiceSpec *spec = t->spec;
	bool ingress = false;
	for (size_t i = 0; i < spec->n_ports; i++)
		if (strcmp(spec->ports[i]->mode, "host") != 0)
			ingress = true;
	const Swarm__Network *ing = mgr_ingress(tk->m);
	if (ingress && ing && n < max)
		out[n++] = ing;
	for (size_t i = 0; i < spec->n_networks && n < max; i++) {
		const Swarm__Network *net = store_network(tk->m->store, spec->networks[i]->target);
		if (net && net != ing)
			out[n++] = net;
	}
	return n;
}

static void allocate_task(struct tick *tk, Swarm__Task *t)
{
	const Swarm__Network *nets[16];
	size_t nn = task_networks(tk, t, nets, ARRAY_SIZE(nets));
	char err[256] = "";
	if (t->n_networks == 0 && nn > 0 &&
	    allocator_task(tk->m->alloc, t, nets, nn, err, sizeof(err)) < 0) {
		if (strcmp(t->alloc_error, err) != 0) {
			pb_set_str(&t->alloc_error, err);
			pb_set_str(&t->status->err, err);
			pb_set_str(&t->status->message, "allocation failed");
			log_warn("allocator, task %s: %s", t->name, err);
		}
		return;
	}
	/* Service aliases per network. */
	for (size_t i = 0; i < t->n_networks; i++)
		for (size_t j = 0; j < t->spec->n_networks; j++)
			if (!strcmp(t->spec->networks[j]->target, t->networks[i]->network_id))
				for (size_t k = 0; k < t->spec->networks[j]->n_aliases; k++)
					PB_STRV_ADD(t->networks[i], aliases, t->spec->networks[j]->aliases[k]);
	pb_set_str(&t->alloc_error, "");
	pb_set_str(&t->status->err, "");
	t->status->state = SWARM__TASK_STATE__TASK_PENDING;
	pb_set_str(&t->status->message, "pending task scheduling");
	t->status->timestamp = tk->now;
}

/* Pending tasks grouped by (service, spec version) for the scheduler. */
static int cmp_pending(const void *a, const void *b)
{
	const Swarm__Task *x = *(Swarm__Task *const *)a, *y = *(Swarm__Task *const *)b;
	int c = strcmp(x->service_id, y->service_id);
	if (c)
		return c;
	if (x->spec_version != y->spec_version)
		return x->spec_version < y->spec_version ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static void schedule(struct tick *tk, Swarm__Task **pending, size_t n_pending)
{
	if (n_pending == 0)
		return;
	struct mgr *m = tk->m;
	struct scheduler *s = sched_new();
	const Swarm__Node *const *nodes;
	size_t nn = store_nodes(m->store, &nodes);
	for (size_t i = 0; i < nn; i++)
		sched_add_node(s, nodes[i]);
	const Swarm__Task *const *tasks;
	size_t nt = store_tasks(m->store, &tasks);
	for (size_t i = 0; i < nt; i++) {
		const Swarm__Task *t = cur_task(tk, tasks[i]);
		if (t->node_id[0] && !task_terminal(t))
			sched_add_task(s, t);
	}
	/* Fresh global tasks come with their node: count them too. */
	for (size_t i = 0; i < tk->n_fresh; i++)
		if (tk->fresh[i]->node_id[0])
			sched_add_task(s, tk->fresh[i]);
	qsort(pending, n_pending, sizeof(*pending), cmp_pending);
	const char **out = xcalloc(n_pending, sizeof(*out));
	for (size_t i = 0; i < n_pending;) {
		size_t j = i + 1;
		while (j < n_pending && !strcmp(pending[j]->service_id, pending[i]->service_id) &&
		       pending[j]->spec_version == pending[i]->spec_version)
			j++;
		char why[512] = "";
		sched_place(s, (const Swarm__Task *const *)&pending[i], j - i, &out[i], why, sizeof(why));
		for (size_t k = i; k < j; k++) {
			Swarm__Task *t = pending[k];
			if (!out[k]) {
				if (strcmp(t->status->err, why) != 0) {
					pb_set_str(&t->status->err, why);
					pb_set_str(&t->status->message, "pending task scheduling");
				}
				continue;
			}
			pb_set_str(&t->node_id, out[k]);
			pb_set_str(&t->status->err, "");
			t->status->state = SWARM__TASK_STATE__TASK_ASSIGNED;
			pb_set_str(&t->status->message, "scheduler assigned task to node");
			t->status->timestamp = tk->now;
		}
		i = j;
	}
	free(out);
	sched_free(s);
}

/* Gives each node an address on every network its tasks use. */
static void attach_nodes(struct tick *tk, Swarm__Task *t)
{
	if (!t->node_id[0])
		return;
	const Swarm__Node *n = store_node(tk->m->store, t->node_id);
	if (!n)
		return;
	for (size_t i = 0; i < t->n_networks; i++) {
		bool has = false;
		const Swarm__Node *cur = strmap_get(tk->nodes_mod, n->id);
		if (!cur)
			cur = n;
		for (size_t j = 0; j < cur->n_attachments; j++)
			if (!strcmp(cur->attachments[j]->network_id, t->networks[i]->network_id))
				has = true;
		if (has)
			continue;
		const Swarm__Network *net = store_network(tk->m->store, t->networks[i]->network_id);
		if (!net)
			continue;
		char err[256];
		Swarm__Node *c = touch_node(tk, n);
		if (allocator_node_attach(tk->m->alloc, c, net, err, sizeof(err)) < 0)
			log_warn("allocator, node %s on %s: %s", n->hostname, net->spec->name, err);
	}
}

int mgr_tick(struct mgr *m, int64_t now)
{
	struct tick tk = { .m = m, .now = now };
	int64_t t0 = now_mono_ns(), t1, t2, t3;
	tk.tx = store_tx_begin(m->store);
	tk.touched = strmap_new();
	tk.nodes_mod = strmap_new();

	/* Orchestrate every service over its tasks. */
	const Swarm__Task *const *all;
	size_t nt = store_tasks(m->store, &all);
	const Swarm__Task **sorted = xmalloc((nt + 1) * sizeof(*sorted));
	memcpy(sorted, all, nt * sizeof(*sorted));
	qsort(sorted, nt, sizeof(*sorted), cmp_task_key);
	const Swarm__Service *const *svcs;
	size_t ns = store_services(m->store, &svcs);
	struct strmap *svc_seen = strmap_new();
	for (size_t i = 0; i < nt;) {
		size_t j = i + 1;
		while (j < nt && !strcmp(sorted[j]->service_id, sorted[i]->service_id))
			j++;
		const Swarm__Service *svc = store_service(m->store, sorted[i]->service_id);
		if (svc) {
			orchestrate_service(&tk, svc, &sorted[i], j - i);
			strmap_put(svc_seen, svc->id, (void *)svc);
		} else {
			/* Tasks of a removed service: gone from the assignments,
			 * so the agents stop and remove them. */
			for (size_t k = i; k < j; k++) {
				Swarm__Task *c = strmap_del(tk.touched, sorted[k]->id);
				pb_free(c);
				store_tx_delete(tk.tx, "task", sorted[k]->id);
				allocator_release_task(m->alloc, sorted[k]);
				mgr_node_dirty(m, sorted[k]->node_id);
				tk.actions++;
			}
		}
		i = j;
	}
	for (size_t i = 0; i < ns; i++)
		if (!strmap_get(svc_seen, svcs[i]->id))
			orchestrate_service(&tk, svcs[i], NULL, 0);
	strmap_free(svc_seen);
	free(sorted);

	t1 = now_mono_ns();
	/* Allocate: fresh tasks and earlier ones still waiting for addresses. */
	size_t cap = tk.n_fresh + 16, n_pending = 0;
	Swarm__Task **pending = xmalloc(cap * sizeof(*pending));
	for (size_t i = 0; i < nt; i++) {
		const Swarm__Task *t = cur_task(&tk, all[i]);
		if (t->desired_state > SWARM__TASK_STATE__TASK_RUNNING) {
			/* An ended task gives its addresses back now, not when its
			 * history entry is pruned: small subnets would run dry. */
			if (task_terminal(t) && t->n_networks > 0) {
				Swarm__Task *c = touch_task(&tk, all[i]);
				allocator_release_task(m->alloc, c);
				for (size_t k = 0; k < c->n_networks; k++)
					pb_free(c->networks[k]);
				free(c->networks);
				c->networks = NULL;
				c->n_networks = 0;
			}
			continue;
		}
		int st = task_state(t);
		if (task_terminal(t) && t->n_networks > 0)
			continue;
		if (st == SWARM__TASK_STATE__TASK_NEW ||
		    (st == SWARM__TASK_STATE__TASK_PENDING && !t->node_id[0])) {
			Swarm__Task *c = touch_task(&tk, all[i]);
			if (n_pending == cap)
				pending = xrealloc(pending, (cap *= 2) * sizeof(*pending));
			pending[n_pending++] = c;
		}
	}
	for (size_t i = 0; i < tk.n_fresh; i++) {
		if (n_pending == cap)
			pending = xrealloc(pending, (cap *= 2) * sizeof(*pending));
		pending[n_pending++] = tk.fresh[i];
	}
	size_t n_sched = 0;
	for (size_t i = 0; i < n_pending; i++) {
		Swarm__Task *t = pending[i];
		if (t->status->state == SWARM__TASK_STATE__TASK_NEW)
			allocate_task(&tk, t);
		if (t->status->state != SWARM__TASK_STATE__TASK_PENDING)
			continue;
		if (t->node_id[0]) {
			/* Global tasks come with their node. */
			t->status->state = SWARM__TASK_STATE__TASK_ASSIGNED;
			pb_set_str(&t->status->message, "scheduler assigned task to node");
			continue;
		}
		pending[n_sched++] = t;
	}
	t2 = now_mono_ns();
	schedule(&tk, pending, n_sched);
	free(pending);
	t3 = now_mono_ns();

	/* Commit everything touched. */
	size_t pos = 0;
	const char *key;
	void *val;
	while (strmap_next(tk.touched, &pos, &key, &val)) {
		Swarm__Task *t = val;
		const Swarm__Task *old = store_task(m->store, t->id);
		if (old && pb_equal(old, t)) {
			pb_free(t);
			continue;
		}
		t->updated_at = now;
		if (!old || strcmp(old->node_id, t->node_id))
			attach_nodes(&tk, t);
		if (old && old->node_id[0] && strcmp(old->node_id, t->node_id))
			mgr_node_dirty(m, old->node_id);
		mgr_node_dirty(m, t->node_id);
		store_tx_put_task(tk.tx, t);
		tk.actions++;
	}
	pos = 0;
	while (strmap_next(tk.nodes_mod, &pos, &key, &val)) {
		store_tx_put_node(tk.tx, val);
		mgr_node_dirty(m, key);
		tk.actions++;
	}
	strmap_free(tk.touched);
	strmap_free(tk.nodes_mod);
	free(tk.fresh);
	free(tk.spec_buf);
	m->next_wakeup_ns = tk.wakeup;
	int r = store_tx_commit(tk.tx);
	m->tick_ns[0] = t1 - t0;
	m->tick_ns[1] = t2 - t1;
	m->tick_ns[2] = t3 - t2;
	m->tick_ns[3] = now_mono_ns() - t3;
	if (r < 0) {
		log_err("orchestrator, commit failed: %s", strerror(-r));
		/* The allocator may now hold addresses the store does not:
		 * rebuild it from the store. */
		mgr_reset_allocator(m);
		return r;
	}
	return (int)tk.actions;
}

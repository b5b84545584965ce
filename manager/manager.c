/* The manager context: lookups, dirty-node tracking and tick scheduling. */
#include "manager.h"
#include "dispatcher.h"
#include "keymgr.h"
#include "log.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mgr *m = w->data;
	m->tick_pending = false;
	int r = mgr_tick(m, now_wall_ns());
	if (m->disp)
		dispatcher_push(m->disp);
	if (r > 0) {
		/* Decisions beget decisions (a stopped task frees a slot):
		 * go again until a pass changes nothing. */
		mgr_schedule_tick(m);
	} else if (m->next_wakeup_ns) {
		double in = (double)(m->next_wakeup_ns - now_wall_ns()) / 1e9;
		if (in < 0.01)
			in = 0.01;
		ev_timer_stop(loop, &m->tick_timer);
		ev_timer_set(&m->tick_timer, in, 0);
		ev_timer_start(loop, &m->tick_timer);
		m->tick_pending = true;
	}
}

void mgr_schedule_tick(struct mgr *m)
{
	if (!m->loop || m->tick_pending)
		return;
	m->tick_pending = true;
	ev_timer_stop(m->loop, &m->tick_timer);
	/* A short debounce batches bursts of reports into one pass. */
	ev_timer_set(&m->tick_timer, 0.02, 0);
	ev_timer_start(m->loop, &m->tick_timer);
}

void mgr_node_dirty(struct mgr *m, const char *node_id)
{
	if (node_id && node_id[0] && !strmap_get(m->dirty, node_id))
		strmap_put(m->dirty, node_id, (void *)1);
}

bool mgr_node_is_dirty(const struct mgr *m, const char *node_id)
{
	return strmap_get(m->dirty, node_id) != NULL;
}

void mgr_dirty_clear(struct mgr *m)
{
	if (strmap_count(m->dirty) == 0)
		return;
	strmap_free(m->dirty);
	m->dirty = strmap_new();
}

int mgr_reset_allocator(struct mgr *m)
{
	const Swarm__Cluster *c = store_cluster(m->store);
	struct allocator *a = allocator_new(c ? (const char *const *)c->default_addr_pool : NULL,
					    c ? c->n_default_addr_pool : 0, c ? c->pool_mask_len : 0);
	if (!a)
		return -EINVAL;
	const Swarm__Network *const *nets;
	size_t n = store_networks(m->store, &nets);
	for (size_t i = 0; i < n; i++)
		if (allocator_restore_network(a, nets[i]) < 0)
			log_warn("allocator, network %s overlaps another on restore", nets[i]->spec->name);
	const Swarm__Service *const *svcs;
	n = store_services(m->store, &svcs);
	for (size_t i = 0; i < n; i++)
		allocator_restore_service(a, svcs[i]);
	const Swarm__Task *const *tasks;
	n = store_tasks(m->store, &tasks);
	for (size_t i = 0; i < n; i++)
		allocator_restore_task(a, tasks[i]);
	const Swarm__Node *const *nodes;
	n = store_nodes(m->store, &nodes);
	for (size_t i = 0; i < n; i++)
		allocator_restore_node(a, nodes[i]);
	allocator_free(m->alloc);
	m->alloc = a;
	return 0;
}

struct mgr *mgr_new(struct ev_loop *loop, struct store *store, const char *state_dir,
		    const char *run_dir)
{
	struct mgr *m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->store = store;
	m->state_dir = xstrdup(state_dir ? state_dir : "");
	m->run_dir = xstrdup(run_dir ? run_dir : "");
	m->heartbeat_period_ns = 5 * NS_PER_S;
	m->down_grace_ns = 3 * NS_PER_S;
	m->history_limit = 5;
	m->dirty = strmap_new();
	ev_timer_init(&m->tick_timer, tick_cb, 0.02, 0);
	m->tick_timer.data = m;
	if (mgr_reset_allocator(m) < 0) {
		log_err("manager, the address pools in the store are invalid");
		mgr_free(m);
		return NULL;
	}
	return m;
}

void mgr_free(struct mgr *m)
{
	if (!m)
		return;
	if (m->loop)
		ev_timer_stop(m->loop, &m->tick_timer);
	allocator_free(m->alloc);
	strmap_free(m->dirty);
	for (size_t i = 0; i < m->n_paces; i++)
		free(m->paces[i].service_id);
	free(m->paces);
	free(m->state_dir);
	free(m->run_dir);
	free(m);
}

/* Resolves a reference among n objects of one kind: exact id, then exact
 * name, then a unique id prefix. id_of/name_of read the object's fields. */
static const void *find_ref(const void *const *v, size_t n, const char *ref, const char *kind,
			    const char *(*id_of)(const void *), const char *(*name_of)(const void *),
			    char *err, size_t errlen)
{
	const void *hit = NULL;
	size_t hits = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(id_of(v[i]), ref))
			return v[i];
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name_of(v[i]), ref)) {
			hit = v[i];
			hits++;
		}
	if (hits == 1)
		return hit;
	if (hits == 0)
		for (size_t i = 0; i < n; i++)
			if (ref[0] && str_has_prefix(id_of(v[i]), ref)) {
				hit = v[i];
				hits++;
			}
	if (hits == 1)
		return hit;
	if (hits)
		snprintf(err, errlen, "%s %s is ambiguous (%zu matches)", kind, ref, hits);
	else
		snprintf(err, errlen, "%s %s not found", kind, ref);
	return NULL;
}

static const char *svc_id(const void *o) { return ((const Swarm__Service *)o)->id; }
static const char *svc_name(const void *o) { return ((const Swarm__Service *)o)->spec->name; }
static const char *net_id(const void *o) { return ((const Swarm__Network *)o)->id; }
static const char *net_name(const void *o) { return ((const Swarm__Network *)o)->spec->name; }
static const char *node_id(const void *o) { return ((const Swarm__Node *)o)->id; }
static const char *node_name(const void *o) { return ((const Swarm__Node *)o)->hostname; }

const Swarm__Service *mgr_find_service(struct mgr *m, const char *ref, char *err, size_t errlen)
{
	const Swarm__Service *const *v;
	size_t n = store_services(m->store, &v);
	return find_ref((const void *const *)v, n, ref, "service", svc_id, svc_name, err, errlen);
}

const Swarm__Network *mgr_find_network(struct mgr *m, const char *ref, char *err, size_t errlen)
{
	const Swarm__Network *const *v;
	size_t n = store_networks(m->store, &v);
	return find_ref((const void *const *)v, n, ref, "network", net_id, net_name, err, errlen);
}

const Swarm__Node *mgr_find_node(struct mgr *m, const char *ref, char *err, size_t errlen)
{
	const Swarm__Node *const *v;
	size_t n = store_nodes(m->store, &v);
	return find_ref((const void *const *)v, n, ref, "node", node_id, node_name, err, errlen);
}

const Swarm__Network *mgr_ingress(struct mgr *m)
{
	const Swarm__Network *const *v;
	size_t n = store_networks(m->store, &v);
	for (size_t i = 0; i < n; i++)
		if (v[i]->spec->ingress)
			return v[i];
	return NULL;
}

int mgr_keys_update(struct mgr *m, int64_t now, bool force, int64_t interval_ns)
{
	const Swarm__Cluster *cur = store_cluster(m->store);
	if (!cur)
		return -ENOENT;
	Swarm__Cluster *c = pb_dup(cur);
	bool changed = keymgr_ensure(c, now);
	if (interval_ns > 0 && c->key_rotation_interval_ns != interval_ns) {
		c->key_rotation_interval_ns = interval_ns;
		changed = true;
	}
	if (force || now >= keymgr_next_rotation(c)) {
		keymgr_rotate(c, now);
		log_info("manager, network keys rotated (key clock %llu)", (unsigned long long)c->key_clock);
		changed = true;
	}
	if (!changed) {
		pb_free(c);
		return 0;
	}
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_cluster(tx, c);
	int r = store_tx_commit(tx);
	if (r < 0) {
		log_err("manager, network keys not stored: %s", strerror(-r));
		return r;
	}
	const Swarm__Node *const *nodes;
	size_t n = store_nodes(m->store, &nodes);
	for (size_t i = 0; i < n; i++)
		mgr_node_dirty(m, nodes[i]->id);
	if (m->disp)
		dispatcher_push(m->disp);
	return 0;
}

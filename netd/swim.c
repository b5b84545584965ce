/* SWIM + Lifeguard membership state machine; see swim.h. The comments name
 * the memberlist function each part mirrors (state.go unless said). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "suspicion.h"
#include "swim.h"

/* memberlist net.go: compoundHeaderOverhead (type + count) and
 * compoundOverhead (one u16 length per part). */
#define SWIM_COMPOUND_HEADER_OVERHEAD 2
#define SWIM_COMPOUND_OVERHEAD 2
/* memberlist util.go pushPullScaleThreshold. */
#define SWIM_PUSH_PULL_SCALE_THRESHOLD 32
/* Room for one encoded alive (meta + names + fixed fields). */
#define SWIM_ENCODE_BUF (SWIM_META_MAX + 2 * SWIM_NAME_MAX + 256)
/* StateChange of a node we never saw alive: "long ago". */
#define SWIM_LONG_AGO (INT64_MIN / 4)

struct swim_node {
	char name[SWIM_NAME_MAX + 1];  /* Name */
	struct swim_addr addr;         /* Addr/Port */
	uint8_t meta[SWIM_META_MAX];   /* Meta */
	size_t meta_len;
	uint8_t vsn[SWIM_VSN_LEN];     /* Vsn, valid if has_vsn */
	bool has_vsn;
	uint32_t incarnation;          /* Incarnation */
	enum swim_state state;         /* State */
	int64_t state_change;          /* StateChange */
	bool suspecting;               /* a suspicion timer runs (nodeTimers) */
	struct suspicion susp;         /* that timer */
};

/* An indirect probe we run for someone else (handleIndirectPing). */
struct swim_relay {
	uint32_t local_seq;                /* our ping's SeqNo */
	uint32_t orig_seq;                 /* the requester's SeqNo */
	struct swim_addr to;               /* requester */
	char to_name[SWIM_NAME_MAX + 1];   /* requester's name, may be "" */
	bool nack;                         /* send a nack on timeout */
	int64_t expires;                   /* now + ProbeTimeout */
};

/* The probe in progress (probeNode). */
struct swim_probe {
	bool active;                       /* a probe is running */
	bool indirect;                     /* indirect phase started */
	uint32_t seq;                      /* its SeqNo */
	char target[SWIM_NAME_MAX + 1];    /* target name */
	struct swim_addr target_addr;      /* target address at start */
	uint32_t target_inc;               /* target incarnation at start */
	int target_pmax;                   /* target Vsn[1], 0 if unknown */
	int64_t start;                     /* when the ping went out */
	int64_t timeout_at;                /* start + ProbeTimeout */
	int64_t deadline;                  /* start + scaled ProbeInterval */
	int expected_nacks;                /* indirect peers asked for nacks */
	int nacks;                         /* nacks received */
	bool tcp_ok;                       /* TCP fallback reached the target */
};

struct swim {
	struct swim_config cfg;            /* copy; self_meta -> self_meta */
	uint8_t self_meta[SWIM_META_MAX];  /* our Meta */
	char self[SWIM_NAME_MAX + 1];      /* our name */
	struct swim_node **nodes;          /* probe order (m.nodes) */
	size_t n_nodes, cap_nodes;
	size_t probe_index;                /* next index to probe */
	uint32_t seq;                      /* sequenceNum */
	uint32_t incarnation;              /* incarnation counter */
	int awareness;                     /* Lifeguard health score */
	bool leaving;                      /* Leave() called */
	struct broadcast_queue *bq;        /* memberlist's own broadcasts */
	struct swim_probe probe;           /* current probe */
	int64_t probe_origin;              /* first probe tick; ticks every
					      ProbeInterval from here */
	int64_t next_probe_at;             /* next probe tick */
	int64_t gossip_origin;             /* first gossip tick */
	int64_t gossip_at;                 /* next gossip tick */
	int64_t push_pull_at;              /* next push/pull */
	struct swim_relay *relays;         /* pending indirect probes */
	size_t n_relays, cap_relays;
	struct swim_event *events;         /* queued events [ev_head, ev_n) */
	size_t ev_head, ev_n, ev_cap;
	uint64_t rng;                      /* internal PRNG state */
};

/* ---- small helpers ---- */

static uint64_t swim_rand(struct swim *s)
{
	if (s->cfg.rand)
		return s->cfg.rand(s->cfg.ctx);
	/* splitmix64 */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* memberlist randomOffset(): uniform in [0, n), 0 when n == 0. */
static size_t swim_rand_below(struct swim *s, size_t n)
{
	return n ? (size_t)(swim_rand(s) % n) : 0;
}

static bool swim_is_self(const struct swim *s, const char *name)
{
	return strcmp(s->self, name) == 0;
}

static bool swim_dead_or_left(const struct swim_node *n)
{
	return n->state == SWIM_DEAD || n->state == SWIM_LEFT;
}

static struct swim_node *swim_find(const struct swim *s, const char *name)
{
	/* Linear: tables are hundreds of nodes; see the report. */
	for (size_t i = 0; i < s->n_nodes; i++)
		if (strcmp(s->nodes[i]->name, name) == 0)
			return s->nodes[i];
	return NULL;
}

static int swim_name_ok(const char *name)
{
	return name && name[0] && strlen(name) <= SWIM_NAME_MAX;
}

static void swim_copy_name(char *dst, const char *src)
{
	snprintf(dst, SWIM_NAME_MAX + 1, "%s", src ? src : "");
}

static int swim_pmax(const struct swim_node *n)
{
	return n->has_vsn ? n->vsn[1] : 0;
}

/* awareness.go ApplyDelta: clamp to 0..max-1. */
void swim_awareness_apply(struct swim *s, int delta)
{
	int max = s->cfg.awareness_max_multiplier - 1;
	s->awareness += delta;
	if (s->awareness < 0)
		s->awareness = 0;
	if (s->awareness > max)
		s->awareness = max < 0 ? 0 : max;
}

/* awareness.go ScaleTimeout. */
static int64_t swim_scale(const struct swim *s, int64_t t)
{
	return t * (s->awareness + 1);
}

/* First tick of a ticker started at origin with period p that is > t. */
static int64_t swim_next_grid(int64_t origin, int64_t p, int64_t t)
{
	if (t < origin)
		return origin;
	return origin + ((t - origin) / p + 1) * p;
}

/* ---- events and actions ---- */

static void swim_event(struct swim *s, enum swim_event_type type,
		       const struct swim_node *n, const char *from,
		       int confirmations)
{
	if (s->ev_head == s->ev_n)
		s->ev_head = s->ev_n = 0;
	if (s->ev_n == s->ev_cap) {
		size_t cap = s->ev_cap ? s->ev_cap * 2 : 16;
		struct swim_event *v = realloc(s->events, cap * sizeof(*v));
		if (!v) {
			log_err("swim, event queue: out of memory, event lost");
			return;
		}
		s->events = v;
		s->ev_cap = cap;
	}
	struct swim_event *e = &s->events[s->ev_n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	swim_copy_name(e->name, n->name);
	e->addr = n->addr;
	e->incarnation = n->incarnation;
	swim_copy_name(e->from, from);
	e->confirmations = confirmations;
	memcpy(e->meta, n->meta, n->meta_len);
	e->meta_len = n->meta_len;
}

bool swim_next_event(struct swim *s, struct swim_event *out)
{
	if (s->ev_head >= s->ev_n)
		return false;
	*out = s->events[s->ev_head++];
	return true;
}

void swim_actions_init(struct swim_actions *a)
{
	memset(a, 0, sizeof(*a));
}

void swim_actions_clear(struct swim_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		broadcast_batch_clear(&a->v[i].batch);
	a->n = 0;
}

void swim_actions_free(struct swim_actions *a)
{
	if (!a)
		return;
	swim_actions_clear(a);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* A zeroed new action of this type addressed to n (may be NULL). */
static struct swim_action *swim_act(struct swim_actions *out,
				    enum swim_action_type type,
				    const char *to_name,
				    const struct swim_addr *to)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		struct swim_action *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		out->v = v;
		out->cap = cap;
	}
	struct swim_action *a = &out->v[out->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	swim_copy_name(a->to_name, to_name);
	if (to)
		a->to = *to;
	return a;
}

/* ---- broadcasts ---- */

/* encodeAndBroadcast: queue m, replacing older news about m->node. */
static void swim_broadcast(struct swim *s, const struct swim_msg *m)
{
	uint8_t buf[SWIM_ENCODE_BUF];
	int len = s->cfg.encode(s->cfg.ctx, m, buf, sizeof(buf));
	if (len <= 0) {
		log_err("swim, encode of message about %s failed: %s", m->node,
			strerror(len < 0 ? -len : EINVAL));
		return;
	}
	int rc = broadcast_queue_push(s->bq, m->node, buf, (size_t)len);
	if (rc < 0)
		log_err("swim, broadcast about %s dropped: %s", m->node,
			strerror(-rc));
}

int swim_get_broadcasts(struct swim *s, size_t overhead, size_t limit,
			struct broadcast_batch *out)
{
	return broadcast_queue_get(s->bq, (int)s->n_nodes, overhead, limit,
				   out);
}

int swim_queue_broadcast(struct swim *s, const char *name, const uint8_t *msg,
			 size_t len)
{
	return broadcast_queue_push(s->bq, name, msg, len);
}

size_t swim_broadcasts_queued(const struct swim *s)
{
	return broadcast_queue_len(s->bq);
}

/* ---- state rules ---- */

/* refute(): beat the accusation and tell everyone we are alive. */
static void swim_refute(struct swim *s, struct swim_node *me, uint32_t accused)
{
	uint32_t inc = ++s->incarnation;
	if (accused >= inc) {
		s->incarnation = accused + 1;
		inc = s->incarnation;
	}
	me->incarnation = inc;
	/* Being accused hints that we are the slow one. */
	swim_awareness_apply(s, 1);
	struct swim_msg a = {
		.type = SWIM_MSG_ALIVE, .incarnation = inc, .node = me->name,
		.addr = me->addr, .meta = me->meta, .meta_len = me->meta_len,
		.vsn = s->cfg.self_vsn, .vsn_len = SWIM_VSN_LEN,
	};
	swim_broadcast(s, &a);
	swim_event(s, SWIM_EV_REFUTE, me, NULL, 0);
}

/* Adds a node stored dead at incarnation 0, at a random probe position
 * (aliveNode: appending would make failure detection slow on average). */
static struct swim_node *swim_node_add(struct swim *s, const struct swim_msg *a)
{
	if (s->n_nodes == s->cap_nodes) {
		size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 16;
		struct swim_node **v = realloc(s->nodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		s->nodes = v;
		s->cap_nodes = cap;
	}
	struct swim_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	swim_copy_name(n->name, a->node);
	n->addr = a->addr;
	if (a->meta_len)
		memcpy(n->meta, a->meta, a->meta_len);
	n->meta_len = a->meta_len;
	if (a->vsn_len >= SWIM_VSN_LEN) {
		memcpy(n->vsn, a->vsn, SWIM_VSN_LEN);
		n->has_vsn = true;
	}
	n->state = SWIM_DEAD;
	n->state_change = SWIM_LONG_AGO;
	size_t count = s->n_nodes;
	size_t off = swim_rand_below(s, count);
	s->nodes[count] = s->nodes[off];
	s->nodes[off] = n;
	s->n_nodes++;
	return n;
}

static bool swim_addr_eq(const struct swim_addr *a, const struct swim_addr *b)
{
	return a->len == b->len && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->len) == 0;
}

static void swim_stop_timer(struct swim_node *n)
{
	if (n->suspecting) {
		suspicion_clear(&n->susp);
		n->suspecting = false;
	}
}

static int swim_check_msg(const struct swim_msg *m)
{
	if (!swim_name_ok(m->node))
		return -EINVAL;
	if (m->type == SWIM_MSG_ALIVE && (m->meta_len > SWIM_META_MAX ||
					  (m->meta_len && !m->meta)))
		return -EINVAL;
	if (m->type != SWIM_MSG_ALIVE && m->from &&
	    strlen(m->from) > SWIM_NAME_MAX)
		return -EINVAL;
	return 0;
}

/* aliveNode(). bootstrap: our own setAlive/UpdateNode, not a rumour. */
static int swim_alive_node(struct swim *s, const struct swim_msg *a,
			   bool bootstrap, int64_t now)
{
	int rc = swim_check_msg(a);
	if (rc < 0)
		return rc;
	bool is_local = swim_is_self(s, a->node);
	/* An alive about us queued before Leave() must not re-join us. */
	if (s->leaving && is_local)
		return 0;
	if (a->vsn_len >= 3 && (a->vsn[0] == 0 || a->vsn[1] == 0 ||
				a->vsn[0] > a->vsn[1])) {
		log_debug("swim, ignoring alive for %s with bad protocol "
			  "versions", a->node);
		return 0;
	}

	bool updates_node = false;
	struct swim_node *n = swim_find(s, a->node);
	if (!n) {
		n = swim_node_add(s, a);
		if (!n)
			return -ENOMEM;
	} else if (!swim_addr_eq(&n->addr, &a->addr)) {
		bool can_reclaim = s->cfg.dead_node_reclaim_time > 0 &&
			now - n->state_change > s->cfg.dead_node_reclaim_time;
		if (n->state == SWIM_LEFT ||
		    (n->state == SWIM_DEAD && can_reclaim)) {
			updates_node = true;
		} else {
			struct swim_node tmp = *n;
			tmp.addr = a->addr;
			log_warn("swim, conflicting address for %s, ignored",
				 a->node);
			swim_event(s, SWIM_EV_CONFLICT, &tmp, NULL, 0);
			return 0;
		}
	}

	if (a->incarnation <= n->incarnation && !is_local && !updates_node)
		return 0;
	if (a->incarnation < n->incarnation && is_local)
		return 0;

	swim_stop_timer(n);
	enum swim_state old_state = n->state;
	bool meta_changed = a->meta_len != n->meta_len ||
		(a->meta_len && memcmp(a->meta, n->meta, a->meta_len) != 0);

	if (!bootstrap && is_local) {
		/* Same incarnation, same content: an echo of our own news.
		 * A difference means a previous life of ours is talking. */
		bool vsn_same = a->vsn_len == SWIM_VSN_LEN &&
			memcmp(a->vsn, s->cfg.self_vsn, SWIM_VSN_LEN) == 0;
		if (a->incarnation == n->incarnation && !meta_changed &&
		    vsn_same)
			return 0;
		log_warn("swim, refuting an alive message about us");
		swim_refute(s, n, a->incarnation);
		return 0;
	}

	swim_broadcast(s, a);
	if (a->vsn_len >= SWIM_VSN_LEN) {
		memcpy(n->vsn, a->vsn, SWIM_VSN_LEN);
		n->has_vsn = true;
	}
	n->incarnation = a->incarnation;
	if (a->meta_len)
		memcpy(n->meta, a->meta, a->meta_len);
	n->meta_len = a->meta_len;
	n->addr = a->addr;
	if (n->state != SWIM_ALIVE) {
		n->state = SWIM_ALIVE;
		n->state_change = now;
	}

	if (old_state == SWIM_DEAD || old_state == SWIM_LEFT) {
		swim_event(s, SWIM_EV_JOIN, n, NULL, 0);
	} else {
		if (old_state == SWIM_SUSPECT)
			swim_event(s, SWIM_EV_ALIVE, n, NULL, 0);
		if (meta_changed)
			swim_event(s, SWIM_EV_UPDATE, n, NULL, 0);
	}
	return 0;
}

static int swim_dead_node(struct swim *s, const struct swim_msg *d,
			  int64_t now, int confirmations);

/* Our suspicion timer about n ran out (the suspicion fn). */
static void swim_suspicion_fire(struct swim *s, struct swim_node *n,
				int64_t now)
{
	int conf = n->susp.n;
	log_info("swim, marking %s as failed, suspect timeout reached "
		 "(%d peer confirmations)", n->name, conf);
	struct swim_msg d = {
		.type = SWIM_MSG_DEAD, .incarnation = n->incarnation,
		.node = n->name, .from = s->self,
	};
	swim_dead_node(s, &d, now, conf);
}

/* suspectNode(). */
static int swim_suspect_node(struct swim *s, const struct swim_msg *m,
			     int64_t now)
{
	int rc = swim_check_msg(m);
	if (rc < 0)
		return rc;
	const char *from = m->from ? m->from : "";
	struct swim_node *n = swim_find(s, m->node);
	if (!n || m->incarnation < n->incarnation)
		return 0;

	/* A running timer: this is a confirmation. New ones are re-gossiped
	 * so independent confirmations spread even while others probe. */
	if (n->suspecting) {
		rc = suspicion_confirm(&n->susp, from, now);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			swim_broadcast(s, m);
			if (suspicion_expired(&n->susp, now))
				swim_suspicion_fire(s, n, now);
		}
		return 0;
	}
	if (n->state != SWIM_ALIVE)
		return 0;
	if (swim_is_self(s, m->node)) {
		log_warn("swim, refuting a suspect message (from: %s)", from);
		swim_refute(s, n, m->incarnation);
		return 0;
	}
	swim_broadcast(s, m);

	n->incarnation = m->incarnation;
	n->state = SWIM_SUSPECT;
	n->state_change = now;

	int count = (int)s->n_nodes;
	int k = suspicion_k(s->cfg.suspicion_mult, count);
	int64_t min = suspicion_timeout_min(s->cfg.suspicion_mult, count,
					    s->cfg.probe_interval);
	int64_t max = (int64_t)s->cfg.suspicion_max_timeout_mult * min;
	rc = suspicion_start(&n->susp, from, k, min, max, now);
	if (rc < 0)
		return rc;
	n->suspecting = true;
	swim_event(s, SWIM_EV_SUSPECT, n, from, 0);
	return 0;
}

/* deadNode(). */
static int swim_dead_node(struct swim *s, const struct swim_msg *d,
			  int64_t now, int confirmations)
{
	int rc = swim_check_msg(d);
	if (rc < 0)
		return rc;
	const char *from = d->from ? d->from : "";
	struct swim_node *n = swim_find(s, d->node);
	if (!n || d->incarnation < n->incarnation)
		return 0;
	swim_stop_timer(n);
	if (swim_dead_or_left(n))
		return 0;
	if (swim_is_self(s, d->node) && !s->leaving) {
		log_warn("swim, refuting a dead message (from: %s)", from);
		swim_refute(s, n, d->incarnation);
		return 0;
	}
	swim_broadcast(s, d);
	n->incarnation = d->incarnation;
	n->state = strcmp(d->node, from) == 0 ? SWIM_LEFT : SWIM_DEAD;
	n->state_change = now;
	swim_event(s, n->state == SWIM_LEFT ? SWIM_EV_LEFT : SWIM_EV_DEAD, n,
		   from, confirmations);
	return 0;
}

int swim_on_alive(struct swim *s, const struct swim_msg *m, int64_t now)
{
	return swim_alive_node(s, m, false, now);
}

int swim_on_suspect(struct swim *s, const struct swim_msg *m, int64_t now)
{
	return swim_suspect_node(s, m, now);
}

int swim_on_dead(struct swim *s, const struct swim_msg *m, int64_t now)
{
	return swim_dead_node(s, m, now, 0);
}

int swim_on_msg(struct swim *s, const struct swim_msg *m, int64_t now)
{
	switch (m->type) {
	case SWIM_MSG_ALIVE:
		return swim_on_alive(s, m, now);
	case SWIM_MSG_SUSPECT:
		return swim_on_suspect(s, m, now);
	case SWIM_MSG_DEAD:
		return swim_on_dead(s, m, now);
	}
	return -EINVAL;
}

/* ---- probing ---- */

/* Up to k distinct random nodes passing keep(), exhaustively (memberlist
 * kRandomNodes samples 3n times and may miss some on small clusters). */
static size_t swim_k_random(struct swim *s, size_t k,
			    bool (*keep)(const struct swim *,
					 const struct swim_node *,
					 const void *, int64_t),
			    const void *arg, int64_t now,
			    struct swim_node **out)
{
	struct swim_node **cand = malloc((s->n_nodes + 1) * sizeof(*cand));
	if (!cand)
		return 0;
	size_t nc = 0;
	for (size_t i = 0; i < s->n_nodes; i++)
		if (keep(s, s->nodes[i], arg, now))
			cand[nc++] = s->nodes[i];
	size_t got = 0;
	for (; got < k && got < nc; got++) {
		size_t j = got + swim_rand_below(s, nc - got);
		struct swim_node *t = cand[got];
		cand[got] = cand[j];
		cand[j] = t;
		out[got] = cand[got];
	}
	free(cand);
	return got;
}

/* Indirect helpers: alive, not us, not the target (arg). */
static bool swim_keep_indirect(const struct swim *s, const struct swim_node *n,
			       const void *arg, int64_t now)
{
	(void)now;
	return n->state == SWIM_ALIVE && !swim_is_self(s, n->name) &&
	       strcmp(n->name, (const char *)arg) != 0;
}

/* resetNodes(): reap nodes dead/left for longer than GossipToTheDeadTime,
 * then reshuffle the probe order. */
static void swim_reset_nodes(struct swim *s, int64_t now)
{
	size_t w = 0;
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct swim_node *n = s->nodes[i];
		if (swim_dead_or_left(n) && !swim_is_self(s, n->name) &&
		    now - n->state_change > s->cfg.gossip_to_the_dead_time) {
			swim_event(s, SWIM_EV_REAPED, n, NULL, 0);
			swim_stop_timer(n);
			free(n);
			continue;
		}
		s->nodes[w++] = n;
	}
	s->n_nodes = w;
	for (size_t i = s->n_nodes; i > 1; i--) {
		size_t j = swim_rand_below(s, i);
		struct swim_node *t = s->nodes[i - 1];
		s->nodes[i - 1] = s->nodes[j];
		s->nodes[j] = t;
	}
}

/* probe() + the start of probeNode(). false if nobody to probe. */
static bool swim_probe_start(struct swim *s, int64_t now,
			     struct swim_actions *out)
{
	struct swim_node *n = NULL;
	size_t checked = 0;
	while (!n) {
		if (checked >= s->n_nodes)
			return false;
		if (s->probe_index >= s->n_nodes) {
			swim_reset_nodes(s, now);
			s->probe_index = 0;
			checked++;
			continue;
		}
		struct swim_node *c = s->nodes[s->probe_index++];
		if (swim_is_self(s, c->name) || swim_dead_or_left(c))
			checked++;
		else
			n = c;
	}

	struct swim_probe *p = &s->probe;
	memset(p, 0, sizeof(*p));
	p->active = true;
	p->seq = ++s->seq;
	swim_copy_name(p->target, n->name);
	p->target_addr = n->addr;
	p->target_inc = n->incarnation;
	p->target_pmax = swim_pmax(n);
	p->start = now;
	p->timeout_at = now + s->cfg.probe_timeout;
	p->deadline = now + swim_scale(s, s->cfg.probe_interval);

	struct swim_action *a = swim_act(out, SWIM_ACT_PING, n->name, &n->addr);
	if (!a)
		return true;  /* the probe will simply fail */
	a->seq = p->seq;
	/* Buddy system: tell a suspect it is suspected so it can refute. */
	if (n->state != SWIM_ALIVE) {
		a->with_suspect = true;
		a->suspect_inc = n->incarnation;
	}
	return true;
}

/* probeNode() after ProbeTimeout without ack: indirect pings + TCP. */
static void swim_probe_indirect(struct swim *s, struct swim_actions *out)
{
	struct swim_probe *p = &s->probe;
	p->indirect = true;
	size_t k = s->cfg.indirect_checks > 0 ? (size_t)s->cfg.indirect_checks
					      : 0;
	struct swim_node **peers = calloc(k + 1, sizeof(*peers));
	size_t got = peers ? swim_k_random(s, k, swim_keep_indirect, p->target,
					   0, peers) : 0;
	for (size_t i = 0; i < got; i++) {
		struct swim_action *a = swim_act(out, SWIM_ACT_INDIRECT_PING,
						 peers[i]->name,
						 &peers[i]->addr);
		if (!a)
			break;
		a->seq = p->seq;
		swim_copy_name(a->target_name, p->target);
		a->target = p->target_addr;
		/* Only protocol >= 4 peers know how to nack. */
		a->nack = swim_pmax(peers[i]) >= 4;
		if (a->nack)
			p->expected_nacks++;
	}
	free(peers);
	if (!s->cfg.disable_tcp_pings && p->target_pmax >= 3) {
		struct swim_action *a = swim_act(out, SWIM_ACT_TCP_PING,
						 p->target, &p->target_addr);
		if (a) {
			a->seq = p->seq;
			a->deadline = p->deadline;
		}
	}
}

/* The next probe tick after a probe that began at start and ended now: a
 * Go ticker buffers one tick, so if one fell inside the probe it fires at
 * once; otherwise wait for the next one. */
static void swim_probe_schedule(struct swim *s, int64_t start, int64_t now)
{
	int64_t t = swim_next_grid(s->probe_origin, s->cfg.probe_interval,
				   start);
	s->next_probe_at = t <= now ? now : t;
}

static void swim_probe_success(struct swim *s, int64_t now)
{
	s->probe.active = false;
	swim_awareness_apply(s, -1);
	swim_probe_schedule(s, s->probe.start, now);
}

/* The end of probeNode() when the deadline passed without an ack. */
static void swim_probe_fail(struct swim *s, int64_t now)
{
	struct swim_probe *p = &s->probe;
	p->active = false;
	swim_probe_schedule(s, p->start, now);
	if (p->tcp_ok) {
		log_warn("swim, was able to connect to %s over TCP but UDP "
			 "probes failed, network may be misconfigured",
			 p->target);
		swim_awareness_apply(s, -1);
		return;
	}
	/* With nacking peers, missing nacks point at us rather than at the
	 * target; without any, every failed probe counts against us. */
	int delta = 0;
	if (p->expected_nacks > 0) {
		if (p->nacks < p->expected_nacks)
			delta = p->expected_nacks - p->nacks;
	} else {
		delta = 1;
	}
	swim_awareness_apply(s, delta);
	log_info("swim, suspect %s has failed, no acks received", p->target);
	struct swim_msg m = {
		.type = SWIM_MSG_SUSPECT, .incarnation = p->target_inc,
		.node = p->target, .from = s->self,
	};
	swim_suspect_node(s, &m, now);
}

int swim_on_ack(struct swim *s, uint32_t seq, int64_t now,
		struct swim_actions *out)
{
	struct swim_probe *p = &s->probe;
	if (p->active && p->seq == seq && now < p->deadline) {
		swim_probe_success(s, now);
		return 0;
	}
	for (size_t i = 0; i < s->n_relays; i++) {
		struct swim_relay *r = &s->relays[i];
		if (r->local_seq != seq || now >= r->expires)
			continue;
		struct swim_action *a = swim_act(out, SWIM_ACT_ACK, r->to_name,
						 &r->to);
		if (!a)
			return -ENOMEM;
		a->seq = r->orig_seq;
		s->relays[i] = s->relays[--s->n_relays];
		return 0;
	}
	return 0;
}

void swim_on_nack(struct swim *s, uint32_t seq, int64_t now)
{
	struct swim_probe *p = &s->probe;
	if (p->active && p->seq == seq && now < p->deadline)
		p->nacks++;
}

void swim_on_tcp_ping_result(struct swim *s, uint32_t seq, bool ok,
			     int64_t now)
{
	struct swim_probe *p = &s->probe;
	if (ok && p->active && p->seq == seq && now <= p->deadline)
		p->tcp_ok = true;
}

bool swim_ping_accept(const struct swim *s, const char *target_node)
{
	return !target_node || !target_node[0] ||
	       swim_is_self(s, target_node);
}

int swim_on_indirect_ping(struct swim *s, const struct swim_indirect_req *req,
			  const struct swim_addr *requester,
			  const char *requester_name, int64_t now,
			  struct swim_actions *out)
{
	if (!swim_name_ok(req->target_name) || !requester)
		return -EINVAL;
	if (s->n_relays == s->cap_relays) {
		size_t cap = s->cap_relays ? s->cap_relays * 2 : 8;
		struct swim_relay *v = realloc(s->relays, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->relays = v;
		s->cap_relays = cap;
	}
	struct swim_action *a = swim_act(out, SWIM_ACT_PING, req->target_name,
					 &req->target);
	if (!a)
		return -ENOMEM;
	struct swim_relay *r = &s->relays[s->n_relays++];
	memset(r, 0, sizeof(*r));
	r->local_seq = ++s->seq;
	r->orig_seq = req->seq;
	r->to = *requester;
	swim_copy_name(r->to_name, requester_name);
	r->nack = req->nack;
	r->expires = now + s->cfg.probe_timeout;
	a->seq = r->local_seq;
	return 0;
}

/* ---- gossip and push/pull ---- */

/* gossip() targets: not us; alive, suspect, or dead for at most
 * GossipToTheDeadTime (so the dead hear about it and can refute). */
static bool swim_keep_gossip(const struct swim *s, const struct swim_node *n,
			     const void *arg, int64_t now)
{
	(void)arg;
	if (swim_is_self(s, n->name))
		return false;
	switch (n->state) {
	case SWIM_ALIVE:
	case SWIM_SUSPECT:
		return true;
	case SWIM_DEAD:
		return now - n->state_change <= s->cfg.gossip_to_the_dead_time;
	default:
		return false;
	}
}

static bool swim_keep_alive_peer(const struct swim *s,
				 const struct swim_node *n, const void *arg,
				 int64_t now)
{
	(void)arg;
	(void)now;
	return n->state == SWIM_ALIVE && !swim_is_self(s, n->name);
}

static int swim_gossip(struct swim *s, int64_t now, struct swim_actions *out)
{
	if (broadcast_queue_len(s->bq) == 0 || s->cfg.gossip_nodes <= 0)
		return 0;
	size_t k = (size_t)s->cfg.gossip_nodes;
	struct swim_node **peers = calloc(k, sizeof(*peers));
	if (!peers)
		return -ENOMEM;
	size_t got = swim_k_random(s, k, swim_keep_gossip, NULL, now, peers);
	size_t reserve = SWIM_COMPOUND_HEADER_OVERHEAD + s->cfg.packet_overhead;
	size_t avail = s->cfg.udp_buffer_size > reserve
		? s->cfg.udp_buffer_size - reserve : 0;
	int rc = 0;
	for (size_t i = 0; i < got; i++) {
		struct broadcast_batch b;
		broadcast_batch_init(&b);
		rc = swim_get_broadcasts(s, SWIM_COMPOUND_OVERHEAD, avail, &b);
		if (rc < 0 || b.n == 0) {
			broadcast_batch_clear(&b);
			break;
		}
		struct swim_action *a = swim_act(out, SWIM_ACT_GOSSIP,
						 peers[i]->name,
						 &peers[i]->addr);
		if (!a) {
			broadcast_batch_clear(&b);
			rc = -ENOMEM;
			break;
		}
		a->batch = b;
	}
	free(peers);
	return rc;
}

/* util.go pushPullScale: slower push/pull above 32 nodes. */
static int64_t swim_push_pull_scale(int64_t interval, int n)
{
	if (n <= SWIM_PUSH_PULL_SCALE_THRESHOLD)
		return interval;
	double mult = ceil(log2((double)n) -
			   log2((double)SWIM_PUSH_PULL_SCALE_THRESHOLD)) + 1.0;
	return (int64_t)mult * interval;
}

static void swim_push_pull(struct swim *s, int64_t now,
			   struct swim_actions *out)
{
	struct swim_node *peer = NULL;
	if (swim_k_random(s, 1, swim_keep_alive_peer, NULL, now, &peer) == 1) {
		struct swim_action *a = swim_act(out, SWIM_ACT_PUSH_PULL,
						 peer->name, &peer->addr);
		if (a)
			a->join = false;
	}
}

/* ---- the tick ---- */

int swim_tick(struct swim *s, int64_t now, struct swim_actions *out)
{
	/* Relayed probes that got no ack: nack if asked, then forget. */
	for (size_t i = 0; i < s->n_relays;) {
		struct swim_relay *r = &s->relays[i];
		if (now < r->expires) {
			i++;
			continue;
		}
		if (r->nack) {
			struct swim_action *a = swim_act(out, SWIM_ACT_NACK,
							 r->to_name, &r->to);
			if (a)
				a->seq = r->orig_seq;
		}
		s->relays[i] = s->relays[--s->n_relays];
	}

	/* Suspicion timers. Firing never removes a node from the table. */
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct swim_node *n = s->nodes[i];
		if (n->suspecting && suspicion_expired(&n->susp, now))
			swim_suspicion_fire(s, n, now);
	}

	/* Probe phases; a failed probe may let the next one start now. */
	for (;;) {
		struct swim_probe *p = &s->probe;
		if (p->active) {
			if (!p->indirect && now >= p->timeout_at)
				swim_probe_indirect(s, out);
			if (now < p->deadline)
				break;
			swim_probe_fail(s, now);
			continue;
		}
		if (now < s->next_probe_at)
			break;
		if (!swim_probe_start(s, now, out)) {
			s->next_probe_at = swim_next_grid(s->probe_origin,
				s->cfg.probe_interval, now);
			break;
		}
	}

	int rc = 0;
	if (now >= s->gossip_at) {
		s->gossip_at = swim_next_grid(s->gossip_origin,
					      s->cfg.gossip_interval, now);
		rc = swim_gossip(s, now, out);
	}

	if (s->cfg.push_pull_interval > 0 && now >= s->push_pull_at) {
		s->push_pull_at = now + swim_push_pull_scale(
			s->cfg.push_pull_interval, (int)s->n_nodes);
		swim_push_pull(s, now, out);
	}
	return rc;
}

static void swim_min(int64_t *acc, int64_t t)
{
	if (t < *acc)
		*acc = t;
}

int64_t swim_next_deadline(const struct swim *s)
{
	int64_t t = INT64_MAX;
	const struct swim_probe *p = &s->probe;
	if (p->active)
		swim_min(&t, p->indirect ? p->deadline : p->timeout_at);
	else
		swim_min(&t, s->next_probe_at);
	/* Gossip ticks only matter while there is something to send. */
	if (broadcast_queue_len(s->bq) > 0)
		swim_min(&t, s->gossip_at);
	if (s->cfg.push_pull_interval > 0)
		swim_min(&t, s->push_pull_at);
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i]->suspecting)
			swim_min(&t, s->nodes[i]->susp.deadline);
	for (size_t i = 0; i < s->n_relays; i++)
		swim_min(&t, s->relays[i].expires);
	return t;
}

/* ---- join, push/pull state, leave ---- */

int swim_join(struct swim *s, const char *name, const struct swim_addr *addr,
	      int64_t now, struct swim_actions *out)
{
	(void)s;
	(void)now;
	if (!addr)
		return -EINVAL;
	struct swim_action *a = swim_act(out, SWIM_ACT_PUSH_PULL, name, addr);
	if (!a)
		return -ENOMEM;
	a->join = true;
	return 0;
}

int swim_merge_remote_state(struct swim *s, const struct swim_node_view *nodes,
			    size_t n, int64_t now)
{
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		const struct swim_node_view *r = &nodes[i];
		struct swim_msg m = {
			.incarnation = r->incarnation, .node = r->name,
		};
		int rc;
		switch (r->state) {
		case SWIM_ALIVE:
			m.type = SWIM_MSG_ALIVE;
			m.addr = r->addr;
			m.meta = r->meta;
			m.meta_len = r->meta_len;
			m.vsn = r->vsn;
			m.vsn_len = r->vsn_len;
			rc = swim_alive_node(s, &m, false, now);
			break;
		case SWIM_LEFT:
			m.type = SWIM_MSG_DEAD;
			m.from = r->name;
			rc = swim_dead_node(s, &m, now, 0);
			break;
		case SWIM_DEAD:
		case SWIM_SUSPECT:
			/* Someone else's "dead" is only a suspicion here: we
			 * give the node the chance to refute. */
			m.type = SWIM_MSG_SUSPECT;
			m.from = s->self;
			rc = swim_suspect_node(s, &m, now);
			break;
		default:
			rc = -EINVAL;
		}
		/* One bad entry must not stop the rest of the merge. */
		if (rc < 0 && ret == 0)
			ret = rc;
	}
	return ret;
}

static void swim_view(const struct swim_node *n, struct swim_node_view *v)
{
	v->name = n->name;
	v->addr = n->addr;
	v->meta = n->meta;
	v->meta_len = n->meta_len;
	v->incarnation = n->incarnation;
	v->state = n->state;
	v->vsn = n->has_vsn ? n->vsn : NULL;
	v->vsn_len = n->has_vsn ? SWIM_VSN_LEN : 0;
	v->state_change = n->state_change;
}

size_t swim_local_state(const struct swim *s, struct swim_node_view *out,
			size_t cap)
{
	for (size_t i = 0; i < s->n_nodes && i < cap; i++)
		swim_view(s->nodes[i], &out[i]);
	return s->n_nodes;
}

int swim_node_get(const struct swim *s, const char *name,
		  struct swim_node_view *out)
{
	const struct swim_node *n = swim_find(s, name);
	if (!n)
		return -ENOENT;
	swim_view(n, out);
	return 0;
}

int swim_leave(struct swim *s, int64_t now)
{
	if (s->leaving)
		return 0;
	s->leaving = true;
	struct swim_node *me = swim_find(s, s->self);
	if (!me)
		return -ENOENT;
	/* Node == From tells the others this was on purpose. */
	struct swim_msg d = {
		.type = SWIM_MSG_DEAD, .incarnation = me->incarnation,
		.node = me->name, .from = me->name,
	};
	return swim_dead_node(s, &d, now, 0);
}

bool swim_leave_done(const struct swim *s)
{
	bool any_alive = false;
	for (size_t i = 0; i < s->n_nodes; i++) {
		const struct swim_node *n = s->nodes[i];
		if (!swim_dead_or_left(n) && !swim_is_self(s, n->name))
			any_alive = true;
	}
	return !any_alive || !broadcast_queue_has(s->bq, s->self);
}

int swim_update_meta(struct swim *s, const uint8_t *meta, size_t len,
		     int64_t now)
{
	if (len > SWIM_META_MAX || (len && !meta))
		return -EINVAL;
	memcpy(s->self_meta, meta, len);
	s->cfg.self_meta = s->self_meta;
	s->cfg.self_meta_len = len;
	struct swim_msg a = {
		.type = SWIM_MSG_ALIVE, .incarnation = ++s->incarnation,
		.node = s->self, .addr = s->cfg.self_addr,
		.meta = s->self_meta, .meta_len = len,
		.vsn = s->cfg.self_vsn, .vsn_len = SWIM_VSN_LEN,
	};
	return swim_alive_node(s, &a, true, now);
}

/* ---- lifecycle and introspection ---- */

void swim_config_lan(struct swim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->probe_interval = 1000000000LL;
	cfg->probe_timeout = 500000000LL;
	cfg->indirect_checks = 3;
	cfg->retransmit_mult = 4;
	cfg->suspicion_mult = 4;
	cfg->suspicion_max_timeout_mult = 6;
	cfg->awareness_max_multiplier = 8;
	cfg->gossip_interval = 200000000LL;
	cfg->gossip_nodes = 3;
	cfg->gossip_to_the_dead_time = 30000000000LL;
	cfg->push_pull_interval = 30000000000LL;
	cfg->dead_node_reclaim_time = 0;
	cfg->udp_buffer_size = 1400;
	const uint8_t vsn[SWIM_VSN_LEN] = { 1, 5, 2, 0, 0, 0 };
	memcpy(cfg->self_vsn, vsn, sizeof(vsn));
}

struct swim *swim_new(const struct swim_config *cfg, const char *self_name,
		      int64_t now)
{
	if (!cfg || !cfg->encode || !swim_name_ok(self_name) ||
	    cfg->self_meta_len > SWIM_META_MAX || cfg->probe_interval <= 0 ||
	    cfg->gossip_interval <= 0 || cfg->probe_timeout <= 0) {
		errno = EINVAL;
		return NULL;
	}
	struct swim *s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->cfg = *cfg;
	if (cfg->self_meta_len)
		memcpy(s->self_meta, cfg->self_meta, cfg->self_meta_len);
	s->cfg.self_meta = s->self_meta;
	swim_copy_name(s->self, self_name);
	s->rng = cfg->seed;
	s->bq = broadcast_queue_new(cfg->retransmit_mult);
	if (!s->bq)
		goto fail;

	/* schedule(): each loop starts after a random stagger. */
	s->probe_origin = now + (int64_t)swim_rand_below(
		s, (size_t)cfg->probe_interval);
	s->next_probe_at = s->probe_origin;
	s->gossip_origin = now + (int64_t)swim_rand_below(
		s, (size_t)cfg->gossip_interval);
	s->gossip_at = s->gossip_origin;
	if (cfg->push_pull_interval > 0)
		s->push_pull_at = now + (int64_t)swim_rand_below(
			s, (size_t)cfg->push_pull_interval);

	/* setAlive(): ourselves at incarnation 1, broadcast. */
	struct swim_msg a = {
		.type = SWIM_MSG_ALIVE, .incarnation = ++s->incarnation,
		.node = s->self, .addr = cfg->self_addr,
		.meta = s->self_meta, .meta_len = cfg->self_meta_len,
		.vsn = cfg->self_vsn, .vsn_len = SWIM_VSN_LEN,
	};
	if (swim_alive_node(s, &a, true, now) < 0)
		goto fail;
	return s;
fail:
	swim_free(s);
	errno = ENOMEM;
	return NULL;
}

void swim_free(struct swim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_nodes; i++) {
		swim_stop_timer(s->nodes[i]);
		free(s->nodes[i]);
	}
	free(s->nodes);
	broadcast_queue_free(s->bq);
	free(s->relays);
	free(s->events);
	free(s);
}

int swim_num_nodes(const struct swim *s)
{
	return (int)s->n_nodes;
}

int swim_num_alive(const struct swim *s)
{
	int c = 0;
	for (size_t i = 0; i < s->n_nodes; i++)
		if (!swim_dead_or_left(s->nodes[i]))
			c++;
	return c;
}

int swim_awareness(const struct swim *s)
{
	return s->awareness;
}

uint32_t swim_incarnation(const struct swim *s)
{
	return s->incarnation;
}

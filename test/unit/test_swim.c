/* SWIM state machine with fake time: probe -> indirect -> suspect -> dead,
 * refutation, confirmations, awareness, relays, push/pull merge, the
 * broadcast queue, and a 3-member group wired through an in-memory
 * network. No sockets, no sleeping: `now` is just a number. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "broadcast.h"
#include "suspicion.h"
#include "swim.h"

#define S 1000000000LL
#define MS 1000000LL

/* ---- a test wire format (netd uses memberlist msgpack instead) ---- */

static int put_str(uint8_t *buf, size_t cap, size_t *o, const void *p,
		   size_t len)
{
	if (len > 0xffff || *o + 2 + len > cap)
		return -ENOSPC;
	buf[(*o)++] = (uint8_t)(len >> 8);
	buf[(*o)++] = (uint8_t)len;
	if (len)
		memcpy(buf + *o, p, len);
	*o += len;
	return 0;
}

static int test_encode(void *ctx, const struct swim_msg *m, uint8_t *buf,
		       size_t cap)
{
	(void)ctx;
	size_t o = 0;
	if (cap < 9)
		return -ENOSPC;
	buf[o++] = (uint8_t)m->type;
	memcpy(buf + o, &m->incarnation, 4);
	o += 4;
	memcpy(buf + o, &m->addr.port, 2);
	o += 2;
	buf[o++] = m->addr.len;
	if (put_str(buf, cap, &o, m->node, strlen(m->node)) < 0 ||
	    put_str(buf, cap, &o, m->from ? m->from : "",
		    m->from ? strlen(m->from) : 0) < 0 ||
	    put_str(buf, cap, &o, m->addr.ip, m->addr.len) < 0 ||
	    put_str(buf, cap, &o, m->meta, m->meta_len) < 0 ||
	    put_str(buf, cap, &o, m->vsn, m->vsn_len) < 0)
		return -ENOSPC;
	return (int)o;
}

/* Decoded message; strings live in the struct. */
struct dec {
	struct swim_msg m;
	char node[SWIM_NAME_MAX + 1], from[SWIM_NAME_MAX + 1];
	uint8_t meta[SWIM_META_MAX], vsn[16];
};

static const uint8_t *get_str(const uint8_t *p, size_t *len)
{
	*len = (size_t)p[0] << 8 | p[1];
	return p + 2;
}

static void test_decode(const uint8_t *buf, size_t len, struct dec *d)
{
	(void)len;
	memset(d, 0, sizeof(*d));
	const uint8_t *p = buf;
	d->m.type = (enum swim_msg_type)*p++;
	memcpy(&d->m.incarnation, p, 4);
	p += 4;
	memcpy(&d->m.addr.port, p, 2);
	p += 2;
	d->m.addr.len = *p++;
	size_t l;
	const uint8_t *s = get_str(p, &l);
	memcpy(d->node, s, l);
	p = s + l;
	s = get_str(p, &l);
	memcpy(d->from, s, l);
	p = s + l;
	s = get_str(p, &l);
	memcpy(d->m.addr.ip, s, l);
	p = s + l;
	s = get_str(p, &l);
	memcpy(d->meta, s, l);
	d->m.meta_len = l;
	p = s + l;
	s = get_str(p, &l);
	memcpy(d->vsn, s, l);
	d->m.vsn_len = l;
	d->m.node = d->node;
	d->m.from = d->from;
	d->m.meta = d->meta;
	d->m.vsn = d->vsn;
}

/* ---- helpers for driving one instance by hand ---- */

static struct swim_addr addr_of(uint8_t last)
{
	struct swim_addr a = { .ip = { 192, 0, 2, last }, .len = 4,
			       .port = 7946 };
	return a;
}

static struct swim *solo_new(const char *name, uint8_t last, int64_t now)
{
	struct swim_config cfg;
	swim_config_lan(&cfg);
	cfg.encode = test_encode;
	cfg.seed = 42 + last;
	cfg.self_addr = addr_of(last);
	struct swim *s = swim_new(&cfg, name, now);
	assert_non_null(s);
	return s;
}

static void add_peer(struct swim *s, const char *name, uint8_t last,
		     uint8_t pmax, int64_t now)
{
	uint8_t vsn[SWIM_VSN_LEN] = { 1, pmax, 2, 0, 0, 0 };
	struct swim_msg m = {
		.type = SWIM_MSG_ALIVE, .incarnation = 1, .node = name,
		.addr = addr_of(last), .vsn = vsn, .vsn_len = sizeof(vsn),
	};
	assert_int_equal(swim_on_alive(s, &m, now), 0);
}

static void drain_events(struct swim *s)
{
	struct swim_event e;
	while (swim_next_event(s, &e))
		;
}

/* Consumes events until one of this type about name; false if none. */
static bool take_event(struct swim *s, enum swim_event_type type,
		       const char *name, struct swim_event *out)
{
	struct swim_event e;
	while (swim_next_event(s, &e)) {
		if (e.type == type && strcmp(e.name, name) == 0) {
			if (out)
				*out = e;
			return true;
		}
	}
	return false;
}

static const struct swim_action *find_act(const struct swim_actions *a,
					  enum swim_action_type type)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].type == type)
			return &a->v[i];
	return NULL;
}

static size_t count_act(const struct swim_actions *a,
			enum swim_action_type type)
{
	size_t c = 0;
	for (size_t i = 0; i < a->n; i++)
		c += a->v[i].type == type;
	return c;
}

/* Ticks at successive deadlines until an action of this type shows up
 * (acts holds that tick's actions); fails past limit. */
static void run_until_act(struct swim *s, int64_t *now,
			  struct swim_actions *acts,
			  enum swim_action_type type, int64_t limit)
{
	for (;;) {
		int64_t t = swim_next_deadline(s);
		assert_true(t <= limit);
		*now = t;
		swim_actions_clear(acts);
		assert_int_equal(swim_tick(s, t, acts), 0);
		if (find_act(acts, type))
			return;
	}
}

/* Acks every PING in acts whose destination is not `mute`. */
static void ack_pings(struct swim *s, const struct swim_actions *acts,
		      const char *mute, int64_t now)
{
	struct swim_actions out;
	swim_actions_init(&out);
	for (size_t i = 0; i < acts->n; i++)
		if (acts->v[i].type == SWIM_ACT_PING &&
		    strcmp(acts->v[i].to_name, mute) != 0)
			swim_on_ack(s, acts->v[i].seq, now, &out);
	swim_actions_free(&out);
}

static enum swim_state state_of(struct swim *s, const char *name)
{
	struct swim_node_view v;
	assert_int_equal(swim_node_get(s, name, &v), 0);
	return v.state;
}

/* ---- tests ---- */

static void test_probe_indirect_suspect_dead(void **state)
{
	(void)state;
	int64_t now = 0;
	struct swim *s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 5, now);
	add_peer(s, "c", 3, 5, now);
	drain_events(s);
	struct swim_actions acts;
	swim_actions_init(&acts);

	/* Ping goes out; nobody answers. */
	run_until_act(s, &now, &acts, SWIM_ACT_PING, 2 * S);
	const struct swim_action *p = find_act(&acts, SWIM_ACT_PING);
	char target[SWIM_NAME_MAX + 1], other[SWIM_NAME_MAX + 1];
	snprintf(target, sizeof(target), "%s", p->to_name);
	snprintf(other, sizeof(other), "%s",
		 strcmp(target, "b") == 0 ? "c" : "b");
	uint32_t seq = p->seq;
	int64_t start = now;
	assert_false(p->with_suspect);

	/* After ProbeTimeout: indirect ping via the other member (nack
	 * requested, it speaks protocol 5) and a TCP ping to the target. */
	run_until_act(s, &now, &acts, SWIM_ACT_INDIRECT_PING, start + S);
	assert_int_equal(now, start + 500 * MS);
	assert_int_equal(count_act(&acts, SWIM_ACT_INDIRECT_PING), 1);
	const struct swim_action *ind = find_act(&acts,
						 SWIM_ACT_INDIRECT_PING);
	assert_string_equal(ind->to_name, other);
	assert_string_equal(ind->target_name, target);
	assert_int_equal(ind->seq, seq);
	assert_true(ind->nack);
	const struct swim_action *tcp = find_act(&acts, SWIM_ACT_TCP_PING);
	assert_non_null(tcp);
	assert_string_equal(tcp->to_name, target);
	assert_int_equal(tcp->deadline, start + S);

	/* End of the interval: suspect, and awareness +1 (the nack never
	 * came). Gossip ticks may come first. */
	do {
		now = swim_next_deadline(s);
		assert_true(now <= start + S);
		assert_int_equal(state_of(s, target), SWIM_ALIVE);
		swim_actions_clear(&acts);
		swim_tick(s, now, &acts);
	} while (now < start + S);
	struct swim_event ev;
	assert_true(take_event(s, SWIM_EV_SUSPECT, target, &ev));
	assert_string_equal(ev.from, "a");
	assert_int_equal(state_of(s, target), SWIM_SUSPECT);
	assert_int_equal(swim_awareness(s), 1);
	int64_t suspect_at = now;
	ack_pings(s, &acts, target, now);

	/* Keep the other member healthy and let the timer run out; the
	 * suspect gets the buddy-system ping+suspect. */
	bool saw_buddy = false;
	for (;;) {
		int64_t t = swim_next_deadline(s);
		assert_true(t <= suspect_at + 10 * S);
		now = t;
		swim_actions_clear(&acts);
		swim_tick(s, now, &acts);
		for (size_t i = 0; i < acts.n; i++)
			if (acts.v[i].type == SWIM_ACT_PING &&
			    strcmp(acts.v[i].to_name, target) == 0 &&
			    acts.v[i].with_suspect)
				saw_buddy = true;
		ack_pings(s, &acts, target, now);
		if (state_of(s, target) == SWIM_DEAD)
			break;
	}
	assert_true(take_event(s, SWIM_EV_DEAD, target, &ev));
	/* n = 3: k = 0, so the timeout is min = 4 s * max(1, log10 3). */
	assert_int_equal(now - suspect_at,
			 suspicion_timeout_min(4, 3, S));
	assert_int_equal(now - suspect_at, 4 * S);
	assert_int_equal(ev.confirmations, 0);
	assert_string_equal(ev.from, "a");
	assert_true(saw_buddy);
	assert_int_equal(state_of(s, other), SWIM_ALIVE);

	swim_actions_free(&acts);
	swim_free(s);
}

static void test_tcp_fallback_saves(void **state)
{
	(void)state;
	int64_t now = 0;
	struct swim *s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 5, now);
	add_peer(s, "c", 3, 5, now);
	drain_events(s);
	struct swim_actions acts;
	swim_actions_init(&acts);
	run_until_act(s, &now, &acts, SWIM_ACT_PING, 2 * S);
	int64_t start = now;
	run_until_act(s, &now, &acts, SWIM_ACT_TCP_PING, start + S);
	const struct swim_action *tcp = find_act(&acts, SWIM_ACT_TCP_PING);
	char target[SWIM_NAME_MAX + 1];
	snprintf(target, sizeof(target), "%s", tcp->to_name);
	swim_on_tcp_ping_result(s, tcp->seq, true, now + 10 * MS);
	swim_actions_clear(&acts);
	swim_tick(s, start + S, &acts);
	assert_false(take_event(s, SWIM_EV_SUSPECT, target, NULL));
	assert_int_equal(state_of(s, target), SWIM_ALIVE);
	assert_int_equal(swim_awareness(s), 0);
	swim_actions_free(&acts);
	swim_free(s);
}

static void test_refutation(void **state)
{
	(void)state;
	int64_t now = 10 * S;
	struct swim *s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 5, now);
	add_peer(s, "c", 3, 5, now);
	drain_events(s);

	/* c accuses b. */
	struct swim_msg m = { .type = SWIM_MSG_SUSPECT, .incarnation = 1,
			      .node = "b", .from = "c" };
	assert_int_equal(swim_on_suspect(s, &m, now), 0);
	assert_true(take_event(s, SWIM_EV_SUSPECT, "b", NULL));
	assert_int_equal(swim_next_deadline(s) <= now + 4 * S, 1);

	/* Same incarnation does not clear it; a higher one does. */
	uint8_t vsn[6] = { 1, 5, 2, 0, 0, 0 };
	struct swim_msg a = { .type = SWIM_MSG_ALIVE, .incarnation = 1,
			      .node = "b", .addr = addr_of(2), .vsn = vsn,
			      .vsn_len = 6 };
	assert_int_equal(swim_on_alive(s, &a, now + S), 0);
	assert_int_equal(state_of(s, "b"), SWIM_SUSPECT);
	a.incarnation = 2;
	assert_int_equal(swim_on_alive(s, &a, now + 2 * S), 0);
	assert_true(take_event(s, SWIM_EV_ALIVE, "b", NULL));
	assert_int_equal(state_of(s, "b"), SWIM_ALIVE);

	/* The old timer is gone: nothing dies at +4 s. */
	struct swim_actions acts;
	swim_actions_init(&acts);
	swim_tick(s, now + 4 * S, &acts);
	ack_pings(s, &acts, "", now + 4 * S);
	assert_int_equal(state_of(s, "b"), SWIM_ALIVE);
	assert_false(take_event(s, SWIM_EV_DEAD, "b", NULL));
	now += 5 * S;

	/* Accusations about ourselves are refuted with a higher
	 * incarnation, broadcast as alive, and cost awareness. */
	assert_int_equal(swim_incarnation(s), 1);
	struct swim_msg me = { .type = SWIM_MSG_SUSPECT, .incarnation = 1,
			       .node = "a", .from = "b" };
	assert_int_equal(swim_on_suspect(s, &me, now), 0);
	assert_true(take_event(s, SWIM_EV_REFUTE, "a", NULL));
	assert_int_equal(swim_incarnation(s), 2);
	assert_int_equal(state_of(s, "a"), SWIM_ALIVE);
	int aw = swim_awareness(s);
	assert_true(aw >= 1);

	struct broadcast_batch b;
	broadcast_batch_init(&b);
	assert_int_equal(swim_get_broadcasts(s, 2, 1400, &b), 0);
	bool found = false;
	for (size_t i = 0; i < b.n; i++) {
		struct dec d;
		test_decode(b.items[i].p, b.items[i].len, &d);
		if (strcmp(d.node, "a") == 0) {
			assert_int_equal(d.m.type, SWIM_MSG_ALIVE);
			assert_int_equal(d.m.incarnation, 2);
			found = true;
		}
	}
	assert_true(found);
	broadcast_batch_clear(&b);

	/* dead about us with a higher incarnation: beat it. */
	me.type = SWIM_MSG_DEAD;
	me.incarnation = 5;
	assert_int_equal(swim_on_dead(s, &me, now), 0);
	assert_int_equal(swim_incarnation(s), 6);
	assert_int_equal(state_of(s, "a"), SWIM_ALIVE);
	/* Stale accusations are ignored. */
	me.type = SWIM_MSG_SUSPECT;
	me.incarnation = 3;
	assert_int_equal(swim_on_suspect(s, &me, now), 0);
	assert_int_equal(swim_incarnation(s), 6);
	/* Our own alive echoed back: ignored; with other meta: refuted. */
	struct swim_msg echo = { .type = SWIM_MSG_ALIVE, .incarnation = 6,
				 .node = "a", .addr = addr_of(1), .vsn = vsn,
				 .vsn_len = 6 };
	assert_int_equal(swim_on_alive(s, &echo, now), 0);
	assert_int_equal(swim_incarnation(s), 6);
	echo.meta = (const uint8_t *)"x";
	echo.meta_len = 1;
	assert_int_equal(swim_on_alive(s, &echo, now), 0);
	assert_int_equal(swim_incarnation(s), 7);

	/* dead, then back with a higher incarnation: a join again. */
	struct swim_msg d = { .type = SWIM_MSG_DEAD, .incarnation = 2,
			      .node = "b", .from = "c" };
	drain_events(s);
	assert_int_equal(swim_on_dead(s, &d, now), 0);
	assert_true(take_event(s, SWIM_EV_DEAD, "b", NULL));
	assert_int_equal(swim_on_alive(s, &a, now), 0); /* inc 2: stale */
	assert_int_equal(state_of(s, "b"), SWIM_DEAD);
	a.incarnation = 3;
	assert_int_equal(swim_on_alive(s, &a, now), 0);
	assert_true(take_event(s, SWIM_EV_JOIN, "b", NULL));
	assert_int_equal(state_of(s, "b"), SWIM_ALIVE);

	/* From == Node: a graceful leave. */
	struct swim_msg l = { .type = SWIM_MSG_DEAD, .incarnation = 1,
			      .node = "c", .from = "c" };
	assert_int_equal(swim_on_dead(s, &l, now), 0);
	assert_true(take_event(s, SWIM_EV_LEFT, "c", NULL));
	assert_int_equal(state_of(s, "c"), SWIM_LEFT);

	swim_actions_free(&acts);
	swim_free(s);
}

static void test_confirmations_shorten(void **state)
{
	(void)state;
	int64_t t0 = 50 * S;
	struct swim *s = solo_new("a", 1, 0);
	char name[16];
	for (int i = 1; i < 20; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		add_peer(s, name, (uint8_t)(1 + i), 5, 0);
	}
	assert_int_equal(swim_num_nodes(s), 20);
	drain_events(s);

	struct swim_msg m = { .type = SWIM_MSG_SUSPECT, .incarnation = 1,
			      .node = "p1", .from = "p2" };
	assert_int_equal(swim_on_suspect(s, &m, t0), 0);
	assert_true(take_event(s, SWIM_EV_SUSPECT, "p1", NULL));
	/* The accuser repeating itself is no confirmation. */
	assert_int_equal(swim_on_suspect(s, &m, t0 + S / 2), 0);
	/* n = 20: min 5.204 s, max 31.224 s, k = 2. */
	m.from = "p3";
	assert_int_equal(swim_on_suspect(s, &m, t0 + S), 0);
	/* Confirmations are re-gossiped. */
	struct broadcast_batch b;
	broadcast_batch_init(&b);
	m.from = "p4";
	assert_int_equal(swim_on_suspect(s, &m, t0 + 2 * S), 0);

	struct swim_actions acts;
	swim_actions_init(&acts);
	swim_tick(s, t0 + 5204 * MS - 1, &acts);
	ack_pings(s, &acts, "", t0 + 5204 * MS - 1);
	assert_int_equal(state_of(s, "p1"), SWIM_SUSPECT);
	swim_actions_clear(&acts);
	swim_tick(s, t0 + 5204 * MS, &acts);
	ack_pings(s, &acts, "", t0 + 5204 * MS);
	assert_int_equal(state_of(s, "p1"), SWIM_DEAD);
	struct swim_event ev;
	assert_true(take_event(s, SWIM_EV_DEAD, "p1", &ev));
	assert_int_equal(ev.confirmations, 2);

	/* Without confirmations the same suspicion takes max = 31.224 s;
	 * one confirmation at +1 s brings it to 14.807 s. */
	m.node = "p5";
	m.from = "p2";
	assert_int_equal(swim_on_suspect(s, &m, t0), 0);
	m.node = "p6";
	assert_int_equal(swim_on_suspect(s, &m, t0), 0);
	m.from = "p3";
	assert_int_equal(swim_on_suspect(s, &m, t0 + S), 0);
	/* Our own probes are all answered here: a failed probe of p5/p6
	 * would be a confirmation from "a" and shorten the timers. */
	int64_t at[] = { t0 + 14807 * MS - 1, t0 + 14807 * MS,
			 t0 + 31224 * MS - 1, t0 + 31224 * MS };
	enum swim_state want6[] = { SWIM_SUSPECT, SWIM_DEAD, SWIM_DEAD,
				    SWIM_DEAD };
	enum swim_state want5[] = { SWIM_SUSPECT, SWIM_SUSPECT, SWIM_SUSPECT,
				    SWIM_DEAD };
	for (size_t i = 0; i < 4; i++) {
		swim_actions_clear(&acts);
		swim_tick(s, at[i], &acts);
		ack_pings(s, &acts, "", at[i]);
		assert_int_equal(state_of(s, "p6"), want6[i]);
		assert_int_equal(state_of(s, "p5"), want5[i]);
	}

	broadcast_batch_clear(&b);
	swim_actions_free(&acts);
	swim_free(s);
}

/* Runs one probe that nobody answers; nacks as given. The probe's ping
 * may already be in acts: a failed probe lets the next start at once. */
static int64_t failed_probe(struct swim *s, int64_t *now,
			    struct swim_actions *acts, int nacks)
{
	if (!find_act(acts, SWIM_ACT_PING))
		run_until_act(s, now, acts, SWIM_ACT_PING, *now + 20 * S);
	int64_t start = *now;
	uint32_t seq = find_act(acts, SWIM_ACT_PING)->seq;
	char target[SWIM_NAME_MAX + 1];
	snprintf(target, sizeof(target), "%s",
		 find_act(acts, SWIM_ACT_PING)->to_name);
	int64_t deadline = start + (swim_awareness(s) + 1) * S;
	run_until_act(s, now, acts, SWIM_ACT_INDIRECT_PING, deadline);
	assert_int_equal(*now, start + 500 * MS);
	const struct swim_action *tcp = find_act(acts, SWIM_ACT_TCP_PING);
	assert_non_null(tcp);
	assert_int_equal(tcp->deadline, deadline);
	for (int i = 0; i < nacks; i++)
		swim_on_nack(s, seq, *now + 100 * MS);
	/* The probe window is the awareness-scaled interval. */
	assert_int_equal(swim_next_deadline(s) <= deadline, 1);
	while (*now < deadline) {
		*now = swim_next_deadline(s);
		swim_actions_clear(acts);
		swim_tick(s, *now, acts);
	}
	assert_int_equal(*now, deadline);
	/* The target refutes, so every probe has two alive helpers. */
	struct swim_node_view v;
	assert_int_equal(swim_node_get(s, target, &v), 0);
	assert_int_equal(v.state, SWIM_SUSPECT);
	uint8_t vsn[SWIM_VSN_LEN] = { 1, 5, 2, 0, 0, 0 };
	struct swim_msg m = {
		.type = SWIM_MSG_ALIVE, .incarnation = v.incarnation + 1,
		.node = target, .addr = v.addr, .vsn = vsn,
		.vsn_len = sizeof(vsn),
	};
	assert_int_equal(swim_on_alive(s, &m, *now), 0);
	return start;
}

static void test_awareness(void **state)
{
	(void)state;
	int64_t now = 0;
	struct swim *s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 5, now);
	add_peer(s, "c", 3, 5, now);
	add_peer(s, "d", 4, 5, now);
	struct swim_actions acts;
	swim_actions_init(&acts);

	/* Two nacking helpers, no nack back: +2. */
	failed_probe(s, &now, &acts, 0);
	assert_int_equal(swim_awareness(s), 2);
	/* Both nacks arrive: the helpers are fine, the target is not; no
	 * change. The window was 3 s. */
	failed_probe(s, &now, &acts, 2);
	assert_int_equal(swim_awareness(s), 2);
	/* One of two nacks: +1. */
	failed_probe(s, &now, &acts, 1);
	assert_int_equal(swim_awareness(s), 3);
	/* A probe that gets its ack: -1. */
	if (!find_act(&acts, SWIM_ACT_PING))
		run_until_act(s, &now, &acts, SWIM_ACT_PING, now + 20 * S);
	ack_pings(s, &acts, "", now + 10 * MS);
	assert_int_equal(swim_awareness(s), 2);
	/* Clamped to AwarenessMaxMultiplier - 1. */
	swim_awareness_apply(s, 100);
	assert_int_equal(swim_awareness(s), 7);
	swim_awareness_apply(s, -100);
	assert_int_equal(swim_awareness(s), 0);
	swim_actions_free(&acts);
	swim_free(s);

	/* Helpers too old to nack (protocol 3): every failure is +1. */
	now = 0;
	s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 3, now);
	add_peer(s, "c", 3, 3, now);
	swim_actions_init(&acts);
	failed_probe(s, &now, &acts, 0);
	assert_int_equal(swim_awareness(s), 1);
	swim_actions_free(&acts);
	swim_free(s);
}

static void test_relay(void **state)
{
	(void)state;
	int64_t now = S;
	struct swim *s = solo_new("b", 2, now);
	struct swim_actions acts;
	swim_actions_init(&acts);
	assert_true(swim_ping_accept(s, "b"));
	assert_true(swim_ping_accept(s, ""));
	assert_false(swim_ping_accept(s, "z"));

	struct swim_addr req_addr = addr_of(1);
	struct swim_indirect_req req = { .seq = 77, .target_name = "c",
					 .target = addr_of(3), .nack = true };
	assert_int_equal(swim_on_indirect_ping(s, &req, &req_addr, "a", now,
					       &acts), 0);
	const struct swim_action *p = find_act(&acts, SWIM_ACT_PING);
	assert_non_null(p);
	assert_string_equal(p->to_name, "c");
	uint32_t local = p->seq;
	assert_int_not_equal(local, 77);
	/* The target answers: the requester gets ack{77}. */
	swim_actions_clear(&acts);
	assert_int_equal(swim_on_ack(s, local, now + 10 * MS, &acts), 0);
	const struct swim_action *ack = find_act(&acts, SWIM_ACT_ACK);
	assert_non_null(ack);
	assert_int_equal(ack->seq, 77);
	assert_string_equal(ack->to_name, "a");

	/* No answer: nack{78} after ProbeTimeout, and a late ack is
	 * dropped. */
	req.seq = 78;
	swim_actions_clear(&acts);
	assert_int_equal(swim_on_indirect_ping(s, &req, &req_addr, "a", now,
					       &acts), 0);
	local = find_act(&acts, SWIM_ACT_PING)->seq;
	assert_true(swim_next_deadline(s) <= now + 500 * MS);
	swim_actions_clear(&acts);
	swim_tick(s, now + 500 * MS, &acts);
	const struct swim_action *nack = find_act(&acts, SWIM_ACT_NACK);
	assert_non_null(nack);
	assert_int_equal(nack->seq, 78);
	swim_actions_clear(&acts);
	swim_on_ack(s, local, now + 600 * MS, &acts);
	assert_null(find_act(&acts, SWIM_ACT_ACK));
	swim_actions_free(&acts);
	swim_free(s);
}

static void test_push_pull_merge(void **state)
{
	(void)state;
	int64_t now = S;
	struct swim *s = solo_new("a", 1, now);
	add_peer(s, "b", 2, 5, now);
	add_peer(s, "c", 3, 5, now);
	add_peer(s, "d", 4, 5, now);
	drain_events(s);
	uint8_t vsn[6] = { 1, 5, 2, 0, 0, 0 };
	const uint8_t meta[] = "role=x";
	struct swim_node_view r[] = {
		/* higher incarnation, new meta: taken */
		{ .name = "b", .addr = addr_of(2), .incarnation = 3,
		  .state = SWIM_ALIVE, .meta = meta, .meta_len = 6,
		  .vsn = vsn, .vsn_len = 6 },
		/* remote left: left here */
		{ .name = "c", .addr = addr_of(3), .incarnation = 1,
		  .state = SWIM_LEFT, .vsn = vsn, .vsn_len = 6 },
		/* remote dead: only suspect here */
		{ .name = "d", .addr = addr_of(4), .incarnation = 1,
		  .state = SWIM_DEAD, .vsn = vsn, .vsn_len = 6 },
		/* new alive member */
		{ .name = "e", .addr = addr_of(5), .incarnation = 1,
		  .state = SWIM_ALIVE, .vsn = vsn, .vsn_len = 6 },
		/* incarnation 0 never makes a new node alive */
		{ .name = "f", .addr = addr_of(6), .incarnation = 0,
		  .state = SWIM_ALIVE, .vsn = vsn, .vsn_len = 6 },
		/* unknown dead node: ignored */
		{ .name = "g", .addr = addr_of(7), .incarnation = 4,
		  .state = SWIM_DEAD, .vsn = vsn, .vsn_len = 6 },
		/* the peer thinks we are at 5 with other meta: refute */
		{ .name = "a", .addr = addr_of(1), .incarnation = 5,
		  .state = SWIM_ALIVE, .meta = meta, .meta_len = 6,
		  .vsn = vsn, .vsn_len = 6 },
	};
	assert_int_equal(swim_merge_remote_state(s, r, sizeof(r) / sizeof(r[0]),
						 now), 0);
	struct swim_node_view v;
	assert_int_equal(swim_node_get(s, "b", &v), 0);
	assert_int_equal(v.incarnation, 3);
	assert_int_equal(v.meta_len, 6);
	assert_memory_equal(v.meta, meta, 6);
	assert_int_equal(state_of(s, "c"), SWIM_LEFT);
	assert_int_equal(state_of(s, "d"), SWIM_SUSPECT);
	assert_int_equal(state_of(s, "e"), SWIM_ALIVE);
	assert_int_equal(state_of(s, "f"), SWIM_DEAD);
	assert_int_equal(swim_node_get(s, "g", &v), -ENOENT);
	assert_int_equal(swim_incarnation(s), 6);

	/* Stale alive: lower incarnation does nothing. */
	struct swim_node_view old = { .name = "b", .addr = addr_of(2),
				      .incarnation = 2, .state = SWIM_ALIVE,
				      .vsn = vsn, .vsn_len = 6 };
	assert_int_equal(swim_merge_remote_state(s, &old, 1, now), 0);
	assert_int_equal(swim_node_get(s, "b", &v), 0);
	assert_int_equal(v.incarnation, 3);
	assert_int_equal(v.meta_len, 6);
	/* A left node may come back at a new address. */
	struct swim_node_view back = { .name = "c", .addr = addr_of(33),
				       .incarnation = 2, .state = SWIM_ALIVE,
				       .vsn = vsn, .vsn_len = 6 };
	drain_events(s);
	assert_int_equal(swim_merge_remote_state(s, &back, 1, now), 0);
	assert_true(take_event(s, SWIM_EV_JOIN, "c", NULL));
	/* ... but an alive node may not (name conflict). */
	back.name = "e";
	back.incarnation = 9;
	assert_int_equal(swim_merge_remote_state(s, &back, 1, now), 0);
	assert_true(take_event(s, SWIM_EV_CONFLICT, "e", NULL));
	assert_int_equal(swim_node_get(s, "e", &v), 0);
	assert_int_equal(v.incarnation, 1);

	struct swim_node_view all[16];
	assert_int_equal(swim_local_state(s, all, 16), 6);
	swim_free(s);
}

static void test_broadcast_queue(void **state)
{
	(void)state;
	assert_int_equal(broadcast_retransmit_limit(4, 1), 4);
	assert_int_equal(broadcast_retransmit_limit(4, 2), 4);
	assert_int_equal(broadcast_retransmit_limit(4, 9), 4);
	assert_int_equal(broadcast_retransmit_limit(4, 10), 8);
	assert_int_equal(broadcast_retransmit_limit(4, 100), 12);
	assert_int_equal(broadcast_retransmit_limit(4, 1000), 16);

	struct broadcast_queue *q = broadcast_queue_new(4);
	struct broadcast_batch b;
	broadcast_batch_init(&b);
	uint8_t buf[600];
	memset(buf, 'x', sizeof(buf));

	/* Fewest transmits first, then longest first. */
	assert_int_equal(broadcast_queue_push(q, "a", buf, 10), 0);
	assert_int_equal(broadcast_queue_push(q, "b", buf, 30), 0);
	assert_int_equal(broadcast_queue_push(q, "c", buf, 20), 0);
	assert_int_equal(broadcast_queue_push(q, NULL, buf, 5), 0);
	assert_int_equal(broadcast_queue_push(q, NULL, buf, 0), -EINVAL);
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_int_equal(b.n, 4);
	assert_int_equal(b.items[0].len, 30);
	assert_int_equal(b.items[1].len, 20);
	assert_int_equal(b.items[2].len, 10);
	assert_int_equal(b.items[3].len, 5);
	assert_int_equal(broadcast_queue_transmits(q, "a"), 1);

	/* A new message about "b" replaces the old one, and goes first. */
	assert_int_equal(broadcast_queue_push(q, "b", "new", 3), 0);
	assert_int_equal(broadcast_queue_len(q), 4);
	assert_int_equal(broadcast_queue_transmits(q, "b"), 0);
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_memory_equal(b.items[0].p, "new", 3);

	/* n = 2: limit 4 sends, then gone. "a" has 2 so far. */
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_int_equal(broadcast_queue_transmits(q, "a"), 3);
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_false(broadcast_queue_has(q, "a"));
	assert_false(broadcast_queue_has(q, "c"));
	assert_true(broadcast_queue_has(q, "b")); /* 3 sends so far */
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(broadcast_queue_len(q), 0);
	assert_int_equal(broadcast_queue_get(q, 2, 2, 1400, &b), 0);
	assert_int_equal(b.n, 0);

	/* Packet budget: 100-byte messages with 2 bytes overhead in 210
	 * bytes: two fit; the third waits and goes first next time. */
	assert_int_equal(broadcast_queue_push(q, "x", buf, 100), 0);
	assert_int_equal(broadcast_queue_push(q, "y", buf, 100), 0);
	assert_int_equal(broadcast_queue_push(q, "z", "zz", 2), 0);
	assert_int_equal(broadcast_queue_push(q, "w", buf, 100), 0);
	assert_int_equal(broadcast_queue_get(q, 10, 2, 210, &b), 0);
	/* w, y (newest 100s), then z fills the gap (204 + 4 <= 210). */
	assert_int_equal(b.n, 3);
	assert_int_equal(b.bytes, 202);
	assert_int_equal(broadcast_queue_transmits(q, "x"), 0);
	assert_int_equal(broadcast_queue_get(q, 10, 2, 210, &b), 0);
	assert_int_equal(b.items[0].len, 100);
	assert_int_equal(broadcast_queue_transmits(q, "x"), 1);
	/* Too big for the space left is skipped, not sent truncated. */
	assert_int_equal(broadcast_queue_push(q, "big", buf, 600), 0);
	assert_int_equal(broadcast_queue_get(q, 10, 2, 300, &b), 0);
	for (size_t i = 0; i < b.n; i++)
		assert_true(b.items[i].len < 600);
	assert_int_equal(broadcast_queue_transmits(q, "big"), 0);

	broadcast_queue_prune(q, 2);
	assert_int_equal(broadcast_queue_len(q), 2);
	/* Prune keeps the least-sent. */
	assert_true(broadcast_queue_has(q, "big"));

	broadcast_batch_clear(&b);
	broadcast_queue_free(q);
	broadcast_queue_free(NULL);
}

static void test_leave(void **state)
{
	(void)state;
	struct swim *s = solo_new("a", 1, 0);
	assert_true(swim_leave_done(s)); /* nobody to tell */
	add_peer(s, "b", 2, 5, 0);
	assert_int_equal(swim_leave(s, S), 0);
	assert_int_equal(state_of(s, "a"), SWIM_LEFT);
	assert_false(swim_leave_done(s));
	/* An alive about us after leaving does not bring us back. */
	uint8_t vsn[6] = { 1, 5, 2, 0, 0, 0 };
	struct swim_msg a = { .type = SWIM_MSG_ALIVE, .incarnation = 9,
			      .node = "a", .addr = addr_of(1), .vsn = vsn,
			      .vsn_len = 6 };
	assert_int_equal(swim_on_alive(s, &a, S), 0);
	assert_int_equal(state_of(s, "a"), SWIM_LEFT);
	struct broadcast_batch b;
	broadcast_batch_init(&b);
	for (int i = 0; i < 4; i++)
		swim_get_broadcasts(s, 2, 1400, &b);
	assert_true(swim_leave_done(s));
	broadcast_batch_clear(&b);
	swim_free(s);
}

/* ---- three members over an in-memory network ---- */

#define SIM_N 3
#define SIM_LOG 512

struct sim_ev {
	int64_t t;
	int at;                 /* who saw it */
	struct swim_event e;
};

static struct {
	struct swim *s[SIM_N];
	char name[SIM_N][8];
	bool down[SIM_N];
	int64_t now;
	struct sim_ev log[SIM_LOG];
	int n_log;
} sim;

static int sim_idx(const struct swim_addr *a)
{
	int i = a->ip[3] - 1;
	return a->len == 4 && i >= 0 && i < SIM_N ? i : -1;
}

static void sim_deliver_batch(int to, const struct broadcast_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct dec d;
		test_decode(b->items[i].p, b->items[i].len, &d);
		assert_int_equal(swim_on_msg(sim.s[to], &d.m, sim.now), 0);
	}
}

/* Broadcasts ride along every ping and ack, as in memberlist. */
static void sim_piggyback(int from, int to)
{
	struct broadcast_batch b;
	broadcast_batch_init(&b);
	swim_get_broadcasts(sim.s[from], 2, 1398, &b);
	sim_deliver_batch(to, &b);
	broadcast_batch_clear(&b);
}

static void sim_run(int from, struct swim_actions *acts)
{
	for (size_t i = 0; i < acts->n; i++) {
		struct swim_action *a = &acts->v[i];
		int to = sim_idx(&a->to);
		if (to < 0 || sim.down[from] || sim.down[to])
			continue;
		struct swim_actions out;
		swim_actions_init(&out);
		switch (a->type) {
		case SWIM_ACT_PING:
			sim_piggyback(from, to);
			if (a->with_suspect) {
				struct swim_msg m = {
					.type = SWIM_MSG_SUSPECT,
					.incarnation = a->suspect_inc,
					.node = a->to_name,
					.from = sim.name[from],
				};
				swim_on_suspect(sim.s[to], &m, sim.now);
			}
			if (swim_ping_accept(sim.s[to], a->to_name)) {
				sim_piggyback(to, from);
				swim_on_ack(sim.s[from], a->seq, sim.now,
					    &out);
				sim_run(from, &out);
			}
			break;
		case SWIM_ACT_INDIRECT_PING: {
			struct swim_indirect_req r = {
				.seq = a->seq, .target_name = a->target_name,
				.target = a->target, .nack = a->nack,
			};
			struct swim_addr me = addr_of((uint8_t)(from + 1));
			swim_on_indirect_ping(sim.s[to], &r, &me,
					      sim.name[from], sim.now, &out);
			sim_run(to, &out);
			break;
		}
		case SWIM_ACT_ACK:
			swim_on_ack(sim.s[to], a->seq, sim.now, &out);
			sim_run(to, &out);
			break;
		case SWIM_ACT_NACK:
			swim_on_nack(sim.s[to], a->seq, sim.now);
			break;
		case SWIM_ACT_TCP_PING:
			swim_on_tcp_ping_result(sim.s[from], a->seq, true,
						sim.now);
			break;
		case SWIM_ACT_GOSSIP:
			sim_deliver_batch(to, &a->batch);
			break;
		case SWIM_ACT_PUSH_PULL: {
			struct swim_node_view v[SIM_N * 4];
			size_t n = swim_local_state(sim.s[from], v, SIM_N * 4);
			assert_true(n <= SIM_N * 4);
			swim_merge_remote_state(sim.s[to], v, n, sim.now);
			n = swim_local_state(sim.s[to], v, SIM_N * 4);
			swim_merge_remote_state(sim.s[from], v, n, sim.now);
			break;
		}
		}
		swim_actions_free(&out);
	}
}

static void sim_collect(void)
{
	for (int i = 0; i < SIM_N; i++) {
		struct swim_event e;
		while (swim_next_event(sim.s[i], &e)) {
			if (sim.n_log < SIM_LOG) {
				sim.log[sim.n_log].t = sim.now;
				sim.log[sim.n_log].at = i;
				sim.log[sim.n_log].e = e;
				sim.n_log++;
			}
		}
	}
}

static void sim_until(int64_t until)
{
	struct swim_actions acts;
	swim_actions_init(&acts);
	for (;;) {
		int64_t t = INT64_MAX;
		for (int i = 0; i < SIM_N; i++)
			if (!sim.down[i] && swim_next_deadline(sim.s[i]) < t)
				t = swim_next_deadline(sim.s[i]);
		if (t > until)
			break;
		if (t > sim.now)
			sim.now = t;
		for (int i = 0; i < SIM_N; i++) {
			if (sim.down[i] || swim_next_deadline(sim.s[i]) > sim.now)
				continue;
			swim_actions_clear(&acts);
			swim_tick(sim.s[i], sim.now, &acts);
			sim_run(i, &acts);
		}
		sim_collect();
	}
	sim.now = until;
	swim_actions_free(&acts);
}

/* First logged event of this type about name seen by `at` (-1: anyone)
 * at or after t; NULL if none. */
static const struct sim_ev *sim_find(int at, enum swim_event_type type,
				     const char *name, int64_t t)
{
	for (int i = 0; i < sim.n_log; i++) {
		const struct sim_ev *e = &sim.log[i];
		if (e->t >= t && (at < 0 || e->at == at) &&
		    e->e.type == type && strcmp(e->e.name, name) == 0)
			return e;
	}
	return NULL;
}

static void test_three_members(void **state)
{
	(void)state;
	memset(&sim, 0, sizeof(sim));
	for (int i = 0; i < SIM_N; i++) {
		snprintf(sim.name[i], sizeof(sim.name[i]), "%c", 'a' + i);
		sim.s[i] = solo_new(sim.name[i], (uint8_t)(i + 1), 0);
	}
	/* b and c join through a. */
	struct swim_actions acts;
	swim_actions_init(&acts);
	for (int i = 1; i < SIM_N; i++) {
		struct swim_addr seed = addr_of(1);
		swim_actions_clear(&acts);
		assert_int_equal(swim_join(sim.s[i], NULL, &seed, 0, &acts),
				 0);
		assert_true(acts.v[0].join);
		sim_run(i, &acts);
	}
	swim_actions_free(&acts);
	sim_until(5 * S);
	for (int i = 0; i < SIM_N; i++)
		assert_int_equal(swim_num_alive(sim.s[i]), 3);

	/* Cut c off until someone suspects it, then let it back: it learns
	 * the rumour (buddy ping or gossip), refutes, nobody declares it
	 * dead. */
	sim.down[2] = true;
	int64_t cut = sim.now;
	while (!sim_find(-1, SWIM_EV_SUSPECT, "c", cut)) {
		sim_until(sim.now + 10 * MS);
		assert_true(sim.now < cut + 10 * S);
	}
	sim.down[2] = false;
	int64_t back = sim.now;
	sim_until(back + 8 * S);
	assert_null(sim_find(-1, SWIM_EV_DEAD, "c", cut));
	assert_non_null(sim_find(2, SWIM_EV_REFUTE, "c", back));
	assert_true(swim_incarnation(sim.s[2]) >= 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(state_of(sim.s[i], "c"), SWIM_ALIVE);
		struct swim_node_view v;
		swim_node_get(sim.s[i], "c", &v);
		assert_int_equal(v.incarnation, swim_incarnation(sim.s[2]));
	}

	/* Now c dies for good: both survivors mark it dead; whoever did it
	 * by its own timer took exactly the suspicion timeout. */
	sim.down[2] = true;
	int64_t kill = sim.now;
	sim_until(kill + 12 * S);
	bool own_timer = false;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(state_of(sim.s[i], "c"), SWIM_DEAD);
		const struct sim_ev *d = sim_find(i, SWIM_EV_DEAD, "c", kill);
		const struct sim_ev *su = sim_find(i, SWIM_EV_SUSPECT, "c",
						   kill);
		assert_non_null(d);
		assert_non_null(su);
		if (strcmp(d->e.from, sim.name[i]) == 0) {
			own_timer = true;
			assert_int_equal(d->t - su->t, 4 * S);
		}
		/* probe phase (<= awareness-scaled interval + one tick) plus
		 * 4 s of suspicion */
		assert_true(d->t - kill <= 4 * S + 8 * S);
		assert_int_equal(state_of(sim.s[i], sim.name[1 - i]),
				 SWIM_ALIVE);
	}
	assert_true(own_timer);
	assert_null(sim_find(-1, SWIM_EV_DEAD, "a", 0));
	assert_null(sim_find(-1, SWIM_EV_DEAD, "b", 0));

	for (int i = 0; i < SIM_N; i++)
		swim_free(sim.s[i]);
}

static void test_new_args(void **state)
{
	(void)state;
	struct swim_config cfg;
	swim_config_lan(&cfg);
	assert_null(swim_new(&cfg, "a", 0)); /* no encoder */
	cfg.encode = test_encode;
	assert_null(swim_new(&cfg, "", 0));
	struct swim *s = swim_new(&cfg, "a", 0);
	assert_non_null(s);
	assert_int_equal(swim_incarnation(s), 1);
	assert_int_equal(swim_num_nodes(s), 1);
	/* First probe and gossip ticks fall within one interval. */
	assert_true(swim_next_deadline(s) < S);
	uint8_t vsn[6] = { 1, 5, 2, 0, 0, 0 };
	struct swim_msg bad = { .type = SWIM_MSG_ALIVE, .incarnation = 1,
				.node = "", .vsn = vsn, .vsn_len = 6 };
	assert_int_equal(swim_on_alive(s, &bad, 0), -EINVAL);
	/* Bad protocol range: dropped. */
	uint8_t badvsn[6] = { 3, 2, 2, 0, 0, 0 };
	struct swim_msg m = { .type = SWIM_MSG_ALIVE, .incarnation = 1,
			      .node = "b", .vsn = badvsn, .vsn_len = 6 };
	assert_int_equal(swim_on_alive(s, &m, 0), 0);
	struct swim_node_view v;
	assert_int_equal(swim_node_get(s, "b", &v), -ENOENT);
	assert_int_equal(swim_update_meta(s, (const uint8_t *)"m", 1, 0), 0);
	assert_int_equal(swim_incarnation(s), 2);
	swim_free(s);
	swim_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_args),
		cmocka_unit_test(test_probe_indirect_suspect_dead),
		cmocka_unit_test(test_tcp_fallback_saves),
		cmocka_unit_test(test_refutation),
		cmocka_unit_test(test_confirmations_shorten),
		cmocka_unit_test(test_awareness),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_push_pull_merge),
		cmocka_unit_test(test_broadcast_queue),
		cmocka_unit_test(test_leave),
		cmocka_unit_test(test_three_members),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

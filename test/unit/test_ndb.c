/* netd's replicated tables (ndb.c): Lamport merge, tombstones and their
 * gc, visibility (joined networks, dead owners) and its exact change
 * callbacks, relays, self-correction after a restart, malformed input, and
 * two instances converging through bulk states. Events are built here
 * with protobuf-c as a remote node would send them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ndb.h"
#include "netd.pb-c.h"

#define S 1000000000LL
#define T0 (1000 * S)
#define TTL (60 * S)
#define MAXLOG 64

struct change {
	enum ndb_change what;
	char net[64], table[32], key[64], owner[32], value[64];
	uint64_t ltime;
};

struct sent {
	char name[128];
	uint8_t *msg;
	size_t len;
};

/* One ndb and everything it reported. */
struct peer {
	struct ndb *db;
	struct change ch[MAXLOG];
	size_t nch;
	struct sent bc[MAXLOG];
	size_t nbc;
};

static void cpy(char *dst, size_t n, const char *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = 0;
}

static void on_change(void *arg, enum ndb_change what, const struct ndb_entry *e)
{
	struct peer *p = arg;
	assert_true(p->nch < MAXLOG);
	struct change *c = &p->ch[p->nch++];
	c->what = what;
	cpy(c->net, sizeof(c->net), e->network_id, strlen(e->network_id));
	cpy(c->table, sizeof(c->table), e->table, strlen(e->table));
	cpy(c->key, sizeof(c->key), e->key, strlen(e->key));
	cpy(c->owner, sizeof(c->owner), e->owner, strlen(e->owner));
	/* every callback, DEL included, carries the record */
	assert_non_null(e->value);
	assert_true(e->value_len > 0);
	cpy(c->value, sizeof(c->value), (const char *)e->value, e->value_len);
	c->ltime = e->ltime;
}

static void on_broadcast(void *arg, const char *name, const uint8_t *msg, size_t len)
{
	struct peer *p = arg;
	assert_true(p->nbc < MAXLOG);
	struct sent *s = &p->bc[p->nbc++];
	cpy(s->name, sizeof(s->name), name, strlen(name));
	s->msg = malloc(len);
	memcpy(s->msg, msg, len);
	s->len = len;
}

static void peer_clear(struct peer *p)
{
	for (size_t i = 0; i < p->nbc; i++)
		free(p->bc[i].msg);
	p->nbc = 0;
	p->nch = 0;
}

static struct peer *peer_new(const char *self)
{
	struct peer *p = calloc(1, sizeof(*p));
	struct ndb_config cfg = {
		.self = self,
		.tombstone_ttl = TTL,
		.on_change = on_change,
		.broadcast = on_broadcast,
		.arg = p,
	};
	p->db = ndb_new(&cfg);
	assert_non_null(p->db);
	return p;
}

static void peer_free(struct peer *p)
{
	if (!p)
		return;
	peer_clear(p);
	ndb_free(p->db);
	free(p);
}

/* ---- message builders ---- */

static uint8_t *pack(uint8_t type, const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);
	buf[0] = type;
	protobuf_c_message_pack(m, buf + 1);
	*len = n + 1;
	return buf;
}

static uint8_t *tev(uint64_t ltime, const char *node, const char *net, const char *key,
		    const char *value, size_t *len)
{
	Swarm__NdbTableEvent ev = SWARM__NDB_TABLE_EVENT__INIT;
	ev.ltime = ltime;
	ev.node = (char *)node;
	ev.network_id = (char *)net;
	ev.table = (char *)NDB_TABLE_ENDPOINTS;
	ev.key = (char *)key;
	if (value) {
		ev.value.data = (uint8_t *)value;
		ev.value.len = strlen(value);
	} else {
		ev.deleted = true;
	}
	return pack(NDB_MSG_TABLE, &ev.base, len);
}

static uint8_t *nev(uint64_t ltime, const char *node, const char *net, bool leave, size_t *len)
{
	Swarm__NdbNetworkEvent ev = SWARM__NDB_NETWORK_EVENT__INIT;
	ev.ltime = ltime;
	ev.node = (char *)node;
	ev.network_id = (char *)net;
	ev.leave = leave;
	return pack(NDB_MSG_NETWORK, &ev.base, len);
}

/* Delivers a table event (value NULL: delete); returns ndb_on_message's. */
static int send_t(struct peer *p, uint64_t ltime, const char *node, const char *net,
		  const char *key, const char *value)
{
	size_t len;
	uint8_t *m = tev(ltime, node, net, key, value, &len);
	int r = ndb_on_message(p->db, m, len, T0);
	free(m);
	return r;
}

static int send_n(struct peer *p, uint64_t ltime, const char *node, const char *net, bool leave)
{
	size_t len;
	uint8_t *m = nev(ltime, node, net, leave, &len);
	int r = ndb_on_message(p->db, m, len, T0);
	free(m);
	return r;
}

static int put(struct peer *p, const char *net, const char *key, const char *value)
{
	return ndb_put(p->db, net, NDB_TABLE_ENDPOINTS, key, (const uint8_t *)value,
		       strlen(value), T0);
}

/* Every broadcast of `from` handed to `to`, in order. */
static void deliver_all(struct peer *from, struct peer *to)
{
	for (size_t i = 0; i < from->nbc; i++)
		ndb_on_message(to->db, from->bc[i].msg, from->bc[i].len, T0);
}

static Swarm__NdbTableEvent *sent_table(const struct sent *s)
{
	assert_int_equal(s->msg[0], NDB_MSG_TABLE);
	Swarm__NdbTableEvent *ev = swarm__ndb_table_event__unpack(NULL, s->len - 1, s->msg + 1);
	assert_non_null(ev);
	return ev;
}

static Swarm__NdbNetworkEvent *sent_network(const struct sent *s)
{
	assert_int_equal(s->msg[0], NDB_MSG_NETWORK);
	Swarm__NdbNetworkEvent *ev = swarm__ndb_network_event__unpack(NULL, s->len - 1, s->msg + 1);
	assert_non_null(ev);
	return ev;
}

static size_t count(const struct peer *p, enum ndb_change what)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nch; i++)
		n += p->ch[i].what == what;
	return n;
}

static const struct change *find_change(const struct peer *p, enum ndb_change what, const char *key)
{
	for (size_t i = 0; i < p->nch; i++)
		if (p->ch[i].what == what && !strcmp(p->ch[i].key, key))
			return &p->ch[i];
	return NULL;
}

static size_t visible(const struct peer *p, const char *net)
{
	return ndb_foreach(p->db, net, NULL, NULL, NULL);
}

struct lookup {
	const char *key;
	char value[64];
	char owner[32];
	int found;
};

static void lookup_fn(void *arg, const struct ndb_entry *e)
{
	struct lookup *l = arg;
	if (strcmp(e->key, l->key) != 0)
		return;
	l->found++;
	cpy(l->value, sizeof(l->value), (const char *)e->value, e->value_len);
	cpy(l->owner, sizeof(l->owner), e->owner, strlen(e->owner));
}

/* The visible value of key on net, "" when not visible. */
static const char *value_of(const struct peer *p, const char *net, const char *key)
{
	static struct lookup l;
	memset(&l, 0, sizeof(l));
	l.key = key;
	ndb_foreach(p->db, net, NDB_TABLE_ENDPOINTS, lookup_fn, &l);
	return l.found ? l.value : "";
}

/* ---- tests ---- */

static void test_local_writes(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");

	assert_int_equal(ndb_put(a->db, "", "t", "k", (const uint8_t *)"v", 1, T0), -EINVAL);
	assert_int_equal(ndb_put(a->db, "n", "t", "k", (const uint8_t *)"v", 0, T0), -EINVAL);
	assert_int_equal(ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "k1", T0), -ENOENT);
	assert_int_equal(a->nbc, 0);

	/* not joined: stored and gossiped, but invisible */
	assert_int_equal(put(a, "n1", "k1", "v1"), 0);
	assert_int_equal(a->nch, 0);
	assert_int_equal(a->nbc, 1);
	assert_string_equal(a->bc[0].name, "t/n1/endpoints/k1");
	Swarm__NdbTableEvent *ev = sent_table(&a->bc[0]);
	assert_int_equal(ev->ltime, 1);
	assert_string_equal(ev->node, "A");
	assert_false(ev->deleted);
	assert_int_equal(ev->value.len, 2);
	swarm__ndb_table_event__free_unpacked(ev, NULL);
	assert_int_equal(visible(a, "n1"), 0);

	/* join: ADD for what is there; idempotent */
	assert_int_equal(ndb_join_network(a->db, "n1", T0), 0);
	assert_true(ndb_on_network(a->db, "n1"));
	assert_int_equal(a->nch, 1);
	assert_int_equal(a->ch[0].what, NDB_ADD);
	assert_string_equal(a->ch[0].value, "v1");
	assert_int_equal(a->nbc, 2);
	assert_string_equal(a->bc[1].name, "n/A/n1");
	assert_int_equal(ndb_join_network(a->db, "n1", T0), 0);
	assert_int_equal(a->nbc, 2);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 1);

	/* same value: nothing; new value: UPDATE */
	assert_int_equal(put(a, "n1", "k1", "v1"), 0);
	assert_int_equal(a->nbc, 2);
	assert_int_equal(put(a, "n1", "k1", "v2"), 0);
	assert_int_equal(a->nbc, 3);
	assert_int_equal(a->nch, 2);
	assert_int_equal(a->ch[1].what, NDB_UPDATE);
	assert_string_equal(value_of(a, "n1", "k1"), "v2");

	/* delete: DEL with the old value, tombstone, then ENOENT */
	assert_int_equal(ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "k1", T0), 0);
	assert_int_equal(a->nch, 3);
	assert_int_equal(a->ch[2].what, NDB_DEL);
	assert_string_equal(a->ch[2].value, "v2");
	ev = sent_table(&a->bc[3]);
	assert_true(ev->deleted);
	assert_int_equal(ev->value.len, 0);
	assert_int_equal(ev->ltime, 3);
	swarm__ndb_table_event__free_unpacked(ev, NULL);
	assert_int_equal(ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "k1", T0), -ENOENT);

	struct ndb_stats st;
	ndb_get_stats(a->db, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(ndb_table_clock(a->db), 3);
	assert_int_equal(ndb_network_clock(a->db), 1);
	peer_free(a);
}

static void test_lamport_merge(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	ndb_join_network(a->db, "n1", T0);
	peer_clear(a);

	assert_int_equal(send_t(a, 5, "B", "n1", "k", "five"), 1);
	assert_int_equal(a->nch, 1);
	assert_int_equal(a->ch[0].what, NDB_ADD);
	assert_string_equal(a->ch[0].owner, "B");
	assert_int_equal(a->ch[0].ltime, 5);

	/* older and equal times lose, whatever they say */
	assert_int_equal(send_t(a, 3, "B", "n1", "k", "three"), 0);
	assert_int_equal(send_t(a, 5, "B", "n1", "k", "other"), 0);
	assert_int_equal(send_t(a, 4, "B", "n1", "k", NULL), 0);
	assert_string_equal(value_of(a, "n1", "k"), "five");
	assert_int_equal(a->nch, 1);

	/* newer wins */
	assert_int_equal(send_t(a, 7, "B", "n1", "k", "seven"), 1);
	assert_int_equal(a->nch, 2);
	assert_int_equal(a->ch[1].what, NDB_UPDATE);
	assert_string_equal(value_of(a, "n1", "k"), "seven");
	/* a newer event with the same value: applied, no callback */
	assert_int_equal(send_t(a, 8, "B", "n1", "k", "seven"), 1);
	assert_int_equal(a->nch, 2);

	/* delete, then an older create cannot revive it */
	assert_int_equal(send_t(a, 9, "B", "n1", "k", NULL), 1);
	assert_int_equal(a->nch, 3);
	assert_int_equal(a->ch[2].what, NDB_DEL);
	assert_string_equal(a->ch[2].value, "seven");
	assert_int_equal(send_t(a, 6, "B", "n1", "k", "six"), 0);
	assert_string_equal(value_of(a, "n1", "k"), "");
	/* a newer create does */
	assert_int_equal(send_t(a, 10, "C", "n1", "k", "ten"), 1);
	assert_int_equal(a->ch[3].what, NDB_ADD);
	assert_string_equal(a->ch[3].owner, "C");

	struct ndb_stats st;
	ndb_get_stats(a->db, &st);
	assert_int_equal(st.applied, 5);
	assert_int_equal(st.stale, 4);
	assert_int_equal(st.bad, 0);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.tombstones, 0);

	/* memberships: the same rules on the network clock */
	assert_int_equal(send_n(a, 4, "B", "n1", false), 1);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 2);
	assert_int_equal(send_n(a, 4, "B", "n1", true), 0);
	assert_int_equal(send_n(a, 3, "B", "n1", true), 0);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 2);
	assert_int_equal(send_n(a, 6, "B", "n1", true), 1);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 1);
	assert_int_equal(send_n(a, 7, "B", "n1", true), 1);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 1);
	/* a remote leave changes no entry by itself */
	assert_int_equal(a->nch, 4);
	peer_free(a);
}

static void test_clock_witness(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	assert_int_equal(send_t(a, 100, "B", "n1", "k", "v"), 1);
	assert_int_equal(ndb_table_clock(a->db), 100);
	assert_int_equal(send_n(a, 40, "B", "n1", false), 1);
	assert_int_equal(ndb_network_clock(a->db), 40);
	/* stale times are witnessed too */
	assert_int_equal(send_t(a, 100, "B", "n1", "k", "w"), 0);
	assert_int_equal(send_t(a, 120, "B", "n2", "x", "v"), 1);
	assert_int_equal(send_t(a, 110, "B", "n2", "x", "w"), 0);
	assert_int_equal(ndb_table_clock(a->db), 120);
	peer_clear(a);

	/* our next writes come after everything seen */
	assert_int_equal(put(a, "n1", "mine", "v"), 0);
	Swarm__NdbTableEvent *t = sent_table(&a->bc[0]);
	assert_int_equal(t->ltime, 121);
	swarm__ndb_table_event__free_unpacked(t, NULL);
	assert_int_equal(ndb_join_network(a->db, "n1", T0), 0);
	Swarm__NdbNetworkEvent *n = sent_network(&a->bc[1]);
	assert_int_equal(n->ltime, 41);
	assert_false(n->leave);
	swarm__ndb_network_event__free_unpacked(n, NULL);

	/* resume keeps the larger of saved and current */
	ndb_resume_clocks(a->db, 10, 500);
	assert_int_equal(ndb_network_clock(a->db), 41);
	assert_int_equal(ndb_table_clock(a->db), 500);
	assert_int_equal(put(a, "n1", "mine", "w"), 0);
	t = sent_table(&a->bc[2]);
	assert_int_equal(t->ltime, 501);
	swarm__ndb_table_event__free_unpacked(t, NULL);
	peer_free(a);
}

static void test_tombstone_and_gc(void **state)
{
	(void)state;
	struct peer *a = peer_new("A"), *b = peer_new("B"), *c = peer_new("C");
	ndb_join_network(c->db, "n1", T0);
	ndb_join_network(a->db, "n1", T0);
	assert_int_equal(put(a, "n1", "k", "v"), 0);
	deliver_all(a, b);

	/* B's state, taken while it still holds k */
	uint8_t *old;
	size_t oldlen;
	assert_int_equal(ndb_bulk(b->db, &old, &oldlen), 0);
	assert_int_equal(old[0], NDB_MSG_BULK);

	/* A deletes; C hears of k only through the delete */
	peer_clear(a);
	assert_int_equal(ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "k", T0), 0);
	deliver_all(a, c);
	assert_int_equal(c->nch, 0);
	struct ndb_stats st;
	ndb_get_stats(c->db, &st);
	assert_int_equal(st.tombstones, 1);

	/* the late bulk state cannot bring k back */
	assert_int_equal(ndb_merge_bulk(c->db, old, oldlen, T0 + S), 0);
	assert_int_equal(c->nch, 0);
	assert_string_equal(value_of(c, "n1", "k"), "");
	ndb_get_stats(c->db, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.tombstones, 1);
	/* tombstones travel in bulk states: B learns the delete from C's */
	uint8_t *cb;
	size_t cblen;
	assert_int_equal(ndb_bulk(c->db, &cb, &cblen), 0);
	assert_int_equal(ndb_merge_bulk(b->db, cb, cblen, T0), 0);
	free(cb);
	ndb_get_stats(b->db, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.tombstones, 1);

	/* kept until the TTL, dropped after */
	ndb_gc(c->db, T0 + TTL - 1);
	ndb_get_stats(c->db, &st);
	assert_int_equal(st.tombstones, 1);
	ndb_gc(c->db, T0 + TTL + 1);
	ndb_get_stats(c->db, &st);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(c->nch, 0);
	/* (which is why the TTL must outlast any late state) */
	assert_int_equal(ndb_merge_bulk(c->db, old, oldlen, T0 + TTL + 2), 0);
	assert_string_equal(value_of(c, "n1", "k"), "v");
	assert_int_equal(c->nch, 1);
	assert_int_equal(c->ch[0].what, NDB_ADD);

	/* gc counts from when the tombstone was made here */
	ndb_gc(a->db, T0 + TTL + 1);
	ndb_get_stats(a->db, &st);
	assert_int_equal(st.tombstones, 0);

	/* a network left with nothing in it goes too */
	assert_int_equal(send_t(c, 3, "D", "n7", "d", NULL), 1);
	assert_int_equal(send_n(c, 3, "D", "n7", true), 1);
	ndb_gc(c->db, T0 + TTL + 1);
	assert_int_equal(ndb_network_nodes(c->db, "n7", NULL, NULL), 0);
	ndb_get_stats(c->db, &st);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(send_t(c, 2, "D", "n7", "d", "back"), 1);
	free(old);
	peer_free(a);
	peer_free(b);
	peer_free(c);
}

static void test_visibility_joined_networks(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	assert_int_equal(ndb_join_network(a->db, "n1", T0), 0);
	assert_int_equal(put(a, "n2", "mine", "m"), 0); /* not joined n2 either */
	peer_clear(a);

	/* events of a network we are not on: kept and relayed, never shown */
	assert_int_equal(send_t(a, 1, "B", "n2", "b1", "x1"), 1);
	assert_int_equal(send_t(a, 2, "B", "n2", "b2", "x2"), 1);
	assert_int_equal(send_t(a, 3, "B", "n2", "b3", "x3"), 1);
	assert_int_equal(send_t(a, 4, "B", "n2", "b3", NULL), 1);
	assert_int_equal(send_t(a, 5, "B", "n1", "c1", "y1"), 1);
	assert_int_equal(a->nch, 1);
	assert_int_equal(a->ch[0].what, NDB_ADD);
	assert_string_equal(a->ch[0].net, "n1");
	assert_int_equal(a->nbc, 5);
	assert_int_equal(visible(a, "n2"), 0);
	assert_int_equal(visible(a, NULL), 1);
	assert_false(ndb_on_network(a->db, "n2"));

	/* joining shows them: one ADD per live entry, ours included */
	peer_clear(a);
	assert_int_equal(ndb_join_network(a->db, "n2", T0), 0);
	assert_int_equal(a->nch, 3);
	assert_int_equal(count(a, NDB_ADD), 3);
	assert_non_null(find_change(a, NDB_ADD, "b1"));
	assert_non_null(find_change(a, NDB_ADD, "b2"));
	assert_non_null(find_change(a, NDB_ADD, "mine"));
	assert_int_equal(visible(a, "n2"), 3);
	assert_int_equal(visible(a, NULL), 4);
	assert_int_equal(ndb_foreach(a->db, NULL, "other-table", NULL, NULL), 0);
	assert_int_equal(send_n(a, 9, "B", "n2", false), 1);
	assert_int_equal(ndb_network_nodes(a->db, "n2", NULL, NULL), 2);

	/* leaving hides everything and deletes our own entries */
	peer_clear(a);
	assert_int_equal(ndb_leave_network(a->db, "n2", T0), 0);
	assert_false(ndb_on_network(a->db, "n2"));
	assert_int_equal(a->nch, 3);
	assert_int_equal(count(a, NDB_DEL), 3);
	assert_int_equal(visible(a, "n2"), 0);
	assert_int_equal(ndb_network_nodes(a->db, "n2", NULL, NULL), 1);
	/* a tombstone for "mine", then the leave */
	assert_int_equal(a->nbc, 2);
	Swarm__NdbTableEvent *t = sent_table(&a->bc[0]);
	assert_string_equal(t->key, "mine");
	assert_true(t->deleted);
	swarm__ndb_table_event__free_unpacked(t, NULL);
	Swarm__NdbNetworkEvent *n = sent_network(&a->bc[1]);
	assert_true(n->leave);
	assert_string_equal(n->node, "A");
	swarm__ndb_network_event__free_unpacked(n, NULL);
	assert_int_equal(ndb_leave_network(a->db, "n2", T0), 0);
	assert_int_equal(a->nbc, 2);
	assert_int_equal(ndb_del(a->db, "n2", NDB_TABLE_ENDPOINTS, "mine", T0), -ENOENT);

	/* still kept while away: joining again shows B's entries again */
	peer_clear(a);
	assert_int_equal(send_t(a, 10, "B", "n2", "b4", "x4"), 1);
	assert_int_equal(a->nch, 0);
	assert_int_equal(ndb_join_network(a->db, "n2", T0), 0);
	assert_int_equal(count(a, NDB_ADD), 3);
	assert_null(find_change(a, NDB_ADD, "mine"));

	/* the leave record is gc'd after the TTL, a joined one never */
	assert_int_equal(ndb_leave_network(a->db, "n2", T0), 0);
	ndb_gc(a->db, T0 + TTL + 1);
	assert_int_equal(ndb_network_nodes(a->db, "n2", NULL, NULL), 1);
	assert_true(ndb_on_network(a->db, "n1"));
	peer_free(a);
}

static void test_dead_alive_forget(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	ndb_join_network(a->db, "n1", T0);
	put(a, "n1", "mine", "m");
	send_t(a, 10, "X", "n1", "x1", "v1");
	send_t(a, 11, "X", "n1", "x2", "v2");
	send_t(a, 12, "X", "n1", "x3", NULL);
	send_t(a, 13, "X", "n2", "x4", "v4"); /* not joined */
	send_t(a, 14, "Y", "n1", "y1", "w1");
	send_n(a, 5, "X", "n1", false);
	peer_clear(a);

	ndb_node_dead(a->db, "X");
	assert_int_equal(a->nch, 2);
	assert_int_equal(count(a, NDB_DEL), 2);
	assert_non_null(find_change(a, NDB_DEL, "x1"));
	assert_non_null(find_change(a, NDB_DEL, "x2"));
	assert_int_equal(visible(a, "n1"), 2);
	ndb_node_dead(a->db, "X"); /* again: nothing */
	assert_int_equal(a->nch, 2);

	/* a dead node's events are kept, hidden */
	assert_int_equal(send_t(a, 20, "X", "n1", "x5", "v5"), 1);
	assert_int_equal(send_t(a, 21, "X", "n1", "x1", "v1b"), 1);
	assert_int_equal(a->nch, 2);

	peer_clear(a);
	ndb_node_alive(a->db, "X");
	assert_int_equal(a->nch, 3);
	assert_int_equal(count(a, NDB_ADD), 3);
	assert_string_equal(find_change(a, NDB_ADD, "x1")->value, "v1b");
	assert_int_equal(visible(a, "n1"), 5);
	ndb_node_alive(a->db, "X"); /* again: nothing */
	assert_int_equal(a->nch, 3);

	/* we never hide ourselves */
	ndb_node_dead(a->db, "A");
	assert_int_equal(a->nch, 3);

	/* forget: DEL for the shown, everything of X dropped */
	peer_clear(a);
	ndb_node_forget(a->db, "X");
	assert_int_equal(count(a, NDB_DEL), 3);
	assert_int_equal(a->nch, 3);
	struct ndb_stats st;
	ndb_get_stats(a->db, &st);
	assert_int_equal(st.entries, 2); /* mine, y1 */
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 1);
	/* a late event of the reaped node stays hidden until it is back */
	assert_int_equal(send_t(a, 9, "X", "n1", "x1", "v1"), 1);
	assert_int_equal(a->nch, 3);
	ndb_node_alive(a->db, "X");
	assert_int_equal(a->nch, 4);
	assert_int_equal(a->ch[3].what, NDB_ADD);
	peer_free(a);
}

/* A node restarts: its new life resumes the saved clocks, publishes what
 * it holds now, and must clean up what its previous life said. */
static void test_self_correction_restart(void **state)
{
	(void)state;
	struct peer *old = peer_new("A"), *c = peer_new("C");
	ndb_join_network(c->db, "n1", T0);
	ndb_join_network(old->db, "n1", T0);
	ndb_join_network(old->db, "n3", T0);
	put(old, "n1", "k1", "v1");
	put(old, "n1", "k2", "v2");
	deliver_all(old, c);
	assert_int_equal(visible(c, "n1"), 2);
	assert_int_equal(ndb_network_nodes(c->db, "n3", NULL, NULL), 1);
	uint64_t nclk = ndb_network_clock(old->db), tclk = ndb_table_clock(old->db);

	/* the new life holds k1 (changed) only, and is on n1 only */
	struct peer *a = peer_new("A");
	ndb_resume_clocks(a->db, nclk, tclk);
	ndb_join_network(a->db, "n1", T0);
	put(a, "n1", "k1", "v1-new");
	assert_int_equal(a->nbc, 2);
	peer_clear(a);

	/* C's state still says what the old life said: merging it makes us
	 * answer about k2 (a delete) and n3 (a leave); k1 and n1 are older
	 * than what we hold now */
	uint8_t *cb;
	size_t cblen;
	assert_int_equal(ndb_bulk(c->db, &cb, &cblen), 0);
	assert_int_equal(ndb_merge_bulk(a->db, cb, cblen, T0), 0);
	free(cb);
	assert_int_equal(a->nbc, 2);
	int saw_k2 = 0, saw_n3 = 0;
	for (size_t i = 0; i < a->nbc; i++) {
		if (a->bc[i].msg[0] == NDB_MSG_TABLE) {
			Swarm__NdbTableEvent *t = sent_table(&a->bc[i]);
			assert_string_equal(t->key, "k2");
			assert_string_equal(t->node, "A");
			assert_true(t->deleted);
			assert_true(t->ltime > tclk);
			assert_string_equal(a->bc[i].name, "t/n1/endpoints/k2");
			swarm__ndb_table_event__free_unpacked(t, NULL);
			saw_k2++;
		} else {
			Swarm__NdbNetworkEvent *n = sent_network(&a->bc[i]);
			assert_string_equal(n->network_id, "n3");
			assert_true(n->leave);
			assert_true(n->ltime > nclk);
			swarm__ndb_network_event__free_unpacked(n, NULL);
			saw_n3++;
		}
	}
	assert_int_equal(saw_k2, 1);
	assert_int_equal(saw_n3, 1);
	/* we still hold no k2 and are not on n3, and showed nothing else */
	assert_false(ndb_on_network(a->db, "n3"));
	assert_string_equal(value_of(a, "n1", "k2"), "");
	assert_int_equal(a->nch, 0);

	/* C applies the answers: the old life's k2 and n3 are gone (k1
	 * changes when A's put reaches C, which this test did not send) */
	peer_clear(c);
	deliver_all(a, c);
	assert_string_equal(value_of(c, "n1", "k2"), "");
	assert_non_null(find_change(c, NDB_DEL, "k2"));
	assert_int_equal(c->nch, 1);
	assert_int_equal(ndb_network_nodes(c->db, "n3", NULL, NULL), 0);
	assert_string_equal(value_of(c, "n1", "k1"), "v1");

	/* C's state now agrees with us: merging it again asks no answer */
	peer_clear(a);
	assert_int_equal(ndb_bulk(c->db, &cb, &cblen), 0);
	assert_int_equal(ndb_merge_bulk(a->db, cb, cblen, T0), 0);
	free(cb);
	assert_int_equal(a->nbc, 0);
	assert_int_equal(a->nch, 0);
	peer_free(old);
	peer_free(a);
	peer_free(c);
}

/* A restart whose saved clock lagged: the old life's events are newer
 * than the new life's, and still lose. */
static void test_self_correction_clock_lag(void **state)
{
	(void)state;
	struct peer *a = peer_new("A"), *c = peer_new("C");
	ndb_join_network(c->db, "n1", T0);
	ndb_join_network(a->db, "n1", T0);
	put(a, "n1", "k1", "new"); /* ltime 1 */
	peer_clear(a);

	/* the old life: k1 = old at 50, k9 at 51, n5 joined at 30 */
	assert_int_equal(send_t(c, 50, "A", "n1", "k1", "old"), 1);
	assert_int_equal(send_t(a, 50, "A", "n1", "k1", "old"), 0);
	assert_int_equal(a->nbc, 1);
	Swarm__NdbTableEvent *t = sent_table(&a->bc[0]);
	assert_int_equal(t->value.len, 3);
	assert_memory_equal(t->value.data, "new", 3);
	assert_false(t->deleted);
	assert_true(t->ltime > 50);
	swarm__ndb_table_event__free_unpacked(t, NULL);
	assert_string_equal(value_of(a, "n1", "k1"), "new");
	assert_int_equal(a->nch, 0); /* nothing changed in our view */
	/* the old event again: now older than ours */
	assert_int_equal(send_t(a, 50, "A", "n1", "k1", "old"), 0);
	assert_int_equal(a->nbc, 1);

	assert_int_equal(send_t(a, 51, "A", "n1", "k9", "gone"), 0);
	assert_int_equal(send_n(a, 30, "A", "n5", false), 0);
	assert_int_equal(send_n(a, 31, "A", "n1", true), 0); /* we are on n1 */
	assert_true(ndb_on_network(a->db, "n1"));
	assert_false(ndb_on_network(a->db, "n5"));
	assert_int_equal(a->nbc, 4);
	Swarm__NdbNetworkEvent *n = sent_network(&a->bc[3]);
	assert_false(n->leave);
	assert_string_equal(n->network_id, "n1");
	assert_true(n->ltime > 31);
	swarm__ndb_network_event__free_unpacked(n, NULL);

	/* C, which applied the old k1, converges to the new life */
	deliver_all(a, c);
	assert_string_equal(value_of(c, "n1", "k1"), "new");
	assert_int_equal(ndb_network_nodes(c->db, "n5", NULL, NULL), 0);

	/* events of the old life that agree are simply applied (and relayed) */
	peer_clear(a);
	assert_int_equal(send_t(a, 60, "A", "n1", "k7", NULL), 1);
	assert_int_equal(send_n(a, 40, "A", "n6", true), 1);
	assert_int_equal(send_n(a, 41, "A", "n1", false), 1);
	assert_int_equal(a->nbc, 3);
	assert_int_equal(a->nch, 0);

	peer_free(a);
	peer_free(c);
}

static void test_relay(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	size_t len;
	uint8_t *m = tev(3, "B", "n1", "k", "v", &len);
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 1);
	assert_int_equal(a->nbc, 1);
	assert_string_equal(a->bc[0].name, "t/n1/endpoints/k");
	assert_int_equal(a->bc[0].len, len);
	assert_memory_equal(a->bc[0].msg, m, len);
	/* duplicate: not relayed */
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 0);
	assert_int_equal(a->nbc, 1);
	free(m);
	m = tev(2, "B", "n1", "k", "older", &len);
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 0);
	assert_int_equal(a->nbc, 1);
	free(m);

	m = nev(7, "B", "n1", false, &len);
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 1);
	assert_int_equal(a->nbc, 2);
	assert_string_equal(a->bc[1].name, "n/B/n1");
	assert_memory_equal(a->bc[1].msg, m, len);
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 0);
	assert_int_equal(a->nbc, 2);
	free(m);

	/* our own events coming back are duplicates */
	peer_clear(a);
	put(a, "n1", "mine", "v");
	ndb_join_network(a->db, "n1", T0);
	assert_int_equal(a->nbc, 2);
	struct sent s0 = a->bc[0], s1 = a->bc[1];
	assert_int_equal(ndb_on_message(a->db, s0.msg, s0.len, T0), 0);
	assert_int_equal(ndb_on_message(a->db, s1.msg, s1.len, T0), 0);
	assert_int_equal(a->nbc, 2);

	/* bulk merges relay nothing */
	struct peer *b = peer_new("B");
	uint8_t *bulk;
	size_t blen;
	send_t(b, 40, "C", "n1", "c", "v");
	send_n(b, 40, "C", "n1", false);
	peer_clear(b);
	assert_int_equal(ndb_bulk(b->db, &bulk, &blen), 0);
	peer_clear(a);
	assert_int_equal(ndb_merge_bulk(a->db, bulk, blen, T0), 0);
	assert_int_equal(a->nbc, 0);
	assert_string_equal(value_of(a, "n1", "c"), "v");
	/* nor as a user message */
	assert_int_equal(ndb_on_message(a->db, bulk, blen, T0), 0);
	assert_int_equal(ndb_on_message(b->db, bulk, blen, T0), 0);
	assert_int_equal(b->nbc, 0);
	free(bulk);
	peer_free(a);
	peer_free(b);
}

/* ndb_on_message and ndb_merge_bulk on input that must change nothing. */
static void expect_bad(struct peer *p, const uint8_t *m, size_t len, int want)
{
	struct ndb_stats before, after;
	ndb_get_stats(p->db, &before);
	uint64_t nclk = ndb_network_clock(p->db), tclk = ndb_table_clock(p->db);
	size_t nbc = p->nbc, nch = p->nch, vis = visible(p, NULL);
	assert_int_equal(ndb_on_message(p->db, m, len, T0), want);
	if (len > 0 && m[0] == NDB_MSG_BULK)
		assert_int_equal(ndb_merge_bulk(p->db, m, len, T0), -EBADMSG);
	ndb_get_stats(p->db, &after);
	assert_int_equal(after.entries, before.entries);
	assert_int_equal(after.tombstones, before.tombstones);
	assert_int_equal(after.applied, before.applied);
	assert_int_equal(ndb_network_clock(p->db), nclk);
	assert_int_equal(ndb_table_clock(p->db), tclk);
	assert_int_equal(p->nbc, nbc);
	assert_int_equal(p->nch, nch);
	assert_int_equal(visible(p, NULL), vis);
	if (want == -EBADMSG)
		assert_true(after.bad > before.bad);
}

static void test_malformed(void **state)
{
	(void)state;
	struct peer *a = peer_new("A");
	ndb_join_network(a->db, "n1", T0);
	send_t(a, 5, "B", "n1", "k", "v");
	peer_clear(a);

	static const uint8_t garbage[] = { NDB_MSG_TABLE, 0xff, 0xff, 0xff, 0xff, 0x0f };
	static const uint8_t truncated[] = { NDB_MSG_TABLE, 0x12, 0x05, 'B' };
	static const uint8_t serf[] = { 0x01, 0x08, 0x01 };
	static const uint8_t unknown[] = { 0x83, 0x08, 0x01 };
	static const uint8_t only_type[] = { NDB_MSG_NETWORK };
	expect_bad(a, garbage, 0, -EBADMSG);
	expect_bad(a, garbage, sizeof(garbage), -EBADMSG);
	expect_bad(a, truncated, sizeof(truncated), -EBADMSG);
	expect_bad(a, serf, sizeof(serf), -EPROTONOSUPPORT);
	expect_bad(a, unknown, sizeof(unknown), -EPROTONOSUPPORT);
	expect_bad(a, only_type, sizeof(only_type), -EBADMSG); /* empty ids */

	size_t len;
	uint8_t *m;
	char big[300];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	const char *bad_ids[][3] = {
		{ "", "n1", "k" }, { "B", "", "k" }, { "B", "n1", "" },
		{ big, "n1", "k" }, { "B", big, "k" }, { "B", "n1", big },
	};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		m = tev(9, bad_ids[i][0], bad_ids[i][1], bad_ids[i][2], "v", &len);
		expect_bad(a, m, len, -EBADMSG);
		free(m);
	}
	m = nev(9, "B", "", false, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	m = nev(9, "", "n1", false, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);

	/* an empty table name; a live entry without a value; a huge value;
	 * an absurd Lamport time */
	Swarm__NdbTableEvent ev = SWARM__NDB_TABLE_EVENT__INIT;
	ev.ltime = 9;
	ev.node = "B";
	ev.network_id = "n1";
	ev.key = "k";
	ev.value.data = (uint8_t *)"v";
	ev.value.len = 1;
	m = pack(NDB_MSG_TABLE, &ev.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	ev.table = NDB_TABLE_ENDPOINTS;
	ev.value.len = 0;
	m = pack(NDB_MSG_TABLE, &ev.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	uint8_t *huge = calloc(1, 64 * 1024 + 1);
	ev.value.data = huge;
	ev.value.len = 64 * 1024 + 1;
	m = pack(NDB_MSG_TABLE, &ev.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	ev.value.len = 64 * 1024; /* the largest allowed */
	m = pack(NDB_MSG_TABLE, &ev.base, &len);
	assert_int_equal(ndb_on_message(a->db, m, len, T0), 1);
	free(m);
	free(huge);
	peer_clear(a);
	ev.value.data = (uint8_t *)"v";
	ev.value.len = 1;
	ev.ltime = UINT64_MAX;
	m = pack(NDB_MSG_TABLE, &ev.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	m = nev(UINT64_MAX, "B", "n1", false, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);

	/* a bulk with one bad event among good ones: nothing of it */
	Swarm__NdbTableEvent good = SWARM__NDB_TABLE_EVENT__INIT, bad = good;
	good.ltime = 100;
	good.node = "B";
	good.network_id = "n1";
	good.table = NDB_TABLE_ENDPOINTS;
	good.key = "new";
	good.value.data = (uint8_t *)"v";
	good.value.len = 1;
	bad = good;
	bad.key = "";
	Swarm__NdbTableEvent *ents[] = { &good, &bad };
	Swarm__NdbBulk b = SWARM__NDB_BULK__INIT;
	b.node = "B";
	b.n_entries = 2;
	b.entries = ents;
	m = pack(NDB_MSG_BULK, &b.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	/* a bulk without its sender */
	b.n_entries = 1;
	b.node = "";
	m = pack(NDB_MSG_BULK, &b.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	/* not a bulk at all */
	m = nev(9, "B", "n1", false, &len);
	assert_int_equal(ndb_merge_bulk(a->db, m, len, T0), -EBADMSG);
	free(m);
	assert_int_equal(ndb_merge_bulk(a->db, NULL, 0, T0), -EBADMSG);

	/* more than 100k entries */
	size_t n = 100001;
	Swarm__NdbTableEvent **many = calloc(n, sizeof(*many));
	for (size_t i = 0; i < n; i++)
		many[i] = &good;
	b.node = "B";
	b.n_entries = n;
	b.entries = many;
	m = pack(NDB_MSG_BULK, &b.base, &len);
	expect_bad(a, m, len, -EBADMSG);
	free(m);
	free(many);

	/* and the same good event alone is fine */
	b.n_entries = 1;
	b.entries = ents;
	m = pack(NDB_MSG_BULK, &b.base, &len);
	assert_int_equal(ndb_merge_bulk(a->db, m, len, T0), 0);
	free(m);
	assert_string_equal(value_of(a, "n1", "new"), "v");
	peer_free(a);
}

static void add_node(void *arg, const char *node)
{
	char *buf = arg;
	size_t l = strlen(buf);
	snprintf(buf + l, 64 - l, "%s,", node);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A canonical text of everything a node holds (from its bulk state). */
static char *canon(struct peer *p)
{
	uint8_t *m;
	size_t len;
	assert_int_equal(ndb_bulk(p->db, &m, &len), 0);
	Swarm__NdbBulk *b = swarm__ndb_bulk__unpack(NULL, len - 1, m + 1);
	assert_non_null(b);
	size_t n = b->n_networks + b->n_entries;
	char **lines = calloc(n + 1, sizeof(*lines));
	size_t k = 0, total = 1;
	for (size_t i = 0; i < b->n_networks; i++) {
		Swarm__NdbNetworkEvent *e = b->networks[i];
		lines[k] = malloc(256);
		snprintf(lines[k], 256, "n %s %s %llu %d\n", e->network_id, e->node,
			 (unsigned long long)e->ltime, e->leave);
		total += strlen(lines[k++]);
	}
	for (size_t i = 0; i < b->n_entries; i++) {
		Swarm__NdbTableEvent *e = b->entries[i];
		lines[k] = malloc(256);
		snprintf(lines[k], 256, "t %s %s %s %s %llu %d %.*s\n", e->network_id, e->table,
			 e->key, e->node, (unsigned long long)e->ltime, e->deleted,
			 (int)e->value.len, e->value.data ? (char *)e->value.data : "");
		total += strlen(lines[k++]);
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	char *out = calloc(1, total);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(out + off, lines[i], l);
		off += l;
		free(lines[i]);
	}
	free(lines);
	swarm__ndb_bulk__free_unpacked(b, NULL);
	free(m);
	return out;
}

static void exchange(struct peer *from, struct peer *to)
{
	uint8_t *m;
	size_t len;
	assert_int_equal(ndb_bulk(from->db, &m, &len), 0);
	assert_int_equal(ndb_merge_bulk(to->db, m, len, T0), 0);
	free(m);
}

static void test_bulk_round_trip(void **state)
{
	(void)state;
	struct peer *a = peer_new("A"), *b = peer_new("B");

	/* an empty state is a valid bulk */
	exchange(a, b);
	assert_int_equal(b->nch, 0);

	ndb_join_network(a->db, "n1", T0);
	ndb_join_network(a->db, "n2", T0);
	put(a, "n1", "a1", "x1");
	put(a, "n1", "a2", "x2");
	put(a, "n2", "a3", "x3");
	ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "a2", T0);
	send_t(a, 30, "C", "n9", "c1", "z1"); /* a network neither is on */
	ndb_join_network(b->db, "n1", T0);
	put(b, "n1", "b1", "y1");
	ndb_join_network(b->db, "n3", T0);
	ndb_leave_network(b->db, "n3", T0);
	peer_clear(a);
	peer_clear(b);

	exchange(a, b);
	exchange(b, a);
	/* no relays, no corrections: each holds only its own truth */
	assert_int_equal(a->nbc, 0);
	assert_int_equal(b->nbc, 0);

	char *ca = canon(a), *cbs = canon(b);
	assert_string_equal(ca, cbs);
	assert_non_null(strstr(ca, "t n1 endpoints a2 A"));   /* the tombstone */
	assert_non_null(strstr(ca, "n n3 B"));                /* the leave */
	assert_non_null(strstr(ca, "t n9 endpoints c1 C"));
	free(ca);
	free(cbs);

	/* callbacks: B saw A's live n1 entry only (not a2, not n2's) */
	assert_int_equal(b->nch, 1);
	assert_int_equal(b->ch[0].what, NDB_ADD);
	assert_string_equal(b->ch[0].key, "a1");
	assert_int_equal(a->nch, 1);
	assert_string_equal(a->ch[0].key, "b1");
	assert_int_equal(visible(a, "n1"), 2);
	assert_int_equal(visible(b, "n1"), 2);
	assert_int_equal(ndb_network_nodes(a->db, "n1", NULL, NULL), 2);
	char nodes[64] = "";
	assert_int_equal(ndb_network_nodes(b->db, "n2", add_node, nodes), 1);
	assert_string_equal(nodes, "A,");
	assert_int_equal(ndb_network_nodes(b->db, "n3", NULL, NULL), 0);

	/* merging the same again changes nothing */
	peer_clear(a);
	peer_clear(b);
	exchange(a, b);
	exchange(b, a);
	assert_int_equal(a->nch + b->nch + a->nbc + b->nbc, 0);

	/* and a later change flows the same way */
	put(b, "n1", "b1", "y2");
	ndb_del(a->db, "n1", NDB_TABLE_ENDPOINTS, "a1", T0);
	peer_clear(a);
	peer_clear(b);
	exchange(a, b);
	exchange(b, a);
	assert_string_equal(value_of(a, "n1", "b1"), "y2");
	assert_string_equal(value_of(b, "n1", "a1"), "");
	assert_int_equal(a->ch[0].what, NDB_UPDATE);
	assert_int_equal(b->ch[0].what, NDB_DEL);
	ca = canon(a);
	cbs = canon(b);
	assert_string_equal(ca, cbs);
	free(ca);
	free(cbs);
	peer_free(a);
	peer_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_writes),
		cmocka_unit_test(test_lamport_merge),
		cmocka_unit_test(test_clock_witness),
		cmocka_unit_test(test_tombstone_and_gc),
		cmocka_unit_test(test_visibility_joined_networks),
		cmocka_unit_test(test_dead_alive_forget),
		cmocka_unit_test(test_self_correction_restart),
		cmocka_unit_test(test_self_correction_clock_lag),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bulk_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

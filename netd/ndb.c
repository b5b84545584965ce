/* netd's replicated tables; see ndb.h.
 *
 * Layout: one struct ndb_net per network id ever heard of (joined or not),
 * holding its entries (keyed "<len(table)>:<table>/<key>", which no two
 * (table, key) pairs share) and its node memberships (keyed by node).
 * Visibility is not stored but derived from the state every time:
 *
 *   visible(e) = e live && self joined e's network && e's owner not dead
 *
 * and every change computes it before and after, so the change callbacks
 * (ADD/UPDATE/DEL) fire exactly once per change of the visible view.
 *
 * Self-correction: we are the only writer of our entries and of our
 * memberships. An event about ourselves that does not say what we hold
 * comes from an earlier life of this node (or a clash with one, when the
 * restart resumed from an old clock); it is not applied but answered with
 * a newer event of ours, so every node converges to what we hold now. An
 * event about ourselves that agrees with what we hold only raises the
 * ltime we keep (no callback). Corrections count as stale (the event lost
 * against our state) and are not relayed.
 *
 * The callbacks run in the middle of walks over the maps: they must not
 * call back into this ndb. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndb.h"
#include "netd.pb-c.h"
#include "strmap.h"
#include "util.h"

#define NDB_ID_MAX 256                    /* bytes of any id */
#define NDB_VALUE_MAX (64 * 1024)         /* bytes of an entry's value */
#define NDB_BULK_MAX 100000               /* memberships, and entries, per bulk */
#define NDB_LTIME_MAX (UINT64_C(1) << 62) /* larger: absurd, rejected */
#define NDB_DEFAULT_TTL (30LL * 60 * 1000000000LL)

struct ndb_ent {
	struct ndb_net *net;   /* the network it belongs to */
	char *table;           /* table name */
	char *key;             /* key within the table */
	char *owner;           /* node that wrote the last event applied */
	uint64_t ltime;        /* table-clock time of that event */
	uint8_t *value;        /* NULL when deleted */
	size_t len;            /* value bytes, 0 when deleted */
	bool deleted;          /* a tombstone */
	int64_t deleted_at;    /* when the tombstone was made here (gc) */
};

struct ndb_memb {
	char *node;            /* member node */
	uint64_t ltime;        /* network-clock time of its last event */
	bool leave;            /* the last event was a leave */
	int64_t left_at;       /* when we learnt the leave (gc) */
};

struct ndb_net {
	char *id;              /* network id */
	struct strmap *ents;   /* entry key -> struct ndb_ent */
	struct strmap *membs;  /* node -> struct ndb_memb */
};

struct ndb {
	char *self;                /* our node name */
	int64_t ttl;               /* tombstone (and leave record) lifetime, ns */
	ndb_change_fn on_change;   /* may be NULL */
	ndb_broadcast_fn broadcast;/* may be NULL */
	void *arg;                 /* for both callbacks */
	uint64_t nclock;           /* network Lamport clock: last time used or seen */
	uint64_t tclock;           /* table Lamport clock: last time used or seen */
	struct strmap *nets;       /* network id -> struct ndb_net */
	struct strmap *dead;       /* node -> (void *)1, nodes whose entries are hidden */
	uint64_t applied;          /* stats, see struct ndb_stats */
	uint64_t stale;
	uint64_t bad;
};

/* ---- helpers ---- */

static bool id_ok(const char *s)
{
	if (!s || !*s)
		return false;
	return strnlen(s, NDB_ID_MAX + 1) <= NDB_ID_MAX;
}

static void ent_keystr(char *buf, size_t len, const char *table, const char *key)
{
	snprintf(buf, len, "%zu:%s/%s", strlen(table), table, key);
}

/* Big enough for every entry key or broadcast name built from ids of at
 * most NDB_ID_MAX bytes. */
#define NDB_NAME_BUF (4 * NDB_ID_MAX + 32)

static void witness(uint64_t *clock, uint64_t t)
{
	if (t > *clock)
		*clock = t;
}

static bool is_dead(const struct ndb *db, const char *node)
{
	return strmap_get(db->dead, node) != NULL;
}

static bool net_joined(const struct ndb *db, const struct ndb_net *net)
{
	const struct ndb_memb *m = strmap_get(net->membs, db->self);
	return m && !m->leave;
}

static bool ent_visible(const struct ndb *db, const struct ndb_ent *e)
{
	return !e->deleted && net_joined(db, e->net) && !is_dead(db, e->owner);
}

static bool value_eq(const struct ndb_ent *e, const uint8_t *v, size_t len)
{
	return !e->deleted && e->len == len && memcmp(e->value, v, len) == 0;
}

static void notify(struct ndb *db, enum ndb_change what, const struct ndb_ent *e)
{
	if (!db->on_change)
		return;
	struct ndb_entry pub = {
		.network_id = e->net->id,
		.table = e->table,
		.key = e->key,
		.owner = e->owner,
		.ltime = e->ltime,
		.value = e->value,
		.value_len = e->len,
	};
	db->on_change(db->arg, what, &pub);
}

static struct ndb_net *net_get(const struct ndb *db, const char *id)
{
	return strmap_get(db->nets, id);
}

static struct ndb_net *net_get_or_add(struct ndb *db, const char *id)
{
	struct ndb_net *net = strmap_get(db->nets, id);
	if (net)
		return net;
	net = xcalloc(1, sizeof(*net));
	net->id = xstrdup(id);
	net->ents = strmap_new();
	net->membs = strmap_new();
	strmap_put(db->nets, id, net);
	return net;
}

static void ent_free(struct ndb_ent *e)
{
	if (!e)
		return;
	free(e->table);
	free(e->key);
	free(e->owner);
	free(e->value);
	free(e);
}

static void memb_free(struct ndb_memb *m)
{
	if (!m)
		return;
	free(m->node);
	free(m);
}

static void net_free(struct ndb_net *net)
{
	size_t pos = 0;
	const char *k;
	void *v;
	if (!net)
		return;
	while (strmap_next(net->ents, &pos, &k, &v))
		ent_free(v);
	pos = 0;
	while (strmap_next(net->membs, &pos, &k, &v))
		memb_free(v);
	strmap_free(net->ents);
	strmap_free(net->membs);
	free(net->id);
	free(net);
}

static struct ndb_ent *ent_get(const struct ndb_net *net, const char *table, const char *key)
{
	char k[NDB_NAME_BUF];
	if (!net)
		return NULL;
	ent_keystr(k, sizeof(k), table, key);
	return strmap_get(net->ents, k);
}

/* Sets the entry (net, table, key) to the given state, creating it if
 * needed, with the change callback the visible view calls for. value is
 * copied; ignored when deleted. Returns the entry. */
static struct ndb_ent *ent_set(struct ndb *db, struct ndb_net *net, const char *table,
			       const char *key, const char *owner, uint64_t ltime,
			       const uint8_t *value, size_t len, bool deleted, int64_t now)
{
	char k[NDB_NAME_BUF];
	ent_keystr(k, sizeof(k), table, key);
	struct ndb_ent *e = strmap_get(net->ents, k);
	bool before = false, changed = true, fresh = !e;
	if (e) {
		before = ent_visible(db, e);
		changed = !deleted && (!value_eq(e, value, len) || strcmp(e->owner, owner) != 0);
	} else {
		e = xcalloc(1, sizeof(*e));
		e->net = net;
		e->table = xstrdup(table);
		e->key = xstrdup(key);
		e->owner = xstrdup(owner);
		e->deleted = true;
		strmap_put(net->ents, k, e);
	}
	bool after = !deleted && net_joined(db, net) && !is_dead(db, owner);
	if (before && !after)
		notify(db, NDB_DEL, e); /* with the value that goes away */

	if (strcmp(e->owner, owner) != 0) {
		free(e->owner);
		e->owner = xstrdup(owner);
	}
	e->ltime = ltime;
	if (deleted) {
		free(e->value);
		e->value = NULL;
		e->len = 0;
		if (fresh || !e->deleted)
			e->deleted_at = now;
		e->deleted = true;
	} else if (!value_eq(e, value, len)) {
		free(e->value);
		e->value = xmalloc(len);
		memcpy(e->value, value, len);
		e->len = len;
		e->deleted = false;
	}

	if (!before && after)
		notify(db, NDB_ADD, e);
	else if (before && after && changed)
		notify(db, NDB_UPDATE, e);
	return e;
}

static void ent_drop(struct ndb *db, struct ndb_ent *e)
{
	char k[NDB_NAME_BUF];
	if (ent_visible(db, e))
		notify(db, NDB_DEL, e);
	ent_keystr(k, sizeof(k), e->table, e->key);
	strmap_del(e->net->ents, k);
	ent_free(e);
}

/* ---- encoding and broadcasting ---- */

/* type byte + packed message, malloc'd; NULL on ENOMEM. */
static uint8_t *encode(uint8_t type, const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);
	if (!buf)
		return NULL;
	buf[0] = type;
	protobuf_c_message_pack(m, buf + 1);
	*len = n + 1;
	return buf;
}

static void table_event_of(const struct ndb_ent *e, Swarm__NdbTableEvent *ev)
{
	swarm__ndb_table_event__init(ev);
	ev->ltime = e->ltime;
	ev->node = e->owner;
	ev->network_id = e->net->id;
	ev->table = e->table;
	ev->key = e->key;
	ev->value.data = e->value;
	ev->value.len = e->len;
	ev->deleted = e->deleted;
}

static void network_event_of(const struct ndb_net *net, const struct ndb_memb *m,
			     Swarm__NdbNetworkEvent *ev)
{
	swarm__ndb_network_event__init(ev);
	ev->ltime = m->ltime;
	ev->node = m->node;
	ev->network_id = net->id;
	ev->leave = m->leave;
}

static void table_name(char *buf, size_t len, const char *net, const char *table, const char *key)
{
	snprintf(buf, len, "t/%s/%s/%s", net, table, key);
}

static void network_name(char *buf, size_t len, const char *node, const char *net)
{
	snprintf(buf, len, "n/%s/%s", node, net);
}

static void send_entry(struct ndb *db, const struct ndb_ent *e)
{
	Swarm__NdbTableEvent ev;
	char name[NDB_NAME_BUF];
	size_t len;
	if (!db->broadcast)
		return;
	table_event_of(e, &ev);
	uint8_t *buf = encode(NDB_MSG_TABLE, &ev.base, &len);
	if (!buf)
		return;
	table_name(name, sizeof(name), e->net->id, e->table, e->key);
	db->broadcast(db->arg, name, buf, len);
	free(buf);
}

static void send_memb(struct ndb *db, const struct ndb_net *net, const struct ndb_memb *m)
{
	Swarm__NdbNetworkEvent ev;
	char name[NDB_NAME_BUF];
	size_t len;
	if (!db->broadcast)
		return;
	network_event_of(net, m, &ev);
	uint8_t *buf = encode(NDB_MSG_NETWORK, &ev.base, &len);
	if (!buf)
		return;
	network_name(name, sizeof(name), m->node, net->id);
	db->broadcast(db->arg, name, buf, len);
	free(buf);
}

/* ---- lifecycle, clocks ---- */

struct ndb *ndb_new(const struct ndb_config *cfg)
{
	struct ndb *db = xcalloc(1, sizeof(*db));
	db->self = xstrdup(cfg->self ? cfg->self : "");
	db->ttl = cfg->tombstone_ttl > 0 ? cfg->tombstone_ttl : NDB_DEFAULT_TTL;
	db->on_change = cfg->on_change;
	db->broadcast = cfg->broadcast;
	db->arg = cfg->arg;
	db->nets = strmap_new();
	db->dead = strmap_new();
	return db;
}

void ndb_free(struct ndb *db)
{
	size_t pos = 0;
	const char *k;
	void *v;
	if (!db)
		return;
	while (strmap_next(db->nets, &pos, &k, &v))
		net_free(v);
	strmap_free(db->nets);
	strmap_free(db->dead);
	free(db->self);
	free(db);
}

uint64_t ndb_network_clock(const struct ndb *db)
{
	return db->nclock;
}

uint64_t ndb_table_clock(const struct ndb *db)
{
	return db->tclock;
}

void ndb_resume_clocks(struct ndb *db, uint64_t network, uint64_t table)
{
	witness(&db->nclock, network);
	witness(&db->tclock, table);
}

/* ---- our own writes ---- */

static struct ndb_memb *memb_set(struct ndb_net *net, const char *node, uint64_t ltime,
				 bool leave, int64_t now)
{
	struct ndb_memb *m = strmap_get(net->membs, node);
	if (!m) {
		m = xcalloc(1, sizeof(*m));
		m->node = xstrdup(node);
		strmap_put(net->membs, node, m);
	} else if (m->leave && leave) {
		now = m->left_at; /* still the same leave as far as gc goes */
	}
	m->ltime = ltime;
	m->leave = leave;
	m->left_at = leave ? now : 0;
	return m;
}

int ndb_join_network(struct ndb *db, const char *network_id, int64_t now)
{
	size_t pos = 0;
	const char *k;
	void *v;
	if (!id_ok(network_id))
		return -EINVAL;
	struct ndb_net *net = net_get_or_add(db, network_id);
	if (net_joined(db, net))
		return 0;
	struct ndb_memb *m = memb_set(net, db->self, ++db->nclock, false, now);
	while (strmap_next(net->ents, &pos, &k, &v))
		if (ent_visible(db, v))
			notify(db, NDB_ADD, v);
	send_memb(db, net, m);
	return 0;
}

int ndb_leave_network(struct ndb *db, const char *network_id, int64_t now)
{
	size_t pos = 0;
	const char *k;
	void *v;
	if (!id_ok(network_id))
		return -EINVAL;
	struct ndb_net *net = net_get(db, network_id);
	if (!net || !net_joined(db, net))
		return 0;
	while (strmap_next(net->ents, &pos, &k, &v))
		if (ent_visible(db, v))
			notify(db, NDB_DEL, v);
	struct ndb_memb *m = memb_set(net, db->self, ++db->nclock, true, now);
	/* Our entries go with us: tombstones everyone learns. */
	pos = 0;
	while (strmap_next(net->ents, &pos, &k, &v)) {
		struct ndb_ent *e = v;
		if (e->deleted || strcmp(e->owner, db->self) != 0)
			continue;
		ent_set(db, net, e->table, e->key, db->self, ++db->tclock, NULL, 0, true, now);
		send_entry(db, e);
	}
	send_memb(db, net, m);
	return 0;
}

bool ndb_on_network(const struct ndb *db, const char *network_id)
{
	const struct ndb_net *net = network_id ? net_get(db, network_id) : NULL;
	return net && net_joined(db, net);
}

int ndb_put(struct ndb *db, const char *network_id, const char *table,
	    const char *key, const uint8_t *value, size_t len, int64_t now)
{
	if (!id_ok(network_id) || !id_ok(table) || !id_ok(key) || !value || len == 0 ||
	    len > NDB_VALUE_MAX)
		return -EINVAL;
	struct ndb_net *net = net_get_or_add(db, network_id);
	struct ndb_ent *e = ent_get(net, table, key);
	if (e && !strcmp(e->owner, db->self) && value_eq(e, value, len))
		return 0;
	e = ent_set(db, net, table, key, db->self, ++db->tclock, value, len, false, now);
	send_entry(db, e);
	return 0;
}

int ndb_del(struct ndb *db, const char *network_id, const char *table,
	    const char *key, int64_t now)
{
	if (!id_ok(network_id) || !id_ok(table) || !id_ok(key))
		return -EINVAL;
	struct ndb_net *net = net_get(db, network_id);
	struct ndb_ent *e = ent_get(net, table, key);
	if (!e || e->deleted || strcmp(e->owner, db->self) != 0)
		return -ENOENT;
	e = ent_set(db, net, table, key, db->self, ++db->tclock, NULL, 0, true, now);
	send_entry(db, e);
	return 0;
}

/* ---- events from the wire ---- */

static bool table_event_ok(const Swarm__NdbTableEvent *ev)
{
	if (!ev || ev->ltime > NDB_LTIME_MAX)
		return false;
	if (!id_ok(ev->node) || !id_ok(ev->network_id) || !id_ok(ev->table) || !id_ok(ev->key))
		return false;
	if (ev->value.len > NDB_VALUE_MAX)
		return false;
	/* a live entry always has a value (ndb_put refuses len 0) */
	return ev->deleted || (ev->value.len > 0 && ev->value.data);
}

static bool network_event_ok(const Swarm__NdbNetworkEvent *ev)
{
	return ev && ev->ltime <= NDB_LTIME_MAX && id_ok(ev->node) && id_ok(ev->network_id);
}

/* Applies one checked table event; 1 applied, 0 stale or corrected.
 * raw (the encoded event) is relayed when applied, unless NULL. */
static int table_event(struct ndb *db, const Swarm__NdbTableEvent *ev,
		       const uint8_t *raw, size_t rawlen, int64_t now)
{
	witness(&db->tclock, ev->ltime);
	struct ndb_net *net = net_get_or_add(db, ev->network_id);
	struct ndb_ent *e = ent_get(net, ev->table, ev->key);

	if (e && ev->ltime < e->ltime) {
		db->stale++;
		return 0;
	}
	if (!strcmp(ev->node, db->self)) {
		bool ours_live = e && !e->deleted && !strcmp(e->owner, db->self);
		bool agree = ev->deleted ? !ours_live : ours_live && value_eq(e, ev->value.data, ev->value.len);
		if (!agree) {
			/* An older life's word: answer with what we hold now. */
			if (ours_live) {
				e->ltime = ++db->tclock;
			} else {
				e = ent_set(db, net, ev->table, ev->key, db->self, ++db->tclock,
					    NULL, 0, true, now);
				e->deleted_at = now; /* must outlive the old event's gossip */
			}
			send_entry(db, e);
			db->stale++;
			return 0;
		}
	}
	if (e && ev->ltime == e->ltime) {
		/* a duplicate (such as our own event coming back); a tie
		 * between two writers is ignored all the same, lest two
		 * nodes relay their versions to each other for ever */
		db->stale++;
		return 0;
	}
	ent_set(db, net, ev->table, ev->key, ev->node, ev->ltime, ev->value.data,
		ev->value.len, ev->deleted, now);
	db->applied++;
	if (raw && db->broadcast) {
		char name[NDB_NAME_BUF];
		table_name(name, sizeof(name), ev->network_id, ev->table, ev->key);
		db->broadcast(db->arg, name, raw, rawlen);
	}
	return 1;
}

/* Applies one checked network event; as table_event. */
static int network_event(struct ndb *db, const Swarm__NdbNetworkEvent *ev,
			 const uint8_t *raw, size_t rawlen, int64_t now)
{
	witness(&db->nclock, ev->ltime);
	struct ndb_net *net = net_get_or_add(db, ev->network_id);
	struct ndb_memb *m = strmap_get(net->membs, ev->node);

	bool self = !strcmp(ev->node, db->self);
	/* Equal times: a duplicate, or (a clash of two lives) ignored all the
	 * same, lest two nodes relay the two versions to each other for ever;
	 * only we answer a clash about ourselves. */
	if (m && (ev->ltime < m->ltime ||
		  (ev->ltime == m->ltime && (!self || ev->leave == m->leave)))) {
		db->stale++;
		return 0;
	}
	if (self) {
		/* Only ndb_join_network/ndb_leave_network change where we
		 * are: an event saying otherwise (an equal-time clash
		 * included, as our record's leave is always !joined) is
		 * answered with our own. */
		bool joined = net_joined(db, net);
		if (ev->leave == joined) {
			m = memb_set(net, db->self, ++db->nclock, !joined, now);
			send_memb(db, net, m);
			db->stale++;
			return 0;
		}
	}
	/* A membership changes no entry (and an agreeing one about us not
	 * even our own): a node leaving deletes its own entries itself. */
	memb_set(net, ev->node, ev->ltime, ev->leave, now);
	db->applied++;
	if (raw && db->broadcast) {
		char name[NDB_NAME_BUF];
		network_name(name, sizeof(name), ev->node, ev->network_id);
		db->broadcast(db->arg, name, raw, rawlen);
	}
	return 1;
}

static Swarm__NdbBulk *bulk_unpack(const uint8_t *msg, size_t len)
{
	if (len < 1 || msg[0] != NDB_MSG_BULK)
		return NULL;
	Swarm__NdbBulk *b = swarm__ndb_bulk__unpack(NULL, len - 1, msg + 1);
	if (!b)
		return NULL;
	bool ok = id_ok(b->node) && b->n_networks <= NDB_BULK_MAX && b->n_entries <= NDB_BULK_MAX;
	for (size_t i = 0; ok && i < b->n_networks; i++)
		ok = network_event_ok(b->networks[i]);
	for (size_t i = 0; ok && i < b->n_entries; i++)
		ok = table_event_ok(b->entries[i]);
	if (!ok) {
		swarm__ndb_bulk__free_unpacked(b, NULL);
		return NULL;
	}
	return b;
}

/* Merges a checked bulk; returns how many events it applied. */
static int bulk_merge(struct ndb *db, const Swarm__NdbBulk *b, int64_t now)
{
	int n = 0;
	for (size_t i = 0; i < b->n_networks; i++)
		n += network_event(db, b->networks[i], NULL, 0, now);
	for (size_t i = 0; i < b->n_entries; i++)
		n += table_event(db, b->entries[i], NULL, 0, now);
	return n;
}

int ndb_on_message(struct ndb *db, const uint8_t *msg, size_t len, int64_t now)
{
	int r;
	if (!msg || len < 1) {
		db->bad++;
		return -EBADMSG;
	}
	switch (msg[0]) {
	case NDB_MSG_NETWORK: {
		Swarm__NdbNetworkEvent *ev = swarm__ndb_network_event__unpack(NULL, len - 1, msg + 1);
		if (!network_event_ok(ev)) {
			r = -EBADMSG;
		} else {
			r = network_event(db, ev, msg, len, now);
		}
		if (ev)
			swarm__ndb_network_event__free_unpacked(ev, NULL);
		break;
	}
	case NDB_MSG_TABLE: {
		Swarm__NdbTableEvent *ev = swarm__ndb_table_event__unpack(NULL, len - 1, msg + 1);
		if (!table_event_ok(ev)) {
			r = -EBADMSG;
		} else {
			r = table_event(db, ev, msg, len, now);
		}
		if (ev)
			swarm__ndb_table_event__free_unpacked(ev, NULL);
		break;
	}
	case NDB_MSG_BULK: {
		/* A whole state sent as a user message: merged, not relayed. */
		Swarm__NdbBulk *b = bulk_unpack(msg, len);
		if (!b) {
			r = -EBADMSG;
		} else {
			r = bulk_merge(db, b, now) > 0;
			swarm__ndb_bulk__free_unpacked(b, NULL);
		}
		break;
	}
	default:
		return -EPROTONOSUPPORT;
	}
	if (r == -EBADMSG)
		db->bad++;
	return r;
}

int ndb_bulk(struct ndb *db, uint8_t **out, size_t *len)
{
	size_t nn = 0, ne = 0, pos = 0, p2;
	const char *k;
	void *v, *v2;
	int r = -ENOMEM;
	Swarm__NdbBulk b;
	Swarm__NdbNetworkEvent *nev = NULL, **nptr = NULL;
	Swarm__NdbTableEvent *tev = NULL, **tptr = NULL;

	while (strmap_next(db->nets, &pos, &k, &v)) {
		nn += strmap_count(((struct ndb_net *)v)->membs);
		ne += strmap_count(((struct ndb_net *)v)->ents);
	}
	nev = calloc(nn ? nn : 1, sizeof(*nev));
	nptr = calloc(nn ? nn : 1, sizeof(*nptr));
	tev = calloc(ne ? ne : 1, sizeof(*tev));
	tptr = calloc(ne ? ne : 1, sizeof(*tptr));
	if (!nev || !nptr || !tev || !tptr)
		goto out;

	size_t in = 0, ie = 0;
	pos = 0;
	while (strmap_next(db->nets, &pos, &k, &v)) {
		struct ndb_net *net = v;
		p2 = 0;
		while (strmap_next(net->membs, &p2, &k, &v2)) {
			network_event_of(net, v2, &nev[in]);
			nptr[in] = &nev[in];
			in++;
		}
		p2 = 0;
		while (strmap_next(net->ents, &p2, &k, &v2)) {
			table_event_of(v2, &tev[ie]);
			tptr[ie] = &tev[ie];
			ie++;
		}
	}
	swarm__ndb_bulk__init(&b);
	b.node = db->self;
	b.n_networks = in;
	b.networks = nptr;
	b.n_entries = ie;
	b.entries = tptr;
	*out = encode(NDB_MSG_BULK, &b.base, len);
	if (*out)
		r = 0;
out:
	free(nev);
	free(nptr);
	free(tev);
	free(tptr);
	return r;
}

int ndb_merge_bulk(struct ndb *db, const uint8_t *msg, size_t len, int64_t now)
{
	Swarm__NdbBulk *b = msg ? bulk_unpack(msg, len) : NULL;
	if (!b) {
		db->bad++;
		return -EBADMSG;
	}
	bulk_merge(db, b, now);
	swarm__ndb_bulk__free_unpacked(b, NULL);
	return 0;
}

/* ---- membership ---- */

/* Calls fn on every live entry owned by node on a joined network. */
static void each_shown_of(struct ndb *db, const char *node, enum ndb_change what)
{
	size_t pos = 0, p2;
	const char *k;
	void *v, *v2;
	while (strmap_next(db->nets, &pos, &k, &v)) {
		struct ndb_net *net = v;
		if (!net_joined(db, net))
			continue;
		p2 = 0;
		while (strmap_next(net->ents, &p2, &k, &v2)) {
			struct ndb_ent *e = v2;
			if (!e->deleted && !strcmp(e->owner, node))
				notify(db, what, e);
		}
	}
}

/* Our own entries are never hidden: swim does not report us dead to
 * ourselves, and if it did, our own records must not vanish here. */
void ndb_node_dead(struct ndb *db, const char *node)
{
	if (!node || !*node || !strcmp(node, db->self) || is_dead(db, node))
		return;
	each_shown_of(db, node, NDB_DEL);
	strmap_put(db->dead, node, (void *)1);
}

void ndb_node_alive(struct ndb *db, const char *node)
{
	if (!node || !is_dead(db, node))
		return;
	strmap_del(db->dead, node);
	each_shown_of(db, node, NDB_ADD);
}

/* The node stays marked dead: late events or bulk states that still carry
 * its entries keep them hidden until it is seen alive again. */
void ndb_node_forget(struct ndb *db, const char *node)
{
	size_t pos = 0, p2;
	const char *k;
	void *v, *v2;
	if (!node || !*node || !strcmp(node, db->self))
		return;
	while (strmap_next(db->nets, &pos, &k, &v)) {
		struct ndb_net *net = v;
		p2 = 0;
		while (strmap_next(net->ents, &p2, &k, &v2)) {
			struct ndb_ent *e = v2;
			if (!strcmp(e->owner, node))
				ent_drop(db, e); /* strmap_del keeps the iteration valid */
		}
		memb_free(strmap_del(net->membs, node));
	}
	if (!is_dead(db, node))
		strmap_put(db->dead, node, (void *)1);
}

void ndb_gc(struct ndb *db, int64_t now)
{
	size_t pos = 0, p2;
	const char *k;
	void *v, *v2;
	while (strmap_next(db->nets, &pos, &k, &v)) {
		struct ndb_net *net = v;
		p2 = 0;
		while (strmap_next(net->ents, &p2, &k, &v2)) {
			struct ndb_ent *e = v2;
			if (e->deleted && now - e->deleted_at > db->ttl)
				ent_drop(db, e);
		}
		p2 = 0;
		while (strmap_next(net->membs, &p2, &k, &v2)) {
			struct ndb_memb *m = v2;
			if (m->leave && now - m->left_at > db->ttl)
				memb_free(strmap_del(net->membs, k));
		}
		if (strmap_count(net->ents) == 0 && strmap_count(net->membs) == 0) {
			strmap_del(db->nets, net->id);
			net_free(net);
		}
	}
}

/* ---- reads ---- */

static size_t foreach_net(const struct ndb *db, const struct ndb_net *net, const char *table,
			  void (*fn)(void *arg, const struct ndb_entry *e), void *arg)
{
	size_t pos = 0, n = 0;
	const char *k;
	void *v;
	if (!net_joined(db, net))
		return 0;
	while (strmap_next(net->ents, &pos, &k, &v)) {
		const struct ndb_ent *e = v;
		if (!ent_visible(db, e) || (table && strcmp(e->table, table) != 0))
			continue;
		n++;
		if (fn) {
			struct ndb_entry pub = {
				.network_id = net->id,
				.table = e->table,
				.key = e->key,
				.owner = e->owner,
				.ltime = e->ltime,
				.value = e->value,
				.value_len = e->len,
			};
			fn(arg, &pub);
		}
	}
	return n;
}

size_t ndb_foreach(const struct ndb *db, const char *network_id, const char *table,
		   void (*fn)(void *arg, const struct ndb_entry *e), void *arg)
{
	size_t pos = 0, n = 0;
	const char *k;
	void *v;
	if (network_id) {
		const struct ndb_net *net = net_get(db, network_id);
		return net ? foreach_net(db, net, table, fn, arg) : 0;
	}
	while (strmap_next(db->nets, &pos, &k, &v))
		n += foreach_net(db, v, table, fn, arg);
	return n;
}

size_t ndb_network_nodes(const struct ndb *db, const char *network_id,
			 void (*fn)(void *arg, const char *node), void *arg)
{
	size_t pos = 0, n = 0;
	const char *k;
	void *v;
	const struct ndb_net *net = network_id ? net_get(db, network_id) : NULL;
	if (!net)
		return 0;
	while (strmap_next(net->membs, &pos, &k, &v)) {
		const struct ndb_memb *m = v;
		if (m->leave)
			continue;
		n++;
		if (fn)
			fn(arg, m->node);
	}
	return n;
}

void ndb_get_stats(const struct ndb *db, struct ndb_stats *out)
{
	size_t pos = 0, p2;
	const char *k;
	void *v, *v2;
	memset(out, 0, sizeof(*out));
	out->applied = db->applied;
	out->stale = db->stale;
	out->bad = db->bad;
	while (strmap_next(db->nets, &pos, &k, &v)) {
		p2 = 0;
		while (strmap_next(((struct ndb_net *)v)->ents, &p2, &k, &v2)) {
			if (((struct ndb_ent *)v2)->deleted)
				out->tombstones++;
			else
				out->entries++;
		}
	}
}

/* netd's replicated tables, as Docker's networkdb: which node is on which
 * network, and per network a table of endpoint records, spread as gossip
 * user messages (protobuf, proto/netd.proto) behind type bytes of their own:
 *
 *   0x80 NdbNetworkEvent   a node joins or leaves a network
 *   0x81 NdbTableEvent     an entry is created, updated or deleted
 *   0x82 NdbBulk           a node's whole view (push/pull user state)
 *
 * Rules:
 * - Each entry has one owner, the node that wrote it; events about it are
 *   ordered by the owner's Lamport time (ltime). An event is applied only
 *   if its ltime is greater than the one held for that (network, table,
 *   key); an equal time is a duplicate. Both clocks (network, table)
 *   witness every ltime seen, so a restarted node that resumes from a
 *   saved clock, or has only seen newer times elsewhere, always writes
 *   newer events.
 * - A delete leaves a tombstone (value dropped, ltime kept) for
 *   tombstone_ttl, so a late joiner's bulk state holding the old entry
 *   cannot bring it back; tombstones travel in bulk states too.
 * - Every node keeps and relays the events of every network (so the
 *   gossip of a network with few members still spreads at full speed),
 *   but only networks this node has joined are "visible": their entries
 *   produce change callbacks and are listed by ndb_foreach. ingress is
 *   joined like any other network by the caller.
 * - Entries owned by a node marked dead are hidden (a delete callback)
 *   at once, and shown again (an add callback) if it comes back alive.
 *   Entries of a node gone for good (ndb_node_forget) are dropped.
 *
 * Pure: no sockets, no clock (every call that needs time takes `now`,
 * monotonic ns), no global state. Not thread-safe. */
#ifndef SWARM_NDB_H
#define SWARM_NDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NDB_MSG_NETWORK 0x80
#define NDB_MSG_TABLE 0x81
#define NDB_MSG_BULK 0x82

#define NDB_TABLE_ENDPOINTS "endpoints"

struct ndb;

/* A visible entry, as handed to callbacks and ndb_foreach. Pointers are
 * valid during the call only. */
struct ndb_entry {
	const char *network_id;
	const char *table;
	const char *key;
	const char *owner;
	uint64_t ltime;
	const uint8_t *value;   /* the record bytes (an encoded EndpointRecord) */
	size_t value_len;
};

/* What changed in the visible view. ADD: a new key became visible (or its
 * owner came back alive, or this node joined the network). UPDATE: the
 * value of a visible key changed. DEL: a visible key went away (deleted,
 * owner dead or forgotten, this node left the network). */
enum ndb_change { NDB_ADD, NDB_UPDATE, NDB_DEL };

typedef void (*ndb_change_fn)(void *arg, enum ndb_change what,
			      const struct ndb_entry *e);
/* Encoded message (type byte + protobuf) to gossip to everyone; name
 * identifies what it is about (a newer message with the same name
 * replaces a queued older one). */
typedef void (*ndb_broadcast_fn)(void *arg, const char *name,
				 const uint8_t *msg, size_t len);

struct ndb_config {
	const char *self;              /* our node name (copied) */
	int64_t tombstone_ttl;         /* ns; 0 = 30 minutes */
	ndb_change_fn on_change;       /* may be NULL */
	ndb_broadcast_fn broadcast;    /* may be NULL */
	void *arg;                     /* passed to both */
};

struct ndb *ndb_new(const struct ndb_config *cfg);
void ndb_free(struct ndb *db);     /* NULL: no-op */

/* Clocks, to save and to resume from (the larger of saved and current). */
uint64_t ndb_network_clock(const struct ndb *db);
uint64_t ndb_table_clock(const struct ndb *db);
void ndb_resume_clocks(struct ndb *db, uint64_t network, uint64_t table);

/* ---- our own writes: each applies locally and broadcasts one event ---- */

/* Joins/leaves a network. Joining makes its entries visible (ADD for each);
 * leaving hides them (DEL for each) and deletes our own entries in it.
 * Idempotent: 0 also when already joined/left. */
int ndb_join_network(struct ndb *db, const char *network_id, int64_t now);
int ndb_leave_network(struct ndb *db, const char *network_id, int64_t now);
bool ndb_on_network(const struct ndb *db, const char *network_id);

/* Creates or updates our entry; the same value again is a no-op (no event,
 * returns 0). -EINVAL on empty ids or len 0. */
int ndb_put(struct ndb *db, const char *network_id, const char *table,
	    const char *key, const uint8_t *value, size_t len, int64_t now);
/* Deletes our entry (tombstone). -ENOENT if we hold no live entry. */
int ndb_del(struct ndb *db, const char *network_id, const char *table,
	    const char *key, int64_t now);

/* ---- from the wire ---- */

/* One user message payload (type byte first). Applies it; when it changed
 * something, the same bytes are handed to broadcast again (relay). Events
 * about ourselves that are not what we hold (an older life's entries) are
 * answered with a newer event of our own: a delete for an entry we do not
 * have, our value for one we do. Returns 1 applied, 0 stale/duplicate,
 * -EBADMSG malformed (nothing changed), -EPROTONOSUPPORT a type byte
 * below 0x80 or unknown. */
int ndb_on_message(struct ndb *db, const uint8_t *msg, size_t len,
		   int64_t now);

/* Our bulk state: 0x82 + NdbBulk with every network membership event we
 * hold and every entry and tombstone of every network. malloc'd into *out;
 * 0 or -ENOMEM. */
int ndb_bulk(struct ndb *db, uint8_t **out, size_t *len);
/* Merges a bulk state (0x82 + NdbBulk) entry by entry with the rules above
 * (no relay broadcasts). 0, or -EBADMSG (nothing changed). */
int ndb_merge_bulk(struct ndb *db, const uint8_t *msg, size_t len,
		   int64_t now);

/* ---- membership, from swim events ---- */

/* Hides every entry node owns (DEL callbacks for visible ones). */
void ndb_node_dead(struct ndb *db, const char *node);
/* Shows them again (ADD callbacks). */
void ndb_node_alive(struct ndb *db, const char *node);
/* Drops everything node owns, tombstones included (node reaped). */
void ndb_node_forget(struct ndb *db, const char *node);

/* Drops tombstones older than tombstone_ttl. */
void ndb_gc(struct ndb *db, int64_t now);

/* ---- reads ---- */

/* Calls fn for every visible entry of network_id (NULL: every visible
 * network) in table (NULL: every table); returns how many. */
size_t ndb_foreach(const struct ndb *db, const char *network_id,
		   const char *table,
		   void (*fn)(void *arg, const struct ndb_entry *e), void *arg);
/* Nodes we know on network_id (joined and not left), self included;
 * fn may be NULL to count. */
size_t ndb_network_nodes(const struct ndb *db, const char *network_id,
			 void (*fn)(void *arg, const char *node), void *arg);

struct ndb_stats {
	uint64_t applied;      /* events that changed something */
	uint64_t stale;        /* older or duplicate events */
	uint64_t bad;          /* malformed */
	size_t entries;        /* live entries, all networks */
	size_t tombstones;
};
void ndb_get_stats(const struct ndb *db, struct ndb_stats *out);

#endif

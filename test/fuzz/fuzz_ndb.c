/* Fuzz target for netd's table messages (ndb.c): one user message
 * (0x80 network event, 0x81 table event, 0x82 bulk state) handed to an
 * ndb that already holds a little state of its own (so events about
 * FUZZ_NDB_SELF exercise the self-correction paths), then the same bytes
 * as a push/pull state, then node deaths, a bulk round trip and gc.
 * Whatever the bytes, it must return cleanly, read only inside the input,
 * and keep ndb's promises, which it checks (abort on a broken one):
 * - a rejected message changes nothing (no state, no callback, no
 *   broadcast);
 * - the same message a second time is never applied again;
 * - ndb_merge_bulk accepts exactly the bulk states ndb_on_message does;
 * - our own bulk state is always valid and merges into a fresh ndb.
 * Built for libFuzzer with -fsanitize=fuzzer, or linked with replay.c to
 * replay corpus/ndb in `make check`. The corpus uses the names below. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ndb.h"

#define FUZZ_NDB_SELF "fuzz-self"
#define FUZZ_NDB_PEER "peer-1"
#define FUZZ_NDB_NET "net-a"     /* joined, holds our "ep-self" */
#define FUZZ_NDB_NET2 "net-b"    /* not joined, holds our "ep-other" */

struct fuzz_counts {
	unsigned changes;      /* change callbacks */
	unsigned broadcasts;   /* broadcast callbacks */
};

static volatile unsigned sink;

static unsigned touch(const void *p, size_t len)
{
	const uint8_t *b = p;
	unsigned s = 0;
	for (size_t i = 0; i < len; i++)
		s += b[i];
	return s;
}

static unsigned touch_str(const char *s)
{
	return touch(s, strlen(s));
}

static void on_change(void *arg, enum ndb_change what, const struct ndb_entry *e)
{
	struct fuzz_counts *c = arg;
	c->changes++;
	sink += (unsigned)what + touch_str(e->network_id) + touch_str(e->table) +
		touch_str(e->key) + touch_str(e->owner) + touch(e->value, e->value_len);
}

static void on_broadcast(void *arg, const char *name, const uint8_t *msg, size_t len)
{
	struct fuzz_counts *c = arg;
	c->broadcasts++;
	sink += touch_str(name) + touch(msg, len);
}

static void on_entry(void *arg, const struct ndb_entry *e)
{
	on_change(arg, NDB_ADD, e);
}

static void on_node(void *arg, const char *node)
{
	(void)arg;
	sink += touch_str(node);
}

static struct ndb *fuzz_db(const char *self, struct fuzz_counts *c)
{
	struct ndb_config cfg = {
		.self = self,
		.tombstone_ttl = 1000,
		.on_change = on_change,
		.broadcast = on_broadcast,
		.arg = c,
	};
	return ndb_new(&cfg);
}

static bool same(const struct ndb_stats *a, const struct ndb_stats *b)
{
	return a->applied == b->applied && a->stale == b->stale &&
	       a->entries == b->entries && a->tombstones == b->tombstones;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_counts c = { 0, 0 }, c2 = { 0, 0 };
	struct ndb_stats before, after;
	uint8_t *out;
	size_t len;

	struct ndb *db = fuzz_db(FUZZ_NDB_SELF, &c);
	ndb_resume_clocks(db, 10, 10);
	ndb_join_network(db, FUZZ_NDB_NET, 1);
	ndb_put(db, FUZZ_NDB_NET, NDB_TABLE_ENDPOINTS, "ep-self", (const uint8_t *)"self", 4, 1);
	ndb_put(db, FUZZ_NDB_NET2, NDB_TABLE_ENDPOINTS, "ep-other", (const uint8_t *)"other", 5, 1);

	ndb_get_stats(db, &before);
	struct fuzz_counts c0 = c;
	uint64_t nclk = ndb_network_clock(db), tclk = ndb_table_clock(db);
	int r = ndb_on_message(db, data, size, 2);
	ndb_get_stats(db, &after);
	if (r < 0 && (!same(&before, &after) || c.changes != c0.changes ||
		      c.broadcasts != c0.broadcasts || ndb_network_clock(db) != nclk ||
		      ndb_table_clock(db) != tclk))
		abort();
	if (r == -EBADMSG && after.bad != before.bad + 1)
		abort();

	int r2 = ndb_on_message(db, data, size, 2);
	if (r2 == 1 || (r < 0) != (r2 < 0))
		abort();

	int rb = ndb_merge_bulk(db, data, size, 3);
	bool is_bulk = size > 0 && data[0] == NDB_MSG_BULK;
	if ((rb == 0) != (is_bulk && r >= 0))
		abort();

	ndb_node_dead(db, FUZZ_NDB_PEER);
	ndb_foreach(db, NULL, NULL, on_entry, &c2);
	ndb_node_alive(db, FUZZ_NDB_PEER);
	ndb_foreach(db, FUZZ_NDB_NET, NDB_TABLE_ENDPOINTS, on_entry, &c2);
	ndb_network_nodes(db, FUZZ_NDB_NET, on_node, NULL);

	/* Our own state must always be a valid bulk. */
	if (ndb_bulk(db, &out, &len) == 0) {
		struct ndb *db2 = fuzz_db("fuzz-other", &c2);
		ndb_join_network(db2, FUZZ_NDB_NET, 1);
		if (ndb_merge_bulk(db2, out, len, 4) != 0)
			abort();
		ndb_free(db2);
		free(out);
	}

	ndb_leave_network(db, FUZZ_NDB_NET, 5);
	ndb_node_forget(db, FUZZ_NDB_PEER);
	ndb_gc(db, INT64_C(1) << 40);
	ndb_free(db);
	return 0;
}

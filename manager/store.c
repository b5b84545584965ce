/* The manager's store (see store.h).
 *
 * Layout on disk (SQLite, WAL):
 *   meta(key, value)          'schema_version' and 'version' (last command)
 *   log(version, command)     every StoreCommand as applied, for resync/replay
 *   objects(kind, id, data)   the current objects, packed protobuf; the
 *                             cluster is the single row ('cluster', '')
 *
 * In memory: per kind a dense array of object pointers plus an
 * open-addressing (linear probing) hash index id -> array position. Deletion
 * swaps the last object into the hole, so arrays stay dense and lookups O(1).
 *
 * A commit packs every object exactly once, straight into the command buffer
 * (StoreCommand is `repeated StoreAction actions = 1` and an action's object
 * is one length-delimited field, so the command is the concatenation of
 * small headers and the packed objects); each objects row is then bound as a
 * slice of that buffer. */
#include "store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "log.h"
#include "pb.h"
#include "util.h"

enum kind {
	KIND_NODE,
	KIND_SERVICE,
	KIND_TASK,
	KIND_NETWORK,
	KIND_CLUSTER, /* single object, not in a table */
	KIND_MAX,
};
#define KIND_TABLES KIND_CLUSTER /* kinds held in tables: 0 .. KIND_CLUSTER-1 */

/* Wire type 2 (length-delimited) key bytes of the StoreCommand/StoreAction
 * fields we write. */
#define KEY_LEN(field) ((uint8_t)((field) << 3 | 2))
#define FIELD_COMMAND_ACTIONS 1
#define FIELD_ACTION_DELETE_KIND 10
#define FIELD_ACTION_DELETE_ID 11

static const struct kind_info {
	const char *name;                       /* objects.kind and delete_kind */
	const ProtobufCMessageDescriptor *desc; /* to unpack rows on load */
	int field;                              /* StoreAction oneof field number */
} kinds[KIND_MAX] = {
	[KIND_NODE] = { "node", &swarm__node__descriptor, SWARM__STORE_ACTION__OBJ_NODE },
	[KIND_SERVICE] = { "service", &swarm__service__descriptor, SWARM__STORE_ACTION__OBJ_SERVICE },
	[KIND_TASK] = { "task", &swarm__task__descriptor, SWARM__STORE_ACTION__OBJ_TASK },
	[KIND_NETWORK] = { "network", &swarm__network__descriptor, SWARM__STORE_ACTION__OBJ_NETWORK },
	[KIND_CLUSTER] = { "cluster", &swarm__cluster__descriptor, SWARM__STORE_ACTION__OBJ_CLUSTER },
};

/* Objects-table id of the cluster row: there is only one cluster, whatever
 * its id, so a fixed key makes a put replace it. */
#define CLUSTER_ROW_ID ""

/* Schema migrations, applied in order, each in its own transaction;
 * meta.schema_version counts those applied. Append only. */
static const char *const migrations[] = {
	/* 1: the command log and the objects. */
	"CREATE TABLE log(version INTEGER PRIMARY KEY, command BLOB NOT NULL);"
	"CREATE TABLE objects(kind TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,"
	" PRIMARY KEY(kind, id)) WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES('version', 0);",
};

/* One kind's objects and their index. */
struct kind_tab {
	void **objs;     /* the objects, dense, owned */
	size_t n;        /* objects in use */
	size_t cap;      /* allocated length of objs */
	uint32_t *slot;  /* index slots: position in objs + 1, 0 = empty */
	uint32_t *hash;  /* hash of the id held in each slot */
	size_t nslots;   /* power of two, or 0 before the first insert */
};

struct store {
	sqlite3 *db;
	uint64_t version;          /* last applied command */
	Swarm__Cluster *cluster;   /* NULL until first put */
	struct kind_tab tabs[KIND_TABLES];
	sqlite3_stmt *st_begin;    /* BEGIN IMMEDIATE */
	sqlite3_stmt *st_commit;   /* COMMIT */
	sqlite3_stmt *st_rollback; /* ROLLBACK */
	sqlite3_stmt *st_log;      /* INSERT INTO log */
	sqlite3_stmt *st_put;      /* upsert into objects */
	sqlite3_stmt *st_del;      /* DELETE FROM objects */
	sqlite3_stmt *st_version;  /* UPDATE meta version */
};

/* One queued action. */
struct tx_action {
	int kind;      /* enum kind */
	void *obj;     /* put: the object (owned until applied); NULL for a delete */
	char *del_id;  /* delete: the id (owned) */
	size_t off;    /* put: where the packed object starts in the command */
	size_t len;    /* put: its packed length */
};

struct store_tx {
	struct store *s;
	struct tx_action *a; /* actions in order */
	size_t n, cap;
	int err;             /* first misuse seen (-EINVAL), reported by commit */
};

/* ---- objects ---------------------------------------------------------- */

static const char *obj_id(int kind, const void *obj)
{
	switch (kind) {
	case KIND_NODE:
		return ((const Swarm__Node *)obj)->id;
	case KIND_SERVICE:
		return ((const Swarm__Service *)obj)->id;
	case KIND_TASK:
		return ((const Swarm__Task *)obj)->id;
	case KIND_NETWORK:
		return ((const Swarm__Network *)obj)->id;
	case KIND_CLUSTER:
		return ((const Swarm__Cluster *)obj)->id;
	}
	return NULL;
}

/* Kind by name among those a delete or a row may name; -1 when unknown. */
static int kind_by_name(const char *name, bool allow_cluster)
{
	for (int k = 0; k < KIND_MAX; k++)
		if (strcmp(kinds[k].name, name) == 0)
			return (k == KIND_CLUSTER && !allow_cluster) ? -1 : k;
	return -1;
}

/* ---- per-kind table: dense array + linear-probing hash index ----------- */

/* FNV-1a, 32 bits: ids are short random strings, so this spreads well. */
static uint32_t id_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Slot holding id, or SIZE_MAX. */
static size_t tab_find(const struct kind_tab *t, int kind, const char *id, uint32_t h)
{
	if (!t->nslots)
		return SIZE_MAX;
	size_t mask = t->nslots - 1;
	for (size_t i = h & mask; t->slot[i]; i = (i + 1) & mask)
		if (t->hash[i] == h && strcmp(obj_id(kind, t->objs[t->slot[i] - 1]), id) == 0)
			return i;
	return SIZE_MAX;
}

/* Places position pos (already in objs) with hash h in a free slot. */
static void tab_slot_insert(struct kind_tab *t, uint32_t h, size_t pos)
{
	size_t mask = t->nslots - 1;
	size_t i = h & mask;
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = (uint32_t)(pos + 1);
	t->hash[i] = h;
}

/* Keeps the index at most half full so probe runs stay short. */
static void tab_reserve(struct kind_tab *t, size_t want)
{
	if (want > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		while (cap < want)
			cap *= 2;
		t->objs = xrealloc(t->objs, cap * sizeof(*t->objs));
		t->cap = cap;
	}
	if (want * 2 <= t->nslots)
		return;
	size_t nslots = t->nslots ? t->nslots * 2 : 128;
	while (want * 2 > nslots)
		nslots *= 2;
	uint32_t *oslot = t->slot, *ohash = t->hash;
	size_t onslots = t->nslots;
	t->slot = xcalloc(nslots, sizeof(*t->slot));
	t->hash = xmalloc(nslots * sizeof(*t->hash));
	t->nslots = nslots;
	for (size_t i = 0; i < onslots; i++)
		if (oslot[i])
			tab_slot_insert(t, ohash[i], oslot[i] - 1);
	free(oslot);
	free(ohash);
}

/* Adds obj (taking it), replacing and freeing an object with the same id. */
static void tab_put(struct kind_tab *t, int kind, void *obj)
{
	uint32_t h = id_hash(obj_id(kind, obj));
	size_t i = tab_find(t, kind, obj_id(kind, obj), h);
	if (i != SIZE_MAX) {
		void **p = &t->objs[t->slot[i] - 1];
		pb_free(*p);
		*p = obj;
		return;
	}
	tab_reserve(t, t->n + 1);
	t->objs[t->n] = obj;
	tab_slot_insert(t, h, t->n);
	t->n++;
}

/* Removes slot i by backward shifting the rest of its probe run, so no
 * tombstones are needed. */
static void tab_slot_remove(struct kind_tab *t, size_t i)
{
	size_t mask = t->nslots - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!t->slot[j])
			break;
		size_t home = t->hash[j] & mask;
		/* The entry at j may move to i unless its home lies cyclically
		 * in (i, j]. */
		bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		t->slot[i] = t->slot[j];
		t->hash[i] = t->hash[j];
		i = j;
	}
	t->slot[i] = 0;
}

/* Deletes and frees the object with this id; absent ids are ignored. */
static void tab_del(struct kind_tab *t, int kind, const char *id)
{
	size_t i = tab_find(t, kind, id, id_hash(id));
	if (i == SIZE_MAX)
		return;
	size_t pos = t->slot[i] - 1;
	pb_free(t->objs[pos]);
	tab_slot_remove(t, i);
	size_t last = t->n - 1;
	if (pos != last) {
		/* Move the last object into the hole and repoint its slot. */
		void *moved = t->objs[last];
		const char *mid = obj_id(kind, moved);
		size_t j = tab_find(t, kind, mid, id_hash(mid));
		t->objs[pos] = moved;
		t->slot[j] = (uint32_t)(pos + 1);
	}
	t->n--;
}

static void tab_clear(struct kind_tab *t)
{
	for (size_t i = 0; i < t->n; i++)
		pb_free(t->objs[i]);
	free(t->objs);
	free(t->slot);
	free(t->hash);
	memset(t, 0, sizeof(*t));
}

/* Puts into memory (no I/O); takes obj. */
static void mem_put(struct store *s, int kind, void *obj)
{
	if (kind == KIND_CLUSTER) {
		pb_free(s->cluster);
		s->cluster = obj;
	} else {
		tab_put(&s->tabs[kind], kind, obj);
	}
}

/* ---- SQLite helpers ----------------------------------------------------- */

/* Steps a statement that returns no rows we need, and resets it.
 * SQLITE_OK or the error code. */
static int st_run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return (rc == SQLITE_DONE || rc == SQLITE_ROW) ? SQLITE_OK : rc;
}

static int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK)
		log_err("store, cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
	return rc;
}

/* Rolls back whatever transaction is open (SQLite may already have). */
static void db_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db) && st_run(s->st_rollback) != SQLITE_OK)
		log_err("store, rollback failed: %s", sqlite3_errmsg(s->db));
}

/* Reads meta.key into *out (0 when the row is absent). */
static int meta_get(sqlite3 *db, const char *key, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = db_prepare(db, "SELECT value FROM meta WHERE key = ?1", &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*out = 0;
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* One migration step, in its own transaction under the write lock:
 * applies the next pending migration, or sets *done when none is left.
 * Re-reading the schema version under the lock means two processes opening
 * the same new database do not both migrate it. 0 or -errno. */
static int db_migrate_step(sqlite3 *db, bool *done)
{
	const int64_t latest = (int64_t)ARRAY_SIZE(migrations);
	int64_t sv = 0;
	char *sql = NULL;
	int r = -EIO;

	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE;"
			      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
			      " value INTEGER NOT NULL);", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = meta_get(db, "schema_version", &sv);
	if (rc != SQLITE_OK)
		goto out;
	if (sv < 0 || sv > latest) {
		log_err("store, database schema version %lld is newer than this program's %lld",
			(long long)sv, (long long)latest);
		r = -ENOTSUP;
		goto out;
	}
	if (sv == latest) {
		*done = true;
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		r = rc == SQLITE_OK ? 0 : -EIO;
		goto out;
	}
	rc = sqlite3_exec(db, migrations[sv], NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		sql = sqlite3_mprintf("INSERT INTO meta(key, value) VALUES('schema_version', %lld)"
				      " ON CONFLICT(key) DO UPDATE SET value = excluded.value;"
				      "COMMIT;", (long long)(sv + 1));
		rc = sql ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
	}
	if (rc == SQLITE_OK) {
		log_info("store, applied schema migration %lld", (long long)(sv + 1));
		r = 0;
	}
out:
	if (r == -EIO)
		log_err("store, schema migration failed: %s", sqlite3_errmsg(db));
	if (r && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_free(sql);
	return r;
}

/* Brings the schema up to date. 0 or -errno. */
static int db_migrate(sqlite3 *db)
{
	bool done = false;
	int r = 0;
	while (!r && !done)
		r = db_migrate_step(db, &done);
	return r;
}

/* Loads the objects table into memory. */
static int db_load(struct store *s)
{
	sqlite3_stmt *st;
	int r = 0, rc = db_prepare(s->db, "SELECT kind, id, data FROM objects", &st);
	if (rc != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kname = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);
		const void *data = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		int kind = kind_by_name(kname ? kname : "", true);
		if (kind < 0) {
			log_err("store, unknown object kind \"%s\" in the database", kname ? kname : "");
			r = -EIO;
			break;
		}
		void *obj = protobuf_c_message_unpack(kinds[kind].desc, NULL, len, data);
		if (!obj) {
			log_err("store, cannot decode %s %s from the database", kname, id ? id : "");
			r = -EIO;
			break;
		}
		mem_put(s, kind, obj);
	}
	if (!r && rc != SQLITE_DONE) {
		log_err("store, cannot load objects: %s", sqlite3_errmsg(s->db));
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r;
}

/* ---- open / close ------------------------------------------------------- */

int store_open(const char *path, struct store **out)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int64_t version;
	int r = -EIO;

	*out = NULL;
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		int e = s->db ? sqlite3_system_errno(s->db) : 0;
		log_err("store, cannot open %s: %s", path,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		r = e > 0 ? -e : -EIO;
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* Another process (an operator's sqlite3 shell, a backup) may hold the
	 * lock briefly; wait a little rather than fail the commit. */
	sqlite3_busy_timeout(s->db, 1000);
	rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_err("store, cannot configure %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	r = db_migrate(s->db);
	if (r)
		goto fail;
	r = -EIO;
	if (db_prepare(s->db, "BEGIN IMMEDIATE", &s->st_begin) ||
	    db_prepare(s->db, "COMMIT", &s->st_commit) ||
	    db_prepare(s->db, "ROLLBACK", &s->st_rollback) ||
	    db_prepare(s->db, "INSERT INTO log(version, command) VALUES(?1, ?2)", &s->st_log) ||
	    db_prepare(s->db, "INSERT INTO objects(kind, id, data) VALUES(?1, ?2, ?3)"
		       " ON CONFLICT(kind, id) DO UPDATE SET data = excluded.data", &s->st_put) ||
	    db_prepare(s->db, "DELETE FROM objects WHERE kind = ?1 AND id = ?2", &s->st_del) ||
	    db_prepare(s->db, "UPDATE meta SET value = ?1 WHERE key = 'version'", &s->st_version))
		goto fail;
	if (meta_get(s->db, "version", &version) != SQLITE_OK) {
		log_err("store, cannot read the version: %s", sqlite3_errmsg(s->db));
		goto fail;
	}
	s->version = (uint64_t)version;
	r = db_load(s);
	if (r)
		goto fail;
	log_info("store, opened %s at version %llu", path, (unsigned long long)s->version);
	*out = s;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->st_begin);
	sqlite3_finalize(s->st_commit);
	sqlite3_finalize(s->st_rollback);
	sqlite3_finalize(s->st_log);
	sqlite3_finalize(s->st_put);
	sqlite3_finalize(s->st_del);
	sqlite3_finalize(s->st_version);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_err("store, close: %s", sqlite3_errmsg(s->db));
	for (int k = 0; k < KIND_TABLES; k++)
		tab_clear(&s->tabs[k]);
	pb_free(s->cluster);
	free(s);
}

/* ---- reads -------------------------------------------------------------- */

uint64_t store_version(const struct store *s)
{
	return s->version;
}

const Swarm__Cluster *store_cluster(const struct store *s)
{
	return s->cluster;
}

static const void *store_get(const struct store *s, int kind, const char *id)
{
	const struct kind_tab *t = &s->tabs[kind];
	if (!id)
		return NULL;
	size_t i = tab_find(t, kind, id, id_hash(id));
	return i == SIZE_MAX ? NULL : t->objs[t->slot[i] - 1];
}

const Swarm__Node *store_node(const struct store *s, const char *id)
{
	return store_get(s, KIND_NODE, id);
}

const Swarm__Service *store_service(const struct store *s, const char *id)
{
	return store_get(s, KIND_SERVICE, id);
}

const Swarm__Task *store_task(const struct store *s, const char *id)
{
	return store_get(s, KIND_TASK, id);
}

const Swarm__Network *store_network(const struct store *s, const char *id)
{
	return store_get(s, KIND_NETWORK, id);
}

size_t store_nodes(const struct store *s, const Swarm__Node *const **out)
{
	*out = (const Swarm__Node *const *)s->tabs[KIND_NODE].objs;
	return s->tabs[KIND_NODE].n;
}

size_t store_services(const struct store *s, const Swarm__Service *const **out)
{
	*out = (const Swarm__Service *const *)s->tabs[KIND_SERVICE].objs;
	return s->tabs[KIND_SERVICE].n;
}

size_t store_tasks(const struct store *s, const Swarm__Task *const **out)
{
	*out = (const Swarm__Task *const *)s->tabs[KIND_TASK].objs;
	return s->tabs[KIND_TASK].n;
}

size_t store_networks(const struct store *s, const Swarm__Network *const **out)
{
	*out = (const Swarm__Network *const *)s->tabs[KIND_NETWORK].objs;
	return s->tabs[KIND_NETWORK].n;
}

/* ---- transactions ------------------------------------------------------- */

struct store_tx *store_tx_begin(struct store *s)
{
	struct store_tx *tx = xcalloc(1, sizeof(*tx));
	tx->s = s;
	return tx;
}

static void tx_add(struct store_tx *tx, int kind, void *obj, char *del_id)
{
	if (tx->n == tx->cap) {
		tx->cap = tx->cap ? tx->cap * 2 : 16;
		tx->a = xrealloc(tx->a, tx->cap * sizeof(*tx->a));
	}
	tx->a[tx->n++] = (struct tx_action){ .kind = kind, .obj = obj, .del_id = del_id };
}

/* A put of an object without an id (other than the cluster) is misuse: it
 * is remembered and fails the commit. The object is kept to be freed. */
static void tx_put(struct store_tx *tx, int kind, void *obj)
{
	if (!obj) {
		tx->err = -EINVAL;
		return;
	}
	const char *id = obj_id(kind, obj);
	if (!id || (kind != KIND_CLUSTER && !*id)) {
		log_err("store, put of a %s without an id", kinds[kind].name);
		tx->err = -EINVAL;
	}
	tx_add(tx, kind, obj, NULL);
}

void store_tx_put_cluster(struct store_tx *tx, Swarm__Cluster *c)
{
	tx_put(tx, KIND_CLUSTER, c);
}

void store_tx_put_node(struct store_tx *tx, Swarm__Node *n)
{
	tx_put(tx, KIND_NODE, n);
}

void store_tx_put_service(struct store_tx *tx, Swarm__Service *svc)
{
	tx_put(tx, KIND_SERVICE, svc);
}

void store_tx_put_task(struct store_tx *tx, Swarm__Task *t)
{
	tx_put(tx, KIND_TASK, t);
}

void store_tx_put_network(struct store_tx *tx, Swarm__Network *n)
{
	tx_put(tx, KIND_NETWORK, n);
}

void store_tx_delete(struct store_tx *tx, const char *kind, const char *id)
{
	int k = kind ? kind_by_name(kind, false) : -1;
	if (k < 0 || !id || !*id) {
		log_err("store, invalid delete of %s \"%s\"", kind ? kind : "(null)", id ? id : "(null)");
		tx->err = -EINVAL;
		return;
	}
	tx_add(tx, k, NULL, xstrdup(id));
}

size_t store_tx_size(const struct store_tx *tx)
{
	return tx->n;
}

void store_tx_abort(struct store_tx *tx)
{
	if (!tx)
		return;
	for (size_t i = 0; i < tx->n; i++) {
		pb_free(tx->a[i].obj);
		free(tx->a[i].del_id);
	}
	free(tx->a);
	free(tx);
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* Size of a length-delimited field (key byte + length + payload). */
static size_t ld_size(size_t len)
{
	return 1 + varint_len(len) + len;
}

static uint8_t *ld_put(uint8_t *p, int field, const void *data, size_t len)
{
	*p++ = KEY_LEN(field);
	p = varint_put(p, len);
	memcpy(p, data, len);
	return p + len;
}

/* Encodes the transaction as a StoreCommand, packing each object once into
 * its place in the buffer and recording where (a[i].off/len). Byte for byte
 * what protobuf-c would produce for the same command. */
static uint8_t *tx_encode(struct store_tx *tx, size_t *lenp)
{
	size_t total = 0;
	size_t *alen = xmalloc(tx->n * sizeof(*alen));
	for (size_t i = 0; i < tx->n; i++) {
		struct tx_action *a = &tx->a[i];
		if (a->obj) {
			a->len = protobuf_c_message_get_packed_size(a->obj);
			alen[i] = ld_size(a->len);
		} else {
			alen[i] = ld_size(strlen(kinds[a->kind].name)) + ld_size(strlen(a->del_id));
		}
		total += ld_size(alen[i]);
	}
	uint8_t *buf = xmalloc(total ? total : 1), *p = buf;
	for (size_t i = 0; i < tx->n; i++) {
		struct tx_action *a = &tx->a[i];
		*p++ = KEY_LEN(FIELD_COMMAND_ACTIONS);
		p = varint_put(p, alen[i]);
		if (a->obj) {
			*p++ = KEY_LEN(kinds[a->kind].field);
			p = varint_put(p, a->len);
			a->off = (size_t)(p - buf);
			p += protobuf_c_message_pack(a->obj, p);
		} else {
			const char *kn = kinds[a->kind].name;
			p = ld_put(p, FIELD_ACTION_DELETE_KIND, kn, strlen(kn));
			p = ld_put(p, FIELD_ACTION_DELETE_ID, a->del_id, strlen(a->del_id));
		}
	}
	free(alen);
	*lenp = (size_t)(p - buf);
	return buf;
}

/* Objects-table id an action writes or deletes. */
static const char *row_id(const struct tx_action *a)
{
	if (!a->obj)
		return a->del_id;
	return a->kind == KIND_CLUSTER ? CLUSTER_ROW_ID : obj_id(a->kind, a->obj);
}

/* Sort key of an action's objects-table row. */
struct row_key {
	const char *id;  /* row_id() */
	uint32_t kind;   /* enum kind */
	uint32_t idx;    /* position in the transaction */
};

/* Key order (kind, id), then action order so the last action on a key
 * sorts last. */
static int row_cmp(const void *x, const void *y)
{
	const struct row_key *a = x, *b = y;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	int c = strcmp(a->id, b->id);
	return c ? c : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

/* tx's actions sorted by row_cmp; malloc'd. */
static struct row_key *tx_row_order(const struct store_tx *tx)
{
	struct row_key *order = xmalloc(tx->n * sizeof(*order));
	for (size_t i = 0; i < tx->n; i++)
		order[i] = (struct row_key){ row_id(&tx->a[i]), (uint32_t)tx->a[i].kind, (uint32_t)i };
	qsort(order, tx->n, sizeof(*order), row_cmp);
	return order;
}

/* Writes the command and its effects in one SQLite transaction. 0 or -EIO
 * (rolled back). */
static int tx_write(struct store_tx *tx, const uint8_t *cmd, size_t cmdlen, uint64_t version)
{
	struct store *s = tx->s;
	struct row_key *order = NULL;
	const char *what = "begin";
	int rc = st_run(s->st_begin);
	if (rc != SQLITE_OK)
		goto out;

	what = "log insert";
	sqlite3_bind_int64(s->st_log, 1, (sqlite3_int64)version);
	sqlite3_bind_blob64(s->st_log, 2, cmd, cmdlen, SQLITE_STATIC);
	rc = st_run(s->st_log);
	if (rc != SQLITE_OK)
		goto out;

	/* Rows are written in key order, which keeps B-tree inserts local
	 * (ids are random), and only the last action on a key is written. */
	what = "object write";
	order = tx_row_order(tx);
	for (size_t j = 0; j < tx->n; j++) {
		const struct tx_action *a = &tx->a[order[j].idx];
		if (j + 1 < tx->n && order[j + 1].kind == order[j].kind &&
		    strcmp(order[j + 1].id, order[j].id) == 0)
			continue; /* superseded later in this transaction */
		sqlite3_stmt *st = a->obj ? s->st_put : s->st_del;
		sqlite3_bind_text(st, 1, kinds[a->kind].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, order[j].id, -1, SQLITE_STATIC);
		if (a->obj)
			sqlite3_bind_blob64(st, 3, cmd + a->off, a->len, SQLITE_STATIC);
		rc = st_run(st);
		if (rc != SQLITE_OK)
			goto out;
	}

	what = "version update";
	sqlite3_bind_int64(s->st_version, 1, (sqlite3_int64)version);
	rc = st_run(s->st_version);
	if (rc != SQLITE_OK)
		goto out;
	what = "commit";
	rc = st_run(s->st_commit);
out:
	if (rc != SQLITE_OK) {
		log_err("store, %s failed for version %llu: %s", what,
			(unsigned long long)version, sqlite3_errmsg(s->db));
		db_rollback(s);
	}
	/* Nothing may keep pointing into cmd or the objects. */
	sqlite3_clear_bindings(s->st_log);
	sqlite3_clear_bindings(s->st_put);
	sqlite3_clear_bindings(s->st_del);
	free(order);
	return rc == SQLITE_OK ? 0 : -EIO;
}

int store_tx_commit(struct store_tx *tx)
{
	if (!tx)
		return -EINVAL;
	struct store *s = tx->s;
	uint8_t *cmd = NULL;
	size_t cmdlen;
	int r = tx->err;

	if (r || tx->n == 0)
		goto out;
	cmd = tx_encode(tx, &cmdlen);
	r = tx_write(tx, cmd, cmdlen, s->version + 1);
	if (r)
		goto out;
	/* Durable: now memory follows, in order (a later action on the same
	 * id wins), and cannot fail. */
	for (size_t i = 0; i < tx->n; i++) {
		struct tx_action *a = &tx->a[i];
		if (a->obj)
			mem_put(s, a->kind, a->obj);
		else
			tab_del(&s->tabs[a->kind], a->kind, a->del_id);
		a->obj = NULL;
	}
	s->version++;
out:
	free(cmd);
	store_tx_abort(tx);
	return r;
}

int store_apply_command(struct store *s, const uint8_t *buf, size_t len)
{
	Swarm__StoreCommand *cmd = swarm__store_command__unpack(NULL, len, buf);
	if (!cmd) {
		log_err("store, cannot decode a command of %zu bytes", len);
		return -EINVAL;
	}
	struct store_tx *tx = store_tx_begin(s);
	for (size_t i = 0; i < cmd->n_actions; i++) {
		Swarm__StoreAction *a = cmd->actions[i];
		bool has_delete = a->delete_kind[0] || a->delete_id[0];
		if (a->obj_case == SWARM__STORE_ACTION__OBJ__NOT_SET) {
			if (has_delete)
				store_tx_delete(tx, a->delete_kind, a->delete_id);
			else
				tx->err = -EINVAL; /* an empty action */
			continue;
		}
		if (has_delete)
			tx->err = -EINVAL; /* both an object and a delete */
		switch (a->obj_case) {
		case SWARM__STORE_ACTION__OBJ_NODE:
			store_tx_put_node(tx, a->node);
			break;
		case SWARM__STORE_ACTION__OBJ_SERVICE:
			store_tx_put_service(tx, a->service);
			break;
		case SWARM__STORE_ACTION__OBJ_TASK:
			store_tx_put_task(tx, a->task);
			break;
		case SWARM__STORE_ACTION__OBJ_NETWORK:
			store_tx_put_network(tx, a->network);
			break;
		case SWARM__STORE_ACTION__OBJ_CLUSTER:
			store_tx_put_cluster(tx, a->cluster);
			break;
		default:
			tx->err = -EINVAL;
			continue;
		}
		/* The tx took the object: unset the case so that freeing the
		 * command does not free it too. */
		a->obj_case = SWARM__STORE_ACTION__OBJ__NOT_SET;
		a->node = NULL;
	}
	pb_free(cmd);
	if (tx->err)
		log_err("store, rejected an invalid command");
	return store_tx_commit(tx);
}

int store_compact_log(struct store *s, uint64_t keep)
{
	if (s->version <= keep)
		return 0;
	sqlite3_stmt *st;
	if (db_prepare(s->db, "DELETE FROM log WHERE version <= ?1", &st) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(s->version - keep));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_err("store, log compaction failed: %s", sqlite3_errmsg(s->db));
		return -EIO;
	}
	return 0;
}

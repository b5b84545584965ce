/* Unit tests for manager/store.c: schema and reopen, puts/replaces/deletes,
 * rollback on an injected SQLite failure, command replay, the 100k-task
 * commit timing. Each test works in its own mkdtemp directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "manager/store.h"
#include "pb.h"
#include "util.h"

struct fixture {
	char dir[64];   /* mkdtemp directory */
	char path[96];  /* database inside it */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static Swarm__Node *mk_node(const char *id, const char *hostname)
{
	Swarm__Node *n = xmalloc(sizeof(*n));
	swarm__node__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->hostname, hostname);
	pb_set_str(&n->role, "worker");
	return n;
}

static Swarm__Task *mk_task(const char *id, const char *service_id, uint64_t slot)
{
	Swarm__Task *t = xmalloc(sizeof(*t));
	swarm__task__init(t);
	pb_set_str(&t->id, id);
	pb_set_str(&t->service_id, service_id);
	pb_set_str(&t->service_name, "web");
	t->slot = slot;
	t->desired_state = SWARM__TASK_STATE__TASK_RUNNING;
	t->status = xmalloc(sizeof(*t->status));
	swarm__task_status__init(t->status);
	t->status->state = SWARM__TASK_STATE__TASK_PENDING;
	t->status->timestamp = 1700000000000000000LL;
	return t;
}

static Swarm__Service *mk_service(const char *id, const char *name)
{
	Swarm__Service *svc = xmalloc(sizeof(*svc));
	swarm__service__init(svc);
	pb_set_str(&svc->id, id);
	svc->spec = xmalloc(sizeof(*svc->spec));
	swarm__service_spec__init(svc->spec);
	pb_set_str(&svc->spec->name, name);
	svc->spec->replicas = 3;
	return svc;
}

static Swarm__Network *mk_network(const char *id, const char *subnet)
{
	Swarm__Network *n = xmalloc(sizeof(*n));
	swarm__network__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->subnet, subnet);
	n->vni = 4096;
	return n;
}

static Swarm__Cluster *mk_cluster(const char *id)
{
	Swarm__Cluster *c = xmalloc(sizeof(*c));
	swarm__cluster__init(c);
	pb_set_str(&c->id, id);
	pb_set_str(&c->worker_secret, "secret");
	c->pool_mask_len = 24;
	return c;
}

/* Runs a query returning one integer from a separate connection. */
static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_open_reopen(void **state)
{
	struct fixture *f = *state;
	struct store *s, *s2;
	const Swarm__Node *const *nodes;

	assert_int_equal(store_open(f->path, &s), 0);
	assert_int_equal(store_version(s), 0);
	assert_null(store_cluster(s));
	assert_int_equal(store_nodes(s, &nodes), 0);
	/* A second handle on the same (now existing) database. */
	assert_int_equal(store_open(f->path, &s2), 0);
	assert_int_equal(store_version(s2), 0);
	store_close(s2);
	store_close(s);

	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* Reopen: migrations are not re-run, objects and version kept. */
	assert_int_equal(store_open(f->path, &s), 0);
	struct store_tx *tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n1", "host1"));
	store_tx_put_cluster(tx, mk_cluster("c1"));
	assert_int_equal(store_tx_commit(tx), 0);
	store_close(s);
	assert_int_equal(store_open(f->path, &s), 0);
	assert_int_equal(store_version(s), 1);
	assert_non_null(store_node(s, "n1"));
	assert_string_equal(store_node(s, "n1")->hostname, "host1");
	assert_string_equal(store_cluster(s)->id, "c1");
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);

	/* A database from a newer program is refused. */
	sql_exec(f->path, "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
	assert_int_equal(store_open(f->path, &s), -ENOTSUP);
	assert_null(s);

	/* An unopenable path fails with an errno. */
	assert_true(store_open("/nonexistent-dir-for-test/x.db", &s) < 0);
	store_close(NULL);
}

static void test_put_replace_delete(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_tx *tx;

	assert_int_equal(store_open(f->path, &s), 0);

	/* An empty transaction commits nothing. */
	tx = store_tx_begin(s);
	assert_int_equal(store_tx_size(tx), 0);
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(store_version(s), 0);

	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n1", "host1"));
	store_tx_put_node(tx, mk_node("n2", "host2"));
	store_tx_put_service(tx, mk_service("s1", "web"));
	store_tx_put_task(tx, mk_task("t1", "s1", 1));
	store_tx_put_task(tx, mk_task("t2", "s1", 2));
	store_tx_put_network(tx, mk_network("w1", "198.18.0.0/24"));
	store_tx_put_cluster(tx, mk_cluster("c1"));
	assert_int_equal(store_tx_size(tx), 7);
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(store_version(s), 1);

	const Swarm__Node *const *nodes;
	const Swarm__Task *const *tasks;
	const Swarm__Service *const *svcs;
	const Swarm__Network *const *nets;
	assert_int_equal(store_nodes(s, &nodes), 2);
	assert_int_equal(store_tasks(s, &tasks), 2);
	assert_int_equal(store_services(s, &svcs), 1);
	assert_int_equal(store_networks(s, &nets), 1);
	assert_string_equal(svcs[0]->spec->name, "web");
	assert_string_equal(store_network(s, "w1")->subnet, "198.18.0.0/24");
	assert_int_equal(store_task(s, "t2")->slot, 2);
	assert_null(store_task(s, "t3"));
	assert_null(store_node(s, "t1")); /* kinds are separate */
	assert_null(store_node(s, NULL));

	/* Replace, then delete; a later action on the same id wins. */
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n1", "renamed"));
	store_tx_delete(tx, "task", "t1");
	store_tx_delete(tx, "task", "absent");
	store_tx_put_task(tx, mk_task("t9", "s1", 9));
	store_tx_delete(tx, "task", "t9");
	store_tx_put_cluster(tx, mk_cluster("c2"));
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(store_version(s), 2);
	assert_string_equal(store_node(s, "n1")->hostname, "renamed");
	assert_int_equal(store_nodes(s, &nodes), 2);
	assert_null(store_task(s, "t1"));
	assert_null(store_task(s, "t9"));
	assert_int_equal(store_tasks(s, &tasks), 1);
	assert_string_equal(tasks[0]->id, "t2");
	assert_string_equal(store_cluster(s)->id, "c2");

	/* Abort frees and changes nothing. */
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n3", "host3"));
	store_tx_abort(tx);
	store_tx_abort(NULL);
	assert_null(store_node(s, "n3"));
	assert_int_equal(store_version(s), 2);

	/* Misuse fails the whole commit. */
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n4", "host4"));
	store_tx_put_node(tx, mk_node("", "noid"));
	assert_int_equal(store_tx_commit(tx), -EINVAL);
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n4", "host4"));
	store_tx_delete(tx, "cluster", "c2");
	assert_int_equal(store_tx_commit(tx), -EINVAL);
	tx = store_tx_begin(s);
	store_tx_delete(tx, "bogus", "x");
	assert_int_equal(store_tx_commit(tx), -EINVAL);
	tx = store_tx_begin(s);
	store_tx_put_task(tx, NULL);
	assert_int_equal(store_tx_commit(tx), -EINVAL);
	assert_null(store_node(s, "n4"));
	assert_int_equal(store_version(s), 2);
	store_close(s);

	/* Everything survived a reopen, rows match memory. */
	assert_int_equal(store_open(f->path, &s), 0);
	assert_int_equal(store_version(s), 2);
	assert_string_equal(store_node(s, "n1")->hostname, "renamed");
	assert_non_null(store_node(s, "n2"));
	assert_null(store_task(s, "t1"));
	assert_non_null(store_task(s, "t2"));
	assert_int_equal(store_tasks(s, &tasks), 1);
	assert_string_equal(store_cluster(s)->id, "c2");
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM objects WHERE kind = 'cluster'"), 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM log"), 2);
	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'version'"), 2);
}

/* Many inserts and deletes in a scrambled order keep the index and the
 * dense arrays consistent (swap-with-last, backward-shift deletion). */
static void test_index_churn(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	enum { N = 3000 };
	static bool gone[N];
	char id[32];

	assert_int_equal(store_open(f->path, &s), 0);
	struct store_tx *tx = store_tx_begin(s);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "task%d", i);
		store_tx_put_task(tx, mk_task(id, "s1", (uint64_t)i));
	}
	assert_int_equal(store_tx_commit(tx), 0);

	tx = store_tx_begin(s);
	size_t ndel = 0;
	for (int i = 0; i < N; i++) {
		int k = (int)(((unsigned)i * 7919u) % N);
		if (k % 3 == 0)
			continue;
		snprintf(id, sizeof(id), "task%d", k);
		store_tx_delete(tx, "task", id);
		gone[k] = true;
		ndel++;
	}
	assert_int_equal(store_tx_commit(tx), 0);

	const Swarm__Task *const *tasks;
	size_t n = store_tasks(s, &tasks);
	assert_int_equal(n, N - ndel);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(store_task(s, tasks[i]->id), tasks[i]);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "task%d", i);
		const Swarm__Task *t = store_task(s, id);
		if (gone[i]) {
			assert_null(t);
		} else {
			assert_non_null(t);
			assert_int_equal(t->slot, i);
		}
	}
	store_close(s);
}

static void test_rollback(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_tx *tx;
	const Swarm__Node *const *nodes;

	assert_int_equal(store_open(f->path, &s), 0);
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n1", "host1"));
	store_tx_put_cluster(tx, mk_cluster("c1"));
	assert_int_equal(store_tx_commit(tx), 0);
	const Swarm__Node *n1 = store_node(s, "n1");

	/* A failure after some rows were written: a trigger rejects one. */
	sql_exec(f->path, "CREATE TRIGGER poison BEFORE INSERT ON objects"
		 " WHEN NEW.id = 'poison' BEGIN SELECT RAISE(ABORT, 'injected'); END;");
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n1", "changed"));
	store_tx_put_node(tx, mk_node("n2", "host2"));
	store_tx_put_cluster(tx, mk_cluster("c2"));
	store_tx_put_task(tx, mk_task("poison", "s1", 1));
	assert_int_equal(store_tx_commit(tx), -EIO);
	assert_int_equal(store_version(s), 1);
	assert_ptr_equal(store_node(s, "n1"), n1);
	assert_string_equal(n1->hostname, "host1");
	assert_null(store_node(s, "n2"));
	assert_string_equal(store_cluster(s)->id, "c1");
	assert_int_equal(store_nodes(s, &nodes), 1);

	/* A failure on the log insert: the next version is already taken. */
	sql_exec(f->path, "DROP TRIGGER poison; INSERT INTO log(version, command) VALUES(2, x'00');");
	tx = store_tx_begin(s);
	store_tx_delete(tx, "node", "n1");
	assert_int_equal(store_tx_commit(tx), -EIO);
	assert_ptr_equal(store_node(s, "n1"), n1);
	assert_int_equal(store_version(s), 1);

	/* Once the obstacle is gone, commits work again. */
	sql_exec(f->path, "DELETE FROM log WHERE version = 2");
	tx = store_tx_begin(s);
	store_tx_put_node(tx, mk_node("n2", "host2"));
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(store_version(s), 2);
	store_close(s);

	/* The database holds none of the failed writes. */
	assert_int_equal(store_open(f->path, &s), 0);
	assert_int_equal(store_version(s), 2);
	assert_string_equal(store_node(s, "n1")->hostname, "host1");
	assert_null(store_task(s, "poison"));
	assert_string_equal(store_cluster(s)->id, "c1");
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM objects"), 3);
}

/* Reads the log entry of a version into a malloc'd buffer. */
static uint8_t *log_entry(const char *path, int64_t version, size_t *len)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	uint8_t *buf = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT command FROM log WHERE version = ?1",
					    -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, version);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*len = (size_t)sqlite3_column_bytes(st, 0);
	buf = xmalloc(*len + 1);
	memcpy(buf, sqlite3_column_blob(st, 0), *len);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return buf;
}

static void assert_same_msg(const void *a, const void *b)
{
	size_t la, lb;
	uint8_t *pa = pb_pack(a, &la), *pb = pb_pack(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);
	free(pa);
	free(pb);
}

static void test_apply_command(void **state)
{
	struct fixture *f = *state;
	char path2[128];
	struct store *a, *b;
	struct store_tx *tx;

	snprintf(path2, sizeof(path2), "%s/replica.db", f->dir);
	assert_int_equal(store_open(f->path, &a), 0);
	assert_int_equal(store_open(path2, &b), 0);

	tx = store_tx_begin(a);
	store_tx_put_node(tx, mk_node("n1", "host1"));
	store_tx_put_service(tx, mk_service("s1", "web"));
	store_tx_put_task(tx, mk_task("t1", "s1", 1));
	store_tx_put_task(tx, mk_task("t2", "s1", 2));
	store_tx_put_network(tx, mk_network("w1", "198.18.0.0/24"));
	store_tx_put_cluster(tx, mk_cluster("c1"));
	assert_int_equal(store_tx_commit(tx), 0);
	tx = store_tx_begin(a);
	store_tx_delete(tx, "task", "t1");
	store_tx_put_node(tx, mk_node("n1", "renamed"));
	assert_int_equal(store_tx_commit(tx), 0);

	/* Replay a's log on b: same objects, same version. */
	for (int64_t v = 1; v <= 2; v++) {
		size_t len;
		uint8_t *cmd = log_entry(f->path, v, &len);
		/* The hand-built encoding is what protobuf-c itself produces. */
		Swarm__StoreCommand *c = swarm__store_command__unpack(NULL, len, cmd);
		assert_non_null(c);
		size_t len2;
		uint8_t *re = pb_pack(c, &len2);
		assert_int_equal(len, len2);
		assert_memory_equal(cmd, re, len);
		free(re);
		pb_free(c);
		assert_int_equal(store_apply_command(b, cmd, len), 0);
		free(cmd);
	}
	assert_int_equal(store_version(b), 2);
	assert_same_msg(store_node(a, "n1"), store_node(b, "n1"));
	assert_same_msg(store_service(a, "s1"), store_service(b, "s1"));
	assert_same_msg(store_task(a, "t2"), store_task(b, "t2"));
	assert_same_msg(store_network(a, "w1"), store_network(b, "w1"));
	assert_same_msg(store_cluster(a), store_cluster(b));
	assert_null(store_task(b, "t1"));

	/* A command built with protobuf-c directly. */
	Swarm__StoreAction put = SWARM__STORE_ACTION__INIT, del = SWARM__STORE_ACTION__INIT;
	Swarm__StoreAction *acts[2] = { &put, &del };
	Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
	Swarm__Node *n9 = mk_node("n9", "host9");
	put.obj_case = SWARM__STORE_ACTION__OBJ_NODE;
	put.node = n9;
	del.delete_kind = "network";
	del.delete_id = "w1";
	cmd.n_actions = 2;
	cmd.actions = acts;
	size_t len;
	uint8_t *buf = pb_pack(&cmd, &len);
	assert_int_equal(store_apply_command(b, buf, len), 0);
	free(buf);
	assert_int_equal(store_version(b), 3);
	assert_same_msg(store_node(b, "n9"), n9);
	assert_null(store_network(b, "w1"));

	/* Invalid commands change nothing. */
	static const uint8_t garbage[] = { 0x0a, 0x05, 0x0a, 0xff, 0xff };
	assert_int_equal(store_apply_command(b, garbage, sizeof(garbage)), -EINVAL);
	Swarm__StoreAction empty = SWARM__STORE_ACTION__INIT;
	acts[0] = &empty;
	cmd.n_actions = 1;
	buf = pb_pack(&cmd, &len);
	assert_int_equal(store_apply_command(b, buf, len), -EINVAL);
	free(buf);
	put.delete_kind = "node"; /* an object and a delete at once */
	put.delete_id = "n1";
	acts[0] = &put;
	buf = pb_pack(&cmd, &len);
	assert_int_equal(store_apply_command(b, buf, len), -EINVAL);
	free(buf);
	del.delete_kind = "cluster";
	acts[0] = &del;
	buf = pb_pack(&cmd, &len);
	assert_int_equal(store_apply_command(b, buf, len), -EINVAL);
	free(buf);
	pb_free(n9);
	assert_int_equal(store_version(b), 3);
	assert_non_null(store_node(b, "n1"));
	/* An empty command is a no-op. */
	assert_int_equal(store_apply_command(b, NULL, 0), 0);
	assert_int_equal(store_version(b), 3);

	store_close(a);
	store_close(b);
	unlink(path2);
	snprintf(path2, sizeof(path2), "%s/replica.db-wal", f->dir);
	unlink(path2);
	snprintf(path2, sizeof(path2), "%s/replica.db-shm", f->dir);
	unlink(path2);
}

static void test_compact_log(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	char id[16];

	assert_int_equal(store_open(f->path, &s), 0);
	assert_int_equal(store_compact_log(s, 5), 0);
	for (int i = 0; i < 10; i++) {
		struct store_tx *tx = store_tx_begin(s);
		snprintf(id, sizeof(id), "n%d", i);
		store_tx_put_node(tx, mk_node(id, "h"));
		assert_int_equal(store_tx_commit(tx), 0);
		assert_int_equal(store_version(s), (uint64_t)i + 1);
	}
	assert_int_equal(store_compact_log(s, 3), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM log"), 3);
	assert_int_equal(sql_int(f->path, "SELECT min(version) FROM log"), 8);
	assert_int_equal(store_compact_log(s, 0), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM log"), 0);
	assert_int_equal(store_version(s), 10);
	store_close(s);
}

static double elapsed(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* One transaction of 100,000 task puts (random-looking ids, as real ones
 * are), then one replacing them all. The target is well under a second
 * each; the assertion is loose so a busy machine does not fail it. */
static void test_100k_tasks(void **state)
{
	struct fixture *f = *state;
	enum { N = 100000 };
	struct store *s;
	struct timespec t0;
	char id[32];

	assert_int_equal(store_open(f->path, &s), 0);
	struct store_tx *tx = store_tx_begin(s);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "%08x%017d", (unsigned)i * 2654435761u, i);
		store_tx_put_task(tx, mk_task(id, "svc0000000000000000000000", (uint64_t)i + 1));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_tx_commit(tx), 0);
	double commit = elapsed(&t0);
	const Swarm__Task *const *tasks;
	assert_int_equal(store_tasks(s, &tasks), N);

	tx = store_tx_begin(s);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "%08x%017d", (unsigned)i * 2654435761u, i);
		Swarm__Task *t = mk_task(id, "svc0000000000000000000000", (uint64_t)i + 1);
		t->status->state = SWARM__TASK_STATE__TASK_RUNNING;
		store_tx_put_task(tx, t);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_tx_commit(tx), 0);
	double replace = elapsed(&t0);
	assert_int_equal(store_tasks(s, &tasks), N);
	assert_int_equal(store_version(s), 2);
	store_close(s);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_open(f->path, &s), 0);
	double load = elapsed(&t0);
	assert_int_equal(store_tasks(s, &tasks), N);
	assert_int_equal(store_task(s, "c7d83aef00000000000099999")->slot, N);
	assert_int_equal(store_task(s, "c7d83aef00000000000099999")->status->state,
			 SWARM__TASK_STATE__TASK_RUNNING);
	store_close(s);
	printf("store: one tx of %d task puts: %.3f s; of %d replaces: %.3f s; reopen: %.3f s\n",
	       N, commit, N, replace, load);
	assert_true(commit < 3.0);
	assert_true(replace < 3.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_replace_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_100k_tasks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

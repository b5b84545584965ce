/* The manager's store: every cluster object in memory, persisted in one
 * SQLite database (WAL, foreign keys on, schema version with migrations).
 * Every change is a StoreCommand applied in one transaction that appends it
 * to the command log and bumps the store version; the same commands can
 * later be replicated as a Raft log. Single-threaded. */
#ifndef SWARM_STORE_H
#define SWARM_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "objects.pb-c.h"

struct store;

/* Opens (creating if needed) the database at path, runs pending migrations
 * and loads every object into memory. 0 or -errno (logged). */
int store_open(const char *path, struct store **out);
void store_close(struct store *s);

/* Version of the last applied command (0 for an empty store). */
uint64_t store_version(const struct store *s);

/* Lookups by exact id. Returned pointers are borrowed: valid until the next
 * commit. NULL when absent. */
const Swarm__Cluster *store_cluster(const struct store *s);
const Swarm__Node *store_node(const struct store *s, const char *id);
const Swarm__Service *store_service(const struct store *s, const char *id);
const Swarm__Task *store_task(const struct store *s, const char *id);
const Swarm__Network *store_network(const struct store *s, const char *id);

/* Every object of a kind, as a borrowed array valid until the next commit
 * (order unspecified but stable between commits). */
size_t store_nodes(const struct store *s, const Swarm__Node *const **out);
size_t store_services(const struct store *s, const Swarm__Service *const **out);
size_t store_tasks(const struct store *s, const Swarm__Task *const **out);
size_t store_networks(const struct store *s, const Swarm__Network *const **out);

/* A transaction under construction. Puts take ownership of the object
 * (malloc-owned per lib/pb.h) and replace any object with the same id at
 * commit; deletes of absent ids are ignored. */
struct store_tx;
struct store_tx *store_tx_begin(struct store *s);
void store_tx_put_cluster(struct store_tx *tx, Swarm__Cluster *c);
void store_tx_put_node(struct store_tx *tx, Swarm__Node *n);
void store_tx_put_service(struct store_tx *tx, Swarm__Service *svc);
void store_tx_put_task(struct store_tx *tx, Swarm__Task *t);
void store_tx_put_network(struct store_tx *tx, Swarm__Network *n);
/* kind: "node" | "service" | "task" | "network". */
void store_tx_delete(struct store_tx *tx, const char *kind, const char *id);
/* Number of actions queued. */
size_t store_tx_size(const struct store_tx *tx);
/* Applies the command in one SQLite transaction, then to memory, and bumps
 * the version. On error nothing changed (database rolled back, memory
 * untouched). An empty transaction commits nothing and returns 0. Frees tx
 * either way. 0 or -errno. */
int store_tx_commit(struct store_tx *tx);
void store_tx_abort(struct store_tx *tx);

/* Applies an already serialized StoreCommand (a log entry, or a Raft entry
 * later); same contract as store_tx_commit. */
int store_apply_command(struct store *s, const uint8_t *buf, size_t len);

/* Keeps only the last keep commands in the log. 0 or -errno. */
int store_compact_log(struct store *s, uint64_t keep);

#endif

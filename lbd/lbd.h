/* swarm-lbd: service VIP balancing in every task sandbox of the node and
 * the ingress routing mesh on published ports (see plan.h for where what
 * goes, and lb.h for the kernel data path behind its ops table).
 *
 * Files:
 * - plan.c: endpoint records -> namespaces and services (pure);
 * - lbd.c: netd's stream into the records, the coalesced apply into each
 *   namespace, retried with backoff when it fails, conntrack cleanup of
 *   removed backends, periodic resync;
 * - main.c: config, metrics, the status socket, `swarm-lbd status`.
 *
 * Restart safety: the kernel keeps balancing while lbd is away (the rules
 * are the kernel's). A starting lbd changes nothing until netd's first
 * whole snapshot has arrived; it then reads back its own tables (and only
 * those) in each namespace and changes only what differs, so connections
 * in flight, established or new, see no gap. */
#ifndef SWARM_LBD_H
#define SWARM_LBD_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lb.h"

struct strmap;
struct epstream;

struct lbd_stats {
	uint64_t applies;           /* apply runs */
	uint64_t ops, op_failures;  /* kernel operations */
	uint64_t resyncs;           /* full reconciles (read back from the kernel) */
	uint64_t retries;           /* runs scheduled again after a failure */
	uint64_t flushed;           /* conntrack entries of removed backends deleted */
	uint64_t conflicts;         /* services left out (VIP or port held twice) */
	double last_apply_s;        /* duration of the last apply run */
};

struct lbd {
	struct ev_loop *loop;
	char *run_dir;
	char *prefix;               /* of the nftables table names */
	const char *kind;           /* "nftables" or "ipvs", probed at start */
	double resync_s;            /* full reconcile period */
	struct epstream *stream;
	struct strmap *recs;        /* endpoint id -> Swarm__EndpointRecord* (owned) */
	struct strmap *staging;     /* a snapshot being received */
	bool synced;                /* a whole snapshot arrived: lbd may touch the kernel */
	struct strmap *spaces;      /* netns ("" = node) -> struct lbd_space* */
	struct strmap *flush;       /* backend IPs gone: their conntrack entries go */
	ev_timer apply_t;           /* coalesced apply after changes */
	ev_timer retry_t;           /* apply again after a failed run */
	double retry_s;             /* its current backoff (0: last run clean) */
	ev_timer resync_t;          /* periodic full reconcile */
	struct lbd_stats st;
};

/* 0, or -errno when no data path works here (logged). */
int lbd_init(struct lbd *d, struct ev_loop *loop, const char *run_dir, const char *prefix,
	     double resync_s);
void lbd_fini(struct lbd *d);

/* Namespaces, services and counters as JSON (malloc'd). */
char *lbd_status_json(struct lbd *d);
size_t lbd_space_count(const struct lbd *d);
/* Services and backends programmed in all namespaces. */
void lbd_totals(const struct lbd *d, size_t *services, size_t *backends);

#endif

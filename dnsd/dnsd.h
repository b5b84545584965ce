/* swarm-dnsd: the resolver at 127.0.0.11:53 (udp and tcp) inside every
 * task sandbox, all served from one event loop.
 *
 * - sandbox.c: the sandboxes the agent announces (dnsd.sock), their
 *   sockets (opened inside the sandbox's netns), queries and replies;
 * - stream.c: netd's endpoint stream into the name index (names.h);
 * - forward.c: names we do not own go to the node's upstream resolvers
 *   with c-ares, from dnsd's own (the node's) namespace;
 * - main.c: config, metrics, the local socket. */
#ifndef SWARM_DNSD_H
#define SWARM_DNSD_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "dns_msg.h"
#include "dnsd.pb-c.h"
#include "names.h"

struct strmap;
struct fwd;
struct epstream;

struct dnsd_stats {
	uint64_t queries, answered_local, nodata, forwarded, fwd_failed, refused,
		 formerr, dropped, tcp_conns;
	uint64_t inflight;
};

struct dnsd {
	struct ev_loop *loop;
	char *state_dir, *run_dir;
	uint32_t vip_ttl, task_ttl;     /* seconds */
	struct names *names;            /* what the stream says */
	struct strmap *sandboxes;       /* task id -> struct sbx */
	struct fwd *fwd;
	struct dnsd_stats st;
	uint64_t seed;                  /* answer shuffling */
	/* stream */
	struct epstream *stream;
	struct names *staging;          /* a snapshot being received */
	uint64_t epoch;
	bool synced;                    /* a whole snapshot arrived */
	ev_timer save_t;                /* coalesced save of dnsd.state */
};

/* sandbox.c */
int dnsd_sandbox_add(struct dnsd *d, const Swarm__DnsdSandbox *s, const char **err);
void dnsd_sandbox_remove(struct dnsd *d, const char *task_id);
void dnsd_sandboxes_free(struct dnsd *d);
void dnsd_save(struct dnsd *d);
void dnsd_save_soon(struct dnsd *d);
void dnsd_load(struct dnsd *d);

/* stream.c */
void dnsd_stream_start(struct dnsd *d);
void dnsd_stream_stop(struct dnsd *d);

/* forward.c: servers "IP[:PORT]" list; timeout per server (ms); at most
 * max_inflight queries at once. */
struct fwd *fwd_new(struct ev_loop *loop, const char *servers, int timeout_ms,
		    unsigned max_inflight, int *err);
void fwd_free(struct fwd *f);
/* Sends query (raw bytes as received) upstream over tcp or udp; done is
 * called once with the answer (id as sent upstream, to be rewritten) or
 * NULL on failure (timeout, no server answered). -EBUSY when max_inflight
 * are in flight (nothing sent, done not called). */
typedef void (*fwd_done_fn)(void *arg, const uint8_t *answer, size_t len);
int fwd_query(struct fwd *f, bool tcp, const uint8_t *query, size_t len, fwd_done_fn done,
	      void *arg);
unsigned fwd_inflight(const struct fwd *f);

#endif

/* netd's endpoint-table stream, as its subscribers (dnsd, lbd) take it:
 * a connection to <run>/netd.sock that subscribes and hands every event to
 * callbacks, re-made every second while netd is away.
 *
 * The stream is a snapshot (begin, records, end) then deltas; a new epoch
 * means netd restarted and its next snapshot is the whole truth. A
 * subscriber collects a snapshot aside and swaps it in at its end, so that
 * what it serves never reflects half a snapshot. */
#ifndef SWARM_EPSTREAM_H
#define SWARM_EPSTREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "netd.pb-c.h"

struct epstream_ops {
	void (*begin)(void *arg, uint64_t epoch);   /* a snapshot starts */
	/* one record, from a snapshot or a delta; deleted: it is gone */
	void (*record)(void *arg, const Swarm__EndpointRecord *rec, bool deleted);
	void (*end)(void *arg);                     /* the snapshot is complete */
	void (*lost)(void *arg);                    /* the stream closed (a snapshot in progress is void) */
};

struct epstream;

/* Starts subscribing to <run_dir>/netd.sock; who names the subscriber in
 * logs ("dnsd"). ops are called from the loop. Never NULL. */
struct epstream *epstream_start(struct ev_loop *loop, const char *run_dir, const char *who,
				const struct epstream_ops *ops, void *arg);
/* Whether the stream is connected now. */
bool epstream_connected(const struct epstream *s);
/* Closes and frees; NULL is a no-op. No callback runs after it. */
void epstream_stop(struct epstream *s);

#endif

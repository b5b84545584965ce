/* Transmit-limited broadcast queue, as hashicorp/memberlist's
 * TransmitLimitedQueue (queue.go). Holds encoded messages (opaque bytes)
 * and hands out the ones that fit a packet budget, each at most
 * retransmit_mult * ceil(log10(n + 1)) times.
 *
 * Order: fewest transmits first; within a tier the longest first, then the
 * newest. A message pushed with a name replaces every queued message with
 * the same name (memberlist invalidates older news about the same node).
 * Pure data structure: no clock, no I/O. */
#ifndef SWARM_BROADCAST_H
#define SWARM_BROADCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broadcast_queue;

/* One message of a batch; p points into the batch's buffer. */
struct broadcast_item {
	const uint8_t *p;  /* message bytes */
	size_t len;        /* message length */
};

/* Messages handed out by one broadcast_queue_get(); owns its storage. */
struct broadcast_batch {
	struct broadcast_item *items;  /* n entries */
	size_t n;                      /* number of messages */
	size_t bytes;                  /* sum of lengths (no overhead) */
	uint8_t *buf;                  /* backing store for items[].p */
};

/* memberlist retransmitLimit(): mult * ceil(log10(n + 1)). */
int broadcast_retransmit_limit(int retransmit_mult, int num_nodes);

/* New empty queue; NULL on ENOMEM. */
struct broadcast_queue *broadcast_queue_new(int retransmit_mult);
/* Frees the queue and all queued messages; NULL is a no-op. */
void broadcast_queue_free(struct broadcast_queue *q);

/* Queues a copy of msg. name (may be NULL: never invalidated, never
 * invalidates) identifies what the message is about; queued messages with
 * the same name are dropped first. 0, -EINVAL (len 0), -ENOMEM. */
int broadcast_queue_push(struct broadcast_queue *q, const char *name,
			 const void *msg, size_t len);

/* Fills out (cleared first) with messages fitting limit bytes, counting
 * overhead bytes per message (memberlist GetBroadcasts(overhead, limit)).
 * Every message handed out counts one transmit; one reaching the limit for
 * num_nodes is removed. 0 (possibly n == 0) or -ENOMEM. */
int broadcast_queue_get(struct broadcast_queue *q, int num_nodes,
			size_t overhead, size_t limit,
			struct broadcast_batch *out);

/* Number of queued messages. */
size_t broadcast_queue_len(const struct broadcast_queue *q);
/* True if a message with this name is queued. */
bool broadcast_queue_has(const struct broadcast_queue *q, const char *name);
/* Transmit count of the queued message with this name, -1 if none. */
int broadcast_queue_transmits(const struct broadcast_queue *q,
			      const char *name);
/* Drops the most-transmitted messages until at most max_retain remain
 * (memberlist Prune). */
void broadcast_queue_prune(struct broadcast_queue *q, size_t max_retain);
/* Drops everything. */
void broadcast_queue_reset(struct broadcast_queue *q);

void broadcast_batch_init(struct broadcast_batch *b);
/* Frees the batch's storage and empties it; reusable afterwards. */
void broadcast_batch_clear(struct broadcast_batch *b);

#endif

/* Lifeguard suspicion timer (LHA-Suspicion), as hashicorp/memberlist's
 * suspicion.go and state.go suspicionTimeout(). Pure: every call takes
 * `now` (monotonic ns); nothing here reads a clock or arms a real timer.
 * The owner (swim.c) checks suspicion_expired() when it ticks. */
#ifndef SWARM_SUSPICION_H
#define SWARM_SUSPICION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One running suspicion about one node. */
struct suspicion {
	int k;               /* confirmations expected (0: none, timer is min) */
	int n;               /* independent confirmations counted so far */
	int64_t min;         /* floor of the timeout, ns */
	int64_t max;         /* starting timeout when k >= 1, ns */
	int64_t start;       /* when the suspicion began */
	int64_t deadline;    /* when it fires (start + current timeout) */
	char **confirmed;    /* names already counted, [0] = original accuser */
	size_t n_confirmed;  /* entries in confirmed (<= k + 1) */
};

/* memberlist suspicionTimeout(): mult * max(1, log10(max(1, n))) * interval,
 * with the node scale truncated to 1/1000 as Go does
 * (Duration(nodeScale*1000) * interval / 1000). n = known nodes. */
int64_t suspicion_timeout_min(int suspicion_mult, int n, int64_t interval);

/* k as set up in memberlist suspectNode(): mult - 2, or 0 when n - 2 < k
 * (not enough other nodes to confirm: n counts ourselves and the suspect). */
int suspicion_k(int suspicion_mult, int n);

/* memberlist remainingSuspicionTime(): the timeout after c confirmations,
 * max - (ln(c+1)/ln(k+1)) * (max - min), floored to whole milliseconds and
 * clamped to >= min, minus elapsed. May be <= 0. Needs k >= 1. */
int64_t suspicion_remaining(int c, int k, int64_t elapsed, int64_t min,
			    int64_t max);

/* Starts a suspicion raised by `from` (who is never counted as a
 * confirmation). The deadline is now + max, or now + min when k < 1.
 * 0 or -ENOMEM. sp is overwritten (call suspicion_clear first if reused). */
int suspicion_start(struct suspicion *sp, const char *from, int k,
		    int64_t min, int64_t max, int64_t now);

/* Counts a confirmation from `from`. Returns 1 if it was new (the caller
 * re-gossips it), 0 if already k confirmations or `from` already counted,
 * -ENOMEM. On a new one the deadline moves to start + the shorter timeout;
 * if that lies in the past the deadline becomes now ("fires at once"). */
int suspicion_confirm(struct suspicion *sp, const char *from, int64_t now);

/* True once now >= deadline. */
bool suspicion_expired(const struct suspicion *sp, int64_t now);

/* Frees the confirmation list; the struct may be reused. NULL is a no-op. */
void suspicion_clear(struct suspicion *sp);

#endif

/* Transmit-limited broadcast queue; see broadcast.h.
 *
 * memberlist keeps a btree ordered by (transmits asc, len desc, id desc);
 * here a sorted array does the same job: queues hold tens to a few
 * thousand entries, and one linear pass per packet is cheap next to the
 * encode/encrypt work around it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "broadcast.h"

struct bq_entry {
	char *name;       /* NULL for unnamed */
	uint8_t *msg;     /* owned copy */
	size_t len;       /* message length */
	int transmits;    /* times handed out */
	uint64_t id;      /* insertion order, higher is newer */
};

struct broadcast_queue {
	int retransmit_mult;   /* RetransmitMult */
	struct bq_entry *v;    /* sorted, see bq_less */
	size_t n, cap;         /* used / allocated entries */
	uint64_t next_id;      /* id generator */
};

int broadcast_retransmit_limit(int retransmit_mult, int num_nodes)
{
	double scale = ceil(log10((double)num_nodes + 1.0));
	return retransmit_mult * (int)scale;
}

/* memberlist limitedBroadcast.Less. */
static bool bq_less(const struct bq_entry *a, const struct bq_entry *b)
{
	if (a->transmits != b->transmits)
		return a->transmits < b->transmits;
	if (a->len != b->len)
		return a->len > b->len;
	return a->id > b->id;
}

static void bq_entry_free(struct bq_entry *e)
{
	free(e->name);
	free(e->msg);
}

static void bq_remove_at(struct broadcast_queue *q, size_t i)
{
	bq_entry_free(&q->v[i]);
	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(q->v[0]));
	q->n--;
}

/* Inserts e at its sorted place; the array must have room. */
static void bq_insert(struct broadcast_queue *q, const struct bq_entry *e)
{
	size_t lo = 0, hi = q->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (bq_less(&q->v[mid], e))
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&q->v[lo + 1], &q->v[lo], (q->n - lo) * sizeof(q->v[0]));
	q->v[lo] = *e;
	q->n++;
}

static int bq_reserve(struct broadcast_queue *q, size_t want)
{
	if (want <= q->cap)
		return 0;
	size_t cap = q->cap ? q->cap * 2 : 16;
	while (cap < want)
		cap *= 2;
	struct bq_entry *v = realloc(q->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	q->v = v;
	q->cap = cap;
	return 0;
}

struct broadcast_queue *broadcast_queue_new(int retransmit_mult)
{
	struct broadcast_queue *q = calloc(1, sizeof(*q));
	if (q)
		q->retransmit_mult = retransmit_mult;
	return q;
}

void broadcast_queue_reset(struct broadcast_queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		bq_entry_free(&q->v[i]);
	q->n = 0;
}

void broadcast_queue_free(struct broadcast_queue *q)
{
	if (!q)
		return;
	broadcast_queue_reset(q);
	free(q->v);
	free(q);
}

int broadcast_queue_push(struct broadcast_queue *q, const char *name,
			 const void *msg, size_t len)
{
	if (len == 0)
		return -EINVAL;
	struct bq_entry e = { .len = len, .id = ++q->next_id };
	e.msg = malloc(len);
	if (!e.msg)
		return -ENOMEM;
	memcpy(e.msg, msg, len);
	if (name) {
		e.name = strdup(name);
		if (!e.name) {
			free(e.msg);
			return -ENOMEM;
		}
	}
	if (bq_reserve(q, q->n + 1) < 0) {
		bq_entry_free(&e);
		return -ENOMEM;
	}
	/* Newer news about the same thing makes the old one pointless. */
	if (name) {
		for (size_t i = q->n; i-- > 0;)
			if (q->v[i].name && strcmp(q->v[i].name, name) == 0)
				bq_remove_at(q, i);
	}
	bq_insert(q, &e);
	return 0;
}

int broadcast_queue_get(struct broadcast_queue *q, int num_nodes,
			size_t overhead, size_t limit,
			struct broadcast_batch *out)
{
	broadcast_batch_clear(out);
	if (q->n == 0 || limit <= overhead)
		return 0;
	int tlimit = broadcast_retransmit_limit(q->retransmit_mult, num_nodes);
	out->buf = malloc(limit);
	out->items = calloc(limit / (overhead + 1) + 1, sizeof(out->items[0]));
	bool *take = calloc(q->n, sizeof(bool));
	if (!out->buf || !out->items || !take) {
		free(take);
		broadcast_batch_clear(out);
		return -ENOMEM;
	}

	/* One pass in queue order equals memberlist's tier walk: within a
	 * tier it takes the largest entry that fits the space left, and space
	 * only shrinks, so entries skipped once never fit later. */
	size_t used = 0;
	for (size_t i = 0; i < q->n; i++) {
		if (limit <= used + overhead)
			break;
		size_t free_bytes = limit - used - overhead;
		if (q->v[i].len > free_bytes)
			continue;
		take[i] = true;
		memcpy(out->buf + out->bytes, q->v[i].msg, q->v[i].len);
		out->items[out->n].p = out->buf + out->bytes;
		out->items[out->n].len = q->v[i].len;
		out->n++;
		out->bytes += q->v[i].len;
		used += overhead + q->v[i].len;
	}

	/* Take the sent entries out, then drop or re-insert them with one
	 * more transmit (after the pass, so none is sent twice). */
	size_t n_re = 0, w = 0, total = q->n;
	struct bq_entry *re = malloc((total ? total : 1) * sizeof(*re));
	if (!re) {
		free(take);
		broadcast_batch_clear(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < total; i++) {
		if (!take[i]) {
			q->v[w++] = q->v[i];
			continue;
		}
		if (q->v[i].transmits + 1 >= tlimit) {
			bq_entry_free(&q->v[i]);
		} else {
			q->v[i].transmits++;
			re[n_re++] = q->v[i];
		}
	}
	q->n = w;
	for (size_t i = 0; i < n_re; i++)
		bq_insert(q, &re[i]);
	free(re);
	free(take);
	return 0;
}

size_t broadcast_queue_len(const struct broadcast_queue *q)
{
	return q->n;
}

bool broadcast_queue_has(const struct broadcast_queue *q, const char *name)
{
	return broadcast_queue_transmits(q, name) >= 0;
}

int broadcast_queue_transmits(const struct broadcast_queue *q,
			      const char *name)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->v[i].name && strcmp(q->v[i].name, name) == 0)
			return q->v[i].transmits;
	return -1;
}

void broadcast_queue_prune(struct broadcast_queue *q, size_t max_retain)
{
	while (q->n > max_retain)
		bq_remove_at(q, q->n - 1);
}

void broadcast_batch_init(struct broadcast_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void broadcast_batch_clear(struct broadcast_batch *b)
{
	free(b->items);
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

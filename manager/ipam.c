/* IPAM building blocks: see ipam.h. */
#include "manager/ipam.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses and prefixes ---- */

uint32_t ipam_mask(unsigned len)
{
	if (len == 0)
		return 0;
	if (len >= 32)
		return 0xffffffffu;
	return ~((1u << (32 - len)) - 1);
}

uint64_t ipam_prefix_size(unsigned len)
{
	return len >= 32 ? 1 : (uint64_t)1 << (32 - len);
}

int ipam_addr_parse(const char *s, uint32_t *out)
{
	struct in_addr in;

	/* inet_pton takes only the strict dotted quad ("1.2.3.4"), which is
	 * what we want: no octal, no short forms. */
	if (!s || inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	*out = ntohl(in.s_addr);
	return 0;
}

int ipam_cidr_parse(const char *s, uint32_t *addr, unsigned *len)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash;
	size_t alen;
	unsigned long l = 0;

	if (!s || !(slash = strchr(s, '/')))
		return -EINVAL;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (ipam_addr_parse(buf, addr) < 0)
		return -EINVAL;
	slash++;
	/* One or two decimal digits, nothing else. */
	if (slash[0] < '0' || slash[0] > '9')
		return -EINVAL;
	for (size_t i = 0; slash[i]; i++) {
		if (i >= 2 || slash[i] < '0' || slash[i] > '9')
			return -EINVAL;
		l = l * 10 + (unsigned long)(slash[i] - '0');
	}
	if (l > 32)
		return -EINVAL;
	*len = (unsigned)l;
	return 0;
}

int ipam_prefix_parse(const char *s, struct ipam_prefix *out)
{
	uint32_t a;
	unsigned len;

	if (ipam_cidr_parse(s, &a, &len) < 0)
		return -EINVAL;
	if (a & ~ipam_mask(len))
		return -EINVAL;
	out->addr = a;
	out->len = len;
	return 0;
}

void ipam_addr_format(uint32_t a, char *out, size_t outlen)
{
	snprintf(out, outlen, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
		 (a >> 8) & 0xff, a & 0xff);
}

void ipam_cidr_format(uint32_t a, unsigned len, char *out, size_t outlen)
{
	snprintf(out, outlen, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 0xff,
		 (a >> 8) & 0xff, a & 0xff, len);
}

void ipam_mac_format(uint32_t a, char *out, size_t outlen)
{
	snprintf(out, outlen, "02:42:%02x:%02x:%02x:%02x", a >> 24,
		 (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

bool ipam_prefix_contains(const struct ipam_prefix *p, uint32_t a)
{
	return (a & ipam_mask(p->len)) == p->addr;
}

bool ipam_prefix_overlap(const struct ipam_prefix *a, const struct ipam_prefix *b)
{
	/* Two prefixes overlap exactly when the shorter one contains the
	 * other's network address. */
	unsigned len = a->len < b->len ? a->len : b->len;
	uint32_t m = ipam_mask(len);

	return (a->addr & m) == (b->addr & m);
}

/* ---- bitmaps ---- */

int ipam_bitmap_init(struct ipam_bitmap *b, uint32_t size)
{
	size_t nwords = ((size_t)size + 63) / 64;

	memset(b, 0, sizeof(*b));
	b->words = calloc(nwords ? nwords : 1, sizeof(uint64_t));
	if (!b->words)
		return -ENOMEM;
	b->size = size;
	/* The bits past the end of the last word count as taken, so scans
	 * never need a bounds check inside a word. */
	if (size % 64)
		b->words[nwords - 1] = ~0ULL << (size % 64);
	else if (size == 0)
		b->words[0] = ~0ULL;
	return 0;
}

void ipam_bitmap_destroy(struct ipam_bitmap *b)
{
	if (!b)
		return;
	free(b->words);
	memset(b, 0, sizeof(*b));
}

bool ipam_bitmap_test(const struct ipam_bitmap *b, uint32_t i)
{
	if (i >= b->size)
		return true;
	return (b->words[i >> 6] >> (i & 63)) & 1;
}

bool ipam_bitmap_set(struct ipam_bitmap *b, uint32_t i)
{
	uint64_t bit;

	if (i >= b->size)
		return false;
	bit = 1ULL << (i & 63);
	if (b->words[i >> 6] & bit)
		return false;
	b->words[i >> 6] |= bit;
	b->used++;
	return true;
}

void ipam_bitmap_clear(struct ipam_bitmap *b, uint32_t i)
{
	uint64_t bit;

	if (i >= b->size)
		return;
	bit = 1ULL << (i & 63);
	if (!(b->words[i >> 6] & bit))
		return;
	b->words[i >> 6] &= ~bit;
	b->used--;
	if (i < b->low)
		b->low = i;
}

/* Lowest free integer in [from, to), word by word. */
static int64_t bitmap_scan(const struct ipam_bitmap *b, uint32_t from, uint32_t to)
{
	uint32_t w, wend;
	uint64_t bits;

	if (to > b->size)
		to = b->size;
	if (from >= to)
		return -1;
	w = from >> 6;
	wend = (to - 1) >> 6;
	bits = ~b->words[w] & (~0ULL << (from & 63));
	for (;;) {
		if (bits) {
			uint64_t i = ((uint64_t)w << 6) + (uint64_t)__builtin_ctzll(bits);
			return i < to ? (int64_t)i : -1;
		}
		if (++w > wend)
			return -1;
		bits = ~b->words[w];
	}
}

int64_t ipam_bitmap_alloc_first(struct ipam_bitmap *b)
{
	int64_t i = bitmap_scan(b, b->low, b->size);

	if (i < 0) {
		b->low = b->size;
		return -1;
	}
	ipam_bitmap_set(b, (uint32_t)i);
	b->low = (uint32_t)i + 1;
	return i;
}

int64_t ipam_bitmap_alloc_next(struct ipam_bitmap *b)
{
	int64_t i = bitmap_scan(b, b->cursor, b->size);

	if (i < 0)
		i = bitmap_scan(b, 0, b->cursor);
	if (i < 0)
		return -1;
	ipam_bitmap_set(b, (uint32_t)i);
	b->cursor = (uint32_t)i + 1 >= b->size ? 0 : (uint32_t)i + 1;
	return i;
}

int64_t ipam_bitmap_find_free(const struct ipam_bitmap *b, uint32_t lo, uint32_t hi)
{
	return bitmap_scan(b, lo, hi);
}

/* ---- string index ---- */

static uint64_t idmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void ipam_idmap_destroy(struct ipam_idmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static struct ipam_idmap_slot *idmap_find(const struct ipam_idmap *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = idmap_hash(key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0)
			return &m->slots[i];
	return NULL;
}

void *ipam_idmap_get(const struct ipam_idmap *m, const char *key)
{
	struct ipam_idmap_slot *s = idmap_find(m, key);

	return s ? s->val : NULL;
}

/* Inserts a key known to be absent; takes the key string. */
static void idmap_insert(struct ipam_idmap *m, char *key, void *val)
{
	size_t i = idmap_hash(key) & (m->cap - 1);

	while (m->slots[i].key)
		i = (i + 1) & (m->cap - 1);
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->n++;
}

void ipam_idmap_put(struct ipam_idmap *m, const char *key, void *val)
{
	struct ipam_idmap_slot *s = idmap_find(m, key);

	if (s) {
		s->val = val;
		return;
	}
	/* Keep the load under 1/2 so probe runs stay short. */
	if ((m->n + 1) * 2 > m->cap) {
		struct ipam_idmap_slot *old = m->slots;
		size_t oldcap = m->cap;

		m->cap = oldcap ? oldcap * 2 : 16;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		m->n = 0;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].key)
				idmap_insert(m, old[i].key, old[i].val);
		free(old);
	}
	idmap_insert(m, xstrdup(key), val);
}

void *ipam_idmap_del(struct ipam_idmap *m, const char *key)
{
	struct ipam_idmap_slot *s = idmap_find(m, key);
	size_t i, j, mask;
	void *val;

	if (!s)
		return NULL;
	val = s->val;
	free(s->key);
	s->key = NULL;
	m->n--;
	/* Backward-shift deletion: move later members of the probe run into
	 * the hole when their home slot does not lie between hole and them. */
	mask = m->cap - 1;
	i = (size_t)(s - m->slots);
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = idmap_hash(m->slots[j].key) & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			m->slots[j].key = NULL;
			m->slots[j].val = NULL;
			i = j;
		}
	}
	return val;
}

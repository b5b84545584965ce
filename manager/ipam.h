/* IPAM building blocks for the allocator (and a string index the scheduler
 * shares): IPv4 address and CIDR parsing/formatting, bitmaps that hand out
 * small integers (addresses inside a subnet, VNIs, ports), and a string-keyed
 * hash index. Pure, no I/O. Addresses are uint32_t in host byte order. */
#ifndef SWARM_IPAM_H
#define SWARM_IPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- addresses and prefixes ---- */

struct ipam_prefix {
	uint32_t addr;          /* network address (host bits zero) */
	unsigned len;           /* prefix length 0..32 */
};

/* Netmask for a prefix length (0 -> 0, 32 -> all ones). */
uint32_t ipam_mask(unsigned len);
/* Number of addresses in a prefix of this length. */
uint64_t ipam_prefix_size(unsigned len);

/* "A.B.C.D" -> *out; -EINVAL on anything else. */
int ipam_addr_parse(const char *s, uint32_t *out);
/* "A.B.C.D/len" -> *addr (the address as written) and *len; -EINVAL on
 * garbage. */
int ipam_cidr_parse(const char *s, uint32_t *addr, unsigned *len);
/* Like ipam_cidr_parse but the host bits must be zero ("198.18.0.5/24" is
 * -EINVAL). */
int ipam_prefix_parse(const char *s, struct ipam_prefix *out);

void ipam_addr_format(uint32_t a, char *out, size_t outlen);
/* "A.B.C.D/len" */
void ipam_cidr_format(uint32_t a, unsigned len, char *out, size_t outlen);
/* Docker's MAC for an IPv4 address: 02:42 then the four bytes in hex. */
void ipam_mac_format(uint32_t a, char *out, size_t outlen);

bool ipam_prefix_contains(const struct ipam_prefix *p, uint32_t a);
bool ipam_prefix_overlap(const struct ipam_prefix *a, const struct ipam_prefix *b);

/* ---- bitmaps: a set of integers 0..size-1 ---- */

struct ipam_bitmap {
	uint64_t *words;        /* bit i set = integer i taken */
	uint32_t size;          /* number of integers */
	uint32_t used;          /* bits set */
	uint32_t low;           /* no free bit below this (first-fit hint) */
	uint32_t cursor;        /* where the next serial search starts */
};

/* 0 or -ENOMEM. The words are calloc'd, so a large, sparsely used bitmap
 * (VNIs) costs only the pages it touches. */
int ipam_bitmap_init(struct ipam_bitmap *b, uint32_t size);
void ipam_bitmap_destroy(struct ipam_bitmap *b);
bool ipam_bitmap_test(const struct ipam_bitmap *b, uint32_t i);
/* Takes i; false when it was already taken (or out of range). */
bool ipam_bitmap_set(struct ipam_bitmap *b, uint32_t i);
/* Gives i back; a no-op when it was free. */
void ipam_bitmap_clear(struct ipam_bitmap *b, uint32_t i);
/* Takes the lowest free integer; -1 when full. Amortised O(1) through the
 * low-water hint. */
int64_t ipam_bitmap_alloc_first(struct ipam_bitmap *b);
/* Takes the next free integer at or after the cursor, wrapping around, so
 * a released integer is not handed out again at once (Docker's serial
 * address allocation); -1 when full. */
int64_t ipam_bitmap_alloc_next(struct ipam_bitmap *b);
/* Lowest free integer in [lo, hi) without taking it; -1 when none. */
int64_t ipam_bitmap_find_free(const struct ipam_bitmap *b, uint32_t lo, uint32_t hi);

/* ---- string-keyed index (open addressing, linear probing) ---- */

struct ipam_idmap_slot {
	char *key;              /* malloc'd copy; NULL = empty slot */
	void *val;
};

struct ipam_idmap {
	struct ipam_idmap_slot *slots; /* cap slots; iterate them to walk the map */
	size_t cap;             /* power of two, or 0 before the first put */
	size_t n;               /* keys held */
};

/* A zeroed struct is an empty map. */
void ipam_idmap_destroy(struct ipam_idmap *m);
/* The value for key, or NULL. */
void *ipam_idmap_get(const struct ipam_idmap *m, const char *key);
/* Sets key -> val (val must not be NULL), replacing an existing value. */
void ipam_idmap_put(struct ipam_idmap *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *ipam_idmap_del(struct ipam_idmap *m, const char *key);

#endif

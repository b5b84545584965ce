/* Helpers shared by the lbd providers (not part of the lb.h API):
 * namespace switching, one nftables runner, a growing text buffer, the
 * "actual state" adder that takes what a dump found as it is. */
#ifndef SWARM_LB_INT_H
#define SWARM_LB_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "lb.h"

struct nft_ctx;

/* ---- namespaces ----
 * A netlink socket (and so a libnftables context, a conntrack handle)
 * belongs to the namespace it was opened in: the thread enters the target
 * namespace only to open one, and returns at once. */

/* fd of the netns file path, or of the caller's own namespace (NULL). */
int lb_ns_open(const char *path);
/* Enters nsfd; *orig gets the fd to come back with. 0 or -errno. */
int lb_ns_enter(int nsfd, int *orig);
/* Goes back to orig and closes it; aborts when it cannot (a thread left
 * in a foreign namespace would program the wrong kernel). */
void lb_ns_leave(int orig);

/* Creates a libnftables context inside nsfd (output and errors
 * buffered). 0 or -errno. */
int lb_nft_ctx_new(int nsfd, struct nft_ctx **out);
/* Runs one command buffer (one transaction). json: output as JSON. out
 * (may be NULL) gets a malloc'd copy of the output. Returns 0, -ENOENT
 * when nft says an object is missing, -EEXIST/-EBUSY for those, else -EIO;
 * nft's message is logged unless quiet. */
int lb_nft_run(struct nft_ctx *nft, const char *cmd, bool json, bool quiet, char **out);
/* Whether s may stand unquoted in nft's grammar as a table or chain name:
 * a letter or '_' first, then letters, digits, '_', '-', '.'. */
bool lb_nft_word(const char *s);
/* Makes and deletes a scratch table in the namespace of nft: 0, or -errno
 * with the reason in why. */
int lb_nft_probe(struct nft_ctx *nft, const char *scratch, char *why, size_t whylen);

/* ---- text ---- */

/* A growing NUL-terminated buffer. */
struct lb_buf {
	char *s;        /* malloc'd text */
	size_t len;     /* bytes used, without the NUL */
	size_t cap;     /* bytes allocated */
};

void lb_buf_printf(struct lb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, owned by the caller now ("" when nothing was written). */
char *lb_buf_take(struct lb_buf *b);

/* "tcp" or "udp". */
const char *lb_proto_name(uint8_t proto);
/* IPPROTO_TCP / IPPROTO_UDP for "tcp"/"udp" (or "6"/"17"), 0 otherwise. */
uint8_t lb_proto_parse(const char *s);

/* ---- states ---- */

/* Appends a deep copy of *svc to st as it is (a dump's finding, possibly
 * incomplete): no validation beyond the id being unique (-EEXIST), arrays
 * sorted as in lb_state_add. Keeps svc->complete. */
int lb_state_add_actual(struct lb_state *st, const struct lb_service *svc);
/* Sorts and deduplicates backends in place; returns the new count. */
size_t lb_backends_normalize(struct in_addr *b, size_t n);
/* Sorts ports in place by (proto, published). */
void lb_ports_sort(struct lb_port *p, size_t n);
/* The port of svc with (proto, published), or NULL. */
const struct lb_port *lb_service_port(const struct lb_service *svc, uint8_t proto,
				      uint16_t published);

#endif

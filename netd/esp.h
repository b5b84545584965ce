/* The kernel ESP provider of encrypted overlay networks: where the kernel
 * has ESP (esp_probe), encrypted networks ride the kernel VXLAN device
 * like plain ones, and this module keeps the XFRM states and policies and
 * the nftables rules that encrypt their VXLAN packets between node pairs
 * (xfrm_msg.h has the messages and the rules). All kernel work goes
 * through an ops table: esp_kernel_ops (NETLINK_XFRM and libnftables) or
 * a test's fake.
 *
 * Desired state, from this node's data-path address, the key ring
 * (primary first) and the data-path addresses of the nodes that share an
 * encrypted network with it (the "peers"):
 *   - per peer, one outbound SA self -> peer under the primary key: SPI
 *     seal_spi(primary, self, peer), key seal_esp_key(primary, self,
 *     peer). The peer derives the same two values alone (no negotiation).
 *   - per peer and ring key, one inbound SA peer -> self, so whatever key
 *     of the ring a peer seals with, it is received (a rotation drops
 *     nothing: the peer may switch its primary before or after us).
 *   - per peer, one outbound policy requiring ESP (our reqid) for marked
 *     VXLAN packets self -> peer. It exists whether or not a key does: a
 *     node without keys sends nothing rather than cleartext. And one
 *     catch-all policy blocking marked VXLAN packets to any other node.
 *   - the nftables rules marking the encrypted VNIs' VXLAN packets on
 *     output and dropping those that arrive without ESP.
 * esp_sync compares that with what it installed and applies the
 * difference: additions first (so a new primary's outbound SA exists
 * before the old one goes: the kernel picks the newest matching SA), then
 * removals. What fails stays for the next esp_sync (the first error is
 * returned); what succeeded is remembered. esp_new first removes every
 * state and policy carrying our reqid and mark (a previous netd's), so
 * the module's memory and the kernel agree. */
#ifndef SWARM_ESP_H
#define SWARM_ESP_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "xfrm_msg.h"

struct esp_ops {
	/* Adds (del 0) or deletes one SA. 0 or -errno. */
	int (*sa)(void *ctx, const struct xm_sa *sa, int del);
	/* Adds or deletes the outbound policy for sa's src -> dst. */
	int (*policy)(void *ctx, const struct xm_sa *sa, int del);
	/* Deletes every state and policy with our reqid / mark. */
	int (*flush)(void *ctx);
	/* Replaces the nftables rules with those for vnis[n] (n may be 0). */
	int (*rules)(void *ctx, uint16_t dport, const uint32_t *vnis, size_t n);
};

/* What this node wants encrypted. Arrays need no order; duplicates are
 * ignored. */
struct esp_want {
	uint32_t self;                  /* data-path address, host order */
	const struct seal_key *ring;    /* primary first; may be empty */
	size_t nring;
	const uint32_t *peers;          /* data-path addresses, host order */
	size_t npeers;
	const uint32_t *vnis;           /* encrypted VNIs */
	size_t nvnis;
};

struct esp;

/* A provider applying through ops (ctx passed back); dport is the VXLAN
 * UDP port. Flushes our old states and policies first (its error is
 * returned, the provider is made all the same and *out is set). */
int esp_new(const struct esp_ops *ops, void *ctx, uint16_t dport, struct esp **out);
/* Frees the module; the kernel state stays (traffic goes on until the
 * next netd's esp_new, which starts afresh). */
void esp_free(struct esp *e);
/* Brings the kernel to w (see above). 0, or the first -errno. */
int esp_sync(struct esp *e, const struct esp_want *w);
/* Installed counts, for status and tests. */
size_t esp_count_sas(const struct esp *e);
size_t esp_count_policies(const struct esp *e);

/* The real ops (NETLINK_XFRM, libnftables table "swarm_esp"), in the
 * caller's network namespace; ctx from esp_kernel_ctx_new. */
extern const struct esp_ops esp_kernel_ops;
void *esp_kernel_ctx_new(void);
void esp_kernel_ctx_free(void *ctx);

#endif

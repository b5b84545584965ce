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
 * esp_sync compares that with what is installed and applies the
 * difference: additions first (so a new primary's outbound SA exists
 * before the old one goes: the kernel picks the newest matching SA), then
 * removals. What fails stays for the next esp_sync (the first error is
 * returned); what succeeded is remembered. esp_new adopts the states and
 * policies carrying our reqid and mark (a previous netd's), so a netd
 * restart neither opens a gap nor restarts the states' sequence numbers.
 *
 * Never cleartext. A marked packet leaves only under a policy that
 * requires ESP or is blocked by the catch-all; an encrypted VNI's packets
 * are marked only once its rules are in. So netd:
 *   - syncs with additions_only before the data path changes (states,
 *     policies, and the rules for the VNIs it wants and those still
 *     installed), and in full after it (so a VNI is unmarked only once
 *     its vxlan0 is gone);
 *   - points vxlan0 at a peer only when esp_guards says its packets
 *     would be marked and held by a policy.
 * Without states (no keys, or a kernel that refuses them) the policies
 * block the traffic: nothing leaves, in clear or otherwise.
 *
 * Limits. The SPI and key of a direction depend only on the ring key and
 * the two addresses, so a node that reboots faster than the others
 * declare it dead (and drop its states) sends from sequence number 1
 * into their inbound states' windows, which drop it until the next
 * rotation or until they drop and re-add the state. libnl frees its
 * copies of keys without wiping them. */
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
	/* Deletes every state and policy with our reqid / mark and the
	 * rules' table: for a node that no longer uses kernel ESP. */
	int (*flush)(void *ctx);
	/* Ours in the kernel (states with our reqid, policies with our
	 * mark; keys left out) into malloc'd arrays. */
	int (*list)(void *ctx, struct xm_sa **sas, size_t *nsas, struct xm_sa **pols, size_t *npols);
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
	bool additions_only;            /* add and keep; remove nothing */
};

struct esp;

/* A provider applying through ops (ctx passed back); dport is the VXLAN
 * UDP port. Adopts our states and policies already in the kernel (an
 * error listing them is returned; the provider is made all the same, as
 * if there were none, and *out is set). */
int esp_new(const struct esp_ops *ops, void *ctx, uint16_t dport, struct esp **out);
/* Frees the module; the kernel state stays (traffic goes on until the
 * next netd's esp_new, which starts afresh). */
void esp_free(struct esp *e);
/* Brings the kernel to w (see above). 0, or the first -errno. */
int esp_sync(struct esp *e, const struct esp_want *w);
/* Whether a VXLAN packet of vni to peer is marked (vni's rules are in)
 * and then held by a policy (peer's own, or the catch-all): only then may
 * the data path send it, as ESP or not at all. */
bool esp_guards(const struct esp *e, uint32_t vni, uint32_t peer);
/* True once an esp_sync succeeded and none failed since. */
bool esp_in_sync(const struct esp *e);
/* The last failed esp_sync's -errno while none succeeded since; else 0. */
int esp_last_error(const struct esp *e);
/* Installed counts, for status and tests. */
size_t esp_count_sas(const struct esp *e);
size_t esp_count_policies(const struct esp *e);

/* The real ops (NETLINK_XFRM, libnftables table "swarm_esp"), in the
 * caller's network namespace; ctx from esp_kernel_ctx_new. */
extern const struct esp_ops esp_kernel_ops;
void *esp_kernel_ctx_new(void);
void esp_kernel_ctx_free(void *ctx);

#endif

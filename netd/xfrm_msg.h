/* The kernel ESP data path's XFRM objects and nftables rules (esp.h
 * drives them; this kernel has no ESP, so only the policies and rules
 * run here).
 *
 * For each encrypted node pair the kernel holds, per direction, one ESP
 * transport-mode state (rfc4106(gcm(aes)), 128-bit ICV; SPI from
 * seal_spi, key and salt from seal_esp_key, both derived on both ends
 * without negotiation) and, outbound, one policy that requires it for the
 * VXLAN packets between the two data-path addresses (UDP to the VXLAN
 * port). Every state carries our own reqid, and outbound states and
 * policies our mark, so a cleanup that matches them touches nothing else.
 * Inbound states carry no mark: the kernel matches a state's mark
 * against the arriving packet's, which has none. Only packets carrying
 * the mark take the policy: nftables marks the VXLAN packets of
 * encrypted VNIs on output, and drops on input those of encrypted VNIs
 * that did not arrive as ESP (xm_nft_rules), so cleartext never passes
 * for them while plain VNIs between the same nodes stay plain.
 *
 * The requests are built by libnl-xfrm from its state and policy
 * objects (xm_sa_request, xm_policy_request); xm_sa_msg and
 * xm_policy_msg write them into a buffer, for the probe and the tests.
 * No I/O here. */
#ifndef SWARM_XFRM_MSG_H
#define SWARM_XFRM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XM_REQID 0x5357          /* "SW": ours */
#define XM_MARK 0x53570000u      /* mark of encrypted VNIs' VXLAN packets */
#define XM_MARK_MASK 0xffff0000u
#define XM_KEY_MAX (32 + 4)      /* AES-256 key + 4-byte GCM salt */
#define XM_PRIORITY 0x1000
#define XM_REPLAY_WINDOW 128     /* packets, ESN replay window of inbound states */

/* One direction between two nodes (addresses in host order). */
struct xm_sa {
	uint32_t src, dst;
	uint32_t spi;              /* network order is applied here */
	uint8_t key[XM_KEY_MAX];   /* AES key || 4-byte salt (rfc4106) */
	size_t keylen;             /* 20, 28 or 36 */
	uint16_t dport;            /* VXLAN UDP port, 4789 */
	bool in;                   /* inbound (peer -> us): no mark */
};

struct nl_msg;

/* The request libnl-xfrm builds for sa's state: XFRM_MSG_NEWSA
 * (exclusive) or, with del, XFRM_MSG_DELSA. 0 with *msg set (free it with
 * xm_msg_free), or -EINVAL (bad key length), -ENOMEM. Beware: libnl
 * frees its copy of the key without wiping it. */
int xm_sa_request(const struct xm_sa *sa, int del, struct nl_msg **msg);

/* The request for sa's outbound policy: XFRM_MSG_NEWPOLICY (exclusive)
 * or, with del, DELPOLICY. The marked packets sa describes (src -> dst,
 * UDP to dport) must leave as ESP with our reqid. With dst 0 it is the
 * catch-all: marked VXLAN packets from src to any node without a policy
 * of its own are blocked (XM_PRIORITY + 1), so a marked packet never
 * leaves in cleartext, whatever the order in which peers and their
 * policies come and go. */
int xm_policy_request(const struct xm_sa *sa, int del, struct nl_msg **msg);

/* Wipes a request built from a state (it holds the key), then frees it. */
void xm_msg_free(struct nl_msg *msg);

/* XFRM_MSG_NEWSA (add, exclusive) or, with del, XFRM_MSG_DELSA for sa,
 * as libnl builds it, into buf[cap]: its length, or -ENOSPC, -EINVAL,
 * -ENOMEM. */
int xm_sa_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq);

/* XFRM_MSG_NEWPOLICY (or, with del, DELPOLICY): the marked packets sa
 * describes (src -> dst, UDP to dport) must leave as ESP with our reqid. */
int xm_policy_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq);

/* The nftables commands (for `nft -f`) of table ip <t>: on output, mark
 * VXLAN packets to dport of the vnis[n] with XM_MARK; on input, drop
 * those that arrived without ESP. n = 0 leaves both chains empty.
 * malloc'd; NULL on a bad table name or no memory. */
char *xm_nft_rules(const char *t, uint16_t dport, const uint32_t *vnis, size_t n);

#endif

/* The kernel ESP data path's messages (groundwork: built and unit-tested,
 * not yet driven by netd, because this kernel has no ESP to run them).
 *
 * For each encrypted node pair the kernel would hold, per direction, one
 * ESP transport-mode state (rfc4106(gcm(aes)), 128-bit ICV; SPI from
 * seal_spi, key and salt from seal_esp_key, both derived on both ends
 * without negotiation) and one policy that requires it for the VXLAN
 * packets between the two data-path addresses (UDP to the VXLAN port).
 * Every state and policy carries our own reqid and mark, so a cleanup
 * that matches them touches nothing else. Only packets carrying the mark
 * take the policy: nftables marks the VXLAN packets of encrypted VNIs on
 * output, and drops on input those of encrypted VNIs that did not arrive
 * as ESP (xm_nft_rules), so cleartext never passes for them while plain
 * VNIs between the same nodes stay plain.
 *
 * Pure functions: each writes one netlink message into buf[cap] and
 * returns its length, or -ENOSPC / -EINVAL. */
#ifndef SWARM_XFRM_MSG_H
#define SWARM_XFRM_MSG_H

#include <stddef.h>
#include <stdint.h>

#define XM_REQID 0x5357          /* "SW": ours */
#define XM_MARK 0x53570000u      /* mark of encrypted VNIs' VXLAN packets */
#define XM_MARK_MASK 0xffff0000u
#define XM_KEY_MAX (32 + 4)      /* AES-256 key + 4-byte GCM salt */
#define XM_PRIORITY 0x1000

/* One direction between two nodes (addresses in host order). */
struct xm_sa {
	uint32_t src, dst;
	uint32_t spi;              /* network order is applied here */
	uint8_t key[XM_KEY_MAX];   /* AES key || 4-byte salt (rfc4106) */
	size_t keylen;             /* 20, 28 or 36 */
	uint16_t dport;            /* VXLAN UDP port, 4789 */
};

/* XFRM_MSG_NEWSA (add) or, with del, XFRM_MSG_DELSA for sa. */
int xm_sa_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq);

/* XFRM_MSG_NEWPOLICY (or, with del, DELPOLICY): the marked packets sa
 * describes (src -> dst, UDP to dport) must leave as ESP with our reqid. */
int xm_policy_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq);

/* The nftables commands (for `nft -f`) of table ip <t>: on output, mark
 * VXLAN packets to dport of the vnis[n] with XM_MARK; on input, drop
 * those that arrived without ESP. n = 0 leaves both chains empty.
 * malloc'd; NULL on a bad table name. */
char *xm_nft_rules(const char *t, uint16_t dport, const uint32_t *vnis, size_t n);

#endif

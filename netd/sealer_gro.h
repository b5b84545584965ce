/* Receive coalescing of TCP super-frames before they enter the link
 * (the sealer's veth pair, sealer_link.h), and their splitting for a
 * link that refuses one whole.
 *
 * A receiving sealer that finds several opened trains of one TCP flow
 * ready at once (it drained them in one batch) writes them into the TAP
 * as a single super-frame, as the kernel's GRO would: the receiving
 * stack then handles one packet, wakes its reader once and acknowledges
 * once, instead of once per train. The acknowledgements are frames the
 * other way through both sealers, so fewer of them saves work on both
 * nodes.
 *
 * Pure functions over caller-owned bytes: gro_start takes the first
 * frame (its headers are rewritten in place by gro_finish), gro_append
 * decides whether a further frame continues it exactly (same flow and
 * headers, the next sequence number, full segments), the caller then
 * writes the head frame followed by each appended frame's payload. A
 * merged frame over 65,535 bytes carries IPv4 total length 0, as the
 * kernel's BIG TCP does (iph_totlen); the TCP checksum stays partial
 * (VIRTIO_NET_HDR_F_NEEDS_CSUM) over the pseudo-header of the new length.
 * Only IPv4 without options, with TCP, over Ethernet without VLAN tags
 * is coalesced (as the kernel's GRO: a header other than 0x45 is not);
 * any other frame is written alone. */
#ifndef SWARM_SEALER_GRO_H
#define SWARM_SEALER_GRO_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A merged frame (Ethernet header on) stays below a limit: below a
 * link's gso_ipv4_max_size the kernel passes it whole (it segments from
 * that size on). */
#define GRO_MAX_LEN (256u * 1024)   /* limit with BIG TCP */
#define GRO_MAX_LEGACY 65536u       /* limit without: IPv4 total length 65535 at most */

/* IFLA_GSO_IPV4_MAX_SIZE of Linux 6.3's linux/if_link.h (not in older
 * headers): the largest IPv4 TCP super-frame a link sends whole. netd
 * raises it on the container-facing ends of encrypted networks, so that
 * a coalesced frame crosses them unsegmented. */
#define GRO_IFLA_GSO_IPV4_MAX_SIZE 63

struct gro {
	uint8_t *head;                  /* first frame: Ethernet header on */
	struct virtio_net_hdr vh;       /* its vnet header */
	size_t head_len;
	size_t hlen;                    /* Ethernet + IP + TCP header bytes */
	size_t len;                     /* merged frame bytes so far */
	size_t max;                     /* ... stays below */
	size_t frames;
	uint32_t next_seq;              /* sequence number a next frame must start at */
	bool closed;                    /* the last frame ends a merge (gro_start says which) */
	uint8_t flags;                  /* PSH/FIN gathered from appended frames */
	/* the head's fields as received, for gro_undo */
	uint16_t tot_len, ip_csum, tcp_csum, window;
	uint16_t last_window;
	uint8_t tcp_flags;
};

/* Whether f[len] (a frame from a vnet-headed plaintext, header *vh) may
 * be coalesced: a TCPv4 super-frame with a partial checksum and
 * consistent lengths. If so g holds it as the head (and a copy of *vh,
 * to write before it), to grow while below max bytes (at most
 * GRO_MAX_LEN). */
bool gro_start(struct gro *g, uint8_t *f, size_t len, const struct virtio_net_hdr *vh,
	       size_t max);

/* Whether f[len] (header *vh) continues g exactly. If so it is counted
 * in g and the caller writes f[g->hlen..len) after what g holds; the
 * frame's own headers are not written. */
bool gro_append(struct gro *g, const uint8_t *f, size_t len, const struct virtio_net_hdr *vh);

/* Rewrites the head's IP total length and checksum, TCP flags, window
 * (the last frame's) and pseudo-header checksum for the merged length. A
 * no-op for one frame. */
void gro_finish(struct gro *g);

/* Puts the head's headers back as received (to write the frames one by
 * one when the merged write was refused). */
void gro_undo(struct gro *g);

/* The reverse, for a link that refuses a big frame whole (a packet
 * socket before Linux 6.6 takes about 68 KB at most): a TCPv4 super-frame
 * cut into pieces below max bytes, each a super-frame of whole segments
 * (the last may be short) with its own headers, as the sender's TSO would
 * have made them: IP total length, id and checksum, sequence number, FIN
 * and PSH on the last piece only, CWR on the first, the pseudo-header sum
 * for its length. A BIG TCP frame (IP total length 0) is taken too. */
#define GRO_HDR_MAX (14 + 20 + 60)   /* a frame's headers at most: Ethernet, IPv4, TCP */
struct gro_split {
	const uint8_t *f;               /* the frame, left as it is */
	struct virtio_net_hdr vh;
	size_t len, hlen;
	size_t per;                     /* payload bytes per piece: whole segments */
	size_t off;                     /* payload bytes given out so far */
};
/* Whether f[len] (header *vh) can be cut below max bytes (max - hlen
 * leaves room for a segment); sp is then ready. */
bool gro_split_start(struct gro_split *sp, const uint8_t *f, size_t len,
		     const struct virtio_net_hdr *vh, size_t max);
/* The next piece: its headers into hdr[sp->hlen] and *vh, its payload
 * at *pay[*plen] (inside the frame). False when all were given. */
bool gro_split_next(struct gro_split *sp, uint8_t *hdr, struct virtio_net_hdr *vh,
		    const uint8_t **pay, size_t *plen);

/* Whether an RTM_NEWLINK reply msg[len] (to RTM_GETLINK) carries
 * GRO_IFLA_GSO_IPV4_MAX_SIZE: the kernel (6.3 or later) then takes IPv4
 * super-frames over 64 KB (BIG TCP), and the limit is GRO_MAX_LEN;
 * otherwise GRO_MAX_LEGACY. False for anything malformed. */
bool gro_big_tcp_reply(const uint8_t *msg, size_t len);

#endif

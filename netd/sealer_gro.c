/* Receive coalescing of TCP super-frames (sealer_gro.h). */
#include "sealer_gro.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "sealer_wire.h"

#define ETH_LEN SW_ETH_HLEN
#define IP_LEN 20      /* IPv4 without options: the only kind coalesced */
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80
#define TCP_ACK 0x10
#define TCP_ECE 0x40

/* Offsets of a TCPv4 super-frame f[len] with header vh: the IP header at
 * ETH_LEN, TCP at *l4, payload at *hlen; false when anything is off.
 * With big, an IP total length of 0 stands for a frame over 64 KB. */
static bool tcp4_frame_len(const uint8_t *f, size_t len, const struct virtio_net_hdr *vh,
			   bool big, size_t *l4, size_t *hlen)
{
	if ((vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_TCPV4 ||
	    !(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || !vh->gso_size)
		return false;
	if (len < ETH_LEN + IP_LEN + 20 || sw_get16(f + 12) != 0x0800)
		return false;
	const uint8_t *ip = f + ETH_LEN;
	if (ip[0] != 0x45 || ip[9] != 6)
		return false;
	/* DF, not a fragment; the length as the frame has it */
	size_t tot = sw_get16(ip + 2);
	if (big && tot == 0 && len - ETH_LEN > 0xffff)
		tot = len - ETH_LEN;
	if ((sw_get16(ip + 6) & 0xbfff) != 0 || !(ip[6] & 0x40) || tot != len - ETH_LEN)
		return false;
	const uint8_t *th = ip + IP_LEN;
	size_t doff = (size_t)(th[12] >> 4) * 4;
	if (doff < 20 || len <= ETH_LEN + IP_LEN + doff)
		return false;
	*l4 = ETH_LEN + IP_LEN;
	*hlen = ETH_LEN + IP_LEN + doff;
	/* the checksum the sender's stack left partial starts at TCP */
	return vh->csum_start == *l4 && vh->csum_offset == 16;
}

static bool tcp4_frame(const uint8_t *f, size_t len, const struct virtio_net_hdr *vh,
		       size_t *l4, size_t *hlen)
{
	return tcp4_frame_len(f, len, vh, false, l4, hlen);
}

/* IP total length (0 over 64 KB) and checksum, and the TCP pseudo-header
 * sum, of the frame whose headers are at f, for ip_len bytes of IP. */
static void tcp4_lengths(uint8_t *f, size_t ip_len)
{
	uint8_t *ip = f + ETH_LEN, *th = ip + IP_LEN;
	sw_put16(ip + 2, ip_len > 0xffff ? 0 : (uint16_t)ip_len);
	sw_put16(ip + 10, 0);
	sw_put16(ip + 10, (uint16_t)~sw_fold(sw_sum16(0, ip, IP_LEN)));
	/* partial checksum: the pseudo-header sum for the TCP length */
	uint32_t tcp_len = (uint32_t)(ip_len - IP_LEN);
	sw_put16(th + 16, sw_fold(sw_sum16(6 + (tcp_len >> 16) + (tcp_len & 0xffff), ip + 12, 8)));
}

bool gro_start(struct gro *g, uint8_t *f, size_t len, const struct virtio_net_hdr *vh,
	       size_t max)
{
	size_t l4, hlen;
	memset(g, 0, sizeof(*g));
	if (max > GRO_MAX_LEN)
		max = GRO_MAX_LEN;
	if (!tcp4_frame(f, len, vh, &l4, &hlen) || len >= max)
		return false;
	const uint8_t *th = f + l4;
	g->head = f;
	g->vh = *vh;
	g->head_len = len;
	g->hlen = hlen;
	g->len = len;
	g->max = max;
	g->frames = 1;
	g->next_seq = sw_get32(th + 4) + (uint32_t)(len - hlen);
	g->tcp_flags = th[13];
	/* A frame with anything but ACK, ECE and PSH (FIN, SYN, RST, URG,
	 * CWR), or with a short last segment, ends a merge: nothing may
	 * follow it. PSH does not: the kernel marks nearly every TSO
	 * super-frame with it, and a receiver delivers data at once anyway;
	 * the merged frame carries it if any part did (and a segmentation
	 * leaves it on the last segment). */
	g->closed = (th[13] & (uint8_t)~(TCP_ACK | TCP_ECE | TCP_PSH)) != 0 ||
		    (len - hlen) % vh->gso_size != 0;
	g->tot_len = sw_get16(f + ETH_LEN + 2);
	g->ip_csum = sw_get16(f + ETH_LEN + 10);
	g->tcp_csum = sw_get16(th + 16);
	g->window = g->last_window = sw_get16(th + 14);
	return true;
}

bool gro_append(struct gro *g, const uint8_t *f, size_t len, const struct virtio_net_hdr *vh)
{
	size_t l4, hlen;
	if (!g->frames || g->closed || !tcp4_frame(f, len, vh, &l4, &hlen))
		return false;
	if (hlen != g->hlen || vh->gso_size != g->vh.gso_size || vh->gso_type != g->vh.gso_type ||
	    g->len + (len - hlen) >= g->max)
		return false;
	const uint8_t *ip = f + ETH_LEN, *hip = g->head + ETH_LEN;
	const uint8_t *th = f + l4, *hth = g->head + l4;
	/* Ethernet header; IP version..TOS, DF, TTL, protocol and addresses;
	 * ports, the acknowledgement, data offset and TCP options
	 * (timestamps included, as the kernel's GRO wants). The window may
	 * move: the merged frame carries the last one. */
	if (memcmp(f, g->head, ETH_LEN) != 0 || memcmp(ip, hip, 2) != 0 ||
	    memcmp(ip + 6, hip + 6, 4) != 0 || memcmp(ip + 12, hip + 12, 8) != 0 ||
	    memcmp(th, hth, 4) != 0 || memcmp(th + 8, hth + 8, 5) != 0 ||
	    memcmp(th + 18, hth + 18, hlen - l4 - 18) != 0)
		return false;
	uint8_t fl = th[13], mask = (uint8_t)~(TCP_PSH | TCP_FIN);
	if ((fl & mask) != (g->tcp_flags & mask) || sw_get32(th + 4) != g->next_seq)
		return false;
	g->len += len - hlen;
	g->frames++;
	g->next_seq += (uint32_t)(len - hlen);
	g->flags |= fl & (TCP_PSH | TCP_FIN);
	g->last_window = sw_get16(th + 14);
	g->closed = (fl & TCP_FIN) != 0 || (len - hlen) % vh->gso_size != 0;
	return true;
}

void gro_finish(struct gro *g)
{
	if (g->frames < 2)
		return;
	uint8_t *th = g->head + ETH_LEN + IP_LEN;
	th[13] |= g->flags;
	sw_put16(th + 14, g->last_window);
	tcp4_lengths(g->head, g->len - ETH_LEN);
}

void gro_undo(struct gro *g)
{
	uint8_t *ip = g->head + ETH_LEN, *th = ip + IP_LEN;
	sw_put16(ip + 2, g->tot_len);
	sw_put16(ip + 10, g->ip_csum);
	th[13] = g->tcp_flags;
	sw_put16(th + 14, g->window);
	sw_put16(th + 16, g->tcp_csum);
}

bool gro_split_start(struct gro_split *sp, const uint8_t *f, size_t len,
		     const struct virtio_net_hdr *vh, size_t max)
{
	size_t l4, hlen;
	memset(sp, 0, sizeof(*sp));
	if (!tcp4_frame_len(f, len, vh, true, &l4, &hlen) || max > GRO_MAX_LEGACY ||
	    max <= hlen + vh->gso_size)
		return false;
	sp->f = f;
	sp->vh = *vh;
	sp->len = len;
	sp->hlen = hlen;
	sp->per = (max - 1 - hlen) / vh->gso_size * vh->gso_size;
	return true;
}

bool gro_split_next(struct gro_split *sp, uint8_t *hdr, struct virtio_net_hdr *vh,
		    const uint8_t **pay, size_t *plen)
{
	size_t total = sp->len - sp->hlen;
	if (!sp->f || sp->off >= total)
		return false;
	size_t n = total - sp->off < sp->per ? total - sp->off : sp->per;
	bool first = sp->off == 0, last = sp->off + n == total;
	memcpy(hdr, sp->f, sp->hlen);
	uint8_t *ip = hdr + ETH_LEN, *th = ip + IP_LEN;
	/* the ids and sequence numbers the sender's segments would carry */
	uint16_t segs = (uint16_t)(sp->off / sp->vh.gso_size);
	sw_put16(ip + 4, (uint16_t)(sw_get16(ip + 4) + segs));
	sw_put32(th + 4, sw_get32(th + 4) + (uint32_t)sp->off);
	if (!last)
		th[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (!first)
		th[13] &= (uint8_t)~TCP_CWR;
	tcp4_lengths(hdr, sp->hlen - ETH_LEN + n);
	*vh = sp->vh;
	if (n <= sp->vh.gso_size) {   /* one segment: no GSO */
		vh->gso_type = VIRTIO_NET_HDR_GSO_NONE;
		vh->gso_size = 0;
	}
	*pay = sp->f + sp->hlen + sp->off;
	*plen = n;
	sp->off += n;
	return true;
}

bool gro_big_tcp_reply(const uint8_t *msg, size_t len)
{
	struct nlmsghdr nh;
	if (len < NLMSG_HDRLEN)
		return false;
	memcpy(&nh, msg, sizeof(nh));
	if (nh.nlmsg_type != RTM_NEWLINK || nh.nlmsg_len > len ||
	    nh.nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return false;
	size_t off = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	off = NLMSG_ALIGN(off);
	while (off + sizeof(struct rtattr) <= nh.nlmsg_len) {
		struct rtattr a;
		memcpy(&a, msg + off, sizeof(a));
		if (a.rta_len < sizeof(a) || a.rta_len > nh.nlmsg_len - off)
			return false;
		if ((a.rta_type & NLA_TYPE_MASK) == GRO_IFLA_GSO_IPV4_MAX_SIZE)
			return a.rta_len >= RTA_LENGTH(sizeof(uint32_t));
		off += RTA_ALIGN(a.rta_len);
	}
	return false;
}

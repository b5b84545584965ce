/* swarm-sealer's engine: links, the sealed UDP data path, the control
 * socket (contracts, wire format and MTU in sealer.h). */
#include "sealer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "pb.h"
#include "seal.h"
#include "sealer_gro.h"
#include "sealer_link.h"
#include "sealer_wire.h"
#include "util.h"

#define PKT_CAP 65536u                     /* one UDP datagram (SEAL_MAX_PACKET fits) */
#define PT_CAP SEAL_MAX_FRAME              /* plaintext: VNI [+ vnet header] + frame */
#define PT_BUF (GRO_MAX_LEN + 64)          /* room for the largest frame read (BIG TCP) */
#define VLAN_ROOM 4                        /* a VLAN tag put back into a frame read */
#define VNI_LEN 4
#define VNET_LEN ((int)SW_VNET_LEN)
#define RT_CAP (SEAL_HDR_LEN + PT_BUF + SEAL_TAG_LEN)   /* a whole train, as seal_rx_open takes it */
#define UDP_MAX_PAYLOAD 65507u             /* a UDP GSO send: all its segments together */
#define ETH_HLEN_ 14
#define ARP_LEN (ETH_HLEN_ + 28)
#define LINK_READS 256                      /* frames per TAP wake-up (fairness) */
#define UDP_ROUNDS 8                       /* recvmmsg batches per UDP wake-up */
#define SOCKBUF (4 << 20)
#define GRO_FRAMES 8                       /* opened frames held for one coalesced write */
#define AUTH_LOG_S 10.0                    /* at most one failure log per vtep this often */

/* A remote node: one sealing and one opening direction. */
struct vtep {
	uint32_t addr;                 /* data-path address, host order */
	struct sockaddr_in sa;         /* addr:port */
	bool tx_ok;                    /* tx initialized (the ring is not empty) */
	bool keep;                     /* sealer_apply: still wanted */
	struct seal_tx tx;             /* us -> it */
	struct seal_rx rx;             /* it -> us */
	double auth_logged;            /* ev_now of the last authentication failure log */
	uint64_t auth_unlogged;        /* failures since */
	struct seal_train rt;          /* the train being received from it */
	uint8_t *rt_buf;               /* its datagrams (RT_CAP), allocated on first use */
};

/* A remote endpoint. */
struct peer {
	uint32_t vni;
	uint8_t mac[6];
	uint32_t ip;                   /* host order; 0 = no proxy ARP */
	uint32_t vaddr;                /* its vtep's address, host order */
	struct vtep *vtep;
};

/* An encrypted network and its link. */
struct net {
	struct sealer *s;
	uint32_t vni;
	char *netns;                   /* namespace holding br0 */
	char tap[IFNAMSIZ];
	uint32_t mtu;                  /* 0 = leave the link's */
	int fd;                        /* its packet socket (sealer_link.h), -1 while not open */
	ev_io io;
	char err[160];                 /* why the link is not open */
	size_t plo, phi;               /* its peers: s->peers[plo..phi) */
	struct vtep **flood;           /* distinct vteps of its peers */
	size_t nflood;
	uint64_t tx_frames, rx_frames;
};

struct counters {
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes, arp_replies;
	uint64_t no_peer, auth, replay, unknown_vni, malformed, unknown_sender, tx_error, no_key;
	uint64_t rekeys;
	uint64_t too_big;
	uint64_t trains_tx, trains_rx, trains_lost;
	uint64_t coalesced;            /* frames written as part of another (sealer_gro.h) */
};

struct sealer {
	struct ev_loop *loop;
	uint64_t generation;           /* of the config in force */
	uint32_t self;                 /* host order; 0 = no config yet */
	uint16_t port;
	bool no_trains;                /* links pass no super-frames: every frame sealed alone */
	int udp;                       /* bound to self:port, -1 = none */
	ev_io uio;
	ev_timer retry;                /* reopens failed links */
	struct listener *lis;
	struct seal_key ring[SEALER_MAX_KEYS];
	size_t nring;
	struct net **nets;             /* sorted by vni */
	size_t nnets;
	struct vtep **vteps;           /* sorted by addr */
	size_t nvteps;
	struct peer *peers;            /* sorted by (vni, mac) */
	size_t npeers;
	uint8_t *pt;                   /* plaintext scratch: VNI || frame (TX) */
	/* RX: frames are opened into rxpt[nheld]; rxpt[0..nheld) hold the
	 * frames of the coalesced write being built (gro) for gro_net */
	uint8_t *rxpt[GRO_FRAMES];
	size_t nheld;
	struct gro gro;
	struct net *gro_net;
	struct iovec gro_iov[GRO_FRAMES + 1];
	struct sw_frame held[GRO_FRAMES];
	size_t gro_max;                /* coalesced frames stay below; 0: none (sealer_new probes) */
	bool split_big;                /* the links refuse frames over 64 KB: split them */
	uint8_t *txbuf, *rxbuf;        /* SEALER_BATCH datagrams each */
	struct mmsghdr txm[SEALER_BATCH], rxm[SEALER_BATCH];
	struct iovec txv[SEALER_BATCH], rxv[SEALER_BATCH];
	struct sockaddr_in txa[SEALER_BATCH], rxa[SEALER_BATCH];
	bool txmore[SEALER_BATCH];     /* slot continues the previous one's train */
	/* UDP_SEGMENT on sends of trains, UDP_GRO on receives */
	union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } txc[SEALER_BATCH];
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } rxc[SEALER_BATCH];
	uint16_t seg;                  /* sealed datagram size that fits the underlay (MTU - 28) */
	unsigned ntx;                  /* datagrams waiting in txm */
	struct counters c;
	/* counters and roll-back (seal.h): the floor file */
	char *floor_path;              /* NULL: none kept */
	uint64_t floor;                /* read at start: counters start above it */
	uint64_t reserved;             /* written: no counter reaches it */
	bool floor_failed;             /* the last write failed (logged once) */
	ev_timer floor_t;              /* moves the reservation up with the clock */
	int64_t (*wall)(void);         /* the wall clock (ns) */
};

#define FLOOR_CHECK_S 60.0

/* What goes into a link before a frame without GSO or checksum work. */
static const struct virtio_net_hdr vnet_none;

/* ---- lookups ---- */

static int peer_cmp(uint32_t vni, const uint8_t *mac, const struct peer *p)
{
	if (vni != p->vni)
		return vni < p->vni ? -1 : 1;
	return memcmp(mac, p->mac, 6);
}

static int peer_sort_cmp(const void *a, const void *b)
{
	const struct peer *x = a, *y = b;
	return peer_cmp(x->vni, x->mac, y);
}

/* First peer index with (vni, mac) >= the key. */
static size_t peer_lower(const struct peer *v, size_t n, uint32_t vni, const uint8_t *mac)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (peer_cmp(vni, mac, &v[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct peer *peer_find(const struct sealer *s, uint32_t vni, const uint8_t *mac)
{
	size_t i = peer_lower(s->peers, s->npeers, vni, mac);
	return i < s->npeers && peer_cmp(vni, mac, &s->peers[i]) == 0 ? &s->peers[i] : NULL;
}

static struct vtep *vtep_find(struct vtep **v, size_t n, uint32_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid]->addr == addr)
			return v[mid];
		if (v[mid]->addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct net *net_find(const struct sealer *s, uint32_t vni)
{
	size_t lo = 0, hi = s->nnets;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->nets[mid]->vni == vni)
			return s->nets[mid];
		if (s->nets[mid]->vni < vni)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- TX: link -> sealed UDP ---- */

/* Sends the batched datagrams; what the socket does not take is dropped
 * (UDP semantics: never block the loop on a full buffer). */
static void tx_flush(struct sealer *s)
{
	unsigned done = 0;
	while (done < s->ntx) {
		int r = sendmmsg(s->udp, s->txm + done, s->ntx - done, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_debug("sealer, sendmmsg: %s", strerror(errno));
			s->c.tx_error += s->ntx - done;
			break;
		}
		for (int i = 0; i < r; i++) {
			s->c.tx_bytes += s->txm[done + i].msg_len - SEAL_OVERHEAD;
			s->c.tx_frames += !s->txmore[done + i];   /* a train once */
		}
		done += (unsigned)r;
	}
	s->ntx = 0;
}

/* ---- the counter floor ---- */

/* The clock counters start from: the wall clock, never below the floor
 * read at start (so a clock set back across a restart cannot make our
 * counters look like replays to a peer). */
static uint64_t sealer_clock(const struct sealer *s)
{
	int64_t w = s->wall();
	return w > 0 && (uint64_t)w > s->floor ? (uint64_t)w : s->floor;
}

/* Moves the reservation on disk above the clock and every counter in
 * use, when due (seal_floor_due). Called before any new epoch starts and
 * every FLOOR_CHECK_S. A failed write is logged once and retried. */
static void floor_keep(struct sealer *s)
{
	if (!s->floor_path)
		return;
	uint64_t high = sealer_clock(s) + SEAL_REKEY_AFTER, next;
	for (size_t i = 0; i < s->nvteps; i++)
		if (s->vteps[i]->tx_ok && s->vteps[i]->tx.counter + SEAL_REKEY_AFTER > high)
			high = s->vteps[i]->tx.counter + SEAL_REKEY_AFTER;
	if (!seal_floor_due(high, s->reserved, &next))
		return;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)next);
	int r = file_write_atomic(s->floor_path, buf, (size_t)n, 0600);
	if (r < 0) {
		if (!s->floor_failed)
			log_err("sealer, writing the counter floor %s: %s (a clock set back before "
				"the next start would make peers drop our frames as replays)",
				s->floor_path, strerror(-r));
		s->floor_failed = true;
		return;
	}
	if (s->floor_failed)
		log_info("sealer, counter floor %s written again", s->floor_path);
	s->floor_failed = false;
	s->reserved = next;
}

static void floor_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	floor_keep(w->data);
}

int sealer_set_floor_file(struct sealer *s, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	uint64_t v = 0;
	int r = file_read_all(path, 64, &text, &len);
	if (r == 0 && seal_floor_parse(text, len, &v) < 0) {
		log_warn("sealer, counter floor %s unreadable: starting from the clock", path);
		v = 0;
	} else if (r < 0 && r != -ENOENT) {
		log_warn("sealer, counter floor %s: %s: starting from the clock", path, strerror(-r));
	}
	free(text);
	free(s->floor_path);
	s->floor_path = xstrdup(path);
	s->floor = v;
	s->reserved = 0;
	int64_t w = s->wall();
	if (v && w > 0 && (uint64_t)w < v)
		log_warn("sealer, the wall clock is %.0f s behind the counter floor: counters "
			 "start from the floor", (double)(v - (uint64_t)w) / 1e9);
	floor_keep(s);
	ev_timer_again(s->loop, &s->floor_t);
	return s->floor_failed ? -EIO : 0;
}

void sealer_set_wall_clock(struct sealer *s, int64_t (*wall)(void))
{
	s->wall = wall ? wall : now_wall_ns;
}

void sealer_set_coalescing(struct sealer *s, size_t max)
{
	s->gro_max = max;
}

/* Re-keys v's sealing direction; true when done (counted). */
static bool rekey(struct sealer *s, struct vtep *v)
{
	floor_keep(s);
	if (seal_tx_rekey(&v->tx, (int64_t)sealer_clock(s)) < 0)
		return false;
	s->c.rekeys++;
	return true;
}

/* Seals pt[len] for v into out[cap] (seal_tx_seal), or as a train of cnt
 * datagrams into outs (seal_tx_train) when outs is set; re-keys v first
 * when due, or when the epoch is used up. */
static ssize_t seal_for(struct sealer *s, struct vtep *v, const uint8_t *pt, size_t len,
			uint8_t *out, size_t cap, uint8_t *const *outs, size_t cnt)
{
	if (seal_tx_should_rekey(&v->tx))
		rekey(s, v);
	ssize_t n = -EKEYEXPIRED;
	for (int tries = 0; n == -EKEYEXPIRED && tries < 2; tries++) {
		if (tries && !rekey(s, v))
			break;
		n = outs ? seal_tx_train(&v->tx, pt, len, s->seg, outs, cnt)
			 : seal_tx_seal(&v->tx, pt, len, out, cap);
	}
	if (n < 0) {
		log_debug("sealer, sealing for %08x: %s", v->addr, strerror((int)-n));
		s->c.tx_error++;
	}
	return n;
}

/* The next batch slot for v, flushing a full batch first. */
static unsigned slot_take(struct sealer *s, struct vtep *v)
{
	if (s->ntx == SEALER_BATCH)
		tx_flush(s);
	unsigned i = s->ntx++;
	s->txv[i].iov_base = s->txbuf + (size_t)i * PKT_CAP;
	s->txv[i].iov_len = 0;
	s->txa[i] = v->sa;
	s->txm[i].msg_hdr.msg_control = NULL;
	s->txm[i].msg_hdr.msg_controllen = 0;
	s->txmore[i] = false;
	return i;
}

/* Slot i holds several seg-sized datagrams back to back: one send, cut
 * by the kernel (or the NIC) at seg bytes (UDP_SEGMENT). */
static void slot_segment(struct sealer *s, unsigned i)
{
	struct msghdr *mh = &s->txm[i].msg_hdr;
	mh->msg_control = s->txc[i].buf;
	mh->msg_controllen = sizeof(s->txc[i].buf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	memcpy(CMSG_DATA(cm), &s->seg, sizeof(s->seg));
}

/* A plaintext too big for one datagram that fits the underlay (a TCP
 * super-frame): sealed once as a train (seal.h) of s->seg-byte datagrams
 * written back to back into batch slots, as many per slot as one
 * UDP_SEGMENT send may carry. No IP fragments: a lost datagram loses its
 * train only, and a receiver that gets the datagrams one by one or
 * coalesced (UDP_GRO) gathers them alike. */
static void tx_train(struct sealer *s, struct vtep *v, const uint8_t *pt, size_t len)
{
	size_t cnt = seal_train_count(len, s->seg);
	size_t per_slot = UDP_MAX_PAYLOAD / s->seg;
	size_t nslots = cnt ? (cnt + per_slot - 1) / per_slot : 0;
	if (!cnt || nslots > SEALER_BATCH) {
		if (!s->c.too_big++)
			log_warn("sealer, a %zu-byte super-frame needs more than %d datagrams; dropped",
				 len, SEAL_TRAIN_MAX);
		return;
	}
	if (s->ntx + nslots > SEALER_BATCH)
		tx_flush(s);
	unsigned first = s->ntx;
	uint8_t *outs[SEAL_TRAIN_MAX];
	for (size_t k = 0; k < cnt; k++) {
		if (k % per_slot == 0)
			s->txmore[slot_take(s, v)] = k > 0;
		outs[k] = (uint8_t *)s->txv[s->ntx - 1].iov_base + (k % per_slot) * s->seg;
	}
	ssize_t last = seal_for(s, v, pt, len, NULL, 0, outs, cnt);
	if (last < 0) {
		s->ntx = first;
		return;
	}
	for (unsigned i = first; i < s->ntx; i++) {
		size_t in_slot = i + 1 < s->ntx ? per_slot : cnt - (i - first) * per_slot;
		s->txv[i].iov_len = (in_slot - 1) * s->seg + (i + 1 < s->ntx ? s->seg : (size_t)last);
		if (in_slot > 1)
			slot_segment(s, i);
	}
	s->c.trains_tx++;
}

/* Seals the plaintext pt[len] for v into the next batch slot (a train
 * when it would not fit the underlay whole). */
static void tx_one(struct sealer *s, struct vtep *v, const uint8_t *pt, size_t len)
{
	if (!v->tx_ok) {
		s->c.no_key++;
		return;
	}
	if (len + SEAL_OVERHEAD > s->seg && (sw_get32(pt) & SW_F_VNET)) {
		tx_train(s, v, pt, len);
		return;
	}
	unsigned i = slot_take(s, v);
	ssize_t n = seal_for(s, v, pt, len, s->txv[i].iov_base, PKT_CAP, NULL, 0);
	if (n < 0) {
		s->ntx--;
		return;
	}
	s->txv[i].iov_len = (size_t)n;
}

/* An ARP request (frame of len bytes) for the IP of a known peer of n is
 * answered into the link with the peer's MAC. True when answered. */
static bool proxy_arp(struct sealer *s, struct net *n, const uint8_t *f, size_t len)
{
	static const uint8_t req_hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	if (len < ARP_LEN || f[12] != 0x08 || f[13] != 0x06 ||
	    memcmp(f + ETH_HLEN_, req_hdr, sizeof(req_hdr)) != 0)
		return false;
	const uint8_t *a = f + ETH_HLEN_;
	uint32_t tip = sw_get32(a + 24);
	const struct peer *p = NULL;
	for (size_t i = n->plo; i < n->phi; i++)
		if (s->peers[i].ip == tip) {
			p = &s->peers[i];
			break;
		}
	if (!p || !tip)
		return false;
	uint8_t r[ARP_LEN];
	memcpy(r, a + 8, 6);               /* to the requester */
	memcpy(r + 6, p->mac, 6);
	r[12] = 0x08;
	r[13] = 0x06;
	uint8_t *ra = r + ETH_HLEN_;
	memcpy(ra, req_hdr, 6);
	ra[6] = 0;
	ra[7] = 2;                         /* reply */
	memcpy(ra + 8, p->mac, 6);         /* sender: the peer */
	sw_put32(ra + 14, tip);
	memcpy(ra + 18, a + 8, 6);         /* target: the requester */
	memcpy(ra + 24, a + 14, 4);
	struct iovec iov[2] = { { (void *)&vnet_none, VNET_LEN }, { r, sizeof(r) } };
	if (writev(n->fd, iov, 2) < 0)
		s->c.tx_error++;
	else
		s->c.arp_replies++;
	return true;
}

/* One plaintext (pt, len: VNI word [+ vnet header] + frame) of n, whose
 * Ethernet frame starts at f. */
static void tx_frame(struct sealer *s, struct net *n, const uint8_t *pt, size_t len,
		     const uint8_t *f, size_t flen)
{
	if (f[0] & 1) {
		if (proxy_arp(s, n, f, flen))
			return;
		if (!n->nflood)
			s->c.no_peer++;
		for (size_t i = 0; i < n->nflood; i++)
			tx_one(s, n->flood[i], pt, len);
		n->tx_frames++;
		return;
	}
	const struct peer *p = peer_find(s, n->vni, f);
	if (!p) {
		s->c.no_peer++;
		return;
	}
	tx_one(s, p->vtep, pt, len);
	n->tx_frames++;
}

/* What one link read left at base + VNI_LEN: a vnet header and a frame
 * (r bytes). A TCP super-frame (GSO) keeps its header and goes as a
 * train (tx_one); any other frame travels alone with its checksum
 * finished here, so it costs the wire no more than SEALER_OVERHEAD. */
static void tx_read(struct sealer *s, struct net *n, uint8_t *base, size_t r)
{
	struct virtio_net_hdr *h = (struct virtio_net_hdr *)(base + VNI_LEN);
	uint8_t *f = base + VNI_LEN + VNET_LEN;
	size_t flen = r - VNET_LEN;
	if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		sw_put32(base, n->vni | SW_F_VNET);
		tx_frame(s, n, base, VNI_LEN + r, f, flen);
		return;
	}
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    !sw_csum_complete(f, flen, h->csum_start, h->csum_offset)) {
		s->c.malformed++;
		return;
	}
	uint8_t *pt = f - VNI_LEN;   /* over the header's tail: it is not sent */
	sw_put32(pt, n->vni);
	tx_frame(s, n, pt, VNI_LEN + flen, f, flen);
}

static void tap_close(struct net *n, bool remove);
static void retry_arm(struct sealer *s);

/* errno from the link's socket that says the link itself is gone (its
 * pair or namespace deleted, as when netd remakes a network); any other
 * error concerns one frame only. */
static bool link_gone(int e)
{
	return e == ENETDOWN || e == ENXIO || e == ENODEV || e == EBADF;
}

/* The link failed for good: close it; the retry timer opens it again. */
static void tap_lost(struct net *n, int err)
{
	snprintf(n->err, sizeof(n->err), "%s", strerror(err));
	log_warn("sealer, vni %u: link %s: %s (reopening)", n->vni, n->tap, n->err);
	tap_close(n, false);
	retry_arm(n->s);
}

/* A VLAN tag the kernel took out of the frame before the packet socket
 * saw it (it always does on receive; PACKET_AUXDATA gives it): put back
 * after the MAC addresses, as the frame left the container, with the vnet
 * header's offsets moved along. The frame was read VLAN_ROOM bytes into
 * the buffer; *base moves to the buffer's start. True when it was done. */
static bool vlan_restore(struct msghdr *mh, uint8_t **base)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
		    c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata)))
			continue;
		struct tpacket_auxdata aux;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		if (!(aux.tp_status & TP_STATUS_VLAN_VALID))
			return false;
		uint8_t *b = *base - VLAN_ROOM;
		memmove(b + VNI_LEN, *base + VNI_LEN, VNET_LEN + 12);
		uint8_t *tag = b + VNI_LEN + VNET_LEN + 12;
		bool tpid = aux.tp_status & TP_STATUS_VLAN_TPID_VALID;
		sw_put16(tag, tpid && aux.tp_vlan_tpid ? aux.tp_vlan_tpid : 0x8100);
		sw_put16(tag + 2, aux.tp_vlan_tci);
		struct virtio_net_hdr *h = (struct virtio_net_hdr *)(b + VNI_LEN);
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			h->csum_start = (uint16_t)(h->csum_start + VLAN_ROOM);
		if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE)
			h->hdr_len = (uint16_t)(h->hdr_len + VLAN_ROOM);
		*base = b;
		return true;
	}
	return false;
}

static void tap_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct net *n = w->data;
	struct sealer *s = n->s;
	for (int i = 0; i < LINK_READS; i++) {
		/* read VLAN_ROOM bytes in, to put a VLAN tag back (below);
		 * MSG_TRUNC: the frame's whole length, to tell a cut one */
		uint8_t *base = s->pt + VLAN_ROOM;
		struct iovec iov = { base + VNI_LEN, PT_BUF - VNI_LEN - VLAN_ROOM };
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} cb;
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof(cb),
		};
		ssize_t r = recvmsg(n->fd, &mh, MSG_TRUNC);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (link_gone(errno)) {
				tap_lost(n, errno);
				return;
			}
			/* one frame the kernel could not describe in a vnet
			 * header (dropped by it): the link is fine */
			s->c.malformed++;
			continue;
		}
		if (r < VNET_LEN + ETH_HLEN_ || r > (ssize_t)iov.iov_len) {
			s->c.malformed++;
			continue;
		}
		if (vlan_restore(&mh, &base))
			r += VLAN_ROOM;
		if (s->udp < 0) {
			s->c.tx_error++;
			continue;
		}
		tx_read(s, n, base, (size_t)r);
	}
	if (s->ntx)
		tx_flush(s);
}

/* ---- RX: sealed UDP -> link ---- */

/* A frame from v that no ring key opens: a node with another key ring
 * (it missed rotations, or we did). Said in the log, at most every
 * AUTH_LOG_S per vtep, with the key id it used and the ids we hold. */
static void auth_failed(struct sealer *s, struct vtep *v, const uint8_t *pkt, size_t len)
{
	s->c.auth++;
	v->auth_unlogged++;
	double now = ev_now(s->loop);
	if (v->auth_logged && now - v->auth_logged < AUTH_LOG_S)
		return;
	char ids[64] = "";
	size_t k = 0;
	for (size_t i = 0; i < s->nring && k < sizeof(ids) - 5; i++)
		k += (size_t)snprintf(ids + k, sizeof(ids) - k, "%s%u", i ? "," : "", s->ring[i].id);
	struct in_addr a = { htonl(v->addr) };
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, addr, sizeof(addr));
	int id = len >= SEAL_HDR_LEN ? pkt[1] : -1;   /* seal.h: byte 1 is the key id */
	log_err("sealer, %llu frame(s) from %s fail authentication: sealed with key id %d, "
		"this node holds key ids [%s]; the two nodes do not share a data-path key",
		(unsigned long long)v->auth_unlogged, addr, id, ids);
	v->auth_logged = now;
	v->auth_unlogged = 0;
}

/* A TCP super-frame f[flen] (header *vh) written as pieces below 64 KB
 * (sealer_gro.h gro_split). 0, -EINVAL when it is no such frame, or the
 * errno of the piece that failed (those before it went). */
static int tap_write_split(struct net *n, const struct virtio_net_hdr *vh, const uint8_t *f,
			   size_t flen)
{
	struct gro_split sp;
	if (!gro_split_start(&sp, f, flen, vh, GRO_MAX_LEGACY))
		return -EINVAL;
	uint8_t hdr[GRO_HDR_MAX];
	struct virtio_net_hdr pv;
	const uint8_t *pay;
	size_t plen;
	while (gro_split_next(&sp, hdr, &pv, &pay, &plen)) {
		struct iovec iov[3] = {
			{ &pv, VNET_LEN }, { hdr, sp.hlen }, { (void *)pay, plen },
		};
		if (writev(n->fd, iov, 3) < 0)
			return -errno;
	}
	return 0;
}

/* One frame (with its vnet header, or none) into n's link. A super-frame
 * over 64 KB that the link refuses whole (packet sockets before Linux 6.6
 * take about 68 KB) goes in pieces, from then on at once. */
static void tap_write(struct sealer *s, struct net *n, const struct virtio_net_hdr *vh,
		      const uint8_t *f, size_t flen)
{
	struct iovec iov[2] = {
		{ vh ? (void *)vh : (void *)&vnet_none, VNET_LEN },
		{ (void *)f, flen },
	};
	bool big = vh && flen > GRO_MAX_LEGACY;
	/* -EINVAL from the split: no TCPv4 super-frame, written whole */
	int r = big && s->split_big ? tap_write_split(n, vh, f, flen) : -EINVAL;
	if (r == -EINVAL)
		r = writev(n->fd, iov, 2) < 0 ? -errno : 0;
	if (r == -EMSGSIZE && big && !s->split_big && (r = tap_write_split(n, vh, f, flen)) == 0) {
		s->split_big = true;
		log_warn("sealer, vni %u: a %zu-byte super-frame was refused whole; frames over "
			 "64 KB are written in pieces from now on", n->vni, flen);
	}
	if (r < 0) {
		s->c.tx_error++;
		if (link_gone(-r))
			tap_lost(n, -r);
		return;
	}
	n->rx_frames++;
	s->c.rx_frames++;
	s->c.rx_bytes += VNI_LEN + (vh ? VNET_LEN : 0) + flen;
}

/* Writes the held frames: one coalesced super-frame, or each alone (one
 * held, or the link refused the big one: it needs memory the kernel may
 * not find at once). Frees the slots. */
static void gro_flush(struct sealer *s)
{
	struct net *n = s->gro_net;
	size_t k = s->nheld;
	s->nheld = 0;
	s->gro_net = NULL;
	if (!k || n->fd < 0)
		return;
	if (k > 1) {
		gro_finish(&s->gro);
		s->gro_iov[0] = (struct iovec){ &s->gro.vh, VNET_LEN };
		s->gro_iov[1] = (struct iovec){ s->gro.head, s->gro.head_len };
		if (writev(n->fd, s->gro_iov, (int)k + 1) >= 0) {
			n->rx_frames += k;
			s->c.rx_frames += k;
			s->c.rx_bytes += (VNI_LEN + VNET_LEN) * k + s->gro.len + s->gro.hlen * (k - 1);
			s->c.coalesced += k - 1;
			return;
		}
		/* refused for good (not a momentary shortage): this kernel does
		 * not take what the probe promised; step the limit down */
		if (link_gone(errno)) {
			gro_undo(&s->gro);
			tap_lost(n, errno);
			return;
		}
		if (errno != ENOMEM && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
			s->gro_max = s->gro_max > GRO_MAX_LEGACY ? GRO_MAX_LEGACY : 0;
			log_warn("sealer, vni %u: a coalesced %zu-byte frame was refused (%s); "
				 "coalescing below %zu bytes from now on", n->vni, s->gro.len,
				 strerror(errno), s->gro_max);
		}
		gro_undo(&s->gro);
	}
	for (size_t i = 0; i < k && n->fd >= 0; i++) {
		struct virtio_net_hdr vh;
		memcpy(&vh, s->held[i].vnet, sizeof(vh));
		tap_write(s, n, &vh, s->held[i].frame, s->held[i].frame_len);
	}
}

/* An opened plaintext pt[r] (VNI word [+ vnet header] + frame), in slot
 * rxpt[nheld], into its network's link: held when it starts or continues
 * a coalesced write (written by gro_flush, at the latest when the UDP
 * batch is done), else written now, after what was held. */
static void deliver(struct sealer *s, uint8_t *pt, size_t r)
{
	struct sw_frame fr;
	if (sw_frame_parse(pt, r, &fr) < 0) {
		s->c.malformed++;
		return;
	}
	struct net *n = net_find(s, fr.vni);
	if (!n || n->fd < 0) {
		s->c.unknown_vni++;
		return;
	}
	struct virtio_net_hdr vh;
	if (fr.vnet)
		memcpy(&vh, fr.vnet, sizeof(vh));   /* it may sit unaligned */
	size_t slot = s->nheld;
	if (fr.vnet && s->gro_net == n && gro_append(&s->gro, fr.frame, fr.frame_len, &vh)) {
		s->held[slot] = fr;
		s->gro_iov[slot + 1] = (struct iovec){ (void *)(fr.frame + s->gro.hlen),
						      fr.frame_len - s->gro.hlen };
		if (++s->nheld == GRO_FRAMES || s->gro.closed)
			gro_flush(s);
		return;
	}
	gro_flush(s);
	if (fr.vnet && s->gro_max && gro_start(&s->gro, (uint8_t *)fr.frame, fr.frame_len, &vh,
					       s->gro_max) && !s->gro.closed) {
		/* its slot becomes the first */
		uint8_t *t = s->rxpt[0];
		s->rxpt[0] = s->rxpt[slot];
		s->rxpt[slot] = t;
		s->held[0] = fr;
		s->gro_net = n;
		s->nheld = 1;
		return;
	}
	tap_write(s, n, fr.vnet ? &vh : NULL, fr.frame, fr.frame_len);
}

/* Opens the sealed packet pkt[len] from v into s->rxpt[s->nheld] and delivers
 * it; failures are counted (and logged, for authentication). */
static void open_deliver(struct sealer *s, struct vtep *v, const uint8_t *pkt, size_t len,
			 size_t cap)
{
	uint8_t *pt = s->rxpt[s->nheld];
	ssize_t r = seal_rx_open(&v->rx, s->ring, s->nring, pkt, len, pt, cap);
	if (r < 0) {
		if (r == -EKEYREJECTED)
			auth_failed(s, v, pkt, len);
		else if (r == -EALREADY)
			s->c.replay++;
		else
			s->c.malformed++;
		return;
	}
	deliver(s, pt, (size_t)r);
}

/* One sealed datagram pkt[len] from the underlay: a frame alone, or one
 * of a train, gathered in its sender's buffer and opened once whole. A
 * datagram of another train abandons an unfinished one (its lost
 * datagrams will not come: a train is sent at once). */
static void rx_one(struct sealer *s, const uint8_t *pkt, size_t len, const struct sockaddr_in *from)
{
	struct vtep *v = vtep_find(s->vteps, s->nvteps, ntohl(from->sin_addr.s_addr));
	if (!v) {
		s->c.unknown_sender++;
		return;
	}
	if (len < SEAL_HDR_LEN || !pkt[3]) {
		open_deliver(s, v, pkt, len, PT_CAP);
		return;
	}
	if (!v->rt_buf)
		v->rt_buf = xmalloc(RT_CAP);
	size_t total;
	int k = seal_train_add(&v->rt, v->rt_buf, RT_CAP, pkt, len, &total, &s->c.trains_lost);
	if (k < 0)
		s->c.malformed++;
	if (k <= 0)
		return;
	s->c.trains_rx++;
	open_deliver(s, v, v->rt_buf, total, PT_BUF);
}

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct sealer *s = w->data;
	for (int round = 0; round < UDP_ROUNDS; round++) {
		for (unsigned i = 0; i < SEALER_BATCH; i++) {
			s->rxm[i].msg_hdr.msg_namelen = sizeof(s->rxa[i]);
			s->rxm[i].msg_hdr.msg_control = s->rxc[i].buf;
			s->rxm[i].msg_hdr.msg_controllen = sizeof(s->rxc[i].buf);
			s->rxv[i].iov_len = PKT_CAP;
		}
		int r = recvmmsg(s->udp, s->rxm, SEALER_BATCH, MSG_DONTWAIT, NULL);
		if (r <= 0)
			break;
		for (int i = 0; i < r; i++) {
			struct msghdr *mh = &s->rxm[i].msg_hdr;
			if (mh->msg_flags & MSG_TRUNC) {
				s->c.malformed++;
				continue;
			}
			/* UDP_GRO: datagrams of one sender coalesced, each gso bytes
			 * but the last; every one is sealed on its own */
			size_t len = s->rxm[i].msg_len, gso = len;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
				if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
					int g;
					memcpy(&g, CMSG_DATA(cm), sizeof(g));
					if (g > 0)
						gso = (size_t)g;
				}
			const uint8_t *p = s->rxv[i].iov_base;
			for (size_t off = 0; off < len; off += gso)
				rx_one(s, p + off, len - off < gso ? len - off : gso, &s->rxa[i]);
		}
		if (r < SEALER_BATCH)
			break;
	}
	gro_flush(s);
}

/* ---- links (sealer_link.h) ---- */

/* Segments per super-frame the br0 end passes: all unless trains are off,
 * when the kernel segments before the sealer. */
static uint32_t link_segs(const struct sealer *s)
{
	return s->no_trains ? 1 : 65535;
}

/* Runs fn(n, arg) with the thread inside n->netns; sockets made there
 * stay bound to it after we leave. 0, fn's result, or -errno with *what
 * set. */
static int in_netns(struct net *n, int (*fn)(struct net *, void *), void *arg, const char **what)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int nsfd = open(n->netns, O_RDONLY | O_CLOEXEC);
	int r;
	if (orig < 0 || nsfd < 0) {
		r = -errno;
		*what = "opening the namespace";
	} else if (setns(nsfd, CLONE_NEWNET) < 0) {
		r = -errno;
		*what = "entering the namespace";
	} else {
		r = fn(n, arg);
		if (setns(orig, CLONE_NEWNET) < 0)
			fatal("sealer, cannot return to own netns: %s", strerror(errno));
	}
	if (orig >= 0)
		close(orig);
	if (nsfd >= 0)
		close(nsfd);
	return r;
}

static int link_open_here(struct net *n, void *arg)
{
	const char **what = arg;
	struct sealer *s = n->s;
	uint32_t gso4 = s->gro_max > GRO_MAX_LEGACY ? GRO_MAX_LEN : 0;
	int r = sealer_link_ensure(n->tap, n->mtu, gso4, link_segs(s), what);
	return r < 0 ? r : sealer_link_socket(n->tap, SOCKBUF, what);
}

static int link_segs_here(struct net *n, void *arg)
{
	return sealer_link_segs(n->tap, *(uint32_t *)arg);
}

static int link_delete_here(struct net *n, void *arg)
{
	(void)arg;
	return sealer_link_delete(n->tap);
}

/* Opens n's link inside n->netns (sealer_link_ensure: made or adopted,
 * on br0, up) and its packet socket. 0 or -errno with n->err set. */
static int tap_open(struct net *n)
{
	const char *what = "";
	int fd = in_netns(n, link_open_here, &what, &what);
	if (fd < 0) {
		snprintf(n->err, sizeof(n->err), "%s: %s", what, strerror(-fd));
		return fd;
	}
	n->err[0] = 0;
	n->fd = fd;
	ev_io_init(&n->io, tap_cb, fd, EV_READ);
	n->io.data = n;
	ev_io_start(n->s->loop, &n->io);
	log_info("sealer, vni %u: link %s open in %s", n->vni, n->tap, n->netns);
	return 0;
}

/* Stops reading n's link; with remove, the pair is deleted. */
static void tap_close(struct net *n, bool remove)
{
	if (n->fd >= 0) {
		ev_io_stop(n->s->loop, &n->io);
		close(n->fd);
		n->fd = -1;
	}
	const char *what = "";
	int r = remove ? in_netns(n, link_delete_here, NULL, &what) : 0;
	if (r < 0 && r != -ENOENT)
		log_warn("sealer, vni %u: deleting link %s: %s", n->vni, n->tap, strerror(-r));
}

static void net_free(struct net *n, bool remove)
{
	if (!n)
		return;
	tap_close(n, remove);
	free(n->netns);
	free(n->flood);
	free(n);
}

static void retry_arm(struct sealer *s)
{
	bool want = false;
	for (size_t i = 0; i < s->nnets; i++)
		want |= s->nets[i]->fd < 0;
	if (want && !ev_is_active(&s->retry)) {
		ev_timer_set(&s->retry, SEALER_RETRY_S, SEALER_RETRY_S);
		ev_timer_start(s->loop, &s->retry);
	} else if (!want && ev_is_active(&s->retry)) {
		ev_timer_stop(s->loop, &s->retry);
	}
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct sealer *s = w->data;
	for (size_t i = 0; i < s->nnets; i++)
		if (s->nets[i]->fd < 0 && tap_open(s->nets[i]) < 0)
			log_debug("sealer, vni %u: tap %s: %s", s->nets[i]->vni, s->nets[i]->tap,
				  s->nets[i]->err);
	retry_arm(s);
}

/* ---- vteps ---- */

static void vtep_free(struct vtep *v)
{
	if (!v)
		return;
	seal_tx_clear(&v->tx);
	seal_rx_clear(&v->rx);
	free(v->rt_buf);
	free(v);
}

/* Brings v's sealing direction to the ring's primary (or none). */
static void vtep_set_ring(struct sealer *s, struct vtep *v, uint32_t self)
{
	if (!s->nring) {
		seal_tx_clear(&v->tx);
		v->tx_ok = false;
		return;
	}
	if (!v->tx_ok)
		floor_keep(s);
	int r = v->tx_ok ? seal_tx_set_key(&v->tx, &s->ring[0])
			 : seal_tx_init(&v->tx, &s->ring[0], self, v->addr, (int64_t)sealer_clock(s));
	if (r < 0) {
		log_err("sealer, keying the direction to %08x: %s", v->addr, strerror(-r));
		seal_tx_clear(&v->tx);
		v->tx_ok = false;
		return;
	}
	v->tx_ok = true;
}

/* ---- config ---- */

static int parse_ip(const char *str, uint32_t *out)
{
	struct in_addr a;
	if (!str || inet_pton(AF_INET, str, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

static int parse_mac(const char *str, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (!str || sscanf(str, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
			   &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

/* A UDP socket bound to self:port with big buffers, non-blocking. */
static int udp_open(uint32_t self, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int sz = SOCKBUF, dont = IP_PMTUDISC_DONT;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	/* Let the underlay fragment what does not fit rather than lose it
	 * to a path-MTU black hole (the kernel VXLAN path does the same). */
	setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont));
	/* coalesced receives of trains (fewer wake-ups); without it, one
	 * datagram per read works the same */
	int one = 1;
	setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(self);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The sealed datagram size that crosses the underlay unfragmented: the
 * MTU of the interface holding self (host order), less IPv4 and UDP
 * headers; 1472 (MTU 1500) when it cannot be found. */
static uint16_t underlay_seg(uint32_t self)
{
	struct ifaddrs *ifs = NULL, *i;
	unsigned mtu = 1500;
	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i; i = i->ifa_next) {
			const struct sockaddr_in *a = (const void *)i->ifa_addr;
			if (!a || a->sin_family != AF_INET || ntohl(a->sin_addr.s_addr) != self)
				continue;
			struct ifreq ifr;
			memset(&ifr, 0, sizeof(ifr));
			snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->ifa_name);
			int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (sk >= 0 && ioctl(sk, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 576)
				mtu = (unsigned)ifr.ifr_mtu;
			if (sk >= 0)
				close(sk);
			break;
		}
		freeifaddrs(ifs);
	}
	if (mtu > 65535)
		mtu = 65535;
	return (uint16_t)(mtu - 28);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); r = -EINVAL; goto out; } while (0)

int sealer_apply(struct sealer *s, const Swarm__SealerConfig *cfg, char *err, size_t errlen)
{
	struct peer *peers = NULL;
	struct vtep **vteps = NULL;
	uint32_t *addrs = NULL, *vnis = NULL;
	struct net **nets = NULL;
	size_t npeers = 0, nvteps = 0, nnets = 0;
	uint32_t self = 0;
	int udp = -1, r = 0;

	if (errlen)
		err[0] = 0;
	/* ---- check everything, build aside ---- */
	if (parse_ip(cfg->self, &self) < 0 || !self)
		FAIL("self: not an IPv4 address: \"%s\"", cfg->self);
	if (cfg->port > 65535)
		FAIL("port %u out of range", cfg->port);
	uint16_t port = cfg->port ? (uint16_t)cfg->port : SEALER_PORT;
	if (cfg->n_keys > SEALER_MAX_KEYS)
		FAIL("%zu keys, at most %d", cfg->n_keys, SEALER_MAX_KEYS);
	for (size_t i = 0; i < cfg->n_keys; i++) {
		size_t l = cfg->keys[i]->key.len;
		if (l != 16 && l != 24 && l != 32)
			FAIL("key %zu: %zu bytes (16, 24 or 32)", i, l);
	}
	vnis = xcalloc(cfg->n_networks + 1, sizeof(*vnis));
	for (size_t i = 0; i < cfg->n_networks; i++) {
		const Swarm__SealerNetwork *n = cfg->networks[i];
		if (!n->vni || n->vni > 0xffffff)
			FAIL("network %zu: vni %u out of range", i, n->vni);
		if (!n->netns[0] || !n->tap[0] || strlen(n->tap) >= IFNAMSIZ)
			FAIL("vni %u: netns and a tap name (< %d bytes) are required", n->vni, IFNAMSIZ);
		if (n->mtu && (n->mtu < 68 || n->mtu > 65535))
			FAIL("vni %u: mtu %u out of range", n->vni, n->mtu);
		vnis[i] = n->vni;
	}
	qsort(vnis, cfg->n_networks, sizeof(*vnis), u32_cmp);
	for (size_t i = 1; i < cfg->n_networks; i++)
		if (vnis[i] == vnis[i - 1])
			FAIL("vni %u given twice", vnis[i]);
	peers = xcalloc(cfg->n_peers + 1, sizeof(*peers));
	addrs = xcalloc(cfg->n_peers + 1, sizeof(*addrs));
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const Swarm__SealerPeer *p = cfg->peers[i];
		struct peer *q = &peers[npeers];
		q->vni = p->vni;
		if (parse_mac(p->mac, q->mac) < 0)
			FAIL("peer %zu: bad mac \"%s\"", i, p->mac);
		if (p->ipv4[0] && parse_ip(p->ipv4, &q->ip) < 0)
			FAIL("peer %zu: bad ipv4 \"%s\"", i, p->ipv4);
		if (parse_ip(p->vtep, &q->vaddr) < 0 || !q->vaddr)
			FAIL("peer %zu: bad vtep \"%s\"", i, p->vtep);
		/* Peers of networks we do not carry, or on this node, need
		 * nothing from us. */
		if (!bsearch(&q->vni, vnis, cfg->n_networks, sizeof(*vnis), u32_cmp) ||
		    q->vaddr == self)
			continue;
		npeers++;
	}
	qsort(peers, npeers, sizeof(*peers), peer_sort_cmp);
	{	/* duplicates (vni, mac): the first wins */
		size_t w = 0;
		for (size_t i = 0; i < npeers; i++)
			if (!w || peer_sort_cmp(&peers[w - 1], &peers[i]) != 0)
				peers[w++] = peers[i];
		npeers = w;
	}
	for (size_t i = 0; i < npeers; i++)
		addrs[i] = peers[i].vaddr;
	qsort(addrs, npeers, sizeof(*addrs), u32_cmp);
	size_t nu = 0;
	for (size_t i = 0; i < npeers; i++)
		if (!nu || addrs[nu - 1] != addrs[i])
			addrs[nu++] = addrs[i];

	/* ---- the socket: the only step that may still fail ---- */
	if (self != s->self || port != s->port || s->udp < 0) {
		udp = udp_open(self, port);
		if (udp < 0) {
			r = udp;
			udp = -1;
			snprintf(err, errlen, "binding %s:%u: %s", cfg->self, port, strerror(-r));
			goto out;
		}
	}

	/* ---- commit ---- */
	bool same_self = self == s->self;
	if (udp >= 0) {
		if (s->udp >= 0) {
			ev_io_stop(s->loop, &s->uio);
			close(s->udp);
		}
		s->udp = udp;
		udp = -1;
		s->seg = underlay_seg(self);
		ev_io_init(&s->uio, udp_cb, s->udp, EV_READ);
		s->uio.data = s;
		ev_io_start(s->loop, &s->uio);
	}
	s->self = self;
	s->port = port;
	s->generation = cfg->generation;
	if (s->no_trains != cfg->no_trains) {
		s->no_trains = cfg->no_trains;
		log_info("sealer, TCP super-frames %s", s->no_trains ? "segmented before sealing (no trains)"
				 : "sealed as trains");
		uint32_t segs = link_segs(s);
		for (size_t i = 0; i < s->nnets; i++) {   /* the kept links; new ones open so */
			const char *what = "";
			int r = s->nets[i]->fd < 0 ? 0 : in_netns(s->nets[i], link_segs_here, &segs, &what);
			if (r < 0)
				log_warn("sealer, vni %u: gso_max_segs: %s", s->nets[i]->vni, strerror(-r));
		}
	}
	OPENSSL_cleanse(s->ring, sizeof(s->ring));
	s->nring = cfg->n_keys;
	for (size_t i = 0; i < s->nring; i++) {
		s->ring[i].id = (uint8_t)(cfg->keys[i]->id & 0xff);
		s->ring[i].len = cfg->keys[i]->key.len;
		memcpy(s->ring[i].key, cfg->keys[i]->key.data, s->ring[i].len);
	}

	/* vteps: kept (with their epochs and replay state) unless self moved */
	vteps = xcalloc(nu + 1, sizeof(*vteps));
	for (size_t j = 0; j < s->nvteps; j++)
		s->vteps[j]->keep = false;
	for (size_t i = 0; i < nu; i++) {
		struct vtep *v = same_self ? vtep_find(s->vteps, s->nvteps, addrs[i]) : NULL;
		if (v) {
			v->keep = true;
		} else {
			v = xcalloc(1, sizeof(*v));
			v->addr = addrs[i];
			seal_rx_init(&v->rx, v->addr, self);
		}
		v->sa.sin_family = AF_INET;
		v->sa.sin_addr.s_addr = htonl(v->addr);
		v->sa.sin_port = htons(port);
		vtep_set_ring(s, v, self);
		vteps[nvteps++] = v;
	}
	for (size_t j = 0; j < s->nvteps; j++)
		if (!s->vteps[j]->keep)
			vtep_free(s->vteps[j]);
	free(s->vteps);
	s->vteps = vteps;
	s->nvteps = nvteps;
	vteps = NULL;
	for (size_t i = 0; i < npeers; i++)
		peers[i].vtep = vtep_find(s->vteps, s->nvteps, peers[i].vaddr);
	free(s->peers);
	s->peers = peers;
	s->npeers = npeers;
	peers = NULL;

	/* networks: a link stays open when vni, namespace, tap and mtu agree */
	nets = xcalloc(cfg->n_networks + 1, sizeof(*nets));
	for (size_t i = 0; i < cfg->n_networks; i++) {
		const Swarm__SealerNetwork *c = cfg->networks[i];
		struct net *n = NULL;
		for (size_t j = 0; j < s->nnets; j++) {
			struct net *o = s->nets[j];
			if (o && o->vni == c->vni && !strcmp(o->netns, c->netns) &&
			    !strcmp(o->tap, c->tap)) {
				n = o;
				s->nets[j] = NULL;
				break;
			}
		}
		if (n && n->mtu != c->mtu) {
			tap_close(n, false);
			n->mtu = c->mtu;
		}
		if (!n) {
			n = xcalloc(1, sizeof(*n));
			n->s = s;
			n->fd = -1;
			n->vni = c->vni;
			n->netns = xstrdup(c->netns);
			snprintf(n->tap, sizeof(n->tap), "%s", c->tap);
			n->mtu = c->mtu;
		}
		nets[nnets++] = n;
	}
	for (size_t j = 0; j < s->nnets; j++) {
		if (s->nets[j])
			log_info("sealer, vni %u: removed, deleting link %s", s->nets[j]->vni,
				 s->nets[j]->tap);
		net_free(s->nets[j], true);
	}
	free(s->nets);
	s->nets = nets;
	s->nnets = nnets;
	nets = NULL;
	for (size_t i = 1; i < s->nnets; i++)   /* insertion sort by vni (few) */
		for (size_t j = i; j > 0 && s->nets[j - 1]->vni > s->nets[j]->vni; j--) {
			struct net *t = s->nets[j];
			s->nets[j] = s->nets[j - 1];
			s->nets[j - 1] = t;
		}
	for (size_t i = 0; i < s->nnets; i++) {
		struct net *n = s->nets[i];
		uint8_t zero[6] = { 0 };
		n->plo = peer_lower(s->peers, s->npeers, n->vni, zero);
		n->phi = n->plo;
		while (n->phi < s->npeers && s->peers[n->phi].vni == n->vni)
			n->phi++;
		free(n->flood);
		n->flood = xcalloc(n->phi - n->plo + 1, sizeof(*n->flood));
		n->nflood = 0;
		for (size_t k = n->plo; k < n->phi; k++)
			n->flood[n->nflood++] = s->peers[k].vtep;
		qsort(n->flood, n->nflood, sizeof(*n->flood), ptr_cmp);
		size_t w = 0;
		for (size_t k = 0; k < n->nflood; k++)
			if (!w || n->flood[w - 1] != n->flood[k])
				n->flood[w++] = n->flood[k];
		n->nflood = w;
		if (n->fd < 0 && tap_open(n) < 0)
			log_warn("sealer, vni %u: tap %s: %s (retrying)", n->vni, n->tap, n->err);
	}
	retry_arm(s);
	log_info("sealer, config %llu: self %s port %u, %zu keys, %zu networks, %zu peers on %zu vteps",
		 (unsigned long long)s->generation, cfg->self, port, s->nring, s->nnets, s->npeers,
		 s->nvteps);
out:
	free(vnis);
	free(addrs);
	free(peers);
	free(vteps);
	free(nets);
	if (udp >= 0)
		close(udp);
	return r;
}

/* ---- status ---- */

static char *ip_str(uint32_t addr)
{
	struct in_addr a = { .s_addr = htonl(addr) };
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	return xstrdup(buf);
}

void sealer_status(const struct sealer *s, Swarm__SealerStatus *st)
{
	const struct counters *c = &s->c;
	st->generation = s->generation;
	st->port = s->port;
	st->tx_frames = c->tx_frames;
	st->tx_bytes = c->tx_bytes;
	st->rx_frames = c->rx_frames;
	st->rx_bytes = c->rx_bytes;
	st->arp_replies = c->arp_replies;
	st->drop_no_peer = c->no_peer;
	st->drop_auth = c->auth;
	st->drop_replay = c->replay;
	st->drop_unknown_vni = c->unknown_vni;
	st->drop_malformed = c->malformed;
	st->drop_unknown_sender = c->unknown_sender;
	st->drop_tx_error = c->tx_error;
	st->drop_no_key = c->no_key;
	st->rekeys = c->rekeys;
	st->trains_tx = c->trains_tx;
	st->trains_rx = c->trains_rx;
	st->coalesced = c->coalesced;
	st->coalesce_max = s->gro_max;
	st->trains_lost = c->trains_lost;
	st->drop_too_big = c->too_big;
	st->key_ids = xcalloc(s->nring + 1, sizeof(*st->key_ids));
	for (size_t i = 0; i < s->nring; i++)
		st->key_ids[st->n_key_ids++] = s->ring[i].id;
	for (size_t i = 0; i < s->nnets; i++) {
		const struct net *n = s->nets[i];
		Swarm__SealerNetworkStatus *ns = xmalloc(sizeof(*ns));
		swarm__sealer_network_status__init(ns);
		ns->vni = n->vni;
		ns->tap = xstrdup(n->tap);
		ns->open = n->fd >= 0;
		ns->error = xstrdup(n->err);
		ns->tx_frames = n->tx_frames;
		ns->rx_frames = n->rx_frames;
		PB_PTRV_ADD(st, networks, ns);
	}
	for (size_t i = 0; i < s->nvteps; i++) {
		const struct vtep *v = s->vteps[i];
		Swarm__SealerVtepStatus *vs = xmalloc(sizeof(*vs));
		swarm__sealer_vtep_status__init(vs);
		vs->addr = ip_str(v->addr);
		vs->tx_epoch = v->tx_ok ? v->tx.epoch : 0;
		vs->tx_sealed = v->tx_ok ? v->tx.sent : 0;
		vs->rx_opened = v->rx.opened;
		vs->rx_rejected = v->rx.rejected;
		vs->rx_replayed = v->rx.replayed;
		vs->rx_epochs = v->rx.epochs;
		PB_PTRV_ADD(st, vteps, vs);
	}
}

void sealer_status_clear(Swarm__SealerStatus *st)
{
	for (size_t i = 0; i < st->n_networks; i++)
		pb_free(st->networks[i]);
	for (size_t i = 0; i < st->n_vteps; i++)
		pb_free(st->vteps[i]);
	free(st->networks);
	free(st->vteps);
	free(st->key_ids);
	if (st->message != protobuf_c_empty_string)
		free(st->message);
	swarm__sealer_status__init(st);
}

/* ---- control socket ---- */

static int ctl_frame(struct conn *c, const uint8_t *payload, size_t len)
{
	struct sealer *s = conn_data(c);
	Swarm__SealerRequest *req = swarm__sealer_request__unpack(NULL, len, payload);
	if (!req) {
		log_warn("sealer, %s: undecodable request", conn_peer_name(c));
		return -1;
	}
	char err[256] = "";
	int r = 0;
	if (req->config) {
		r = sealer_apply(s, req->config, err, sizeof(err));
		if (r < 0)
			log_warn("sealer, config %llu refused: %s",
				 (unsigned long long)req->config->generation, err);
	}
	swarm__sealer_request__free_unpacked(req, NULL);
	Swarm__SealerStatus st = SWARM__SEALER_STATUS__INIT;
	sealer_status(s, &st);
	st.error = r;
	st.message = xstrdup(err);
	conn_send_msg(c, &st.base);
	sealer_status_clear(&st);
	return 0;
}

static const struct conn_ops ctl_ops = { .on_frame = ctl_frame };

static void ctl_accept(struct listener *l, struct conn *c, void *data)
{
	(void)l;
	conn_set_data(c, data);
}

int sealer_listen(struct sealer *s, const char *path)
{
	listener_free(s->lis);
	s->lis = listener_unix(s->loop, path, 1u << 20, &ctl_ops, ctl_accept, s);
	return s->lis ? 0 : -EADDRNOTAVAIL;
}

/* ---- life ---- */

int sealer_new(struct ev_loop *loop, struct sealer **out)
{
	struct sealer *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->udp = -1;
	s->pt = xmalloc(PT_BUF);
	for (size_t i = 0; i < GRO_FRAMES; i++)
		s->rxpt[i] = xmalloc(PT_BUF);
	s->seg = 1472;
	s->txbuf = xmalloc((size_t)SEALER_BATCH * PKT_CAP);
	s->rxbuf = xmalloc((size_t)SEALER_BATCH * PKT_CAP);
	for (unsigned i = 0; i < SEALER_BATCH; i++) {
		s->txm[i].msg_hdr.msg_iov = &s->txv[i];
		s->txm[i].msg_hdr.msg_iovlen = 1;
		s->txm[i].msg_hdr.msg_name = &s->txa[i];
		s->txm[i].msg_hdr.msg_namelen = sizeof(s->txa[i]);
		s->rxv[i].iov_base = s->rxbuf + (size_t)i * PKT_CAP;
		s->rxm[i].msg_hdr.msg_iov = &s->rxv[i];
		s->rxm[i].msg_hdr.msg_iovlen = 1;
		s->rxm[i].msg_hdr.msg_name = &s->rxa[i];
	}
	ev_init(&s->retry, retry_cb);
	s->retry.data = s;
	s->wall = now_wall_ns;
	/* how big a coalesced frame this kernel takes (sealer_gro.h) */
	s->gro_max = sealer_link_big_tcp() ? GRO_MAX_LEN : GRO_MAX_LEGACY;
	log_info("sealer, coalescing received TCP super-frames below %zu bytes%s", s->gro_max,
		 s->gro_max > GRO_MAX_LEGACY ? " (BIG TCP)" : "");
	ev_init(&s->floor_t, floor_cb);
	s->floor_t.repeat = FLOOR_CHECK_S;
	s->floor_t.data = s;
	*out = s;
	return 0;
}

void sealer_free(struct sealer *s)
{
	if (!s)
		return;
	listener_free(s->lis);
	ev_timer_stop(s->loop, &s->retry);
	ev_timer_stop(s->loop, &s->floor_t);
	free(s->floor_path);
	if (s->udp >= 0) {
		ev_io_stop(s->loop, &s->uio);
		close(s->udp);
	}
	for (size_t i = 0; i < s->nnets; i++)
		net_free(s->nets[i], false);
	for (size_t i = 0; i < s->nvteps; i++)
		vtep_free(s->vteps[i]);
	free(s->nets);
	free(s->vteps);
	free(s->peers);
	OPENSSL_cleanse(s->ring, sizeof(s->ring));
	free(s->pt);
	for (size_t i = 0; i < GRO_FRAMES; i++)
		free(s->rxpt[i]);
	free(s->txbuf);
	free(s->rxbuf);
	free(s);
}

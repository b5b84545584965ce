/* Receive coalescing of TCP super-frames (netd/sealer_gro.c): what
 * merges, what does not, the rewritten headers, the undo, and the BIG TCP
 * probe's reply parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "netd/sealer_gro.h"

#define MSS 1370
#define HLEN (14 + 20 + 32)     /* Ethernet, IPv4, TCP with timestamps */
#define FCAP (HLEN + 64 * MSS)

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* A TCPv4 super-frame of segs full segments (plus tail bytes) starting at
 * seq, as a sender's TAP read gives it: partial checksum, DF, timestamps. */
static size_t frame(uint8_t *f, struct virtio_net_hdr *vh, uint32_t seq, size_t segs, size_t tail,
		    uint8_t flags)
{
	size_t pay = segs * MSS + tail, len = HLEN + pay;
	memset(f, 0, HLEN);
	memcpy(f, "\x02\x42\xc6\x12\x28\x06\x02\x42\xc6\x12\x28\x03\x08\x00", 14);
	uint8_t *ip = f + 14, *th = ip + 20;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(len - 14));
	put16(ip + 4, (uint16_t)seq);              /* IP ids differ */
	ip[6] = 0x40;                               /* DF */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\xc6\x12\x28\x03\xc6\x12\x28\x06", 8);
	put16(ip + 10, (uint16_t)~fold((uint32_t)0));
	put16(th, 39664);
	put16(th + 2, 5201);
	put32(th + 4, seq);
	put32(th + 8, 0x1000);
	th[12] = 8 << 4;
	th[13] = flags;
	put16(th + 14, 512);
	memcpy(th + 20, "\x01\x01\x08\x0a\x00\x00\x10\x00\x00\x00\x20\x00", 12);
	for (size_t i = 0; i < pay; i++)
		f[HLEN + i] = (uint8_t)(seq + i);
	memset(vh, 0, sizeof(*vh));
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh->hdr_len = HLEN;
	vh->gso_size = MSS;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	return len;
}

static uint8_t a[FCAP], b[FCAP], c[FCAP];
static struct virtio_net_hdr va, vb, vc;

#define ACK 0x10
#define PSH 0x08
#define FIN 0x01

static void test_merge(void **unused)
{
	(void)unused;
	struct gro g;
	size_t la = frame(a, &va, 1000, 45, 0, ACK | PSH);
	size_t lb = frame(b, &vb, 1000 + 45 * MSS, 45, 0, ACK | PSH);
	size_t lc = frame(c, &vc, 1000 + 90 * MSS, 20, 7, ACK);
	put16(c + 34 + 14, 640);                    /* a newer window */
	uint8_t orig[HLEN];
	memcpy(orig, a, HLEN);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	assert_false(g.closed);                     /* PSH does not close */
	assert_int_equal(g.hlen, HLEN);
	assert_true(gro_append(&g, b, lb, &vb));
	assert_true(gro_append(&g, c, lc, &vc));
	assert_true(g.closed);                      /* a short last segment */
	assert_false(gro_append(&g, a, la, &va));
	assert_int_equal(g.frames, 3);
	assert_int_equal(g.len, la + lb + lc - 2 * HLEN);
	gro_finish(&g);
	uint8_t *ip = a + 14, *th = ip + 20;
	assert_int_equal(get16(ip + 2), 0);         /* over 64 KB: BIG TCP */
	uint32_t s = 0;
	for (int i = 0; i < 20; i += 2)
		s += get16(ip + i);
	assert_int_equal(fold(s), 0xffff);          /* the IP checksum holds */
	assert_int_equal(th[13], ACK | PSH);
	assert_int_equal(get16(th + 14), 640);      /* the last window */
	uint32_t tl = (uint32_t)(g.len - 34);
	uint32_t ps = 0;
	for (int i = 12; i < 20; i += 2)
		ps += get16(ip + i);
	ps += 6 + (tl >> 16) + (tl & 0xffff);
	assert_int_equal(get16(th + 16), fold(ps)); /* partial: the pseudo-header sum */
	gro_undo(&g);                               /* the head as received */
	assert_memory_equal(a, orig, HLEN);
}

static void test_legacy_length(void **unused)
{
	(void)unused;
	struct gro g;
	size_t la = frame(a, &va, 5, 10, 0, ACK);
	size_t lb = frame(b, &vb, 5 + 10 * MSS, 10, 0, ACK | FIN);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEGACY));
	assert_true(gro_append(&g, b, lb, &vb));
	assert_true(g.closed);                      /* FIN */
	gro_finish(&g);
	assert_int_equal(get16(a + 16), la + lb - HLEN - 14);
	assert_int_equal(a[14 + 20 + 13], ACK | FIN);
	/* the classic limit holds */
	la = frame(a, &va, 5, 45, 0, ACK);
	lb = frame(b, &vb, 5 + 45 * MSS, 45, 0, ACK);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEGACY));
	assert_false(gro_append(&g, b, lb, &vb));
	/* a merged frame stays below the limit (a link segments from its
	 * gso_ipv4_max_size on) */
	assert_true(gro_start(&g, a, la, &va, 2 * la - HLEN));
	assert_false(gro_append(&g, b, lb, &vb));
	assert_true(gro_start(&g, a, la, &va, 2 * la - HLEN + 1));
	assert_true(gro_append(&g, b, lb, &vb));
	assert_false(gro_start(&g, a, la, &va, la));
}

/* b, one field changed by edit, does not continue a. */
static void refused(size_t off, uint8_t val, const char *what)
{
	struct gro g;
	size_t la = frame(a, &va, 7, 4, 0, ACK);
	size_t lb = frame(b, &vb, 7 + 4 * MSS, 4, 0, ACK);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	assert_true(gro_append(&g, b, lb, &vb));
	gro_start(&g, a, la, &va, GRO_MAX_LEN);
	b[off] = val;
	if (gro_append(&g, b, lb, &vb))
		fail_msg("merged with a different %s", what);
}

static void test_refusals(void **unused)
{
	(void)unused;
	refused(0, 0x03, "destination MAC");
	refused(14 + 1, 0x04, "TOS");
	refused(14 + 8, 63, "TTL");
	refused(14 + 15, 9, "source address");
	refused(14 + 19, 9, "destination address");
	refused(34 + 1, 1, "source port");
	refused(34 + 3, 1, "destination port");
	refused(34 + 7, 0, "sequence number");
	refused(34 + 11, 1, "acknowledgement");
	refused(34 + 13, ACK | 0x80, "CWR flag");
	refused(34 + 13, ACK | 0x02, "SYN flag");
	refused(34 + 29, 0x99, "timestamp");

	struct gro g;
	size_t la = frame(a, &va, 7, 4, 0, ACK);
	size_t lb = frame(b, &vb, 7 + 4 * MSS, 4, 0, ACK);
	vb.gso_size = MSS - 2;
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	assert_false(gro_append(&g, b, lb, &vb));   /* another segment size */
	/* a head that ends a merge */
	la = frame(a, &va, 7, 4, 3, ACK);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	assert_true(g.closed);                      /* short segment */
	la = frame(a, &va, 7, 4, 0, ACK | 0x80);
	assert_true(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	assert_true(g.closed);                      /* CWR */
	/* not coalesced at all */
	la = frame(a, &va, 7, 4, 0, ACK);
	struct virtio_net_hdr v = va;
	v.flags = 0;
	assert_false(gro_start(&g, a, la, &v, GRO_MAX_LEN));   /* checksum done */
	v = va;
	v.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	assert_false(gro_start(&g, a, la, &v, GRO_MAX_LEN));
	v = va;
	v.csum_start = 14;
	assert_false(gro_start(&g, a, la, &v, GRO_MAX_LEN));
	a[14] = 0x46;                               /* IP options, as GRO refuses */
	assert_false(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	frame(a, &va, 7, 4, 0, ACK);
	a[14 + 6] = 0;                              /* no DF */
	assert_false(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	frame(a, &va, 7, 4, 0, ACK);
	a[14 + 9] = 17;                             /* UDP */
	assert_false(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	frame(a, &va, 7, 4, 0, ACK);
	assert_false(gro_start(&g, a, la - 1, &va, GRO_MAX_LEN));   /* length mismatch */
	a[12] = 0x86;                               /* IPv6 ethertype */
	assert_false(gro_start(&g, a, la, &va, GRO_MAX_LEN));
	frame(a, &va, 7, 4, 0, ACK);
	assert_false(gro_start(&g, a, HLEN, &va, GRO_MAX_LEN));     /* no payload */
	memset(&g, 0, sizeof(g));
	assert_false(gro_append(&g, a, la, &va));   /* nothing held */
}

/* An RTM_NEWLINK reply with the given attribute types (u32 each). */
/* Checks one piece of a split: its IP checksum holds, its lengths and
 * pseudo-header sum are for plen payload bytes at seq. */
static void piece_ok(const uint8_t *hdr, size_t plen, uint32_t seq)
{
	const uint8_t *ip = hdr + 14, *th = ip + 20;
	uint32_t s = 0;
	for (int i = 0; i < 20; i += 2)
		s += get16(ip + i);
	assert_int_equal(fold(s), 0xffff);
	assert_int_equal(get16(ip + 2), HLEN - 14 + plen);
	assert_int_equal((uint32_t)(th[4] << 24 | th[5] << 16 | th[6] << 8 | th[7]), seq);
	uint32_t tl = (uint32_t)(HLEN - 34 + plen), ps = 6 + (tl >> 16) + (tl & 0xffff);
	for (int i = 12; i < 20; i += 2)
		ps += get16(ip + i);
	assert_int_equal(get16(th + 16), fold(ps));
}

/* A BIG TCP frame (60 segments and 100 bytes, IP total length 0) cut
 * below 64 KB: two pieces of whole segments with their own headers; put
 * back together by coalescing, the original headers. */
static void test_split(void **unused)
{
	(void)unused;
	static uint8_t p1[FCAP], p2[FCAP];
	struct virtio_net_hdr v1, v2;
	size_t la = frame(a, &va, 1000, 60, 100, ACK | PSH | FIN);
	put16(a + 14 + 2, 0);                       /* over 64 KB */
	uint8_t orig[HLEN];
	memcpy(orig, a, HLEN);
	struct gro_split sp;
	assert_true(gro_split_start(&sp, a, la, &va, GRO_MAX_LEGACY));
	const uint8_t *pay;
	size_t plen;
	assert_true(gro_split_next(&sp, p1, &v1, &pay, &plen));
	assert_int_equal(plen, 47 * MSS);           /* whole segments below 64 KB */
	assert_ptr_equal(pay, a + HLEN);
	piece_ok(p1, plen, 1000);
	assert_int_equal(p1[34 + 13], ACK);         /* FIN and PSH on the last piece only */
	assert_int_equal(v1.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	memcpy(p1 + HLEN, pay, plen);
	size_t l1 = HLEN + plen;
	assert_true(gro_split_next(&sp, p2, &v2, &pay, &plen));
	assert_int_equal(plen, 13 * MSS + 100);
	assert_ptr_equal(pay, a + HLEN + 47 * MSS);
	piece_ok(p2, plen, 1000 + 47 * MSS);
	assert_int_equal(p2[34 + 13], ACK | PSH | FIN);
	assert_int_equal(get16(p2 + 14 + 4), (uint16_t)(1000 + 47));   /* the 48th segment's IP id */
	memcpy(p2 + HLEN, pay, plen);
	size_t l2 = HLEN + plen;
	assert_false(gro_split_next(&sp, p2, &v2, &pay, &plen));
	assert_memory_equal(a, orig, HLEN);         /* the frame itself untouched */

	struct gro g;
	assert_true(gro_start(&g, p1, l1, &v1, GRO_MAX_LEN));
	assert_true(gro_append(&g, p2, l2, &v2));
	gro_finish(&g);
	/* the same headers, but the checksums, which frame() leaves unset */
	put16(p1 + 14 + 10, 0);
	put16(orig + 14 + 10, 0);
	put16(p1 + 34 + 16, 0);
	put16(orig + 34 + 16, 0);
	assert_memory_equal(p1, orig, HLEN);

	/* CWR on the first piece only; a last piece of one segment is no
	 * super-frame */
	la = frame(a, &va, 5000, 48, 0, ACK | 0x80);
	put16(a + 14 + 2, 0);                       /* over 64 KB */
	assert_true(gro_split_start(&sp, a, la, &va, GRO_MAX_LEGACY));
	assert_true(gro_split_next(&sp, p1, &v1, &pay, &plen));
	assert_int_equal(p1[34 + 13], ACK | 0x80);
	assert_true(gro_split_next(&sp, p2, &v2, &pay, &plen));
	assert_int_equal(plen, MSS);
	assert_int_equal(p2[34 + 13], ACK);
	assert_int_equal(v2.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(v2.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);

	/* not cut: no TCP super-frame, no room, a zero length under 64 KB */
	la = frame(a, &va, 1000, 10, 0, ACK);
	va.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	assert_false(gro_split_start(&sp, a, la, &va, GRO_MAX_LEGACY));
	la = frame(a, &va, 1000, 10, 0, ACK);
	assert_false(gro_split_start(&sp, a, la, &va, HLEN + MSS));
	assert_false(gro_split_start(&sp, a, la, &va, GRO_MAX_LEN));
	put16(a + 14 + 2, 0);
	assert_false(gro_split_start(&sp, a, la, &va, GRO_MAX_LEGACY));
}

static size_t reply(uint8_t *buf, const int *types, size_t n)
{
	memset(buf, 0, 512);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	h->nlmsg_type = RTM_NEWLINK;
	size_t off = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct ifinfomsg)));
	for (size_t i = 0; i < n; i++) {
		struct rtattr *a = (struct rtattr *)(buf + off);
		a->rta_type = (unsigned short)types[i];
		a->rta_len = RTA_LENGTH(4);
		off += RTA_ALIGN(a->rta_len);
	}
	h->nlmsg_len = (uint32_t)off;
	return off;
}

static void test_big_tcp_reply(void **unused)
{
	(void)unused;
	uint8_t buf[512];
	int with[] = { IFLA_MTU, IFLA_GSO_MAX_SIZE, GRO_IFLA_GSO_IPV4_MAX_SIZE, IFLA_TXQLEN };
	int without[] = { IFLA_MTU, IFLA_GSO_MAX_SIZE, IFLA_TSO_MAX_SEGS };
	size_t n = reply(buf, with, 4);
	assert_true(gro_big_tcp_reply(buf, n));
	assert_false(gro_big_tcp_reply(buf, n - 20));       /* cut: nlmsg_len runs past */
	assert_false(gro_big_tcp_reply(buf, 8));
	((struct nlmsghdr *)buf)->nlmsg_type = NLMSG_ERROR;
	assert_false(gro_big_tcp_reply(buf, n));
	n = reply(buf, without, 3);
	assert_false(gro_big_tcp_reply(buf, n));
	n = reply(buf, with, 4);
	struct rtattr *first = (struct rtattr *)(buf + NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct ifinfomsg))));
	first->rta_len = 2;                                  /* malformed */
	assert_false(gro_big_tcp_reply(buf, n));
	first->rta_len = 400;                                /* runs past the message */
	assert_false(gro_big_tcp_reply(buf, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_legacy_length),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_big_tcp_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

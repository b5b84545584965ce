/* The sealer's plaintext formats (netd/sealer_wire.c): frames with and
 * without vnet headers, the vnet header checks, train chunks and their
 * reassembly (in order, reordered, duplicated, abandoned, contradicting),
 * and finishing a partial checksum. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "netd/sealer_wire.h"

static size_t frame_pt(uint8_t *pt, uint32_t word, const struct virtio_net_hdr *h, size_t flen)
{
	pt[0] = (uint8_t)(word >> 24);
	pt[1] = (uint8_t)(word >> 16);
	pt[2] = (uint8_t)(word >> 8);
	pt[3] = (uint8_t)word;
	size_t off = SW_VNI_LEN;
	if (h) {
		memcpy(pt + off, h, sizeof(*h));
		off += SW_VNET_LEN;
	}
	for (size_t i = 0; i < flen; i++)
		pt[off + i] = (uint8_t)i;
	return off + flen;
}

static void test_frame_parse(void **unused)
{
	(void)unused;
	uint8_t pt[256];
	struct sw_frame f;
	size_t n = frame_pt(pt, 4097, NULL, 60);
	assert_int_equal(sw_frame_parse(pt, n, &f), 0);
	assert_int_equal(f.vni, 4097);
	assert_null(f.vnet);
	assert_ptr_equal(f.frame, pt + 4);
	assert_int_equal(f.frame_len, 60);

	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
				    .gso_size = 1382, .csum_start = 34, .csum_offset = 16 };
	n = frame_pt(pt, 4097 | SW_F_VNET, &h, 200);
	assert_int_equal(sw_frame_parse(pt, n, &f), 0);
	assert_non_null(f.vnet);
	assert_int_equal(f.frame_len, 200);

	/* too short for the header, a runt frame, unknown flags, a chunk */
	assert_int_equal(sw_frame_parse(pt, 3, &f), -EBADMSG);
	n = frame_pt(pt, 4097, NULL, 13);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
	n = frame_pt(pt, 4097 | 0x20000000u, NULL, 60);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
	n = frame_pt(pt, 4097 | SW_F_TRAIN, NULL, 60);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
	/* a vnet header whose checksum field lies past the frame */
	h.csum_start = 190;
	n = frame_pt(pt, 4097 | SW_F_VNET, &h, 200);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
}

static void test_vnet_ok(void **unused)
{
	(void)unused;
	struct virtio_net_hdr h = { 0 };
	assert_true(sw_vnet_ok(&h, 60));
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;         /* UFO: not ours */
	assert_false(sw_vnet_ok(&h, 60));
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN;
	h.gso_size = 1362;
	h.hdr_len = 74;
	assert_true(sw_vnet_ok(&h, 3000));
	h.gso_size = 0;                              /* GSO without a size */
	assert_false(sw_vnet_ok(&h, 3000));
	h = (struct virtio_net_hdr){ .gso_type = VIRTIO_NET_HDR_GSO_ECN };  /* ECN alone */
	assert_false(sw_vnet_ok(&h, 60));
	h = (struct virtio_net_hdr){ .flags = 0x80 };                       /* unknown flag */
	assert_false(sw_vnet_ok(&h, 60));
}

/* Splits p[len] into chunks of unit bytes of train id (plaintexts in
 * out[i], lengths in lens[i]); returns the count. */
static unsigned split(const uint8_t *p, size_t len, size_t unit, uint32_t id,
		      uint8_t out[][2048], size_t *lens)
{
	unsigned cnt = (unsigned)((len + unit - 1) / unit);
	for (unsigned k = 0; k < cnt; k++) {
		size_t dl = k + 1 < cnt ? unit : len - k * unit;
		sw_chunk_header(out[k], 4097, id, k, cnt, unit);
		memcpy(out[k] + SW_VNI_LEN + SW_TRAIN_HDR, p + k * unit, dl);
		lens[k] = SW_VNI_LEN + SW_TRAIN_HDR + dl;
	}
	return cnt;
}

static uint8_t chunks[8][2048], rbuf[8192], payload[4000];
static size_t lens[8];

static void test_train_reassembly(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	unsigned cnt = split(payload, 2500, 1000, 1, chunks, lens);
	assert_int_equal(cnt, 3);
	struct sw_reasm r = { 0 };
	struct sw_chunk c;
	size_t total = 0;
	uint64_t lost = 0;
	/* reordered, one duplicate: whole once, byte for byte */
	unsigned order[] = { 2, 0, 0, 1 };
	int got[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sw_chunk_parse(chunks[order[i]], lens[order[i]], sizeof(rbuf), &c), 0);
		got[i] = sw_reasm_add(&r, rbuf, sizeof(rbuf), &c, &total, &lost);
	}
	assert_int_equal(got[0], 0);
	assert_int_equal(got[2], 0);   /* the duplicate */
	assert_int_equal(got[3], 1);
	assert_int_equal(total, 2500);
	assert_memory_equal(rbuf, payload, 2500);
	assert_int_equal(lost, 0);

	/* a train missing a chunk is abandoned when the next one starts */
	split(payload, 2500, 1000, 2, chunks, lens);
	assert_int_equal(sw_chunk_parse(chunks[0], lens[0], sizeof(rbuf), &c), 0);
	assert_int_equal(sw_reasm_add(&r, rbuf, sizeof(rbuf), &c, &total, &lost), 0);
	cnt = split(payload + 100, 1200, 1000, 3, chunks, lens);
	for (unsigned k = 0; k < cnt; k++) {
		assert_int_equal(sw_chunk_parse(chunks[k], lens[k], sizeof(rbuf), &c), 0);
		int rc = sw_reasm_add(&r, rbuf, sizeof(rbuf), &c, &total, &lost);
		assert_int_equal(rc, k + 1 == cnt ? 1 : 0);
	}
	assert_int_equal(lost, 1);
	assert_int_equal(total, 1200);
	assert_memory_equal(rbuf, payload + 100, 1200);

	/* a chunk that contradicts its train's count is refused */
	split(payload, 2500, 1000, 4, chunks, lens);
	assert_int_equal(sw_chunk_parse(chunks[0], lens[0], sizeof(rbuf), &c), 0);
	assert_int_equal(sw_reasm_add(&r, rbuf, sizeof(rbuf), &c, &total, &lost), 0);
	chunks[1][9] = 4;   /* count 4 instead of 3 */
	assert_int_equal(sw_chunk_parse(chunks[1], lens[1], sizeof(rbuf), &c), 0);
	assert_int_equal(sw_reasm_add(&r, rbuf, sizeof(rbuf), &c, &total, &lost), -EBADMSG);
}

static void test_chunk_parse_bad(void **unused)
{
	(void)unused;
	struct sw_chunk c;
	split(payload, 2500, 1000, 5, chunks, lens);
	assert_int_equal(sw_chunk_parse(chunks[0], lens[0], 8192, &c), 0);
	assert_int_equal(c.id, 5);
	assert_int_equal(c.unit, 1000);
	/* a middle chunk of the wrong size, a last one too long, index past
	 * the count, a train bigger than the buffer, no header, a frame */
	assert_int_equal(sw_chunk_parse(chunks[0], lens[0] - 1, 8192, &c), -EBADMSG);
	uint8_t last[2048];
	memcpy(last, chunks[2], lens[2]);
	last[10] = 0x01;
	last[11] = 0xf4;   /* unit 500: the last chunk's 500 bytes fit */
	assert_int_equal(sw_chunk_parse(last, lens[2], 8192, &c), 0);
	last[11] = 0xf3;   /* unit 499 < 500 bytes of data */
	assert_int_equal(sw_chunk_parse(last, lens[2], 8192, &c), -EBADMSG);
	memcpy(last, chunks[2], lens[2]);
	last[8] = 3;
	assert_int_equal(sw_chunk_parse(last, lens[2], 8192, &c), -EBADMSG);
	assert_int_equal(sw_chunk_parse(chunks[0], lens[0], 2999, &c), -EBADMSG);
	assert_int_equal(sw_chunk_parse(chunks[0], SW_VNI_LEN + SW_TRAIN_HDR, 8192, &c), -EBADMSG);
	uint8_t pt[128];
	size_t n = frame_pt(pt, 4097, NULL, 60);
	assert_int_equal(sw_chunk_parse(pt, n, 8192, &c), -EBADMSG);
}

static void test_csum_complete(void **unused)
{
	(void)unused;
	/* a UDP datagram 192.0.2.1:1000 -> 192.0.2.2:2000, payload "hi",
	 * whose checksum field holds the pseudo-header sum (as the kernel
	 * leaves it with NEEDS_CSUM); the finished checksum must make the
	 * whole (pseudo header included) sum to 0xffff */
	uint8_t u[10] = { 0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0a, 0, 0, 'h', 'i' };
	uint32_t pseudo = 0xc000 + 0x0201 + 0xc000 + 0x0202 + 17 + 10;
	while (pseudo >> 16)
		pseudo = (pseudo & 0xffff) + (pseudo >> 16);
	u[6] = (uint8_t)(pseudo >> 8);
	u[7] = (uint8_t)pseudo;
	assert_true(sw_csum_complete(u, sizeof(u), 0, 6));
	uint32_t sum = 0xc000 + 0x0201 + 0xc000 + 0x0202 + 17 + 10;
	for (size_t i = 0; i < sizeof(u); i += 2)
		sum += (uint32_t)u[i] << 8 | u[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff);
	/* offsets past the frame */
	assert_false(sw_csum_complete(u, sizeof(u), 9, 0));
	assert_false(sw_csum_complete(u, sizeof(u), 10, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_parse),
		cmocka_unit_test(test_vnet_ok),
		cmocka_unit_test(test_train_reassembly),
		cmocka_unit_test(test_chunk_parse_bad),
		cmocka_unit_test(test_csum_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

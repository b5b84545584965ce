/* The sealer's plaintext formats (netd/sealer_wire.c): frames with and
 * without vnet headers, the vnet header checks, and finishing a partial
 * checksum. */
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

	/* too short for the header, a runt frame, unknown flag bits */
	assert_int_equal(sw_frame_parse(pt, 3, &f), -EBADMSG);
	n = frame_pt(pt, 4097, NULL, 13);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
	n = frame_pt(pt, 4097 | 0x20000000u, NULL, 60);
	assert_int_equal(sw_frame_parse(pt, n, &f), -EBADMSG);
	n = frame_pt(pt, 4097 | 0x40000000u, NULL, 60);
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
		cmocka_unit_test(test_csum_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

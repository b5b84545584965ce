/* The sealer's plaintext formats (sealer.h "Wire format"), as pure
 * functions: the VNI word, vnet headers, and finishing a partial
 * checksum. No I/O, no allocation;
 * fuzzed by test/fuzz/fuzz_sealer.c. */
#ifndef SWARM_SEALER_WIRE_H
#define SWARM_SEALER_WIRE_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_VNI_LEN 4
#define SW_VNET_LEN ((size_t)sizeof(struct virtio_net_hdr))  /* 10 */
#define SW_ETH_HLEN 14
#define SW_F_VNET 0x80000000u     /* VNI word: a vnet header follows */

/* Big-endian words of the formats (the VNI word) and of the frames'
 * headers. */
static inline uint16_t sw_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void sw_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t sw_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void sw_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An opened plaintext that goes into a TAP: VNI word [+ vnet header] +
 * Ethernet frame. */
struct sw_frame {
	uint32_t vni;
	const struct virtio_net_hdr *vnet;   /* NULL: none (a plain frame) */
	const uint8_t *frame;
	size_t frame_len;
};

/* Parses pt[len] as a frame plaintext: 0, or -EBADMSG when it is too
 * short, has unknown flag bits, or its
 * vnet header fails sw_vnet_ok. */
int sw_frame_parse(const uint8_t *pt, size_t len, struct sw_frame *out);

/* Whether a peer's vnet header may go into our TAP before a frame of
 * flen bytes: a TCP super-frame (or no GSO) whose offsets fit. */
bool sw_vnet_ok(const struct virtio_net_hdr *h, size_t flen);

/* The Internet checksum's one's complement sum: p[n] (an odd last byte
 * padded with zero) added to sum, unfolded; sw_fold folds it to 16 bits. */
uint32_t sw_sum16(uint32_t sum, const uint8_t *p, size_t n);
uint16_t sw_fold(uint32_t sum);

/* Finishes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM: the field
 * holds the pseudo-header sum) over f[start..len) into f[start + off]
 * (0 is sent as 0xffff). false when the offsets do not fit. */
bool sw_csum_complete(uint8_t *f, size_t len, size_t start, size_t off);

#endif

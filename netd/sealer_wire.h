/* The sealer's plaintext formats (sealer.h "Wire format"), as pure
 * functions: the VNI word, vnet headers, train chunks and their
 * reassembly, and finishing a partial checksum. No I/O, no allocation;
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
#define SW_F_TRAIN 0x40000000u    /* VNI word: a train chunk follows */
#define SW_TRAIN_HDR 8            /* train id 4, index 1, count 1, chunk size 2 */
#define SW_TRAIN_MAX 255          /* chunks per train */

/* Big-endian 32-bit words of the formats (the VNI word, train ids). */
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
 * short, has unknown flag bits (a train chunk is not a frame), or its
 * vnet header fails sw_vnet_ok. */
int sw_frame_parse(const uint8_t *pt, size_t len, struct sw_frame *out);

/* Whether a peer's vnet header may go into our TAP before a frame of
 * flen bytes: a TCP super-frame (or no GSO) whose offsets fit. */
bool sw_vnet_ok(const struct virtio_net_hdr *h, size_t flen);

/* One chunk of a train, as opened. */
struct sw_chunk {
	uint32_t id;
	unsigned idx, cnt;
	size_t unit;               /* bytes of every chunk but the last */
	const uint8_t *data;
	size_t len;
};

/* Writes chunk idx of cnt (of unit bytes each but the last) of train id
 * into out: VNI word (vni | SW_F_TRAIN) and the header, SW_VNI_LEN +
 * SW_TRAIN_HDR bytes; the chunk's data follows it in the caller's
 * plaintext. */
void sw_chunk_header(uint8_t *out, uint32_t vni, uint32_t id, unsigned idx, unsigned cnt,
		     size_t unit);

/* Parses pt[len] as a train chunk plaintext: 0, or -EBADMSG when the
 * flags are not SW_F_TRAIN alone or the header does not hold together
 * (count 0 or above SW_TRAIN_MAX, index past it, a chunk that is not
 * unit bytes but the last, the last empty or longer, unit < 64, or
 * cnt * unit above max). */
int sw_chunk_parse(const uint8_t *pt, size_t len, size_t max, struct sw_chunk *out);

/* Reassembly of one sender's trains into buf[cap]. */
struct sw_reasm {
	bool active;
	uint32_t id;
	unsigned cnt;
	size_t unit, last_len;
	unsigned ngot;
	uint8_t got[32];           /* bitmap of indexes */
};

/* Adds chunk c (parsed against cap): 1 with *total set when its train is
 * whole in buf, 0 while chunks are missing (or c was a duplicate),
 * -EBADMSG when c contradicts its train's count or unit (dropped). A
 * chunk of another train abandons an unfinished one and counts it in
 * *lost. */
int sw_reasm_add(struct sw_reasm *r, uint8_t *buf, size_t cap, const struct sw_chunk *c,
		 size_t *total, uint64_t *lost);

/* Finishes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM: the field
 * holds the pseudo-header sum) over f[start..len) into f[start + off]
 * (0 is sent as 0xffff). false when the offsets do not fit. */
bool sw_csum_complete(uint8_t *f, size_t len, size_t start, size_t off);

#endif

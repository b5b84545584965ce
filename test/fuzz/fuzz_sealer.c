/* Fuzz target for the sealer's opened plaintexts (sealer_wire.c): the
 * input is a sequence of plaintexts, each prefixed by a 2-byte big-endian
 * length (a short tail is one last plaintext), as a peer holding the key
 * could send them. Each goes through what swarm-sealer does with it: a
 * frame is parsed (and its vnet header checked), a train chunk is parsed
 * and added to one reassembly buffer, and a train found whole is parsed
 * as a frame. It checks the contracts (abort on a broken one):
 * - a parsed frame lies inside its plaintext, its VNI has 24 bits, and a
 *   vnet header's checksum offsets fit the frame;
 * - a parsed chunk lies inside its plaintext and inside the buffer once
 *   placed; a whole train's length is at most the buffer's;
 * - sw_csum_complete never writes outside the frame.
 * Built for libFuzzer with -fsanitize=fuzzer, or linked with replay.c to
 * replay corpus/sealer in `make check`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sealer_wire.h"

#define FUZZ_CAP 4096   /* a small reassembly buffer: limits are reached */

static uint8_t buf[FUZZ_CAP];

static void check_frame(const uint8_t *pt, size_t len)
{
	struct sw_frame f;
	if (sw_frame_parse(pt, len, &f) < 0)
		return;
	if (f.frame < pt || f.frame + f.frame_len != pt + len || f.vni > 0xffffffu ||
	    f.frame_len < SW_ETH_HLEN)
		abort();
	if (f.vnet) {
		struct virtio_net_hdr h;
		memcpy(&h, f.vnet, sizeof(h));
		if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    (size_t)h.csum_start + h.csum_offset + 2 > f.frame_len)
			abort();
		uint8_t *copy = malloc(f.frame_len + 1);
		memcpy(copy, f.frame, f.frame_len);
		if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    !sw_csum_complete(copy, f.frame_len, h.csum_start, h.csum_offset))
			abort();
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_reasm r;
	uint64_t lost = 0;
	memset(&r, 0, sizeof(r));
	while (size) {
		size_t len = size;
		if (size >= 2) {
			len = (size_t)data[0] << 8 | data[1];
			data += 2;
			size -= 2;
			if (len > size)
				len = size;
		}
		const uint8_t *pt = data;
		data += len;
		size -= len;
		struct sw_chunk c;
		if (sw_chunk_parse(pt, len, FUZZ_CAP, &c) == 0) {
			if (c.data < pt || c.data + c.len != pt + len || c.idx >= c.cnt ||
			    c.cnt * c.unit > FUZZ_CAP || c.idx * c.unit + c.len > FUZZ_CAP)
				abort();
			size_t total = 0;
			if (sw_reasm_add(&r, buf, FUZZ_CAP, &c, &total, &lost) == 1) {
				if (total > FUZZ_CAP)
					abort();
				check_frame(buf, total);
			}
		} else {
			check_frame(pt, len);
		}
	}
	return 0;
}

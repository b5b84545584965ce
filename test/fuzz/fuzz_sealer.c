/* Fuzz target for what swarm-sealer does with bytes a peer sends: the
 * input is a sequence of records, each prefixed by a 2-byte big-endian
 * length (a short tail is one last record). A record whose header says
 * "train" (byte 3 >= 2) is a datagram gathered with seal_train_add into
 * one small buffer, as from one sender; any other record is an opened
 * plaintext (as a peer holding the key could send), parsed as a frame
 * (sealer_wire.c). It checks the contracts (abort on a broken one):
 * - a gathered train lies inside the buffer, starts with its canonical
 *   header (index 0, its count) and holds a byte per datagram at least;
 * - a parsed frame lies inside its plaintext, its VNI has 24 bits, and a
 *   vnet header's checksum offsets fit the frame;
 * - sw_csum_complete never writes outside the frame.
 * Parsed frames with vnet headers also go through receive coalescing
 * (sealer_gro.c) as consecutive frames would: a merge never grows past
 * its limit, gro_finish rewrites headers only and gro_undo restores the
 * head exactly. They are also cut up as for a link that refuses them
 * whole (gro_split): the pieces' payloads tile the frame's exactly, each
 * piece stays below its limit, the frame is left as it was. Every record
 * is also read as a BIG TCP probe reply.
 * Built for libFuzzer with -fsanitize=fuzzer, or linked with replay.c to
 * replay corpus/sealer in `make check`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "sealer_gro.h"
#include "sealer_wire.h"

#define FUZZ_CAP 4096   /* a small train buffer: limits are reached */

static uint8_t buf[FUZZ_CAP];

#define FUZZ_GRO_MAX 6000   /* small: the limit is reached */
#define FUZZ_GRO_FRAMES 4
static uint8_t head[1 << 16], orig[1 << 16];
static size_t head_len, nheld;
static struct gro g;

static void gro_done(void)
{
	if (!nheld)
		return;
	nheld = 0;
	memcpy(orig, head, head_len);
	gro_finish(&g);
	if (memcmp(orig + g.hlen, head + g.hlen, head_len - g.hlen) != 0)
		abort();
	gro_undo(&g);
	if (memcmp(orig, head, head_len) != 0)
		abort();
}

#define FUZZ_SPLIT_MAX 3000

static void split_check(const struct sw_frame *f, const struct virtio_net_hdr *h)
{
	struct gro_split sp;
	if (!gro_split_start(&sp, f->frame, f->frame_len, h, FUZZ_SPLIT_MAX))
		return;
	static uint8_t hdr[GRO_HDR_MAX];
	struct virtio_net_hdr pv;
	const uint8_t *pay;
	size_t plen, at = sp.hlen;
	if (sp.hlen > sizeof(hdr) || sp.hlen >= f->frame_len)
		abort();
	while (gro_split_next(&sp, hdr, &pv, &pay, &plen)) {
		if (pay != f->frame + at || !plen || sp.hlen + plen >= FUZZ_SPLIT_MAX ||
		    at + plen > f->frame_len)
			abort();
		at += plen;
	}
	if (at != f->frame_len)
		abort();
}

static void gro_feed(const struct sw_frame *f)
{
	struct virtio_net_hdr h;
	memcpy(&h, f->vnet, sizeof(h));
	split_check(f, &h);
	if (nheld && nheld < FUZZ_GRO_FRAMES && gro_append(&g, f->frame, f->frame_len, &h)) {
		if (g.len > g.max || g.frames != ++nheld)
			abort();
		return;
	}
	gro_done();
	memcpy(head, f->frame, f->frame_len);
	head_len = f->frame_len;
	if (gro_start(&g, head, head_len, &h, FUZZ_GRO_MAX)) {
		if (g.hlen >= head_len || g.len != head_len || g.max != FUZZ_GRO_MAX)
			abort();
		nheld = 1;
	}
}

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
		gro_feed(&f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_train t;
	uint64_t lost = 0;
	memset(&t, 0, sizeof(t));
	while (size) {
		size_t len = size;
		if (size >= 2) {
			len = (size_t)data[0] << 8 | data[1];
			data += 2;
			size -= 2;
			if (len > size)
				len = size;
		}
		const uint8_t *rec = data;
		data += len;
		size -= len;
		(void)gro_big_tcp_reply(rec, len);
		if (len < 4 || rec[3] < 2) {
			check_frame(rec, len);
			continue;
		}
		size_t total = 0;
		if (seal_train_add(&t, buf, FUZZ_CAP, rec, len, &total, &lost) == 1) {
			/* its canonical header: the completing datagram's but index 0 */
			if (total > FUZZ_CAP || total < SEAL_HDR_LEN + (size_t)rec[3] || buf[2] != 0 ||
			    memcmp(buf, rec, 2) != 0 || memcmp(buf + 3, rec + 3, SEAL_HDR_LEN - 3) != 0)
				abort();
		}
	}
	gro_done();
	return 0;
}

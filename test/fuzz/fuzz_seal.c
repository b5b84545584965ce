/* Fuzz target for sealed data-path packets (seal.c): the input is one UDP
 * payload from peer FUZZ_SEAL_SRC to us (FUZZ_SEAL_DST), opened with a
 * fixed ring (ids 7 and 8) by a receiver that has already accepted one
 * frame (prime[]: ring key 7, epoch 0x01020304, counter 0x1000), so
 * inputs reach the replay window and the new-epoch path as well as the
 * parser. Whatever the bytes, it must return cleanly, read only inside
 * the input, and keep seal_rx_open's promises, which it checks (abort on
 * a broken one):
 * - the result is the frame length (size - SEAL_OVERHEAD) or one of
 *   -EBADMSG, -EKEYREJECTED, -EALREADY (or -EMSGSIZE for a train longer
 *   than the output buffer);
 * - a rejected packet changes no epoch, window or high-water mark;
 * - an accepted packet is refused the second time (-EALREADY), a rejected
 *   one is refused again the same way;
 * - after any accepted packet, the primer is still a replay.
 * The same bytes are also read as a counter floor file (seal_floor_parse):
 * 0 with a value, or -EINVAL.
 * Built for libFuzzer with -fsanitize=fuzzer, or linked with replay.c to
 * replay corpus/seal in `make check`. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

#define FUZZ_SEAL_SRC 0xC0000201u /* 192.0.2.1 */
#define FUZZ_SEAL_DST 0xC0000202u /* 192.0.2.2 */

static const struct seal_key ring[2] = {
	{ .id = 7, .key = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, .len = 16 },
	{ .id = 8,
	  .key = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
		   0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
		   0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf },
	  .len = 32 },
};

/* "hello, overlay!" sealed under ring[0], epoch 0x01020304, counter 0x1000. */
static const uint8_t prime[] = {
	0xe1, 0x07, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x10, 0x00, 0x38, 0xae, 0x9e, 0x79, 0x2b, 0x49, 0x33, 0xd4,
	0xcb, 0x6a, 0x3e, 0xce, 0xe7, 0xe4, 0x03, 0x47, 0x2a, 0xc5, 0x1f, 0x6b,
	0x20, 0x5e, 0xcb, 0x73, 0xd8, 0xd1, 0x0e, 0x62, 0x6d, 0x7a, 0x04,
};

static uint8_t out[SEAL_MAX_PACKET];

/* The parts of rx that only an accepted packet may change. */
struct fuzz_view {
	bool seen;
	uint64_t high;
	bool used[2];
	uint32_t epoch[2];
	uint64_t top[2];
	uint64_t bitmap[2][SEAL_WINDOW / 64];
};

static void view(const struct seal_rx *rx, struct fuzz_view *v)
{
	memset(v, 0, sizeof(*v));
	v->seen = rx->seen;
	v->high = rx->high;
	const struct seal_rx_epoch *e[2] = { &rx->cur, &rx->prev };
	for (int i = 0; i < 2; i++) {
		v->used[i] = e[i]->used;
		v->epoch[i] = e[i]->epoch;
		v->top[i] = e[i]->top;
		memcpy(v->bitmap[i], e[i]->bitmap, sizeof(v->bitmap[i]));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_rx rx;
	struct fuzz_view before, after;

	uint64_t floor;
	int fr = seal_floor_parse((const char *)data, size, &floor);
	if (fr != 0 && fr != -EINVAL)
		abort();
	seal_rx_init(&rx, FUZZ_SEAL_SRC, FUZZ_SEAL_DST);
	if (seal_rx_open(&rx, ring, 2, prime, sizeof(prime), out, sizeof(out)) != 15)
		abort();

	view(&rx, &before);
	ssize_t r = seal_rx_open(&rx, ring, 2, data, size, out, sizeof(out));
	view(&rx, &after);
	if (r >= 0) {
		if (size < SEAL_OVERHEAD || (size_t)r != size - SEAL_OVERHEAD)
			abort();
	} else {
		/* -EMSGSIZE: a gathered train (count byte >= 2) may be longer
		 * than out, as a caller's buffer may be */
		bool too_big = size > SEAL_OVERHEAD && size - SEAL_OVERHEAD > sizeof(out);
		if (r != -EBADMSG && r != -EKEYREJECTED && r != -EALREADY &&
		    !(r == -EMSGSIZE && too_big))
			abort();
		if (size < SEAL_OVERHEAD && r != -EBADMSG)
			abort();
		if (memcmp(&before, &after, sizeof(before)) != 0)
			abort();
	}

	ssize_t r2 = seal_rx_open(&rx, ring, 2, data, size, out, sizeof(out));
	if (r >= 0 ? r2 != -EALREADY : r2 != r)
		abort();
	if (seal_rx_open(&rx, ring, 2, prime, sizeof(prime), out, sizeof(out)) != -EALREADY)
		abort();

	seal_rx_clear(&rx);
	return 0;
}

/* Sealed data-path frames (seal.c): round trips, every way a packet can be
 * wrong (key, direction, bits, length), replay windows, epochs (re-key,
 * restart, roll-back), the re-key threshold, ring rotation, trains (one
 * seal cut into datagrams, gathered in any order, lost, forged,
 * contradicting), and the ESP SPIs. The known answers were computed independently with Python
 * (hmac/hashlib HKDF and cryptography's AESGCM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include <openssl/evp.h>

#include "seal.h"

#define A 0xC0000201u /* 192.0.2.1 */
#define B 0xC0000202u /* 192.0.2.2 */
#define NOW INT64_C(1000000)

static const struct seal_key k1 = {
	.id = 7,
	.key = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
	.len = 16,
};
static const struct seal_key k2 = {
	.id = 8,
	.key = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
		 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
		 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf },
	.len = 32,
};
static const struct seal_key k3 = {
	.id = 9,
	.key = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
		 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55 },
	.len = 16,
};

static const uint8_t hello[] = "hello, overlay!"; /* 15 bytes sealed, no NUL */

/* k1, A -> B, epoch 0x01020304, counter 0x1000, "hello, overlay!". */
static const uint8_t kat_pkt[] = {
	0xe1, 0x07, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x10, 0x00, 0x38, 0xae, 0x9e, 0x79, 0x2b, 0x49, 0x33, 0xd4,
	0xcb, 0x6a, 0x3e, 0xce, 0xe7, 0xe4, 0x03, 0x47, 0x2a, 0xc5, 0x1f, 0x6b,
	0x20, 0x5e, 0xcb, 0x73, 0xd8, 0xd1, 0x0e, 0x62, 0x6d, 0x7a, 0x04,
};

/* A frame that looks like an inner Ethernet frame, varied by n. */
static void fill(uint8_t *f, size_t len, unsigned n)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(i * 7 + n);
}

/* Seals a 60-byte frame varied by n into pkt (76 + 16 bytes). */
static size_t seal60(struct seal_tx *tx, unsigned n, uint8_t *pkt)
{
	uint8_t f[60];
	fill(f, sizeof(f), n);
	ssize_t r = seal_tx_seal(tx, f, sizeof(f), pkt, 60 + SEAL_OVERHEAD);
	assert_int_equal(r, 60 + SEAL_OVERHEAD);
	return (size_t)r;
}

/* Opens pkt and checks it is the 60-byte frame n. */
static void open60(struct seal_rx *rx, const struct seal_key *ring, size_t nring,
		   const uint8_t *pkt, size_t len, unsigned n)
{
	uint8_t f[60], out[128];
	fill(f, sizeof(f), n);
	assert_int_equal(seal_rx_open(rx, ring, nring, pkt, len, out, sizeof(out)), 60);
	assert_memory_equal(out, f, sizeof(f));
}

/* Forces tx onto a chosen epoch and counter (tests only). */
static void force_epoch(struct seal_tx *tx, uint32_t epoch, uint64_t counter)
{
	EVP_CIPHER_CTX_free(tx->ctx);
	tx->ctx = NULL;
	tx->epoch = epoch;
	tx->counter = counter;
	assert_int_equal(seal_tx_set_key(tx, &tx->key), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t pkt[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	ssize_t n = seal_tx_seal(&tx, hello, 15, pkt, sizeof(pkt));
	assert_int_equal(n, 15 + SEAL_OVERHEAD);
	assert_int_equal(pkt[0], SEAL_MAGIC);
	assert_int_equal(pkt[0] & 0x08, 0); /* never VXLAN's I flag */
	assert_int_equal(pkt[1], k1.id);
	assert_int_equal(pkt[2] | pkt[3], 0);
	uint32_t epoch = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
	assert_int_equal(epoch, tx.epoch);
	assert_int_equal(pkt[15], NOW & 0xff); /* counter starts at the clock */
	assert_int_equal(pkt[14], (NOW >> 8) & 0xff);
	assert_memory_not_equal(pkt + SEAL_HDR_LEN, hello, 15);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, (size_t)n, out, sizeof(out)), 15);
	assert_memory_equal(out, hello, 15);
	assert_int_equal(rx.opened, 1);
	assert_int_equal(tx.counter, (uint64_t)NOW + 1);

	/* In place: the frame already at pkt + SEAL_HDR_LEN. */
	fill(pkt + SEAL_HDR_LEN, 60, 3);
	assert_int_equal(seal_tx_seal(&tx, pkt + SEAL_HDR_LEN, 60, pkt, sizeof(pkt)), 60 + SEAL_OVERHEAD);
	open60(&rx, &k1, 1, pkt, 60 + SEAL_OVERHEAD, 3);

	/* Empty frame, and buffers too small. */
	assert_int_equal(seal_tx_seal(&tx, NULL, 0, pkt, sizeof(pkt)), SEAL_OVERHEAD);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, SEAL_OVERHEAD, out, 0), 0);
	assert_int_equal(seal_tx_seal(&tx, hello, 15, pkt, 15 + SEAL_OVERHEAD - 1), -EMSGSIZE);
	assert_int_equal(seal_tx_seal(&tx, hello, 15, pkt, sizeof(pkt)), 15 + SEAL_OVERHEAD);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, 15 + SEAL_OVERHEAD, out, 14), -EMSGSIZE);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, 15 + SEAL_OVERHEAD, out, 15), 15);
	assert_int_equal(seal_tx_seal(&tx, hello, SEAL_MAX_FRAME + 1, pkt, SIZE_MAX), -EMSGSIZE);

	/* Bad arguments. */
	struct seal_tx bad;
	struct seal_key k0 = k1;
	k0.len = 15;
	assert_int_equal(seal_tx_init(&bad, &k0, A, B, NOW), -EINVAL);
	seal_tx_clear(&bad);
	assert_int_equal(seal_tx_init(&bad, &k1, A, A, NOW), -EINVAL);
	seal_tx_clear(&bad);
	assert_int_equal(seal_tx_seal(&bad, hello, 15, pkt, sizeof(pkt)), -EINVAL);
	seal_tx_clear(&bad);

	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
	seal_rx_clear(&rx); /* twice is fine */
}

static void test_known_answer(void **state)
{
	(void)state;
	struct seal_rx rx;
	struct seal_tx tx;
	uint8_t out[64], pkt[64];

	/* Opening a packet sealed by an independent implementation. */
	seal_rx_init(&rx, A, B);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, kat_pkt, sizeof(kat_pkt), out, sizeof(out)), 15);
	assert_memory_equal(out, hello, 15);
	seal_rx_clear(&rx);

	/* And sealing it bit for bit. */
	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	force_epoch(&tx, 0x01020304, 0x1000);
	assert_int_equal(seal_tx_seal(&tx, hello, 15, pkt, sizeof(pkt)), sizeof(kat_pkt));
	assert_memory_equal(pkt, kat_pkt, sizeof(kat_pkt));
	seal_tx_clear(&tx);
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx, rev;
	uint8_t pkt[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	size_t n = seal60(&tx, 1, pkt);

	/* Same id, other bytes. */
	struct seal_key wrong = k3;
	wrong.id = k1.id;
	assert_int_equal(seal_rx_open(&rx, &wrong, 1, pkt, n, out, sizeof(out)), -EKEYREJECTED);
	/* No key with that id; an empty ring. */
	assert_int_equal(seal_rx_open(&rx, &k2, 1, pkt, n, out, sizeof(out)), -EKEYREJECTED);
	assert_int_equal(seal_rx_open(&rx, &k1, 0, pkt, n, out, sizeof(out)), -EKEYREJECTED);
	/* Right key, wrong direction or wrong peer. */
	seal_rx_init(&rev, B, A);
	assert_int_equal(seal_rx_open(&rev, &k1, 1, pkt, n, out, sizeof(out)), -EKEYREJECTED);
	seal_rx_clear(&rev);
	seal_rx_init(&rev, 0xC0000203u, B);
	assert_int_equal(seal_rx_open(&rev, &k1, 1, pkt, n, out, sizeof(out)), -EKEYREJECTED);
	seal_rx_clear(&rev);

	/* Failures changed nothing: the frame still opens, once. */
	assert_int_equal(rx.rejected, 3);
	assert_false(rx.seen);
	struct seal_key ring[2] = { wrong, k1 }; /* id collision: both tried */
	open60(&rx, ring, 2, pkt, n, 1);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_flipped_bits(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t pkt[128], bad[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	open60(&rx, &k1, 1, pkt, seal60(&tx, 0, pkt), 0); /* an epoch is known */
	size_t n = seal60(&tx, 1, pkt);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, pkt, n);
			bad[i] ^= (uint8_t)(1 << bit);
			ssize_t r = seal_rx_open(&rx, &k1, 1, bad, n, out, sizeof(out));
			/* magic, an index, a count of 1: malformed; any other
			 * count is authenticated (a frame is no train) */
			if (i == 0 || i == 2 || (i == 3 && bit == 0))
				assert_int_equal(r, -EBADMSG);
			else if (i >= 8 && i < 16 && r == -EALREADY)
				continue; /* counter moved below the window's top */
			else
				assert_int_equal(r, -EKEYREJECTED);
		}
	}
	assert_int_equal(rx.opened, 1);
	open60(&rx, &k1, 1, pkt, n, 1);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_truncated(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t pkt[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	size_t n = seal60(&tx, 2, pkt);
	for (size_t len = 0; len < n; len++) {
		ssize_t r = seal_rx_open(&rx, &k1, 1, pkt, len, out, sizeof(out));
		assert_int_equal(r, len < SEAL_OVERHEAD ? -EBADMSG : -EKEYREJECTED);
	}
	/* A trailing byte too many is no better. */
	pkt[n] = 0;
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, n + 1, out, sizeof(out)), -EKEYREJECTED);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, NULL, 0, out, sizeof(out)), -EBADMSG);
	open60(&rx, &k1, 1, pkt, n, 2);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_replay(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t pkt[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	size_t n = seal60(&tx, 4, pkt);
	open60(&rx, &k1, 1, pkt, n, 4);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, n, out, sizeof(out)), -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, n, out, sizeof(out)), -EALREADY);
	assert_int_equal(rx.replayed, 2);
	assert_int_equal(rx.opened, 1);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

#define MANY 1100

static void test_window(void **state)
{
	(void)state;
	static uint8_t pkts[MANY][60 + SEAL_OVERHEAD];
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	for (unsigned i = 0; i < MANY; i++)
		seal60(&tx, i, pkts[i]);
	size_t n = sizeof(pkts[0]);

	/* Out of order inside the window: each accepted once. */
	unsigned order[] = { 5, 3, 4, 1 };
	for (unsigned i = 0; i < 4; i++)
		open60(&rx, &k1, 1, pkts[order[i]], n, order[i]);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[3], n, out, sizeof(out)), -EALREADY);
	open60(&rx, &k1, 1, pkts[2], n, 2);
	open60(&rx, &k1, 1, pkts[0], n, 0);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[0], n, out, sizeof(out)), -EALREADY);

	/* Jump to the last: SEAL_WINDOW - 64 - 1 behind still opens (once),
	 * a window's length behind is too old. */
	unsigned top = MANY - 1, edge = top - (SEAL_WINDOW - 64 - 1);
	open60(&rx, &k1, 1, pkts[top], n, top);
	open60(&rx, &k1, 1, pkts[edge], n, edge);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[edge], n, out, sizeof(out)), -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[edge - 1], n, out, sizeof(out)), -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[top - SEAL_WINDOW], n, out, sizeof(out)),
			 -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[6], n, out, sizeof(out)), -EALREADY);
	/* Everything in between, in order, opens once. */
	for (unsigned i = edge + 1; i < top; i++)
		open60(&rx, &k1, 1, pkts[i], n, i);
	for (unsigned i = edge; i <= top; i++)
		assert_int_equal(seal_rx_open(&rx, &k1, 1, pkts[i], n, out, sizeof(out)), -EALREADY);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_directions(void **state)
{
	(void)state;
	struct seal_tx ab, ba;
	struct seal_rx rx;
	uint8_t p1[128], p2[128], out[128];

	assert_int_equal(seal_tx_init(&ab, &k1, A, B, NOW), 0);
	assert_int_equal(seal_tx_init(&ba, &k1, B, A, NOW), 0);
	/* Same ring key, epoch, counter and frame: only the direction differs. */
	force_epoch(&ab, 42, 1000);
	force_epoch(&ba, 42, 1000);
	size_t n = seal60(&ab, 9, p1);
	assert_int_equal(seal60(&ba, 9, p2), n);
	assert_memory_equal(p1, p2, SEAL_HDR_LEN);
	assert_memory_not_equal(p1 + SEAL_HDR_LEN, p2 + SEAL_HDR_LEN, n - SEAL_HDR_LEN);
	seal_rx_init(&rx, A, B);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, p2, n, out, sizeof(out)), -EKEYREJECTED);
	open60(&rx, &k1, 1, p1, n, 9);
	seal_rx_clear(&rx);
	seal_rx_init(&rx, B, A);
	open60(&rx, &k1, 1, p2, n, 9);
	seal_rx_clear(&rx);
	/* Another epoch, same counter: another key. */
	force_epoch(&ab, 43, 1000);
	seal60(&ab, 9, p2);
	assert_memory_not_equal(p1 + SEAL_HDR_LEN, p2 + SEAL_HDR_LEN, n - SEAL_HDR_LEN);
	seal_tx_clear(&ab);
	seal_tx_clear(&ba);
}

static void test_epochs(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t old[4][128], p[128], out[128];

	seal_rx_init(&rx, A, B);
	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	uint32_t e1 = tx.epoch;
	size_t n = seal60(&tx, 0, p);
	seal60(&tx, 1, old[0]);   /* epoch 1, delivered late */
	seal60(&tx, 2, old[1]);   /* epoch 1, recorded by an attacker */
	open60(&rx, &k1, 1, p, n, 0);
	open60(&rx, &k1, 1, old[1], n, 2);

	/* Re-key with the clock behind the counter: the counter goes on. */
	uint64_t c = tx.counter;
	assert_int_equal(seal_tx_rekey(&tx, 5), 0);
	assert_int_not_equal(tx.epoch, e1);
	assert_int_equal(tx.counter, c);
	uint32_t e2 = tx.epoch;
	seal60(&tx, 3, old[2]);   /* epoch 2, recorded */
	open60(&rx, &k1, 1, old[2], n, 3);
	assert_int_equal(rx.cur.epoch, e2);
	assert_int_equal(rx.prev.epoch, e1);
	/* Epoch 1's late frame still opens; its replays do not. */
	open60(&rx, &k1, 1, old[0], n, 1);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, old[1], n, out, sizeof(out)), -EALREADY);

	/* The peer restarts (a new sealer, later clock). */
	seal_tx_clear(&tx);
	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW + 1000000), 0);
	n = seal60(&tx, 4, p);
	open60(&rx, &k1, 1, p, n, 4);
	assert_int_equal(rx.epochs, 3);
	assert_int_equal(rx.prev.epoch, e2);
	/* Roll-back: epoch 1 is forgotten, and its authentic frames are
	 * below the high-water mark, so they cannot restart it. */
	assert_int_equal(seal_rx_open(&rx, &k1, 1, old[1], n, out, sizeof(out)), -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, old[0], n, out, sizeof(out)), -EALREADY);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, old[2], n, out, sizeof(out)), -EALREADY);
	assert_int_equal(rx.cur.epoch, tx.epoch);

	/* A restart with the clock gone back is refused until the receiver
	 * is told the peer restarted. */
	seal_tx_clear(&tx);
	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	n = seal60(&tx, 5, p);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, p, n, out, sizeof(out)), -EALREADY);
	seal_rx_reset(&rx);
	open60(&rx, &k1, 1, p, n, 5);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_rekey_threshold(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t p[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	assert_false(seal_tx_should_rekey(&tx));
	tx.sent = SEAL_REKEY_SOFT;
	assert_true(seal_tx_should_rekey(&tx));
	tx.sent = SEAL_REKEY_AFTER - 1;
	size_t n = seal60(&tx, 0, p);
	open60(&rx, &k1, 1, p, n, 0);
	uint64_t c = tx.counter;
	assert_int_equal(seal_tx_seal(&tx, hello, 15, p, sizeof(p)), -EKEYEXPIRED);
	assert_int_equal(seal_tx_seal(&tx, hello, 15, p, sizeof(p)), -EKEYEXPIRED);
	assert_int_equal(tx.counter, c); /* refused frames spend no counter */
	assert_int_equal(seal_tx_rekey(&tx, NOW), 0);
	assert_int_equal(tx.sent, 0);
	assert_false(seal_tx_should_rekey(&tx));
	n = seal60(&tx, 1, p);
	open60(&rx, &k1, 1, p, n, 1);
	assert_int_equal(rx.epochs, 2);
	/* The counter itself can never wrap. */
	tx.counter = UINT64_MAX;
	assert_int_equal(seal_tx_seal(&tx, hello, 15, p, sizeof(p)), -EKEYEXPIRED);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_rotation(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	uint8_t p1[128], p2[128], p3[128], out[128];

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	size_t n = seal60(&tx, 1, p1);          /* under k1 */
	assert_int_equal(seal_tx_set_key(&tx, &k1), 0); /* same key: no-op */
	assert_int_equal(seal_tx_set_key(&tx, &k2), 0); /* primary becomes k2 */
	seal60(&tx, 2, p2);
	assert_int_equal(p2[1], k2.id);
	/* The receiver's ring holds both: either order opens. */
	struct seal_key ring[3] = { k2, k1, k3 };
	open60(&rx, ring, 3, p2, n, 2);
	open60(&rx, ring, 3, p1, n, 1);
	/* k1 retired from the ring: its frames no longer open, even fresh
	 * ones, while k2's still do. */
	assert_int_equal(seal_tx_set_key(&tx, &k1), 0);
	seal60(&tx, 3, p3);
	struct seal_key ring2[2] = { k3, k2 };
	assert_int_equal(seal_rx_open(&rx, ring2, 2, p3, n, out, sizeof(out)), -EKEYREJECTED);
	assert_int_equal(seal_tx_set_key(&tx, &k2), 0);
	seal60(&tx, 4, p3);
	open60(&rx, ring2, 2, p3, n, 4);
	assert_int_equal(rx.epochs, 1);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_spi(void **state)
{
	(void)state;
	/* Known answers (Python HKDF), both directions. */
	assert_int_equal(seal_spi(k1.key, 16, A, B), 0x54968317u);
	assert_int_equal(seal_spi(k1.key, 16, B, A), 0xbcee7711u);
	/* Invalid input. */
	assert_int_equal(seal_spi(k1.key, 16, A, A), 0);
	assert_int_equal(seal_spi(k1.key, 15, A, B), 0);
	assert_int_equal(seal_spi(NULL, 16, A, B), 0);
	/* Many pairs in 198.18.0.0/15: deterministic, never reserved,
	 * directions always differ, keys (almost always) differ. */
	unsigned same_keys = 0;
	for (uint32_t i = 0; i < 300; i++) {
		uint32_t s = 0xC6120000u + i * 97, d = 0xC6130000u + i * 31;
		uint32_t sd = seal_spi(k1.key, 16, s, d), ds = seal_spi(k1.key, 16, d, s);
		assert_true(sd >= 256);
		assert_true(ds >= 256);
		assert_int_not_equal(sd, ds);
		assert_int_equal(sd, seal_spi(k1.key, 16, s, d));
		uint32_t other = seal_spi(k2.key, 32, s, d);
		assert_true(other >= 256);
		same_keys += other == sd;
	}
	assert_int_equal(same_keys, 0);
}

/* ---- trains ---- */

#define SEG 1000
#define UNIT (SEG - SEAL_HDR_LEN)

static uint8_t tframe[5000], dgrams[8][SEG], tbuf[6000], topen[6000];
static size_t dlens[8];

/* Seals tframe[len] (filled with n) as a train of SEG-byte datagrams into
 * dgrams; returns the count. */
static size_t seal_train(struct seal_tx *tx, size_t len, unsigned n)
{
	uint8_t *outs[8];
	size_t cnt = seal_train_count(len, SEG);
	assert_true(cnt >= 2 && cnt <= 8);
	for (size_t k = 0; k < cnt; k++)
		outs[k] = dgrams[k];
	fill(tframe, len, n);
	ssize_t last = seal_tx_train(tx, tframe, len, SEG, outs, cnt);
	assert_true(last > SEAL_HDR_LEN && last <= SEG);
	for (size_t k = 0; k < cnt; k++)
		dlens[k] = k + 1 < cnt ? SEG : (size_t)last;
	return cnt;
}

/* Adds datagrams order[0..n) of the train; returns what the last add did. */
static int gather(struct seal_train *t, const unsigned *order, size_t n, size_t *total,
		  uint64_t *lost)
{
	int rc = -1;
	for (size_t i = 0; i < n; i++) {
		rc = seal_train_add(t, tbuf, sizeof(tbuf), dgrams[order[i]], dlens[order[i]], total,
				    lost);
		if (i + 1 < n)
			assert_int_equal(rc, 0);
	}
	return rc;
}

static void test_train_count(void **state)
{
	(void)state;
	/* one datagram would do; no room for a slice; more than 255 */
	assert_int_equal(seal_train_count(SEG - SEAL_OVERHEAD, SEG), 0);
	assert_int_equal(seal_train_count(SEG - SEAL_OVERHEAD + 1, SEG), 2);
	assert_int_equal(seal_train_count(5000, SEAL_HDR_LEN), 0);
	assert_int_equal(seal_train_count(255 * UNIT - SEAL_TAG_LEN, SEG), 255);
	assert_int_equal(seal_train_count(255 * UNIT - SEAL_TAG_LEN + 1, SEG), 0);
	/* ciphertext and tag are cut together: 2 * UNIT - 16 bytes fill two
	 * slices exactly, one more byte needs a third */
	assert_int_equal(seal_train_count(2 * UNIT - SEAL_TAG_LEN, SEG), 2);
	assert_int_equal(seal_train_count(2 * UNIT - SEAL_TAG_LEN + 1, SEG), 3);
}

static void test_train_round_trip(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	struct seal_train t = { 0 };
	size_t total = 0;
	uint64_t lost = 0;

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	/* lengths around the slice bounds, where the tag is split over the
	 * last two datagrams or fills the last alone; in order, reversed (the
	 * last slice arrives before its place is known), and with repeats */
	const size_t lens[] = { SEG - SEAL_OVERHEAD + 1, 2 * UNIT - SEAL_TAG_LEN - 1,
				2 * UNIT - SEAL_TAG_LEN, 2 * UNIT - 8, 2 * UNIT, 2 * UNIT + 1, 4000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int how = 0; how < 3; how++) {
			uint64_t ctr = tx.counter;
			size_t cnt = seal_train(&tx, lens[i], (unsigned)(i + how));
			assert_int_equal(tx.counter, ctr + 1);   /* one nonce per train */
			for (size_t k = 0; k < cnt; k++) {
				assert_int_equal(dgrams[k][0], SEAL_MAGIC);
				assert_int_equal(dgrams[k][1], k1.id);
				assert_int_equal(dgrams[k][2], k);
				assert_int_equal(dgrams[k][3], cnt);
				assert_memory_equal(dgrams[k] + 4, dgrams[0] + 4, SEAL_HDR_LEN - 4);
			}
			unsigned order[16];
			size_t n = 0;
			for (size_t k = 0; k < cnt; k++) {
				order[n++] = how == 1 ? (unsigned)(cnt - 1 - k) : (unsigned)k;
				if (how == 2 && k + 1 < cnt)
					order[n++] = (unsigned)k;
			}
			assert_int_equal(gather(&t, order, n, &total, &lost), 1);
			assert_int_equal(total, SEAL_OVERHEAD + lens[i]);
			ssize_t r = seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen));
			assert_int_equal(r, lens[i]);
			assert_memory_equal(topen, tframe, lens[i]);
			/* the gathered train is one frame to the replay window */
			assert_int_equal(seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen)),
					 -EALREADY);
		}
	}
	assert_int_equal(lost, 0);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

static void test_train_bad(void **state)
{
	(void)state;
	struct seal_tx tx;
	struct seal_rx rx;
	struct seal_train t = { 0 };
	size_t total = 0;
	uint64_t lost = 0;
	const unsigned all[] = { 0, 1, 2, 3, 4 };

	assert_int_equal(seal_tx_init(&tx, &k1, A, B, NOW), 0);
	seal_rx_init(&rx, A, B);
	uint8_t *outs[8] = { dgrams[0], dgrams[1], dgrams[2], dgrams[3], dgrams[4] };
	fill(tframe, 3000, 0);
	assert_int_equal(seal_tx_train(&tx, tframe, 3000, SEG, outs, 3), -EINVAL);   /* 4 needed */
	assert_int_equal(seal_tx_train(&tx, tframe, 900, SEG, outs, 2), -EINVAL);    /* 1 would do */

	/* a train missing a datagram is abandoned when the next one starts */
	size_t cnt = seal_train(&tx, 3000, 1);
	assert_int_equal(gather(&t, all, cnt - 1, &total, &lost), 0);
	cnt = seal_train(&tx, 2500, 2);
	assert_int_equal(gather(&t, all, cnt, &total, &lost), 1);
	assert_int_equal(lost, 1);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen)), 2500);

	/* a forged slice: gathered, but the whole fails to open, as does a
	 * train opened with the wrong ring */
	cnt = seal_train(&tx, 3000, 3);
	dgrams[1][100] ^= 1;
	assert_int_equal(gather(&t, all, cnt, &total, &lost), 1);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen)), -EKEYREJECTED);
	cnt = seal_train(&tx, 3000, 4);
	assert_int_equal(gather(&t, all, cnt, &total, &lost), 1);
	assert_int_equal(seal_rx_open(&rx, &k3, 1, tbuf, total, topen, sizeof(topen)), -EKEYREJECTED);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen)), 3000);

	/* malformed datagrams are refused and change nothing: too short,
	 * wrong magic, count 1, index past the count, a middle slice of
	 * another size, a last slice longer than the others, a train too big
	 * for the buffer */
	cnt = seal_train(&tx, 3000, 5);
	uint8_t d[SEG];
	memcpy(d, dgrams[0], SEG);
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), d, SEAL_HDR_LEN, &total, &lost),
			 -EBADMSG);
	d[0] ^= 1;
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), d, SEG, &total, &lost), -EBADMSG);
	d[0] ^= 1;
	d[3] = 1;
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), d, SEG, &total, &lost), -EBADMSG);
	d[3] = (uint8_t)cnt;
	d[2] = (uint8_t)cnt;
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), d, SEG, &total, &lost), -EBADMSG);
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), dgrams[0], SEG, &total, &lost), 0);
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), dgrams[1], SEG - 1, &total, &lost),
			 -EBADMSG);
	/* a refused datagram of "another train" (one too big for the
	 * buffer) does not abandon the one being gathered */
	memcpy(d, dgrams[1], SEG);
	d[3] = 255;
	d[15] ^= 1;
	uint64_t lost0 = lost;
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), d, SEG, &total, &lost), -EBADMSG);
	assert_int_equal(lost, lost0);
	assert_int_equal(seal_train_add(&t, tbuf, sizeof(tbuf), dgrams[cnt - 1], UNIT + 17, &total,
					&lost), -EBADMSG);
	assert_int_equal(gather(&t, all + 1, cnt - 1, &total, &lost), 1);
	assert_int_equal(seal_rx_open(&rx, &k1, 1, tbuf, total, topen, sizeof(topen)), 3000);
	cnt = seal_train(&tx, 3000, 6);
	assert_int_equal(seal_train_add(&t, tbuf, 2000, dgrams[0], SEG, &total, &lost), -EBADMSG);
	assert_int_equal(lost, 1);

	/* seal_rx_open refuses a header with an index or a count of 1 */
	uint8_t pkt[128];
	size_t n = seal60(&tx, 7, pkt);
	pkt[3] = 1;
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, n, topen, sizeof(topen)), -EBADMSG);
	pkt[3] = 0;
	pkt[2] = 1;
	assert_int_equal(seal_rx_open(&rx, &k1, 1, pkt, n, topen, sizeof(topen)), -EBADMSG);
	seal_tx_clear(&tx);
	seal_rx_clear(&rx);
}

/* The floor file's text, and when a new reservation is due. */
static void test_floor(void **unused)
{
	(void)unused;
	uint64_t v = 7;
	assert_int_equal(seal_floor_parse("1790000000000000000\n", 20, &v), 0);
	assert_true(v == UINT64_C(1790000000000000000));
	assert_int_equal(seal_floor_parse("42", 2, &v), 0);
	assert_true(v == 42);
	assert_int_equal(seal_floor_parse("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	static const char *const bad[] = { "", "\n", "-1", "1 ", "1\n\n", "0x10", "12a",
					  "18446744073709551616", " 1", "1\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(seal_floor_parse(bad[i], strlen(bad[i]), &v), -EINVAL);
	assert_true(v == 7); /* untouched on error */
	/* "7" followed by bytes the length excludes: only the length counts */
	assert_int_equal(seal_floor_parse("7x", 1, &v), 0);
	assert_true(v == 7);

	uint64_t next = 0;
	const uint64_t R = SEAL_FLOOR_RESERVE, now = UINT64_C(1790000000000000000);
	/* nothing reserved yet: due, above the clock by the reserve */
	assert_true(seal_floor_due(now, 0, &next));
	assert_true(next == now + R);
	/* more than half left: not due */
	assert_false(seal_floor_due(now + 1, now + R, &next));
	assert_false(seal_floor_due(now + R / 2 - 1, now + R, &next));
	/* half or less left, or passed: due, from the new high */
	assert_true(seal_floor_due(now + R / 2, now + R, &next));
	assert_true(next == now + R / 2 + R);
	assert_true(seal_floor_due(now + 2 * R, now + R, &next));
	assert_true(next == now + 3 * R);
	/* never wraps */
	assert_true(seal_floor_due(UINT64_MAX - 5, 0, &next));
	assert_true(next == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_flipped_bits),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_directions),
		cmocka_unit_test(test_epochs),
		cmocka_unit_test(test_rekey_threshold),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_train_count),
		cmocka_unit_test(test_train_round_trip),
		cmocka_unit_test(test_train_bad),
		cmocka_unit_test(test_spi),
		cmocka_unit_test(test_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

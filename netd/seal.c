/* Sealing of encrypted overlay frames (AES-GCM with per-direction HKDF
 * keys, counters as nonces, RFC 6479 replay windows) and ESP SPIs;
 * contracts and wire format in seal.h.
 *
 * gossip_crypto.c's GCM helper is not reused on purpose: it builds a
 * cipher context and runs the AES key schedule on every call and writes
 * into a growing gossip_buf, where this data path keys one context per
 * derived key once and then only sets the nonce per frame, into the
 * caller's buffer. */
#include "seal.h"

#include "gossip_crypto.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define NONCE_OFF 4   /* nonce = header bytes 4..15: epoch || counter */
#define NONCE_LEN 12
#define BLOCKS (SEAL_WINDOW / 64)
#define DP_SALT "swarm-dp"
#define DP_INFO "swarm-dp1"
#define SPI_SALT "swarm-spi"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* An IPv4 address (host order) as 16-byte IPv4-mapped IPv6, so that the
 * derivations stay the same once IPv6 data-path addresses come. */
static void put_addr(uint8_t *p, uint32_t addr)
{
	memset(p, 0, 10);
	p[10] = 0xff;
	p[11] = 0xff;
	put32(p + 12, addr);
}

bool seal_key_equal(const struct seal_key *a, const struct seal_key *b)
{
	return a->id == b->id && a->len == b->len && CRYPTO_memcmp(a->key, b->key, a->len) == 0;
}

/* HKDF-SHA256 (extract and expand) of ikm with salt and info into
 * out[outlen]. */
static int hkdf(const uint8_t *ikm, size_t ikmlen, const char *salt, const uint8_t *info,
		size_t infolen, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	int rc = -EIO;

	if (!kctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, strlen(salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

/* A GCM context keyed with the src -> dst key of epoch under ring key
 * ring, for sealing (enc 1) or opening (enc 0). NULL on failure (*rc set). */
static EVP_CIPHER_CTX *derive_ctx(const struct seal_key *ring, uint32_t src, uint32_t dst,
				  uint32_t epoch, int enc, int *rc)
{
	uint8_t info[sizeof(DP_INFO) - 1 + 16 + 16 + 4];
	uint8_t dk[SEAL_KEY_MAX];
	EVP_CIPHER_CTX *ctx = NULL;

	memcpy(info, DP_INFO, sizeof(DP_INFO) - 1);
	put_addr(info + sizeof(DP_INFO) - 1, src);
	put_addr(info + sizeof(DP_INFO) - 1 + 16, dst);
	put32(info + sizeof(DP_INFO) - 1 + 32, epoch);
	*rc = hkdf(ring->key, ring->len, DP_SALT, info, sizeof(info), dk, ring->len);
	if (*rc < 0)
		goto out;
	*rc = -ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		goto out;
	*rc = -EIO;
	if (EVP_CipherInit_ex(ctx, gossip_crypto_gcm(ring->len), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, dk, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
		goto out;
	}
	*rc = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	return ctx;
}

/* One GCM operation with a keyed context: the nonce and AAD come from
 * hdr. Seals in[n] into out[n] and writes tag, or opens it and checks tag.
 * Returns 0, -EKEYREJECTED (tag mismatch) or -EIO. */
static int gcm(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr, const uint8_t *in, size_t n,
	       uint8_t *out, uint8_t *tag)
{
	uint8_t fin[16];
	int l = 0;
	/* The tag goes by OSSL_PARAM straight to the provider: the
	 * EVP_CIPHER_CTX_ctrl route translates each call through a table
	 * of string names, which cost as much as sealing a small frame. */
	OSSL_PARAM tp[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, SEAL_TAG_LEN),
		OSSL_PARAM_END,
	};

	if (EVP_CipherInit_ex2(ctx, NULL, NULL, hdr + NONCE_OFF, enc, NULL) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &l, hdr, SEAL_HDR_LEN) != 1)
		return -EIO;
	if (n && EVP_CipherUpdate(ctx, out, &l, in, (int)n) != 1)
		return -EIO;
	if (!enc && EVP_CIPHER_CTX_set_params(ctx, tp) != 1)
		return -EIO;
	/* GCM's final step writes no bytes; fin keeps out's bounds exact. */
	if (EVP_CipherFinal_ex(ctx, fin, &l) != 1)
		return enc ? -EIO : -EKEYREJECTED;
	if (enc && EVP_CIPHER_CTX_get_params(ctx, tp) != 1)
		return -EIO;
	return 0;
}

/* ---- sealing ---- */

int seal_tx_init(struct seal_tx *tx, const struct seal_key *key, uint32_t src, uint32_t dst,
		 int64_t now)
{
	memset(tx, 0, sizeof(*tx));
	if (!key || !gossip_crypto_key_len_ok(key->len) || src == dst)
		return -EINVAL;
	tx->src = src;
	tx->dst = dst;
	tx->key = *key;
	return seal_tx_rekey(tx, now);
}

void seal_tx_clear(struct seal_tx *tx)
{
	EVP_CIPHER_CTX_free(tx->ctx);
	OPENSSL_cleanse(tx, sizeof(*tx));
}

int seal_tx_set_key(struct seal_tx *tx, const struct seal_key *key)
{
	int rc;

	if (!key || !gossip_crypto_key_len_ok(key->len))
		return -EINVAL;
	if (tx->ctx && seal_key_equal(&tx->key, key))
		return 0;
	EVP_CIPHER_CTX *ctx = derive_ctx(key, tx->src, tx->dst, tx->epoch, 1, &rc);
	if (!ctx)
		return rc;
	EVP_CIPHER_CTX_free(tx->ctx);
	tx->ctx = ctx;
	if (key != &tx->key)
		tx->key = *key;
	return 0;
}

int seal_tx_rekey(struct seal_tx *tx, int64_t now)
{
	uint8_t b[4];
	uint32_t epoch;
	int rc;

	if (!gossip_crypto_key_len_ok(tx->key.len))
		return -EINVAL;
	/* A fresh epoch means a fresh derived key; never the current one, so
	 * a re-key always changes the key. */
	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return -EIO;
		epoch = get32(b);
	} while (tx->ctx && epoch == tx->epoch);
	EVP_CIPHER_CTX *ctx = derive_ctx(&tx->key, tx->src, tx->dst, epoch, 1, &rc);
	if (!ctx)
		return rc;
	EVP_CIPHER_CTX_free(tx->ctx);
	tx->ctx = ctx;
	tx->epoch = epoch;
	/* Counters rise across epochs (the receivers' roll-back defence):
	 * start at the wall clock in ns, or just past the last counter if
	 * the clock went back meanwhile. */
	if (now > 0 && (uint64_t)now > tx->counter)
		tx->counter = (uint64_t)now;
	tx->sent = 0;
	return 0;
}

int seal_floor_parse(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || (i < len && !(i + 1 == len && s[i] == '\n')))
		return -EINVAL;
	*out = v;
	return 0;
}

bool seal_floor_due(uint64_t high, uint64_t reserved, uint64_t *next)
{
	if (high < reserved && reserved - high > SEAL_FLOOR_RESERVE / 2)
		return false;
	*next = high > UINT64_MAX - SEAL_FLOOR_RESERVE ? UINT64_MAX : high + SEAL_FLOOR_RESERVE;
	return true;
}

bool seal_tx_should_rekey(const struct seal_tx *tx)
{
	return tx->sent >= SEAL_REKEY_SOFT;
}

ssize_t seal_tx_seal(struct seal_tx *tx, const uint8_t *frame, size_t len, uint8_t *out,
		     size_t outcap)
{
	if (!tx->ctx || (len && !frame))
		return -EINVAL;
	if (len > SEAL_MAX_FRAME || outcap < len + SEAL_OVERHEAD)
		return -EMSGSIZE;
	if (tx->sent >= SEAL_REKEY_AFTER || tx->counter == UINT64_MAX)
		return -EKEYEXPIRED;
	out[0] = SEAL_MAGIC;
	out[1] = tx->key.id;
	out[2] = 0;
	out[3] = 0;
	put32(out + 4, tx->epoch);
	put64(out + 8, tx->counter);
	/* The counter is spent even if OpenSSL fails below: a nonce is
	 * never offered twice. */
	tx->counter++;
	tx->sent++;
	int rc = gcm(tx->ctx, 1, out, frame, len, out + SEAL_HDR_LEN, out + SEAL_HDR_LEN + len);
	if (rc < 0) {
		OPENSSL_cleanse(out, len + SEAL_OVERHEAD);
		return rc;
	}
	return (ssize_t)(len + SEAL_OVERHEAD);
}

size_t seal_train_count(size_t len, size_t seg)
{
	if (seg <= SEAL_HDR_LEN || seg > SEAL_MAX_PACKET || len + SEAL_OVERHEAD <= seg)
		return 0;
	size_t unit = seg - SEAL_HDR_LEN;
	size_t cnt = (len + SEAL_TAG_LEN + unit - 1) / unit;
	return cnt <= SEAL_TRAIN_MAX ? cnt : 0;
}

ssize_t seal_tx_train(struct seal_tx *tx, const uint8_t *frame, size_t len, size_t seg,
		      uint8_t *const *out, size_t cnt)
{
	if (!tx->ctx || !frame || !out || cnt < 2 || seal_train_count(len, seg) != cnt)
		return -EINVAL;
	if (tx->sent >= SEAL_REKEY_AFTER || tx->counter == UINT64_MAX)
		return -EKEYEXPIRED;
	size_t unit = seg - SEAL_HDR_LEN, stream = len + SEAL_TAG_LEN;
	uint8_t hdr[SEAL_HDR_LEN], tag[SEAL_TAG_LEN], fin[16];
	hdr[0] = SEAL_MAGIC;
	hdr[1] = tx->key.id;
	hdr[2] = 0;
	hdr[3] = (uint8_t)cnt;
	put32(hdr + 4, tx->epoch);
	put64(hdr + 8, tx->counter);
	tx->counter++;     /* spent even on failure, as in seal_tx_seal */
	tx->sent++;

	/* One GCM pass streamed into the slices: datagram k's ciphertext is
	 * frame[k * unit ...), the tag lands after the last byte (possibly
	 * split over the last two datagrams). */
	EVP_CIPHER_CTX *ctx = tx->ctx;
	OSSL_PARAM tp[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, SEAL_TAG_LEN),
		OSSL_PARAM_END,
	};
	int l = 0, ok = EVP_CipherInit_ex2(ctx, NULL, NULL, hdr + NONCE_OFF, 1, NULL) == 1 &&
			EVP_CipherUpdate(ctx, NULL, &l, hdr, SEAL_HDR_LEN) == 1;
	for (size_t k = 0; k < cnt && ok; k++) {
		size_t off = k * unit;
		memcpy(out[k], hdr, SEAL_HDR_LEN);
		out[k][2] = (uint8_t)k;
		if (off < len) {
			size_t n = len - off < unit ? len - off : unit;
			ok = EVP_CipherUpdate(ctx, out[k] + SEAL_HDR_LEN, &l, frame + off, (int)n) == 1;
		}
	}
	ok = ok && EVP_CipherFinal_ex(ctx, fin, &l) == 1 && EVP_CIPHER_CTX_get_params(ctx, tp) == 1;
	size_t last = stream - (cnt - 1) * unit;
	if (!ok) {
		for (size_t k = 0; k < cnt; k++)
			OPENSSL_cleanse(out[k], SEAL_HDR_LEN + (k + 1 < cnt ? unit : last));
		return -EIO;
	}
	for (size_t b = 0; b < SEAL_TAG_LEN; b++) {
		size_t at = len + b;
		out[at / unit][SEAL_HDR_LEN + at % unit] = tag[b];
	}
	return (ssize_t)(SEAL_HDR_LEN + last);
}

int seal_train_add(struct seal_train *t, uint8_t *buf, size_t cap, const uint8_t *pkt,
		   size_t len, size_t *total, uint64_t *lost)
{
	if (len <= SEAL_HDR_LEN || pkt[0] != SEAL_MAGIC || pkt[3] < 2 || pkt[2] >= pkt[3] ||
	    cap <= SEAL_HDR_LEN)
		return -EBADMSG;
	unsigned idx = pkt[2], cnt = pkt[3];
	const uint8_t *slice = pkt + SEAL_HDR_LEN;
	size_t sl = len - SEAL_HDR_LEN, room = cap - SEAL_HDR_LEN;
	bool last = idx + 1 == cnt;

	/* Worked on a copy: a datagram refused below changes nothing, and
	 * in particular does not abandon the train in progress. The same
	 * train: every header byte but the index agrees. */
	bool fresh = !t->active || memcmp(t->hdr, pkt, 2) != 0 ||
		     memcmp(t->hdr + 3, pkt + 3, SEAL_HDR_LEN - 3) != 0;
	struct seal_train n = *t;
	if (fresh) {
		memset(&n, 0, sizeof(n));
		n.active = true;
		memcpy(n.hdr, pkt, SEAL_HDR_LEN);
		n.hdr[2] = 0;
		n.cnt = cnt;
	}
	uint8_t bit = (uint8_t)(1u << (idx & 7));
	if (n.got[idx >> 3] & bit)
		return 0;
	bool learn = !last && !n.unit;
	size_t unit = learn ? sl : n.unit;
	if (learn && ((cnt - 1) * sl + (n.last_len ? n.last_len : 1) > room || n.last_len > sl))
		return -EBADMSG;
	if (!last && sl != unit)
		return -EBADMSG;
	if (last && (sl > room || (unit && (sl > unit || (cnt - 1) * unit + sl > room))))
		return -EBADMSG;

	if (fresh && t->active)
		(*lost)++;
	if (learn) {
		/* The first full slice tells where every slice goes; a last
		 * one kept at the buffer's end moves to its place. */
		n.unit = sl;
		if (n.last_len)
			memmove(buf + SEAL_HDR_LEN + (cnt - 1) * sl, buf + cap - n.last_len, n.last_len);
	}
	if (last) {
		n.last_len = sl;
		memcpy(n.unit ? buf + SEAL_HDR_LEN + (cnt - 1) * n.unit : buf + cap - sl, slice, sl);
	} else {
		memcpy(buf + SEAL_HDR_LEN + idx * n.unit, slice, sl);
	}
	n.got[idx >> 3] |= bit;
	if (++n.ngot < n.cnt) {
		*t = n;
		return 0;
	}
	n.active = false;
	memcpy(buf, n.hdr, SEAL_HDR_LEN);
	*total = SEAL_HDR_LEN + (cnt - 1) * n.unit + n.last_len;
	*t = n;
	return 1;
}

/* ---- opening ---- */

static void epoch_clear(struct seal_rx_epoch *e)
{
	for (unsigned i = 0; i < SEAL_CACHE; i++)
		EVP_CIPHER_CTX_free(e->keys[i].ctx);
	OPENSSL_cleanse(e, sizeof(*e));
}

/* RFC 6479: 0 if counter may be accepted by e, -EALREADY if it was seen or
 * lies before the window. The top block may be partly in the future, so
 * only SEAL_WINDOW - 64 counters below top are guaranteed. */
static int window_check(const struct seal_rx_epoch *e, uint64_t ctr)
{
	if (ctr > e->top)
		return 0;
	if (e->top - ctr >= SEAL_WINDOW - 64)
		return -EALREADY;
	if (e->bitmap[(ctr >> 6) % BLOCKS] & UINT64_C(1) << (ctr & 63))
		return -EALREADY;
	return 0;
}

/* Records ctr (already checked) in e's window, sliding it if ctr is new. */
static void window_update(struct seal_rx_epoch *e, uint64_t ctr)
{
	if (ctr > e->top) {
		uint64_t diff = (ctr >> 6) - (e->top >> 6);
		if (diff > BLOCKS)
			diff = BLOCKS;
		for (uint64_t i = 1; i <= diff; i++)
			e->bitmap[((e->top >> 6) + i) % BLOCKS] = 0;
		e->top = ctr;
	}
	e->bitmap[(ctr >> 6) % BLOCKS] |= UINT64_C(1) << (ctr & 63);
}

/* The opening context of e under ring key k, derived and cached on first
 * use (replacing the oldest entry when the cache is full). */
static EVP_CIPHER_CTX *epoch_ctx(const struct seal_rx *rx, struct seal_rx_epoch *e,
				 const struct seal_key *k, int *rc)
{
	for (unsigned i = 0; i < SEAL_CACHE; i++)
		if (e->keys[i].ctx && seal_key_equal(&e->keys[i].ring, k))
			return e->keys[i].ctx;
	EVP_CIPHER_CTX *ctx = derive_ctx(k, rx->src, rx->dst, e->epoch, 0, rc);
	if (!ctx)
		return NULL;
	struct seal_rx_key *slot = &e->keys[e->next];
	e->next = (e->next + 1) % SEAL_CACHE;
	EVP_CIPHER_CTX_free(slot->ctx);
	OPENSSL_cleanse(slot, sizeof(*slot));
	slot->ring = *k;
	slot->ctx = ctx;
	return ctx;
}

void seal_rx_init(struct seal_rx *rx, uint32_t src, uint32_t dst)
{
	memset(rx, 0, sizeof(*rx));
	rx->src = src;
	rx->dst = dst;
}

void seal_rx_reset(struct seal_rx *rx)
{
	epoch_clear(&rx->cur);
	epoch_clear(&rx->prev);
	rx->seen = false;
	rx->high = 0;
}

void seal_rx_clear(struct seal_rx *rx)
{
	seal_rx_reset(rx);
	OPENSSL_cleanse(rx, sizeof(*rx));
}

ssize_t seal_rx_open(struct seal_rx *rx, const struct seal_key *ring, size_t nring,
		     const uint8_t *pkt, size_t len, uint8_t *out, size_t outcap)
{
	struct seal_rx_epoch fresh, *e = NULL;
	int rc;

	if (!pkt || len < SEAL_OVERHEAD || pkt[0] != SEAL_MAGIC || pkt[2] != 0 || pkt[3] == 1 ||
	    len > (pkt[3] ? (size_t)SEAL_TRAIN_MAX * SEAL_MAX_PACKET : SEAL_MAX_PACKET)) {
		rx->bad++;
		return -EBADMSG;
	}
	size_t n = len - SEAL_OVERHEAD;
	if (outcap < n || (n && !out))
		return -EMSGSIZE;
	uint8_t id = pkt[1];
	uint32_t epoch = get32(pkt + 4);
	uint64_t ctr = get64(pkt + 8);

	/* Cheap checks before any crypto: replays within a known epoch, and
	 * unknown epochs that would roll the counter back. */
	if (rx->cur.used && rx->cur.epoch == epoch)
		e = &rx->cur;
	else if (rx->prev.used && rx->prev.epoch == epoch)
		e = &rx->prev;
	if (e)
		rc = window_check(e, ctr);
	else
		rc = rx->seen && ctr <= rx->high ? -EALREADY : 0;
	if (rc < 0) {
		rx->replayed++;
		return rc;
	}
	if (!e) {
		memset(&fresh, 0, sizeof(fresh));
		fresh.epoch = epoch;
		e = &fresh;
	}

	rc = -EKEYREJECTED;
	for (size_t i = 0; i < nring && rc == -EKEYREJECTED; i++) {
		if (ring[i].id != id || !gossip_crypto_key_len_ok(ring[i].len))
			continue;
		EVP_CIPHER_CTX *ctx = epoch_ctx(rx, e, &ring[i], &rc);
		if (ctx)
			rc = gcm(ctx, 0, pkt, pkt + SEAL_HDR_LEN, n, out,
				 (uint8_t *)(pkt + SEAL_HDR_LEN + n));
	}
	if (rc < 0) {
		if (n)
			OPENSSL_cleanse(out, n);
		if (e == &fresh)
			epoch_clear(&fresh);
		if (rc == -EKEYREJECTED)
			rx->rejected++;
		return rc;
	}

	if (e == &fresh) {
		/* An authentic frame of a new epoch with a counter above all
		 * we accepted: the peer re-keyed or restarted. The current
		 * epoch stays for its frames still in flight. */
		epoch_clear(&rx->prev);
		rx->prev = rx->cur;
		rx->cur = fresh;
		rx->cur.used = true;
		rx->cur.top = ctr;
		e = &rx->cur;
		rx->epochs++;
	}
	window_update(e, ctr);
	if (!rx->seen || ctr > rx->high)
		rx->high = ctr;
	rx->seen = true;
	rx->opened++;
	return (ssize_t)n;
}

/* ---- SPIs ---- */

uint32_t seal_spi(const uint8_t *key, size_t keylen, uint32_t src_addr, uint32_t dst_addr)
{
	uint8_t info[32], w[8];
	uint32_t dir = src_addr > dst_addr ? UINT32_C(0x80000000) : 0;

	if (!key || !gossip_crypto_key_len_ok(keylen) || src_addr == dst_addr)
		return 0;
	put_addr(info, src_addr);
	put_addr(info + 16, dst_addr);
	if (hkdf(key, keylen, SPI_SALT, info, sizeof(info), w, sizeof(w)) < 0)
		return 0;
	/* The top bit tells the direction; below 256 (reserved, only when
	 * that bit is clear) try the second word, then fall back to 256 +
	 * a byte, all deterministic on both ends. */
	for (unsigned i = 0; i < 2; i++) {
		uint32_t spi = dir | (get32(w + 4 * i) & UINT32_C(0x7fffffff));
		if (spi >= 256)
			return spi;
	}
	return 256 + w[7];
}

int seal_esp_key(const uint8_t *key, size_t keylen, uint32_t src_addr, uint32_t dst_addr,
		 uint8_t *out)
{
	static const char tag[] = "swarm-esp1";
	uint8_t info[sizeof(tag) - 1 + 32];
	if (!key || !gossip_crypto_key_len_ok(keylen) || src_addr == dst_addr)
		return -EINVAL;
	memcpy(info, tag, sizeof(tag) - 1);
	put_addr(info + sizeof(tag) - 1, src_addr);
	put_addr(info + sizeof(tag) - 1 + 16, dst_addr);
	return hkdf(key, keylen, "swarm-esp", info, sizeof(info), out, keylen + 4);
}
